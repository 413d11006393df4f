//! The webhook delivery policy as pure functions: what an attempt's outcome means, when to try
//! again, and when to pause an endpoint.
//!
//! Delivery is at least once. After each attempt the dispatcher asks [`RetryPolicy::decide`]
//! what to do and feeds the same outcome to the endpoint's [`CircuitBreaker`]. Nothing here
//! reads a clock, sleeps or draws entropy on its own: the caller passes `now` and a random
//! number generator, so every schedule is reproducible in tests.
//!
//! Outcome classes (Standard Webhooks 1.0, "Delivery success and failure"):
//! - `2xx` is success.
//! - `410 Gone` means the receiver "is no longer interested"; the endpoint is disabled.
//! - Transient failures are retried up to [`RetryPolicy::max_attempts`]: timeouts, connection
//!   and TLS errors, `408`, `425`, `429`, every `5xx`, and status codes outside 100..=599.
//! - Every other status (`1xx` as a final answer, `3xx`, which the specification counts as a
//!   failure because redirects are not followed, and the remaining `4xx`) is a *rejection*: the
//!   receiver understood the request and refused it, and repeating the same bytes seldom changes
//!   that. A request that was never sent because its target was refused at delivery time (the
//!   host now resolves to a private address) or could not be built counts as a rejection too:
//!   it is a configuration problem, not a passing fault. Rejections are still retried, but only up to
//!   [`RetryPolicy::max_rejected_attempts`] attempts in total (3 by default): a receiver
//!   mid-deploy (`404`) or a secret rotated on one side only (`401`, `403`) is usually repaired
//!   within minutes, which the first backoff steps cover, while a permanent misconfiguration
//!   stops costing both sides requests after a few minutes instead of three days.
//!
//! Backoff is exponential with a cap and *full jitter*: retry `n` waits a uniformly random
//! delay in `[0, min(max_delay, base_delay · 2^(n-1))]`. A `Retry-After` header (RFC 9110
//! §10.2.3, delay-seconds or HTTP-date) raises the delay to at least what the receiver asked,
//! bounded by [`RetryPolicy::max_retry_after`] so a receiver cannot park a delivery forever.
//!
//! The circuit breaker is the classic three-state machine: closed until
//! [`BreakerPolicy::failure_threshold`] consecutive failures, then open for a cool-down, then
//! half-open to let one trial attempt through; a success closes it, a failure reopens it with a
//! doubled cool-down (capped), as GitLab's webhook auto-disabling does. Its state is
//! serializable so the registry can persist it and show it to the endpoint's owner.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand_core::TryRng;
use serde::{Deserialize, Serialize};

/// Why a schedule could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetryError {
    #[error("attempt numbers start at 1")]
    AttemptZero,
    #[error("Retry-After value {value:?} is neither delay-seconds nor an HTTP-date")]
    RetryAfter { value: String },
    #[error("the next attempt time does not fit the clock ({now_secs} s + {delay_secs} s)")]
    ClockOverflow { now_secs: u64, delay_secs: u64 },
}

/// How a delivery attempt ended, as observed by the HTTP client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver answered with this status code and, possibly, a `Retry-After` value.
    Response {
        status: u16,
        retry_after: Option<String>,
    },
    /// No complete response within the per-attempt timeout.
    Timeout,
    /// DNS, connection, TLS or protocol failure before a status code was read.
    Transport,
    /// The request was not sent: the target was refused at delivery time (its host resolved
    /// to a forbidden address) or the request could not be built.
    NotSent,
}

/// What an outcome means for the delivery, independent of how many attempts were made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeClass {
    /// `2xx`.
    Delivered,
    /// `410 Gone`: stop sending to this endpoint.
    Gone,
    /// Worth retrying for the full schedule.
    Transient,
    /// Refused by the receiver; retried only a few times.
    Rejected,
}

impl AttemptOutcome {
    /// Classifies the outcome (see the module documentation for the table).
    pub fn class(&self) -> OutcomeClass {
        match self {
            AttemptOutcome::Timeout | AttemptOutcome::Transport => OutcomeClass::Transient,
            AttemptOutcome::NotSent => OutcomeClass::Rejected,
            AttemptOutcome::Response { status, .. } => match *status {
                200..=299 => OutcomeClass::Delivered,
                410 => OutcomeClass::Gone,
                408 | 425 | 429 | 500..=599 => OutcomeClass::Transient,
                100..=199 | 300..=499 => OutcomeClass::Rejected,
                _ => OutcomeClass::Transient,
            },
        }
    }

    /// Whether the circuit breaker should count this outcome as a failure.
    pub fn is_failure(&self) -> bool {
        !matches!(self.class(), OutcomeClass::Delivered)
    }

    fn retry_after(&self) -> Option<&str> {
        match self {
            AttemptOutcome::Response { retry_after, .. } => retry_after.as_deref(),
            AttemptOutcome::Timeout | AttemptOutcome::Transport | AttemptOutcome::NotSent => None,
        }
    }
}

/// What the dispatcher does next with one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The receiver accepted the event; the delivery is finished.
    Delivered,
    /// The receiver answered `410 Gone`: disable the endpoint and stop.
    DisableEndpoint,
    /// Try again at `at` (which is `now + delay`).
    RetryAt { at: SystemTime, delay: Duration },
    /// Stop retrying; the delivery has failed for good.
    GiveUp { attempts: u32, last: OutcomeClass },
}

/// The retry schedule of one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Upper bound of the first retry's delay.
    pub base_delay: Duration,
    /// Cap of the exponential delay, before jitter.
    pub max_delay: Duration,
    /// Attempts in total (the first one included) for transient failures.
    pub max_attempts: u32,
    /// Attempts in total after which a rejection (see [`OutcomeClass::Rejected`]) is final.
    pub max_rejected_attempts: u32,
    /// Longest delay a `Retry-After` header can impose.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// 5 s base, 12 h cap, 18 attempts (about 66 h of worst-case schedule, 33 h expected with
    /// full jitter, comparable to the Standard Webhooks example schedule), 3 attempts for
    /// rejections, `Retry-After` honoured up to 24 h.
    fn default() -> Self {
        Self {
            base_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(12 * 60 * 60),
            max_attempts: 18,
            max_rejected_attempts: 3,
            max_retry_after: Duration::from_secs(24 * 60 * 60),
        }
    }
}

impl RetryPolicy {
    /// Decides what follows attempt number `attempt` (1 for the first) that ended with
    /// `outcome` at `now`, drawing jitter from `rng`.
    pub fn decide<R: TryRng + ?Sized>(
        &self,
        attempt: u32,
        outcome: &AttemptOutcome,
        now: SystemTime,
        rng: &mut R,
    ) -> Result<Decision, RetryError> {
        if attempt == 0 {
            return Err(RetryError::AttemptZero);
        }
        let class = outcome.class();
        let limit = match class {
            OutcomeClass::Delivered => return Ok(Decision::Delivered),
            OutcomeClass::Gone => return Ok(Decision::DisableEndpoint),
            OutcomeClass::Transient => self.max_attempts,
            OutcomeClass::Rejected => self.max_rejected_attempts.min(self.max_attempts),
        };
        if attempt >= limit {
            return Ok(Decision::GiveUp {
                attempts: attempt,
                last: class,
            });
        }
        let mut delay = self.jittered_backoff(attempt, rng);
        if let Some(value) = outcome.retry_after() {
            // A malformed Retry-After is the receiver's bug; keep the backoff rather than fail.
            if let Ok(asked) = parse_retry_after(value, now) {
                delay = delay.max(asked.min(self.max_retry_after));
            }
        }
        let at = now
            .checked_add(delay)
            .ok_or_else(|| RetryError::ClockOverflow {
                now_secs: now
                    .duration_since(UNIX_EPOCH)
                    .map(|since| since.as_secs())
                    .unwrap_or_default(),
                delay_secs: delay.as_secs(),
            })?;
        Ok(Decision::RetryAt { at, delay })
    }

    /// The exponential delay ceiling before retry number `retry` (1 for the first retry):
    /// `min(max_delay, base_delay · 2^(retry-1))`, saturating instead of overflowing.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(63);
        let factor = 1u64 << doublings;
        let nanos = self
            .base_delay
            .as_nanos()
            .saturating_mul(u128::from(factor));
        let ceiling = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        ceiling.min(self.max_delay)
    }

    /// Full jitter: a uniformly random delay in `[0, backoff_ceiling(retry)]`, at millisecond
    /// granularity. If the generator fails, the ceiling itself is used (the slowest choice).
    pub fn jittered_backoff<R: TryRng + ?Sized>(&self, retry: u32, rng: &mut R) -> Duration {
        let ceiling = self.backoff_ceiling(retry);
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        match rng.try_next_u64() {
            Ok(sample) => Duration::from_millis(uniform_up_to(sample, ceiling_ms)),
            Err(_) => ceiling,
        }
    }
}

/// Maps a uniform 64-bit sample onto `0..=max` (multiply-shift; the bias is below 2^-32 for the
/// delays used here and irrelevant for jitter).
fn uniform_up_to(sample: u64, max: u64) -> u64 {
    let span = u128::from(max) + 1;
    let scaled = (u128::from(sample) * span) >> 64;
    u64::try_from(scaled).unwrap_or(max)
}

/// Parses a `Retry-After` value into the delay it asks for, measured from `now`.
///
/// RFC 9110 §10.2.3: `Retry-After = HTTP-date / delay-seconds`, `delay-seconds = 1*DIGIT`.
/// A date in the past asks for no delay. Huge delay-seconds saturate; the policy caps them.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Result<Duration, RetryError> {
    let value = value.trim_matches([' ', '\t']);
    if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) {
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Ok(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).map_err(|_| RetryError::RetryAfter {
        value: value.chars().take(64).collect(),
    })?;
    Ok(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// When an endpoint's circuit breaker trips and recovers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerPolicy {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// Pause after the first trip; doubled after each failed trial.
    pub cool_down: Duration,
    /// Longest pause.
    pub max_cool_down: Duration,
}

impl Default for BreakerPolicy {
    /// Opens after 5 consecutive failures, pauses 1 min, doubling up to 24 h.
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            cool_down: Duration::from_secs(60),
            max_cool_down: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// The state of an endpoint's circuit breaker, as persisted and shown to users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BreakerState {
    /// Deliveries flow; `consecutive_failures` counts failures since the last success.
    Closed { consecutive_failures: u32 },
    /// Paused until `until`; `trips` counts openings since the breaker last closed.
    Open {
        since: SystemTime,
        until: SystemTime,
        trips: u32,
    },
    /// One trial attempt is allowed; `trial_started` is set once it has been admitted.
    HalfOpen {
        trips: u32,
        trial_started: Option<SystemTime>,
    },
}

/// Whether an attempt may be made now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead (in the half-open state: this is the single trial).
    Allowed,
    /// The endpoint is paused; ask again at `retry_at`.
    Paused { retry_at: SystemTime },
}

/// A circuit breaker for one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircuitBreaker {
    policy: BreakerPolicy,
    state: BreakerState,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(policy: BreakerPolicy) -> Self {
        Self::restore(
            policy,
            BreakerState::Closed {
                consecutive_failures: 0,
            },
        )
    }

    /// A breaker in a previously persisted state.
    pub fn restore(policy: BreakerPolicy, state: BreakerState) -> Self {
        Self { policy, state }
    }

    /// The current state (to persist or show).
    pub fn state(&self) -> &BreakerState {
        &self.state
    }

    /// Asks whether an attempt may start at `now`, moving open → half-open once the cool-down
    /// has passed. In the half-open state only one trial runs at a time; a trial that never
    /// reported back is presumed lost after one cool-down, and another is admitted.
    pub fn admit(&mut self, now: SystemTime) -> Admission {
        match self.state {
            BreakerState::Closed { .. } => Admission::Allowed,
            BreakerState::Open { until, trips, .. } => {
                if now < until {
                    return Admission::Paused { retry_at: until };
                }
                self.state = BreakerState::HalfOpen {
                    trips,
                    trial_started: Some(now),
                };
                Admission::Allowed
            }
            BreakerState::HalfOpen {
                trips,
                trial_started,
            } => {
                let stale_at = trial_started.and_then(|started| {
                    started.checked_add(self.cool_down_after(trips.saturating_sub(1)))
                });
                match stale_at {
                    Some(stale_at) if now < stale_at => Admission::Paused { retry_at: stale_at },
                    _ => {
                        self.state = BreakerState::HalfOpen {
                            trips,
                            trial_started: Some(now),
                        };
                        Admission::Allowed
                    }
                }
            }
        }
    }

    /// Records the end of an attempt: a success closes the breaker; a failure counts towards
    /// opening it, or reopens it with a longer cool-down when it was a half-open trial.
    pub fn record(&mut self, outcome: &AttemptOutcome, now: SystemTime) {
        if !outcome.is_failure() {
            self.state = BreakerState::Closed {
                consecutive_failures: 0,
            };
            return;
        }
        match self.state {
            BreakerState::Closed {
                consecutive_failures,
            } => {
                let failures = consecutive_failures.saturating_add(1);
                if failures >= self.policy.failure_threshold {
                    self.open(now, 1);
                } else {
                    self.state = BreakerState::Closed {
                        consecutive_failures: failures,
                    };
                }
            }
            BreakerState::HalfOpen { trips, .. } => self.open(now, trips.saturating_add(1)),
            // An attempt admitted before the breaker opened finished late: stay open.
            BreakerState::Open { .. } => {}
        }
    }

    fn open(&mut self, now: SystemTime, trips: u32) {
        let cool_down = self.cool_down_after(trips.saturating_sub(1));
        let until = now.checked_add(cool_down).unwrap_or(now);
        self.state = BreakerState::Open {
            since: now,
            until,
            trips,
        };
    }

    /// `min(max_cool_down, cool_down · 2^doublings)`.
    fn cool_down_after(&self, doublings: u32) -> Duration {
        let factor = 1u32 << doublings.min(31);
        self.policy
            .cool_down
            .checked_mul(factor)
            .unwrap_or(self.policy.max_cool_down)
            .min(self.policy.max_cool_down)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    /// Returns the same sample every time.
    struct FixedRng(u64);

    impl TryRng for FixedRng {
        type Error = Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Infallible> {
            Ok(self.0 as u32)
        }
        fn try_next_u64(&mut self) -> Result<u64, Infallible> {
            Ok(self.0)
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
            dst.fill(self.0 as u8);
            Ok(())
        }
    }

    /// Always fails, like an exhausted entropy source.
    struct BrokenRng;

    #[derive(Debug)]
    struct NoEntropy;

    impl std::fmt::Display for NoEntropy {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("no entropy")
        }
    }

    impl std::error::Error for NoEntropy {}

    impl TryRng for BrokenRng {
        type Error = NoEntropy;
        fn try_next_u32(&mut self) -> Result<u32, NoEntropy> {
            Err(NoEntropy)
        }
        fn try_next_u64(&mut self) -> Result<u64, NoEntropy> {
            Err(NoEntropy)
        }
        fn try_fill_bytes(&mut self, _dst: &mut [u8]) -> Result<(), NoEntropy> {
            Err(NoEntropy)
        }
    }

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn status(code: u16) -> AttemptOutcome {
        AttemptOutcome::Response {
            status: code,
            retry_after: None,
        }
    }

    fn status_with_retry_after(code: u16, value: &str) -> AttemptOutcome {
        AttemptOutcome::Response {
            status: code,
            retry_after: Some(value.to_owned()),
        }
    }

    const NOW: u64 = 1_700_000_000;
    const MAX_SAMPLE: u64 = u64::MAX;

    #[test]
    fn classifies_status_codes() {
        let cases = [
            (200, OutcomeClass::Delivered),
            (204, OutcomeClass::Delivered),
            (299, OutcomeClass::Delivered),
            (410, OutcomeClass::Gone),
            (408, OutcomeClass::Transient),
            (425, OutcomeClass::Transient),
            (429, OutcomeClass::Transient),
            (500, OutcomeClass::Transient),
            (502, OutcomeClass::Transient),
            (504, OutcomeClass::Transient),
            (599, OutcomeClass::Transient),
            (0, OutcomeClass::Transient),
            (600, OutcomeClass::Transient),
            (101, OutcomeClass::Rejected),
            (301, OutcomeClass::Rejected),
            (307, OutcomeClass::Rejected),
            (400, OutcomeClass::Rejected),
            (401, OutcomeClass::Rejected),
            (404, OutcomeClass::Rejected),
            (413, OutcomeClass::Rejected),
        ];
        for (code, class) in cases {
            assert_eq!(status(code).class(), class, "status {code}");
        }
        assert_eq!(AttemptOutcome::Timeout.class(), OutcomeClass::Transient);
        assert_eq!(AttemptOutcome::Transport.class(), OutcomeClass::Transient);
        assert_eq!(AttemptOutcome::NotSent.class(), OutcomeClass::Rejected);
        assert!(AttemptOutcome::NotSent.is_failure());
        assert!(!status(201).is_failure());
        assert!(status(410).is_failure());
    }

    #[test]
    fn success_and_gone_end_the_delivery() {
        let policy = RetryPolicy::default();
        let decide = |outcome| {
            policy
                .decide(1, &outcome, at(NOW), &mut FixedRng(0))
                .unwrap()
        };
        assert_eq!(decide(status(200)), Decision::Delivered);
        assert_eq!(decide(status(410)), Decision::DisableEndpoint);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy::default();
        let seconds: Vec<u64> = (1..=16)
            .map(|retry| policy.backoff_ceiling(retry).as_secs())
            .collect();
        assert_eq!(
            seconds,
            [
                5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10240, 20480, 40960, 43200,
                43200
            ]
        );
        assert_eq!(policy.backoff_ceiling(u32::MAX), policy.max_delay);
    }

    #[test]
    fn full_jitter_spans_zero_to_the_ceiling() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.jittered_backoff(3, &mut FixedRng(0)), Duration::ZERO);
        assert_eq!(
            policy.jittered_backoff(3, &mut FixedRng(MAX_SAMPLE)),
            Duration::from_secs(20)
        );
        assert_eq!(
            policy.jittered_backoff(3, &mut FixedRng(1 << 63)),
            Duration::from_millis(10_000)
        );
        // Without entropy the slowest delay is used rather than none.
        assert_eq!(
            policy.jittered_backoff(3, &mut BrokenRng),
            Duration::from_secs(20)
        );
    }

    #[test]
    fn transient_failures_retry_until_max_attempts() {
        let policy = RetryPolicy::default();
        let mut rng = FixedRng(MAX_SAMPLE);
        for attempt in 1..policy.max_attempts {
            let decision = policy
                .decide(attempt, &AttemptOutcome::Timeout, at(NOW), &mut rng)
                .unwrap();
            let delay = policy.backoff_ceiling(attempt);
            assert_eq!(
                decision,
                Decision::RetryAt {
                    at: at(NOW) + delay,
                    delay
                },
                "attempt {attempt}"
            );
        }
        let last = policy
            .decide(policy.max_attempts, &status(503), at(NOW), &mut rng)
            .unwrap();
        assert_eq!(
            last,
            Decision::GiveUp {
                attempts: 18,
                last: OutcomeClass::Transient
            }
        );
    }

    #[test]
    fn rejections_give_up_after_a_few_attempts() {
        let policy = RetryPolicy::default();
        let mut rng = FixedRng(MAX_SAMPLE);
        for attempt in 1..3 {
            let decision = policy
                .decide(attempt, &status(404), at(NOW), &mut rng)
                .unwrap();
            assert!(
                matches!(decision, Decision::RetryAt { .. }),
                "attempt {attempt}"
            );
        }
        let decision = policy.decide(3, &status(302), at(NOW), &mut rng).unwrap();
        assert_eq!(
            decision,
            Decision::GiveUp {
                attempts: 3,
                last: OutcomeClass::Rejected
            }
        );
    }

    #[test]
    fn retry_after_raises_the_delay_within_the_ceiling() {
        let policy = RetryPolicy::default();
        let mut rng = FixedRng(0);
        let seconds = policy
            .decide(1, &status_with_retry_after(429, "120"), at(NOW), &mut rng)
            .unwrap();
        assert_eq!(
            seconds,
            Decision::RetryAt {
                at: at(NOW + 120),
                delay: Duration::from_secs(120)
            }
        );

        // 1_700_000_000 is Tue, 14 Nov 2023 22:13:20 GMT.
        let date = status_with_retry_after(503, "Tue, 14 Nov 2023 22:23:20 GMT");
        let decision = policy.decide(1, &date, at(NOW), &mut rng).unwrap();
        assert_eq!(
            decision,
            Decision::RetryAt {
                at: at(NOW + 600),
                delay: Duration::from_secs(600)
            }
        );

        let huge = status_with_retry_after(503, "99999999999999999999999");
        let decision = policy.decide(1, &huge, at(NOW), &mut rng).unwrap();
        assert_eq!(
            decision,
            Decision::RetryAt {
                at: at(NOW) + policy.max_retry_after,
                delay: policy.max_retry_after
            }
        );
    }

    #[test]
    fn a_short_or_broken_retry_after_keeps_the_backoff() {
        let policy = RetryPolicy::default();
        let mut rng = FixedRng(MAX_SAMPLE);
        for value in ["1", "soon", "", "Tue, 14 Nov 2023 22:13:00 GMT"] {
            let decision = policy
                .decide(4, &status_with_retry_after(503, value), at(NOW), &mut rng)
                .unwrap();
            assert_eq!(
                decision,
                Decision::RetryAt {
                    at: at(NOW + 40),
                    delay: Duration::from_secs(40)
                },
                "{value:?}"
            );
        }
    }

    #[test]
    fn parses_both_retry_after_forms() {
        let now = at(NOW);
        assert_eq!(parse_retry_after("0", now), Ok(Duration::ZERO));
        assert_eq!(parse_retry_after(" 30\t", now), Ok(Duration::from_secs(30)));
        for date in [
            "Tue, 14 Nov 2023 22:14:20 GMT",
            "Tuesday, 14-Nov-23 22:14:20 GMT",
            "Tue Nov 14 22:14:20 2023",
        ] {
            assert_eq!(
                parse_retry_after(date, now),
                Ok(Duration::from_secs(60)),
                "{date}"
            );
        }
        assert_eq!(
            parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now),
            Ok(Duration::ZERO)
        );
        for bad in [
            "",
            "-5",
            "1.5",
            "+5",
            "tomorrow",
            "Tue, 32 Nov 2023 22:00:00 GMT",
        ] {
            assert!(
                matches!(
                    parse_retry_after(bad, now),
                    Err(RetryError::RetryAfter { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn attempt_zero_is_refused() {
        let result = RetryPolicy::default().decide(0, &status(500), at(NOW), &mut FixedRng(0));
        assert_eq!(result, Err(RetryError::AttemptZero));
    }

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(BreakerPolicy {
            failure_threshold: 3,
            cool_down: Duration::from_secs(60),
            max_cool_down: Duration::from_secs(200),
        })
    }

    #[test]
    fn breaker_opens_after_consecutive_failures() {
        let mut breaker = breaker();
        breaker.record(&status(500), at(NOW));
        breaker.record(&status(500), at(NOW));
        assert_eq!(
            breaker.state(),
            &BreakerState::Closed {
                consecutive_failures: 2
            }
        );
        assert_eq!(breaker.admit(at(NOW)), Admission::Allowed);
        breaker.record(&AttemptOutcome::Timeout, at(NOW + 1));
        assert_eq!(
            breaker.state(),
            &BreakerState::Open {
                since: at(NOW + 1),
                until: at(NOW + 61),
                trips: 1
            }
        );
        assert_eq!(
            breaker.admit(at(NOW + 60)),
            Admission::Paused {
                retry_at: at(NOW + 61)
            }
        );
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let mut breaker = breaker();
        breaker.record(&status(500), at(NOW));
        breaker.record(&status(500), at(NOW));
        breaker.record(&status(200), at(NOW));
        breaker.record(&status(500), at(NOW));
        assert_eq!(
            breaker.state(),
            &BreakerState::Closed {
                consecutive_failures: 1
            }
        );
    }

    #[test]
    fn half_open_admits_one_trial_and_closes_on_success() {
        let mut breaker = breaker();
        for _ in 0..3 {
            breaker.record(&status(502), at(NOW));
        }
        assert_eq!(breaker.admit(at(NOW + 60)), Admission::Allowed);
        assert_eq!(
            breaker.state(),
            &BreakerState::HalfOpen {
                trips: 1,
                trial_started: Some(at(NOW + 60))
            }
        );
        // A second caller waits for the trial.
        assert_eq!(
            breaker.admit(at(NOW + 61)),
            Admission::Paused {
                retry_at: at(NOW + 120)
            }
        );
        breaker.record(&status(204), at(NOW + 62));
        assert_eq!(
            breaker.state(),
            &BreakerState::Closed {
                consecutive_failures: 0
            }
        );
    }

    #[test]
    fn a_failed_trial_reopens_with_a_doubled_capped_cool_down() {
        let mut breaker = breaker();
        for _ in 0..3 {
            breaker.record(&status(502), at(NOW));
        }
        assert_eq!(breaker.admit(at(NOW + 60)), Admission::Allowed);
        breaker.record(&status(502), at(NOW + 60));
        assert_eq!(
            breaker.state(),
            &BreakerState::Open {
                since: at(NOW + 60),
                until: at(NOW + 180),
                trips: 2
            }
        );
        assert_eq!(breaker.admit(at(NOW + 180)), Admission::Allowed);
        breaker.record(&AttemptOutcome::Transport, at(NOW + 180));
        // 60 · 2² = 240 s is capped at 200 s.
        assert_eq!(
            breaker.state(),
            &BreakerState::Open {
                since: at(NOW + 180),
                until: at(NOW + 380),
                trips: 3
            }
        );
    }

    #[test]
    fn a_lost_trial_is_replaced_after_a_cool_down() {
        let mut breaker = breaker();
        for _ in 0..3 {
            breaker.record(&status(502), at(NOW));
        }
        assert_eq!(breaker.admit(at(NOW + 60)), Admission::Allowed);
        assert!(matches!(
            breaker.admit(at(NOW + 119)),
            Admission::Paused { .. }
        ));
        assert_eq!(breaker.admit(at(NOW + 120)), Admission::Allowed);
    }

    #[test]
    fn breaker_state_survives_a_round_trip_through_json() {
        let mut breaker = breaker();
        for _ in 0..3 {
            breaker.record(&status(502), at(NOW));
        }
        let json = serde_json::to_value(&breaker).unwrap();
        assert_eq!(json["state"]["state"], "open");
        assert_eq!(json["state"]["trips"], 1);
        let restored: CircuitBreaker = serde_json::from_value(json).unwrap();
        assert_eq!(restored, breaker);
    }

    proptest::proptest! {
        #[test]
        fn decisions_never_panic_and_respect_bounds(
            attempt in 0u32..40,
            code in proptest::num::u16::ANY,
            retry_after in proptest::option::of(".{0,40}"),
            sample in proptest::num::u64::ANY,
            now in proptest::num::u64::ANY,
        ) {
            let policy = RetryPolicy::default();
            let now = UNIX_EPOCH.checked_add(Duration::from_secs(now)).unwrap_or(UNIX_EPOCH);
            let outcome = AttemptOutcome::Response { status: code, retry_after };
            if let Ok(Decision::RetryAt { delay, .. }) =
                policy.decide(attempt, &outcome, now, &mut FixedRng(sample))
            {
                proptest::prop_assert!(delay <= policy.max_delay.max(policy.max_retry_after));
            }
        }
    }
}
