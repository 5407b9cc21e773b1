//! Dependencies from the SQL itself, and the build order they imply.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{ObjectName, Statement, visit_relations};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use super::{Model, ModelError};
use crate::lake::TableName;

/// 1-based line of the first occurrence of `needle` (case-insensitive) in `text`.
pub fn line_of(text: &str, needle: &str) -> usize {
    let lower = text.to_ascii_lowercase();
    lower
        .find(&needle.to_ascii_lowercase())
        .map(|pos| lower[..pos].matches('\n').count() + 1)
        .unwrap_or(1)
}

/// A model's statements; a syntax error names the line of the token the parser stopped at (the
/// last line when the statement ended too early).
fn parse(model: &Model) -> Result<Vec<Statement>, ModelError> {
    let invalid = |line: u64, message: String| ModelError::Invalid {
        path: model.path.clone(),
        line: (line as usize).max(1),
        message: format!("SQL syntax error: {message}"),
    };
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, &model.sql)
        .tokenize_with_location()
        .map_err(|e| invalid(e.location.line, e.to_string()))?;
    let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
    parser.parse_statements().map_err(|e| {
        let at = parser.peek_token_ref();
        let line = if at.token == Token::EOF {
            model.sql.trim_end().lines().count() as u64
        } else {
            at.span.start.line
        };
        invalid(line, e.to_string())
    })
}

/// The lake tables (`staging.x`, `marts.y`, `meta.z`) a model's SQL reads.
pub fn references(model: &Model) -> Result<Vec<TableName>, ModelError> {
    let statements = parse(model)?;
    if statements.len() != 1 {
        return Err(ModelError::Invalid {
            path: model.path.clone(),
            line: 1,
            message: format!(
                "a model is one SELECT statement, found {}",
                statements.len()
            ),
        });
    }
    let mut refs = BTreeSet::new();
    let _ = visit_relations(&statements, |name| {
        if let [schema, table] = name_parts(name).as_slice() {
            let zone = match schema.as_str() {
                "staging" => Some(crate::lake::Zone::Staging),
                "marts" => Some(crate::lake::Zone::Marts),
                "meta" => Some(crate::lake::Zone::Meta),
                "seeds" => Some(crate::lake::Zone::Seeds),
                _ => None,
            };
            if let Some(zone) = zone {
                refs.insert(TableName {
                    zone,
                    name: table.clone(),
                });
            }
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(refs.into_iter().collect())
}

/// A relation's name, part by part, unquoted and lowercased.
fn name_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| p.to_string().trim_matches('"').to_ascii_lowercase())
        .collect()
}

/// Every relation a SQL condition names, lowercased as written (`seeds.asset_roles`, or a bare
/// name such as a CTE's); `None` when the condition does not parse.
pub(super) fn relations_in_condition(condition: &str) -> Option<Vec<String>> {
    let sql = format!("SELECT 1 WHERE {condition}");
    let statements = Parser::parse_sql(&GenericDialect {}, &sql).ok()?;
    let mut out = Vec::new();
    let _ = visit_relations(&statements, |name| {
        out.push(name_parts(name).join("."));
        ControlFlow::<()>::Continue(())
    });
    Some(out)
}

/// Orders models so each comes after the models it reads. `existing` are the lake's tables and
/// views: a reference to something that is neither existing nor a model is an error with
/// file:line, and so is a cycle (named in full).
pub fn order(
    models: &[Model],
    existing: &BTreeSet<TableName>,
) -> Result<Vec<(usize, Vec<TableName>)>, ModelError> {
    let by_name: BTreeMap<&TableName, usize> = models
        .iter()
        .enumerate()
        .map(|(i, m)| (&m.name, i))
        .collect();
    let mut deps: Vec<Vec<usize>> = Vec::with_capacity(models.len());
    let mut all_refs = Vec::with_capacity(models.len());
    for m in models {
        let refs = references(m)?;
        let mut d = Vec::new();
        for r in &refs {
            if let Some(i) = by_name.get(r) {
                d.push(*i);
            } else if !existing.contains(r) {
                return Err(ModelError::Invalid {
                    path: m.path.clone(),
                    line: line_of(&m.sql, &r.to_string()),
                    message: format!(
                        "{r} is neither a lake table nor a model (ingest its source first, or add sql/{}/{}.sql)",
                        r.zone.as_str(),
                        r.name
                    ),
                });
            }
        }
        deps.push(d);
        all_refs.push(refs);
    }
    // Depth-first topological sort with an explicit path for cycle reports.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(
        i: usize,
        deps: &[Vec<usize>],
        marks: &mut [Mark],
        path: &mut Vec<usize>,
        out: &mut Vec<usize>,
        models: &[Model],
    ) -> Result<(), ModelError> {
        match marks[i] {
            Mark::Done => return Ok(()),
            Mark::Active => {
                let start = path.iter().position(|p| *p == i).unwrap_or(0);
                let mut cycle: Vec<String> = path[start..]
                    .iter()
                    .map(|p| models[*p].name.to_string())
                    .collect();
                cycle.push(models[i].name.to_string());
                return Err(ModelError::Cycle { cycle });
            }
            Mark::New => {}
        }
        marks[i] = Mark::Active;
        path.push(i);
        for d in &deps[i] {
            visit(*d, deps, marks, path, out, models)?;
        }
        path.pop();
        marks[i] = Mark::Done;
        out.push(i);
        Ok(())
    }
    let mut marks = vec![Mark::New; models.len()];
    let mut out = Vec::new();
    for i in 0..models.len() {
        visit(i, &deps, &mut marks, &mut Vec::new(), &mut out, models)?;
    }
    Ok(out.into_iter().map(|i| (i, all_refs[i].clone())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn model(name: &str, sql: &str) -> Model {
        Model::parse(
            TableName::marts(name),
            Path::new(&format!("sql/marts/{name}.sql")),
            sql,
        )
        .unwrap()
    }

    #[test]
    fn order_follows_references_and_ignores_ctes() {
        let a = model(
            "a",
            "WITH x AS (SELECT * FROM staging.prices_daily) SELECT * FROM x",
        );
        let b = model("b", "SELECT * FROM marts.a JOIN marts.c USING (d)");
        let c = model("c", "SELECT * FROM marts.a");
        let existing = BTreeSet::from([TableName::staging("prices_daily")]);
        let order = order(&[b.clone(), c.clone(), a.clone()], &existing).unwrap();
        let names: Vec<String> = order
            .iter()
            .map(|(i, _)| [&b, &c, &a][*i].name.to_string())
            .collect();
        assert_eq!(names, vec!["marts.a", "marts.c", "marts.b"]);
    }

    #[test]
    fn cycles_unknown_tables_and_syntax_errors() {
        let a = model("a", "SELECT * FROM marts.b");
        let b = model("b", "SELECT * FROM marts.a");
        let err = order(&[a, b], &BTreeSet::new()).unwrap_err().to_string();
        assert_eq!(err, "dependency cycle: marts.a -> marts.b -> marts.a");
        let u = model("u", "-- description: x\nSELECT *\nFROM staging.nope");
        let err = order(&[u], &BTreeSet::new()).unwrap_err().to_string();
        assert!(
            err.starts_with("sql/marts/u.sql:3: staging.nope is neither"),
            "{err}"
        );
        let s = model("s", "SELECT 1\nFROM staging.x\nWHERE");
        let err = order(&[s], &BTreeSet::new()).unwrap_err().to_string();
        assert!(
            err.starts_with("sql/marts/s.sql:3: SQL syntax error"),
            "{err}"
        );
        // The line of the token the parser stopped at, and a tokenizer error's own line.
        for (sql, line) in [
            (
                "SELECT a,\n  b\nFROM staging.x\nWHERE a = = 1\nORDER BY a",
                4,
            ),
            ("SELECT a\nFROM staging.x\nGROUP a", 3),
            ("SELECT a\nFROM staging.x\nWHERE b = 'open", 3),
        ] {
            let err = order(&[model("s", sql)], &BTreeSet::new())
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(&format!("sql/marts/s.sql:{line}: SQL syntax error")),
                "{sql:?}: {err}"
            );
        }
    }
}
