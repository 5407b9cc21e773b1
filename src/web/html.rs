//! HTML for the status page: escaping, the page frame and tables. Every value from the lake goes
//! through [`escape`].

use std::fmt::Write as _;

/// The stylesheet, inline (the page loads nothing else).
const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2330;background:#f7f8fa}\
header{background:#1d2330;color:#fff;padding:8px 16px;display:flex;gap:18px;align-items:center}\
header a{color:#cfd8e8;text-decoration:none}header a.on{color:#fff;font-weight:600}\
header .who{margin-left:auto;display:flex;gap:8px;align-items:center}\
header button{background:none;border:1px solid #6b7690;color:#cfd8e8;border-radius:3px;cursor:pointer}\
main{padding:12px 16px}h1{font-size:20px;margin:6px 0 12px}h2{font-size:16px;margin:18px 0 6px}\
table{border-collapse:collapse;background:#fff;margin:4px 0 12px}\
th,td{border:1px solid #dde1e8;padding:3px 8px;text-align:left;vertical-align:top}\
th{background:#eef1f5}td.n{text-align:right;font-variant-numeric:tabular-nums}\
tr.failed td,td.failed,.bad{background:#fde2e1;color:#8a1c14}\
td.ok,.good{background:#e3f4e6;color:#1d5e2a}td.skipped,td.interrupted,.warn{background:#fff3cd;color:#7a5b00}\
td.none{color:#8a93a6}pre{white-space:pre-wrap;margin:0;max-width:900px}\
.muted{color:#6b7690}form.inline{display:inline}svg{max-width:100%;height:auto}\
#newest-rows td{white-space:nowrap}a{color:#1f5fbf}code{background:#eef1f5;padding:0 3px}";

/// The pages in the navigation bar: (path, label).
pub const NAV: [(&str, &str); 5] = [
    ("/", "Runs"),
    ("/freshness", "Freshness"),
    ("/product", "Liquidity vs risk"),
    ("/lineage", "Lineage"),
    ("/downloads", "Downloads"),
];

/// `s` with `& < > " '` escaped for text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` percent-encoded for a URL query value.
pub fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A whole document without the navigation bar (the login form).
pub fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{} · macrolake</title><style>{STYLE}</style></head>\
         <body><main>{body}</main></body></html>",
        escape(title)
    )
}

/// A page with the navigation bar, `active` being the current section's path.
pub fn page(title: &str, active: &str, user: &str, body: &str) -> String {
    let mut nav = String::from("<header><strong>macrolake</strong>");
    for (path, label) in NAV {
        let _ = write!(
            nav,
            "<a href=\"{path}\"{}>{label}</a>",
            if path == active { " class=\"on\"" } else { "" }
        );
    }
    let _ = write!(
        nav,
        "<span class=\"who\">{}<form class=\"inline\" method=\"post\" action=\"/logout\">\
         <button type=\"submit\">Log out</button></form></span></header>",
        escape(user)
    );
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{} · macrolake</title><style>{STYLE}</style></head>\
         <body>{nav}<main><h1>{}</h1>{body}</main></body></html>",
        escape(title),
        escape(title)
    )
}

/// One table cell: its HTML (already escaped or built from escaped parts) and a class.
#[derive(Debug, Clone, Default)]
pub struct Cell {
    /// Inner HTML.
    pub html: String,
    /// CSS class (`n` for numbers, `ok`/`failed`/… for statuses).
    pub class: &'static str,
}

impl Cell {
    /// Text, escaped.
    pub fn text(s: &str) -> Self {
        Self {
            html: escape(s),
            class: "",
        }
    }

    /// A number, right-aligned.
    pub fn num(s: &str) -> Self {
        Self {
            html: escape(s),
            class: "n",
        }
    }

    /// A link to `href` with text `s`.
    pub fn link(href: &str, s: &str) -> Self {
        Self {
            html: format!("<a href=\"{}\">{}</a>", escape(href), escape(s)),
            class: "",
        }
    }

    /// Text with a class.
    pub fn class(s: &str, class: &'static str) -> Self {
        Self {
            html: escape(s),
            class,
        }
    }
}

/// A table with an id, header row and rows; `row_class` colours whole rows.
pub fn table(id: &str, headers: &[&str], rows: &[(Vec<Cell>, &'static str)]) -> String {
    let mut out = format!("<table id=\"{}\"><thead><tr>", escape(id));
    for h in headers {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead><tbody>");
    for (cells, class) in rows {
        if class.is_empty() {
            out.push_str("<tr>");
        } else {
            let _ = write!(out, "<tr class=\"{class}\">");
        }
        for c in cells {
            if c.class.is_empty() {
                let _ = write!(out, "<td>{}</td>", c.html);
            } else {
                let _ = write!(out, "<td class=\"{}\">{}</td>", c.class, c.html);
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_in_text_and_attributes() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        let t = table(
            "t",
            &["a"],
            &[(vec![Cell::link("/x?a=\"><b>", "<i>")], "failed")],
        );
        assert!(!t.contains("<b>") && !t.contains("<i>"), "{t}");
        assert!(t.contains("<tr class=\"failed\">"));
        assert_eq!(url_encode("/runs?a=1&b=2"), "%2Fruns%3Fa%3D1%26b%3D2");
    }
}
