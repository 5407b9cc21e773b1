//! One model's build (or audit) as the build hands it to the full and incremental paths.

use datafusion::prelude::SessionContext;

use super::spec::Model;
use crate::lake::model_state::ModelState;
use crate::lake::{Lake, TableName};

/// One model's build (or audit), with what it needs from the whole build.
pub(super) struct Step<'a> {
    /// The lake.
    pub(super) lake: &'a Lake,
    /// The build's session.
    pub(super) ctx: &'a SessionContext,
    /// The model.
    pub(super) model: &'a Model,
    /// The tables its SQL reads.
    pub(super) inputs: &'a [TableName],
    /// Custom tests attached to it.
    pub(super) custom: &'a [(std::path::PathBuf, String)],
    /// Day freshness tests measure from.
    pub(super) reference: chrono::NaiveDate,
    /// The version of each staging table the session reads.
    pub(super) read: &'a super::added::Versions,
    /// What its last build recorded, when the table exists and may be updated rather than
    /// rebuilt (`None`: build it from scratch).
    pub(super) previous: Option<ModelState>,
    /// The schema of its SQL as the build planned it before building anything: what its rows
    /// look like, without planning the SQL again.
    pub(super) planned: Option<&'a datafusion::arrow::datatypes::SchemaRef>,
    /// Lets the models that read this one start: called once its new version is published (an
    /// incremental model's last rows and state are saved after), or once it is known unchanged.
    pub(super) release: &'a (dyn Fn() + Sync),
}
