//! Durable runs over HTTP: starting one (shared by `POST /agents/{id}/runs` and A2A
//! messages), the task that drives it, and who may see it.

mod driver;

use std::time::Duration;

use par_core::ErrorCode;
use par_runs::{NewRun, RunRecord, Runs};

use crate::accounting::CallRecord;
use crate::error::ApiError;
use crate::routes::call_input::CallInput;
use crate::state::AppState;

/// How a run is asked for besides its body.
#[derive(Debug, Default, Clone)]
pub(crate) struct RunOptions {
    pub idempotency_key: Option<String>,
    /// The run's own deadline; `--run-timeout` caps it.
    pub timeout: Option<Duration>,
}

/// The run store, or 404 when durable runs are off.
pub(crate) fn store(state: &AppState) -> Result<&Runs, ApiError> {
    state
        .runs
        .as_ref()
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "durable runs are off"))
}

/// Whom a run belongs to: the caller's subject (`api-key:{name}` for keys), or
/// `anonymous` with auth off.
pub(crate) fn owner_of(caller: &Option<par_auth::Caller>) -> String {
    caller
        .as_ref()
        .map_or_else(|| "anonymous".to_string(), |c| c.subject.clone())
}

/// Admins see everyone's runs; with auth off everyone is one anonymous admin.
pub(crate) fn is_admin(state: &AppState, caller: &Option<par_auth::Caller>) -> bool {
    match (&state.access, caller) {
        (Some(access), Some(caller)) => access.policy.is_admin(&caller.roles),
        _ => true,
    }
}

/// The run `run_id` if `caller` may see it (its creator, or an admin); 404 otherwise, the
/// same answer as for a run that does not exist.
pub(crate) fn visible_run(
    state: &AppState,
    caller: &Option<par_auth::Caller>,
    run_id: &str,
) -> Result<RunRecord, ApiError> {
    let runs = store(state)?;
    let not_found = || ApiError::new(ErrorCode::NotFound, format!("no run '{run_id}'"));
    let run = runs
        .get(run_id)
        .map_err(store_error)?
        .ok_or_else(not_found)?;
    if run.owner == owner_of(caller) || is_admin(state, caller) {
        Ok(run)
    } else {
        Err(not_found())
    }
}

pub(crate) fn store_error(error: par_runs::StoreError) -> ApiError {
    tracing::error!(error = %error, "run store");
    ApiError::new(ErrorCode::Internal, "the run store failed")
}

/// The digest of what a run is asked: the agent and the body as the handler will get it.
fn request_digest(agent: &str, body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(agent.as_bytes());
    hash.update([0]);
    hash.update(body);
    hex::encode(hash.finalize())
}

/// Creates the run and starts driving it, or returns the run this caller already made
/// with the same idempotency key (`false`: nothing new started).
pub(crate) fn start_run(
    state: &AppState,
    input: CallInput,
    id: &str,
    record: CallRecord,
    options: RunOptions,
) -> Result<(RunRecord, bool), ApiError> {
    let runs = store(state)?;
    if let Err(error) = state.runtime.check_body(&input.target, &input.body) {
        record.finish(error.code.as_str(), 0);
        return Err(ApiError::from_invoke(error));
    }
    let new = NewRun {
        agent: id.to_string(),
        owner: owner_of(&input.caller),
        idempotency_key: options.idempotency_key,
        request_digest: request_digest(id, &input.body),
    };
    let (run, handle) = match runs.create(&new) {
        Ok(created) => created,
        Err(par_runs::StoreError::KeyReused { run_id }) => {
            record.discard();
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "the Idempotency-Key was used for a different request (run {run_id}); \
                     use a new key"
                ),
            ));
        }
        Err(error) => {
            record.finish(ErrorCode::Internal.as_str(), 0);
            return Err(store_error(error));
        }
    };
    let Some(handle) = handle else {
        record.discard();
        return Ok((run, false));
    };
    let timeout = options
        .timeout
        .map_or(state.run_timeout, |t| t.min(state.run_timeout));
    driver::spawn(
        state.clone(),
        handle,
        record,
        id.to_string(),
        input.body,
        timeout,
    );
    Ok((run, true))
}
