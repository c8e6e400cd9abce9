//! Verifying a detached signature over a file: hash the file once per hash algorithm
//! used, append each signature's trailer, check the value with the issuer's key.

use std::io::Read;
use std::path::Path;
use std::time::SystemTime;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::PublicKeyComponents;
use aws_lc_rs::signature::{self as lc, UnparsedPublicKey};

use super::armor;
use super::key::{KeyMaterial, PublicKey, PublicKeyFile};
use super::packet::{self, TAG_SIGNATURE};
use super::sig::{self, HashAlgo, SigValue, Signature};
use crate::error::SignatureError;

const MIN_RSA_BITS: usize = 2048;

/// Verifies a detached OpenPGP signature (binary `.sig` or armored `.asc`) over `file`
/// against the trusted keys and returns the signer's fingerprint (uppercase hex). With
/// several signatures in one file, one good signature by a trusted key suffices.
pub fn verify_detached(
    file: &Path,
    signature: &[u8],
    keys: &[PublicKeyFile],
) -> Result<String, SignatureError> {
    let signatures = parse_signatures(signature)?;
    let algos: Vec<HashAlgo> = signatures.iter().map(|s| s.hash).collect();
    let contexts = hash_file(file, &algos)?;
    let mut best: Option<SignatureError> = None;
    for sig in &signatures {
        let ctx = contexts[sig.hash as usize].clone();
        match verify_one(sig, ctx, keys) {
            Ok(fingerprint) => return Ok(fingerprint),
            Err(e) => best = Some(worse(best, e)),
        }
    }
    Err(best.unwrap_or_else(|| SignatureError::Malformed("no signatures".into())))
}

fn parse_signatures(input: &[u8]) -> Result<Vec<Signature>, SignatureError> {
    let data = armor::decode(input).map_err(SignatureError::Malformed)?;
    let packets = packet::split(&data).map_err(SignatureError::Malformed)?;
    if packets.is_empty() {
        return Err(SignatureError::Malformed("empty signature file".into()));
    }
    packets
        .iter()
        .map(|p| {
            if p.tag != TAG_SIGNATURE {
                return Err(SignatureError::Malformed(format!(
                    "expected signature packets, found packet type {}",
                    p.tag
                )));
            }
            sig::parse(p.body).map_err(|(malformed, why)| match malformed {
                true => SignatureError::Malformed(why),
                false => SignatureError::Unsupported(why),
            })
        })
        .collect()
}

/// One digest context per hash algorithm (indexed by `HashAlgo as usize`), each fed the
/// whole file; only the algorithms in `algos` do any work.
fn hash_file(file: &Path, algos: &[HashAlgo]) -> Result<Vec<digest::Context>, SignatureError> {
    let all = [HashAlgo::Sha256, HashAlgo::Sha384, HashAlgo::Sha512];
    let mut contexts: Vec<digest::Context> = all
        .iter()
        .map(|a| digest::Context::new(a.digest_algorithm()))
        .collect();
    let io_error = |e: std::io::Error| SignatureError::Io {
        path: file.display().to_string(),
        message: e.to_string(),
    };
    let mut reader = fs_err::File::open(file).map_err(io_error)?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buf).map_err(io_error)?;
        if n == 0 {
            return Ok(contexts);
        }
        for algo in all.iter().filter(|a| algos.contains(a)) {
            contexts[*algo as usize].update(&buf[..n]);
        }
    }
}

fn verify_one(
    sig: &Signature,
    mut ctx: digest::Context,
    keys: &[PublicKeyFile],
) -> Result<String, SignatureError> {
    ctx.update(&sig.hashed);
    ctx.update(&[0x04, 0xFF]);
    ctx.update(&(sig.hashed.len() as u32).to_be_bytes());
    let digest = ctx.finish();
    let candidates = issuer_keys(sig, keys)?;
    let mut best = None;
    for key in candidates {
        let fingerprint = key.fingerprint_hex();
        let result = if digest.as_ref()[..2] != sig.left16 {
            Err(SignatureError::Bad { fingerprint })
        } else {
            check_value(key, sig, &digest).and_then(|()| not_expired(sig, fingerprint))
        };
        match result {
            Ok(fingerprint) => return Ok(fingerprint),
            Err(e) => best = Some(worse(best, e)),
        }
    }
    Err(best.expect("issuer_keys returns at least one key"))
}

/// The trusted keys that may have made `sig`: by issuer fingerprint, else key id, else
/// (no issuer recorded) every key.
fn issuer_keys<'k>(
    sig: &Signature,
    files: &'k [PublicKeyFile],
) -> Result<Vec<&'k PublicKey>, SignatureError> {
    let all = files.iter().flat_map(|f| f.keys.iter());
    let found: Vec<&PublicKey> = match (sig.issuer_fingerprint, sig.issuer_key_id) {
        (Some(fp), _) => all.filter(|k| k.fingerprint == fp).collect(),
        (None, Some(id)) => all.filter(|k| k.key_id() == id).collect(),
        (None, None) => all.collect(),
    };
    if found.is_empty() {
        let key_id = match (sig.issuer_fingerprint, sig.issuer_key_id) {
            (Some(fp), _) => hex::encode_upper(fp),
            (None, Some(id)) => hex::encode_upper(id),
            (None, None) => "(unnamed)".to_owned(),
        };
        return Err(SignatureError::UnknownKey { key_id });
    }
    Ok(found)
}

fn check_value(
    key: &PublicKey,
    sig: &Signature,
    digest: &digest::Digest,
) -> Result<(), SignatureError> {
    let bad = || SignatureError::Bad {
        fingerprint: key.fingerprint_hex(),
    };
    match (&key.material, &sig.value) {
        (KeyMaterial::Ed25519(public), SigValue::Ed25519(value)) => {
            // EdDSA in OpenPGP signs the digest itself.
            UnparsedPublicKey::new(&lc::ED25519, public)
                .verify(digest.as_ref(), value)
                .map_err(|_| bad())
        }
        (KeyMaterial::Rsa { n, e }, SigValue::Rsa(value)) => {
            verify_rsa(n, e, sig.hash, digest, value, key)?;
            Ok(())
        }
        _ => Err(SignatureError::Malformed(format!(
            "signature algorithm does not match key {}",
            key.fingerprint_hex()
        ))),
    }
}

fn verify_rsa(
    n: &[u8],
    e: &[u8],
    hash: HashAlgo,
    digest: &digest::Digest,
    value: &[u8],
    key: &PublicKey,
) -> Result<(), SignatureError> {
    let bits = bit_length(n);
    if bits < MIN_RSA_BITS {
        return Err(SignatureError::Unsupported(format!(
            "RSA key {} has {bits} bits (at least {MIN_RSA_BITS} are required)",
            key.fingerprint_hex()
        )));
    }
    let bad = || SignatureError::Bad {
        fingerprint: key.fingerprint_hex(),
    };
    if value.len() > n.len() {
        return Err(bad());
    }
    // The MPI drops leading zeros; RSA wants exactly the modulus length.
    let mut padded = vec![0u8; n.len() - value.len()];
    padded.extend_from_slice(value);
    let der = PublicKeyComponents { n, e }.as_der().map_err(|_| {
        SignatureError::Unsupported(format!("RSA key {} is invalid", key.fingerprint_hex()))
    })?;
    let params = match hash {
        HashAlgo::Sha256 => &lc::RSA_PKCS1_2048_8192_SHA256,
        HashAlgo::Sha384 => &lc::RSA_PKCS1_2048_8192_SHA384,
        HashAlgo::Sha512 => &lc::RSA_PKCS1_2048_8192_SHA512,
    };
    UnparsedPublicKey::new(params, der.as_ref())
        .verify_digest(digest, &padded)
        .map_err(|_| bad())
}

fn bit_length(magnitude: &[u8]) -> usize {
    match magnitude.first() {
        Some(first) => (magnitude.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
        None => 0,
    }
}

fn not_expired(sig: &Signature, fingerprint: String) -> Result<String, SignatureError> {
    match sig.expires_at {
        Some(at) if at <= SystemTime::now() => Err(SignatureError::Expired { fingerprint }),
        _ => Ok(fingerprint),
    }
}

/// Of two failures, the one that tells the operator more: a bad signature by a trusted
/// key beats an expired one, beats an unknown key, beats unsupported and malformed input.
fn worse(current: Option<SignatureError>, new: SignatureError) -> SignatureError {
    fn rank(e: &SignatureError) -> u8 {
        match e {
            SignatureError::Bad { .. } => 5,
            SignatureError::Expired { .. } => 4,
            SignatureError::UnknownKey { .. } => 3,
            SignatureError::Unsupported(_) => 2,
            _ => 1,
        }
    }
    match current {
        Some(current) if rank(&current) >= rank(&new) => current,
        _ => new,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random packets with plausible headers: parsing must fail cleanly, never panic.
    #[test]
    fn random_signature_and_key_packets_never_panic() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..5000 {
            let len = (next() % 80) as usize;
            let mut body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if round % 2 == 0 && !body.is_empty() {
                body[0] = 4; // mostly v4, to get past the version check
            }
            for tag in [0xC2u8, 0xC6, 0xCE] {
                let mut packet = vec![tag, body.len() as u8];
                packet.extend_from_slice(&body);
                let _ = parse_signatures(&packet);
                let _ = PublicKeyFile::parse(&packet, "fuzz");
            }
        }
    }
}
