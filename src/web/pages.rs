//! The status page's routes and its pages of runs, one run and freshness (the product and
//! lineage pages are in [`super::product`], downloads in [`super::downloads`]).

use chrono::{DateTime, Utc};
use hyper::{Response, StatusCode};

use super::cx::Cx;
use super::html::{Cell, escape, table};
use super::{Body, downloads, freshness, product};
use crate::app::AppError;

/// Runs shown on the runs page unless `?limit=` says otherwise.
const DEFAULT_RUNS: usize = 20;
/// Most runs one page shows.
const MAX_RUNS: usize = 500;

/// Dispatches an authenticated GET.
pub async fn route(cx: &Cx<'_>, path: &str) -> Response<Body> {
    let result = match path {
        "/" | "/runs" => runs(cx).await,
        "/freshness" => fresh(cx).await,
        "/product" => return product::product(cx).await,
        "/chart.svg" => return product::chart_svg(cx).await,
        "/lineage" => product::lineage(cx).await,
        "/downloads" => downloads::list(cx).await,
        _ => {
            if let Some(id) = path.strip_prefix("/runs/") {
                run(cx, id).await
            } else if let Some(name) = path.strip_prefix("/lineage/") {
                return product::model(cx, name).await;
            } else if let Some(file) = path.strip_prefix("/download/") {
                return downloads::file(cx, file).await;
            } else {
                return cx.error(StatusCode::NOT_FOUND, "", &format!("no page at {path}"));
            }
        }
    };
    result.unwrap_or_else(|e| cx.error(StatusCode::INTERNAL_SERVER_ERROR, "", &e.to_string()))
}

/// One row of `meta.runs`, as text.
#[derive(Debug, Clone)]
struct Row {
    run_id: String,
    kind: String,
    job: String,
    target: String,
    status: String,
    rows: i64,
    error: String,
    started: Option<DateTime<Utc>>,
    ended: Option<DateTime<Utc>>,
    attempt: String,
}

/// A run: its own row (a job's or an ingest command's) or, for `build`/`test`, its steps.
#[derive(Debug, Clone)]
struct Run {
    id: String,
    job: String,
    head: Option<Row>,
    steps: Vec<Row>,
}

impl Run {
    fn started(&self) -> Option<DateTime<Utc>> {
        self.head
            .iter()
            .chain(&self.steps)
            .filter_map(|r| r.started)
            .min()
    }

    fn ended(&self) -> Option<DateTime<Utc>> {
        self.head
            .iter()
            .chain(&self.steps)
            .filter_map(|r| r.ended)
            .max()
    }

    /// The run's own status, else the worst of its steps.
    fn status(&self) -> &str {
        if let Some(h) = &self.head {
            return &h.status;
        }
        ["failed", "interrupted", "skipped"]
            .into_iter()
            .find(|s| self.steps.iter().any(|r| r.status == *s))
            .unwrap_or("ok")
    }

    fn rows(&self) -> i64 {
        match &self.head {
            Some(h) => h.rows,
            None => self.steps.iter().map(|r| r.rows).sum(),
        }
    }

    fn error(&self) -> Option<&str> {
        self.head
            .iter()
            .chain(&self.steps)
            .map(|r| r.error.as_str())
            .find(|e| !e.is_empty())
    }

    /// Whether `other` ran inside this job run (the ingest, build and test it started).
    fn contains(&self, other: &Run) -> bool {
        self.head.as_ref().is_some_and(|h| h.kind == "job")
            && other.id != self.id
            && other.started() >= self.started()
            && other.ended() <= self.ended()
    }
}

fn timestamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The newest `limit` runs (or the one with `id`), newest first.
async fn load_runs(cx: &Cx<'_>, limit: usize, id: Option<&str>) -> Result<Vec<Run>, AppError> {
    let filter = match id {
        Some(id) => format!("WHERE run_id = '{id}'"),
        None => String::new(),
    };
    let sql = format!(
        "WITH r AS (SELECT run_id, min(started_at) AS s FROM meta.runs {filter} GROUP BY run_id \
         ORDER BY s DESC LIMIT {limit}) \
         SELECT m.run_id, m.kind, m.job, coalesce(m.target, '') AS target_text, m.status, \
         CAST(m.rows_written AS VARCHAR) AS rows_text, coalesce(m.error, '') AS error_text, \
         CAST(m.started_at AS VARCHAR) AS started_text, CAST(m.ended_at AS VARCHAR) AS ended_text, \
         coalesce(CAST(m.attempt AS VARCHAR), '') AS attempt_text \
         FROM meta.runs m JOIN r ON m.run_id = r.run_id ORDER BY r.s DESC, m.started_at"
    );
    let mut runs: Vec<Run> = Vec::new();
    for v in cx.runs_query(&sql).await? {
        let [
            run_id,
            kind,
            job,
            target,
            status,
            rows,
            error,
            started,
            ended,
            attempt,
        ] = <[String; 10]>::try_from(v).map_err(|_| AppError::Query(bad_shape()))?;
        let row = Row {
            run_id,
            kind,
            job,
            target,
            status,
            rows: rows.parse().unwrap_or(0),
            error,
            started: timestamp(&started),
            ended: timestamp(&ended),
            attempt,
        };
        let run = match runs.iter_mut().find(|r| r.id == row.run_id) {
            Some(r) => r,
            None => {
                runs.push(Run {
                    id: row.run_id.clone(),
                    job: row.job.clone(),
                    head: None,
                    steps: Vec::new(),
                });
                runs.last_mut().expect("just pushed")
            }
        };
        if row.kind == "job" || row.kind == "run" {
            run.job = row.job.clone();
            run.head = Some(row);
        } else {
            run.steps.push(row);
        }
    }
    Ok(runs)
}

fn bad_shape() -> crate::query::QueryError {
    crate::query::QueryError::Sql(datafusion::error::DataFusionError::Internal(
        "meta.runs query returned an unexpected shape".into(),
    ))
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

fn duration(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{:.1} s", (b - a).num_milliseconds() as f64 / 1000.0),
        _ => String::new(),
    }
}

fn status_cell(status: &str) -> Cell {
    let class = match status {
        "ok" => "ok",
        "failed" => "failed",
        "skipped" => "skipped",
        "interrupted" => "interrupted",
        _ => "",
    };
    Cell::class(status, class)
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    if line.chars().count() > 160 {
        format!("{}…", line.chars().take(160).collect::<String>())
    } else {
        line.to_string()
    }
}

/// `/`: the newest runs, each with its steps summarised; failed ones red, linking to the error.
async fn runs(cx: &Cx<'_>) -> Result<Response<Body>, AppError> {
    let limit = cx
        .param("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(DEFAULT_RUNS)
        .clamp(1, MAX_RUNS);
    let runs = load_runs(cx, limit, None).await?;
    if runs.is_empty() {
        let body = "<p id=\"no-runs\">No runs yet: run <code>macrolake run nightly</code> \
                    (or start <code>macrolake daemon</code>).</p>";
        return Ok(cx.html(StatusCode::OK, "Runs", "/", body));
    }
    let mut rows = Vec::new();
    for run in &runs {
        let parent = runs.iter().find(|p| p.contains(run));
        let mut counts: Vec<(String, usize)> = Vec::new();
        for s in &run.steps {
            match counts.iter_mut().find(|(k, _)| *k == s.status) {
                Some((_, n)) => *n += 1,
                None => counts.push((s.status.clone(), 1)),
            }
        }
        let steps = counts
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ");
        let href = format!("/runs/{}", run.id);
        let error = match run.error() {
            Some(e) => Cell {
                html: format!("<a href=\"{href}#error\">{}</a>", escape(&first_line(e))),
                class: "",
            },
            None => Cell::default(),
        };
        let status = run.status();
        rows.push((
            vec![
                Cell::link(&href, &run.job),
                Cell::text(match run.head.as_ref().map(|h| h.kind.as_str()) {
                    Some("job") => "job",
                    _ => "command",
                }),
                match parent {
                    Some(p) => Cell::link(&format!("/runs/{}", p.id), &p.job),
                    None => Cell::default(),
                },
                Cell::text(&when(run.started())),
                Cell::num(&duration(run.started(), run.ended())),
                status_cell(status),
                Cell::text(&steps),
                Cell::num(&run.rows().to_string()),
                error,
            ],
            if status == "failed" { "failed" } else { "" },
        ));
    }
    let body = format!(
        "<p class=\"muted\">The newest {} run(s) in <code>meta.runs</code> (<a href=\"/?limit={}\">more</a>). \
         A job's ingest, build and test runs name it under “part of”.</p>{}",
        runs.len(),
        (limit * 2).min(MAX_RUNS),
        table(
            "runs",
            &[
                "run", "kind", "part of", "started", "duration", "status", "steps", "rows", "error"
            ],
            &rows
        )
    );
    Ok(cx.html(StatusCode::OK, "Runs", "/", &body))
}

/// The run's own row and its steps as table rows; the first error gets the id `error`.
fn step_rows(run: &Run) -> Vec<(Vec<Cell>, &'static str)> {
    let mut first_error = true;
    let mut rows = Vec::new();
    for s in run.head.iter().chain(&run.steps) {
        let error = if s.error.is_empty() {
            Cell::default()
        } else {
            let id = if std::mem::take(&mut first_error) {
                " id=\"error\""
            } else {
                ""
            };
            Cell {
                html: format!("<pre{id}>{}</pre>", escape(&s.error)),
                class: "",
            }
        };
        rows.push((
            vec![
                Cell::text(if s.target.is_empty() {
                    "(whole run)"
                } else {
                    &s.target
                }),
                Cell::text(&s.kind),
                Cell::num(&s.attempt),
                status_cell(&s.status),
                Cell::text(&when(s.started)),
                Cell::num(&duration(s.started, s.ended)),
                Cell::num(&s.rows.to_string()),
                error,
            ],
            if s.status == "failed" { "failed" } else { "" },
        ));
    }
    rows
}

/// `/runs/<id>`: every step with attempts, durations, rows and the whole error.
async fn run(cx: &Cx<'_>, id: &str) -> Result<Response<Body>, AppError> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Ok(cx.error(StatusCode::NOT_FOUND, "/", &format!("no run {id:?}")));
    }
    let Some(run) = load_runs(cx, 1, Some(id)).await?.into_iter().next() else {
        return Ok(cx.error(
            StatusCode::NOT_FOUND,
            "/",
            &format!("no run {id} in meta.runs"),
        ));
    };
    let mut body = format!(
        "<p>{} <strong>{}</strong> started {}, took {}, wrote {} row(s). Run id <code>{}</code>.</p>",
        if run.head.as_ref().is_some_and(|h| h.kind == "job") {
            "Job"
        } else {
            "Command"
        },
        escape(&run.job),
        when(run.started()),
        duration(run.started(), run.ended()),
        run.rows(),
        escape(&run.id)
    );
    let status = run.status();
    body.push_str(&format!(
        "<p>Status: <span class=\"{}\" id=\"run-status\">{}</span></p>",
        if status == "ok" { "good" } else { "bad" },
        escape(status)
    ));
    let rows = step_rows(&run);
    body.push_str(&table(
        "steps",
        &[
            "step", "kind", "attempt", "status", "started", "duration", "rows", "error",
        ],
        &rows,
    ));
    if run.head.as_ref().is_some_and(|h| h.kind == "job") {
        let inner: Vec<Run> = load_runs(cx, MAX_RUNS, None)
            .await?
            .into_iter()
            .filter(|r| run.contains(r))
            .collect();
        if !inner.is_empty() {
            body.push_str("<h2>Runs of this job's steps</h2><ul id=\"inner-runs\">");
            for r in inner.iter().rev() {
                body.push_str(&format!(
                    "<li><a href=\"/runs/{}\">{}</a> — {} ({} step(s))</li>",
                    escape(&r.id),
                    escape(&r.job),
                    escape(r.status()),
                    r.steps.len()
                ));
            }
            body.push_str("</ul>");
        }
    }
    Ok(cx.html(StatusCode::OK, &format!("Run of {}", run.job), "/", &body))
}

/// `/freshness`: every table's newest date and last write against its age limit.
async fn fresh(cx: &Cx<'_>) -> Result<Response<Body>, AppError> {
    let app = &cx.state.app;
    let entries = freshness::all(app).await?;
    let now = Utc::now();
    let rows: Vec<(Vec<Cell>, &'static str)> = entries
        .iter()
        .map(|e| {
            let state = e.state();
            let (class, word) = match state {
                "ok" => ("ok", "fresh"),
                "stale" => ("failed", "stale"),
                _ => ("none", "no limit"),
            };
            let limit = e
                .limit
                .as_ref()
                .map(|(d, why)| format!("{d} days: {why}"))
                .unwrap_or_default();
            let written = e
                .last_write
                .map(|t| format!("{} ({} h ago)", when(Some(t)), (now - t).num_hours()))
                .unwrap_or_default();
            (
                vec![
                    Cell::text(&e.table),
                    Cell::num(&e.rows),
                    Cell::text(&e.newest.map(|d| d.to_string()).unwrap_or_default()),
                    // Newer than the reference day (a replayed past day) counts as age 0.
                    Cell::num(&e.age_days.map(|a| a.max(0).to_string()).unwrap_or_default()),
                    Cell::class(word, class),
                    Cell::text(&limit),
                    Cell::num(&e.version),
                    Cell::text(&written),
                ],
                "",
            )
        })
        .collect();
    let stale = entries.iter().filter(|e| e.state() == "stale").count();
    let body = format!(
        "<p>Ages are in days from the reference day <strong id=\"reference-day\">{}</strong> \
         (<code>[models] reference_date</code>, else today). <span class=\"{}\">{stale} table(s) \
         past their limit.</span></p>{}",
        app.reference_date(),
        if stale == 0 { "good" } else { "bad" },
        table(
            "freshness",
            &[
                "table",
                "rows",
                "newest",
                "age (days)",
                "state",
                "limit",
                "version",
                "last write"
            ],
            &rows
        )
    );
    Ok(cx.html(StatusCode::OK, "Freshness", "/freshness", &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, status: &str, start: i64, end: i64) -> Row {
        let t = |s| DateTime::from_timestamp(s, 0);
        Row {
            run_id: String::new(),
            kind: kind.into(),
            job: "nightly".into(),
            target: String::new(),
            status: status.into(),
            rows: 2,
            error: if status == "failed" {
                "boom\nmore".into()
            } else {
                String::new()
            },
            started: t(start),
            ended: t(end),
            attempt: String::new(),
        }
    }

    #[test]
    fn a_run_is_as_bad_as_its_worst_step_and_a_job_contains_its_commands() {
        let build = Run {
            id: "b".into(),
            job: "build".into(),
            head: None,
            steps: vec![row("build", "ok", 10, 11), row("build", "failed", 11, 12)],
        };
        assert_eq!(build.status(), "failed");
        assert_eq!(build.rows(), 4);
        assert_eq!(build.error(), Some("boom\nmore"));
        assert_eq!(first_line(build.error().unwrap()), "boom");
        let job = Run {
            id: "j".into(),
            job: "nightly".into(),
            head: Some(row("job", "ok", 5, 20)),
            steps: vec![],
        };
        assert!(job.contains(&build));
        assert!(!build.contains(&job));
        let later = Run {
            id: "l".into(),
            job: "build".into(),
            head: None,
            steps: vec![row("build", "ok", 30, 31)],
        };
        assert!(!job.contains(&later));
        assert_eq!(duration(job.started(), job.ended()), "15.0 s");
    }
}
