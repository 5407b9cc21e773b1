//! Slowing down password guessing: after a failed login, the next attempt for the same user, or
//! from the same address, waits before its password is checked. The wait doubles with each
//! consecutive failure (`login_delay_base_ms`, 2×, 4×, … up to `login_delay_max_ms`) and a
//! successful login clears both counters. Counters older than [`FORGET_AFTER`] are dropped, and
//! the table is bounded, so a flood of names cannot grow memory without limit.

use std::collections::HashMap;
use std::fmt::Debug;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion_postgres::pgwire;
use futures::Sink;
use pgwire::api::auth::StartupHandler;
use pgwire::api::{ClientInfo, PgWireConnectionState};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

/// A failure streak is forgotten after this long without another failure.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Most users and addresses tracked at once (the oldest streaks are dropped first).
const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Addr(IpAddr),
}

/// Consecutive failed logins per user and per address.
#[derive(Debug)]
pub struct LoginThrottle {
    base: Duration,
    max: Duration,
    streaks: Mutex<HashMap<Key, (u32, Instant)>>,
}

impl LoginThrottle {
    /// Waits `base` after the first failure, doubling up to `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            streaks: Mutex::default(),
        }
    }

    fn keys(user: &str, addr: IpAddr) -> [Key; 2] {
        [Key::User(user.to_string()), Key::Addr(addr)]
    }

    /// How long the next attempt of `user` from `addr` waits.
    pub fn delay(&self, user: &str, addr: IpAddr) -> Duration {
        let streaks = self.streaks.lock().expect("throttle lock");
        let failures = Self::keys(user, addr)
            .iter()
            .filter_map(|k| streaks.get(k))
            .filter(|(_, at)| at.elapsed() < FORGET_AFTER)
            .map(|(n, _)| *n)
            .max()
            .unwrap_or(0);
        if failures == 0 {
            return Duration::ZERO;
        }
        crate::http::retry::exponential(self.base, failures - 1, self.max)
    }

    /// Records a failed login.
    pub fn failed(&self, user: &str, addr: IpAddr) {
        let mut streaks = self.streaks.lock().expect("throttle lock");
        if streaks.len() >= MAX_TRACKED {
            streaks.retain(|_, (_, at)| at.elapsed() < FORGET_AFTER);
            if streaks.len() >= MAX_TRACKED
                && let Some(oldest) = streaks
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| k.clone())
            {
                streaks.remove(&oldest);
            }
        }
        for key in Self::keys(user, addr) {
            let entry = streaks.entry(key).or_insert((0, Instant::now()));
            if entry.1.elapsed() >= FORGET_AFTER {
                entry.0 = 0;
            }
            *entry = (entry.0.saturating_add(1), Instant::now());
        }
    }

    /// Records a successful login: both streaks end.
    pub fn succeeded(&self, user: &str, addr: IpAddr) {
        let mut streaks = self.streaks.lock().expect("throttle lock");
        for key in Self::keys(user, addr) {
            streaks.remove(&key);
        }
    }
}

/// A connection's startup handler that waits once before its password is checked and counts
/// the outcome.
pub struct Throttled<H> {
    inner: Arc<H>,
    throttle: Arc<LoginThrottle>,
    waited: AtomicBool,
}

impl<H> Throttled<H> {
    /// Wraps one connection's handler.
    pub fn new(inner: Arc<H>, throttle: Arc<LoginThrottle>) -> Self {
        Self {
            inner,
            throttle,
            waited: AtomicBool::new(false),
        }
    }
}

fn is_auth_failure(e: &PgWireError) -> bool {
    match e {
        PgWireError::InvalidPassword(_) => true,
        PgWireError::UserError(info) => info.code == "28P01",
        _ => false,
    }
}

#[async_trait]
impl<H: StartupHandler> StartupHandler for Throttled<H> {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let password = matches!(message, PgWireFrontendMessage::PasswordMessageFamily(_));
        let user = client.metadata().get("user").cloned().unwrap_or_default();
        let addr = client.socket_addr().ip();
        // SCRAM sends two password messages; the wait comes once, before the first.
        if password && !self.waited.swap(true, Ordering::Relaxed) {
            let wait = self.throttle.delay(&user, addr);
            if !wait.is_zero() {
                tracing::info!(user, %addr, wait_ms = wait.as_millis() as u64, "login delayed after failed attempts");
                tokio::time::sleep(wait).await;
            }
        }
        let result = self.inner.on_startup(client, message).await;
        match &result {
            Err(e) if is_auth_failure(e) => {
                tracing::warn!(user, %addr, "login failed");
                self.throttle.failed(&user, addr);
            }
            Ok(())
                if password && matches!(client.state(), PgWireConnectionState::ReadyForQuery) =>
            {
                self.throttle.succeeded(&user, addr);
            }
            _ => {}
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_per_user_and_per_address_and_success_clears_it() {
        let t = LoginThrottle::new(Duration::from_millis(100), Duration::from_millis(1000));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(t.delay("bi", a), Duration::ZERO);
        t.failed("bi", a);
        assert_eq!(t.delay("bi", a), Duration::from_millis(100));
        t.failed("bi", a);
        t.failed("bi", a);
        assert_eq!(t.delay("bi", a), Duration::from_millis(400));
        // The same user from another address, and another user from the same address, wait too.
        assert_eq!(t.delay("bi", b), Duration::from_millis(400));
        assert_eq!(t.delay("ops", a), Duration::from_millis(400));
        assert_eq!(t.delay("ops", b), Duration::ZERO);
        for _ in 0..40 {
            t.failed("bi", a);
        }
        assert_eq!(t.delay("bi", a), Duration::from_millis(1000), "capped");
        t.succeeded("bi", a);
        assert_eq!(t.delay("bi", a), Duration::ZERO);
        assert_eq!(t.delay("ops", b), Duration::ZERO);
    }

    #[test]
    fn the_table_stays_bounded() {
        let t = LoginThrottle::new(Duration::from_millis(1), Duration::from_millis(2));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for i in 0..(MAX_TRACKED + 50) {
            t.failed(&format!("u{i}"), a);
        }
        assert!(t.streaks.lock().unwrap().len() <= MAX_TRACKED + 1);
    }
}
