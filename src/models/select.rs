//! Which models a build acts on: `--select` read against the whole project's graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::spec::Model;
use super::{ModelError, dag};
use crate::lake::TableName;

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

/// The models the selector picks. Selection runs on the whole project's graph (cycles are
/// errors anywhere); only the picked models are then validated and planned, so an unselected
/// model's missing input does not block the rest.
pub(super) fn selected(
    models: Vec<Model>,
    existing: &BTreeSet<TableName>,
    sql_dir: &Path,
    selector: Option<&str>,
) -> Result<Vec<Model>, ModelError> {
    let whole = whole_order(&models, existing)?;
    let picked = select(&whole, &models, selector).map_err(|m| ModelError::Invalid {
        path: sql_dir.to_path_buf(),
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
