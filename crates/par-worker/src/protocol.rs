//! The framed protocol between the runtime and a Python worker.
//!
//! A frame is a 4-byte big-endian length (of everything after it), a 1-byte kind, an
//! 8-byte big-endian call id and the payload. Lengths are checked against a maximum so a
//! confused or hostile worker cannot make the host allocate without bound.

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes of kind + call id that follow the length prefix.
const HEAD: usize = 9;

/// Kinds the host sends.
pub mod to_worker {
    pub const CALL: u8 = 1;
    pub const CANCEL: u8 = 2;
    pub const SHUTDOWN: u8 = 3;
    /// The result of an agent-to-agent call; the call id is the worker's reference.
    pub const OUT_RESULT: u8 = 4;
    /// An agent-to-agent call failed: `{"code", "message"}`.
    pub const OUT_ERROR: u8 = 5;
    /// Asks for a PONG: the health check.
    pub const PING: u8 = 6;
    /// To a zygote: fork a worker that connects to the socket path in the payload.
    pub const FORK: u8 = 7;
}

/// Kinds the worker sends.
pub mod from_worker {
    pub const READY: u8 = 10;
    pub const FATAL: u8 = 11;
    pub const RESULT: u8 = 12;
    pub const ERROR: u8 = 13;
    pub const ITEM: u8 = 14;
    pub const END: u8 = 15;
    /// Usage the handler reported (`par_runtime.report_usage`): a JSON object.
    pub const USAGE: u8 = 16;
    /// The handler calls another agent: `{"ref", "agent", "p", "timeout"}`.
    pub const OUTCALL: u8 = 17;
    /// The answer to PING.
    pub const PONG: u8 = 18;
    /// A zygote forked the worker asked for: `{"pid"}` (in the jail's PID namespace).
    pub const FORKED: u8 = 19;
}

/// What a CALL frame carries: `{"rid": "<request id>", "tp": "<traceparent>", "p": <payload>}`.
/// The payload is spliced in as given (already-validated JSON), never re-serialised.
#[derive(Debug, Clone, Copy)]
pub struct CallRequest<'a> {
    pub request_id: &'a str,
    /// A W3C `traceparent` (hex and dashes only), or empty.
    pub traceparent: &'a str,
    /// The handler's one argument, as JSON.
    pub payload: &'a [u8],
}

impl CallRequest<'_> {
    /// `{"rid":…,"tp":…,"p":` — everything before the payload.
    pub fn head(&self) -> String {
        let rid = serde_json::to_string(self.request_id).expect("a string serialises");
        let tp = serde_json::to_string(self.traceparent).expect("a string serialises");
        format!("{{\"rid\":{rid},\"tp\":{tp},\"p\":")
    }

    /// The frame payload in parts: head, payload, the closing brace.
    pub fn encode(&self, call_id: u64) -> Bytes {
        let head = self.head();
        encode(
            to_worker::CALL,
            call_id,
            &[head.as_bytes(), self.payload, b"}"],
        )
    }
}

#[derive(Debug)]
pub struct Frame {
    pub kind: u8,
    pub call_id: u64,
    pub payload: Bytes,
}

/// Encodes one frame; the payload is given in parts so callers can splice JSON without
/// copying it into an intermediate buffer first.
pub fn encode(kind: u8, call_id: u64, parts: &[&[u8]]) -> Bytes {
    let body: usize = parts.iter().map(|p| p.len()).sum();
    let mut buf = BytesMut::with_capacity(4 + HEAD + body);
    buf.put_u32((HEAD + body) as u32);
    buf.put_u8(kind);
    buf.put_u64(call_id);
    for part in parts {
        buf.put_slice(part);
    }
    buf.freeze()
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("worker channel closed")]
    Closed,
    #[error("worker sent a frame of {len} bytes, over the limit of {limit}")]
    TooLarge {
        len: usize,
        limit: usize,
        /// The call the frame was for, so that call can fail with a clear reason.
        call_id: u64,
    },
    #[error("worker sent a malformed frame")]
    Malformed,
    #[error("worker channel i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one frame, or `Closed` on a clean end of stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_frame: usize,
) -> Result<Frame, FrameError> {
    let len = match reader.read_u32().await {
        Ok(len) => len as usize,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    };
    if len < HEAD {
        return Err(FrameError::Malformed);
    }
    let kind = reader.read_u8().await?;
    let call_id = reader.read_u64().await?;
    if len > max_frame {
        return Err(FrameError::TooLarge {
            len,
            limit: max_frame,
            call_id,
        });
    }
    let mut payload = BytesMut::zeroed(len - HEAD);
    reader.read_exact(&mut payload).await?;
    Ok(Frame {
        kind,
        call_id,
        payload: payload.freeze(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trips_a_frame() {
        let bytes = encode(to_worker::CALL, 7, &[b"{\"p\":", b"1}"]);
        let frame = read_frame(&mut &bytes[..], 1024).await.unwrap();
        assert_eq!(frame.kind, to_worker::CALL);
        assert_eq!(frame.call_id, 7);
        assert_eq!(&frame.payload[..], b"{\"p\":1}");
    }

    #[tokio::test]
    async fn a_call_request_is_one_json_object() {
        let request = CallRequest {
            request_id: "r\"1",
            traceparent: "00-ab-cd-01",
            payload: br#"{"a":[1,2]}"#,
        };
        let bytes = request.encode(3);
        let frame = read_frame(&mut &bytes[..], 1024).await.unwrap();
        let value: serde_json::Value = serde_json::from_slice(&frame.payload).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"rid": "r\"1", "tp": "00-ab-cd-01", "p": {"a": [1, 2]}})
        );
    }

    #[tokio::test]
    async fn refuses_oversized_and_short_frames() {
        let bytes = encode(from_worker::RESULT, 1, &[&[0u8; 100]]);
        assert!(matches!(
            read_frame(&mut &bytes[..], 50).await,
            Err(FrameError::TooLarge {
                len: 109,
                limit: 50,
                call_id: 1
            })
        ));
        let short = [0u8, 0, 0, 3, 1, 2, 3];
        assert!(matches!(
            read_frame(&mut &short[..], 50).await,
            Err(FrameError::Malformed)
        ));
    }

    #[tokio::test]
    async fn clean_eof_is_closed() {
        let empty: &[u8] = &[];
        assert!(matches!(
            read_frame(&mut &empty[..], 50).await,
            Err(FrameError::Closed)
        ));
    }
}
