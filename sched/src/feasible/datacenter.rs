//! Datacenters: the node's datacenter must match one of the job's, `*` globs allowed.

use crate::structs::Node;

/// Accepts nodes whose datacenter matches one of the job's datacenter patterns.
pub struct DatacenterChecker<'a> {
    patterns: &'a [String],
}

impl<'a> DatacenterChecker<'a> {
    pub const REASON: &'static str = "datacenter mismatch";

    pub fn new(patterns: &'a [String]) -> Self {
        DatacenterChecker { patterns }
    }

    pub fn feasible(&self, node: &Node) -> bool {
        self.accepts(&node.datacenter)
    }

    /// Reports whether `datacenter` matches one of the job's patterns.
    pub fn accepts(&self, datacenter: &str) -> bool {
        // An empty list means "everywhere", like Nomad's default of `["*"]`.
        self.patterns.is_empty() || self.patterns.iter().any(|p| glob_match(p, datacenter))
    }
}

/// Matches `text` against a pattern where `*` stands for any run of characters.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::node;

    #[test]
    fn globs() {
        assert!(glob_match("dc1", "dc1"));
        assert!(!glob_match("dc1", "dc2"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("us-*", "us-east-1"));
        assert!(!glob_match("us-*", "eu-west"));
        assert!(glob_match("*-east-*", "us-east-1"));
        assert!(!glob_match("a*a", "a"));
    }

    #[test]
    fn checks_node_datacenter() {
        let n = node("n1", 1000, 1000);
        let dcs = vec!["dc2".to_string(), "dc*".to_string()];
        assert!(DatacenterChecker::new(&dcs).feasible(&n));
        let dcs = vec!["eu*".to_string()];
        assert!(!DatacenterChecker::new(&dcs).feasible(&n));
    }
}
