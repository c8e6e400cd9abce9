//! Retries for transient failures: exponential backoff with jitter, capped, honouring a
//! server's `Retry-After` (itself capped). Permanent failures return at once.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::FetchError;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    pub retries: u32,
    pub base: Duration,
    pub cap: Duration,
    pub retry_after_cap: Duration,
}

impl Backoff {
    /// The wait before retry number `attempt` (0-based): half the capped exponential
    /// delay plus a random part of the other half, unless the server said how long.
    pub(crate) fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.retry_after_cap);
        }
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.cap);
        let half = exp / 2;
        half + half.mul_f64(jitter())
    }
}

/// Runs `op` until it succeeds, fails permanently or runs out of retries.
pub(crate) async fn with_retries<T, F, Fut>(backoff: Backoff, mut op: F) -> Result<T, FetchError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, FetchError>>,
{
    let mut attempt = 0;
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(error) if error.is_retryable() && attempt < backoff.retries => {
                let wait = backoff.delay(attempt, error.retry_after());
                tracing::warn!(%error, attempt = attempt + 1, wait_ms = wait.as_millis() as u64, "transient fetch failure; retrying");
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(error) if attempt > 0 => {
                return Err(FetchError::Exhausted {
                    attempts: attempt + 1,
                    last: Box::new(error),
                })
            }
            Err(error) => return Err(error),
        }
    }
}

/// A number in [0, 1) from a xorshift generator seeded by the clock; jitter needs no
/// cryptographic quality, only different values across processes and calls.
fn jitter() -> f64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        x = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15)
            | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    fn backoff(retries: u32) -> Backoff {
        Backoff {
            retries,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(5),
            retry_after_cap: Duration::from_secs(30),
        }
    }

    #[test]
    fn delays_grow_and_stay_capped() {
        let b = backoff(3);
        for attempt in 0..10 {
            let exp = (Duration::from_millis(200) * (1 << attempt)).min(Duration::from_secs(5));
            let d = b.delay(attempt, None);
            assert!(d >= exp / 2 && d <= exp, "attempt {attempt}: {d:?}");
        }
        assert_eq!(
            b.delay(0, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            b.delay(0, Some(Duration::from_secs(999))),
            Duration::from_secs(30)
        );
    }

    fn transient() -> FetchError {
        FetchError::Connect {
            url: "u".into(),
            detail: "refused".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_then_gives_up() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = with_retries(backoff(3), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(transient())
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        let error = result.unwrap_err();
        assert!(matches!(error, FetchError::Exhausted { attempts: 4, .. }));
        assert!(error.to_string().contains("gave up after 4 attempts"));
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = with_retries(backoff(3), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(FetchError::NotFound { url: "u".into() })
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(matches!(result, Err(FetchError::NotFound { .. })));
    }

    #[tokio::test(start_paused = true)]
    async fn succeeds_after_a_transient_failure() {
        let calls = AtomicU32::new(0);
        let result = with_retries(backoff(3), || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err(transient()),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(result.unwrap(), 7);
    }
}
