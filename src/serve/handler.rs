//! The per-connection handlers: SCRAM-SHA-256 login, the read-only guard, statement timeouts
//! that really cancel the running query, and PostgreSQL-shaped version answers, around
//! datafusion-postgres' query service.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::logical_expr::LogicalPlan;
use datafusion_postgres::DfSessionService;
use datafusion_postgres::pgwire;
use futures::{Sink, StreamExt};
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::{ScramAuth, gen_salted_password};
use pgwire::api::auth::{AuthSource, DefaultServerParameterProvider, LoginInfo, Password};
use pgwire::api::portal::Portal;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireServerHandlers, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;

use super::cache::{self, Key, Lookup};
use super::catalog::{LiveCatalog, server_version};
use super::config::Credential;
use super::guard::{Guard, Refusal};
use super::pg_error as error;
use super::sessions::{Lease, Sessions};

const ITERATIONS: usize = 4096;

/// Users and their SCRAM salted passwords (computed once at start).
#[derive(Debug)]
pub struct Users {
    salted: std::collections::HashMap<String, (Vec<u8>, Vec<u8>)>,
}

impl Users {
    /// Salts and hashes every password.
    pub fn new(credentials: &[Credential]) -> Self {
        let salted = credentials
            .iter()
            .map(|c| {
                let salt: [u8; 16] = rand::random();
                let hash = gen_salted_password(&c.password, &salt, ITERATIONS);
                (c.name.clone(), (salt.to_vec(), hash))
            })
            .collect();
        Self { salted }
    }

    /// Whether `password` is `user`'s (for the status page's login; the wire protocol uses
    /// SCRAM). Compares in constant time; an unknown user costs the same hashing.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let (salt, expected, known) = match self.salted.get(user) {
            Some((salt, hash)) => (salt.as_slice(), hash.as_slice(), true),
            None => (&[0u8; 16][..], &[0u8; 32][..], false),
        };
        let hash = gen_salted_password(password, salt, ITERATIONS);
        let same = hash.len() == expected.len()
            && hash
                .iter()
                .zip(expected)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        known && same
    }
}

#[async_trait]
impl AuthSource for Users {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let user = login.user().unwrap_or_default();
        match self.salted.get(user) {
            Some((salt, hash)) => Ok(Password::new(Some(salt.clone()), hash.clone())),
            None => {
                tracing::warn!(user, host = login.host(), "login refused: unknown user");
                Err(error(
                    "FATAL",
                    "28P01",
                    format!("password authentication failed for user \"{user}\""),
                ))
            }
        }
    }
}

fn timeout_error() -> PgWireError {
    error(
        "ERROR",
        "57014",
        "canceling statement due to statement timeout".into(),
    )
}

/// The limit for a statement: the client's `statement_timeout` (0 = none) capped by the
/// server's.
fn statement_limit<C: ClientInfo + ?Sized>(client: &C, server: Duration) -> Duration {
    client
        .metadata()
        .get("statement_timeout_ms")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map_or(server, |ms| Duration::from_millis(ms).min(server))
}

/// Makes a response's rows stream fail with 57014 once `deadline` passes (dropping the query's
/// stream cancels its execution), and keeps the statement's lease until the stream ends.
fn with_deadline(response: Response, deadline: Instant, lease: &Arc<Lease>) -> Response {
    let Response::Query(mut q) = response else {
        return response;
    };
    let rows = std::mem::replace(&mut q.data_rows, Box::pin(futures::stream::empty()));
    let sleep = Box::pin(tokio::time::sleep_until(deadline.into()));
    q.data_rows = Box::pin(futures::stream::unfold(
        Some((rows, sleep, lease.clone())),
        |state| async move {
            let (mut rows, mut sleep, lease) = state?;
            tokio::select! {
                item = rows.next() => item.map(|i| {
                    let i = i.map_err(|e| out_of_memory(e, &lease));
                    (i, Some((rows, sleep, lease)))
                }),
                _ = &mut sleep => Some((Err(timeout_error()), None)),
            }
        },
    ));
    Response::Query(q)
}

/// A statement refused memory, as PostgreSQL says it (53200 out of memory), naming the limit it
/// hit and the setting to raise; other errors pass as they are.
fn out_of_memory(e: PgWireError, lease: &Lease) -> PgWireError {
    match lease.pool().refusal() {
        Some(why) if e.to_string().contains("Resources exhausted") => {
            error("ERROR", "53200", format!("out of memory: {why} ({e})"))
        }
        _ => e,
    }
}

fn show_response(name: &str, value: &str) -> PgWireResult<Response> {
    let fields = Arc::new(vec![FieldInfo::new(
        name.into(),
        None,
        None,
        Type::VARCHAR,
        FieldFormat::Text,
    )]);
    let mut encoder = DataRowEncoder::new(fields.clone());
    encoder.encode_field(&Some(value))?;
    let row = encoder.take_row();
    Ok(Response::Query(QueryResponse::new(
        fields,
        futures::stream::once(async move { Ok(row) }),
    )))
}

/// The query service with the guard and timeouts around it; each statement runs on a service
/// lent to it alone, with its own memory pool.
pub struct Guarded {
    sessions: Arc<Sessions>,
    parser: Arc<GuardedParser>,
    guard: Arc<Guard>,
    timeout: Duration,
    catalog: Arc<LiveCatalog>,
}

impl Guarded {
    /// Statements parsed by `inner` and run on `sessions`, for at most `timeout`, over the
    /// tables of `catalog` (whose result cache answers repeated queries).
    pub fn new(
        inner: &DfSessionService,
        sessions: Arc<Sessions>,
        timeout: Duration,
        catalog: Arc<LiveCatalog>,
    ) -> Self {
        let guard = Arc::new(Guard::new());
        let parser = Arc::new(GuardedParser {
            inner: inner.query_parser(),
            guard: guard.clone(),
        });
        Self {
            sessions,
            parser,
            guard,
            timeout,
            catalog,
        }
    }

    /// Whether the simple-protocol `query`'s answer may be kept (judged from its text).
    fn simple_cacheable(&self, query: &str) -> bool {
        let zones: Vec<&str> = crate::lake::Zone::ALL.iter().map(|z| z.as_str()).collect();
        // Read under the session's lock: `state()` would clone every registry and setting.
        let state = self.catalog.ctx.state_ref();
        let state = state.read();
        cache::text_cacheable(query, &state, &zones)
    }

    fn cacheable(&self, statement: &SqlStatement, plan: &LogicalPlan) -> bool {
        cache::cacheable(statement, plan, |p| self.catalog.is_current(p))
    }

    /// `portal` as it is, or planned again if a refresh replaced a table it reads since it was
    /// prepared (its plan holds the providers it was planned with).
    async fn replanned<C>(
        &self,
        client: &C,
        portal: &Portal<Statement>,
    ) -> PgWireResult<Option<Portal<Statement>>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let (sql, Some((_, plan))) = &portal.statement.statement else {
            return Ok(None);
        };
        let replaced = cache::scanned(plan).is_some_and(|scans| {
            scans
                .iter()
                .any(|(table, provider)| self.catalog.is_replaced(table, provider))
        });
        if !replaced {
            return Ok(None);
        }
        let stored = &portal.statement;
        let Some(statement) = self
            .parser
            .parse_sql(client, sql, &stored.parameter_types)
            .await?
        else {
            return Ok(None);
        };
        tracing::debug!(%sql, "a table changed since the statement was prepared: planning it again");
        let mut fresh = Portal::default();
        fresh.name = portal.name.clone();
        fresh.statement = Arc::new(pgwire::api::stmt::StoredStatement::new(
            stored.id.clone(),
            statement,
            stored.parameter_types.clone(),
        ));
        fresh.parameter_format = portal.parameter_format.clone();
        fresh.parameters = portal.parameters.clone();
        fresh.result_column_format = portal.result_column_format.clone();
        fresh.state = portal.state.clone();
        Ok(Some(fresh))
    }
}

fn refused(r: Refusal) -> PgWireError {
    error("ERROR", r.code, r.message)
}

#[async_trait]
impl SimpleQueryHandler for Guarded {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // A repeated statement is answered before it is parsed again: an answer is kept only
        // under the text the client sent, after that text was admitted, and admission depends
        // on the text alone.
        let results = &self.catalog.results;
        let generation = results.generation();
        let key = Key::new(query, &[], "simple".into(), client.metadata());
        let lookup = results.lookup(&key);
        if let Lookup::Hit(response) = lookup {
            return Ok(vec![response]);
        }
        let admitted = self.guard.admit(query).map_err(refused)?;
        let query = admitted.as_str();
        let normalized = query
            .trim()
            .trim_end_matches(';')
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_lowercase();
        if normalized == "show server_version" {
            return Ok(vec![show_response("server_version", server_version())?]);
        }
        if normalized == "show server_version_num" {
            return Ok(vec![show_response("server_version_num", "160006")?]);
        }
        // Savepoints: drivers wrap catalog lookups in them (psycopg's TypeInfo.fetch). Nothing
        // is ever written, so there is nothing to roll back to: acknowledge them.
        for (prefix, tag) in [("savepoint ", "SAVEPOINT"), ("release ", "RELEASE")] {
            if normalized.starts_with(prefix) && !normalized.contains(';') {
                return Ok(vec![Response::Execution(pgwire::api::results::Tag::new(
                    tag,
                ))]);
            }
        }
        let keep = matches!(lookup, Lookup::Miss) && self.simple_cacheable(query);
        let limit = statement_limit(client, self.timeout);
        let deadline = Instant::now() + limit;
        let lease = Arc::new(self.sessions.lease());
        let mut responses = tokio::time::timeout(
            limit,
            SimpleQueryHandler::do_query(lease.service(), client, query),
        )
        .await
        .map_err(|_| timeout_error())?
        .map_err(|e| out_of_memory(e, &lease))?;
        if keep && responses.len() == 1 {
            let response = responses.remove(0);
            responses.push(results.keep(key, generation, response));
        }
        Ok(responses
            .into_iter()
            .map(|r| with_deadline(r, deadline, &lease))
            .collect())
    }
}

type Statement = <DfSessionService as ExtendedQueryHandler>::Statement;
type SqlStatement = datafusion::sql::sqlparser::ast::Statement;

#[async_trait]
impl ExtendedQueryHandler for Guarded {
    type Statement = Statement;
    type QueryParser = GuardedParser;

    fn query_parser(&self) -> Arc<GuardedParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Statement>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let replanned = self.replanned(client, portal).await?;
        let portal = replanned.as_ref().unwrap_or(portal);
        let results = &self.catalog.results;
        let generation = results.generation();
        let mut keep = None;
        if let (sql, Some((statement, plan))) = &portal.statement.statement {
            let formats = format!(
                "{:?}|{:?}",
                portal.parameter_format, portal.result_column_format
            );
            let key = Key::new(sql, &portal.parameters, formats, client.metadata());
            match results.lookup(&key) {
                Lookup::Hit(response) => return Ok(response),
                Lookup::Miss if self.cacheable(statement, plan) => keep = Some(key),
                Lookup::Off | Lookup::Miss => {}
            }
        }
        let limit = statement_limit(client, self.timeout);
        let deadline = Instant::now() + limit;
        let lease = Arc::new(self.sessions.lease());
        let mut response = tokio::time::timeout(
            limit,
            ExtendedQueryHandler::do_query(lease.service(), client, portal, max_rows),
        )
        .await
        .map_err(|_| timeout_error())?
        .map_err(|e| out_of_memory(e, &lease))?;
        if let Some(key) = keep {
            response = results.keep(key, generation, response);
        }
        Ok(with_deadline(response, deadline, &lease))
    }
}

/// The statement parser with the guard in front (extended protocol).
pub struct GuardedParser {
    inner: Arc<<DfSessionService as ExtendedQueryHandler>::QueryParser>,
    guard: Arc<Guard>,
}

#[async_trait]
impl QueryParser for GuardedParser {
    type Statement = Statement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let admitted = self.guard.admit(sql).map_err(refused)?;
        self.inner.parse_sql(client, &admitted, types).await
    }

    fn get_parameter_types(&self, stmt: &Statement) -> PgWireResult<Vec<Type>> {
        self.inner.get_parameter_types(stmt)
    }

    fn get_result_schema(
        &self,
        stmt: &Statement,
        column_format: Option<&pgwire::api::portal::Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        self.inner.get_result_schema(stmt, column_format)
    }
}

/// Builds each connection's handlers.
pub struct Factory {
    /// The guarded query service (shared).
    pub service: Arc<Guarded>,
    /// Users.
    pub users: Arc<Users>,
    /// Cancel requests.
    pub connections: Arc<pgwire::api::ConnectionManager>,
    /// Failed-login counters (shared by all connections).
    pub throttle: Arc<super::throttle::LoginThrottle>,
}

impl PgWireServerHandlers for Factory {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.service.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.service.clone()
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        let mut params = DefaultServerParameterProvider::default();
        params.server_version = format!(
            "{} (macrolake {})",
            server_version(),
            env!("CARGO_PKG_VERSION")
        );
        params.is_superuser = false;
        params.default_transaction_read_only = true;
        let mut scram = ScramAuth::new(self.users.clone());
        scram.set_iterations(ITERATIONS);
        Arc::new(super::throttle::Throttled::new(
            Arc::new(
                SASLAuthStartupHandler::new(Arc::new(params))
                    .with_scram(scram)
                    .with_connection_manager(self.connections.clone()),
            ),
            self.throttle.clone(),
        ))
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        Arc::new(pgwire::api::cancel::DefaultCancelHandler::new(
            self.connections.clone(),
        ))
    }
}
