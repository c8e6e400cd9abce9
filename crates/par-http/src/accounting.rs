//! The HTTP side of a call's record: the request id, the incoming `traceparent` and the
//! authenticated caller are fixed when the request arrives; `par-core`'s [`CoreRecord`]
//! counts, logs and meters the call when it ends, as it does for calls agents make to
//! each other.

use std::ops::{Deref, DerefMut};

use par_core::{CallMeta, CallRecord as CoreRecord, CallerIdentity};

use crate::state::AppState;

/// Outcome recorded when the client went away before the call ended.
pub(crate) const CLIENT_GONE: &str = "client_closed";

/// Started when a call arrives, finished exactly once with its outcome (or recorded as
/// `client_closed` if the request is dropped first).
pub(crate) struct CallRecord {
    core: CoreRecord,
    /// Files uploaded with the call; removed when the record is finished (call over).
    pub uploads: Option<tempfile::TempDir>,
}

impl CallRecord {
    pub(crate) fn start(
        state: &AppState,
        requested_id: &str,
        request_id: &str,
        traceparent: Option<&str>,
    ) -> CallRecord {
        let meta = CallMeta {
            request_id: request_id.to_string(),
            trace: par_core::trace::TraceContext::from_traceparent(traceparent),
            ..CallMeta::default()
        };
        CallRecord {
            core: CoreRecord::start_labelled(
                state.runtime.metering(),
                requested_id,
                state.runtime.is_public(requested_id),
                meta,
                CLIENT_GONE,
            ),
            uploads: None,
        }
    }

    /// Names the authenticated caller in the call's usage record.
    pub(crate) fn set_caller(&mut self, caller: Option<&par_auth::Caller>) {
        if let Some(caller) = caller {
            self.core.meta.caller = CallerIdentity {
                subject: Some(caller.subject.clone()),
                client_id: caller.client_id.clone(),
                tenant: caller.tenant.clone(),
            };
        }
    }

    /// Drops the record unwritten (see [`CoreRecord::discard`]).
    pub(crate) fn discard(self) {
        self.core.discard();
    }

    /// Writes the record, then removes the call's uploads.
    pub(crate) fn finish(self, code: &str, bytes_out: u64) {
        self.core.finish(code, bytes_out);
    }
}

impl Deref for CallRecord {
    type Target = CoreRecord;

    fn deref(&self) -> &CoreRecord {
        &self.core
    }
}

impl DerefMut for CallRecord {
    fn deref_mut(&mut self) -> &mut CoreRecord {
        &mut self.core
    }
}
