//! Ranking: one scorer per concern; a node's final score is the mean of the scores that apply.

mod affinity;
mod anti_affinity;
mod binpack;
mod preemption;
mod spread;

pub use affinity::AffinityScorer;
pub use anti_affinity::{job_anti_affinity, reschedule_penalty};
pub use binpack::fit_score;
pub use preemption::preemption_score;
pub use spread::SpreadScorer;

/// Collects the scores that apply to one node and normalises them to their mean, like Nomad's
/// score normalisation: a scorer that has nothing to say appends nothing.
#[derive(Default, Clone, Copy, Debug)]
pub struct ScoreSheet {
    sum: f64,
    count: u32,
}

impl ScoreSheet {
    pub fn add(&mut self, score: f64) {
        self.sum += score;
        self.count += 1;
    }

    pub fn add_opt(&mut self, score: Option<f64>) {
        if let Some(s) = score {
            self.add(s);
        }
    }

    /// Returns the mean, 0 when nothing was scored.
    pub fn normalized(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / f64::from(self.count)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_of_applied_scores() {
        let mut s = ScoreSheet::default();
        assert_eq!(s.normalized(), 0.0);
        s.add(1.0);
        s.add_opt(None);
        s.add_opt(Some(-0.5));
        assert_eq!(s.normalized(), 0.25);
    }
}
