//! Retry policy: which answers are worth another try, and how long to wait before it.

use std::time::Duration;

use rand::Rng;
use serde::Deserialize;

/// Retry and backoff settings of the HTTP engine (`[http]` in `macrolake.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// How many times a failed request is tried again (0 = no retry). Only connect errors,
    /// timeouts, 5xx and 429 answers are retried; other 4xx answers fail at once.
    pub max_retries: u32,
    /// First backoff step in milliseconds; doubles on every retry ("full jitter": the actual
    /// wait is uniform between 0 and the step).
    pub backoff_base_ms: u64,
    /// Upper bound of one backoff step in milliseconds.
    pub backoff_cap_ms: u64,
    /// Longest `Retry-After` the engine honours, in seconds. A longer demand fails the request
    /// with an error saying how long the upstream asked to wait.
    pub max_retry_after_secs: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 4,
            backoff_base_ms: 500,
            backoff_cap_ms: 30_000,
            max_retry_after_secs: 300,
        }
    }
}

/// Exponential backoff, the one formula of every retry and delay here (HTTP retries, job
/// retries, the login throttle): `base` doubled `n` times, at most `cap`.
pub fn exponential(base: Duration, n: u32, cap: Duration) -> Duration {
    base.saturating_mul(1u32 << n.min(20)).min(cap)
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (0-based) when upstream gave no `Retry-After`:
    /// uniform in [0, the exponential step] ("full jitter").
    pub fn backoff(&self, attempt: u32) -> Duration {
        let step = exponential(
            Duration::from_millis(self.backoff_base_ms),
            attempt,
            Duration::from_millis(self.backoff_cap_ms),
        );
        if step.is_zero() {
            return Duration::ZERO;
        }
        Duration::from_millis(rand::rng().random_range(0..=step.as_millis() as u64))
    }
}

/// Whether an HTTP status is worth retrying.
pub fn retryable_status(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

/// Parses a `Retry-After` header: delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            backoff_base_ms: 100,
            backoff_cap_ms: 1_000,
            ..Default::default()
        };
        for attempt in 0..30 {
            let wait = p.backoff(attempt);
            let step = (100u64 << attempt.min(20)).min(1_000);
            assert!(
                wait <= Duration::from_millis(step),
                "attempt {attempt}: {wait:?}"
            );
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn which_statuses_retry() {
        assert!(retryable_status(429));
        assert!(retryable_status(503));
        assert!(!retryable_status(404));
        assert!(!retryable_status(400));
    }
}
