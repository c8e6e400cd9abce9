//! Reading one HTTP/1 head (request or response) with a size bound, and the parsed forms
//! the proxy uses. Bytes read past the head are kept: they belong to the body or tunnel.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Most header lines a head may have.
const MAX_HEADERS: usize = 100;

/// Why no head could be read.
#[derive(Debug)]
pub(crate) enum HeadError {
    /// EOF before a complete head.
    Closed,
    TooLarge,
    Malformed(String),
    Io(std::io::Error),
}

/// Raw bytes holding one complete head followed by whatever else was read.
pub(crate) struct RawHead {
    pub(crate) buf: Vec<u8>,
    pub(crate) len: usize,
}

impl RawHead {
    /// Bytes after the head.
    pub(crate) fn rest(&self) -> &[u8] {
        &self.buf[self.len..]
    }
}

type Probe = fn(&[u8]) -> Result<httparse::Status<usize>, httparse::Error>;

fn probe_request(buf: &[u8]) -> Result<httparse::Status<usize>, httparse::Error> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    httparse::Request::new(&mut headers).parse(buf)
}

fn probe_response(buf: &[u8]) -> Result<httparse::Status<usize>, httparse::Error> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    httparse::Response::new(&mut headers).parse(buf)
}

/// Reads until a complete request head, at most `max` bytes of head. `on_read` sees the
/// size of every read (for byte counting).
pub(crate) async fn read_request<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<RawHead, HeadError> {
    read_head(r, max, Vec::new(), probe_request, &mut |_| {}).await
}

/// Reads a response head; `buf` holds bytes already read from the same stream.
pub(crate) async fn read_response<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
    buf: Vec<u8>,
    on_read: &mut (dyn FnMut(usize) + Send),
) -> Result<RawHead, HeadError> {
    read_head(r, max, buf, probe_response, on_read).await
}

async fn read_head<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
    mut buf: Vec<u8>,
    probe: Probe,
    on_read: &mut (dyn FnMut(usize) + Send),
) -> Result<RawHead, HeadError> {
    let mut chunk = vec![0u8; 8192];
    loop {
        if !buf.is_empty() {
            match probe(&buf) {
                Ok(httparse::Status::Complete(len)) if len <= max => {
                    return Ok(RawHead { buf, len })
                }
                Ok(httparse::Status::Complete(_)) => return Err(HeadError::TooLarge),
                Ok(httparse::Status::Partial) if buf.len() > max => {
                    return Err(HeadError::TooLarge)
                }
                Ok(httparse::Status::Partial) => {}
                Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
                Err(e) => return Err(HeadError::Malformed(e.to_string())),
            }
        }
        let n = r.read(&mut chunk).await.map_err(HeadError::Io)?;
        if n == 0 {
            return Err(HeadError::Closed);
        }
        on_read(n);
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A header as received: name and raw value bytes.
pub(crate) type Header = (String, Vec<u8>);

/// A parsed request head.
pub(crate) struct RequestHead {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) minor_version: u8,
    pub(crate) headers: Vec<Header>,
}

/// A parsed response head.
pub(crate) struct ResponseHead {
    pub(crate) minor_version: u8,
    pub(crate) code: u16,
    pub(crate) reason: Vec<u8>,
    pub(crate) headers: Vec<Header>,
}

fn collect(headers: &[httparse::Header<'_>]) -> Vec<Header> {
    headers
        .iter()
        .map(|h| (h.name.to_owned(), h.value.to_vec()))
        .collect()
}

impl RequestHead {
    pub(crate) fn parse(raw: &RawHead) -> RequestHead {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        // The same bytes parsed completely in read_head.
        let _ = req.parse(&raw.buf[..raw.len]);
        RequestHead {
            method: req.method.unwrap_or_default().to_owned(),
            target: req.path.unwrap_or_default().to_owned(),
            minor_version: req.version.unwrap_or(1),
            headers: collect(req.headers),
        }
    }
}

impl ResponseHead {
    pub(crate) fn parse(raw: &RawHead) -> ResponseHead {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut res = httparse::Response::new(&mut headers);
        let _ = res.parse(&raw.buf[..raw.len]);
        ResponseHead {
            minor_version: res.version.unwrap_or(1),
            code: res.code.unwrap_or(502),
            reason: res.reason.unwrap_or_default().as_bytes().to_vec(),
            headers: collect(res.headers),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn request(bytes: &[u8], max: usize) -> Result<RawHead, HeadError> {
        let mut input = bytes;
        read_request(&mut input, max).await
    }

    #[tokio::test]
    async fn keeps_the_bytes_after_the_head() {
        let raw = request(
            b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n\x16\x03",
            1024,
        )
        .await
        .unwrap();
        assert_eq!(raw.rest(), b"\x16\x03");
        let head = RequestHead::parse(&raw);
        assert_eq!(
            (head.method.as_str(), head.target.as_str()),
            ("CONNECT", "a:443")
        );
        assert_eq!(head.headers, [("Host".to_owned(), b"a:443".to_vec())]);
    }

    #[tokio::test]
    async fn bounds_and_rejects() {
        let big = format!("GET http://a/ HTTP/1.1\r\nX: {}\r\n\r\n", "y".repeat(200));
        assert!(matches!(
            request(big.as_bytes(), 100).await,
            Err(HeadError::TooLarge)
        ));
        assert!(matches!(
            request(b"GET http://a/ HTTP/1.1\r\n", 100).await,
            Err(HeadError::Closed)
        ));
        assert!(matches!(
            request(b"\x00\x01 junk\r\n\r\n", 100).await,
            Err(HeadError::Malformed(_))
        ));
        let many: String = (0..150).map(|i| format!("h{i}: v\r\n")).collect();
        let many = format!("GET http://a/ HTTP/1.1\r\n{many}\r\n");
        assert!(matches!(
            request(many.as_bytes(), 1 << 20).await,
            Err(HeadError::TooLarge)
        ));
    }

    #[tokio::test]
    async fn parses_response_heads_and_counts_reads() {
        let mut input: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
        let mut seen = 0;
        let raw = read_response(&mut input, 1024, Vec::new(), &mut |n| seen += n)
            .await
            .unwrap();
        assert_eq!(seen, 40);
        let head = ResponseHead::parse(&raw);
        assert_eq!((head.code, head.reason.as_slice()), (200, &b"OK"[..]));
        assert_eq!(raw.rest(), b"hi");
    }
}
