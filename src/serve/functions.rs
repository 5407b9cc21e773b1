//! PostgreSQL functions that drivers' catalog queries call and DataFusion lacks
//! (SQLAlchemy's column reflection, psycopg's type probing).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int32Array, StringArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::common::cast::as_string_array;
use datafusion::error::DataFusionError;
use datafusion::functions::utils::make_scalar_function;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Signature, Volatility, create_udf};
use datafusion::prelude::SessionContext;

/// Registers every function of this module.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(to_regtype());
    ctx.register_udf(create_udf(
        "pg_get_serial_sequence",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        // No table here has a serial column.
        Arc::new(|_| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)))),
    ));
    ctx.register_udf(create_udf(
        "pg_collation_is_visible",
        vec![DataType::Int32],
        DataType::Boolean,
        Volatility::Immutable,
        Arc::new(|_| Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))))),
    ));
    ctx.register_udf(json_build_object());
    ctx.register_udf(pg_like_escape());
    ctx.register_udf(current_setting());
}

/// Server-wide settings `current_setting(name)` answers: what no session can change here.
const SERVER_SETTINGS: &[(&str, &str)] = &[
    ("server_version_num", "160006"),
    ("server_version", "16.6"),
    ("server_encoding", "UTF8"),
    ("max_identifier_length", "63"),
    ("integer_datetimes", "on"),
    ("block_size", "8192"),
    ("is_superuser", "off"),
    ("transaction_read_only", "on"),
    ("default_transaction_read_only", "on"),
];

/// `current_setting(name)` for the server-wide settings (Grafana reads `server_version_num`
/// this way). A setting a session may `SET` (search_path, TimeZone, …) is not answered here —
/// a function cannot see the connection — so it is an error that points to `SHOW`.
fn current_setting() -> ScalarUDF {
    let f = |args: &[ArrayRef]| -> Result<ArrayRef, DataFusionError> {
        let names = as_string_array(&args[0])?;
        let mut out = StringBuilder::new();
        for name in names {
            let Some(name) = name.map(str::to_ascii_lowercase) else {
                out.append_null();
                continue;
            };
            match SERVER_SETTINGS.iter().find(|(n, _)| *n == name) {
                Some((_, v)) => out.append_value(v),
                None if super::settings::ALLOWED.iter().any(|(n, _)| *n == name) => {
                    return Err(DataFusionError::Execution(format!(
                        "current_setting('{name}') is per connection: use SHOW {name}"
                    )));
                }
                None => {
                    return Err(DataFusionError::Execution(format!(
                        "unrecognized configuration parameter \"{name}\""
                    )));
                }
            }
        }
        Ok(Arc::new(out.finish()))
    };
    create_udf(
        "current_setting",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(make_scalar_function(f, vec![])),
    )
}

/// A LIKE pattern escaped with `esc` rewritten to backslash escapes (DataFusion's only escape).
pub fn like_pattern(pattern: &str, esc: char) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c == esc => match chars.next() {
                Some(next @ ('%' | '_' | '\\')) => {
                    out.push('\\');
                    out.push(next);
                }
                Some(next) => out.push(next),
                None => {}
            },
            '\\' => out.push_str("\\\\"),
            other => out.push(other),
        }
    }
    out
}

/// `pg_like_escape(pattern, escape_char)`, used by the `LIKE … ESCAPE` rewrite.
fn pg_like_escape() -> ScalarUDF {
    let f = |args: &[ArrayRef]| -> Result<ArrayRef, DataFusionError> {
        let (patterns, escapes) = (as_string_array(&args[0])?, as_string_array(&args[1])?);
        let out: StringArray = patterns
            .iter()
            .zip(escapes)
            .map(|(pattern, escape)| {
                let pattern = pattern?;
                Some(match escape.and_then(|e| e.chars().next()) {
                    Some(esc) => like_pattern(pattern, esc),
                    None => pattern.to_string(),
                })
            })
            .collect();
        Ok(Arc::new(out))
    };
    create_udf(
        "pg_like_escape",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(make_scalar_function(f, vec![])),
    )
}

/// `to_regtype(name)`: the oid of a built-in type by name, NULL for types this server does not
/// have (drivers probe for extension types such as `hstore` this way).
fn to_regtype() -> ScalarUDF {
    const TYPES: &[(&str, i32)] = &[
        ("bool", 16),
        ("boolean", 16),
        ("bytea", 17),
        ("char", 18),
        ("name", 19),
        ("int8", 20),
        ("bigint", 20),
        ("int2", 21),
        ("smallint", 21),
        ("int4", 23),
        ("integer", 23),
        ("int", 23),
        ("text", 25),
        ("oid", 26),
        ("json", 114),
        ("float4", 700),
        ("real", 700),
        ("float8", 701),
        ("double precision", 701),
        ("varchar", 1043),
        ("character varying", 1043),
        ("date", 1082),
        ("time", 1083),
        ("timestamp", 1114),
        ("timestamp without time zone", 1114),
        ("timestamptz", 1184),
        ("timestamp with time zone", 1184),
        ("interval", 1186),
        ("numeric", 1700),
        ("uuid", 2950),
        ("jsonb", 3802),
    ];
    let f = |args: &[ArrayRef]| -> Result<ArrayRef, DataFusionError> {
        let lookup = |name: &str| {
            let name = name
                .trim()
                .trim_start_matches("pg_catalog.")
                .to_ascii_lowercase();
            TYPES.iter().find(|(n, _)| *n == name).map(|(_, oid)| *oid)
        };
        let out: Int32Array = as_string_array(&args[0])?
            .iter()
            .map(|name| name.and_then(lookup))
            .collect();
        Ok(Arc::new(out))
    };
    create_udf(
        "to_regtype",
        vec![DataType::Utf8],
        DataType::Int32,
        Volatility::Immutable,
        Arc::new(make_scalar_function(f, vec![])),
    )
}

fn json_quote(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// Whether a value of this type is written as a JSON number or boolean (else a string).
fn json_bare(t: &DataType) -> bool {
    t.is_numeric() || *t == DataType::Boolean
}

/// `json_build_object(k1, v1, k2, v2, …)` as JSON text.
fn json_build_object() -> ScalarUDF {
    let f = |args: &[ArrayRef]| -> Result<ArrayRef, DataFusionError> {
        if !args.len().is_multiple_of(2) {
            return Err(DataFusionError::Execution(
                "json_build_object takes key/value pairs".into(),
            ));
        }
        let columns = args
            .iter()
            .map(|a| Ok((cast(a, &DataType::Utf8)?, !json_bare(a.data_type()))))
            .collect::<Result<Vec<_>, DataFusionError>>()?;
        let rows = args.first().map_or(1, |a| a.len());
        let mut out = StringBuilder::new();
        for row in 0..rows {
            let mut parts = Vec::new();
            for pair in columns.chunks(2) {
                let text = |(a, _): &(ArrayRef, bool)| -> Result<Option<String>, DataFusionError> {
                    let s = as_string_array(a)?;
                    Ok((!s.is_null(row)).then(|| s.value(row).to_string()))
                };
                let key = json_quote(&text(&pair[0])?.unwrap_or_default());
                let value = match text(&pair[1])? {
                    None => "null".to_string(),
                    Some(v) if pair[1].1 => json_quote(&v),
                    Some(v) => v,
                };
                parts.push(format!("{key}: {value}"));
            }
            out.append_value(format!("{{{}}}", parts.join(", ")));
        }
        Ok(Arc::new(out.finish()))
    };
    ScalarUDF::from(
        datafusion::logical_expr::SimpleScalarUDF::new_with_signature(
            "json_build_object",
            Signature::variadic_any(Volatility::Immutable),
            DataType::Utf8,
            Arc::new(make_scalar_function(f, vec![])),
        ),
    )
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn current_setting_answers_server_settings_and_points_sessions_to_show() {
        let ctx = super::SessionContext::new();
        super::register(&ctx);
        let run = |sql: &'static str| {
            let ctx = ctx.clone();
            async move { ctx.sql(sql).await?.collect().await }
        };
        let rows = run("SELECT current_setting('server_version_num')::int/100 AS v")
            .await
            .unwrap();
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&rows)
            .unwrap()
            .to_string();
        assert!(text.contains("| 1600 |"), "{text}");
        let err = run("SELECT current_setting('search_path')")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("use SHOW search_path"), "{err}");
        let err = run("SELECT current_setting('no_such')").await.unwrap_err();
        assert!(
            err.to_string()
                .contains("unrecognized configuration parameter \"no_such\""),
            "{err}"
        );
    }

    #[test]
    fn like_patterns_with_another_escape_become_backslash_escaped() {
        assert_eq!(super::like_pattern("pg/_%", '/'), "pg\\_%");
        assert_eq!(super::like_pattern("a//b", '/'), "a/b");
        assert_eq!(super::like_pattern("c:\\x", '/'), "c:\\\\x");
    }
}
