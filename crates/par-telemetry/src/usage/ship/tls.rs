//! TLS for `sslmode=require`: rustls on aws-lc (as the HTTPS listener), trusting the
//! public web roots (as for https sources) plus the operator's CA bundle.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::usage::UsageError;

/// A connector that verifies the server's certificate chain and host name. Unlike
/// libpq's `require`, which encrypts without verifying, an unverified server is refused:
/// a private CA goes in the CA bundle.
pub(crate) fn connector(ca_bundle: Option<&Path>) -> Result<MakeRustlsConnect, UsageError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_bundle {
        for cert in bundle(path)? {
            roots.add(cert).map_err(|e| bad_bundle(path, &e))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| UsageError::Shipper {
            setting: "url",
            reason: format!("TLS setup: {e}"),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn bundle(path: &Path) -> Result<Vec<CertificateDer<'static>>, UsageError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad_bundle(path, &e))?;
    if certs.is_empty() {
        return Err(bad_bundle(path, &"no certificate in it"));
    }
    Ok(certs)
}

fn bad_bundle(path: &Path, error: &dyn std::fmt::Display) -> UsageError {
    UsageError::Shipper {
        setting: "ca_bundle",
        reason: format!("{}: {error}", path.display()),
    }
}
