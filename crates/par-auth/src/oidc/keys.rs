//! The issuer's public keys, as published in its JWKS, and which algorithm each may verify.

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::DecodingKey;
use serde_json::Value;

use crate::config::Algorithm;

/// One usable verification key.
pub(crate) struct VerifyKey {
    pub kid: Option<String>,
    pub decoding: DecodingKey,
    kind: KeyKind,
    /// The JWK's own `alg`, when it pins one.
    alg: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl VerifyKey {
    /// Builds a key from one JWKS entry; `None` for entries that cannot verify signatures
    /// (symmetric `oct` keys are never taken from a JWKS, nor encryption keys).
    pub(crate) fn from_jwk(raw: &Value) -> Option<VerifyKey> {
        let kind = match (str_field(raw, "kty")?, str_field(raw, "crv")) {
            ("RSA", _) => KeyKind::Rsa,
            ("EC", Some("P-256")) => KeyKind::P256,
            ("EC", Some("P-384")) => KeyKind::P384,
            ("OKP", Some("Ed25519")) => KeyKind::Ed25519,
            _ => return None,
        };
        if str_field(raw, "use").is_some_and(|u| u != "sig") {
            return None;
        }
        let jwk: Jwk = serde_json::from_value(raw.clone()).ok()?;
        let decoding = DecodingKey::from_jwk(&jwk).ok()?;
        Some(VerifyKey {
            kid: str_field(raw, "kid").map(str::to_string),
            decoding,
            kind,
            alg: str_field(raw, "alg").map(str::to_string),
        })
    }

    /// Whether this key may verify a token signed with `alg`: the key type must be the one
    /// the algorithm uses, and a key that names its algorithm is used for that one only.
    pub(crate) fn fits(&self, alg: Algorithm) -> bool {
        let kind_ok = match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => self.kind == KeyKind::Rsa,
            Algorithm::ES256 => self.kind == KeyKind::P256,
            Algorithm::ES384 => self.kind == KeyKind::P384,
            Algorithm::EdDSA => self.kind == KeyKind::Ed25519,
        };
        kind_ok && self.alg.as_deref().is_none_or(|a| a == alg.as_str())
    }
}

fn str_field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

/// All keys of one JWKS fetch.
#[derive(Default)]
pub(crate) struct KeySet {
    by_kid: HashMap<String, Arc<VerifyKey>>,
    all: Vec<Arc<VerifyKey>>,
}

impl KeySet {
    pub(crate) fn from_jwks(entries: &[Value]) -> KeySet {
        let mut set = KeySet::default();
        for raw in entries {
            let Some(key) = VerifyKey::from_jwk(raw) else {
                tracing::debug!(kid = ?str_field(raw, "kid"), "jwks entry skipped: not a usable signature key");
                continue;
            };
            let key = Arc::new(key);
            if let Some(kid) = &key.kid {
                // The first entry wins if a JWKS repeats a kid.
                set.by_kid.entry(kid.clone()).or_insert_with(|| key.clone());
            }
            set.all.push(key);
        }
        set
    }

    pub(crate) fn len(&self) -> usize {
        self.all.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// The key named `kid`; without a kid, the single key that fits `alg`, if exactly one does.
    pub(crate) fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<Arc<VerifyKey>> {
        match kid {
            Some(kid) => self.by_kid.get(kid).cloned(),
            None => {
                let mut fitting = self.all.iter().filter(|k| k.fits(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(only), None) => Some(only.clone()),
                    _ => None,
                }
            }
        }
    }

    pub(crate) fn kids(&self) -> Vec<&str> {
        self.all.iter().filter_map(|k| k.kid.as_deref()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const N: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";
    const EC_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const EC_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    fn rsa(kid: &str) -> Value {
        json!({"kty": "RSA", "kid": kid, "n": N, "e": "AQAB"})
    }

    #[test]
    fn key_kinds_fit_their_algorithms_only() {
        let r = VerifyKey::from_jwk(&rsa("r")).unwrap();
        assert!(r.fits(Algorithm::RS256) && r.fits(Algorithm::PS512));
        assert!(!r.fits(Algorithm::ES256) && !r.fits(Algorithm::EdDSA));
        let ec = VerifyKey::from_jwk(&json!({"kty": "EC", "crv": "P-256", "x": EC_X, "y": EC_Y}))
            .unwrap();
        assert!(ec.fits(Algorithm::ES256));
        assert!(!ec.fits(Algorithm::ES384) && !ec.fits(Algorithm::RS256));
    }

    #[test]
    fn a_key_pinned_to_an_alg_verifies_only_that_alg() {
        let mut j = rsa("r");
        j["alg"] = json!("RS256");
        let k = VerifyKey::from_jwk(&j).unwrap();
        assert!(k.fits(Algorithm::RS256));
        assert!(!k.fits(Algorithm::PS256));
    }

    #[test]
    fn symmetric_encryption_and_unknown_keys_are_skipped() {
        let set = KeySet::from_jwks(&[
            json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0"}),
            json!({"kty": "RSA", "kid": "enc", "use": "enc", "n": N, "e": "AQAB"}),
            json!({"kty": "EC", "kid": "p521", "crv": "P-521", "x": "AA", "y": "AA"}),
            json!({"kty": "weird", "kid": "w"}),
            json!("not an object"),
            rsa("good"),
        ]);
        assert_eq!(set.kids(), ["good"]);
        assert!(set.find(Some("h"), Algorithm::RS256).is_none());
    }

    #[test]
    fn kidless_lookup_needs_exactly_one_fitting_key() {
        let one = KeySet::from_jwks(&[rsa("a")]);
        assert!(one.find(None, Algorithm::RS256).is_some());
        assert!(one.find(None, Algorithm::ES256).is_none());
        let two = KeySet::from_jwks(&[rsa("a"), rsa("b")]);
        assert!(two.find(None, Algorithm::RS256).is_none());
        assert!(two.find(Some("b"), Algorithm::RS256).is_some());
    }
}
