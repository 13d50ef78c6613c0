//! Per-token rate limiting (GCRA, via `governor`) and Segment's `X-RateLimit-*` headers.

use std::num::NonZeroU32;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

use super::error::ApiError;

/// The default budget: 6,000 requests a minute per token, that is about 100 a second, what
/// Segment's Public API allows a workspace. (sluice's own default used to be 600 a minute, which
/// made a script creating 1,000 sources spend most of its time waiting on 429s.)
pub const DEFAULT_PER_MINUTE: u32 = 6_000;

type Keyed =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// Requests per minute allowed to each token (also the burst: a fresh token may spend its whole
/// minute at once, as Segment's point buckets allow).
pub struct Limiter {
    limiter: Keyed,
    burst: u32,
    interval: Duration,
    clock: DefaultClock,
}

impl Limiter {
    /// A limiter allowing `per_minute` requests per token per minute (at least 1).
    pub fn new(per_minute: u32) -> Limiter {
        let burst = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(burst);
        Limiter {
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            burst: burst.get(),
            interval: quota.replenish_interval(),
            clock: DefaultClock::default(),
        }
    }

    /// Spends one request of `key`'s budget: the verdict and the headers to send either way.
    pub fn check(&self, key: &str) -> (Result<(), ApiError>, HeaderMap) {
        match self.limiter.check_key(&key.to_string()) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let consumed = self.burst.saturating_sub(remaining);
                (
                    Ok(()),
                    self.headers(consumed, remaining, self.interval * consumed),
                )
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
                let err = ApiError::RateLimited {
                    ms_before_next: ms,
                    consumed: u64::from(self.burst),
                };
                (
                    Err(err),
                    self.headers(self.burst, 0, self.interval * self.burst),
                )
            }
        }
    }

    fn headers(&self, consumed: u32, remaining: u32, until_full: Duration) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let reset = (OffsetDateTime::now_utc() + until_full)
            .format(&Rfc2822)
            .unwrap_or_default();
        for (name, value) in [
            ("x-ratelimit-consumed", consumed.to_string()),
            ("x-ratelimit-remaining", remaining.to_string()),
            ("x-ratelimit-reset", reset),
        ] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        headers
    }
}
