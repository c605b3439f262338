//! The job list stub (`GET /v1/jobs`) as typed structs: a list of ten thousand jobs is encoded
//! straight to bytes instead of through a `serde_json::Value` tree per job, which the profile
//! showed to be most of the cost. The shape is the one `jobspec::job_list_stub` builds.

use std::collections::BTreeMap;

use engine::api::{JobSummary, TaskGroupSummary};
use sched::structs::Job;
use serde::Serialize;
use serde_json::Value;

/// One entry of `GET /v1/jobs`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobListStub<'a> {
    #[serde(rename = "ID")]
    pub id: &'a str,
    #[serde(rename = "ParentID")]
    pub parent_id: &'a str,
    pub name: &'a str,
    pub namespace: &'a str,
    pub datacenters: &'a [String],
    pub node_pool: &'a str,
    pub multiregion: Value,
    #[serde(rename = "Type")]
    pub job_type: &'a str,
    pub priority: u16,
    pub periodic: bool,
    pub parameterized_job: bool,
    pub stop: bool,
    pub status: &'a str,
    pub status_description: &'a str,
    pub job_summary: Option<SummaryOut<'a>>,
    pub create_index: u64,
    pub modify_index: u64,
    pub job_modify_index: u64,
    pub submit_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<&'a BTreeMap<String, String>>,
}

/// A job's summary inside its stub (Nomad's `JobSummary`).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SummaryOut<'a> {
    #[serde(rename = "JobID")]
    pub job_id: &'a str,
    pub namespace: &'a str,
    pub summary: BTreeMap<&'a str, CountsOut>,
    pub children: ChildrenOut,
    pub create_index: u64,
    pub modify_index: u64,
}

/// Allocation counts of one task group.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CountsOut {
    pub queued: u64,
    pub complete: u64,
    pub failed: u64,
    pub running: u64,
    pub starting: u64,
    pub lost: u64,
    pub unknown: u64,
}

/// Nomad always allocates the children summary, so it is never null.
#[derive(Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ChildrenOut {
    pub pending: u64,
    pub running: u64,
    pub dead: u64,
}

impl From<&TaskGroupSummary> for CountsOut {
    fn from(c: &TaskGroupSummary) -> Self {
        CountsOut {
            queued: c.queued,
            complete: c.complete,
            failed: c.failed,
            running: c.running,
            starting: c.starting,
            lost: c.lost,
            unknown: c.unknown,
        }
    }
}

/// Builds the stub of `job` with its summary; `with_meta` adds a non-empty `Meta`.
pub fn job_list_stub_typed<'a>(
    job: &'a Job,
    summary: Option<&'a JobSummary>,
    with_meta: bool,
) -> JobListStub<'a> {
    let (multiregion, periodic, parameterized_job) = crate::jobspec::list_stub_extras(job);
    JobListStub {
        id: &job.id,
        parent_id: &job.parent_id,
        name: &job.name,
        namespace: &job.namespace,
        datacenters: &job.datacenters,
        node_pool: &job.node_pool,
        multiregion,
        job_type: job.job_type.as_str(),
        priority: job.priority,
        periodic,
        parameterized_job,
        stop: job.stop,
        status: job.status.as_str(),
        status_description: &job.status_description,
        job_summary: summary.map(|s| SummaryOut {
            job_id: &s.job_id,
            namespace: &s.namespace,
            summary: s
                .summary
                .iter()
                .map(|(tg, c)| (tg.as_str(), c.into()))
                .collect(),
            children: ChildrenOut::default(),
            create_index: s.create_index,
            modify_index: s.modify_index,
        }),
        create_index: job.create_index,
        modify_index: job.modify_index,
        job_modify_index: job.job_modify_index,
        submit_time: job.submit_time_ns,
        meta: (with_meta && !job.meta.is_empty()).then_some(&job.meta),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::testing::sample_job;

    #[test]
    fn the_typed_stub_encodes_exactly_like_the_value_stub() {
        let mut job = sample_job("web", 3);
        job.meta.insert("team".into(), "core".into());
        let mut summary = JobSummary {
            job_id: job.id.clone(),
            namespace: job.namespace.clone(),
            create_index: 4,
            modify_index: 9,
            ..JobSummary::default()
        };
        summary.summary.insert(
            "g".into(),
            TaskGroupSummary {
                queued: 1,
                running: 2,
                lost: 3,
                ..TaskGroupSummary::default()
            },
        );
        for (with_summary, with_meta) in [(true, true), (true, false), (false, false)] {
            let summary_value = if with_summary {
                crate::http::encode::job_summary(&summary)
            } else {
                Value::Null
            };
            let mut expected = crate::jobspec::job_list_stub(&job, summary_value);
            if with_meta {
                expected["Meta"] = crate::http::encode::string_map(&job.meta);
            }
            let typed = job_list_stub_typed(&job, with_summary.then_some(&summary), with_meta);
            assert_eq!(serde_json::to_value(&typed).unwrap(), expected);
        }
    }
}
