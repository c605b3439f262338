//! Constraint targets: `${attr.X}`, `${meta.X}`, `${node.*}` or a plain literal.

use crate::structs::Node;

/// A parsed constraint target, resolved against a node without allocating.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Attr(String),
    Meta(String),
    NodeId,
    NodeName,
    Datacenter,
    Class,
    Pool,
    Literal(String),
    /// An interpolation drover does not know; it never resolves, like a missing attribute.
    Unknown(String),
}

impl Target {
    /// Parses a target string.
    pub fn parse(text: &str) -> Target {
        let Some(inner) = text.strip_prefix("${").and_then(|t| t.strip_suffix('}')) else {
            return Target::Literal(text.to_string());
        };
        if let Some(key) = inner.strip_prefix("attr.") {
            return Target::Attr(key.to_string());
        }
        if let Some(key) = inner.strip_prefix("meta.") {
            return Target::Meta(key.to_string());
        }
        match inner {
            "node.unique.id" => Target::NodeId,
            "node.unique.name" => Target::NodeName,
            "node.datacenter" => Target::Datacenter,
            "node.class" => Target::Class,
            "node.pool" => Target::Pool,
            _ => Target::Unknown(inner.to_string()),
        }
    }

    /// Returns the target's value on a node, or `None` when the node does not define it.
    pub fn resolve<'n>(&'n self, node: &'n Node) -> Option<&'n str> {
        match self {
            Target::Attr(key) => node.attributes.get(key).map(String::as_str),
            Target::Meta(key) => node.meta.get(key).map(String::as_str),
            Target::NodeId => Some(&node.id),
            Target::NodeName => Some(&node.name),
            Target::Datacenter => Some(&node.datacenter),
            Target::Class => Some(&node.node_class),
            Target::Pool => Some(&node.node_pool),
            Target::Literal(value) => Some(value),
            Target::Unknown(_) => None,
        }
    }

    /// Reports whether the target is the same for every node.
    pub fn is_literal(&self) -> bool {
        matches!(self, Target::Literal(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::node;

    #[test]
    fn resolves_each_kind() {
        let mut n = node("n1", 1000, 1000);
        n.attributes.insert("kernel.name".into(), "linux".into());
        n.meta.insert("rack".into(), "r1".into());
        assert_eq!(
            Target::parse("${attr.kernel.name}").resolve(&n),
            Some("linux")
        );
        assert_eq!(Target::parse("${meta.rack}").resolve(&n), Some("r1"));
        assert_eq!(Target::parse("${meta.zone}").resolve(&n), None);
        assert_eq!(Target::parse("${node.unique.id}").resolve(&n), Some("n1"));
        assert_eq!(Target::parse("${node.datacenter}").resolve(&n), Some("dc1"));
        assert_eq!(Target::parse("${node.pool}").resolve(&n), Some("default"));
        assert_eq!(Target::parse("linux").resolve(&n), Some("linux"));
        assert_eq!(Target::parse("${node.bogus}").resolve(&n), None);
    }
}
