//! The fuzz targets' bodies, one function per target. The `fuzz_targets/*.rs` binaries
//! are one-line wrappers around these, so the corpus replay test (`tests/replay.rs`)
//! runs exactly what libFuzzer runs, on a stable toolchain and without libFuzzer.
//!
//! Every function takes arbitrary bytes and must neither panic nor hang: hostile input
//! is refused with an error, which the target ignores.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod http;

pub use http::http_routes;

/// Tight archive limits: what matters is reaching the reader's checks, not inflating
/// gigabytes under AddressSanitizer.
fn archive_limits() -> par_archive::Limits {
    par_archive::Limits {
        max_entries: 256,
        max_entry_bytes: 4 << 20,
        max_total_bytes: 16 << 20,
        max_ratio: 200,
    }
}

/// A scratch folder for the whole process (the readers take paths, not bytes).
fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("par-fuzz-")
            .tempdir()
            .expect("a scratch folder")
    })
    .path()
}

/// The APKG reader: list, read `agent.yaml` and extract, as loading a package does.
pub fn archive(data: &[u8]) {
    let file = scratch().join("input.apkg");
    std::fs::write(&file, data).expect("write the input archive");
    let limits = archive_limits();
    let _ = par_archive::list_entries(&file, &limits);
    let _ = par_archive::read_entry(&file, "agent.yaml", 1 << 20);
    let dest = scratch().join("extracted");
    let _ = std::fs::remove_dir_all(&dest);
    let _ = par_archive::extract_to(&file, &dest, &limits);
    let _ = std::fs::remove_dir_all(&dest);
}

/// `agent.yaml`, and the dependency resolution that reads the manifest's result.
pub fn manifest(data: &[u8]) {
    let limits = par_manifest::ParseLimits::default();
    let _ = par_manifest::parse_manifest(data, &limits);
}

/// A package's `.env` (the runtime reads it as UTF-8, lossily).
pub fn dotenv(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for (key, value) in par_manifest::parse_dotenv(&text) {
        assert!(!key.is_empty(), "an empty key from {text:?}");
        assert!(
            !value.contains('\n'),
            "a value with a newline from {text:?}"
        );
    }
}

/// Frames from a (hostile) worker: read until the stream ends or a frame is refused.
pub fn worker_frame(data: &[u8]) {
    const MAX_FRAME: usize = 64 * 1024;
    let rt = current_thread();
    rt.block_on(async {
        let mut reader = data;
        while let Ok(frame) = par_worker::protocol::read_frame(&mut reader, MAX_FRAME).await {
            assert!(frame.payload.len() <= MAX_FRAME);
        }
    });
}

/// The trusted keys and the signed file of the OpenPGP target (real gpg output, made once;
/// see `fuzz/README.md`).
struct Pgp {
    payload: PathBuf,
    keys: Vec<par_registry::PublicKeyFile>,
}

fn pgp() -> &'static Pgp {
    static PGP: OnceLock<Pgp> = OnceLock::new();
    PGP.get_or_init(|| {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
        let keys = ["ed25519.pub.asc", "rsa.pub.gpg"]
            .iter()
            .map(|name| {
                let bytes = std::fs::read(data.join(name)).expect("a fuzz key");
                par_registry::PublicKeyFile::parse(&bytes, name).expect("the fuzz key parses")
            })
            .collect();
        Pgp {
            payload: data.join("payload.bin"),
            keys,
        }
    })
}

/// The hand-written OpenPGP parser: the first byte picks a key file or a detached
/// signature (checked against real keys over a real file, so good signatures in the
/// corpus reach the verification code).
pub fn openpgp(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    if which & 1 == 0 {
        let _ = par_registry::PublicKeyFile::parse(rest, "fuzz");
    } else {
        let pgp = pgp();
        let _ = par_registry::verify_detached(&pgp.payload, rest, &pgp.keys);
    }
}

/// The registry index, relative to an HTTPS or a local base (the first byte picks).
pub fn registry_index(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let base = if which & 1 == 0 {
        let url = url::Url::parse("https://registry.example/pkgs/index.json").expect("a url");
        par_registry::SourceKind::Http(url)
    } else {
        par_registry::SourceKind::Local(PathBuf::from("/srv/registry/index.json"))
    };
    if let Ok(index) = par_registry::RegistryIndex::parse(rest, &base) {
        for entry in &index.packages {
            let _ = entry.to_source();
        }
    }
}

fn current_thread() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}
