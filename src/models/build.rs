//! Building models: plan everything first, then compute, audit and publish each model in DAG
//! order (write-audit-publish), skipping what sits downstream of a failure.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;

use super::dag::{self, line_of};
use super::fingerprint;
use super::session::register;
use super::spec::{Materialized, Model};
use super::step::Step;
use super::{ModelError, discover};
use crate::lake::model_state::ModelState;
use crate::lake::runs::{RunRecord, RunStatus};
use crate::lake::{Lake, TableName, ViewDef};

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

/// A build's outcome, in build order.
#[derive(Debug, Default)]
pub struct BuildReport {
    /// One entry per selected model.
    pub outcomes: Vec<ModelOutcome>,
}

impl BuildReport {
    /// Whether every model built (or tested) cleanly.
    pub fn ok(&self) -> bool {
        self.outcomes.iter().all(|o| o.status == RunStatus::Ok)
    }

    /// One line per model that failed or was skipped: `marts.x failed: why`.
    pub fn problems(&self) -> Vec<String> {
        self.outcomes
            .iter()
            .filter(|o| o.status != RunStatus::Ok)
            .map(|o| {
                format!(
                    "{} {}: {}",
                    o.name,
                    o.status.as_str(),
                    o.message.as_deref().unwrap_or_default()
                )
            })
            .collect()
    }
}

/// Which models to act on: `name`, `+name` (with its ancestors), `name+` (with descendants),
/// `tag:t` (every model tagged `t`).
fn select(
    order: &[(usize, Vec<TableName>)],
    models: &[Model],
    selector: Option<&str>,
) -> Result<BTreeSet<usize>, String> {
    let all: BTreeSet<usize> = order.iter().map(|(i, _)| *i).collect();
    let Some(sel) = selector else { return Ok(all) };
    if let Some(tag) = sel.strip_prefix("tag:") {
        let tagged: BTreeSet<usize> = models
            .iter()
            .enumerate()
            .filter(|(_, m)| m.tags.iter().any(|t| t == tag))
            .map(|(i, _)| i)
            .collect();
        return if tagged.is_empty() {
            Err(format!("--select {sel}: no model has tag {tag}"))
        } else {
            Ok(tagged)
        };
    }
    let (up, down, name) = (
        sel.starts_with('+'),
        sel.ends_with('+'),
        sel.trim_matches('+'),
    );
    let find = |n: &str| {
        models
            .iter()
            .position(|m| m.name.name == n || m.name.to_string() == n)
    };
    let root = find(name).ok_or(format!("--select {sel}: no model named {name}"))?;
    let refs: BTreeMap<usize, Vec<usize>> = order
        .iter()
        .map(|(i, r)| {
            (
                *i,
                r.iter()
                    .filter_map(|t| models.iter().position(|m| &m.name == t))
                    .collect(),
            )
        })
        .collect();
    let mut chosen = BTreeSet::from([root]);
    let mut grow = |forward: bool| loop {
        let before = chosen.len();
        for (i, deps) in &refs {
            for d in deps {
                let (from, to) = if forward { (*d, *i) } else { (*i, *d) };
                if chosen.contains(&from) {
                    chosen.insert(to);
                }
            }
        }
        if chosen.len() == before {
            break;
        }
    };
    if up {
        grow(false);
    }
    if down {
        grow(true);
    }
    Ok(chosen)
}

/// A model's SQL failed to plan or run: the error with the model's file and the line DataFusion
/// points at (its diagnostic's span, else the line of the unknown column it names).
pub(super) fn planning_error(model: &Model, e: &DataFusionError) -> ModelError {
    let line = e
        .diagnostic()
        .and_then(|d| d.span)
        .map(|span| span.start.line as usize)
        .filter(|line| *line > 0)
        .or_else(|| match e.find_root() {
            DataFusionError::SchemaError(schema, _) => match schema.as_ref() {
                SchemaError::FieldNotFound { field, .. } => Some(line_of(&model.sql, &field.name)),
                _ => None,
            },
            _ => None,
        })
        .unwrap_or(1);
    ModelError::Invalid {
        path: model.path.clone(),
        line,
        message: format!("DataFusion: {e}"),
    }
}

/// How a build runs.
#[derive(Debug, Clone)]
pub struct BuildOptions<'a> {
    /// Folder of models and tests.
    pub sql_dir: &'a Path,
    /// `--select`.
    pub selector: Option<&'a str>,
    /// Plan only.
    pub dry_run: bool,
    /// Audit what is published instead of building.
    pub test_only: bool,
    /// Day freshness tests measure from.
    pub reference_date: chrono::NaiveDate,
    /// Rebuild incremental models from scratch.
    pub full_refresh: bool,
}

/// Registers the seeds in a session and returns every table a model may read there: the lake's
/// tables, the seeds and the views whose input exists.
pub(super) async fn readable(
    session: &crate::lake::QuerySession,
    views: &[ViewDef],
    sql_dir: &Path,
) -> Result<BTreeSet<TableName>, ModelError> {
    let mut existing: BTreeSet<TableName> = session.tables.iter().map(|(t, _)| t.clone()).collect();
    existing.extend(super::seeds::register_seeds(&session.ctx, sql_dir).await?);
    existing.extend(
        views
            .iter()
            .filter(|v| existing.contains(&v.requires))
            .map(|v| v.name.clone())
            .collect::<Vec<_>>(),
    );
    Ok(existing)
}

/// The build order of every model (a cycle anywhere is an error), given the readable tables.
pub(super) fn whole_order(
    models: &[Model],
    existing: &BTreeSet<TableName>,
) -> Result<Vec<(usize, Vec<TableName>)>, ModelError> {
    let mut anything = existing.clone();
    for m in models {
        anything.extend(dag::references(m)?);
    }
    dag::order(models, &anything)
}

impl ModelOutcome {
    /// The outcome of a model a dry run planned.
    fn planned(m: &Model) -> Self {
        ModelOutcome {
            name: m.name.clone(),
            status: RunStatus::Ok,
            rows: 0,
            seconds: 0.0,
            message: Some("planned (dry run)".into()),
        }
    }

    /// Its `meta.runs` row (`kind`: build or test) ending now.
    fn record(
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

/// Custom tests (`sql/tests/*.sql`) by the index of the model they attach to.
type Attached = BTreeMap<usize, Vec<(std::path::PathBuf, String)>>;

/// Builds (or, with `test_only`, only audits the published) models.
pub async fn build(
    lake: &Lake,
    views: &[ViewDef],
    options: &BuildOptions<'_>,
) -> Result<BuildReport, ModelError> {
    let clock = Instant::now();
    let (models, custom) = discover(options.sql_dir)?;
    let session = lake.session(None, views).await?;
    let opened_s = clock.elapsed().as_secs_f64();
    let existing = readable(&session, views, options.sql_dir).await?;
    let models = selected(models, &existing, options)?;
    let order = dag::order(&models, &existing)?;
    let ctx = session.ctx.clone();
    let read = super::added::versions(&session.tables);
    let mut schemas = plan_all(&ctx, &models, &order, &existing, options.test_only).await?;
    let planned_s = clock.elapsed().as_secs_f64() - opened_s;
    let attached = attach_custom(&custom, &models, &order)?;
    let mut report = BuildReport::default();
    if options.dry_run {
        report.outcomes = order
            .iter()
            .map(|(i, _)| ModelOutcome::planned(&models[*i]))
            .collect();
        return Ok(report);
    }
    let run_id = uuid::Uuid::new_v4().to_string();
    let kind = if options.test_only { "test" } else { "build" };
    // `test` reads them too: the unique keys each build proved on the version it published.
    let states = if options.full_refresh {
        HashMap::new()
    } else {
        lake.model_states().await?
    };
    tracing::debug!(
        opened_s,
        planned_s,
        states_s = clock.elapsed().as_secs_f64() - opened_s - planned_s,
        "build started: models found, session opened, models planned, states read"
    );
    // Models that do not read each other build at once; incremental ones one at a time (their
    // append and last-row queries bind fixed table names in the shared session).
    let upstream = upstream_of(&models, &order, &attached);
    let one_incremental = Arc::new(tokio::sync::Mutex::new(()));
    let width = std::thread::available_parallelism().map_or(1, |n| n.get());
    let finished = crate::parallel::run(
        &upstream,
        width,
        |p, done: &[Option<Finished>], release| {
            let (i, refs) = &order[p];
            let m = &models[*i];
            let failed_up = upstream[p]
                .iter()
                .filter_map(|&q| done[q].as_ref())
                .find(|up| up.outcome.status != RunStatus::Ok)
                .map(|up| up.outcome.name.clone());
            let job = Job {
                lake: lake.clone(),
                ctx: ctx.clone(),
                model: m.clone(),
                inputs: refs.clone(),
                custom: attached.get(i).cloned().unwrap_or_default(),
                reference: options.reference_date,
                read: read.clone(),
                // A model not in the lake yet, or a full refresh, builds from scratch.
                previous: (existing.contains(&m.name) && !options.full_refresh)
                    .then(|| states.get(&m.name.to_string()).cloned().unwrap_or_default()),
                planned: schemas.remove(i),
                test_only: options.test_only,
                lock: (m.materialized == Materialized::Incremental)
                    .then(|| one_incremental.clone()),
            };
            job.run(failed_up, run_id.clone(), kind, release)
        },
        |message| Finished::panicked(&run_id, kind, message),
    )
    .await;
    report.outcomes = record(lake, &models, &order, finished).await?;
    Ok(report)
}

/// The models the selector picks. Selection runs on the whole project's graph (cycles are
/// errors anywhere); only the picked models are then validated and planned, so an unselected
/// model's missing input does not block the rest.
/// For each model in build order, the positions of the models it waits for: those it reads, or
/// for a model carrying custom tests (`sql/tests/`) every model before it (a test may read models
/// that do not read each other, and sees each of them built).
fn upstream_of(
    models: &[Model],
    order: &[(usize, Vec<TableName>)],
    attached: &Attached,
) -> Vec<Vec<usize>> {
    let position: HashMap<&TableName, usize> = order
        .iter()
        .enumerate()
        .map(|(p, (i, _))| (&models[*i].name, p))
        .collect();
    order
        .iter()
        .enumerate()
        .map(|(p, (i, refs))| {
            if attached.contains_key(i) {
                (0..p).collect()
            } else {
                refs.iter()
                    .filter_map(|r| position.get(r).copied())
                    .collect()
            }
        })
        .collect()
}

/// Records what each model's build left (its state and its `meta.runs` row) and returns the
/// outcomes in build order.
async fn record(
    lake: &Lake,
    models: &[Model],
    order: &[(usize, Vec<TableName>)],
    finished: Vec<Finished>,
) -> Result<Vec<ModelOutcome>, ModelError> {
    let mut built_states = Vec::new();
    let mut records = Vec::new();
    let mut outcomes = Vec::new();
    for (p, mut f) in finished.into_iter().enumerate() {
        // A panic's outcome knows no name: the node's model.
        f.outcome.name = models[order[p].0].name.clone();
        f.record.target = Some(f.outcome.name.to_string());
        built_states.extend(f.state.map(|s| (f.outcome.name.clone(), s)));
        records.push(f.record);
        outcomes.push(f.outcome);
    }
    // Two tables, two commits: side by side.
    tokio::try_join!(
        lake.set_model_states(&built_states),
        lake.record_runs(&records)
    )?;
    Ok(outcomes)
}

fn selected(
    models: Vec<Model>,
    existing: &BTreeSet<TableName>,
    options: &BuildOptions<'_>,
) -> Result<Vec<Model>, ModelError> {
    let whole = whole_order(&models, existing)?;
    let picked = select(&whole, &models, options.selector).map_err(|m| ModelError::Invalid {
        path: options.sql_dir.to_path_buf(),
        line: 0,
        message: m,
    })?;
    Ok(models
        .into_iter()
        .enumerate()
        .filter(|(i, _)| picked.contains(i))
        .map(|(_, m)| m)
        .collect())
}

/// Plans every model in `order` (downstream ones against their upstreams' plans), and each
/// append query: SQL and planning errors stop the build before anything is written. Returns the
/// schema each model's SQL planned to, by position in `models`.
async fn plan_all(
    ctx: &SessionContext,
    models: &[Model],
    order: &[(usize, Vec<TableName>)],
    existing: &BTreeSet<TableName>,
    test_only: bool,
) -> Result<HashMap<usize, SchemaRef>, ModelError> {
    // Every model stored (a nightly build): each plans against stored tables only, so they plan
    // side by side, a task each (a mart's SQL takes up to ~40 ms of CPU to plan); else in order,
    // downstream ones against the views of the new upstream ones.
    let (mut planned, mut schemas) = (HashMap::new(), HashMap::new());
    if order
        .iter()
        .all(|(i, _)| existing.contains(&models[*i].name))
    {
        let tasks: Vec<_> = order
            .iter()
            .map(|(i, _)| {
                let (ctx, sql) = (ctx.clone(), models[*i].sql.clone());
                (*i, tokio::spawn(async move { ctx.sql(&sql).await }))
            })
            .collect();
        for (i, task) in tasks {
            let plan = task
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            planned.insert(i, plan);
        }
    }
    for (i, _) in order {
        let m = &models[*i];
        let plan = match planned.remove(i) {
            Some(plan) => plan,
            None => ctx.sql(&m.sql).await,
        };
        let plan = plan.map_err(|e| planning_error(m, &e))?;
        schemas.insert(*i, plan.schema().inner().clone());
        if existing.contains(&m.name) {
            // Tests read the published table; its append query is not run.
            if test_only {
                continue;
            }
        } else {
            register(ctx, &m.name, plan.clone().into_view()).map_err(|e| planning_error(m, &e))?;
        }
        // The append query plans against the model (stored, or as just planned).
        if let Some(a) = &m.append {
            super::append::plan(ctx, a, &m.partition_by, plan.schema().inner())
                .await
                .map_err(|message| ModelError::Invalid {
                    path: a.path.clone(),
                    line: 1,
                    message,
                })?;
        }
    }
    Ok(schemas)
}

/// Attaches each custom test to the last model (in build order) it references.
fn attach_custom(
    custom: &[(std::path::PathBuf, String)],
    models: &[Model],
    order: &[(usize, Vec<TableName>)],
) -> Result<Attached, ModelError> {
    let mut attached = Attached::new();
    for (path, sql) in custom {
        let probe = Model::parse(TableName::marts("custom_test"), path, sql)?;
        let refs = dag::references(&probe)?;
        if let Some((i, _)) = order
            .iter()
            .rev()
            .find(|(i, _)| refs.contains(&models[*i].name))
        {
            attached
                .entry(*i)
                .or_default()
                .push((path.clone(), sql.clone()));
        }
    }
    Ok(attached)
}

/// What one model's build (or audit) left: its outcome, its `meta.runs` row and, for a table
/// model, the state to record.
struct Finished {
    outcome: ModelOutcome,
    record: RunRecord,
    state: Option<ModelState>,
}

impl Finished {
    /// A build task that panicked: a failure (the caller puts the model's name on it).
    fn panicked(run_id: &str, kind: &str, message: String) -> Self {
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
struct Job {
    lake: Lake,
    ctx: SessionContext,
    model: Model,
    inputs: Vec<TableName>,
    custom: Vec<(std::path::PathBuf, String)>,
    reference: chrono::NaiveDate,
    read: super::added::Versions,
    previous: Option<ModelState>,
    planned: Option<SchemaRef>,
    test_only: bool,
    /// Held while the model builds (incremental models take turns).
    lock: Option<Arc<tokio::sync::Mutex<()>>>,
}

impl Job {
    /// Builds (or audits) the model, or skips it when `failed_up`, a model it reads, failed or
    /// was skipped.
    async fn run(
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
                let turn = match &self.lock {
                    Some(lock) => Some(lock.clone().lock_owned().await),
                    None => None,
                };
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
