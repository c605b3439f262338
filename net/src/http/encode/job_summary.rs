//! Nomad's `JobSummary`: allocation counts of a job by task group.

use engine::api::JobSummary;
use serde_json::{json, Map, Value};

/// Renders a `JobSummary`.
pub fn job_summary(s: &JobSummary) -> Value {
    let groups: Map<String, Value> = s
        .summary
        .iter()
        .map(|(tg, c)| {
            let counts = json!({
                "Queued": c.queued,
                "Complete": c.complete,
                "Failed": c.failed,
                "Running": c.running,
                "Starting": c.starting,
                "Lost": c.lost,
                "Unknown": c.unknown,
            });
            (tg.clone(), counts)
        })
        .collect();
    json!({
        "JobID": s.job_id,
        "Namespace": s.namespace,
        "Summary": groups,
        // Nomad always allocates the children summary, so it is never null.
        "Children": {"Pending": 0, "Running": 0, "Dead": 0},
        "CreateIndex": s.create_index,
        "ModifyIndex": s.modify_index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::api::TaskGroupSummary;

    #[test]
    fn summary_fields() {
        let mut s = JobSummary {
            job_id: "web".into(),
            namespace: "default".into(),
            ..Default::default()
        };
        s.summary.insert(
            "api".into(),
            TaskGroupSummary {
                running: 2,
                queued: 1,
                ..Default::default()
            },
        );
        let v = job_summary(&s);
        assert_eq!(v["JobID"], "web");
        assert_eq!(v["Summary"]["api"]["Running"], 2);
        assert_eq!(v["Summary"]["api"]["Queued"], 1);
        assert_eq!(v["Children"]["Dead"], 0);
    }
}
