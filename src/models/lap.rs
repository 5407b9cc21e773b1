//! Timing an incremental build's steps in the debug log.

use super::spec::Model;

/// Logs the time since an incremental build started at each of its steps.
pub(super) struct Lap<'a> {
    model: &'a Model,
    clock: std::time::Instant,
}

impl<'a> Lap<'a> {
    pub(super) fn new(model: &'a Model) -> Self {
        Self {
            model,
            clock: std::time::Instant::now(),
        }
    }

    pub(super) fn at(&self, what: &str) {
        tracing::debug!(model = %self.model.name, step = what, seconds = self.clock.elapsed().as_secs_f64(), "incremental build");
    }
}
