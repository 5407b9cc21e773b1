//! `macrolake serve`: the lake over the PostgreSQL wire protocol, for BI tools (Superset,
//! Metabase, Tableau, Power BI, Excel via ODBC, psql, psycopg, SQLAlchemy).
//!
//! - **Authenticated**: SCRAM-SHA-256 against users from `[serve]` (passwords from environment
//!   variables or a secrets file); no user configured → the server refuses to start.
//! - **Read-only**, three times over: the [`guard`] refuses anything but reads on the SQL (42501;
//!   42601 when it cannot parse; 54000/54001 past the size limits), [`readonly`] checks the plan
//!   with DataFusion's `SQLOptions`, and the engine's only storage is [`store`]'s read-only view of
//!   the lake. `SET` is limited to [`settings::ALLOWED`] and applies to the connection only.
//! - **Slow to guess**: failed logins delay the next attempt per user and per address
//!   ([`throttle`]).
//! - **Bounded**: `max_connections` (more get 53300), a statement timeout that cancels the
//!   query (57014), and memory: each statement has a pool of its own (`query_memory_limit_mb`,
//!   [`sessions`]) drawn from the server's (`memory_limit_mb`); past either, 53200.
//! - **Fresh**: new table versions are picked up every `refresh_secs` without a restart.
//! - **TLS** with `tls_cert`/`tls_key`.

pub mod cache;
pub mod catalog;
pub mod config;
pub mod functions;
pub mod guard;
pub mod handler;
pub mod readonly;
pub mod rewrite;
pub mod sessions;
pub mod settings;
pub mod store;
pub mod throttle;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use datafusion_postgres::pgwire;
use datafusion_postgres::{DfSessionService, QueryHook};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

pub use config::ServeConfig;

use crate::lake::{Lake, LakeError, ViewDef};

/// Errors of the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// `[serve]` is incomplete or wrong.
    #[error("[serve] config: {message}")]
    Config {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS certificate or key cannot be used.
    #[error("TLS: {path}: {message}")]
    Tls {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// Reading the lake failed.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// Setting up the query context failed.
    #[error("{context}: {source}")]
    DataFusion {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: Box<datafusion::error::DataFusionError>,
    },
}

/// The TLS acceptor for a PEM certificate chain and private key.
fn load_tls(cert: &Path, key: &Path) -> Result<pgwire::tokio::TlsAcceptor, ServeError> {
    use tokio_rustls::rustls;
    let tls_err = |path: &Path, message: String| ServeError::Tls {
        path: path.display().to_string(),
        message,
    };
    let read = |path: &Path| std::fs::read(path).map_err(|e| tls_err(path, e.to_string()));
    let certs = rustls_pemfile::certs(&mut read(cert)?.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(tls_err(cert, "no PEM certificate found".into()));
    }
    let key_der = rustls_pemfile::private_key(&mut read(key)?.as_slice())
        .map_err(|e| tls_err(key, e.to_string()))?
        .ok_or_else(|| tls_err(key, "no PEM private key found".into()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| tls_err(cert, e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key_der)
    .map_err(|e| tls_err(key, e.to_string()))?;
    Ok(pgwire::tokio::TlsAcceptor::from(Arc::new(config)))
}

/// The TLS acceptor `[serve] tls_cert`/`tls_key` ask for (both or neither), for the Postgres
/// server and the status page.
pub fn tls_acceptor(
    config: &ServeConfig,
) -> Result<Option<pgwire::tokio::TlsAcceptor>, ServeError> {
    match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Ok(Some(load_tls(cert, key)?)),
        (None, None) => Ok(None),
        _ => Err(ServeError::Config {
            message: "tls_cert and tls_key go together: set both or neither".into(),
        }),
    }
}

/// A PostgreSQL error to return from a handler or hook.
pub fn pg_error(severity: &str, code: &str, message: String) -> pgwire::error::PgWireError {
    pgwire::error::PgWireError::UserError(Box::new(pgwire::error::ErrorInfo::new(
        severity.into(),
        code.into(),
        message,
    )))
}

/// A PostgreSQL `ErrorResponse` sent before startup, for refusing a connection (encoded by
/// pgwire).
fn fatal_message(code: &str, message: &str) -> Vec<u8> {
    use pgwire::messages::Message;
    let response = pgwire::messages::response::ErrorResponse::new(vec![
        (b'S', "FATAL".into()),
        (b'V', "FATAL".into()),
        (b'C', code.into()),
        (b'M', message.into()),
    ]);
    let mut buf = bytes::BytesMut::new();
    match response.encode(&mut buf) {
        Ok(()) => buf.to_vec(),
        // Only a message over pgwire's size limit fails; ours are one short line.
        Err(e) => {
            tracing::warn!("cannot encode the refusal: {e}");
            Vec::new()
        }
    }
}

/// A server ready to accept clients.
pub struct Server {
    listener: TcpListener,
    factory: Arc<handler::Factory>,
    tls: Option<pgwire::tokio::TlsAcceptor>,
    slots: Arc<Semaphore>,
    max_connections: usize,
    /// The context (to refresh by hand in tests).
    pub catalog: Arc<catalog::LiveCatalog>,
}

impl Server {
    /// Checks the config (users, TLS), loads the lake and binds `listen`.
    pub async fn bind(
        lake: &Lake,
        views: Vec<ViewDef>,
        config: &ServeConfig,
        listen: &str,
    ) -> Result<Self, ServeError> {
        let credentials = config.credentials()?;
        let tls = tls_acceptor(config)?;
        let catalog = Arc::new(
            catalog::LiveCatalog::build(
                lake,
                views,
                config.memory_limit_mb,
                config.memory_table_max_rows,
                config.result_cache_mb,
            )
            .await?,
        );
        catalog.spawn_refresher(Duration::from_secs(config.refresh_secs.max(1)));
        // Order matters: settings before datafusion-postgres' SET hook (which would hand unknown
        // variables to the shared engine); the read-only plan check last, for everything else.
        let hooks: Vec<Arc<dyn QueryHook>> = vec![
            Arc::new(settings::SessionSettings),
            Arc::new(datafusion_postgres::hooks::cursor::CursorStatementHook),
            Arc::new(datafusion_postgres::hooks::set_show::SetShowHook),
            Arc::new(datafusion_postgres::hooks::transactions::TransactionStatementHook),
            Arc::new(readonly::ReadOnly),
        ];
        let parser = DfSessionService::new_with_hooks(catalog.ctx.clone(), hooks.clone());
        let sessions = Arc::new(sessions::Sessions::new(
            catalog.ctx.clone(),
            hooks,
            catalog.pool.clone(),
            config.query_memory_limit_mb,
        ));
        let factory = Arc::new(handler::Factory {
            service: Arc::new(handler::Guarded::new(
                &parser,
                sessions,
                Duration::from_secs(config.statement_timeout_secs.max(1)),
                catalog.clone(),
            )),
            users: Arc::new(handler::Users::new(&credentials)),
            connections: Arc::new(pgwire::api::ConnectionManager::new()),
            throttle: Arc::new(throttle::LoginThrottle::new(
                Duration::from_millis(config.login_delay_base_ms),
                Duration::from_millis(config.login_delay_max_ms),
            )),
        });
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| ServeError::Listen {
                addr: listen.into(),
                source,
            })?;
        let max_connections = config.max_connections.max(1);
        Ok(Self {
            listener,
            factory,
            tls,
            slots: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            catalog,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Whether clients may use TLS.
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Accepts clients until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            let accepted = tokio::select! {
                a = self.listener.accept() => a,
                _ = shutdown.wait_for(|s| *s) => break,
            };
            let (mut socket, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    continue;
                }
            };
            let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                tracing::warn!(%peer, max = self.max_connections, "connection refused: too many clients");
                let msg = fatal_message(
                    "53300",
                    &format!(
                        "sorry, too many clients already (max_connections = {})",
                        self.max_connections
                    ),
                );
                tokio::spawn(async move {
                    let _ = socket.write_all(&msg).await;
                    let _ = socket.shutdown().await;
                });
                continue;
            };
            let factory = self.factory.clone();
            let tls = self.tls.clone();
            tokio::spawn(async move {
                if let Err(e) = pgwire::tokio::process_socket(socket, tls, factory).await {
                    tracing::debug!(%peer, "connection ended with an error: {e}");
                }
                drop(permit);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn refusal_message_is_a_postgres_error_response() {
        let m = super::fatal_message("53300", "too many");
        assert_eq!(m[0], b'E');
        let len = u32::from_be_bytes([m[1], m[2], m[3], m[4]]) as usize;
        assert_eq!(len, m.len() - 1);
        assert!(m.windows(6).any(|w| w == b"C53300"));
        assert_eq!(*m.last().unwrap(), 0);
    }
}
