//! Incremental models: recompute every partition whose inputs changed since the last build, or
//! append to it when its only changes are rows after its last stored one, audit the table as it
//! would be, and publish exactly those changes in one commit.
//!
//! A partition (`-- partition_by: symbol`) is recomputed whole when any row carrying its value in
//! a partitioned input (one with the partition columns and `ingested_at`) was ingested at or after
//! the previous build started — a late day or a revision of any age — or when it disappeared from
//! the inputs. When the model declares an append query (`-- append_sql:`) and every such row of a
//! partition comes after the partition's last stored value of the order column (the nightly new
//! day), the partition is extended by the append query instead: the cost is that of the new rows,
//! not of the partition's history, and the commit only adds files. An unpartitioned input (a
//! seed, a view, another mart) whose fingerprint moved since the last build, or an edit of the
//! model's files, makes the build a full one. The result therefore always equals a full refresh
//! on the same inputs (`tests/it/incremental.rs` checks it on random update sequences). Builds
//! and ingests must not overlap (the job lease sees to it for jobs): a row whose ingest started
//! before a build but committed after it was read would be missed.

use std::collections::HashMap;

use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;

use super::audit::{Increment, audit_increment};
use super::changes::{Changes, changes};
use super::lap::Lap;
use super::logged::{self, Logged};
use super::new_rows::{NewRows, candidate, new_rows};
use super::session::df_err;
use super::spec::Model;
use super::step::Step;
use super::{fingerprint, last_rows};
use crate::lake::model_state::ModelState;
use crate::lake::{Lake, TableName, WriteMode};

/// How a model's inputs are tracked.
pub(super) struct Inputs {
    /// Inputs that carry the partition columns and `ingested_at`.
    partitioned: Vec<TableName>,
    /// Marts with the partition columns, followed through their logs, at the versions read.
    logged: Vec<Logged>,
    /// Every other input → its fingerprint; `model files` → a hash of the model's SQL (and its
    /// append query), so an edit makes a full build.
    fingerprints: HashMap<String, String>,
}

async fn classify(
    lake: &Lake,
    ctx: &SessionContext,
    m: &Model,
    inputs: &[TableName],
) -> Result<Inputs, String> {
    let mut out = Inputs {
        partitioned: Vec::new(),
        logged: Vec::new(),
        fingerprints: HashMap::from([(
            fingerprint::FILES.to_string(),
            fingerprint::files(m, lake),
        )]),
    };
    let (mut others, mut logged) = (Vec::new(), Vec::new());
    for input in inputs {
        let schema = ctx
            .table(input.to_string())
            .await
            .map_err(df_err(m))?
            .schema()
            .clone();
        let has = |c: &str| schema.has_column_with_unqualified_name(c);
        if has("ingested_at") && m.partition_by.iter().all(|c| has(c)) {
            out.partitioned.push(input.clone());
        } else if logged::follows(m, input, has) {
            logged.push(input.clone());
        } else {
            others.push(input.clone());
        }
    }
    out.logged = logged::versions(lake, &logged).await?;
    let prints = fingerprint::each_input(lake, ctx, &others).await?;
    for (input, print) in others.iter().zip(prints) {
        // An input that cannot be fingerprinted gets a print no build recorded: a full build.
        let print = print.unwrap_or_else(|| format!("unknown {}", uuid::Uuid::new_v4()));
        out.fingerprints.insert(input.to_string(), print);
    }
    Ok(out)
}

/// How a build of a model ended, for [`record_state`].
pub(super) enum Ended<'a> {
    /// It published this version (`None`: the commit reported none).
    Published(Option<u64>),
    /// It published nothing: the table is still at `version`, and `previous` is what the build
    /// that published it recorded.
    Unchanged {
        /// The state recorded before this build.
        previous: &'a ModelState,
        /// The table's current version.
        version: Option<u64>,
    },
}

/// Records what a build of the step's model (started at `started`) read, and what holds on the
/// version it leaves, with the entries `also` yields (the write of the side table of
/// [`super::last_rows`], run beside the look at the inputs: both only read what the build
/// published, and the next model waits for this one):
/// - published: its unique keys and its relationships tests hold ([`super::proven`],
///   [`super::added`]) and its stored partitions are present in its inputs;
/// - unchanged: the proofs recorded for the version the table is still at stay, and its stored
///   partitions are present in the inputs as this build read them.
///
/// `known`: the inputs as the build classified them, when it did (an incremental build, before
/// it computed anything: nothing it reads is written while it runs); else they are read here.
pub(super) async fn record_state(
    step: &Step<'_>,
    started: chrono::DateTime<chrono::Utc>,
    ended: Ended<'_>,
    also: impl std::future::Future<Output = HashMap<String, String>>,
    known: Option<Inputs>,
) -> Result<(), String> {
    let Step {
        lake,
        ctx,
        model: m,
        inputs,
        read,
        ..
    } = *step;
    let (classified, also) = match known {
        Some(known) => (known, also.await),
        None => {
            let (classified, also) = tokio::join!(classify(lake, ctx, m, inputs), also);
            (classified?, also)
        }
    };
    let partitioned = &classified.partitioned;
    let mut proofs = HashMap::new();
    match ended {
        Ended::Published(Some(v)) => {
            proofs.extend(super::proven::on_publish(m, v));
            proofs.extend(super::added::on_publish(m, partitioned, read, v));
        }
        Ended::Published(None) => {}
        Ended::Unchanged { previous, version } => {
            proofs.extend(super::proven::kept(previous, version));
            if let Some(v) = version {
                proofs.extend(super::added::present(partitioned, read, v));
            }
        }
    }
    proofs.extend(also);
    proofs.extend(logged::entries(&classified.logged));
    save_state(lake, m, classified.fingerprints, started, proofs).await
}

async fn save_state(
    lake: &Lake,
    m: &Model,
    mut inputs: HashMap<String, String>,
    started: chrono::DateTime<chrono::Utc>,
    proofs: HashMap<String, String>,
) -> Result<(), String> {
    inputs.extend(proofs);
    let state = ModelState {
        built_at: Some(started),
        inputs,
    };
    lake.set_model_state(&m.name, &state)
        .await
        .map_err(|e| e.to_string())
}

/// An incremental build. `Ok(None)`: the model needs a full build (it never built, its files
/// changed, or an unpartitioned input changed).
pub(super) async fn build_incremental(step: &Step<'_>) -> Result<Option<usize>, String> {
    let lap = Lap::new(step.model);
    let Some(mut found) = find_changes(step, &lap).await? else {
        return Ok(None);
    };
    let only_new = found.changes.only_new_partitions && found.changes.after.is_empty();
    let nothing = found.changes.recompute.is_empty() && found.changes.after.is_empty();
    let new = if nothing {
        None
    } else {
        let changes = std::mem::take(&mut found.changes);
        Some(new_rows(step, changes, &lap).await?)
    };
    // Nothing to write: no partition changed, or the only ones were new and computed to no rows.
    match new {
        Some(new) if !(only_new && new.rows.iter().all(|b| b.num_rows() == 0)) => {
            lap.at("new rows computed");
            publish(step, found, new, &lap).await.map(Some)
        }
        _ => keep(step, found).await.map(|()| Some(0)),
    }
}

/// How the new rows replace the stored ones: those of the recomputed partitions (`replaced`) and,
/// with them, any stored row the appended ones' predicate (`appended`) matches; appended rows
/// alone are added.
fn write_mode(replaced: Option<String>, appended: Option<String>) -> WriteMode {
    match (replaced, appended) {
        (Some(r), Some(a)) => WriteMode::ReplaceWhere(format!("({r}) OR {a}")),
        (Some(r), None) => WriteMode::ReplaceWhere(r),
        (None, _) => WriteMode::Append,
    }
}

/// What an incremental build found before computing anything.
struct Found {
    /// When the build started.
    started: chrono::DateTime<chrono::Utc>,
    /// What the last build recorded.
    previous: ModelState,
    /// The model's inputs, by how they are tracked.
    classified: Inputs,
    /// The table's current version.
    version: Option<u64>,
    /// The stored last rows of each partition (models with an append query).
    last: Option<last_rows::LastRows>,
    /// The partitions to recompute and the rows to append (taken by [`new_rows`]).
    changes: Changes,
}

/// Reads the last build's state and the inputs' changes since; `None` when the build must be a
/// full one.
async fn find_changes(step: &Step<'_>, lap: &Lap<'_>) -> Result<Option<Found>, String> {
    let Step {
        lake,
        ctx,
        model: m,
        inputs,
        read,
        ..
    } = *step;
    let started = Lake::now();
    // What the last build recorded, as the build read it when it started (only this model's
    // build writes it, after the build).
    let Some(previous) = step.previous.clone() else {
        return Ok(None);
    };
    let Some(built_at) = previous.built_at else {
        return Ok(None);
    };
    let classified = classify(lake, ctx, m, inputs).await?;
    lap.at("inputs classified");
    if let Some((k, _)) = classified
        .fingerprints
        .iter()
        .find(|(k, v)| previous.inputs.get(*k) != Some(v))
    {
        tracing::info!(model = %m.name, changed = %k, "full build: an unpartitioned input or the model's files changed");
        return Ok(None);
    }
    let version = lake.version(&m.name).await.map_err(|e| e.to_string())?;
    let last = match &m.append {
        Some(a) => Some(last_rows::read(lake, m, &a.order_by, &previous, version).await?),
        None => None,
    };
    let last_before = last.as_ref().map(|l| l.rows.as_slice()).unwrap_or_default();
    lap.at("version and last rows read");
    let Some(logged) = logged::added_since(lake, &previous, &classified.logged).await else {
        return Ok(None);
    };
    lap.at("logged inputs' additions read");
    let partitioned = &classified.partitioned;
    // The logged marts only gained rows (else the build is a full one): with no other
    // partitioned input, every stored partition is still present.
    let present = partitioned.is_empty()
        || super::added::present_holds(lake, &previous, version, partitioned, read).await;
    let inputs = (partitioned.as_slice(), present);
    let changes = changes(ctx, m, inputs, &logged, built_at, last_before).await?;
    lap.at("changes found");
    if changes.every_stored && changes.after.is_empty() {
        tracing::info!(model = %m.name, "full build: every stored partition changed");
        return Ok(None);
    }
    Ok(Some(Found {
        started,
        previous,
        classified,
        version,
        last,
        changes,
    }))
}

/// Publishes nothing: lets the models downstream start, saves the last rows read from the
/// model for the next build, and records the state that still holds.
async fn keep(step: &Step<'_>, found: Found) -> Result<(), String> {
    (step.release)();
    let (version, last) = (found.version, found.last);
    let also = async {
        match last.filter(|l| !l.from_side_table) {
            Some(l) => last_rows::save(step.lake, step.model, l.rows, version).await,
            None => HashMap::new(),
        }
    };
    let ended = Ended::Unchanged {
        previous: &found.previous,
        version,
    };
    record_state(step, found.started, ended, also, Some(found.classified)).await
}

/// Audits the new rows as the table would be with them, publishes them in one commit and records
/// the state; returns how many rows it wrote.
async fn publish(
    step: &Step<'_>,
    found: Found,
    new: NewRows,
    lap: &Lap<'_>,
) -> Result<usize, String> {
    let Step {
        lake,
        ctx,
        model: m,
        custom,
        reference,
        read,
        ..
    } = *step;
    let Found {
        started,
        previous,
        classified,
        version,
        last,
        ..
    } = found;
    let NewRows {
        rows,
        schema,
        replaced,
        appended,
        appended_after,
    } = new;
    let inc = Increment {
        candidate: candidate(ctx, m, &schema, replaced.as_deref(), rows.clone()).await?,
        schema: schema.clone(),
        rows,
        appended_after,
        recomputed: replaced.is_some(),
        held: super::added::relationships_holding(lake, m, &previous, version, read)
            .await
            .into_iter()
            .chain(super::added::unchanged_inputs_hold(
                m,
                &classified.fingerprints,
            ))
            .collect(),
    };
    audit_increment(ctx, m, custom, reference, &inc).await?;
    lap.at("audited");
    let last_after = match (&m.append, last) {
        (Some(a), Some(l)) => {
            let r = replaced.as_deref();
            Some(last_rows::after(ctx, m, &a.order_by, (l.rows, r), &schema, &inc.rows).await?)
        }
        _ => None,
    };
    let count: usize = inc.rows.iter().map(RecordBatch::num_rows).sum();
    let mode = write_mode(replaced, appended);
    let batches = if inc.rows.is_empty() {
        vec![RecordBatch::new_empty(schema)]
    } else {
        inc.rows
    };
    let written = lake
        .write(&m.name, batches, mode)
        .await
        .map_err(|e| e.to_string())?;
    lap.at("published");
    (step.release)();
    let version = written.version;
    let also = async {
        match last_after {
            Some(rows) => last_rows::save(lake, m, rows, version).await,
            None => HashMap::new(),
        }
    };
    let ended = Ended::Published(version);
    record_state(step, started, ended, also, Some(classified)).await?;
    lap.at("last rows and state saved");
    Ok(count)
}
