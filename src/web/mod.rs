//! The status page (`macrolake serve --http ADDR`, `macrolake daemon --http ADDR`): a small,
//! read-only, server-rendered web page over the lake for analysts and on-call engineers.
//!
//! - **Runs**: the last job and command runs with each step's status, attempts, duration, rows
//!   and error; a failed run is red and links to its error.
//! - **Freshness**: every table's newest date, Delta version and last write, and its age against
//!   its limit (a model's `freshness` test, else [`freshness::STAGING_LIMITS`]).
//! - **The product**: the liquidity-vs-risk chart (inline SVG, the `chart` renderer) for a chosen
//!   range and the last 30 rows of `marts.liquidity_vs_risk`.
//! - **Lineage**: the model graph, each model with its columns, tests and last build.
//! - **Downloads**: any table as CSV or Parquet, encoded exactly as `macrolake export` writes it.
//!
//! Logins are the Postgres server's users (`[serve]`): a login form that sets a session cookie
//! (`HttpOnly`, `SameSite=Strict`, `Secure` over TLS), or HTTP Basic for scripts. Nothing but
//! `/healthz` and `/login` answers without one; failed logins are slowed down like the Postgres
//! server's. TLS comes from `[serve] tls_cert`/`tls_key`. No JavaScript: forms and links only.

pub mod auth;
pub mod cx;
pub mod downloads;
pub mod freshness;
pub mod html;
pub mod lineage;
pub mod pages;
pub mod product;
pub mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::App;
use crate::serve::ServeError;

/// Largest request body read (a login form).
const MAX_BODY: usize = 16 * 1024;

/// A response body.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

/// What a page handler needs.
pub struct State {
    /// The project (lake, config, models).
    pub app: App,
    /// Logins and sessions.
    pub auth: auth::Auth,
    /// Whether the page is served over TLS (cookies get `Secure`).
    pub tls: bool,
}

/// A bound status-page server.
pub struct WebServer {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<State>,
}

impl WebServer {
    /// Checks `[serve]`'s users and TLS files and binds `addr`.
    pub async fn bind(app: App, addr: &str) -> Result<Self, ServeError> {
        let config = &app.config.serve;
        let credentials = config.credentials()?;
        let tls = crate::serve::tls_acceptor(config)?;
        let auth = auth::Auth::new(
            &credentials,
            Duration::from_millis(config.login_delay_base_ms),
            Duration::from_millis(config.login_delay_max_ms),
        );
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Listen {
                addr: addr.into(),
                source,
            })?;
        Ok(Self {
            listener,
            state: Arc::new(State {
                app,
                auth,
                tls: tls.is_some(),
            }),
            tls,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The page's URL (`https://…` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        match self.local_addr() {
            Ok(a) => format!("{scheme}://{a}/"),
            Err(_) => format!("{scheme}://?/"),
        }
    }

    /// Serves until `shutdown` turns true.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let state = self.state;
        let handler = move |req, peer| {
            let state = state.clone();
            async move { handle(&state, req, peer).await }
        };
        server::serve("status page", self.listener, self.tls, handler, shutdown).await;
    }
}

/// Starts the status page in the background when `addr` (`--http`) or `[serve] http_listen`
/// asks for one, until `shutdown`.
pub async fn start(
    app: &App,
    addr: Option<String>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let Some(addr) = addr.or_else(|| app.config.serve.http_listen.clone()) else {
        return Ok(());
    };
    let web = WebServer::bind(app.clone(), &addr).await?;
    eprintln!("status page on {} (users from [serve])", web.url());
    tokio::spawn(web.run(shutdown));
    Ok(())
}

/// A page or an error as a response.
pub fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let full = Full::new(body.into()).map_err(|never| match never {});
    let mut r = Response::new(full.boxed_unsync());
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    // No script runs on these pages; inline styles and the inline SVG chart only.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// A redirect (303 See Other) to `location`.
pub fn redirect(location: &str) -> Response<Body> {
    let mut r = respond(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Routes one request: public paths, then the login check, then the pages.
async fn handle(state: &State, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().clone();
    match (&method, path.as_str()) {
        (&Method::GET, "/healthz") => {
            return respond(StatusCode::OK, "text/plain; charset=utf-8", "ok\n");
        }
        (&Method::GET, "/login") => return auth::login_page(&query, None, StatusCode::OK),
        (&Method::POST, "/login") => {
            let (parts, body) = req.into_parts();
            let Ok(body) = Limited::new(body, MAX_BODY).collect().await else {
                return respond(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "text/plain; charset=utf-8",
                    "login form too large\n",
                );
            };
            return state
                .auth
                .login(&parts.headers, &body.to_bytes(), peer.ip(), state.tls)
                .await;
        }
        _ => {}
    }
    let user = match state.auth.check(req.headers(), peer.ip()).await {
        auth::Check::User(user) => user,
        auth::Check::BadBasic => return auth::basic_refused(),
        auth::Check::Anonymous => {
            let next = if query.is_empty() {
                path.clone()
            } else {
                format!("{path}?{query}")
            };
            return redirect(&format!("/login?next={}", html::url_encode(&next)));
        }
    };
    if method == Method::POST && path == "/logout" {
        return state.auth.logout(req.headers(), state.tls);
    }
    if method != Method::GET && method != Method::HEAD {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "the status page is read-only: GET only\n",
        );
    }
    let cx = cx::Cx {
        state,
        user: &user,
        query: &query,
    };
    pages::route(&cx, &path).await
}
