//! Unique keys proven on a published version, so that `macrolake test` does not prove them again
//! on the same rows.
//!
//! A build publishes only rows that passed every test of the model (write-audit-publish), so
//! each `unique` test holds on the version it published: a full build audited exactly those
//! rows, and an incremental one audited its new rows and whatever else the key could collide
//! with (`models::audit`). A Delta version never changes, so the verdict on that version is
//! final. The build records it in `meta.model_state` (`proven unique(symbol, date)` → `version
//! 42`); a later `test` that finds the table still at that version takes it as passed and says
//! so in its log. Any other version (a later write by anyone, an `optimize`) and the test runs.
//!
//! This is what kept the nightly `test` step at 1.8–2.0 s on the 13M-row bench lake: after the
//! night's append the stored rows no longer rise in file order (`crate::lake::increasing`), and
//! `unique(symbol, date)` fell back to a hash aggregation with one group per row (692 MiB peak).

use std::collections::HashMap;

use super::audit::unique_keys;
use super::spec::{DataTest, Model};
use super::state_keys::{PREFIX, is_proof, on_version, version_print};
use crate::lake::model_state::ModelState;

/// The state entry of a proof of `unique(cols)`: `proven unique(symbol, date)`.
fn proof_key(cols: &[String]) -> String {
    format!("{PREFIX}{}", DataTest::Unique(cols.to_vec()).name())
}

/// The state entries recording that every `unique` test of `m` holds on `version`: what a build
/// records once the rows it audited are published as `version`.
pub(super) fn on_publish(m: &Model, version: u64) -> HashMap<String, String> {
    unique_keys(m)
        .iter()
        .map(|cols| (proof_key(cols), version_print(version)))
        .collect()
}

/// The proofs of `previous` that still hold at `version` (the table was not written since):
/// what a build that publishes nothing carries over. A proof's value is the version, or starts
/// with it (`version 7 with staging.x at version 3`: [`super::added`]).
pub(super) fn kept(previous: &ModelState, version: Option<u64>) -> HashMap<String, String> {
    let Some(version) = version.map(version_print) else {
        return HashMap::new();
    };
    previous
        .inputs
        .iter()
        .filter(|(k, v)| is_proof(k) && (**v == version || v.starts_with(&on_version(&version))))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The names of `m`'s `unique` tests proven on `version` by the build that recorded `state`.
pub(super) fn unique_tests_at(m: &Model, state: &ModelState, version: Option<u64>) -> Vec<String> {
    let Some(version) = version.map(version_print) else {
        return Vec::new();
    };
    unique_keys(m)
        .into_iter()
        .filter(|cols| state.inputs.get(&proof_key(cols)) == Some(&version))
        .map(|cols| DataTest::Unique(cols).name())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(tests: &[DataTest]) -> Model {
        let name = crate::lake::TableName::marts("m");
        let mut m = Model::parse(name, std::path::Path::new("m.sql"), "SELECT 1 AS a").unwrap();
        m.tests = tests.iter().cloned().enumerate().collect();
        m
    }

    #[test]
    fn a_proof_holds_only_on_the_version_it_was_recorded_for() {
        let key = |c: &[&str]| DataTest::Unique(c.iter().map(|s| s.to_string()).collect());
        let m = model(&[
            key(&["symbol", "date"]),
            DataTest::NotNull(vec!["a".into()]),
        ]);
        let state = ModelState {
            built_at: None,
            inputs: on_publish(&m, 7),
        };
        assert_eq!(state.inputs.len(), 1, "only unique tests are recorded");
        assert!(state.inputs.keys().all(|k| is_proof(k)));
        let proven = vec!["unique(symbol, date)".to_string()];
        assert_eq!(unique_tests_at(&m, &state, Some(7)), proven);
        assert!(
            unique_tests_at(&m, &state, Some(8)).is_empty(),
            "a later version"
        );
        assert!(unique_tests_at(&m, &state, None).is_empty(), "no table");
        // The test was edited since (another key): its proof is not the recorded one.
        let edited = model(&[key(&["symbol"])]);
        assert!(unique_tests_at(&edited, &state, Some(7)).is_empty());
        // A build that publishes nothing keeps proofs of the version the table is still at.
        assert_eq!(kept(&state, Some(7)), state.inputs);
        assert!(kept(&state, Some(8)).is_empty());
        assert!(kept(&state, None).is_empty());
        // A verdict that names the version of an input it read too (`super::added`).
        let mut with = state.clone();
        let read = "version 7 with staging.p at version 3".to_string();
        with.inputs
            .insert("proven present in staging.p".into(), read.clone());
        with.inputs.insert(
            "proven other".into(),
            "version 70 with staging.p at version 3".into(),
        );
        assert_eq!(
            kept(&with, Some(7)).get("proven present in staging.p"),
            Some(&read)
        );
        assert_eq!(kept(&with, Some(7)).len(), 2, "not version 70's");
    }
}
