//! A real S3-compatible server: s3s-fs (strict SigV4) on 127.0.0.1, one per test, with
//! a temporary data directory. Installed by scripts/install-s3-server.sh; a missing
//! binary fails the test with instructions rather than skipping it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use par_registry::{S3Credentials, S3Options};
use tokio::process::{Child, Command};

pub(crate) const ACCESS_KEY: &str = "par-test-access";
pub(crate) const SECRET_KEY: &str = "par-test-secret-0123456789";

pub(crate) struct S3Server {
    pub endpoint: String,
    pub addr: std::net::SocketAddr,
    client: aws_sdk_s3::Client,
    _child: Child,
    _data: tempfile::TempDir,
}

fn binary() -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = std::env::var_os("PAR_S3S_FS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join(".par-tools/bin/s3s-fs"));
    assert!(
        path.is_file(),
        "the S3 test server s3s-fs is not at {} (set PAR_S3S_FS or run scripts/install-s3-server.sh)",
        path.display()
    );
    path
}

impl S3Server {
    pub(crate) async fn start(bucket: &str) -> Self {
        let data = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new(binary())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start s3s-fs");
        let endpoint = format!("http://127.0.0.1:{port}");
        wait_for_port(port).await;
        let client = uploader(&endpoint);
        client.create_bucket().bucket(bucket).send().await.unwrap();
        Self {
            endpoint,
            addr: ([127, 0, 0, 1], port).into(),
            client,
            _child: child,
            _data: data,
        }
    }

    pub(crate) async fn put(&self, bucket: &str, key: &str, body: &[u8]) {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.to_vec().into())
            .send()
            .await
            .unwrap();
    }

    /// Options for the fetcher, with the given secret (wrong ones are refused).
    pub(crate) fn options(&self, secret: &str) -> S3Options {
        S3Options {
            endpoint_url: Some(self.endpoint.clone()),
            region: Some("us-east-1".into()),
            credentials: Some(S3Credentials {
                access_key_id: ACCESS_KEY.into(),
                secret_access_key: secret.into(),
            }),
        }
    }
}

/// An SDK client for uploading fixtures. Checksums only when required: plain uploads,
/// not aws-chunked bodies with trailers.
fn uploader(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "s3s-fs did not listen on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
