//! One memory pool per query.
//!
//! Every statement runs on a query service lent to it alone ([`Sessions::lease`]); the service's
//! context has its own [`QueryPool`]: at most `query_memory_limit_mb` for that statement, drawn
//! from the server's pool of `memory_limit_mb` that bounds all running statements together. One
//! client's large sort therefore fails at its own limit instead of taking the memory other
//! clients' queries need, and the server's total stays bounded.
//!
//! A service goes back to the idle list when its statement's rows have all been sent (or the
//! client goes away), and is lent again only when its pool is empty. Services are built on
//! demand and kept: building one (datafusion-postgres' parser setup, a copy of the context's
//! state) costs far more than a query over a small mart, and there are never more of them than
//! statements running at once (bounded by `max_connections`).

use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::common::{Result, resources_datafusion_err};
use datafusion::execution::memory_pool::{
    GreedyMemoryPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionContext;
use datafusion_postgres::{DfSessionService, QueryHook};

const MB: usize = 1024 * 1024;

/// The server's pool: what all running statements may hold together.
pub fn server_pool(memory_limit_mb: usize) -> Arc<dyn MemoryPool> {
    Arc::new(GreedyMemoryPool::new(memory_limit_mb.max(1) * MB))
}

/// One statement's memory: at most its limit, each byte also reserved from the server's pool.
#[derive(Debug)]
pub struct QueryPool {
    limit: usize,
    server_limit: usize,
    used: AtomicUsize,
    /// Which limit last refused memory: 0 none, [`OWN`], [`SERVER`]. Operators that can spill
    /// replace the pool's error with their own, so the client is told from this.
    refused: AtomicU8,
    server: Mutex<MemoryReservation>,
}

const OWN: u8 = 1;
const SERVER: u8 = 2;

impl QueryPool {
    /// A pool of `limit_mb` (at most the server's) drawing on `server`.
    pub fn new(limit_mb: usize, server: &Arc<dyn MemoryPool>) -> Self {
        let server_limit = match server.memory_limit() {
            MemoryLimit::Finite(bytes) => bytes,
            _ => usize::MAX,
        };
        Self {
            limit: (limit_mb.max(1) * MB).min(server_limit),
            server_limit,
            used: AtomicUsize::new(0),
            refused: AtomicU8::new(0),
            server: Mutex::new(MemoryConsumer::new("query").register(server)),
        }
    }

    /// What refused the statement memory, for the client: its own limit or the server's, with
    /// the setting to raise. `None` when nothing was refused.
    pub fn refusal(&self) -> Option<String> {
        match self.refused.load(Ordering::Relaxed) {
            OWN if self.limit >= self.server_limit => Some(format!(
                "the statement needs more than all the server's query memory \
                 (memory_limit_mb = {}, which caps query_memory_limit_mb)",
                self.server_limit / MB
            )),
            OWN => Some(format!(
                "the statement needs more than its own memory limit (query_memory_limit_mb = {})",
                self.limit / MB
            )),
            SERVER => Some(format!(
                "the memory of all running statements (memory_limit_mb = {}) is in use; \
                 try again when other queries have finished",
                self.server_limit / MB
            )),
            _ => None,
        }
    }

    fn server(&self) -> std::sync::MutexGuard<'_, MemoryReservation> {
        self.server.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Display for QueryPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "QueryPool({} of {} bytes)",
            self.used.load(Ordering::Relaxed),
            self.limit
        )
    }
}

impl MemoryPool for QueryPool {
    fn name(&self) -> &str {
        "query"
    }

    fn grow(&self, _reservation: &MemoryReservation, additional: usize) {
        self.used.fetch_add(additional, Ordering::Relaxed);
        self.server().grow(additional);
    }

    fn shrink(&self, _reservation: &MemoryReservation, shrink: usize) {
        self.used.fetch_sub(shrink, Ordering::Relaxed);
        self.server().shrink(shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        let limit = self.limit;
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(additional).filter(|n| *n <= limit)
            })
            .map_err(|used| {
                self.refused.store(OWN, Ordering::Relaxed);
                resources_datafusion_err!(
                    "the statement needs more than the server's per-query memory limit \
                     (query_memory_limit_mb = {}): {} held, {} more asked by {}",
                    limit / MB,
                    used,
                    additional,
                    reservation.consumer().name()
                )
            })?;
        let server = self.server();
        if let Err(e) = server.try_grow(additional) {
            drop(server);
            self.used.fetch_sub(additional, Ordering::Relaxed);
            self.refused.store(SERVER, Ordering::Relaxed);
            return Err(resources_datafusion_err!(
                "the server's memory for running statements (memory_limit_mb) is in use by \
                 other queries; try again: {e}"
            ));
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.limit)
    }
}

/// A query service and the pool its statements use.
struct Session {
    service: Arc<DfSessionService>,
    pool: Arc<QueryPool>,
}

/// The query services, lent one per statement.
pub struct Sessions {
    base: Arc<SessionContext>,
    hooks: Vec<Arc<dyn QueryHook>>,
    server: Arc<dyn MemoryPool>,
    query_limit_mb: usize,
    idle: Arc<Mutex<Vec<Session>>>,
}

impl Sessions {
    /// Services over `base`'s catalogs, functions and settings, each with its own pool of
    /// `query_limit_mb` drawn from `server`.
    pub fn new(
        base: Arc<SessionContext>,
        hooks: Vec<Arc<dyn QueryHook>>,
        server: Arc<dyn MemoryPool>,
        query_limit_mb: usize,
    ) -> Self {
        Self {
            base,
            hooks,
            server,
            query_limit_mb,
            idle: Default::default(),
        }
    }

    /// A service for one statement, with an empty pool of its own.
    pub fn lease(&self) -> Lease {
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.pop()
        };
        let session = reused.unwrap_or_else(|| self.session());
        session.pool.refused.store(0, Ordering::Relaxed);
        Lease {
            session: Some(session),
            idle: self.idle.clone(),
        }
    }

    /// How many services wait to be lent (for tests).
    pub fn idle(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn session(&self) -> Session {
        let pool = Arc::new(QueryPool::new(self.query_limit_mb, &self.server));
        let state = self.base.state();
        let runtime = RuntimeEnv {
            memory_pool: pool.clone(),
            ..state.runtime_env().as_ref().clone()
        };
        let state = SessionStateBuilder::new_from_existing(state)
            .with_runtime_env(Arc::new(runtime))
            .build();
        let ctx = Arc::new(SessionContext::new_with_state(state));
        Session {
            service: Arc::new(DfSessionService::new_with_hooks(ctx, self.hooks.clone())),
            pool,
        }
    }
}

/// A service lent to one statement; it goes back to the idle list when dropped.
pub struct Lease {
    session: Option<Session>,
    idle: Arc<Mutex<Vec<Session>>>,
}

impl Lease {
    /// The service.
    pub fn service(&self) -> &DfSessionService {
        &self
            .session
            .as_ref()
            .expect("a lease holds its session")
            .service
    }

    /// The statement's pool.
    pub fn pool(&self) -> &QueryPool {
        &self
            .session
            .as_ref()
            .expect("a lease holds its session")
            .pool
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        // Memory still held means part of the statement still runs somewhere: that service is
        // not lent again (its pool would not start empty); it is freed when the last part ends.
        if session.pool.reserved() == 0 {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(session);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reservation(pool: &Arc<QueryPool>) -> MemoryReservation {
        let pool: Arc<dyn MemoryPool> = pool.clone();
        MemoryConsumer::new("sort").register(&pool)
    }

    #[test]
    fn a_statement_stops_at_its_own_limit_while_the_server_has_room() {
        let server = server_pool(100);
        let pool = Arc::new(QueryPool::new(10, &server));
        let r = reservation(&pool);
        r.try_grow(8 * MB).unwrap();
        let e = r.try_grow(3 * MB).unwrap_err().to_string();
        assert!(e.starts_with("Resources exhausted"), "{e}");
        assert!(e.contains("query_memory_limit_mb = 10"), "{e}");
        assert!(e.contains("sort"), "{e}");
        let told = pool.refusal().unwrap();
        assert!(told.contains("query_memory_limit_mb = 10"), "{told}");
        // The failed request took nothing, here or from the server.
        assert_eq!(pool.reserved(), 8 * MB);
        assert_eq!(server.reserved(), 8 * MB);
        r.try_grow(2 * MB).unwrap();
        assert_eq!(server.reserved(), 10 * MB);
    }

    #[test]
    fn each_statement_has_its_limit_and_all_share_the_servers() {
        let server = server_pool(25);
        let (a, b, c) = (
            Arc::new(QueryPool::new(10, &server)),
            Arc::new(QueryPool::new(10, &server)),
            Arc::new(QueryPool::new(10, &server)),
        );
        let (ra, rb, rc) = (reservation(&a), reservation(&b), reservation(&c));
        // Two statements at their full limit at once: a shared pool of 10 could not.
        ra.try_grow(10 * MB).unwrap();
        rb.try_grow(10 * MB).unwrap();
        // The third is within its own limit but past what the server has left.
        let e = rc.try_grow(6 * MB).unwrap_err().to_string();
        assert!(e.contains("memory_limit_mb"), "{e}");
        assert_eq!(c.reserved(), 0);
        let told = c.refusal().unwrap();
        assert!(told.contains("memory_limit_mb = 25"), "{told}");
        assert!(a.refusal().is_none());
        rc.try_grow(5 * MB).unwrap();
        // What a statement frees is the others' again.
        drop(ra);
        assert_eq!(a.reserved(), 0);
        assert_eq!(server.reserved(), 15 * MB);
        rc.shrink(5 * MB);
        rc.try_grow(10 * MB).unwrap();
        drop((rb, rc));
        assert_eq!(server.reserved(), 0);
    }

    #[test]
    fn a_limit_capped_by_the_servers_is_named_as_the_servers() {
        let server = server_pool(16);
        let pool = Arc::new(QueryPool::new(16, &server));
        assert!(reservation(&pool).try_grow(17 * MB).is_err());
        let told = pool.refusal().unwrap();
        assert!(told.contains("memory_limit_mb = 16, which caps"), "{told}");
        // A per-statement setting above the server's is capped by it.
        let wide = Arc::new(QueryPool::new(512, &server));
        assert!(reservation(&wide).try_grow(17 * MB).is_err());
        assert!(wide.refusal().unwrap().contains("which caps"));
    }

    #[test]
    fn a_dropped_pool_returns_everything_to_the_server() {
        let server = server_pool(20);
        let pool = Arc::new(QueryPool::new(20, &server));
        let r = reservation(&pool);
        r.grow(15 * MB);
        assert_eq!(server.reserved(), 15 * MB);
        // Even if a reservation outlives its statement's pool handle, the server gets its
        // bytes back when the last of them goes.
        drop(pool);
        drop(r);
        assert_eq!(server.reserved(), 0);
    }

    #[tokio::test]
    async fn statements_running_at_once_get_pools_of_their_own() {
        let base = Arc::new(SessionContext::new());
        let sessions = Sessions::new(base, vec![], server_pool(64), 8);
        let first = sessions.lease();
        let second = sessions.lease();
        assert!(!std::ptr::eq(first.pool(), second.pool()));
        let held: Arc<dyn MemoryPool> = first.session.as_ref().unwrap().pool.clone();
        let r = MemoryConsumer::new("join").register(&held);
        r.try_grow(8 * MB).unwrap();
        assert_eq!(second.pool().reserved(), 0);
        // A finished statement's service is lent again; one still holding memory is not.
        drop(second);
        assert_eq!(sessions.idle(), 1);
        drop(first);
        assert_eq!(sessions.idle(), 1);
        drop(r);
        let again = sessions.lease();
        assert_eq!(again.pool().reserved(), 0);
        assert_eq!(sessions.idle(), 0);
    }
}
