//! Calls a handler makes to other agents (`par_runtime.call` / `acall`).
//!
//! The worker sends an OUTCALL frame whose call id is the call the handler runs for and
//! whose payload names the target; the host routes it and answers with OUT_RESULT or
//! OUT_ERROR under the worker's own reference for that outcall. The host never waits on
//! the answer being read: a worker that stopped listening only loses its own replies.

use std::time::Duration;

use bytes::Bytes;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::protocol::{self, to_worker};

/// One agent-to-agent call requested by a handler.
#[derive(Debug)]
pub struct Outcall {
    /// The agent id (or `id@version`) to call.
    pub agent: String,
    /// The payload as the handler gave it (JSON).
    pub payload: Bytes,
    /// The handler's own limit, if it gave one.
    pub timeout: Option<Duration>,
    pub responder: Responder,
}

/// Answers one outcall; dropping it unanswered tells the handler the call was abandoned.
#[derive(Debug)]
pub struct Responder {
    reference: u64,
    outbox: Option<mpsc::Sender<Bytes>>,
}

#[derive(serde::Deserialize)]
struct Request<'a> {
    #[serde(rename = "ref")]
    reference: u64,
    #[serde(borrow)]
    agent: &'a str,
    #[serde(borrow)]
    p: &'a RawValue,
    #[serde(default)]
    timeout: Option<f64>,
}

impl Outcall {
    /// Reads an OUTCALL payload. A malformed one is answered at once (when it at least
    /// names a reference) so the handler does not wait forever.
    pub(crate) fn parse(payload: &[u8], outbox: &mpsc::Sender<Bytes>) -> Option<Outcall> {
        let request: Request = match serde_json::from_slice(payload) {
            Ok(request) => request,
            Err(e) => {
                if let Some(reference) = reference_of(payload) {
                    Responder::new(reference, outbox.clone())
                        .refuse("bad_request", &format!("malformed agent call: {e}"));
                }
                return None;
            }
        };
        let timeout = request
            .timeout
            .filter(|t| t.is_finite() && *t > 0.0)
            .map(|t| Duration::from_secs_f64(t.min(1e9)));
        Some(Outcall {
            agent: request.agent.to_string(),
            payload: Bytes::copy_from_slice(request.p.get().as_bytes()),
            timeout,
            responder: Responder::new(request.reference, outbox.clone()),
        })
    }
}

fn reference_of(payload: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct OnlyRef {
        #[serde(rename = "ref")]
        reference: u64,
    }
    serde_json::from_slice::<OnlyRef>(payload)
        .ok()
        .map(|r| r.reference)
}

impl Responder {
    fn new(reference: u64, outbox: mpsc::Sender<Bytes>) -> Self {
        Responder {
            reference,
            outbox: Some(outbox),
        }
    }

    /// The called agent's result (JSON).
    pub fn succeed(mut self, result: &[u8]) {
        self.send(protocol::encode(
            to_worker::OUT_RESULT,
            self.reference,
            &[result],
        ));
    }

    /// The call failed with a contract error code; the handler sees an exception.
    pub fn refuse(mut self, code: &str, message: &str) {
        let body = serde_json::json!({ "code": code, "message": message }).to_string();
        self.send(protocol::encode(
            to_worker::OUT_ERROR,
            self.reference,
            &[body.as_bytes()],
        ));
    }

    fn send(&mut self, frame: Bytes) {
        if let Some(outbox) = self.outbox.take() {
            // A full outbox means the worker stopped reading; it is being torn down.
            let _ = outbox.try_send(frame);
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if self.outbox.is_some() {
            let reference = self.reference;
            let body = br#"{"code":"internal","message":"the agent call was abandoned"}"#;
            self.send(protocol::encode(to_worker::OUT_ERROR, reference, &[body]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(rx: &mut mpsc::Receiver<Bytes>) -> protocol::Frame {
        let bytes = rx.recv().await.expect("an answer");
        protocol::read_frame(&mut &bytes[..], 1 << 20)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn parses_a_request_and_answers_under_its_reference() {
        let (tx, mut rx) = mpsc::channel(4);
        let payload = br#"{"ref":7,"agent":"b","p":{"x":[1,2]},"timeout":1.5}"#;
        let outcall = Outcall::parse(payload, &tx).unwrap();
        assert_eq!(outcall.agent, "b");
        assert_eq!(&outcall.payload[..], br#"{"x":[1,2]}"#);
        assert_eq!(outcall.timeout, Some(Duration::from_millis(1500)));
        outcall.responder.succeed(b"{\"ok\":1}");
        let frame = answer(&mut rx).await;
        assert_eq!((frame.kind, frame.call_id), (to_worker::OUT_RESULT, 7));
        assert_eq!(&frame.payload[..], b"{\"ok\":1}");
    }

    #[tokio::test]
    async fn malformed_requests_are_refused_and_dropped_ones_abandoned() {
        let (tx, mut rx) = mpsc::channel(4);
        assert!(Outcall::parse(br#"{"ref":3,"agent":5}"#, &tx).is_none());
        let frame = answer(&mut rx).await;
        assert_eq!((frame.kind, frame.call_id), (to_worker::OUT_ERROR, 3));
        assert!(String::from_utf8_lossy(&frame.payload).contains("bad_request"));

        let outcall = Outcall::parse(br#"{"ref":4,"agent":"a","p":{}}"#, &tx).unwrap();
        assert_eq!(outcall.timeout, None);
        drop(outcall);
        let frame = answer(&mut rx).await;
        assert_eq!((frame.kind, frame.call_id), (to_worker::OUT_ERROR, 4));
        assert!(String::from_utf8_lossy(&frame.payload).contains("abandoned"));
    }
}
