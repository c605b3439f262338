//! `/v1/operator/scheduler/configuration`: read and replace the scheduler configuration.

use engine::api::ReadView;
use engine::Cluster;
use sched::{SchedulerAlgorithm, SchedulerConfig};
use serde::Deserialize;
use serde_json::{json, Value};

use super::Ctx;
use crate::http::body::decode_json;
use crate::http::reply::{write_response, HttpError, HttpResponse};

/// Nomad's `PreemptionConfig`, as submitted.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct PreemptionBody {
    system_scheduler_enabled: Option<bool>,
    sys_batch_scheduler_enabled: Option<bool>,
    batch_scheduler_enabled: Option<bool>,
    service_scheduler_enabled: Option<bool>,
}

/// Nomad's `SchedulerConfiguration`, as submitted. Absent fields keep Nomad's defaults.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct SchedulerBody {
    scheduler_algorithm: Option<String>,
    preemption_config: Option<PreemptionBody>,
    memory_oversubscription_enabled: bool,
    reject_job_registration: bool,
    pause_eval_broker: bool,
}

fn encode(config: &SchedulerConfig, create_index: u64, modify_index: u64) -> Value {
    json!({
        "SchedulerAlgorithm": match config.algorithm {
            SchedulerAlgorithm::Binpack => "binpack",
            SchedulerAlgorithm::Spread => "spread",
        },
        "PreemptionConfig": {
            "SystemSchedulerEnabled": config.preempt_system,
            "SysBatchSchedulerEnabled": config.preempt_sysbatch,
            "BatchSchedulerEnabled": config.preempt_batch,
            "ServiceSchedulerEnabled": config.preempt_service,
        },
        "MemoryOversubscriptionEnabled": config.memory_oversubscription_enabled,
        "RejectJobRegistration": config.reject_job_registration,
        "PauseEvalBroker": config.pause_eval_broker,
        "CreateIndex": create_index,
        "ModifyIndex": modify_index,
    })
}

/// `GET /v1/operator/scheduler/configuration`
pub(crate) fn get_scheduler<C: Cluster>(ctx: &Ctx<'_, C>) -> Result<HttpResponse, HttpError> {
    let view = ctx.cluster.view();
    let index = view.scheduler_config_index();
    let value = json!({ "SchedulerConfig": encode(view.scheduler_config(), index, index) });
    let mut value = value;
    ctx.meta(index).embed(&mut value);
    Ok(ctx.read_reply(&value, index))
}

/// `PUT|POST /v1/operator/scheduler/configuration[?cas=N]`
pub(crate) async fn set_scheduler<C: Cluster>(
    ctx: &mut Ctx<'_, C>,
) -> Result<HttpResponse, HttpError> {
    let cas = match ctx.query.get("cas") {
        None | Some("") => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            HttpError::bad_request(format!("Error parsing cas value: {v:?} is not a number"))
        })?),
    };
    let body = ctx.body(ctx.limits.body_bytes_max).await?;
    let body: SchedulerBody = decode_json(&body)?;
    let algorithm = match body.scheduler_algorithm.as_deref() {
        None | Some("") | Some("binpack") => SchedulerAlgorithm::Binpack,
        Some("spread") => SchedulerAlgorithm::Spread,
        Some(other) => {
            return Err(HttpError::bad_request(format!(
                "invalid scheduler algorithm: {other:?}; SchedulerAlgorithm must be \"binpack\" or \"spread\""
            )))
        }
    };
    let defaults = SchedulerConfig::default();
    let p = body.preemption_config.unwrap_or_default();
    let config = SchedulerConfig {
        algorithm,
        memory_oversubscription_enabled: body.memory_oversubscription_enabled,
        reject_job_registration: body.reject_job_registration,
        pause_eval_broker: body.pause_eval_broker,
        preempt_system: p
            .system_scheduler_enabled
            .unwrap_or(defaults.preempt_system),
        preempt_sysbatch: p
            .sys_batch_scheduler_enabled
            .unwrap_or(defaults.preempt_sysbatch),
        preempt_batch: p.batch_scheduler_enabled.unwrap_or(defaults.preempt_batch),
        preempt_service: p
            .service_scheduler_enabled
            .unwrap_or(defaults.preempt_service),
    };
    let (updated, index) = ctx.cluster.set_scheduler_config(config, cas).await?;
    let value = json!({ "Updated": updated, "Index": index });
    Ok(write_response(&value, ctx.query.pretty, index))
}
