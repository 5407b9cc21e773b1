//! One model's build (or audit) as a task: skip, keep if unchanged, build incrementally, or
//! write-audit-publish from scratch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;

use super::fingerprint;
use super::spec::{Materialized, Model};
use super::step::Step;
use crate::lake::model_state::ModelState;
use crate::lake::runs::{RunRecord, RunStatus};
use crate::lake::{Lake, TableName};

/// What happened to one model.
#[derive(Debug, Clone)]
pub struct ModelOutcome {
    /// The model.
    pub name: TableName,
    /// ok, failed or skipped.
    pub status: RunStatus,
    /// Rows published.
    pub rows: usize,
    /// Seconds spent.
    pub seconds: f64,
    /// Why it failed or was skipped.
    pub message: Option<String>,
}

impl ModelOutcome {
    /// The outcome of a model a dry run planned.
    pub(super) fn planned(m: &Model) -> Self {
        ModelOutcome {
            name: m.name.clone(),
            status: RunStatus::Ok,
            rows: 0,
            seconds: 0.0,
            message: Some("planned (dry run)".into()),
        }
    }

    /// Its `meta.runs` row (`kind`: build or test) ending now.
    pub(super) fn record(
        &self,
        run_id: &str,
        kind: &str,
        started_at: chrono::DateTime<chrono::Utc>,
    ) -> RunRecord {
        RunRecord {
            scheduled_for: None,
            attempt: None,
            run_id: run_id.to_string(),
            kind: kind.into(),
            job: kind.into(),
            target: Some(self.name.to_string()),
            started_at,
            ended_at: Lake::now(),
            status: self.status,
            rows_written: self.rows as i64,
            error: self.message.clone(),
        }
    }
}

/// What one model's build (or audit) left: its outcome, its `meta.runs` row and, for a table
/// model, the state to record.
pub(super) struct Finished {
    pub(super) outcome: ModelOutcome,
    pub(super) record: RunRecord,
    pub(super) state: Option<ModelState>,
}

impl Finished {
    /// A build task that panicked: a failure (the caller puts the model's name on it).
    pub(super) fn panicked(run_id: &str, kind: &str, message: String) -> Self {
        let outcome = ModelOutcome {
            name: TableName::marts("unknown"),
            status: RunStatus::Failed,
            rows: 0,
            seconds: 0.0,
            message: Some(format!("the {kind} of this model {message}")),
        };
        let record = outcome.record(run_id, kind, Lake::now());
        Finished {
            outcome,
            record,
            state: None,
        }
    }
}

/// One model's build as a task of its own: what a [`Step`] borrows, owned.
pub(super) struct Job {
    pub(super) lake: Lake,
    pub(super) ctx: SessionContext,
    pub(super) model: Model,
    pub(super) inputs: Vec<TableName>,
    pub(super) custom: Vec<(std::path::PathBuf, String)>,
    pub(super) reference: chrono::NaiveDate,
    pub(super) read: super::added::Versions,
    pub(super) previous: Option<ModelState>,
    pub(super) planned: Option<SchemaRef>,
    pub(super) test_only: bool,
    /// Held while the model builds (incremental models take turns).
    pub(super) lock: Option<Arc<tokio::sync::Mutex<()>>>,
}

impl Job {
    /// Builds (or audits) the model, or skips it when `failed_up`, a model it reads, failed or
    /// was skipped.
    pub(super) async fn run(
        self,
        failed_up: Option<TableName>,
        run_id: String,
        kind: &'static str,
        release: crate::parallel::Release,
    ) -> Finished {
        let started = Lake::now();
        let clock = Instant::now();
        let mut outcome = ModelOutcome {
            name: self.model.name.clone(),
            status: RunStatus::Ok,
            rows: 0,
            seconds: 0.0,
            message: None,
        };
        let result = match failed_up {
            Some(up) => Err((
                RunStatus::Skipped,
                format!("upstream {up} failed or was skipped"),
            )),
            None => {
                tracing::debug!(model = %self.model.name, "model's build started");
                let turn = match &self.lock {
                    Some(lock) => Some(lock.clone().lock_owned().await),
                    None => None,
                };
                tracing::debug!(model = %self.model.name, "model's build has its turn");
                // Released with the dependents: what remains binds no name in the session.
                let turn = std::sync::Mutex::new(turn);
                let release = || {
                    drop(turn.lock().map(|mut t| t.take()));
                    release.now();
                };
                let step = Step {
                    lake: &self.lake,
                    ctx: &self.ctx,
                    model: &self.model,
                    inputs: &self.inputs,
                    custom: &self.custom,
                    reference: self.reference,
                    read: &self.read,
                    previous: self.previous.clone(),
                    planned: self.planned.as_ref(),
                    release: &release,
                };
                run_model(&step, self.test_only)
                    .await
                    .map_err(|message| (RunStatus::Failed, message))
            }
        };
        let mut state = None;
        match result {
            Ok(Built::Rows(rows, built)) => {
                outcome.rows = rows;
                state = built;
            }
            Ok(Built::Unchanged(version)) => {
                outcome.message = Some(format!(
                    "unchanged: nothing it reads changed since its build of version {version}; its tests pass"
                ));
            }
            Err((status, message)) => {
                outcome.status = status;
                outcome.message = Some(message);
            }
        }
        outcome.seconds = clock.elapsed().as_secs_f64();
        let record = outcome.record(&run_id, kind, started);
        Finished {
            outcome,
            record,
            state,
        }
    }
}

/// What building one model did.
enum Built {
    /// Published this many rows; the state to record for a table model.
    Rows(usize, Option<ModelState>),
    /// Left as it was (this version): nothing it reads changed since it built it.
    Unchanged(u64),
}

/// Builds one model (or, with `test_only`, audits the published one); `Err` is the message.
async fn run_model(step: &Step<'_>, test_only: bool) -> Result<Built, String> {
    if test_only {
        audit_as_is(step).await
    } else {
        build_one(step).await
    }
}

/// Audits the model as it is published (a view: as it reads now).
async fn audit_as_is(step: &Step<'_>) -> Result<Built, String> {
    let (lake, m) = (step.lake, step.model);
    let mut proven = Vec::new();
    if let Some(state) = step.previous.as_ref()
        && m.materialized != Materialized::View
        && let Ok(version) = lake.version(&m.name).await
    {
        proven.extend(super::proven::unique_tests_at(m, state, version));
        proven
            .extend(super::added::relationships_holding(lake, m, state, version, step.read).await);
    }
    let failures = super::audit::audit(step.ctx, m, step.custom, step.reference, proven).await;
    if failures.is_empty() {
        Ok(Built::Rows(0, None))
    } else {
        Err(failures.join("\n"))
    }
}

/// `Some` when the table model's fingerprints `prints` and its version are those its last build
/// recorded: its rows stay, and only its tests run (a verdict can change without them).
async fn keep_if_unchanged(
    step: &Step<'_>,
    prints: Option<&HashMap<String, String>>,
) -> Result<Option<Built>, String> {
    let (Some(previous), Some(prints)) = (&step.previous, prints) else {
        return Ok(None);
    };
    let Some(version) = step
        .lake
        .version(&step.model.name)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let mut now = prints.clone();
    now.insert(
        fingerprint::PUBLISHED.into(),
        super::state_keys::version_print(version),
    );
    if !fingerprint::unchanged(previous, &now) {
        return Ok(None);
    }
    audit_as_is(step)
        .await
        .map(|_| Some(Built::Unchanged(version)))
        .map_err(|failures| {
            format!(
                "{} is unchanged since version {version}, and those rows fail its tests now:\n{failures}",
                step.model.name
            )
        })
}

async fn build_one(step: &Step<'_>) -> Result<Built, String> {
    let Step {
        lake,
        ctx,
        model: m,
        inputs,
        custom,
        reference,
        ..
    } = *step;
    let started = Lake::now();
    let incremental = m.materialized == Materialized::Incremental;
    if incremental && step.previous.is_some() {
        let built = super::incremental::build_incremental(step).await?;
        if let Some(rows) = built {
            return Ok(Built::Rows(rows, None));
        }
    }
    if m.materialized == Materialized::View {
        // Views are registered in every session from their file.
        return audit_as_is(step).await;
    }
    // A table model whose inputs and files are as at its last build keeps its rows.
    let clock = Instant::now();
    let prints = if incremental {
        None
    } else {
        fingerprint::all(lake, ctx, m, inputs).await?
    };
    if let Some(kept) = keep_if_unchanged(step, prints.as_ref()).await? {
        return Ok(kept);
    }
    let phase = Instant::now();
    let checked_s = (phase - clock).as_secs_f64();
    // Write: stream the new rows into files beside the table, visible to no one.
    let query = ctx
        .sql(&m.sql)
        .await
        .map_err(|e| format!("{}: DataFusion: {e}", m.path.display()))?;
    tracing::debug!(model = %m.name, checked_s, sql_s = phase.elapsed().as_secs_f64(), "inputs fingerprinted and SQL planned");
    let staged = lake
        .stage_watching(&m.name, query, &super::audit::unique_keys(m))
        .await
        .map_err(|e| format!("{}: {e}", m.path.display()))?;
    let staged_in = phase.elapsed();
    // Audit exactly those rows, read back from the files (a unique key they were written in
    // strictly increasing order of is proven already).
    let audited = match staged.provider(&ctx.state()).await {
        Ok(candidate) => {
            let proven = &staged.unique_keys;
            super::audit::stage_and_audit(ctx, m, custom, reference, candidate, proven).await
        }
        Err(e) => Err(e.to_string()),
    };
    if let Err(failure) = audited {
        if let Err(e) = staged.discard(lake).await {
            tracing::warn!(model = %m.name, error = %e, "could not delete the staged files of a build that failed its audit");
        }
        return Err(failure);
    }
    // Publish: one atomic commit. An empty result is a valid version with its schema (the tests
    // decide whether empty is acceptable).
    let audited_in = phase.elapsed() - staged_in;
    let published = staged.publish(lake).await.map_err(|e| e.to_string())?;
    tracing::debug!(model = %m.name, staged_s = staged_in.as_secs_f64(), audited_s = audited_in.as_secs_f64(),
        published_s = (phase.elapsed() - staged_in - audited_in).as_secs_f64(), "built");
    if incremental {
        (step.release)();
        let version = published.version;
        let also = super::last_rows::rewrite(lake, m, version);
        let ended = super::incremental::Ended::Published(version);
        super::incremental::record_state(step, started, ended, also, None).await?;
    }
    let state = prints.zip(published.version).map(|(mut inputs, version)| {
        inputs.insert(
            fingerprint::PUBLISHED.into(),
            super::state_keys::version_print(version),
        );
        inputs.extend(super::proven::on_publish(m, version));
        inputs.extend(super::added::on_publish(m, &[], step.read, version));
        ModelState {
            built_at: Some(started),
            inputs,
        }
    });
    Ok(Built::Rows(published.rows, state))
}
