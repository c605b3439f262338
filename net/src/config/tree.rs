//! A positioned HCL tree: attributes and blocks with the line each starts on.
//!
//! hcl-rs's own `Body` drops source positions, so files are parsed with hcl-edit (which keeps
//! byte spans) and flattened into `Item`s. JSON files become the same tree so one walker
//! serves both formats. Shared by the agent config loader and the job spec parser.

use std::collections::BTreeMap;

use hcl::edit::Span;
use hcl::expr::{
    Expression, HeredocStripMode, ObjectKey, Operation, TemplateExpr, TraversalOperator,
    UnaryOperator,
};
use serde_json::Value;

/// One attribute or block.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub key: String,
    pub labels: Vec<String>,
    /// 1-based line the item starts on; 0 when unknown.
    pub line: usize,
    pub kind: ItemKind,
}

#[derive(Debug, Clone)]
pub(crate) enum ItemKind {
    Attr(AttrValue),
    Block(Vec<Item>),
}

/// An attribute's value before conversion: HCL expressions are converted lazily so
/// the caller can supply variables.
#[derive(Debug, Clone)]
pub(crate) enum AttrValue {
    Hcl(Expression),
    Json(Value),
}

/// Values for `var.NAME` and `local.NAME` references in a job file, keyed by the
/// whole reference (`"var.image"`).
pub(crate) type Vars = BTreeMap<String, Value>;

impl AttrValue {
    /// Converts the value to JSON. Interpolations other than `var.NAME` / `local.NAME` stay
    /// as `${...}` text.
    pub fn to_json(&self, vars: &Vars) -> Result<Value, String> {
        match self {
            AttrValue::Hcl(expr) => expr_to_json(expr, vars),
            AttrValue::Json(v) => Ok(v.clone()),
        }
    }
}

/// A syntax error with its 1-based position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Parses HCL source into items.
pub(crate) fn parse_hcl(src: &str) -> Result<Vec<Item>, SyntaxError> {
    let body = hcl::edit::parser::parse_body(src).map_err(|e| SyntaxError {
        line: e.location().line(),
        column: e.location().column(),
        message: e.message().to_string(),
    })?;
    let lines = LineIndex::new(src);
    Ok(convert_body(&body, &lines))
}

fn convert_body(body: &hcl::edit::structure::Body, lines: &LineIndex) -> Vec<Item> {
    let mut items = Vec::with_capacity(body.len());
    for structure in body.iter() {
        let line = structure
            .span()
            .map(|s| lines.line_of(s.start))
            .unwrap_or(0);
        match structure {
            hcl::edit::structure::Structure::Attribute(attr) => items.push(Item {
                key: attr.key.as_str().to_string(),
                labels: Vec::new(),
                line,
                kind: ItemKind::Attr(AttrValue::Hcl(Expression::from(attr.value.clone()))),
            }),
            hcl::edit::structure::Structure::Block(block) => items.push(Item {
                key: block.ident.as_str().to_string(),
                labels: block
                    .labels
                    .iter()
                    .map(|l| l.as_str().to_string())
                    .collect(),
                line,
                kind: ItemKind::Block(convert_body(&block.body, lines)),
            }),
        }
    }
    items
}

/// Parses a JSON file into items: objects (and arrays of objects) become blocks, everything
/// else attributes. Lines are found by locating each key's quoted text after its parent.
pub(crate) fn parse_json(src: &str) -> Result<Vec<Item>, SyntaxError> {
    let value: Value = serde_json::from_str(src).map_err(|e| SyntaxError {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let Value::Object(map) = value else {
        return Err(SyntaxError {
            line: 1,
            column: 1,
            message: "the top level of a JSON configuration must be an object".to_string(),
        });
    };
    let lines = LineIndex::new(src);
    let mut cursor = 0;
    Ok(json_object_items(&map, src, &lines, &mut cursor))
}

fn json_object_items(
    map: &serde_json::Map<String, Value>,
    src: &str,
    lines: &LineIndex,
    cursor: &mut usize,
) -> Vec<Item> {
    let mut items = Vec::new();
    for (key, value) in map {
        let needle = format!("\"{key}\"");
        let offset = src[*cursor..].find(&needle).map(|i| *cursor + i);
        if let Some(o) = offset {
            *cursor = o + needle.len();
        }
        let line = offset.map(|o| lines.line_of(o)).unwrap_or(0);
        match value {
            Value::Object(inner) => items.push(Item {
                key: key.clone(),
                labels: Vec::new(),
                line,
                kind: ItemKind::Block(json_object_items(inner, src, lines, cursor)),
            }),
            Value::Array(elems) if !elems.is_empty() && elems.iter().all(Value::is_object) => {
                for elem in elems {
                    let Value::Object(inner) = elem else { continue };
                    items.push(Item {
                        key: key.clone(),
                        labels: Vec::new(),
                        line,
                        kind: ItemKind::Block(json_object_items(inner, src, lines, cursor)),
                    });
                }
            }
            other => items.push(Item {
                key: key.clone(),
                labels: Vec::new(),
                line,
                kind: ItemKind::Attr(AttrValue::Json(other.clone())),
            }),
        }
    }
    items
}

/// Maps byte offsets to 1-based line numbers.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(src: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    fn line_of(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

/// Converts an HCL expression to JSON. Literal values convert directly; `var.NAME` and
/// `local.NAME` resolve
/// from `vars`; other references are rejected because only the client can evaluate them.
pub(crate) fn expr_to_json(expr: &Expression, vars: &Vars) -> Result<Value, String> {
    match expr {
        Expression::Null => Ok(Value::Null),
        Expression::Bool(b) => Ok(Value::Bool(*b)),
        Expression::Number(n) => Ok(number_to_json(n)),
        Expression::String(s) => Ok(Value::String(s.clone())),
        Expression::Array(elems) => elems
            .iter()
            .map(|e| expr_to_json(e, vars))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Expression::Object(obj) => {
            let mut map = serde_json::Map::new();
            for (k, v) in obj.iter() {
                let key = match k {
                    ObjectKey::Identifier(id) => id.as_str().to_string(),
                    ObjectKey::Expression(e) => match expr_to_json(e, vars)? {
                        Value::String(s) => s,
                        other => other.to_string(),
                    },
                    other => return Err(format!("unsupported object key `{other}`")),
                };
                map.insert(key, expr_to_json(v, vars)?);
            }
            Ok(Value::Object(map))
        }
        Expression::TemplateExpr(t) => match t.as_ref() {
            TemplateExpr::QuotedString(raw) => Ok(Value::String(render_template(raw, vars, true))),
            TemplateExpr::Heredoc(h) => {
                let text = match h.strip {
                    HeredocStripMode::Indent => strip_indent(&h.template),
                    HeredocStripMode::None => h.template.clone(),
                };
                Ok(Value::String(render_template(&text, vars, false)))
            }
        },
        Expression::Parenthesis(inner) => expr_to_json(inner, vars),
        Expression::Operation(op) => match op.as_ref() {
            Operation::Unary(u) if u.operator == UnaryOperator::Neg => {
                match expr_to_json(&u.expr, vars)? {
                    Value::Number(n) => {
                        if let Some(i) = n.as_i64() {
                            Ok(Value::from(-i))
                        } else {
                            Ok(Value::from(-n.as_f64().unwrap_or(0.0)))
                        }
                    }
                    _ => Err(format!("cannot negate `{expr}`")),
                }
            }
            Operation::Unary(u) if u.operator == UnaryOperator::Not => {
                match expr_to_json(&u.expr, vars)? {
                    Value::Bool(b) => Ok(Value::Bool(!b)),
                    _ => Err(format!("cannot apply ! to `{expr}`")),
                }
            }
            _ => Err(format!("operations are not supported here: `{expr}`")),
        },
        Expression::Traversal(t) => {
            if let (Expression::Variable(root), [TraversalOperator::GetAttr(name)]) =
                (&t.expr, t.operators.as_slice())
            {
                let root = root.as_str();
                if root == "var" || root == "local" {
                    let key = format!("{root}.{}", name.as_str());
                    return vars
                        .get(&key)
                        .cloned()
                        .ok_or_else(|| format!("undefined {key}"));
                }
            }
            Err(format!(
                "unsupported reference `{expr}`; quote it as \"${{...}}\""
            ))
        }
        Expression::Variable(v) => Err(format!("unsupported reference `{}`", v.as_str())),
        other => Err(format!("unsupported expression `{other}`")),
    }
}

fn number_to_json(n: &hcl::Number) -> Value {
    if let Some(u) = n.as_u64() {
        Value::from(u)
    } else if let Some(i) = n.as_i64() {
        Value::from(i)
    } else {
        Value::from(n.as_f64().unwrap_or(0.0))
    }
}

/// Turns a raw template into its string: resolves `${var.NAME}` and `${local.NAME}`, keeps
/// every other
/// `${...}` / `%{...}` sequence verbatim (Nomad evaluates those on the client), turns the
/// `$${` / `%%{` escapes into literal text and, for quoted strings, decodes backslash escapes.
fn render_template(raw: &str, vars: &Vars, quoted: bool) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let rest = &raw[i..];
        if rest.starts_with("$${") || rest.starts_with("%%{") {
            out.push(c);
            out.push('{');
            chars.next();
            chars.next();
            continue;
        }
        if rest.starts_with("${") {
            if let Some(end) = rest.find('}') {
                let inner = rest[2..end].trim();
                let resolved = (inner.starts_with("var.") || inner.starts_with("local."))
                    .then(|| vars.get(inner))
                    .flatten()
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    });
                match resolved {
                    Some(text) => out.push_str(&text),
                    None => out.push_str(&rest[..=end]),
                }
                // Skip the characters of the interpolation we just consumed.
                while let Some(&(j, _)) = chars.peek() {
                    if j > i + end {
                        break;
                    }
                    chars.next();
                }
                continue;
            }
        }
        if quoted && c == '\\' {
            match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, '"')) => out.push('"'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, 'u')) => {
                    let hex: String = (0..4)
                        .filter_map(|_| chars.next().map(|(_, h)| h))
                        .collect();
                    match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                        Some(decoded) => out.push(decoded),
                        None => {
                            out.push_str("\\u");
                            out.push_str(&hex);
                        }
                    }
                }
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Removes the smallest common leading-space indentation from every line (`<<-EOT`).
fn strip_indent(text: &str) -> String {
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start_matches(' ').len())
        .min()
        .unwrap_or(0);
    text.split_inclusive('\n')
        .map(|l| match (l.get(..indent), l.get(indent..)) {
            (Some(head), Some(tail)) if head.trim().is_empty() => tail,
            _ => l,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_carry_lines_and_labels() {
        let src = "a = 1\n\nblock \"x\" \"y\" {\n  b = \"s\"\n}\n";
        let items = parse_hcl(src).unwrap();
        assert_eq!(items[0].key, "a");
        assert_eq!(items[0].line, 1);
        assert_eq!(items[1].line, 3);
        assert_eq!(items[1].labels, vec!["x", "y"]);
        let ItemKind::Block(inner) = &items[1].kind else {
            panic!("expected block")
        };
        assert_eq!(inner[0].line, 4);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse_hcl("a = 1\nb = = 2\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.column > 1);
    }

    #[test]
    fn templates_keep_runtime_interpolations_and_resolve_vars() {
        let mut vars = Vars::new();
        vars.insert("var.image".into(), Value::from("redis:7"));
        let src = r#"a = "${attr.kernel.name}"
b = "img=${var.image} $${lit} \"q\""
c = var.image
d = -3
e = <<-EOT
    one
      two
    EOT
"#;
        let items = parse_hcl(src).unwrap();
        let val = |i: usize| match &items[i].kind {
            ItemKind::Attr(v) => v.to_json(&vars).unwrap(),
            ItemKind::Block(_) => panic!("expected attribute"),
        };
        assert_eq!(val(0), Value::from("${attr.kernel.name}"));
        assert_eq!(val(1), Value::from("img=redis:7 ${lit} \"q\""));
        assert_eq!(val(2), Value::from("redis:7"));
        assert_eq!(val(3), Value::from(-3));
        assert_eq!(val(4), Value::from("one\n  two\n"));
    }

    #[test]
    fn json_objects_become_blocks_with_lines() {
        let src = "{\n  \"server\": {\n    \"enabled\": true\n  }\n}\n";
        let items = parse_json(src).unwrap();
        assert_eq!(items[0].key, "server");
        assert_eq!(items[0].line, 2);
        let ItemKind::Block(inner) = &items[0].kind else {
            panic!("expected block")
        };
        assert_eq!(inner[0].line, 3);
    }
}
