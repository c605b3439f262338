//! A small subset of go-bexpr, Nomad's `?filter=` language, evaluated on encoded JSON objects.
//!
//! Supported: `Sel == v`, `Sel != v`, `Sel contains v`, `Sel not contains v`, `v in Sel`,
//! `v not in Sel`, `Sel is empty`, `Sel is not empty`, `and`, `or`, `not`, parentheses.
//! Selectors are dotted field paths (`Job.Status`, `Meta.owner`); values are quoted strings,
//! numbers, booleans or bare words. Anything else is rejected with 400 naming the position.
//! Nomad evaluates filters on full objects; drover evaluates them on the object the endpoint
//! returns (the list stub for stub lists), which covers the fields people filter on.

use serde_json::Value;

use super::reply::HttpError;

/// A parsed filter expression.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Equal {
        selector: Vec<String>,
        value: String,
        negate: bool,
    },
    Contains {
        selector: Vec<String>,
        value: String,
        negate: bool,
    },
    Empty {
        selector: Vec<String>,
        negate: bool,
    },
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Op(&'static str),
}

/// Longest filter accepted, to bound parsing work.
const FILTER_BYTES_MAX: usize = 4096;

impl Filter {
    /// Parses a filter expression.
    pub(crate) fn parse(text: &str) -> Result<Filter, HttpError> {
        if text.len() > FILTER_BYTES_MAX {
            return Err(HttpError::bad_request("filter expression is too long"));
        }
        let tokens = tokenize(text)?;
        let mut parser = Parser { tokens, pos: 0 };
        let filter = parser.or_expr()?;
        if parser.pos != parser.tokens.len() {
            return Err(parser.error("unexpected trailing input"));
        }
        Ok(filter)
    }

    /// Reports whether the object matches.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        match self {
            Filter::And(a, b) => a.matches(object) && b.matches(object),
            Filter::Or(a, b) => a.matches(object) || b.matches(object),
            Filter::Not(f) => !f.matches(object),
            Filter::Equal {
                selector,
                value,
                negate,
            } => {
                let equal = lookup(object, selector).is_some_and(|v| value_equals(v, value));
                equal != *negate
            }
            Filter::Contains {
                selector,
                value,
                negate,
            } => {
                let contains = match lookup(object, selector) {
                    Some(Value::String(s)) => s.contains(value.as_str()),
                    Some(Value::Array(items)) => items.iter().any(|v| value_equals(v, value)),
                    Some(Value::Object(map)) => map.contains_key(value.as_str()),
                    _ => false,
                };
                contains != *negate
            }
            Filter::Empty { selector, negate } => {
                let empty = match lookup(object, selector) {
                    None | Some(Value::Null) => true,
                    Some(Value::String(s)) => s.is_empty(),
                    Some(Value::Array(a)) => a.is_empty(),
                    Some(Value::Object(o)) => o.is_empty(),
                    Some(_) => false,
                };
                empty != *negate
            }
        }
    }
}

fn lookup<'a>(object: &'a Value, selector: &[String]) -> Option<&'a Value> {
    selector
        .iter()
        .try_fold(object, |v, key| v.get(key.as_str()))
}

fn value_equals(v: &Value, text: &str) -> bool {
    match v {
        Value::String(s) => s == text,
        Value::Bool(b) => text.parse::<bool>().ok() == Some(*b),
        Value::Number(n) => match (n.as_f64(), text.parse::<f64>().ok()) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
        _ => false,
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, HttpError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' || c == ')' {
            tokens.push(Token::Op(if c == '(' { "(" } else { ")" }));
            i += 1;
        } else if (c == '=' || c == '!') && chars.get(i + 1) == Some(&'=') {
            tokens.push(Token::Op(if c == '=' { "==" } else { "!=" }));
            i += 2;
        } else if c == '"' || c == '`' {
            let close = chars[i + 1..].iter().position(|&d| d == c).ok_or_else(|| {
                HttpError::bad_request(format!(
                    "failed to parse filter: unterminated string at position {i}"
                ))
            })?;
            tokens.push(Token::Quoted(chars[i + 1..i + 1 + close].iter().collect()));
            i += close + 2;
        } else {
            let start = i;
            while i < chars.len()
                && !chars[i].is_whitespace()
                && !matches!(chars[i], '(' | ')' | '"' | '`' | '=' | '!')
            {
                i += 1;
            }
            if start == i {
                return Err(HttpError::bad_request(format!(
                    "failed to parse filter: unexpected {c:?} at position {i}"
                )));
            }
            tokens.push(Token::Word(chars[start..i].iter().collect()));
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn error(&self, what: &str) -> HttpError {
        HttpError::bad_request(format!(
            "failed to parse filter: {what} at token {}",
            self.pos + 1
        ))
    }

    fn peek_word(&self, word: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some(Token::Word(w)) if w == word)
    }

    fn or_expr(&mut self) -> Result<Filter, HttpError> {
        let mut left = self.and_expr()?;
        while self.peek_word("or") {
            self.pos += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and_expr()?));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Filter, HttpError> {
        let mut left = self.unary()?;
        while self.peek_word("and") {
            self.pos += 1;
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, HttpError> {
        if self.peek_word("not") {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        if self.tokens.get(self.pos) == Some(&Token::Op("(")) {
            self.pos += 1;
            let inner = self.or_expr()?;
            if self.tokens.get(self.pos) != Some(&Token::Op(")")) {
                return Err(self.error("expected ')'"));
            }
            self.pos += 1;
            return Ok(inner);
        }
        self.comparison()
    }

    fn value(&mut self) -> Result<String, HttpError> {
        match self.tokens.get(self.pos).cloned() {
            Some(Token::Quoted(s)) | Some(Token::Word(s)) => {
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.error("expected a value")),
        }
    }

    fn selector(&mut self) -> Result<Vec<String>, HttpError> {
        match self.tokens.get(self.pos).cloned() {
            Some(Token::Word(w)) => {
                self.pos += 1;
                Ok(w.split('.').map(str::to_string).collect())
            }
            _ => Err(self.error("expected a selector")),
        }
    }

    fn comparison(&mut self) -> Result<Filter, HttpError> {
        // `value [not] in Selector`
        let is_in =
            |p: &Parser, at: usize| matches!(p.tokens.get(at), Some(Token::Word(w)) if w == "in");
        let is_not =
            |p: &Parser, at: usize| matches!(p.tokens.get(at), Some(Token::Word(w)) if w == "not");
        if is_in(self, self.pos + 1) || (is_not(self, self.pos + 1) && is_in(self, self.pos + 2)) {
            let value = self.value()?;
            let negate = self.peek_word("not");
            self.pos += if negate { 2 } else { 1 };
            let selector = self.selector()?;
            return Ok(Filter::Contains {
                selector,
                value,
                negate,
            });
        }
        let selector = self.selector()?;
        match self.tokens.get(self.pos).cloned() {
            Some(Token::Op("==")) | Some(Token::Op("!=")) => {
                let negate = self.tokens[self.pos] == Token::Op("!=");
                self.pos += 1;
                let value = self.value()?;
                Ok(Filter::Equal {
                    selector,
                    value,
                    negate,
                })
            }
            Some(Token::Word(w)) if w == "contains" || w == "not" => {
                let negate = w == "not";
                self.pos += 1;
                if negate {
                    if !self.peek_word("contains") {
                        return Err(self.error("expected 'contains'"));
                    }
                    self.pos += 1;
                }
                let value = self.value()?;
                Ok(Filter::Contains {
                    selector,
                    value,
                    negate,
                })
            }
            Some(Token::Word(w)) if w == "is" => {
                self.pos += 1;
                let negate = self.peek_word("not");
                if negate {
                    self.pos += 1;
                }
                if !self.peek_word("empty") {
                    return Err(self.error("expected 'empty'"));
                }
                self.pos += 1;
                Ok(Filter::Empty { selector, negate })
            }
            _ => Err(self.error("expected an operator (==, !=, contains, in, is empty)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn evaluates_basic_expressions() {
        let obj = json!({"Status": "running", "Priority": 50, "Datacenters": ["dc1"],
            "Meta": {"owner": "ops"}, "Stop": false});
        let m = |f: &str| Filter::parse(f).unwrap().matches(&obj);
        assert!(m("Status == \"running\""));
        assert!(!m("Status != running"));
        assert!(m("Priority == 50 and Stop == false"));
        assert!(m("Status == dead or Meta.owner == `ops`"));
        assert!(m("\"dc1\" in Datacenters"));
        assert!(m("dc2 not in Datacenters"));
        assert!(m("Datacenters contains dc1"));
        assert!(m("not (Status == dead)"));
        assert!(m("Missing is empty"));
        assert!(m("Meta is not empty"));
    }

    #[test]
    fn rejects_malformed_expressions() {
        for bad in [
            "Status ==",
            "Status running",
            "(Status == a",
            "\"open",
            "== a",
        ] {
            let e = Filter::parse(bad).unwrap_err();
            assert_eq!(e.status.as_u16(), 400, "{bad}");
            assert!(
                e.message.starts_with("failed to parse filter"),
                "{}",
                e.message
            );
        }
    }
}
