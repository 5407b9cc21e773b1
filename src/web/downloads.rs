//! Downloads: every table as CSV or Parquet, encoded exactly as `macrolake export` writes it.

use std::collections::HashMap;

use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use super::cx::Cx;
use super::html::{Cell, escape, table};
use super::{Body, respond};
use crate::app::AppError;
use crate::export::ExportFormat;
use crate::query::render_rows;

/// `/downloads`: every table as CSV or Parquet.
pub async fn list(cx: &Cx<'_>) -> Result<Response<Body>, AppError> {
    let batches = cx.state.app.status().await?;
    let rows: Vec<(Vec<Cell>, &'static str)> = render_rows(&batches)
        .into_iter()
        .filter_map(|r| {
            let (table, rows) = (r.first()?.clone(), r.get(1)?.clone());
            let links = Cell {
                html: format!(
                    "<a href=\"/download/{t}.csv\">CSV</a> · <a href=\"/download/{t}.parquet\">Parquet</a>",
                    t = escape(&table)
                ),
                class: "",
            };
            Some((vec![Cell::text(&table), Cell::num(&rows), links], ""))
        })
        .collect();
    let body = format!(
        "<p class=\"muted\">Files as <code>macrolake export</code> writes them: rows sorted, CSV \
         with a header, ISO dates and RFC 3339 times; Parquet with the lake's types.</p>{}",
        table("downloads", &["table", "rows", "download"], &rows)
    );
    Ok(cx.html(StatusCode::OK, "Downloads", "/downloads", &body))
}

/// `/download/<zone.table>.<csv|parquet>`.
pub async fn file(cx: &Cx<'_>, file: &str) -> Response<Body> {
    let formats: HashMap<&str, (ExportFormat, &str)> = [
        ("csv", (ExportFormat::Csv, "text/csv; charset=utf-8")),
        (
            "parquet",
            (ExportFormat::Parquet, "application/vnd.apache.parquet"),
        ),
    ]
    .into_iter()
    .collect();
    let Some((name, (format, content_type))) = file
        .rsplit_once('.')
        .and_then(|(name, ext)| Some((name, *formats.get(ext)?)))
    else {
        return cx.error(
            StatusCode::NOT_FOUND,
            "/downloads",
            &format!("{file}: name a table and .csv or .parquet, e.g. /download/marts.liquidity_vs_risk.csv"),
        );
    };
    let opened = match cx.state.app.session(None).await {
        Ok(session) => crate::export::open_table(&session, name, format).await,
        Err(e) => {
            return cx.error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "/downloads",
                &e.to_string(),
            );
        }
    };
    match opened {
        Ok(chunks) => {
            let disposition = format!(
                "attachment; filename=\"{}.{}\"",
                chunks.table,
                format.extension()
            );
            let mut r = respond(StatusCode::OK, content_type, Bytes::new());
            *r.body_mut() = streamed(chunks);
            if let Ok(v) = HeaderValue::from_str(&disposition) {
                r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            r
        }
        Err(e @ crate::export::ExportError::UnknownTable { .. }) => {
            cx.error(StatusCode::NOT_FOUND, "/downloads", &e.to_string())
        }
        Err(e) => cx.error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "/downloads",
            &e.to_string(),
        ),
    }
}

/// The file as a body sent chunk by chunk while the table is read: the server holds a batch,
/// not the table. An error after the first bytes ends the response without its last chunk, so
/// the client sees a broken download, not a short file.
fn streamed(chunks: crate::export::TableStream) -> Body {
    let frames = futures::stream::unfold(chunks, |mut chunks| async move {
        let next = chunks.next_chunk().await?;
        let frame = next
            .map(|bytes| Frame::data(Bytes::from(bytes)))
            .map_err(|e| {
                tracing::warn!(table = %chunks.table, error = %e, "download failed");
                std::io::Error::other(e.to_string())
            });
        Some((frame, chunks))
    });
    StreamBody::new(frames).boxed_unsync()
}
