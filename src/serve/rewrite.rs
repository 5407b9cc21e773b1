//! Catalog-query rewrites for what DataFusion cannot plan but whose answer here is known.
//!
//! Drivers' column reflection (SQLAlchemy's `get_columns`, i.e. what Superset runs when a
//! dataset is added) asks for column defaults, identity options and collations through
//! correlated scalar subqueries over `pg_attrdef`, `pg_sequence` and `pg_collation`. This server
//! has no defaults, no sequences and only default collations, so every such subquery is NULL;
//! they are replaced by NULL (and a `CASE` left with only NULL results by NULL) before planning.
//! `LIKE … ESCAPE 'c'` with an escape character other than backslash (SQLAlchemy's
//! `get_schema_names` uses `/`) becomes `LIKE pg_like_escape(pattern, 'c')`, which rewrites the
//! pattern to DataFusion's backslash escapes at run time.
//! Bind parameters inside a removed part are kept (as `CASE WHEN $n IS NULL THEN NULL END`) so
//! the client's parameter list still matches the statement.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    CaseWhen, Expr, Value, visit_expressions, visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

const ALWAYS_EMPTY: &[&str] = &["pg_attrdef", "pg_sequence", "pg_collation"];

fn null() -> Expr {
    Expr::Value(Value::Null.into())
}

fn is_null(e: &Expr) -> bool {
    matches!(e, Expr::Value(v) if v.value == Value::Null)
}

/// NULL, or a CASE that is NULL but still mentions the bind parameters of `e`.
fn nullify(e: &Expr) -> Expr {
    let placeholder =
        |x: &Expr| matches!(x, Expr::Value(v) if matches!(v.value, Value::Placeholder(_)));
    let mut found: Vec<Expr> = Vec::new();
    let _ = visit_expressions(e, |x| {
        if placeholder(x) || matches!(x, Expr::Cast { expr, .. } if placeholder(expr)) {
            found.push(x.clone());
        }
        ControlFlow::<()>::Continue(())
    });
    // A placeholder inside a kept cast is covered by the cast (which carries its type).
    let casts: Vec<String> = found
        .iter()
        .filter(|x| !placeholder(x))
        .map(ToString::to_string)
        .collect();
    let params: Vec<Expr> = found
        .into_iter()
        .filter(|x| !placeholder(x) || !casts.iter().any(|c| c.contains(&x.to_string())))
        .collect();
    let Some(condition) = params
        .into_iter()
        .map(|p| Expr::IsNull(Box::new(p)))
        .reduce(|a, b| Expr::BinaryOp {
            left: Box::new(a),
            op: datafusion::sql::sqlparser::ast::BinaryOperator::Or,
            right: Box::new(b),
        })
    else {
        return null();
    };
    Expr::Case {
        case_token: AttachedToken::empty(),
        end_token: AttachedToken::empty(),
        operand: None,
        conditions: vec![CaseWhen {
            condition,
            result: null(),
        }],
        else_result: None,
    }
}

/// NULL, or what [`nullify`] makes.
fn is_null_like(e: &Expr) -> bool {
    match e {
        Expr::Case {
            conditions,
            else_result,
            ..
        } => {
            conditions.iter().all(|c| is_null(&c.result))
                && else_result.as_deref().is_none_or(is_null)
        }
        other => is_null(other),
    }
}

/// The rewritten SQL, or `None` when nothing needed rewriting.
pub fn rewrite(sql: &str) -> Option<String> {
    let lower = sql.to_ascii_lowercase();
    if !ALWAYS_EMPTY.iter().any(|t| lower.contains(t)) && !lower.contains("escape") {
        return None;
    }
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).ok()?;
    let mut changed = false;
    let _ = visit_expressions_mut(&mut statements, |e| {
        // What nullify() made: one `WHEN $n IS NULL … THEN NULL`, no ELSE.
        let already = matches!(e, Expr::Case { conditions, else_result: None, .. }
            if conditions.len() == 1 && is_null(&conditions[0].result)
                && matches!(conditions[0].condition, Expr::IsNull(_) | Expr::BinaryOp { .. }));
        let replace = match e {
            Expr::Subquery(q) => {
                let text = q.to_string().to_ascii_lowercase();
                ALWAYS_EMPTY.iter().any(|t| text.contains(t))
            }
            Expr::Case {
                conditions,
                else_result,
                ..
            } => {
                !already
                    && conditions.iter().all(|c| is_null_like(&c.result))
                    && else_result.as_deref().is_none_or(is_null_like)
            }
            Expr::Like {
                negated,
                expr,
                pattern,
                escape_char: Some(esc),
                any: false,
            } => {
                if let Value::SingleQuotedString(c) = &esc.value
                    && c != "\\"
                    && c.chars().count() == 1
                {
                    let not = if *negated { "NOT " } else { "" };
                    let text = format!(
                        "{expr} {not}LIKE pg_like_escape({pattern}, '{}')",
                        c.replace('\'', "''")
                    );
                    if let Ok(new) = Parser::new(&PostgreSqlDialect {})
                        .try_with_sql(&text)
                        .and_then(|mut p| p.parse_expr())
                    {
                        *e = new;
                        changed = true;
                    }
                }
                false
            }
            _ => false,
        };
        if replace {
            *e = nullify(e);
            changed = true;
        }
        ControlFlow::<()>::Continue(())
    });
    changed.then(|| {
        statements
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn always_null_catalog_subqueries_become_null() {
        let sql = "SELECT a.attname, CASE WHEN a.atthasdef THEN (SELECT pg_get_expr(d.adbin, d.adrelid) \
                   FROM pg_catalog.pg_attrdef d WHERE d.adrelid = a.attrelid) ELSE NULL END AS \"default\", \
                   CASE WHEN (a.attcollation <> $1 AND (SELECT t.typcollation FROM pg_catalog.pg_type t \
                   WHERE t.oid = a.atttypid) <> a.attcollation) THEN (SELECT c.collname FROM \
                   pg_catalog.pg_collation c WHERE c.oid = a.attcollation) ELSE NULL END AS collation \
                   FROM pg_catalog.pg_attribute a WHERE a.attrelid = $2";
        let out = rewrite(sql).unwrap();
        assert!(
            !out.contains("pg_attrdef") && !out.contains("pg_collation"),
            "{out}"
        );
        assert!(
            !out.contains("pg_type"),
            "the CASE went away with its condition: {out}"
        );
        assert!(
            out.contains("$2") && out.contains("NULL AS \"default\""),
            "{out}"
        );
        assert!(out.contains("$1 IS NULL"), "parameters are kept: {out}");
        assert_eq!(rewrite("SELECT * FROM marts.liquidity_vs_risk"), None);
        let out = rewrite(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE $1::VARCHAR || '%' ESCAPE '/'",
        )
        .unwrap();
        assert!(
            out.contains("NOT LIKE pg_like_escape($1::VARCHAR || '%', '/')")
                && !out.contains("ESCAPE"),
            "{out}"
        );
    }
}
