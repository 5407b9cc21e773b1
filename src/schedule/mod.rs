//! Jobs: `schedules/<job>.toml` files naming a 5-field cron expression, an IANA time zone and
//! ordered steps (ingest sources, build, test, export, optimize, vacuum). `macrolake schedules` lists every job's
//! next runs; `macrolake run <job>` runs one now; `macrolake daemon` fires them on schedule.
//!
//! ```toml
//! description = "Nightly after the US close"
//! cron = "30 18 * * MON-FRI"        # minute hour day-of-month month day-of-week, as in crontab
//! timezone = "America/New_York"
//! misfire = "latest"                # skip | latest | all (with misfire_max_runs)
//! overlap = "skip"                  # skip | queue
//! [[steps]]
//! kind = "ingest"                   # sources = [...] to limit; all when omitted
//! [[steps]]
//! kind = "build"                    # select = "+liquidity_vs_risk" to limit
//! [[steps]]
//! kind = "test"
//! [[steps]]
//! kind = "export"
//! query = "SELECT * FROM marts.liquidity_vs_risk"
//! path = "exports/liquidity_vs_risk.csv"
//! [[steps]]
//! kind = "optimize"                 # tables = [...] to limit; target_size_mb = 128
//! [[steps]]
//! kind = "vacuum"                   # tables = [...] to limit; retention_hours = 168 (at least)
//! ```

pub mod commands;
pub mod crontab;
#[cfg(test)]
mod crontab_tests;
pub mod daemon;
#[cfg(test)]
mod daemon_tests;
pub mod lease;
pub mod liveness;
pub mod metrics;
pub mod runner;
mod steps;
pub mod ticks;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::sources::SourceKind;
pub use crontab::{CronError, Crontab};
pub use ticks::Misfire;

/// Errors of jobs: reading job files (each names the file, the field and the bad value), leases,
/// and the job commands.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A field is invalid.
    #[error("{path}: {field} = {value:?}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The field.
        field: String,
        /// The bad value.
        value: String,
        /// Why.
        message: String,
    },
    /// The job's `cron` is not a valid crontab expression.
    #[error("job {job} ({path}): cron = {expr:?}: {source}")]
    Cron {
        /// The job (file stem).
        job: String,
        /// The file.
        path: PathBuf,
        /// The expression as written.
        expr: String,
        /// What is wrong with it.
        #[source]
        source: Box<CronError>,
    },
    /// Reading or writing a lease or state object in the lake failed.
    #[error("cannot {action} {path}: {source}")]
    Store {
        /// What was being done.
        action: &'static str,
        /// The object.
        path: String,
        /// The store error.
        #[source]
        source: object_store::Error,
    },
    /// A lease or state object is not valid JSON (delete it to reset the job's schedule state).
    #[error("{path} is corrupt ({message}); delete it to reset this job's schedule state")]
    Corrupt {
        /// The object.
        path: String,
        /// The parse error.
        message: String,
    },
    /// Writing run history failed.
    #[error(transparent)]
    Lake(#[from] crate::lake::LakeError),
    /// The metrics listener could not start.
    #[error("cannot listen for metrics on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The job is running elsewhere (a daemon or another `macrolake run`).
    #[error(
        "job {job} is already running: {held}. Wait for it to finish. If that process is gone, its lease lapses at expiry (a holder on this host whose process is gone is taken over at once); to break it now, make sure no run of {job} is going on that host, then run `macrolake run {job} --force-break-lease --yes`"
    )]
    Busy {
        /// The job.
        job: String,
        /// Who holds its lease, until when.
        held: Box<lease::HeldBy>,
    },
    /// `--force-break-lease` without `--yes`.
    #[error(
        "job {job}: would break the {held}. Only do this if no run of {job} is going on that host (a live holder elsewhere loses the lease at its next renewal); add --yes to confirm"
    )]
    ConfirmBreak {
        /// The job.
        job: String,
        /// The lease that would be broken.
        held: Box<lease::HeldBy>,
    },
    /// `--force-break-lease` against a holder whose process runs on this machine.
    #[error(
        "job {job}: refusing to break the {held}; stop that process (kill {pid}) or wait for it to finish", pid = held.process.as_ref().map_or(0, |p| p.pid)
    )]
    HolderAlive {
        /// The job.
        job: String,
        /// The live holder.
        held: Box<lease::HeldBy>,
    },
    /// No job of that name.
    #[error("no job {name:?} in {dir} (jobs: {known})")]
    NoSuchJob {
        /// The name asked for.
        name: String,
        /// The folder.
        dir: PathBuf,
        /// The jobs there.
        known: String,
    },
    /// A job step failed; later steps were skipped.
    #[error("job {job} failed: {error}")]
    JobFailed {
        /// The job.
        job: String,
        /// The failing step's error.
        error: String,
    },
    /// The daemon's status page could not start.
    #[error(transparent)]
    Serve(#[from] crate::serve::ServeError),
    /// Reading the lake for `status` failed.
    #[error(transparent)]
    App(Box<crate::app::AppError>),
}

impl From<crate::app::AppError> for ScheduleError {
    fn from(e: crate::app::AppError) -> Self {
        Self::App(Box::new(e))
    }
}

/// One step of a job.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Ingest sources (all when `sources` is empty).
    Ingest {
        /// Source names.
        #[serde(default)]
        sources: Vec<String>,
    },
    /// Build models (`select` as for `macrolake build --select`).
    Build {
        /// Selector.
        #[serde(default)]
        select: Option<String>,
    },
    /// Run the models' data tests.
    Test {
        /// Selector.
        #[serde(default)]
        select: Option<String>,
    },
    /// Write a query's result to a file (replaced atomically).
    Export {
        /// SQL over the lake, e.g. `SELECT * FROM marts.liquidity_vs_risk`.
        query: String,
        /// Output file, relative to the working directory.
        path: PathBuf,
        /// `csv`, `json` or `parquet` (default: from the file extension, else csv).
        #[serde(default)]
        format: Option<String>,
    },
    /// Compact tables' small files into large ones, as `macrolake optimize` (same rows, a new
    /// version of each table compacted).
    Optimize {
        /// Tables (`marts.asset_daily` or `asset_daily`); every table when omitted.
        #[serde(default)]
        tables: Vec<String>,
        /// Target file size in MB.
        #[serde(default = "default_target_size_mb")]
        target_size_mb: u64,
    },
    /// Delete files no version within the retention still needs, as `macrolake vacuum`.
    Vacuum {
        /// Tables; every table when omitted.
        #[serde(default)]
        tables: Vec<String>,
        /// Keep every file a version of the last HOURS needs (`--as-of` within them keeps
        /// working); at least 168 (7 days), Delta's default.
        #[serde(default = "default_retention_hours")]
        retention_hours: u64,
    },
}

fn default_target_size_mb() -> u64 {
    128
}

fn default_retention_hours() -> u64 {
    crate::lake::maintain::DEFAULT_RETENTION_HOURS
}

impl Step {
    /// The step's kind as stored in `meta.runs.kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Ingest { .. } => "ingest",
            Step::Build { .. } => "build",
            Step::Test { .. } => "test",
            Step::Export { .. } => "export",
            Step::Optimize { .. } => "optimize",
            Step::Vacuum { .. } => "vacuum",
        }
    }

    /// A short human label: `ingest fred,nyfed`, `build +liquidity_vs_risk`, `export out.csv`.
    pub fn label(&self) -> String {
        match self {
            Step::Ingest { sources } if sources.is_empty() => "ingest (all sources)".into(),
            Step::Ingest { sources } => format!("ingest {}", sources.join(",")),
            Step::Build { select: None } => "build (all models)".into(),
            Step::Test { select: None } => "test (all models)".into(),
            Step::Build { select: Some(s) } | Step::Test { select: Some(s) } => {
                format!("{} {s}", self.kind())
            }
            Step::Export { path, .. } => format!("export {}", path.display()),
            Step::Optimize { tables, .. } | Step::Vacuum { tables, .. } if tables.is_empty() => {
                format!("{} (all tables)", self.kind())
            }
            Step::Optimize { tables, .. } | Step::Vacuum { tables, .. } => {
                format!("{} {}", self.kind(), tables.join(","))
            }
        }
    }
}

/// What the daemon does when a tick comes while the previous run of the same job is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Record the new tick as skipped.
    #[default]
    Skip,
    /// Run it as soon as the running one finishes.
    Queue,
}

/// A job file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFile {
    /// What the job is for.
    #[serde(default)]
    pub description: String,
    /// 5-field cron expression (minute hour day-of-month month day-of-week), crontab syntax
    /// including names such as `MON-FRI`; day-of-week 0 or 7 is Sunday.
    pub cron: String,
    /// IANA time zone the cron expression is read in, e.g. `America/New_York`.
    pub timezone: String,
    /// Whether the schedule fires (a disabled job can still be run by hand).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Steps, run in order; a step that still fails after its retries stops the job.
    pub steps: Vec<Step>,
    /// Time allowed for one attempt of one step, in seconds (unset = no limit).
    #[serde(default)]
    pub step_timeout_secs: Option<u64>,
    /// Time allowed for the whole run, in seconds (unset = no limit); a step still running then
    /// is cut and the run fails.
    #[serde(default)]
    pub job_timeout_secs: Option<u64>,
    /// Retries of a failing step.
    #[serde(default)]
    pub retries: Retries,
    /// What the daemon does with ticks missed while it was not running: `skip`, `latest`
    /// (default: one run for the newest) or `all` (each, up to `misfire_max_runs`).
    #[serde(default)]
    pub misfire: Misfire,
    /// With `misfire = "all"`: most missed ticks run (the newest ones); older ones are skipped.
    #[serde(default = "default_max_runs")]
    pub misfire_max_runs: usize,
    /// A tick at most this many seconds late is on time, not a misfire.
    #[serde(default = "default_grace")]
    pub misfire_grace_secs: u64,
    /// What happens when a tick comes while the previous run is still going: `skip` (default,
    /// recorded) or `queue`.
    #[serde(default)]
    pub overlap: Overlap,
}

fn default_max_runs() -> usize {
    5
}

fn default_grace() -> u64 {
    300
}

/// Retry policy of a job's steps: `count` more attempts, waiting `base_secs`, then twice that,
/// … at most `cap_secs` between attempts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retries {
    /// Extra attempts after the first.
    pub count: u32,
    /// First wait, seconds.
    pub base_secs: u64,
    /// Longest wait, seconds.
    pub cap_secs: u64,
}

impl Default for Retries {
    fn default() -> Self {
        Self {
            count: 0,
            base_secs: 30,
            cap_secs: 600,
        }
    }
}

impl Retries {
    /// The wait before retry `n` (0-based).
    pub fn wait(&self, n: u32) -> std::time::Duration {
        crate::http::retry::exponential(
            std::time::Duration::from_secs(self.base_secs),
            n,
            std::time::Duration::from_secs(self.cap_secs),
        )
    }
}

fn yes() -> bool {
    true
}

/// A validated job.
#[derive(Debug, Clone)]
pub struct Job {
    /// File stem.
    pub name: String,
    /// The file.
    pub path: PathBuf,
    /// As written.
    pub file: JobFile,
    /// Parsed schedule.
    pub schedule: Crontab,
    /// Parsed zone.
    pub tz: Tz,
}

/// Checks a job's steps: at least one, known source names, export formats, and maintenance
/// settings within their bounds; `invalid` makes the error (field, value, message).
fn check_steps(
    steps: &[Step],
    invalid: &impl Fn(&str, &str, String) -> ScheduleError,
) -> Result<(), ScheduleError> {
    for step in steps {
        match step {
            Step::Ingest { sources } => {
                for s in sources {
                    SourceKind::from_str(s).map_err(|m| invalid("steps.sources", s, m))?;
                }
            }
            Step::Export { format, path, .. } => {
                crate::query::Format::for_file(format.as_deref(), path).map_err(|m| {
                    invalid("steps.format", format.as_deref().unwrap_or_default(), m)
                })?;
            }
            Step::Vacuum {
                retention_hours, ..
            } if *retention_hours < crate::lake::maintain::DEFAULT_RETENTION_HOURS => {
                return Err(invalid(
                    "steps.retention_hours",
                    &retention_hours.to_string(),
                    format!(
                        "must be at least {} (7 days): a shorter retention deletes files \
                         that time travel and long-running readers still need (`macrolake \
                         vacuum --allow-short-retention` does it by hand)",
                        crate::lake::maintain::DEFAULT_RETENTION_HOURS
                    ),
                ));
            }
            Step::Optimize { target_size_mb, .. } if *target_size_mb == 0 => {
                return Err(invalid(
                    "steps.target_size_mb",
                    "0",
                    "must be at least 1".into(),
                ));
            }
            _ => {}
        }
    }
    if steps.is_empty() {
        return Err(invalid(
            "steps",
            "[]",
            "a job needs at least one step".into(),
        ));
    }
    Ok(())
}

impl Job {
    /// Reads and validates one job file (cron, time zone, source names).
    pub fn load(path: &Path) -> Result<Job, ScheduleError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScheduleError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |field: &str, value: &str, message: String| ScheduleError::Invalid {
            path: path.to_path_buf(),
            field: field.into(),
            value: value.into(),
            message,
        };
        let file: JobFile =
            toml::from_str(&text).map_err(|e| invalid("(file)", "", e.to_string()))?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let schedule = Crontab::from_str(&file.cron).map_err(|source| ScheduleError::Cron {
            job: name.clone(),
            path: path.to_path_buf(),
            expr: file.cron.clone(),
            source: Box::new(source),
        })?;
        let tz: Tz = file
            .timezone
            .parse()
            .map_err(|_| invalid("timezone", &file.timezone, "not an IANA time zone".into()))?;
        check_steps(&file.steps, &invalid)?;
        if file.misfire == Misfire::All && file.misfire_max_runs == 0 {
            return Err(invalid(
                "misfire_max_runs",
                "0",
                "must be at least 1 with misfire = \"all\"".into(),
            ));
        }
        Ok(Job {
            name,
            path: path.to_path_buf(),
            file,
            schedule,
            tz,
        })
    }

    /// The next `n` run times after `after`, in the job's zone (DST rules as in [`ticks`]).
    pub fn next_runs(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Tz>> {
        ticks::ticks_after(&self.schedule, self.tz, after)
            .take(n)
            .map(|t| t.with_timezone(&self.tz))
            .collect()
    }

    /// Checks that every `select` names a model (or tag) in `sql_dir`.
    pub fn check_models(&self, sql_dir: &Path) -> Result<(), ScheduleError> {
        let selects: Vec<&str> = self
            .file
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Build { select } | Step::Test { select } => select.as_deref(),
                _ => None,
            })
            .collect();
        if selects.is_empty() {
            return Ok(());
        }
        let models = crate::models::discover(sql_dir)
            .map(|(m, _)| m)
            .unwrap_or_default();
        for sel in selects {
            let known = match sel.strip_prefix("tag:") {
                Some(tag) => models.iter().any(|m| m.tags.iter().any(|t| t == tag)),
                None => {
                    let n = sel.trim_matches('+');
                    models
                        .iter()
                        .any(|m| m.name.name == n || m.name.to_string() == n)
                }
            };
            if !known {
                return Err(ScheduleError::Invalid {
                    path: self.path.clone(),
                    field: "steps.select".into(),
                    value: sel.into(),
                    message: format!("no such model or tag in {}", sql_dir.display()),
                });
            }
        }
        Ok(())
    }
}

/// Every job under `dir`, validated (the first invalid file is an error).
pub fn load_all(dir: &Path) -> Result<Vec<Job>, ScheduleError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths.iter().map(|p| Job::load(p)).collect()
}

/// One job by name.
pub fn find(dir: &Path, name: &str) -> Result<Job, ScheduleError> {
    let jobs = load_all(dir)?;
    let known = jobs
        .iter()
        .map(|j| j.name.clone())
        .collect::<Vec<_>>()
        .join(", ");
    jobs.into_iter()
        .find(|j| j.name == name)
        .ok_or(ScheduleError::NoSuchJob {
            name: name.into(),
            dir: dir.to_path_buf(),
            known,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Timelike, Weekday};

    fn job(cron: &str, tz: &str) -> Job {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.toml");
        std::fs::write(
            &p,
            format!("cron = \"{cron}\"\ntimezone = \"{tz}\"\n[[steps]]\nkind = \"ingest\"\n"),
        )
        .unwrap();
        Job::load(&p).unwrap()
    }

    #[test]
    fn weekdays_never_fire_on_sunday_and_zones_apply() {
        let j = job("30 18 * * MON-FRI", "America/New_York");
        let runs = j.next_runs(Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap(), 10);
        assert!(
            runs.iter()
                .all(|r| !matches!(r.weekday(), Weekday::Sat | Weekday::Sun)),
            "{runs:?}"
        );
        assert!(runs.iter().all(|r| (r.hour(), r.minute()) == (18, 30)));
        // 18:30 in New York is 23:30 UTC in winter.
        assert_eq!(runs[0].with_timezone(&Utc).hour(), 23);
    }

    #[test]
    fn year_end_and_leap_day() {
        let j = job("0 0 29 2 *", "UTC");
        let next = j.next_runs(Utc.with_ymd_and_hms(2026, 12, 31, 23, 0, 0).unwrap(), 1);
        assert_eq!(next[0].date_naive().to_string(), "2028-02-29");
    }

    #[test]
    fn validation_names_file_field_and_value() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.toml");
        std::fs::write(
            &p,
            "cron = \"61 * * * *\"\ntimezone = \"UTC\"\n[[steps]]\nkind = \"ingest\"\n",
        )
        .unwrap();
        let e = Job::load(&p).unwrap_err().to_string();
        assert!(
            e.starts_with("job bad (")
                && e.contains(
                    "bad.toml): cron = \"61 * * * *\": minute field \"61\": 61 is out of range"
                ),
            "{e}"
        );
        // Day-of-week is reported as written, never renumbered.
        std::fs::write(
            &p,
            "cron = \"0 9 * * 1-8\"\ntimezone = \"UTC\"\n[[steps]]\nkind = \"ingest\"\n",
        )
        .unwrap();
        let e = Job::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("cron = \"0 9 * * 1-8\": day-of-week field \"1-8\": 8 is out of range"),
            "{e}"
        );
        std::fs::write(
            &p,
            "cron = \"0 9 * * *\"\ntimezone = \"Mars/Olympus\"\n[[steps]]\nkind = \"ingest\"\n",
        )
        .unwrap();
        assert!(
            Job::load(&p)
                .unwrap_err()
                .to_string()
                .contains("timezone = \"Mars/Olympus\"")
        );
        std::fs::write(&p, "cron = \"0 9 * * *\"\ntimezone = \"UTC\"\n[[steps]]\nkind = \"ingest\"\nsources = [\"bloomberg\"]\n").unwrap();
        assert!(
            Job::load(&p)
                .unwrap_err()
                .to_string()
                .contains("steps.sources = \"bloomberg\"")
        );
    }
}
