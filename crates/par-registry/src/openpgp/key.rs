//! Public keys from an exported OpenPGP certificate (`gpg --export [--armor]`). Every v4
//! primary key and subkey with a signing algorithm we support (RSA, Ed25519) is kept;
//! user ids, self-signatures and encryption-only keys are skipped. The operator chose
//! the file, so all of its keys are trusted as they stand: expiry and revocation inside
//! it are not evaluated; remove a key from the file to stop trusting it.

use std::fmt;
use std::path::Path;

use aws_lc_rs::digest;

use super::armor;
use super::packet::{self, Reader};
use crate::error::SignatureError;

/// Algorithm ids (RFC 9580 §9.1).
const ALGO_RSA: u8 = 1;
const ALGO_RSA_SIGN_ONLY: u8 = 3;
const ALGO_EDDSA_LEGACY: u8 = 22;
const ALGO_ED25519: u8 = 27;

/// OID 1.3.6.1.4.1.11591.15.1, Ed25519 in the legacy EdDSA encoding.
const OID_ED25519_LEGACY: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01];

#[derive(Clone, PartialEq, Eq)]
pub(crate) enum KeyMaterial {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Ed25519([u8; 32]),
}

/// One signing-capable key.
#[derive(Clone)]
pub(crate) struct PublicKey {
    pub fingerprint: [u8; 20],
    pub material: KeyMaterial,
}

impl PublicKey {
    pub(crate) fn key_id(&self) -> [u8; 8] {
        let mut id = [0; 8];
        id.copy_from_slice(&self.fingerprint[12..]);
        id
    }

    pub(crate) fn fingerprint_hex(&self) -> String {
        hex::encode_upper(self.fingerprint)
    }
}

/// The keys from one trusted-key file.
#[derive(Clone)]
pub struct PublicKeyFile {
    label: String,
    pub(crate) keys: Vec<PublicKey>,
}

impl PublicKeyFile {
    /// Reads an armored or binary public key file.
    pub fn load(path: &Path) -> Result<Self, SignatureError> {
        let bytes = fs_err::read(path).map_err(|e| SignatureError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::parse(&bytes, &path.display().to_string())
    }

    /// Parses key bytes; `label` names them in errors (usually the file path).
    pub fn parse(bytes: &[u8], label: &str) -> Result<Self, SignatureError> {
        let problem = |problem: String| SignatureError::Key {
            path: label.to_owned(),
            problem,
        };
        let data = armor::decode(bytes).map_err(problem)?;
        let packets = packet::split(&data).map_err(problem)?;
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for packet in &packets {
            match packet.tag {
                packet::TAG_PUBLIC_KEY | packet::TAG_PUBLIC_SUBKEY => {
                    match parse_key(packet.body).map_err(problem)? {
                        Ok(key) => keys.push(key),
                        Err(why) => skipped.push(why),
                    }
                }
                packet::TAG_SECRET_KEY | packet::TAG_SECRET_SUBKEY => {
                    return Err(problem(
                        "contains a secret key; export only the public key (gpg --export)".into(),
                    ));
                }
                _ => {}
            }
        }
        if keys.is_empty() {
            let why = if skipped.is_empty() {
                "no public key packets".to_owned()
            } else {
                format!("no usable signing key ({})", skipped.join("; "))
            };
            return Err(problem(why));
        }
        Ok(Self {
            label: label.to_owned(),
            keys,
        })
    }

    /// Where the keys came from.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Fingerprints (uppercase hex) of the keys in the file.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys.iter().map(PublicKey::fingerprint_hex).collect()
    }
}

impl fmt::Debug for PublicKeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKeyFile")
            .field("label", &self.label)
            .field("fingerprints", &self.fingerprints())
            .finish()
    }
}

/// Parses a public key packet body. The outer error means a malformed packet; the inner
/// one a well-formed key we do not use (other version or algorithm).
fn parse_key(body: &[u8]) -> Result<Result<PublicKey, String>, String> {
    let mut reader = Reader::new(body);
    let version = reader.u8()?;
    if version != 4 {
        return Ok(Err(format!("version {version} key")));
    }
    let _created = reader.u32()?;
    let algorithm = reader.u8()?;
    let material = match algorithm {
        ALGO_RSA | ALGO_RSA_SIGN_ONLY => rsa_material(&mut reader)?,
        ALGO_EDDSA_LEGACY => match legacy_ed25519(&mut reader)? {
            Some(material) => material,
            None => return Ok(Err("EdDSA key on a curve other than Ed25519".into())),
        },
        ALGO_ED25519 => KeyMaterial::Ed25519(array32(reader.take(32)?)),
        other => return Ok(Err(format!("algorithm {other} key"))),
    };
    Ok(Ok(PublicKey {
        fingerprint: v4_fingerprint(body),
        material,
    }))
}

fn rsa_material(reader: &mut Reader<'_>) -> Result<KeyMaterial, String> {
    let n = reader.mpi()?.to_vec();
    let e = reader.mpi()?.to_vec();
    if n.is_empty() || e.is_empty() {
        return Err("RSA key with an empty modulus or exponent".into());
    }
    Ok(KeyMaterial::Rsa { n, e })
}

fn legacy_ed25519(reader: &mut Reader<'_>) -> Result<Option<KeyMaterial>, String> {
    let oid_len = usize::from(reader.u8()?);
    let oid = reader.take(oid_len)?;
    if oid != OID_ED25519_LEGACY {
        return Ok(None);
    }
    // The point is 0x40 followed by the 32-byte native key.
    let point = reader.mpi()?;
    match point {
        [0x40, key @ ..] if key.len() == 32 => Ok(Some(KeyMaterial::Ed25519(array32(key)))),
        _ => Err("Ed25519 key point is not in the 0x40-prefixed native form".into()),
    }
}

fn array32(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(bytes);
    out
}

/// v4 fingerprint: SHA-1 over 0x99, the two-octet body length and the body.
fn v4_fingerprint(body: &[u8]) -> [u8; 20] {
    let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(&[0x99]);
    ctx.update(&(body.len() as u16).to_be_bytes());
    ctx.update(body);
    let mut out = [0; 20];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}
