//! `macrolake.toml`: where the lake is, how HTTP behaves, what each source fetches.
//! Every field is optional; the defaults are the documented product defaults.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::http::HttpConfig;
use crate::sources::SourcesConfig;

/// Errors reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named with `--config` cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown or mistyped field.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// TOML's message, with line and column.
        message: String,
    },
    /// A setting has a value that cannot be used.
    #[error("config: {message}")]
    Invalid {
        /// Which setting and why.
        message: String,
    },
}

/// `[lake]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LakeConfig {
    /// Where the lake lives: a local path, `file://`, `memory://`, `s3://bucket/prefix`,
    /// `gs://…` or `az://…`. Overridden by `--lake` and `MACROLAKE_LAKE`.
    pub url: String,
    /// Allow a plain-HTTP object store endpoint (a local S3 server such as MinIO or moto).
    pub allow_http: bool,
    /// Memory, in MiB, that one command's queries may hold at once: model builds, data tests,
    /// `macrolake sql`, exports, charts and the date sort of a staging table's first landing
    /// (the server has its own limits in `[serve]`). Sorts,
    /// aggregations and joins that need more spill to files in the temporary folder (`TMPDIR`)
    /// and go on; an operator that cannot spill fails with an error naming this setting. `0`
    /// means no limit. Default 512.
    pub memory_limit_mb: usize,
}

impl Default for LakeConfig {
    fn default() -> Self {
        Self {
            url: "./lake".to_string(),
            allow_http: false,
            memory_limit_mb: crate::lake::DEFAULT_MEMORY_LIMIT_MB,
        }
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The lake.
    pub lake: LakeConfig,
    /// The HTTP engine.
    pub http: HttpConfig,
    /// The connectors.
    pub sources: SourcesConfig,
    /// The SQL models.
    pub models: ModelsConfig,
    /// The Postgres-wire server (`macrolake serve`).
    pub serve: crate::serve::ServeConfig,
}

/// `[models]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// The day `freshness` tests measure staleness from; unset = today (UTC). A recorded
    /// snapshot sets the day it was recorded.
    pub reference_date: Option<chrono::NaiveDate>,
    /// The daily cut-off of the marts, `HH:MM` local time in `cutoff_zone` (default `18:30`, after
    /// the US close): a mart row for day D uses only values public (`available_at`) by D at this
    /// time. Changing it changes what marts show: rebuild them with `--full-refresh`.
    pub cutoff: Option<String>,
    /// IANA time zone of `cutoff` (default `America/New_York`).
    pub cutoff_zone: Option<String>,
    /// The project's folder of models, seeds and tests (`staging/`, `marts/`, `seeds/`,
    /// `tests/`). A relative path is resolved against this file's folder. Default: `sql` beside
    /// this file (or in the current directory when no configuration file is used). A missing
    /// folder is an error for `build`, `test`, `docs` and jobs — never an empty project.
    pub dir: Option<PathBuf>,
}

impl ModelsConfig {
    /// The configured cut-off (defaults filled in); an error names the bad value.
    pub fn cutoff(&self) -> Result<crate::lake::availability::Cutoff, ConfigError> {
        let mut cutoff = crate::lake::availability::Cutoff::default();
        if let Some(t) = &self.cutoff {
            cutoff.time = chrono::NaiveTime::parse_from_str(t, "%H:%M").map_err(|_| {
                ConfigError::Invalid {
                    message: format!("[models] cutoff {t:?} is not HH:MM (e.g. \"18:30\")"),
                }
            })?;
        }
        if let Some(z) = &self.cutoff_zone {
            cutoff.zone = z.parse().map_err(|_| ConfigError::Invalid {
                message: format!("[models] cutoff_zone {z:?} is not an IANA time zone (e.g. \"America/New_York\")"),
            })?;
        }
        Ok(cutoff)
    }
}

impl Config {
    /// Parses configuration text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Loads the file at `path`. A missing file is an error only when `required` (the user
    /// named it); otherwise the defaults apply. Relative paths in the file (e.g.
    /// `[sources.eps] archive_dir`) are resolved against the file's folder.
    pub fn load(path: &Path, required: bool) -> Result<Self, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let mut config = Self::parse(&text, path)?;
                config.models.cutoff().map_err(|e| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?;
                let base = path.parent().unwrap_or(Path::new(""));
                config.sources.resolve_paths(base);
                config.serve.resolve_paths(base);
                config.models.dir = Some(match config.models.dir.take() {
                    Some(dir) if dir.is_relative() => base.join(dir),
                    Some(dir) => dir,
                    None => base.join("sql"),
                });
                Ok(config)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(Self::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_config_parses_and_matches_defaults() {
        let text = include_str!("../macrolake.toml");
        let cfg = Config::parse(text, Path::new("macrolake.toml")).unwrap();
        assert_eq!(cfg.lake.url, "./lake");
        assert!(cfg.sources.fred.series.contains(&"WALCL".to_string()));
        assert_eq!(cfg.http.retry.max_retries, 4);
        let eps = crate::sources::eps::EpsConfig::default();
        assert_eq!(cfg.sources.eps.url, eps.url);
        assert_eq!(cfg.sources.eps.fetch_url, eps.fetch_url);
        assert_eq!(
            cfg.sources.eps.archive_dir, None,
            "documented, commented out"
        );
    }

    #[test]
    fn unknown_field_names_file_line_and_field() {
        let err = Config::parse("[lake]\nurl = \"x\"\nbogus = 1\n", Path::new("m.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("m.toml"), "{err}");
        assert!(err.contains("bogus"), "{err}");
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn load_resolves_relative_source_paths_against_the_file_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        std::fs::write(&path, "[sources.eps]\narchive_dir = \"saved\"\n").unwrap();
        let cfg = Config::load(&path, true).unwrap();
        assert_eq!(cfg.sources.eps.archive_dir, Some(dir.path().join("saved")));
    }

    #[test]
    fn missing_default_file_is_fine_missing_named_file_is_not() {
        let p = Path::new("/nonexistent/macrolake.toml");
        assert!(Config::load(p, false).is_ok());
        assert!(Config::load(p, true).is_err());
    }
}
