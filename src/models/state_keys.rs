//! How the build's records in `meta.model_state` are spelled: the words the fingerprints
//! (`super::fingerprint`), the proofs (`super::proven`, `super::added`) and the side tables
//! (`super::last_rows`, `super::logged`) write and read back.

/// How a Delta version is written in a state: `version 7`.
pub(super) fn version_print(version: u64) -> String {
    format!("version {version}")
}

/// Prefix of a state entry recording a proof (the rest is the test's name).
pub(super) const PREFIX: &str = "proven ";

/// Whether a state entry is a proof rather than an input's fingerprint.
pub(super) fn is_proof(key: &str) -> bool {
    key.starts_with(PREFIX)
}

/// How every verdict's value on `version` of the model starts (`version 42 with `): what
/// [`super::proven::kept`] looks for.
pub(super) fn on_version(version: &str) -> String {
    format!("{version} with ")
}
