//! The application as a [`StepExecutor`]: what each kind of job step does.

use super::Step;
use super::runner::{StepExecutor, StepOutput};
use crate::app::App;
use crate::sources::{SourceKind, Window};

#[async_trait::async_trait]
impl StepExecutor for App {
    async fn run_step(&self, step: &Step) -> Result<StepOutput, String> {
        match step {
            Step::Ingest { sources } => {
                let kinds: Vec<SourceKind> =
                    sources.iter().filter_map(|s| s.parse().ok()).collect();
                let outcomes = self
                    .ingest(
                        &kinds,
                        Window {
                            until: self.until,
                            ..Window::default()
                        },
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                let errors: Vec<String> = outcomes
                    .iter()
                    .flat_map(|o| o.errors.iter().map(|e| e.to_string()))
                    .collect();
                if !errors.is_empty() {
                    return Err(errors.join("; "));
                }
                let targets: Vec<(String, i64)> = outcomes
                    .iter()
                    .map(|o| (o.kind.to_string(), o.rows as i64))
                    .collect();
                Ok(StepOutput {
                    rows: targets.iter().map(|(_, n)| n).sum(),
                    targets,
                })
            }
            Step::Build { select } | Step::Test { select } => {
                let options = crate::models::BuildOptions {
                    sql_dir: &self.sql_dir,
                    selector: select.as_deref(),
                    dry_run: false,
                    test_only: matches!(step, Step::Test { .. }),
                    reference_date: self.reference_date(),
                    full_refresh: false,
                };
                let report = crate::models::build(&self.lake, &self.views(), &options)
                    .await
                    .map_err(|e| e.to_string())?;
                if !report.ok() {
                    return Err(report.problems().join("; "));
                }
                let targets: Vec<(String, i64)> = report
                    .outcomes
                    .iter()
                    .map(|o| (o.name.to_string(), o.rows as i64))
                    .collect();
                Ok(StepOutput {
                    rows: targets.iter().map(|(_, n)| n).sum(),
                    targets,
                })
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

impl App {
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
