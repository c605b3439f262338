//! Affinities: weighted soft preferences for node attributes.

use crate::error::SchedError;
use crate::feasible::ConstraintChecker;
use crate::structs::{Affinity, Node};

/// Scores a node by the weights of the affinities it matches over the sum of all weights.
pub struct AffinityScorer {
    affinities: Vec<(ConstraintChecker, f64)>,
    weight_total: f64,
}

impl AffinityScorer {
    /// Builds the scorer from job, group and task affinities. Returns `None` when there are none.
    pub fn new<'a>(
        affinities: impl Iterator<Item = &'a Affinity>,
        job_id: &str,
    ) -> Result<Option<Self>, SchedError> {
        let mut list = Vec::new();
        for a in affinities {
            let checker =
                ConstraintChecker::build(&a.l_target, &a.operand, &a.r_target, job_id, "affinity")?;
            list.push((checker, f64::from(a.weight)));
        }
        let weight_total: f64 = list.iter().map(|(_, w)| w.abs()).sum();
        if list.is_empty() || weight_total == 0.0 {
            return Ok(None);
        }
        Ok(Some(AffinityScorer {
            affinities: list,
            weight_total,
        }))
    }

    /// Returns the score in -1..=1, or `None` when the node matches no affinity.
    pub fn score(&self, node: &Node) -> Option<f64> {
        let matched: f64 = self
            .affinities
            .iter()
            .filter(|(c, _)| c.feasible(node))
            .map(|(_, w)| *w)
            .sum();
        (matched != 0.0).then_some(matched / self.weight_total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::node;

    #[test]
    fn weights() {
        let aff = |l: &str, r: &str, w: i8| Affinity {
            l_target: l.into(),
            r_target: r.into(),
            operand: "=".into(),
            weight: w,
        };
        let list = [
            aff("${node.datacenter}", "dc1", 50),
            aff("${meta.ssd}", "true", -50),
        ];
        let scorer = AffinityScorer::new(list.iter(), "j").unwrap().unwrap();
        let mut n = node("n1", 1000, 1000);
        assert_eq!(scorer.score(&n), Some(0.5));
        n.meta.insert("ssd".into(), "true".into());
        assert_eq!(scorer.score(&n), None);
        n.datacenter = "dc2".into();
        assert_eq!(scorer.score(&n), Some(-0.5));
    }
}
