//! The application as a [`StepExecutor`]: what each kind of job step does.

use super::Step;
use super::runner::{StepExecutor, StepOutput};
use crate::app::App;
use crate::sources::{SourceKind, Window};

#[async_trait::async_trait]
impl StepExecutor for App {
    async fn run_step(&self, step: &Step) -> Result<StepOutput, String> {
        match step {
            Step::Ingest { sources } => self.ingest_step(sources).await,
            Step::Build { select } | Step::Test { select } => {
                let test_only = matches!(step, Step::Test { .. });
                self.build_step(select.as_deref(), test_only).await
            }
            Step::Export {
                query,
                path,
                format,
            } => {
                let format = crate::query::Format::for_file(format.as_deref(), path)?;
                let rows = self
                    .export(query, format, path)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(StepOutput {
                    rows: rows as i64,
                    targets: vec![(path.display().to_string(), rows as i64)],
                })
            }
            // Maintenance writes no row: each table is a target with 0 rows, and what was done
            // is in the log.
            Step::Optimize {
                tables,
                target_size_mb,
            } => {
                self.each_table(tables, |t| async move {
                    let m = self.lake.optimize(&t, *target_size_mb).await?;
                    tracing::info!(table = %t, files_added = m.files_added, files_removed = m.files_removed, "optimized");
                    Ok(())
                })
                .await
            }
            Step::Vacuum {
                tables,
                retention_hours,
            } => {
                self.each_table(tables, |t| async move {
                    let (_, deleted) = self.lake.vacuum(&t, *retention_hours, false, false).await?;
                    tracing::info!(table = %t, files_deleted = deleted.len(), "vacuumed");
                    Ok(())
                })
                .await
            }
        }
    }
}

/// A step's output from the rows written per target.
fn written(targets: Vec<(String, i64)>) -> StepOutput {
    StepOutput {
        rows: targets.iter().map(|(_, n)| n).sum(),
        targets,
    }
}

impl App {
    /// Ingests `sources` (names; all when empty): an error when any source failed.
    async fn ingest_step(&self, sources: &[String]) -> Result<StepOutput, String> {
        let kinds: Vec<SourceKind> = sources.iter().filter_map(|s| s.parse().ok()).collect();
        let window = Window {
            until: self.until,
            ..Window::default()
        };
        let outcomes = self
            .ingest(&kinds, window)
            .await
            .map_err(|e| e.to_string())?;
        let errors: Vec<String> = outcomes
            .iter()
            .flat_map(|o| o.errors.iter().map(|e| e.to_string()))
            .collect();
        if !errors.is_empty() {
            return Err(errors.join("; "));
        }
        Ok(written(
            outcomes
                .iter()
                .map(|o| (o.kind.to_string(), o.rows as i64))
                .collect(),
        ))
    }

    /// Builds (or with `test_only` tests) the models `select` names (all when `None`): an error
    /// when any model failed.
    async fn build_step(
        &self,
        select: Option<&str>,
        test_only: bool,
    ) -> Result<StepOutput, String> {
        let options = crate::models::BuildOptions {
            sql_dir: &self.sql_dir,
            selector: select,
            dry_run: false,
            test_only,
            reference_date: self.reference_date(),
            full_refresh: false,
        };
        let report = crate::models::build(&self.lake, &self.views(), &options)
            .await
            .map_err(|e| e.to_string())?;
        if !report.ok() {
            return Err(report.problems().join("; "));
        }
        Ok(written(
            report
                .outcomes
                .iter()
                .map(|o| (o.name.to_string(), o.rows as i64))
                .collect(),
        ))
    }

    /// Runs `work` on each of `tables` (every table when empty) in turn: a maintenance step's
    /// output, each table a target with no row written.
    async fn each_table<F, Fut>(&self, tables: &[String], work: F) -> Result<StepOutput, String>
    where
        F: Fn(crate::lake::TableName) -> Fut,
        Fut: std::future::Future<Output = Result<(), crate::lake::LakeError>>,
    {
        let mut targets = Vec::new();
        for t in self
            .lake
            .resolve_tables(tables)
            .await
            .map_err(|e| e.to_string())?
        {
            targets.push((t.to_string(), 0));
            work(t).await.map_err(|e| e.to_string())?;
        }
        Ok(StepOutput { rows: 0, targets })
    }
}
