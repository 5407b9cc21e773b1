//! The read-only guard: what a client may run. Queries (`SELECT`, `WITH`, `VALUES`, `TABLE`),
//! `EXPLAIN` of a query, `SHOW`, `SET`/`RESET`, transaction control and cursors are allowed;
//! everything else — DDL, DML, `COPY`, `CREATE EXTERNAL TABLE`, data-modifying CTEs — is refused
//! with SQLSTATE 42501 before it is planned, so nothing can change the lake or read host files.

use datafusion::sql::sqlparser::ast::{SetExpr, Statement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// Statement keywords a read-only client may start with.
const ALLOWED_FIRST: &[&str] = &[
    "SELECT",
    "WITH",
    "VALUES",
    "TABLE",
    "EXPLAIN",
    "SHOW",
    "SET",
    "RESET",
    "BEGIN",
    "START",
    "COMMIT",
    "END",
    "ROLLBACK",
    "ABORT",
    "DISCARD",
    "DECLARE",
    "FETCH",
    "MOVE",
    "CLOSE",
    "DEALLOCATE",
    "SAVEPOINT",
    "RELEASE",
];

/// `Err(why)` when `sql` would do anything but read.
pub fn check(sql: &str) -> Result<(), String> {
    let stripped = strip_leading_comments(sql);
    let first = stripped
        .trim_start_matches('(')
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    if first.is_empty() {
        return Ok(());
    }
    if !ALLOWED_FIRST.contains(&first.as_str()) {
        return Err(denied(&first));
    }
    // A statement that parses is checked in full (several statements, EXPLAIN ANALYZE INSERT,
    // WITH … INSERT); one that does not parse fails later with its syntax error.
    if let Ok(statements) = Parser::parse_sql(&PostgreSqlDialect {}, sql) {
        for s in &statements {
            check_statement(s)?;
        }
    }
    Ok(())
}

fn denied(what: &str) -> String {
    format!(
        "permission denied: this server is read-only ({what} is not allowed; only SELECT, \
         EXPLAIN, SHOW and SET are)"
    )
}

fn check_statement(s: &Statement) -> Result<(), String> {
    match s {
        Statement::Query(q) => check_query(q),
        Statement::Explain { statement, .. } => check_statement(statement),
        Statement::Declare { stmts } => {
            for d in stmts {
                if let Some(q) = &d.for_query {
                    check_query(q)?;
                }
            }
            Ok(())
        }
        Statement::ShowVariable { .. }
        | Statement::ShowVariables { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowSchemas { .. }
        | Statement::ShowViews { .. }
        | Statement::ShowFunctions { .. }
        | Statement::ShowDatabases { .. }
        | Statement::ShowCatalogs { .. }
        | Statement::Set(_)
        | Statement::Reset { .. }
        | Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Discard { .. }
        | Statement::Fetch { .. }
        | Statement::Close { .. }
        | Statement::Deallocate { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. } => Ok(()),
        other => Err(denied(
            other
                .to_string()
                .split_whitespace()
                .next()
                .unwrap_or("this statement"),
        )),
    }
}

fn check_query(q: &datafusion::sql::sqlparser::ast::Query) -> Result<(), String> {
    if let Some(with) = &q.with {
        for cte in &with.cte_tables {
            check_query(&cte.query)?;
        }
    }
    check_set_expr(&q.body)
}

fn check_set_expr(e: &SetExpr) -> Result<(), String> {
    match e {
        SetExpr::Select(s) if s.into.is_some() => Err(denied("SELECT INTO")),
        SetExpr::Select(_) | SetExpr::Values(_) | SetExpr::Table(_) => Ok(()),
        SetExpr::Query(q) => check_query(q),
        SetExpr::SetOperation { left, right, .. } => {
            check_set_expr(left)?;
            check_set_expr(right)
        }
        _ => Err(denied("a data-modifying statement")),
    }
}

fn strip_leading_comments(sql: &str) -> &str {
    let mut s = sql.trim_start();
    loop {
        if let Some(rest) = s.strip_prefix("--") {
            s = rest.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            return s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn reads_pass() {
        for sql in [
            "SELECT * FROM marts.liquidity_vs_risk",
            "  -- dashboard\n/* x */ select 1",
            "WITH a AS (SELECT 1) SELECT * FROM a",
            "(SELECT 1) UNION ALL (SELECT 2)",
            "EXPLAIN SELECT 1",
            "SHOW server_version",
            "SET statement_timeout = '5s'",
            "BEGIN; SELECT 1; COMMIT",
            "SAVEPOINT _pg3_1",
            "RELEASE SAVEPOINT _pg3_1",
            "DECLARE c CURSOR FOR SELECT 1",
            "select pg_catalog.version()",
            "",
        ] {
            assert_eq!(check(sql), Ok(()), "{sql}");
        }
    }

    #[test]
    fn writes_and_file_access_are_refused() {
        for sql in [
            "CREATE TABLE t (a int)",
            "INSERT INTO marts.liquidity_vs_risk SELECT * FROM marts.liquidity_vs_risk",
            "insert into t values (1)",
            "UPDATE t SET a = 1",
            "DELETE FROM t",
            "DROP TABLE marts.liquidity_vs_risk",
            "COPY marts.liquidity_vs_risk TO '/tmp/x.csv'",
            "CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'",
            "SELECT 1; DROP TABLE t",
            "EXPLAIN ANALYZE INSERT INTO t VALUES (1)",
            "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
            "SELECT * INTO newtable FROM t",
            "/* sneaky */ TRUNCATE t",
            "ALTER TABLE t ADD COLUMN b int",
            "GRANT ALL ON t TO bob",
            "VACUUM",
        ] {
            let e = check(sql).expect_err(sql);
            assert!(e.starts_with("permission denied"), "{sql}: {e}");
        }
    }
}
