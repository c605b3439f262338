//! Attribute constraints: `LTarget Operand RTarget` checked against a node.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;

use regex::Regex;

use super::target::Target;
use super::version::VersionReq;
use crate::error::SchedError;
use crate::structs::{Constraint, Node};

/// The operand of a constraint or affinity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    Equal,
    NotEqual,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
    Regexp,
    Version,
    Semver,
    SetContains,
    SetContainsAny,
    IsSet,
    IsNotSet,
    DistinctHosts,
    DistinctProperty,
}

impl Operator {
    /// Parses a Nomad operand; an empty operand means equality.
    pub fn parse(text: &str) -> Option<Operator> {
        Some(match text {
            "" | "=" | "==" | "is" => Operator::Equal,
            "!=" | "not" => Operator::NotEqual,
            "<" => Operator::Less,
            "<=" => Operator::LessEqual,
            ">" => Operator::Greater,
            ">=" => Operator::GreaterEqual,
            "regexp" => Operator::Regexp,
            "version" => Operator::Version,
            "semver" => Operator::Semver,
            "set_contains" | "set_contains_all" => Operator::SetContains,
            "set_contains_any" => Operator::SetContainsAny,
            "is_set" => Operator::IsSet,
            "is_not_set" => Operator::IsNotSet,
            "distinct_hosts" => Operator::DistinctHosts,
            "distinct_property" => Operator::DistinctProperty,
            _ => return None,
        })
    }

    /// Reports whether the operand depends on other placements rather than the node alone.
    pub fn is_dynamic(&self) -> bool {
        matches!(self, Operator::DistinctHosts | Operator::DistinctProperty)
    }
}

/// Nomad's metric key for a constraint: `LTarget Operand RTarget`.
pub fn reason_key(l_target: &str, operand: &str, r_target: &str) -> String {
    format!("{l_target} {operand} {r_target}")
}

/// Checks one node-local constraint. Literal regular expressions and version requirements are
/// compiled once; ones that come from node attributes are compiled once per distinct text.
pub struct ConstraintChecker {
    left: Target,
    right: Target,
    op: Operator,
    reason: String,
    regex: Option<Regex>,
    version: Option<VersionReq>,
    set: Vec<String>,
    regex_cache: RefCell<HashMap<String, Option<Regex>>>,
}

impl ConstraintChecker {
    /// Compiles a constraint. `job_id` and `field` only name the culprit in errors.
    pub fn new(c: &Constraint, job_id: &str, field: &str) -> Result<Self, SchedError> {
        Self::build(&c.l_target, &c.operand, &c.r_target, job_id, field)
    }

    /// Compiles from raw parts (affinities share the operands of constraints).
    pub fn build(
        l_target: &str,
        operand: &str,
        r_target: &str,
        job_id: &str,
        field: &str,
    ) -> Result<Self, SchedError> {
        let invalid = |reason: String| SchedError::InvalidConstraint {
            job_id: job_id.to_string(),
            field: field.to_string(),
            value: reason_key(l_target, operand, r_target),
            reason,
        };
        let op = Operator::parse(operand)
            .ok_or_else(|| invalid(format!("unknown operand {operand:?}")))?;
        let right = Target::parse(r_target);
        let mut regex = None;
        let mut version = None;
        if let Target::Literal(text) = &right {
            match op {
                Operator::Regexp => {
                    regex = Some(Regex::new(text).map_err(|e| invalid(e.to_string()))?);
                }
                Operator::Version | Operator::Semver => {
                    version =
                        Some(VersionReq::parse(text, op == Operator::Semver).map_err(invalid)?);
                }
                _ => {}
            }
        }
        let set = split_set(r_target);
        Ok(ConstraintChecker {
            left: Target::parse(l_target),
            right,
            op,
            reason: reason_key(l_target, operand, r_target),
            regex,
            version,
            set,
            regex_cache: RefCell::new(HashMap::new()),
        })
    }

    /// The metric key recorded when this constraint filters a node.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    pub fn operator(&self) -> Operator {
        self.op
    }

    /// Reports whether the node satisfies the constraint.
    pub fn feasible(&self, node: &Node) -> bool {
        let left = self.left.resolve(node);
        let right = self.right.resolve(node);
        match self.op {
            Operator::IsSet => left.is_some(),
            Operator::IsNotSet => left.is_none(),
            Operator::NotEqual => left != right || left.is_none(),
            // Dynamic operands are checked elsewhere with the plan's state.
            Operator::DistinctHosts | Operator::DistinctProperty => true,
            _ => {
                let (Some(l), Some(r)) = (left, right) else {
                    return false;
                };
                self.compare(l, r)
            }
        }
    }

    fn compare(&self, l: &str, r: &str) -> bool {
        match self.op {
            Operator::Equal => l == r,
            Operator::Less => order(l, r) == Ordering::Less,
            Operator::LessEqual => order(l, r) != Ordering::Greater,
            Operator::Greater => order(l, r) == Ordering::Greater,
            Operator::GreaterEqual => order(l, r) != Ordering::Less,
            Operator::Regexp => match &self.regex {
                Some(re) => re.is_match(l),
                None => {
                    let mut cache = self.regex_cache.borrow_mut();
                    let re = cache
                        .entry(r.to_string())
                        .or_insert_with(|| Regex::new(r).ok());
                    re.as_ref().is_some_and(|re| re.is_match(l))
                }
            },
            Operator::Version | Operator::Semver => match &self.version {
                Some(req) => req.matches(l),
                None => VersionReq::parse(r, self.op == Operator::Semver)
                    .is_ok_and(|req| req.matches(l)),
            },
            Operator::SetContains => {
                let have = split_set(l);
                let want = if self.right.is_literal() {
                    &self.set
                } else {
                    &split_set(r)
                };
                want.iter().all(|w| have.contains(w))
            }
            Operator::SetContainsAny => {
                let have = split_set(l);
                let want = if self.right.is_literal() {
                    &self.set
                } else {
                    &split_set(r)
                };
                want.iter().any(|w| have.contains(w))
            }
            Operator::NotEqual
            | Operator::IsSet
            | Operator::IsNotSet
            | Operator::DistinctHosts
            | Operator::DistinctProperty => true,
        }
    }
}

/// Compares numerically when both sides parse as numbers, else lexically.
fn order(l: &str, r: &str) -> Ordering {
    match (l.trim().parse::<f64>(), r.trim().parse::<f64>()) {
        (Ok(a), Ok(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
        _ => l.cmp(r),
    }
}

fn split_set(text: &str) -> Vec<String> {
    text.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::node;

    fn check(l: &str, op: &str, r: &str) -> bool {
        let mut n = node("n1", 1000, 1000);
        n.attributes.insert("kernel.name".into(), "linux".into());
        n.attributes.insert("cpu.numcores".into(), "8".into());
        n.attributes
            .insert("driver.docker.version".into(), "1.13.1".into());
        n.meta.insert("tags".into(), "a, b,c".into());
        ConstraintChecker::build(l, op, r, "job", "constraint")
            .unwrap()
            .feasible(&n)
    }

    #[test]
    fn equality() {
        assert!(check("${attr.kernel.name}", "=", "linux"));
        assert!(check("${attr.kernel.name}", "", "linux"));
        assert!(check("${attr.kernel.name}", "is", "linux"));
        assert!(!check("${attr.kernel.name}", "==", "windows"));
        assert!(check("${attr.kernel.name}", "!=", "windows"));
        assert!(!check("${attr.kernel.name}", "not", "linux"));
        // A missing attribute is never equal, so `!=` holds.
        assert!(check("${attr.missing}", "!=", "x"));
        assert!(!check("${attr.missing}", "=", "x"));
    }

    #[test]
    fn ordering_numeric_and_lexical() {
        assert!(check("${attr.cpu.numcores}", ">=", "8"));
        assert!(check("${attr.cpu.numcores}", "<", "10"));
        assert!(!check("${attr.cpu.numcores}", ">", "10"));
        assert!(check("${attr.kernel.name}", ">", "abc"));
        assert!(!check("${attr.kernel.name}", "<=", "abc"));
    }

    #[test]
    fn regexp_version_sets() {
        assert!(check("${attr.kernel.name}", "regexp", "^lin"));
        assert!(!check("${attr.kernel.name}", "regexp", "^win"));
        assert!(check(
            "${attr.driver.docker.version}",
            "version",
            ">= 1.2, < 2.0"
        ));
        assert!(!check(
            "${attr.driver.docker.version}",
            "semver",
            ">= 1.14.0"
        ));
        assert!(check("${meta.tags}", "set_contains", "a,c"));
        assert!(check("${meta.tags}", "set_contains_all", "b"));
        assert!(!check("${meta.tags}", "set_contains", "a,d"));
        assert!(check("${meta.tags}", "set_contains_any", "d,c"));
        assert!(!check("${meta.tags}", "set_contains_any", "d,e"));
        assert!(check("${meta.tags}", "is_set", ""));
        assert!(!check("${meta.none}", "is_set", ""));
        assert!(check("${meta.none}", "is_not_set", ""));
    }

    #[test]
    fn bad_input_is_an_error_naming_the_constraint() {
        let err = ConstraintChecker::build("${attr.x}", "regexp", "(", "web", "constraint")
            .err()
            .unwrap();
        assert!(err.to_string().contains("${attr.x} regexp ("), "{err}");
        assert!(ConstraintChecker::build("a", "bogus", "b", "web", "constraint").is_err());
        assert!(ConstraintChecker::build("a", "version", ">= x", "web", "constraint").is_err());
    }

    #[test]
    fn reason_uses_nomad_format() {
        let c = ConstraintChecker::build("${attr.kernel.name}", "=", "linux", "j", "c").unwrap();
        assert_eq!(c.reason(), "${attr.kernel.name} = linux");
    }
}
