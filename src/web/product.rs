//! The product page (chart and newest rows of `marts.liquidity_vs_risk`) and the lineage pages
//! (the model graph; each model's columns, tests and last builds).

use std::path::PathBuf;

use chrono::NaiveDate;
use hyper::{Response, StatusCode};

use super::cx::Cx;
use super::html::{Cell, escape, table};
use super::lineage::Graph;
use super::{Body, respond};
use crate::app::AppError;
use crate::chart::{ChartArgs, ChartError, ChartMode, Drawn, ImageFormat};
use crate::query::render_rows;

/// Rows of the mart shown under the chart.
const NEWEST_ROWS: usize = 30;

/// The chart's arguments from `?from=&to=&mode=`; a bad date is an error message.
fn chart_args(cx: &Cx<'_>) -> Result<ChartArgs, String> {
    let day = |name: &str| -> Result<Option<NaiveDate>, String> {
        cx.param(name)
            .map(|v| {
                NaiveDate::parse_from_str(&v, "%Y-%m-%d")
                    .map_err(|_| format!("{name}={v:?} is not a date (YYYY-MM-DD)"))
            })
            .transpose()
    };
    Ok(ChartArgs {
        from: day("from")?,
        to: day("to")?,
        out: PathBuf::from("chart.svg"),
        mode: match cx.param("mode").as_deref() {
            Some("dual-axis") => ChartMode::DualAxis,
            _ => ChartMode::Normalised,
        },
        width: 1100,
        height: 500,
        as_of: None,
    })
}

fn chart_status(e: &ChartError) -> StatusCode {
    match e {
        ChartError::Read { .. } | ChartError::Font | ChartError::Render { .. } => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        ChartError::NoMart { .. } | ChartError::EmptyMart { .. } => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// The chart for `args` as SVG; an error is its HTTP status and message.
async fn draw_svg(cx: &Cx<'_>, args: &ChartArgs) -> Result<Drawn, (StatusCode, String)> {
    let app = &cx.state.app;
    let session = app
        .session(args.as_of.as_ref())
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    crate::chart::draw(&session, app.lake.root().as_str(), args, ImageFormat::Svg)
        .await
        .map_err(|e| (chart_status(&e), e.to_string()))
}

/// The SVG document without its XML declaration, to inline in HTML.
fn inline_svg(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.find("<svg") {
        Some(i) => text[i..].to_string(),
        None => text.into_owned(),
    }
}

/// `/chart.svg?from=&to=&mode=`: the chart alone.
pub async fn chart_svg(cx: &Cx<'_>) -> Response<Body> {
    let args = match chart_args(cx) {
        Ok(a) => a,
        Err(m) => return cx.error(StatusCode::BAD_REQUEST, "/product", &m),
    };
    match draw_svg(cx, &args).await {
        Ok(d) => respond(StatusCode::OK, "image/svg+xml", d.bytes),
        Err((status, message)) => cx.error(status, "/product", &message),
    }
}

/// `/product`: the range form, the chart inline and the mart's newest rows.
pub async fn product(cx: &Cx<'_>) -> Response<Body> {
    let title = "Net liquidity vs risk assets";
    let args = match chart_args(cx) {
        Ok(a) => a,
        Err(m) => return cx.error(StatusCode::BAD_REQUEST, "/product", &m),
    };
    let (status, chart, from, to) = match draw_svg(cx, &args).await {
        Ok(d) => (
            StatusCode::OK,
            format!(
                "<figure id=\"chart\">{}<figcaption class=\"muted\">{} to {}: {} day(s), {} \
                     divergence span(s) shaded.</figcaption></figure>",
                inline_svg(&d.bytes),
                d.from,
                d.to,
                d.days,
                d.divergence_spans
            ),
            d.from.to_string(),
            d.to.to_string(),
        ),
        Err((status, message)) => (
            status,
            format!(
                "<p class=\"bad\" id=\"error\">{}</p>",
                escape(&crate::http::redact::redact(&message))
            ),
            cx.param("from").unwrap_or_default(),
            cx.param("to").unwrap_or_default(),
        ),
    };
    let dual = args.mode == ChartMode::DualAxis;
    let form = format!(
        "<form method=\"get\" action=\"/product\" id=\"range\">\
         <label>From <input type=\"date\" name=\"from\" value=\"{}\"></label> \
         <label>To <input type=\"date\" name=\"to\" value=\"{}\"></label> \
         <label>Layout <select name=\"mode\"><option value=\"normalised\"{}>rebased to 100</option>\
         <option value=\"dual-axis\"{}>liquidity ($) and assets</option></select></label> \
         <button type=\"submit\">Draw</button> \
         <a href=\"/download/marts.liquidity_vs_risk.csv\">all rows as CSV</a></form>",
        escape(&from),
        escape(&to),
        if dual { "" } else { " selected" },
        if dual { " selected" } else { "" },
    );
    let rows = match newest_rows(cx).await {
        Ok(t) => t,
        Err(e) => format!(
            "<p class=\"bad\">{}</p>",
            escape(&crate::http::redact::redact(&e.to_string()))
        ),
    };
    let body = format!(
        "{form}{chart}<h2>The newest {NEWEST_ROWS} rows of <code>marts.liquidity_vs_risk</code></h2>\
         <p class=\"muted\">The table runs to the newest day any input is known. An empty cell is a \
         value not yet published for that day or older than its age limit (each carried value's \
         <code>_as_of</code> column says from which day it is).</p>\
         <div style=\"overflow-x:auto\">{rows}</div>"
    );
    cx.html(status, title, "/product", &body)
}

/// The mart's newest rows, every column, newest first.
async fn newest_rows(cx: &Cx<'_>) -> Result<String, AppError> {
    let sql =
        format!("SELECT * FROM marts.liquidity_vs_risk ORDER BY date DESC LIMIT {NEWEST_ROWS}");
    let batches = cx.state.app.query(&sql, None).await?;
    let Some(schema) = batches.first().map(|b| b.schema()) else {
        return Ok("<p>No rows.</p>".into());
    };
    let headers: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let numeric: Vec<bool> = schema
        .fields()
        .iter()
        .map(|f| f.data_type().is_numeric())
        .collect();
    let rows: Vec<(Vec<Cell>, &'static str)> = render_rows(&batches)
        .into_iter()
        .map(|r| {
            let cells = r
                .iter()
                .zip(&numeric)
                .map(|(v, n)| if *n { Cell::num(v) } else { Cell::text(v) })
                .collect();
            (cells, "")
        })
        .collect();
    Ok(table("newest-rows", &headers, &rows))
}

/// The models' graph, from `sql/`.
fn graph(cx: &Cx<'_>) -> Result<(Graph, Vec<crate::models::Model>), AppError> {
    let (models, _) = crate::models::discover(&cx.state.app.sql_dir)?;
    let mut g = Graph::default();
    for m in &models {
        g.models.insert(m.name.to_string());
        for r in crate::models::dag::references(m)? {
            g.edges.push((r.to_string(), m.name.to_string()));
        }
    }
    Ok((g, models))
}

/// The newest build of each model: (status, started, rows).
async fn last_builds(cx: &Cx<'_>) -> Result<Vec<[String; 4]>, AppError> {
    let sql = "SELECT target, status, CAST(started_at AS VARCHAR) AS started_text, \
               CAST(rows_written AS VARCHAR) AS rows_text \
               FROM (SELECT *, row_number() OVER (PARTITION BY target ORDER BY started_at DESC) AS n \
               FROM meta.runs WHERE kind = 'build' AND target LIKE '%.%') WHERE n = 1";
    Ok(cx
        .runs_query(sql)
        .await?
        .into_iter()
        .filter_map(|r| <[String; 4]>::try_from(r).ok())
        .collect())
}

/// `/lineage`: the graph and one line per model.
pub async fn lineage(cx: &Cx<'_>) -> Result<Response<Body>, AppError> {
    let (g, models) = graph(cx)?;
    let builds = last_builds(cx).await?;
    let rows: Vec<(Vec<Cell>, &'static str)> = models
        .iter()
        .map(|m| {
            let name = m.name.to_string();
            let build = builds.iter().find(|b| b[0] == name);
            let status = build.map(|b| b[1].as_str()).unwrap_or("never built");
            (
                vec![
                    Cell::link(&format!("/lineage/{name}"), &name),
                    Cell::text(&format!("{:?}", m.materialized).to_lowercase()),
                    Cell::text(m.description.as_deref().unwrap_or("")),
                    Cell::class(status, if status == "ok" { "ok" } else { "failed" }),
                    Cell::text(build.map(|b| b[2].as_str()).unwrap_or("")),
                ],
                "",
            )
        })
        .collect();
    let body = format!(
        "<p class=\"muted\">Inputs on the left, the product on the right; click a model.</p>\
         <div style=\"overflow-x:auto\">{}</div>{}",
        g.svg(),
        table(
            "models",
            &[
                "model",
                "materialized",
                "description",
                "last build",
                "built at"
            ],
            &rows
        )
    );
    Ok(cx.html(StatusCode::OK, "Lineage", "/lineage", &body))
}

/// `/lineage/<zone.model>`: one model's inputs, readers, columns, tests and recent builds.
pub async fn model(cx: &Cx<'_>, name: &str) -> Response<Body> {
    match model_page(cx, name).await {
        Ok(r) => r,
        Err(e) => cx.error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "/lineage",
            &e.to_string(),
        ),
    }
}

async fn model_page(cx: &Cx<'_>, name: &str) -> Result<Response<Body>, AppError> {
    let (g, models) = graph(cx)?;
    let Some(m) = models.iter().find(|m| m.name.to_string() == name) else {
        return Ok(cx.error(
            StatusCode::NOT_FOUND,
            "/lineage",
            &format!("no model {name} in {}", cx.state.app.sql_dir.display()),
        ));
    };
    let link = |t: &str| {
        if g.models.contains(t) {
            format!("<a href=\"/lineage/{0}\">{0}</a>", escape(t))
        } else {
            format!("<code>{}</code>", escape(t))
        }
    };
    let list = |ts: Vec<&str>| {
        if ts.is_empty() {
            "nothing".to_string()
        } else {
            ts.into_iter().map(link).collect::<Vec<_>>().join(", ")
        }
    };
    let mut body = format!(
        "<p>{}</p><p>File <code>{}</code>, materialized as {}{}.</p>\
         <p id=\"reads\">Reads: {}.</p><p id=\"read-by\">Read by: {}.</p>\
         <p><a href=\"/download/{n}.csv\">CSV</a> · <a href=\"/download/{n}.parquet\">Parquet</a></p>",
        escape(m.description.as_deref().unwrap_or("(no description)")),
        escape(&m.path.display().to_string()),
        format!("{:?}", m.materialized).to_lowercase(),
        if m.unique_key.is_empty() {
            String::new()
        } else {
            format!(", unique key ({})", escape(&m.unique_key.join(", ")))
        },
        list(g.inputs(name)),
        list(g.readers(name)),
        n = escape(name)
    );
    // Column types from the stored table (what a client sees); docs from the model's header.
    let session = cx.state.app.session(None).await?;
    let fields: Vec<(String, String)> =
        match session.ctx.sql(&format!("SELECT * FROM {name}")).await {
            Ok(df) => df
                .schema()
                .fields()
                .iter()
                .map(|f| (f.name().clone(), f.data_type().to_string()))
                .collect(),
            Err(_) => m
                .columns
                .iter()
                .map(|(c, _)| (c.clone(), "(not built yet)".into()))
                .collect(),
        };
    let rows: Vec<(Vec<Cell>, &'static str)> = fields
        .iter()
        .map(|(c, t)| {
            let doc = m
                .columns
                .iter()
                .find(|(n, _)| n == c)
                .map(|(_, d)| d.as_str())
                .unwrap_or("");
            (vec![Cell::text(c), Cell::text(t), Cell::text(doc)], "")
        })
        .collect();
    body.push_str("<h2>Columns</h2>");
    body.push_str(&table("columns", &["column", "type", "description"], &rows));
    body.push_str("<h2>Tests</h2><ul id=\"tests\">");
    for (_, t) in &m.tests {
        body.push_str(&format!("<li><code>{}</code></li>", escape(&t.name())));
    }
    if m.tests.is_empty() {
        body.push_str("<li>none</li>");
    }
    body.push_str("</ul>");
    body.push_str(&recent_builds(cx, name).await?);
    Ok(cx.html(StatusCode::OK, name, "/lineage", &body))
}

/// The model's last builds and tests from `meta.runs`.
async fn recent_builds(cx: &Cx<'_>, name: &str) -> Result<String, AppError> {
    let sql = format!(
        "SELECT run_id, kind, status, CAST(started_at AS VARCHAR) AS started_text, \
         CAST(rows_written AS VARCHAR) AS rows_text, coalesce(error, '') AS error_text FROM meta.runs WHERE kind IN ('build', 'test') AND target = '{}' \
         ORDER BY started_at DESC LIMIT 10",
        name.replace('\'', "''")
    );
    let rows: Vec<(Vec<Cell>, &'static str)> = cx
        .runs_query(&sql)
        .await?
        .into_iter()
        .filter_map(|r| <[String; 6]>::try_from(r).ok())
        .map(|[id, kind, status, started, rows, error]| {
            let class = if status == "ok" { "ok" } else { "failed" };
            (
                vec![
                    Cell::link(&format!("/runs/{id}"), &started),
                    Cell::text(&kind),
                    Cell::class(&status, class),
                    Cell::num(&rows),
                    Cell::text(&error),
                ],
                if status == "failed" { "failed" } else { "" },
            )
        })
        .collect();
    Ok(format!(
        "<h2>Last builds and tests</h2>{}",
        table(
            "builds",
            &["started", "kind", "status", "rows", "error"],
            &rows
        )
    ))
}
