//! Version constraints (`version` and `semver` operands): a small comparator for strings like
//! `">= 1.2, < 2.0"` or `"~> 1.4"`.

use std::cmp::Ordering;

/// A parsed version: numeric segments plus an optional pre-release tag. Build metadata is dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    segments: Vec<u64>,
    pre: Option<String>,
}

impl Version {
    /// Parses `1`, `1.2`, `v1.2.3`, `1.2.3-beta.1+build`. Returns `None` on anything else.
    /// `strict` (semver) requires exactly three segments.
    pub fn parse(text: &str, strict: bool) -> Option<Version> {
        let text = text.trim();
        let text = text.strip_prefix('v').unwrap_or(text);
        let text = text.split('+').next().unwrap_or(text);
        let (core, pre) = match text.split_once('-') {
            Some((core, pre)) if !pre.is_empty() => (core, Some(pre.to_string())),
            Some(_) => return None,
            None => (text, None),
        };
        let segments: Option<Vec<u64>> = core.split('.').map(|s| s.parse().ok()).collect();
        let segments = segments?;
        if segments.is_empty() || (strict && segments.len() != 3) {
            return None;
        }
        Some(Version { segments, pre })
    }

    fn segment(&self, i: usize) -> u64 {
        self.segments.get(i).copied().unwrap_or(0)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let width = self.segments.len().max(other.segments.len());
        for i in 0..width {
            match self.segment(i).cmp(&other.segment(i)) {
                Ordering::Equal => {}
                unequal => return unequal,
            }
        }
        match (&self.pre, &other.pre) {
            (None, None) => Ordering::Equal,
            // A pre-release sorts before its release.
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(a), Some(b)) => compare_pre(a, b),
        }
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares dot-separated pre-release identifiers: numbers numerically, words lexically.
fn compare_pre(a: &str, b: &str) -> Ordering {
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => x.cmp(y),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `~>`: at least this version, below the next release of its second-to-last segment.
    Pessimistic,
}

/// A conjunction of comparisons, e.g. `>= 1.2, < 2.0`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionReq {
    terms: Vec<(Op, Version)>,
    strict: bool,
}

impl VersionReq {
    /// Parses a comma-separated list of `<op> <version>` terms; a bare version means `=`.
    pub fn parse(text: &str, strict: bool) -> Result<VersionReq, String> {
        let mut terms = Vec::new();
        for raw in text.split(',') {
            let raw = raw.trim();
            let (op, rest) = [
                ("~>", Op::Pessimistic),
                (">=", Op::Ge),
                ("<=", Op::Le),
                ("!=", Op::Ne),
                ("==", Op::Eq),
                ("=", Op::Eq),
                (">", Op::Gt),
                ("<", Op::Lt),
            ]
            .iter()
            .find_map(|(prefix, op)| raw.strip_prefix(prefix).map(|rest| (*op, rest)))
            .unwrap_or((Op::Eq, raw));
            let version = Version::parse(rest, strict)
                .ok_or_else(|| format!("cannot parse version {:?}", rest.trim()))?;
            terms.push((op, version));
        }
        Ok(VersionReq { terms, strict })
    }

    /// Reports whether `text` parses as a version satisfying every term.
    pub fn matches(&self, text: &str) -> bool {
        let Some(v) = Version::parse(text, self.strict) else {
            return false;
        };
        self.terms.iter().all(|(op, c)| match op {
            Op::Eq => v == *c,
            Op::Ne => v != *c,
            Op::Lt => v < *c,
            Op::Le => v <= *c,
            Op::Gt => v > *c,
            Op::Ge => v >= *c,
            Op::Pessimistic => v >= *c && v < pessimistic_ceiling(c),
        })
    }
}

/// `~> 1.2.3` allows < 1.3; `~> 1.2` allows < 2; `~> 1` allows < 2.
fn pessimistic_ceiling(c: &Version) -> Version {
    let keep = c.segments.len().saturating_sub(1).max(1);
    let mut segments: Vec<u64> = c.segments[..keep].to_vec();
    if let Some(last) = segments.last_mut() {
        *last += 1;
    }
    Version {
        segments,
        pre: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let req = VersionReq::parse(">= 1.2, < 2.0", false).unwrap();
        assert!(req.matches("1.2"));
        assert!(req.matches("1.10.3"));
        assert!(!req.matches("2.0.0"));
        assert!(!req.matches("1.1.9"));
        assert!(!req.matches("garbage"));
    }

    #[test]
    fn pessimistic_and_prerelease() {
        let req = VersionReq::parse("~> 1.2.3", false).unwrap();
        assert!(req.matches("1.2.9"));
        assert!(!req.matches("1.3.0"));
        let req = VersionReq::parse("~> 1.2", false).unwrap();
        assert!(req.matches("1.9"));
        assert!(!req.matches("2.0"));
        let req = VersionReq::parse("< 1.0.0", true).unwrap();
        assert!(req.matches("1.0.0-beta.2"));
        assert!(Version::parse("1.0.0-beta.2", true) > Version::parse("1.0.0-beta.1", true));
        assert!(Version::parse("1.0.0-beta", true) > Version::parse("1.0.0-alpha.9", true));
    }

    #[test]
    fn strict_needs_three_segments() {
        assert!(VersionReq::parse(">= 1.2", true).is_err());
        let req = VersionReq::parse(">= 1.2.0", true).unwrap();
        assert!(!req.matches("1.3"));
        assert!(req.matches("v1.3.0"));
    }
}
