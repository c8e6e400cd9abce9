//! Version 4 signature packets (RFC 9580 §5.2.3): the fields needed to verify a detached
//! signature over a binary document.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;

use super::packet::Reader;

const SIG_TYPE_BINARY: u8 = 0x00;

const SUB_CREATION_TIME: u8 = 2;
const SUB_EXPIRATION_TIME: u8 = 3;
const SUB_ISSUER_KEY_ID: u8 = 16;
const SUB_ISSUER_FINGERPRINT: u8 = 33;
/// Subpackets that may be marked critical without changing what we verify.
const UNDERSTOOD: &[u8] = &[
    SUB_CREATION_TIME,
    SUB_EXPIRATION_TIME,
    SUB_ISSUER_KEY_ID,
    SUB_ISSUER_FINGERPRINT,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashAlgo {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlgo {
    fn from_id(id: u8) -> Result<Self, String> {
        match id {
            8 => Ok(Self::Sha256),
            9 => Ok(Self::Sha384),
            10 => Ok(Self::Sha512),
            1..=3 => Err(format!(
                "hash algorithm {id} (MD5/SHA-1/RIPEMD) is too weak"
            )),
            other => Err(format!("hash algorithm {other}")),
        }
    }

    pub(super) fn digest_algorithm(self) -> &'static digest::Algorithm {
        match self {
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
        }
    }
}

/// The signature value, by public-key algorithm.
#[derive(Debug, Clone)]
pub(crate) enum SigValue {
    Rsa(Vec<u8>),
    Ed25519([u8; 64]),
}

#[derive(Debug, Clone)]
pub(crate) struct Signature {
    pub hash: HashAlgo,
    /// Version through hashed subpackets: hashed after the document.
    pub hashed: Vec<u8>,
    pub left16: [u8; 2],
    pub issuer_fingerprint: Option<[u8; 20]>,
    pub issuer_key_id: Option<[u8; 8]>,
    pub expires_at: Option<SystemTime>,
    pub value: SigValue,
}

/// Parses a signature packet body. `Err` means malformed or unsupported, with the reason
/// and whether it was malformed (`true`) or merely unsupported (`false`).
pub(crate) fn parse(body: &[u8]) -> Result<Signature, (bool, String)> {
    let malformed = |e: String| (true, e);
    let mut reader = Reader::new(body);
    let version = reader.u8().map_err(malformed)?;
    if version != 4 {
        return Err((false, format!("version {version} signature")));
    }
    let sig_type = reader.u8().map_err(malformed)?;
    if sig_type != SIG_TYPE_BINARY {
        return Err((
            false,
            format!("signature type {sig_type:#04x}, expected a binary document signature"),
        ));
    }
    let pk_algo = reader.u8().map_err(malformed)?;
    let hash = HashAlgo::from_id(reader.u8().map_err(malformed)?).map_err(|e| (false, e))?;
    let hashed_len = usize::from(reader.u16().map_err(malformed)?);
    let hashed_area = reader.take(hashed_len).map_err(malformed)?;
    let unhashed_len = usize::from(reader.u16().map_err(malformed)?);
    let unhashed_area = reader.take(unhashed_len).map_err(malformed)?;
    let left = reader.take(2).map_err(malformed)?;
    let value = sig_value(pk_algo, &mut reader)?;

    let mut info = SubpacketInfo::default();
    info.read(hashed_area, true).map_err(malformed)?;
    info.read(unhashed_area, false).map_err(malformed)?;
    Ok(Signature {
        hash,
        hashed: body[..6 + hashed_len].to_vec(),
        left16: [left[0], left[1]],
        issuer_fingerprint: info.fingerprint,
        issuer_key_id: info.key_id,
        expires_at: info.expires_at(),
        value,
    })
}

fn sig_value(pk_algo: u8, reader: &mut Reader<'_>) -> Result<SigValue, (bool, String)> {
    let malformed = |e: String| (true, e);
    match pk_algo {
        1 | 3 => Ok(SigValue::Rsa(reader.mpi().map_err(malformed)?.to_vec())),
        22 => {
            let r = reader.mpi().map_err(malformed)?;
            let s = reader.mpi().map_err(malformed)?;
            if r.len() > 32 || s.len() > 32 {
                return Err((true, "EdDSA signature values longer than 32 bytes".into()));
            }
            let mut out = [0u8; 64];
            out[32 - r.len()..32].copy_from_slice(r);
            out[64 - s.len()..].copy_from_slice(s);
            Ok(SigValue::Ed25519(out))
        }
        27 => {
            let raw = reader.take(64).map_err(malformed)?;
            let mut out = [0u8; 64];
            out.copy_from_slice(raw);
            Ok(SigValue::Ed25519(out))
        }
        other => Err((false, format!("public-key algorithm {other}"))),
    }
}

#[derive(Default)]
struct SubpacketInfo {
    created: Option<u32>,
    expires_after: Option<u32>,
    fingerprint: Option<[u8; 20]>,
    key_id: Option<[u8; 8]>,
}

impl SubpacketInfo {
    /// Reads one subpacket area. Creation and expiry times count only when hashed (the
    /// unhashed area is not covered by the signature); issuer hints come from either.
    fn read(&mut self, area: &[u8], hashed: bool) -> Result<(), String> {
        let mut reader = Reader::new(area);
        while !reader.is_empty() {
            let len = subpacket_len(&mut reader)?;
            let packet = reader.take(len)?;
            let (&kind, data) = packet.split_first().ok_or("empty subpacket")?;
            let critical = kind & 0x80 != 0;
            let kind = kind & 0x7f;
            if hashed && critical && !UNDERSTOOD.contains(&kind) {
                return Err(format!("unknown critical subpacket {kind}"));
            }
            self.record(kind, data, hashed);
        }
        Ok(())
    }

    fn record(&mut self, kind: u8, data: &[u8], hashed: bool) {
        match (kind, data.len()) {
            (SUB_CREATION_TIME, 4) if hashed => self.created = Some(be32(data)),
            (SUB_EXPIRATION_TIME, 4) if hashed => self.expires_after = Some(be32(data)),
            (SUB_ISSUER_KEY_ID, 8) => {
                let mut id = [0; 8];
                id.copy_from_slice(data);
                self.key_id.get_or_insert(id);
            }
            (SUB_ISSUER_FINGERPRINT, 21) if data[0] == 4 => {
                let mut fp = [0; 20];
                fp.copy_from_slice(&data[1..]);
                self.fingerprint.get_or_insert(fp);
            }
            _ => {}
        }
    }

    fn expires_at(&self) -> Option<SystemTime> {
        let after = self.expires_after.filter(|&secs| secs != 0)?;
        let created = self.created.unwrap_or(0);
        Some(UNIX_EPOCH + Duration::from_secs(u64::from(created) + u64::from(after)))
    }
}

fn subpacket_len(reader: &mut Reader<'_>) -> Result<usize, String> {
    let first = usize::from(reader.u8()?);
    match first {
        0..=191 => Ok(first),
        192..=254 => Ok(((first - 192) << 8) + usize::from(reader.u8()?) + 192),
        _ => Ok(reader.u32()? as usize),
    }
}

fn be32(data: &[u8]) -> u32 {
    u32::from_be_bytes([data[0], data[1], data[2], data[3]])
}
