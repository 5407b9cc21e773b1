//! `[serve]` in `macrolake.toml`: the Postgres-wire server's address, users, TLS and limits.
//!
//! ```toml
//! [serve]
//! listen = "127.0.0.1:5433"
//! max_connections = 64
//! statement_timeout_secs = 300      # clients may lower it with SET statement_timeout
//! memory_limit_mb = 2048            # memory of all running statements together
//! query_memory_limit_mb = 512       # one statement's; past it, that statement fails, others go on
//! refresh_secs = 10                 # how often new table versions are picked up
//! tls_cert = "/etc/macrolake/server.crt"   # PEM; with tls_key, clients may (and should) use TLS
//! tls_key = "/etc/macrolake/server.key"
//! users_file = "/run/secrets/macrolake-users"  # lines "name:password"; must be mode 0600 or 0400
//! login_delay_base_ms = 100         # wait after a failed login, doubling per failure …
//! login_delay_max_ms = 5000         # … up to this (per user and per client address)
//! http_listen = "127.0.0.1:8080"    # the status page (serve and daemon); unset = none
//!
//! [[serve.users]]
//! name = "bi"
//! password_env = "MACROLAKE_PG_PASSWORD_BI"   # the password itself never goes in this file
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ServeError;

/// The server's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Address to listen on (`--listen` overrides).
    pub listen: String,
    /// Users allowed to connect; passwords come from environment variables.
    pub users: Vec<UserConfig>,
    /// A secrets file with more users, one `name:password` per line (`#` comments allowed). The
    /// server refuses to start if group or others may read or write it (use `chmod 600`).
    pub users_file: Option<PathBuf>,
    /// PEM certificate chain for TLS (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8) for TLS.
    pub tls_key: Option<PathBuf>,
    /// Most clients connected at once; more are refused with SQLSTATE 53300.
    pub max_connections: usize,
    /// Longest a statement may run unless the client sets a lower `statement_timeout`.
    pub statement_timeout_secs: u64,
    /// Memory for query execution (sorts, joins, aggregates) of all running statements
    /// together; a statement that would take the total past it fails with SQLSTATE 53200 (out of
    /// memory) while the server keeps serving.
    pub memory_limit_mb: usize,
    /// Memory one statement may use (a pool of its own, drawn from `memory_limit_mb`), so one
    /// client's large sort fails at this limit instead of taking the others' memory. Capped at
    /// `memory_limit_mb`.
    pub query_memory_limit_mb: usize,
    /// Tables with at most this many rows are read into memory when a version is loaded (and
    /// again at each new version), so dashboard queries over them skip the Delta snapshot and the
    /// Parquet files; larger tables are read from the lake per query. 0 keeps every table on
    /// disk (the default). Memory used is about the table's Arrow size (a 10,000-row mart: a few
    /// MB). Opt-in because `statement_timeout` cannot interrupt a CPU-bound query over in-memory
    /// tables (e.g. a three-way cross join): it holds a worker until it ends. Turn it on for
    /// dashboards with known queries, not for servers open to ad-hoc SQL.
    pub memory_table_max_rows: usize,
    /// Memory for answers to repeated queries (a dashboard's statements, sent again by every
    /// viewer and refresh): a statement whose text, parameters, result formats and connection
    /// settings match a kept answer gets it without being planned or run. Only plain queries
    /// over lake tables that call no time- or session-dependent function (`now()`, `random()`,
    /// `current_user` …) are kept, and all are dropped when a new table version becomes
    /// visible, so an answer is always the one the current tables give. 0 turns it off.
    pub result_cache_mb: usize,
    /// Seconds between checks for new table versions (after a nightly run, new queries see the
    /// new data without a restart; running queries keep the version they started on).
    pub refresh_secs: u64,
    /// After a failed login, the next attempt for that user or from that address waits this
    /// long before its password is checked; the wait doubles with each consecutive failure.
    pub login_delay_base_ms: u64,
    /// The longest wait after failed logins.
    pub login_delay_max_ms: u64,
    /// Address of the status page (runs, freshness, the chart, lineage, downloads) that
    /// `macrolake serve` and `macrolake daemon` start beside their main job; `--http` overrides.
    /// Unset: no status page. It uses these users and this TLS certificate.
    pub http_listen: Option<String>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:5433".into(),
            users: Vec::new(),
            users_file: None,
            tls_cert: None,
            tls_key: None,
            max_connections: 64,
            statement_timeout_secs: 300,
            memory_limit_mb: 2048,
            query_memory_limit_mb: 512,
            memory_table_max_rows: 0,
            result_cache_mb: 64,
            refresh_secs: 10,
            login_delay_base_ms: 100,
            login_delay_max_ms: 5000,
            http_listen: None,
        }
    }
}

/// One user.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The login name.
    pub name: String,
    /// The environment variable holding the password.
    pub password_env: String,
}

/// A user with its password (in memory only; registered for redaction).
#[derive(Clone)]
pub struct Credential {
    /// Login name.
    pub name: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({}, ***)", self.name)
    }
}

impl ServeConfig {
    /// Resolves relative paths against the config file's folder.
    pub fn resolve_paths(&mut self, base: &Path) {
        for p in [&mut self.users_file, &mut self.tls_cert, &mut self.tls_key]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// Every configured user with its password. No user at all is an error: the server never
    /// accepts anonymous clients.
    pub fn credentials(&self) -> Result<Vec<Credential>, ServeError> {
        let mut out = Vec::new();
        for u in &self.users {
            let password = std::env::var(&u.password_env)
                .ok()
                .filter(|p| !p.is_empty())
                .ok_or_else(|| ServeError::Config {
                    message: format!(
                        "user {:?}: environment variable {} (password_env) is not set",
                        u.name, u.password_env
                    ),
                })?;
            out.push(Credential {
                name: u.name.clone(),
                password,
            });
        }
        if let Some(path) = &self.users_file {
            check_private(path)?;
            let text = std::fs::read_to_string(path).map_err(|e| ServeError::Config {
                message: format!("users_file {}: {e}", path.display()),
            })?;
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let Some((name, password)) = line
                    .split_once(':')
                    .filter(|(n, p)| !n.trim().is_empty() && !p.is_empty())
                else {
                    return Err(ServeError::Config {
                        message: format!("{}:{}: expected name:password", path.display(), i + 1),
                    });
                };
                out.push(Credential {
                    name: name.trim().into(),
                    password: password.into(),
                });
            }
        }
        if out.is_empty() {
            return Err(ServeError::Config {
                message: "no users configured: the server never accepts anonymous clients. Add \
                          [[serve.users]] name = \"bi\", password_env = \"MACROLAKE_PG_PASSWORD_BI\" \
                          to macrolake.toml (or users_file = \"...\") and set the variable"
                    .into(),
            });
        }
        for c in &out {
            crate::http::redact::register(&c.password);
        }
        Ok(out)
    }
}

/// Refuses a secrets file that group or others may read or write.
fn check_private(path: &Path) -> Result<(), ServeError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| ServeError::Config {
            message: format!("users_file {}: {e}", path.display()),
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(ServeError::Config {
            message: format!(
                "users_file {} has mode {:04o}: it holds passwords, so group and others must have \
                 no access; run `chmod 600 {}`",
                path.display(),
                mode & 0o7777,
                path.display()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_users_refuses_and_users_come_from_env_and_file() {
        let cfg = ServeConfig::default();
        let e = cfg.credentials().unwrap_err().to_string();
        assert!(e.contains("never accepts anonymous"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users");
        std::fs::write(&file, "# BI users\nalice:s3cret:with:colons\n\nbob:pw\n").unwrap();
        set_mode(&file, 0o600);
        let cfg = ServeConfig {
            users_file: Some(file.clone()),
            users: vec![UserConfig {
                name: "carol".into(),
                password_env: "MACROLAKE_TEST_UNSET_PASSWORD_VAR".into(),
            }],
            ..ServeConfig::default()
        };
        let e = cfg.credentials().unwrap_err().to_string();
        assert!(e.contains("MACROLAKE_TEST_UNSET_PASSWORD_VAR"), "{e}");
        let cfg = ServeConfig {
            users: vec![],
            ..cfg
        };
        let creds = cfg.credentials().unwrap();
        assert_eq!(creds.len(), 2);
        assert_eq!(creds[0].name, "alice");
        assert_eq!(creds[0].password, "s3cret:with:colons");
        assert!(!format!("{creds:?}").contains("s3cret"));
        std::fs::write(&file, "nopassword\n").unwrap();
        let e = cfg.credentials().unwrap_err().to_string();
        assert!(e.contains("users:1: expected name:password"), "{e}");
    }

    fn set_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_users_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users");
        std::fs::write(&file, "alice:pw\n").unwrap();
        let cfg = ServeConfig {
            users_file: Some(file.clone()),
            ..ServeConfig::default()
        };
        for mode in [0o644, 0o640, 0o604, 0o660] {
            set_mode(&file, mode);
            let e = cfg.credentials().unwrap_err().to_string();
            assert!(
                e.contains(&format!("mode {mode:04o}")) && e.contains("chmod 600"),
                "{e}"
            );
        }
        for mode in [0o600, 0o400] {
            set_mode(&file, mode);
            assert_eq!(cfg.credentials().unwrap().len(), 1, "mode {mode:o}");
        }
    }
}
