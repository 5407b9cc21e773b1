//! Answers to repeated dashboard queries, kept until the tables they read change.
//!
//! A dashboard sends the same few statements again and again (every viewer, every refresh),
//! and between two nightly runs their answers cannot change. The server keeps each answer —
//! the encoded rows, as they went to the client — under the statement's text, its parameter
//! values, the result formats asked for and the connection's settings (`TimeZone`,
//! `search_path`, `DateStyle`, the user…), and sends it again without planning or running
//! anything.
//!
//! What may be kept is decided from the statement's plan ([`cacheable`]): a plain query
//! (`SELECT`/`WITH`/`VALUES`; never `SET`, `SHOW`, `EXPLAIN`, cursors or transactions) that
//! reads only lake tables and views (not `pg_catalog` or `information_schema`) and calls only
//! immutable functions (not `now()`, `random()`, `current_user` …). Everything is dropped when
//! the refresher swaps in a new table version ([`ResultCache::invalidate`]); an answer computed
//! across that moment is not kept. An answer is kept only when all its rows were sent without
//! error. Memory is bounded by `result_cache_mb`; the least recently used answers go first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
use std::ops::ControlFlow;

use datafusion::execution::SessionState;
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, Statement, visit_expressions, visit_relations,
};
use datafusion::sql::sqlparser::{dialect::PostgreSqlDialect, parser::Parser};
use datafusion_postgres::pgwire;
use futures::StreamExt;
use pgwire::api::results::{FieldInfo, QueryResponse, Response};
use pgwire::messages::data::DataRow;

const MB: usize = 1024 * 1024;

/// Bytes counted for an entry beyond its rows' data (key, field list, bookkeeping).
const ENTRY_OVERHEAD: usize = 512;

/// Function names whose answer depends on the connection or the moment even where a library
/// declares them immutable.
const SESSION_FUNCTIONS: &[&str] = &["pg_", "current_", "session_", "inet_", "has_", "txid_"];

/// What an answer is kept under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    sql: String,
    params: Vec<Option<Bytes>>,
    formats: String,
    settings: Vec<(String, String)>,
}

impl Key {
    /// The statement `sql` with its bound `params`, the formats asked for (parameters and
    /// results, as the protocol gave them) and the connection's `metadata` (user, settings).
    pub fn new(
        sql: &str,
        params: &[Option<Bytes>],
        formats: String,
        metadata: &HashMap<String, String>,
    ) -> Self {
        let mut settings: Vec<_> = metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        settings.sort();
        Self {
            sql: sql.to_string(),
            params: params.to_vec(),
            formats,
            settings,
        }
    }

    fn bytes(&self) -> usize {
        self.sql.len()
            + self.params.iter().flatten().map(Bytes::len).sum::<usize>()
            + self
                .settings
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }
}

/// One kept answer.
struct Answer {
    fields: Arc<Vec<FieldInfo>>,
    command_tag: String,
    rows: Arc<Vec<DataRow>>,
}

struct Slot {
    answer: Answer,
    bytes: usize,
    used: u64,
}

#[derive(Default)]
struct State {
    slots: HashMap<Key, Slot>,
    bytes: usize,
    clock: u64,
}

/// What a lookup found.
pub enum Lookup {
    /// The kept answer, ready to send.
    Hit(Response),
    /// The cache is off: run it, keep nothing.
    Off,
    /// Not kept: run it, and keep it if it is [`cacheable`].
    Miss,
}

/// Hits and misses since the server started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Statements answered from the cache.
    pub hits: u64,
    /// Cacheable statements that ran (and were kept if complete).
    pub misses: u64,
    /// Answers kept now.
    pub entries: usize,
    /// Bytes they hold.
    pub bytes: usize,
}

/// The server's result cache (shared by all connections).
pub struct ResultCache {
    max_bytes: usize,
    generation: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    state: Mutex<State>,
}

impl ResultCache {
    /// A cache of at most `max_mb` MiB; 0 keeps nothing.
    pub fn new(max_mb: usize) -> Self {
        Self {
            max_bytes: max_mb * MB,
            generation: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether anything can be kept.
    pub fn enabled(&self) -> bool {
        self.max_bytes > 0
    }

    /// The current generation: an answer computed from it is kept only if no invalidation came
    /// in between.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Drops everything: the tables changed.
    pub fn invalidate(&self) {
        let mut state = self.state();
        self.generation.fetch_add(1, Ordering::AcqRel);
        state.slots.clear();
        state.bytes = 0;
    }

    /// The answer kept for `key`, if any.
    pub fn lookup(&self, key: &Key) -> Lookup {
        if !self.enabled() {
            return Lookup::Off;
        }
        let mut state = self.state();
        state.clock += 1;
        let clock = state.clock;
        let Some(slot) = state.slots.get_mut(key) else {
            return Lookup::Miss;
        };
        slot.used = clock;
        let answer = &slot.answer;
        self.hits.fetch_add(1, Ordering::Relaxed);
        let rows = answer.rows.clone();
        let stream = futures::stream::iter(0..rows.len()).map(move |i| Ok(rows[i].clone()));
        let mut response = QueryResponse::new(answer.fields.clone(), stream);
        response.set_command_tag(&answer.command_tag);
        Lookup::Hit(Response::Query(response))
    }

    /// Passes `response` through, keeping its rows under `key` once all were sent, if the
    /// tables did not change since `generation` and the answer fits.
    pub fn keep(self: &Arc<Self>, key: Key, generation: u64, response: Response) -> Response {
        let Response::Query(mut query) = response else {
            return response;
        };
        self.misses.fetch_add(1, Ordering::Relaxed);
        let fields = query.row_schema();
        let command_tag = query.command_tag().to_string();
        let limit = self.max_bytes / 4;
        let rows = std::mem::replace(&mut query.data_rows, Box::pin(futures::stream::empty()));
        let collected = Some((Vec::new(), key.bytes() + ENTRY_OVERHEAD, key, self.clone()));
        query.data_rows = Box::pin(futures::stream::unfold(
            (rows, collected),
            move |(mut rows, mut collected)| {
                let fields = fields.clone();
                let command_tag = command_tag.clone();
                async move {
                    let item = rows.next().await;
                    match &item {
                        Some(Ok(row)) => {
                            if let Some((kept, bytes, ..)) = &mut collected {
                                *bytes += row.data.len() + std::mem::size_of::<DataRow>();
                                if *bytes > limit {
                                    collected = None;
                                } else {
                                    kept.push(row.clone());
                                }
                            }
                        }
                        Some(Err(_)) => collected = None,
                        None => {
                            if let Some((kept, bytes, key, cache)) = collected.take() {
                                let answer = Answer {
                                    fields,
                                    command_tag,
                                    rows: Arc::new(kept),
                                };
                                cache.insert(key, answer, bytes, generation);
                            }
                        }
                    }
                    item.map(|i| (i, (rows, collected)))
                }
            },
        ));
        Response::Query(query)
    }

    fn insert(&self, key: Key, answer: Answer, bytes: usize, generation: u64) {
        if !self.enabled() || bytes > self.max_bytes {
            return;
        }
        let mut state = self.state();
        // Checked under the lock that `invalidate` takes: an answer computed before the tables
        // changed never lands after the cache was emptied.
        if self.generation() != generation {
            return;
        }
        while state.bytes + bytes > self.max_bytes {
            let Some(oldest) = state
                .slots
                .iter()
                .min_by_key(|(_, s)| s.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(slot) = state.slots.remove(&oldest) {
                state.bytes -= slot.bytes;
            }
        }
        state.clock += 1;
        let used = state.clock;
        if let Some(old) = state.slots.insert(
            key,
            Slot {
                answer,
                bytes,
                used,
            },
        ) {
            state.bytes -= old.bytes;
        }
        state.bytes += bytes;
    }

    /// Hits, misses and size.
    pub fn stats(&self) -> Stats {
        let state = self.state();
        Stats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: state.slots.len(),
            bytes: state.bytes,
        }
    }
}

/// The tables `plan` scans (as named in the statement) and their providers, subqueries
/// included; `None` when a scan's provider cannot be told.
pub fn scanned(plan: &LogicalPlan) -> Option<Vec<(TableReference, Arc<dyn TableProvider>)>> {
    let mut found = Vec::new();
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            found.push((scan.table_name.clone(), source_as_provider(&scan.source)?));
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .ok()?;
    Some(found)
}

fn immutable(plan: &LogicalPlan) -> bool {
    let mut ok = true;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|e| {
                if let Expr::ScalarFunction(f) = e {
                    let name = f.func.name().to_ascii_lowercase();
                    if f.func.signature().volatility != Volatility::Immutable
                        || session_dependent(&name)
                    {
                        ok = false;
                        return Ok(TreeNodeRecursion::Stop);
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    });
    ok
}

/// Whether the simple-protocol `sql` may be kept, from its text alone (planning it twice would
/// cost a first-time query as much again): one query whose every relation is a table or view
/// of `zones` (qualified, e.g. `marts.liquidity_vs_risk`) or a CTE of its own, and whose every
/// function is an aggregate, a window function or an immutable scalar function of `state`.
/// Anything else — unqualified or catalog tables, table functions, unknown names — is not kept.
pub fn text_cacheable(sql: &str, state: &SessionState, zones: &[&str]) -> bool {
    let Ok(mut statements) = Parser::parse_sql(&PostgreSqlDialect {}, sql) else {
        return false;
    };
    if statements.len() != 1 {
        return false;
    }
    let statement = statements.remove(0);
    let Statement::Query(query) = &statement else {
        return false;
    };
    let ctes: Vec<String> = query
        .with
        .iter()
        .flat_map(|w| &w.cte_tables)
        .map(|c| c.alias.name.value.to_lowercase())
        .collect();
    let mut lake_tables = 0;
    let relations_ok = visit_relations(&statement, |name| {
        let text = name.to_string().replace('"', "").to_lowercase();
        match text.split('.').collect::<Vec<_>>().as_slice() {
            [zone, _] if zones.contains(zone) => lake_tables += 1,
            [cte] if ctes.iter().any(|c| c == cte) => {}
            _ => return ControlFlow::Break(()),
        }
        ControlFlow::Continue(())
    })
    .is_continue();
    let functions_ok = visit_expressions(&statement, |e| match e {
        SqlExpr::Function(f) if !known_immutable(&f.name.to_string(), state) => {
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    })
    .is_continue();
    relations_ok && functions_ok && lake_tables > 0
}

/// Whether the lower-case function `name` answers per connection or moment whatever its declared
/// volatility.
fn session_dependent(name: &str) -> bool {
    SESSION_FUNCTIONS.iter().any(|p| name.starts_with(p)) || name == "user"
}

fn known_immutable(name: &str, state: &SessionState) -> bool {
    let name = name.replace('"', "").to_lowercase();
    if session_dependent(&name) {
        return false;
    }
    match state.scalar_functions().get(&name) {
        Some(f) => f.signature().volatility == Volatility::Immutable,
        None => {
            state.aggregate_functions().contains_key(&name)
                || state.window_functions().contains_key(&name)
        }
    }
}

/// Whether the answer of `statement` (planned as `plan`) may be kept: a query that reads at
/// least one table and only tables for which `is_lake` holds, and calls only immutable
/// functions.
pub fn cacheable(
    statement: &Statement,
    plan: &LogicalPlan,
    is_lake: impl Fn(&Arc<dyn TableProvider>) -> bool,
) -> bool {
    if !matches!(statement, Statement::Query(_)) {
        return false;
    }
    let Some(scans) = scanned(plan) else {
        return false;
    };
    !scans.is_empty() && scans.iter().all(|(_, p)| is_lake(p)) && immutable(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;
    use datafusion::sql::sqlparser::{dialect::PostgreSqlDialect, parser::Parser};
    use pgwire::api::Type;
    use pgwire::api::results::FieldFormat;
    use pgwire::error::PgWireError;

    fn key(sql: &str) -> Key {
        Key::new(sql, &[], "simple".into(), &HashMap::new())
    }

    fn row(text: &str) -> DataRow {
        DataRow::new(bytes::BytesMut::from(text.as_bytes()), 1)
    }

    fn response(rows: Vec<PgWireResult<DataRow>>) -> Response {
        let field = FieldInfo::new("x".into(), None, None, Type::TEXT, FieldFormat::Text);
        Response::Query(QueryResponse::new(
            Arc::new(vec![field]),
            futures::stream::iter(rows),
        ))
    }

    type PgWireResult<T> = Result<T, PgWireError>;

    async fn drain(response: Response, take: usize) -> Vec<DataRow> {
        let Response::Query(q) = response else {
            panic!("not a query response")
        };
        q.data_rows
            .take(take)
            .map(|r| r.expect("row"))
            .collect()
            .await
    }

    fn hit(cache: &ResultCache, key: &Key) -> Option<Response> {
        match cache.lookup(key) {
            Lookup::Hit(r) => Some(r),
            _ => None,
        }
    }

    #[tokio::test]
    async fn a_complete_answer_is_kept_and_sent_again_until_invalidated() {
        let cache = Arc::new(ResultCache::new(1));
        let k = key("SELECT x FROM marts.t");
        assert!(matches!(cache.lookup(&k), Lookup::Miss));
        let g = cache.generation();
        let sent = drain(
            cache.keep(k.clone(), g, response(vec![Ok(row("a")), Ok(row("b"))])),
            9,
        )
        .await;
        assert_eq!(sent, vec![row("a"), row("b")]);
        let again = drain(hit(&cache, &k).expect("kept"), 9).await;
        assert_eq!(again, sent);
        // Another text, parameter, format or setting is another answer.
        let mut settings = HashMap::new();
        settings.insert("timezone".to_string(), "Asia/Tokyo".to_string());
        for other in [
            key("SELECT x FROM marts.t "),
            Key::new(
                "SELECT x FROM marts.t",
                &[Some(Bytes::from("1"))],
                "simple".into(),
                &HashMap::new(),
            ),
            Key::new(
                "SELECT x FROM marts.t",
                &[],
                "binary".into(),
                &HashMap::new(),
            ),
            Key::new("SELECT x FROM marts.t", &[], "simple".into(), &settings),
        ] {
            assert!(matches!(cache.lookup(&other), Lookup::Miss));
        }
        cache.invalidate();
        assert!(matches!(cache.lookup(&k), Lookup::Miss));
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (1, 1, 0));
    }

    #[tokio::test]
    async fn partial_failed_stale_or_oversized_answers_are_not_kept() {
        let cache = Arc::new(ResultCache::new(1));
        // The client read one row of two (a portal suspended, a dropped connection).
        let k = key("partial");
        let g = cache.generation();
        drain(
            cache.keep(k.clone(), g, response(vec![Ok(row("a")), Ok(row("b"))])),
            1,
        )
        .await;
        assert!(hit(&cache, &k).is_none());
        // An error among the rows (a timeout, memory refused).
        let k = key("failed");
        let err = PgWireError::ApiError("boom".into());
        drain(
            cache.keep(k.clone(), g, response(vec![Ok(row("a")), Err(err)])),
            1,
        )
        .await;
        assert!(hit(&cache, &k).is_none());
        // Computed on versions a refresh replaced while it ran.
        let k = key("stale");
        let kept = cache.keep(k.clone(), g, response(vec![Ok(row("a"))]));
        cache.invalidate();
        drain(kept, 9).await;
        assert!(hit(&cache, &k).is_none());
        // Larger than a quarter of the cache.
        let k = key("big");
        let big = "x".repeat(300 * 1024);
        let g = cache.generation();
        drain(cache.keep(k.clone(), g, response(vec![Ok(row(&big))])), 9).await;
        assert!(hit(&cache, &k).is_none());
        // Turned off: nothing is kept.
        let off = Arc::new(ResultCache::new(0));
        let k = key("off");
        assert!(matches!(off.lookup(&k), Lookup::Off));
        drain(off.keep(k.clone(), 0, response(vec![Ok(row("a"))])), 9).await;
        assert!(hit(&off, &k).is_none());
    }

    #[tokio::test]
    async fn the_least_recently_used_answer_goes_first_and_memory_stays_bounded() {
        let cache = Arc::new(ResultCache::new(1));
        let body = "y".repeat(250 * 1024);
        for name in ["a", "b", "c", "d", "e"] {
            let g = cache.generation();
            drain(cache.keep(key(name), g, response(vec![Ok(row(&body))])), 9).await;
            // "a" is read after each insert, so "b" is the oldest when room runs out.
            assert!(hit(&cache, &key("a")).is_some(), "after {name}");
        }
        let stats = cache.stats();
        assert!(stats.bytes <= MB, "{stats:?}");
        assert_eq!(stats.entries, 4, "{stats:?}");
        assert!(hit(&cache, &key("b")).is_none());
        for name in ["c", "d", "e"] {
            assert!(hit(&cache, &key(name)).is_some(), "{name}");
        }
    }

    /// The verdicts from the plan and from the text (they must agree).
    async fn verdict(sql: &str) -> (bool, bool) {
        let config = datafusion::prelude::SessionConfig::new().with_information_schema(true);
        let ctx = SessionContext::new_with_config(config);
        ctx.sql("CREATE SCHEMA marts").await.unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1, 2]))])
                .unwrap();
        let table: Arc<dyn TableProvider> =
            Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap());
        ctx.register_table("marts.t", table.clone()).unwrap();
        let statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        let plan = ctx.state().create_logical_plan(sql).await.unwrap();
        let by_plan = cacheable(&statement, &plan, |p| {
            std::ptr::addr_eq(Arc::as_ptr(p), Arc::as_ptr(&table))
        });
        (by_plan, text_cacheable(sql, &ctx.state(), &["marts"]))
    }

    #[tokio::test]
    async fn only_queries_over_lake_tables_with_immutable_functions_are_cacheable() {
        for sql in [
            "SELECT v FROM marts.t WHERE v > 1",
            "SELECT sum(v), abs(min(v)), row_number() OVER (ORDER BY v) FROM marts.t GROUP BY v",
            "WITH w AS (SELECT v FROM marts.t) SELECT * FROM w WHERE v IN (SELECT v FROM marts.t)",
        ] {
            assert_eq!(verdict(sql).await, (true, true), "{sql}");
        }
        for sql in [
            "SELECT v, now() FROM marts.t",
            "SELECT v FROM marts.t WHERE random() < 0.5",
            "SELECT v FROM marts.t WHERE v IN (SELECT v + random() FROM marts.t)",
            "SELECT current_date, v FROM marts.t",
            "SELECT 1",
            "SELECT table_name FROM information_schema.tables",
            "EXPLAIN SELECT v FROM marts.t",
        ] {
            assert_eq!(verdict(sql).await, (false, false), "{sql}");
        }
        // The text check knows no more than the text: more than one statement, or a function
        // it cannot find, is not kept.
        let state = SessionContext::new().state();
        assert!(!text_cacheable(
            "SELECT v FROM marts.t; SELECT v FROM marts.t",
            &state,
            &["marts"]
        ));
        assert!(!text_cacheable(
            "SELECT no_such(v) FROM marts.t",
            &state,
            &["marts"]
        ));
    }
}
