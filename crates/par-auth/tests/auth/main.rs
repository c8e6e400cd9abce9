//! par-auth against a real OpenID provider (npm oidc-provider on loopback, started per test
//! or shared; see support.rs) with real signed tokens, plus forged attack tokens.
//!
//! Needs Node 20+ and `scripts/install-oidc.sh` run once.

mod accept;
mod api_keys;
mod attacks;
mod claims;
mod issuer_outage;
mod rotation;
mod support;
mod tls;
