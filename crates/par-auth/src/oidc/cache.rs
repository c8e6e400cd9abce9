//! The cached JWKS: fetched at startup, refreshed in the background when its TTL has passed,
//! and refetched at once, rate-limited, when a token names a kid it does not hold. A failed
//! fetch never drops keys already held, so an issuer outage does not stop verification.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use super::fetch::{Endpoints, FetchError, Fetcher};
use super::keys::{KeySet, VerifyKey};
use crate::config::Algorithm;
use crate::error::AuthError;

/// While no key has ever been fetched, retry at most this often (or the configured refresh
/// interval, if shorter): each request would otherwise wait on a dead issuer.
const NO_KEYS_RETRY: Duration = Duration::from_secs(5);

pub(crate) struct KeyCache {
    fetcher: Fetcher,
    ttl: Duration,
    min_interval: Duration,
    // A std lock: it is held only to copy an Arc in or out, never across an await.
    state: RwLock<State>,
    /// One fetch at a time; a caller that waited on it re-reads the result instead.
    refresh: tokio::sync::Mutex<()>,
    background: AtomicBool,
}

#[derive(Default)]
struct State {
    endpoints: Option<Endpoints>,
    keys: Arc<KeySet>,
    fetched_at: Option<Instant>,
    /// The last refetch for an unknown kid: the rate limit a stream of bogus kids meets.
    miss_refetch_at: Option<Instant>,
    /// The last background (TTL) refresh attempt, so a down issuer is not retried per request.
    ttl_refresh_at: Option<Instant>,
    /// Bumped by every attempt, so a waiter can tell that one ran while it waited.
    generation: u64,
}

/// What a verified lookup found: the key and the issuer its tokens must name.
pub(crate) struct Found {
    pub key: Arc<VerifyKey>,
    pub issuer: String,
}

impl KeyCache {
    pub(crate) fn new(fetcher: Fetcher, ttl: Duration, min_interval: Duration) -> KeyCache {
        KeyCache {
            fetcher,
            ttl,
            min_interval,
            state: RwLock::new(State::default()),
            refresh: tokio::sync::Mutex::new(()),
            background: AtomicBool::new(false),
        }
    }

    /// The startup fetch. Failure is logged, not fatal. It does not count toward the
    /// unknown-kid rate limit, so the first request after a failed startup retries at once,
    /// and a rotation right after startup is picked up.
    pub(crate) async fn warm_up(&self) -> bool {
        self.fetch_and_store().await.is_ok()
    }

    pub(crate) async fn find(
        self: &Arc<Self>,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Found, AuthError> {
        let (found, stale, generation) = {
            let s = self.read();
            (lookup(&s, kid, alg), self.is_stale(&s), s.generation)
        };
        if let Some(found) = found {
            if stale {
                self.spawn_background_refresh();
            }
            return Ok(found);
        }
        self.refresh_for_miss(generation).await;
        let s = self.read();
        if let Some(found) = lookup(&s, kid, alg) {
            return Ok(found);
        }
        if s.endpoints.is_none() || s.keys.is_empty() {
            Err(AuthError::IssuerUnreachable)
        } else if kid.is_none() {
            Err(AuthError::MissingClaim("kid"))
        } else {
            Err(AuthError::UnknownKid)
        }
    }

    /// Refetch for a key we lack, unless one ran since `seen` or the rate limit forbids it.
    async fn refresh_for_miss(&self, seen: u64) {
        let _guard = self.refresh.lock().await;
        let allowed = {
            let s = self.read();
            s.generation == seen && self.may_refetch_for_miss(&s)
        };
        if allowed {
            self.write().miss_refetch_at = Some(Instant::now());
            tracing::info!(issuer = %self.fetcher.discovery_url(), "oidc: unknown key id, refetching jwks");
            let _ = self.fetch_and_store_locked().await;
        }
    }

    fn spawn_background_refresh(self: &Arc<Self>) {
        {
            let mut s = self.write();
            let recently = s
                .ttl_refresh_at
                .is_some_and(|t| t.elapsed() < self.min_interval);
            if recently || self.background.swap(true, Ordering::AcqRel) {
                return;
            }
            s.ttl_refresh_at = Some(Instant::now());
        }
        let this = self.clone();
        tokio::spawn(async move {
            let _ = this.fetch_and_store().await;
            this.background.store(false, Ordering::Release);
        });
    }

    async fn fetch_and_store(&self) -> Result<(), FetchError> {
        let _guard = self.refresh.lock().await;
        self.fetch_and_store_locked().await
    }

    /// Fetches discovery and the JWKS and stores the keys; the caller holds `refresh`.
    async fn fetch_and_store_locked(&self) -> Result<(), FetchError> {
        self.write().generation += 1;
        let result = self.fetch().await;
        let mut s = self.write();
        match result {
            Ok((endpoints, keys)) if !keys.is_empty() => {
                tracing::info!(jwks_uri = %endpoints.jwks_uri, keys = keys.len(), kids = ?keys.kids(), "oidc: jwks loaded");
                s.endpoints = Some(endpoints);
                s.keys = Arc::new(keys);
                s.fetched_at = Some(Instant::now());
                Ok(())
            }
            Ok((endpoints, _)) => {
                tracing::warn!(jwks_uri = %endpoints.jwks_uri, "oidc: jwks has no usable signature key; keeping the cached keys");
                s.endpoints = Some(endpoints);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, cached_keys = s.keys.len(), "oidc: issuer fetch failed; cached keys stay in use");
                Err(e)
            }
        }
    }

    /// Discovery then the JWKS, every time: two small requests per refresh, and a moved
    /// `jwks_uri` is followed without a restart.
    async fn fetch(&self) -> Result<(Endpoints, KeySet), FetchError> {
        let endpoints = self.fetcher.discover().await?;
        let entries = self.fetcher.jwks(&endpoints.jwks_uri).await?;
        Ok((endpoints, KeySet::from_jwks(&entries)))
    }

    fn is_stale(&self, s: &State) -> bool {
        s.fetched_at.is_none_or(|t| t.elapsed() >= self.ttl)
    }

    fn may_refetch_for_miss(&self, s: &State) -> bool {
        let interval = if s.keys.is_empty() {
            self.min_interval.min(NO_KEYS_RETRY)
        } else {
            self.min_interval
        };
        s.miss_refetch_at.is_none_or(|t| t.elapsed() >= interval)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn lookup(s: &State, kid: Option<&str>, alg: Algorithm) -> Option<Found> {
    let endpoints = s.endpoints.as_ref()?;
    let key = s.keys.find(kid, alg)?;
    Some(Found {
        key,
        issuer: endpoints.issuer.clone(),
    })
}
