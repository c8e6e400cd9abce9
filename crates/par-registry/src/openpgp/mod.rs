//! The verification-only subset of OpenPGP that detached package signatures need:
//! armor, packet framing, v4 public keys (RSA ≥ 2048 bits, Ed25519 in the legacy EdDSA
//! and RFC 9580 encodings) and v4 binary-document signatures over SHA-256/384/512.
//! Everything else (encryption, secret keys, v3/v5/v6 packets, SHA-1) is refused.
//!
//! The cryptographic primitives come from aws-lc-rs; this module only parses packets
//! and builds the hashed data. See the crate README for why not a full OpenPGP crate.

mod armor;
mod key;
mod packet;
mod sig;
mod verify;

pub use key::PublicKeyFile;
pub use verify::verify_detached;
