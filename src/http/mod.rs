//! The one HTTP engine every connector uses.
//!
//! Connectors only build [`Request`]s and parse the bodies they get back; this module owns
//! everything else: connect/read timeouts, bounded retries with exponential backoff and jitter on
//! connect errors, timeouts, 5xx and 429 (honouring `Retry-After`), no retry on other 4xx, a
//! per-host concurrency limit, secret redaction (see [`redact`]) and the three modes of DESIGN §4:
//!
//! * [`Mode::Live`] — talk to upstream;
//! * [`Mode::Record`] — talk to upstream and save every response as a [`recording`];
//! * [`Mode::Replay`] — serve every request from recordings; a request with no recording is an
//!   error naming the URL, never a silent network call.

pub mod recording;
pub mod redact;
pub mod retry;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::sync::Semaphore;
use url::Url;

use recording::ReplayIndex;
use redact::redact_url;
pub use retry::RetryPolicy;

/// `path` resolved below `base` taken as a folder (a missing trailing slash is added first):
/// `https://h/api` and `soma/summary.json` give `https://h/api/soma/summary.json`.
pub fn below(base: &Url, path: &str) -> Url {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    base.join(path).expect("a relative path joins")
}

/// Errors of the HTTP engine. Every URL in them is already redacted.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Upstream answered with a status that is not success and not worth (more) retries.
    #[error("{url} answered HTTP {status}{}: {body}", attempts_note(*attempts))]
    Status {
        /// Redacted URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// How many times the request was sent.
        attempts: u32,
        /// The start of the answer's body, for diagnosis.
        body: String,
    },
    /// The request could not be sent or the answer not read (connect error, timeout, reset).
    #[error("{url} failed after {attempts} attempt(s): {message}")]
    Transport {
        /// Redacted URL.
        url: String,
        /// How many times the request was sent.
        attempts: u32,
        /// What went wrong, redacted.
        message: String,
    },
    /// Upstream asked to wait longer than `http.max_retry_after_secs` allows.
    #[error(
        "{url} asked to retry after {wait_secs}s, more than http.max_retry_after_secs ({max_secs}s); try again later"
    )]
    RetryAfterTooLong {
        /// Redacted URL.
        url: String,
        /// What upstream asked for.
        wait_secs: u64,
        /// The configured limit.
        max_secs: u64,
    },
    /// Replay mode and no recording matches the request.
    #[error(
        "no recording for GET {url} in {dir} (replay mode never uses the network; record it with --record or add a fixture)"
    )]
    NoRecording {
        /// Redacted URL.
        url: String,
        /// The replay directory.
        dir: PathBuf,
    },
    /// The replay directory does not exist.
    #[error("replay directory {dir} does not exist")]
    ReplayDir {
        /// The path given.
        dir: PathBuf,
    },
    /// Reading or writing a recording failed.
    #[error("recording file {path}: {source}")]
    RecordingIo {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A recording's metadata file is not valid.
    #[error("recording file {path} is not valid: {message}")]
    RecordingFormat {
        /// The metadata file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The HTTP client could not be built from the configuration.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

fn attempts_note(attempts: u32) -> String {
    if attempts > 1 {
        format!(" after {attempts} attempts")
    } else {
        String::new()
    }
}

/// HTTP settings (`[http]` in `macrolake.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Time allowed to establish a connection, in seconds.
    pub connect_timeout_secs: u64,
    /// Time allowed between two reads of the answer, in seconds.
    pub read_timeout_secs: u64,
    /// Time allowed for one whole request, in seconds.
    pub request_timeout_secs: u64,
    /// Most requests in flight to one host at once.
    pub max_concurrent_per_host: usize,
    /// User-Agent header sent upstream (some upstreams reject empty or library agents).
    pub user_agent: String,
    /// Retry and backoff settings.
    #[serde(flatten)]
    pub retry: RetryPolicy,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout_secs: 10,
            read_timeout_secs: 30,
            request_timeout_secs: 120,
            max_concurrent_per_host: 4,
            user_agent: format!(
                "Mozilla/5.0 (compatible; macrolake/{}; +https://github.com/macrolake)",
                env!("CARGO_PKG_VERSION")
            ),
            retry: RetryPolicy::default(),
        }
    }
}

/// Where responses come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Upstream over the network.
    Live,
    /// Upstream over the network, every response saved under the folder.
    Record(PathBuf),
    /// Recordings under the folder only.
    Replay(PathBuf),
}

/// One GET request as a connector describes it.
#[derive(Debug, Clone)]
pub struct Request {
    url: Url,
    headers: Vec<(String, String)>,
    window_params: Vec<String>,
}

impl Request {
    /// A GET of `url`.
    pub fn get(url: Url) -> Self {
        Self {
            url,
            headers: Vec::new(),
            window_params: Vec::new(),
        }
    }

    /// Adds a query parameter.
    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.url.query_pairs_mut().append_pair(name, value);
        self
    }

    /// Adds a query parameter that bounds the requested date window (replay may serve it from a
    /// recording of a wider window; see [`recording`]).
    pub fn window_query(mut self, name: &str, value: &str) -> Self {
        self.window_params.push(name.to_string());
        self.query(name, value)
    }

    /// Declares a window parameter without adding it (for parameters set elsewhere).
    pub fn window_param(mut self, name: &str) -> Self {
        self.window_params.push(name.to_string());
        self
    }

    /// Adds a secret query parameter (an API key): registered for redaction before it is used.
    pub fn secret_query(self, name: &str, value: &str) -> Self {
        redact::register(value);
        self.query(name, value)
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Adds a secret header (registered for redaction).
    pub fn secret_header(self, name: &str, value: &str) -> Self {
        redact::register(value);
        self.header(name, value)
    }

    /// The URL with secrets redacted, fit for logs and errors.
    pub fn display_url(&self) -> String {
        redact_url(&self.url)
    }

    /// The full URL (may contain secrets: never print it).
    pub fn url(&self) -> &Url {
        &self.url
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// The redacted URL it answered.
    pub url: String,
    /// HTTP status (2xx).
    pub status: u16,
    /// Content type, if given.
    pub content_type: Option<String>,
    /// The body.
    pub body: Bytes,
    /// When it was fetched (for a replayed response: when it was recorded).
    pub fetched_at: DateTime<Utc>,
}

/// The engine. Cheap to clone; clones share limits and recordings.
#[derive(Clone)]
pub struct HttpEngine {
    client: reqwest::Client,
    mode: Mode,
    config: HttpConfig,
    hosts: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
    replay: Option<Arc<ReplayIndex>>,
}

impl std::fmt::Debug for HttpEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpEngine")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl HttpEngine {
    /// Builds the engine. In replay mode the recordings are indexed now, so a bad replay folder
    /// fails before anything runs.
    pub fn new(config: HttpConfig, mode: Mode) -> Result<Self, HttpError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(config.connect_timeout_secs))
            .read_timeout(Duration::from_secs(config.read_timeout_secs))
            .timeout(Duration::from_secs(config.request_timeout_secs))
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|e| HttpError::Client(e.to_string()))?;
        let replay = match &mode {
            Mode::Replay(dir) => Some(Arc::new(ReplayIndex::load(dir)?)),
            _ => None,
        };
        Ok(Self {
            client,
            mode,
            config,
            hosts: Arc::default(),
            replay,
        })
    }

    /// The engine's mode.
    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    fn host_permits(&self, url: &Url) -> Arc<Semaphore> {
        let key = format!(
            "{}:{}",
            url.host_str().unwrap_or(""),
            url.port_or_known_default().unwrap_or(0)
        );
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts
            .entry(key)
            .or_insert_with(|| Arc::new(Semaphore::new(self.config.max_concurrent_per_host.max(1))))
            .clone()
    }

    /// Sends a GET (or serves it from a recording) and returns a successful answer.
    pub async fn get(&self, req: &Request) -> Result<Response, HttpError> {
        if let Some(index) = &self.replay {
            return replay(index, req);
        }
        let resp = self.fetch_with_retries(req).await?;
        if let Mode::Record(dir) = &self.mode {
            let path = recording::save(
                dir,
                "GET",
                &req.url,
                resp.status,
                resp.content_type.as_deref(),
                &resp.body,
                resp.fetched_at,
            )?;
            tracing::debug!(url = %resp.url, file = %path.display(), "recorded response");
        }
        Ok(resp)
    }

    async fn fetch_with_retries(&self, req: &Request) -> Result<Response, HttpError> {
        let url = req.display_url();
        let policy = &self.config.retry;
        let permits = self.host_permits(&req.url);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let outcome = {
                let _permit = permits.acquire().await.expect("semaphore never closed");
                self.send_once(req).await
            };
            let retries_left = attempt <= policy.max_retries;
            let wait = match outcome {
                Ok(Attempt::Done(resp)) => {
                    tracing::debug!(url = %url, status = resp.status, bytes = resp.body.len(), attempt, "fetched");
                    return Ok(resp);
                }
                Ok(Attempt::Failed {
                    status,
                    retry_after,
                    body,
                }) => {
                    let retry = retry::retryable_status(status);
                    if !retry || !retries_left {
                        return Err(HttpError::Status {
                            url,
                            status,
                            attempts: attempt,
                            body,
                        });
                    }
                    match retry_after {
                        Some(wait) if wait.as_secs() > policy.max_retry_after_secs => {
                            return Err(HttpError::RetryAfterTooLong {
                                url,
                                wait_secs: wait.as_secs(),
                                max_secs: policy.max_retry_after_secs,
                            });
                        }
                        Some(wait) => wait,
                        None => policy.backoff(attempt - 1),
                    }
                }
                Err(message) => {
                    if !retries_left {
                        return Err(HttpError::Transport {
                            url,
                            attempts: attempt,
                            message,
                        });
                    }
                    tracing::debug!(url = %url, error = %message, "transport error");
                    policy.backoff(attempt - 1)
                }
            };
            tracing::warn!(url = %url, attempt, wait_ms = wait.as_millis() as u64, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn send_once(&self, req: &Request) -> Result<Attempt, String> {
        let mut builder = self.client.get(req.url.clone());
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        let resp = builder.send().await.map_err(describe_reqwest)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(describe_reqwest)?;
        if (200..300).contains(&status) {
            let content_type = headers
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            return Ok(Attempt::Done(Response {
                url: req.display_url(),
                status,
                content_type,
                body,
                fetched_at: Utc::now(),
            }));
        }
        let retry_after = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry::parse_retry_after(v, SystemTime::now()));
        let snippet: String = String::from_utf8_lossy(&body).chars().take(300).collect();
        Ok(Attempt::Failed {
            status,
            retry_after,
            body: redact::redact(snippet.trim()),
        })
    }
}

enum Attempt {
    Done(Response),
    Failed {
        status: u16,
        retry_after: Option<Duration>,
        body: String,
    },
}

/// reqwest errors print the URL with its query string; strip it and redact what is left.
fn describe_reqwest(err: reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_body() || err.is_decode() {
        "answer cut short"
    } else {
        "request failed"
    };
    let err = err.without_url();
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    redact::redact(&format!("{kind}: {message}"))
}

fn replay(index: &ReplayIndex, req: &Request) -> Result<Response, HttpError> {
    let rec = index.find("GET", &req.url, &req.window_params)?;
    let body = std::fs::read(&rec.body_path).map_err(|source| HttpError::RecordingIo {
        path: rec.body_path.clone(),
        source,
    })?;
    let url = req.display_url();
    if !(200..300).contains(&rec.meta.status) {
        let snippet: String = String::from_utf8_lossy(&body).chars().take(300).collect();
        return Err(HttpError::Status {
            url,
            status: rec.meta.status,
            attempts: 1,
            body: snippet,
        });
    }
    tracing::debug!(url = %url, file = %rec.body_path.display(), "replayed");
    Ok(Response {
        url,
        status: rec.meta.status,
        content_type: rec.meta.content_type.clone(),
        body: Bytes::from(body),
        fetched_at: rec.meta.recorded_at,
    })
}
