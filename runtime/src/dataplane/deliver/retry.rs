//! The one retry classifier: what a delivery attempt's result means (success, retry after some
//! delay, or give up), and the backoff between attempts (exponential with jitter).

use std::time::Duration;

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered.
    Success,
    /// Try again; `after` is the receiver's `Retry-After` when it gave one.
    Retry {
        /// The delay the receiver asked for.
        after: Option<Duration>,
    },
    /// A permanent refusal: straight to the dead letters.
    GiveUp,
}

/// Classifies an HTTP status: 2xx succeed; 408, 429 and 5xx are retried (429 honouring
/// `Retry-After` in seconds); any other status is permanent.
pub fn classify_status(status: u16, retry_after: Option<&str>) -> Verdict {
    match status {
        200..=299 => Verdict::Success,
        408 | 429 | 500..=599 => Verdict::Retry {
            after: retry_after
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs),
        },
        _ => Verdict::GiveUp,
    }
}

/// The delay before attempt `attempt + 1`: `base * 2^(attempt-1)`, capped at `max`, with
/// "equal jitter" (half fixed, half random) so that failing clients spread out.
pub fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let capped = exp.min(max);
    let half = capped / 2;
    let mut bytes = [0u8; 4];
    let random = if getrandom::fill(&mut bytes).is_ok() {
        f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX)
    } else {
        0.5
    };
    half + half.mul_f64(random)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        assert_eq!(classify_status(204, None), Verdict::Success);
        assert_eq!(classify_status(500, None), Verdict::Retry { after: None });
        assert_eq!(
            classify_status(429, Some("7")),
            Verdict::Retry {
                after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(classify_status(408, None), Verdict::Retry { after: None });
        assert_eq!(classify_status(400, None), Verdict::GiveUp);
        assert_eq!(classify_status(404, None), Verdict::GiveUp);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        for attempt in 1..10 {
            let d = backoff(attempt, base, max);
            let full = (base * (1 << (attempt - 1))).min(max);
            assert!(d >= full / 2 && d <= full, "{attempt}: {d:?}");
        }
    }
}
