//! Per-user budgets on what makes rooms and memberships: creating group rooms, opening DMs and joining
//! rooms (`limits.rooms_per_hour`, `dms_per_hour`, `joins_per_minute`), each a keyed token bucket per
//! user id; and [`Refusal`], the error of the handlers that spend them, which answers 429 with
//! `Retry-After`.
//!
//! The buckets live in memory on each node (a user spreading requests over N nodes gets N budgets);
//! housekeeping forgets the users whose buckets are full again, so memory follows recent users only.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use banter_actors::model::UserId;
use banter_actors::ports::StoreError;
use banter_actors::rules::RuleError;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::config::LimitsConfig;
use crate::error::ApiError;

type UserLimiter<C> =
    RateLimiter<UserId, DefaultKeyedStateStore<UserId>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// What a request spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spend {
    /// Creating a group room.
    CreateRoom,
    /// Opening a DM that does not exist yet.
    OpenDm,
    /// Joining a room one is not in.
    Join,
}

impl Spend {
    fn what(self) -> &'static str {
        match self {
            Spend::CreateRoom => "too many rooms created",
            Spend::OpenDm => "too many DMs opened",
            Spend::Join => "too many joins",
        }
    }
}

/// The per-user budgets of one node.
pub struct RoomBudgets<C: Clock = DefaultClock> {
    rooms: UserLimiter<C>,
    dms: UserLimiter<C>,
    joins: UserLimiter<C>,
    clock: C,
}

impl RoomBudgets {
    /// Makes the budgets `limits` sets, on the system clock.
    pub fn new(limits: &LimitsConfig) -> Self {
        Self::with_clock(limits, DefaultClock::default())
    }
}

impl<C: Clock + Clone> RoomBudgets<C> {
    /// Makes the budgets `limits` sets, on `clock`.
    pub fn with_clock(limits: &LimitsConfig, clock: C) -> Self {
        let keyed =
            |quota| RateLimiter::new(quota, DefaultKeyedStateStore::default(), clock.clone());
        RoomBudgets {
            rooms: keyed(Quota::per_hour(nonzero(limits.rooms_per_hour))),
            dms: keyed(Quota::per_hour(nonzero(limits.dms_per_hour))),
            joins: keyed(Quota::per_minute(nonzero(limits.joins_per_minute))),
            clock,
        }
    }

    /// Spends one unit of `user`'s budget for `spend`, or returns the 429 that says how long to wait.
    pub fn spend(&self, spend: Spend, user: UserId) -> Result<(), Refusal> {
        let limiter = match spend {
            Spend::CreateRoom => &self.rooms,
            Spend::OpenDm => &self.dms,
            Spend::Join => &self.joins,
        };
        limiter.check_key(&user).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            Refusal::throttled(spend.what(), wait)
        })
    }

    /// Forgets the users whose buckets are full again (indistinguishable from a user never seen) and
    /// gives the memory back; run periodically by housekeeping.
    pub fn retain_recent(&self) {
        for limiter in [&self.rooms, &self.dms, &self.joins] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Returns how many users the buckets remember, over the three budgets.
    pub fn len(&self) -> usize {
        self.rooms.len() + self.dms.len() + self.joins.len()
    }

    /// Tells whether no user is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn nonzero(v: u32) -> std::num::NonZeroU32 {
    std::num::NonZeroU32::new(v).unwrap_or(std::num::NonZeroU32::MIN)
}

/// The error of a handler that spends a budget: an [`ApiError`], with a `Retry-After` header when it is
/// a 429.
#[derive(Debug)]
pub struct Refusal {
    error: ApiError,
    retry_after_secs: Option<u64>,
}

impl Refusal {
    /// 429 `rate_limited`, retry after `wait` (rounded up to whole seconds, at least 1).
    pub fn throttled(what: &str, wait: Duration) -> Self {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let secs = secs.max(1);
        Refusal {
            error: ApiError::rate_limited(format!("{what}; try again in {secs} s")),
            retry_after_secs: Some(secs),
        }
    }

    /// 403 `too_many_rooms`: the user is in `max` rooms already.
    pub fn too_many_rooms(max: u64) -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "too_many_rooms",
            format!("a user may be in at most {max} rooms; leave one first"),
        )
        .into()
    }

    /// Returns the error answered.
    pub fn error(&self) -> &ApiError {
        &self.error
    }

    /// Returns the `Retry-After` seconds, for a 429.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after_secs
    }
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Refusal {
            error,
            retry_after_secs: None,
        }
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<RuleError> for Refusal {
    fn from(e: RuleError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = self.error.into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn limits() -> LimitsConfig {
        LimitsConfig {
            rooms_per_hour: 2,
            dms_per_hour: 3,
            joins_per_minute: 4,
            ..LimitsConfig::default()
        }
    }

    #[test]
    fn each_budget_is_per_user_and_says_when_to_retry() {
        let clock = FakeRelativeClock::default();
        let b = RoomBudgets::with_clock(&limits(), clock.clone());
        let (alice, bob) = (UserId(1), UserId(2));
        for (spend, n) in [(Spend::CreateRoom, 2), (Spend::OpenDm, 3), (Spend::Join, 4)] {
            for _ in 0..n {
                assert!(b.spend(spend, alice).is_ok(), "{spend:?}");
            }
            let refused = b.spend(spend, alice).expect_err("over budget");
            assert_eq!(refused.error().status, StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(refused.error().code, "rate_limited");
            assert!(b.spend(spend, bob).is_ok(), "bob has his own budget");
        }
        // One room every 30 minutes, one join every 15 s.
        let rooms = b.spend(Spend::CreateRoom, alice).expect_err("over budget");
        assert_eq!(rooms.retry_after_secs(), Some(1800));
        let joins = b.spend(Spend::Join, alice).expect_err("over budget");
        assert_eq!(joins.retry_after_secs(), Some(15));
        clock.advance(Duration::from_millis(14_500));
        let joins = b.spend(Spend::Join, alice).expect_err("still over budget");
        assert_eq!(joins.retry_after_secs(), Some(1), "rounded up");
        clock.advance(Duration::from_millis(500));
        assert!(b.spend(Spend::Join, alice).is_ok());
    }

    #[test]
    fn the_429_carries_retry_after_and_the_error_body() {
        let r = Refusal::throttled("too many joins", Duration::from_millis(2_001)).into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            r.headers()
                .get(header::RETRY_AFTER)
                .map(HeaderValue::as_bytes),
            Some(&b"3"[..])
        );
        let r = Refusal::too_many_rooms(5).into_response();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.headers().get(header::RETRY_AFTER).is_none());
    }

    #[test]
    fn retain_recent_forgets_users_whose_buckets_refilled() {
        let clock = FakeRelativeClock::default();
        let b = RoomBudgets::with_clock(&limits(), clock.clone());
        for u in 0..100 {
            b.spend(Spend::Join, UserId(u)).expect("within budget");
        }
        b.spend(Spend::CreateRoom, UserId(1))
            .expect("within budget");
        assert_eq!(b.len(), 101);
        b.retain_recent();
        assert_eq!(b.len(), 101, "buckets not yet full are kept");
        // One join of a 4-a-minute bucket is back after 15 s, one room of a 2-an-hour bucket after
        // 30 minutes; governor forgets a key one more interval later.
        clock.advance(Duration::from_secs(31));
        b.retain_recent();
        assert_eq!(b.len(), 1);
        clock.advance(Duration::from_secs(3600));
        b.retain_recent();
        assert!(b.is_empty());
    }
}
