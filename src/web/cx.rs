//! What a page handler gets: the server state, the logged-in user and the request's query
//! string, with the helpers every page uses (parameters, `meta.runs` queries, the HTML frame).

use hyper::{Response, StatusCode};

use super::html::{escape, page};
use super::{Body, State, respond};
use crate::app::AppError;
use crate::query::render_rows;

/// What a page handler gets.
pub struct Cx<'a> {
    /// Server state.
    pub state: &'a State,
    /// The logged-in user.
    pub user: &'a str,
    /// The raw query string.
    pub query: &'a str,
}

impl Cx<'_> {
    /// Query parameter `name`.
    pub fn param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .filter(|v| !v.is_empty())
    }

    /// Rows of a query over `meta.runs`, as text; none while the lake has no run history yet.
    pub async fn runs_query(&self, sql: &str) -> Result<Vec<Vec<String>>, AppError> {
        let app = &self.state.app;
        if !app
            .lake
            .exists(&crate::lake::TableName::meta("runs"))
            .await?
        {
            return Ok(Vec::new());
        }
        Ok(render_rows(&app.query(sql, None).await?))
    }

    /// An HTML page in the frame.
    pub fn html(
        &self,
        status: StatusCode,
        title: &str,
        active: &str,
        body: &str,
    ) -> Response<Body> {
        respond(
            status,
            "text/html; charset=utf-8",
            page(title, active, self.user, body),
        )
    }

    /// A page saying what failed (its message redacted).
    pub fn error(&self, status: StatusCode, active: &str, message: &str) -> Response<Body> {
        let text = crate::http::redact::redact(message);
        self.html(
            status,
            "Error",
            active,
            &format!("<pre class=\"bad\" id=\"error\">{}</pre>", escape(&text)),
        )
    }
}
