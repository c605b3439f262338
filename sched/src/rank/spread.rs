//! Spread: steer allocations of a task group across the values of a node attribute, either
//! evenly or towards target percentages.

use std::collections::HashMap;

use crate::feasible::Target;
use crate::structs::{Node, Spread};

struct SpreadState {
    target: Target,
    weight: f64,
    /// Desired share per attribute value, in percent.
    percents: HashMap<String, f64>,
    /// Proposed allocations of the group per attribute value.
    counts: HashMap<String, u32>,
}

/// Scores nodes by how much placing there would improve the spread of the group.
pub struct SpreadScorer {
    spreads: Vec<SpreadState>,
    weight_total: f64,
    desired_count: u32,
}

impl SpreadScorer {
    /// Returns `None` when the group has no spread blocks.
    pub fn new<'a>(spreads: impl Iterator<Item = &'a Spread>, desired_count: u32) -> Option<Self> {
        let spreads: Vec<SpreadState> = spreads
            .map(|s| SpreadState {
                target: Target::parse(&s.attribute),
                // A zero weight would silence the block; Nomad treats blocks as weight 50 then.
                weight: if s.weight == 0 {
                    50.0
                } else {
                    f64::from(s.weight).abs()
                },
                percents: s
                    .targets
                    .iter()
                    .map(|t| (t.value.clone(), f64::from(t.percent)))
                    .collect(),
                counts: HashMap::new(),
            })
            .collect();
        if spreads.is_empty() {
            return None;
        }
        let weight_total = spreads.iter().map(|s| s.weight).sum();
        Some(SpreadScorer {
            spreads,
            weight_total,
            desired_count,
        })
    }

    /// Counts an allocation of the group on `node` in or out.
    pub fn observe(&mut self, node: &Node, added: bool) {
        for s in &mut self.spreads {
            if let Some(value) = s.target.resolve(node) {
                let count = s.counts.entry(value.to_string()).or_insert(0);
                *count = if added {
                    *count + 1
                } else {
                    count.saturating_sub(1)
                };
            }
        }
    }

    /// Returns the weighted boost in -1..=1 for placing one more allocation on `node`.
    pub fn score(&self, node: &Node) -> f64 {
        let mut total = 0.0;
        for s in &self.spreads {
            let boost = match s.target.resolve(node) {
                // The node cannot contribute to the spread at all.
                None => -1.0,
                Some(value) => {
                    let used = f64::from(s.counts.get(value).copied().unwrap_or(0));
                    if s.percents.is_empty() {
                        even_boost(&s.counts, used)
                    } else {
                        let percent = s.percents.get(value).or_else(|| s.percents.get("*"));
                        let desired =
                            percent.copied().unwrap_or(0.0) / 100.0 * f64::from(self.desired_count);
                        if desired <= 0.0 {
                            -1.0
                        } else {
                            ((desired - used) / desired).clamp(-1.0, 1.0)
                        }
                    }
                }
            };
            total += boost * s.weight / self.weight_total;
        }
        total
    }
}

/// Even spread: values below the most used one get a boost proportional to the gap; the most
/// used values get the full penalty. Nothing placed yet means no preference.
fn even_boost(counts: &HashMap<String, u32>, used: f64) -> f64 {
    let max = f64::from(counts.values().copied().max().unwrap_or(0));
    if max == 0.0 {
        return 0.0;
    }
    if used < max {
        (max - used) / max
    } else {
        -1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::SpreadTarget;
    use crate::testing::node;

    #[test]
    fn even_spread_prefers_less_used_values() {
        let spread = Spread {
            attribute: "${node.datacenter}".into(),
            weight: 100,
            targets: vec![],
        };
        let mut scorer = SpreadScorer::new([spread].iter(), 4).unwrap();
        let a = node("a", 1000, 1000);
        let mut b = node("b", 1000, 1000);
        b.datacenter = "dc2".into();
        assert_eq!(scorer.score(&a), 0.0);
        scorer.observe(&a, true);
        assert!(scorer.score(&b) > scorer.score(&a));
        scorer.observe(&b, true);
        scorer.observe(&b, true);
        assert!(scorer.score(&a) > scorer.score(&b));
    }

    #[test]
    fn targets_follow_percentages() {
        let spread = Spread {
            attribute: "${node.datacenter}".into(),
            weight: 100,
            targets: vec![
                SpreadTarget {
                    value: "dc1".into(),
                    percent: 75,
                },
                SpreadTarget {
                    value: "dc2".into(),
                    percent: 25,
                },
            ],
        };
        let mut scorer = SpreadScorer::new([spread].iter(), 4).unwrap();
        let a = node("a", 1000, 1000);
        let mut b = node("b", 1000, 1000);
        b.datacenter = "dc2".into();
        let mut c = node("c", 1000, 1000);
        c.datacenter = "dc3".into();
        assert_eq!(scorer.score(&c), -1.0);
        scorer.observe(&b, true);
        assert!(scorer.score(&a) > scorer.score(&b));
        assert_eq!(scorer.score(&b), 0.0);
    }
}
