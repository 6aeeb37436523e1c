//! Retrying transient failures with jittered exponential backoff, honouring `Retry-After`.
//!
//! Only errors that say they are transient ([`Error::is_transient`]: connection failures, 5xx,
//! 408, 429) are retried; a terminal error (unauthorized, not found, mismatch) returns at once.
//! Each attempt must be idempotent (a GET, a HEAD, a PUT of content-addressed data).

use std::future::Future;
use std::time::Duration;

use rand::Rng as _;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// How persistently to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Backoff ceiling before the first retry; doubles with each retry.
    pub initial_delay: Duration,
    /// Largest backoff ceiling.
    pub max_delay: Duration,
    /// Largest `Retry-After` honoured; a server asking for longer gets this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// 6 attempts, backoff 0.5 s doubling to 30 s, `Retry-After` honoured up to 120 s.
    fn default() -> Self {
        Self {
            max_attempts: 6,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// A policy with no retry.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The delay before retry number `retry` (1-based) after `error`: the server's
    /// `Retry-After` (capped) if it gave one, else "equal jitter": half the exponential ceiling
    /// plus a random part of the other half, so concurrent workers spread out.
    pub fn delay(&self, retry: u32, error: &Error) -> Duration {
        if let Some(after) = error.retry_after() {
            return after.min(self.max_retry_after);
        }
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        let ceiling = self
            .initial_delay
            .saturating_mul(factor)
            .min(self.max_delay);
        let half = ceiling / 2;
        let jitter_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rand::rng().random_range(0..=jitter_nanos))
    }
}

/// Runs `attempt` until it succeeds, fails terminally, exhausts `policy`, or `cancel` fires.
/// `what` describes the operation for the log. The last error is returned as is.
pub async fn retry<T, F, Fut>(
    policy: &RetryPolicy,
    cancel: &CancellationToken,
    what: &str,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut number = 1;
    loop {
        if cancel.is_cancelled() {
            return Err(Error::cancelled());
        }
        let outcome = tokio::select! {
            outcome = attempt(number) => outcome,
            () = cancel.cancelled() => return Err(Error::cancelled()),
        };
        match outcome {
            Ok(value) => return Ok(value),
            Err(error) if error.is_transient() && number < policy.max_attempts => {
                let delay = policy.delay(number, &error);
                tracing::warn!(
                    "{what}: attempt {number}/{} failed: {error}; retrying in {:.1}s",
                    policy.max_attempts,
                    delay.as_secs_f64()
                );
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = cancel.cancelled() => return Err(Error::cancelled()),
                }
                number += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Parses an HTTP `Retry-After` value: delay-seconds or an HTTP-date (a date in the past
/// gives zero).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let now = jiff::Timestamp::now();
    let millis = when.as_millisecond().saturating_sub(now.as_millisecond());
    Some(Duration::from_millis(u64::try_from(millis).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            initial_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(10),
            max_retry_after: Duration::from_millis(20),
        }
    }

    #[tokio::test]
    async fn retries_transient_until_success() {
        let calls = AtomicU32::new(0);
        let v = retry(&fast(), &CancellationToken::new(), "t", |n| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 3 {
                    Err(Error::transient("503"))
                } else {
                    Ok(n)
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(v, 3);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn terminal_error_is_not_retried() {
        let calls = AtomicU32::new(0);
        let e = retry(&fast(), &CancellationToken::new(), "t", |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(Error::new(ErrorKind::NotFound, "404")) }
        })
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts() {
        let calls = AtomicU32::new(0);
        let e = retry(&fast(), &CancellationToken::new(), "t", |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(Error::transient("reset")) }
        })
        .await
        .unwrap_err();
        assert!(e.is_transient());
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn cancellation_stops_waiting() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let e = retry(&fast(), &cancel, "t", |_| async { Ok::<_, Error>(1) })
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Cancelled);
    }

    #[test]
    fn delay_bounds_and_retry_after() {
        let p = fast();
        for retry in 1..8 {
            let d = p.delay(retry, &Error::transient("x"));
            assert!(d <= p.max_delay, "{d:?}");
        }
        let e = Error::transient("429").with_retry_after(Some(Duration::from_secs(60)));
        assert_eq!(p.delay(1, &e), p.max_retry_after);
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
