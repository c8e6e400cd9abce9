//! `par-registry` owns getting package bytes from where teams keep them to a verified
//! file on local disk: parsing package sources (paths, `https://`, loopback `http://`,
//! `s3://bucket/key`, each with an optional `#sha256=`), downloading them with limits,
//! timeouts and retries for transient failures only, checking the SHA-256 and the
//! OpenPGP detached signature before anything is installed, and keeping the result in a
//! content-addressed cache that is safe to share between tasks and processes, with
//! least-recently-used eviction that spares pinned (mounted) packages. It also reads the
//! registry index document, polls it with ETags and remembers the last good copy.
//!
//! It knows nothing about archives' contents, the runtime or HTTP serving: callers get a
//! path to a read-only blob whose bytes were verified, and errors whose messages name
//! the (redacted) URL and say whether retrying could help.

mod cache;
mod config;
mod download;
mod error;
mod fetcher;
mod index;
mod index_fetch;
mod openpgp;
mod redact;
mod retry;
mod signing;
mod source;
mod transport;

pub use cache::EvictionReport;
pub use config::{FetchConfig, S3Credentials, S3Options, SignaturePolicy};
pub use error::{ConfigError, FetchError, IndexError, SignatureError, SourceError, TimeoutKind};
pub use fetcher::{Fetched, Fetcher, SignatureStatus};
pub use index::{IndexEntry, RegistryIndex};
pub use index_fetch::IndexFetch;
pub use openpgp::{verify_detached, PublicKeyFile};
pub use redact::redact_url;
pub use source::{parse_location, parse_source, SignatureRef, Source, SourceKind};
