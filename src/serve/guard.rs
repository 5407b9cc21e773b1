//! The read-only guard: what a client may run, decided on the SQL before anything is planned.
//!
//! 1. **Size and shape**: a statement over [`MAX_BYTES`] is refused (54000); one with more than
//!    [`MAX_OPERATORS`] operators or [`MAX_LIST_ITEMS`] list items, or nested deeper than the
//!    parser's limit, is refused as too complex (54001) — counted on tokens, before any tree is
//!    built, so no input can exhaust the stack.
//! 2. **Parse with the service's own parser** (datafusion-postgres' `PostgresCompatibilityParser`,
//!    after this server's catalog rewrites): what it cannot parse is refused (42601), never
//!    passed on.
//! 3. **Every statement checked**: queries (`SELECT`, `WITH`, `VALUES`, `TABLE`), `EXPLAIN` of a
//!    query, `SHOW`, `SET`/`RESET` of allowed variables ([`super::settings`]), transaction control
//!    and cursors pass; everything else — DDL, DML, `COPY`, `SELECT INTO`, data-modifying CTEs,
//!    `PREPARE`, `SET ROLE`, engine settings — is refused with 42501.
//!
//! Behind it, [`super::readonly`] checks the plan DataFusion would run and [`super::store`]
//! gives the engine no writable or non-lake storage: three walls, each enough on its own.

use datafusion::sql::sqlparser::ast::{SetExpr, Statement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::ParserError;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;

/// Longest statement accepted, in bytes.
pub const MAX_BYTES: usize = 1 << 20;
/// Most operators (arithmetic, comparison, `AND`/`OR`/`NOT`, set operations, `CASE`, casts) in
/// one statement.
pub const MAX_OPERATORS: usize = 1_000;
/// Most list items (commas) in one statement.
pub const MAX_LIST_ITEMS: usize = 30_000;

/// Words a read-only statement may start with (used only to word the refusal of a statement
/// that does not parse: these get 42601, anything else 42501).
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

/// Why a statement is refused: its SQLSTATE and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// SQLSTATE: 42501 not allowed, 42601 syntax, 54000 too long, 54001 too complex.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
}

impl Refusal {
    fn denied(message: String) -> Self {
        Self {
            code: "42501",
            message,
        }
    }
}

/// The guard (holds the parser the query service uses).
#[derive(Debug, Default)]
pub struct Guard {
    parser: PostgresCompatibilityParser,
}

impl Guard {
    /// A guard.
    pub fn new() -> Self {
        Self::default()
    }

    /// The SQL to run for `sql` (after this server's catalog rewrites), or why it is refused.
    pub fn admit(&self, sql: &str) -> Result<String, Refusal> {
        let tokens = limits(sql)?;
        let rewritten = super::rewrite::rewrite(sql).unwrap_or_else(|| sql.to_string());
        let statements = self.parser.parse(&rewritten).map_err(|e| match e {
            ParserError::RecursionLimitExceeded => Refusal {
                code: "54001",
                message: "statement is too complex: nested too deeply".into(),
            },
            // Unparseable and not even starting like a read (`CREATE EXTERNAL TABLE`, `DO $$…`,
            // `INSTALL httpfs`): say it is not allowed rather than how to fix its syntax.
            other => match first_words(&tokens).find(|w| !ALLOWED_FIRST.contains(&w.as_str())) {
                Some(word) => Refusal::denied(denied(&word)),
                None => Refusal {
                    code: "42601",
                    message: format!("syntax error: {other}"),
                },
            },
        })?;
        for s in &statements {
            check_statement(s).map_err(Refusal::denied)?;
        }
        Ok(rewritten)
    }
}

/// The first word of each `;`-separated statement, upper-cased (for statements that do not parse).
fn first_words(tokens: &[Token]) -> impl Iterator<Item = String> + '_ {
    tokens
        .split(|t| *t == Token::SemiColon)
        .filter_map(|statement| {
            statement
                .iter()
                .find(|t| !matches!(t, Token::Whitespace(_) | Token::LParen))
        })
        .map(|t| match t {
            Token::Word(w) => w.value.to_uppercase(),
            other => other.to_string(),
        })
}

/// Size and operator counts, on tokens (no recursion); the tokens for later use.
fn limits(sql: &str) -> Result<Vec<Token>, Refusal> {
    if sql.len() > MAX_BYTES {
        return Err(Refusal {
            code: "54000",
            message: format!(
                "statement is too long: {} bytes, the limit is {MAX_BYTES}",
                sql.len()
            ),
        });
    }
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize()
        .map_err(|e| Refusal {
            code: "42601",
            message: format!("syntax error: {e}"),
        })?;
    let (mut operators, mut items) = (0usize, 0usize);
    for t in &tokens {
        match t {
            Token::Comma => items += 1,
            Token::Word(w)
                if matches!(
                    w.keyword,
                    Keyword::AND
                        | Keyword::OR
                        | Keyword::NOT
                        | Keyword::UNION
                        | Keyword::INTERSECT
                        | Keyword::EXCEPT
                        | Keyword::CASE
                ) =>
            {
                operators += 1
            }
            Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::StringConcat
            | Token::Eq
            | Token::DoubleEq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::Caret
            | Token::Ampersand
            | Token::Pipe
            | Token::ShiftLeft
            | Token::ShiftRight
            | Token::DoubleColon => operators += 1,
            _ => {}
        }
    }
    let too_complex = |what: String| Refusal {
        code: "54001",
        message: format!("statement is too complex: {what}"),
    };
    if operators > MAX_OPERATORS {
        return Err(too_complex(format!(
            "{operators} operators, the limit is {MAX_OPERATORS}"
        )));
    }
    if items > MAX_LIST_ITEMS {
        return Err(too_complex(format!(
            "{items} list items, the limit is {MAX_LIST_ITEMS}"
        )));
    }
    Ok(tokens)
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
        | Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Discard { .. }
        | Statement::Fetch { .. }
        | Statement::Close { .. }
        | Statement::Deallocate { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. } => Ok(()),
        Statement::Set(set) => super::settings::check_set(set),
        Statement::Reset(r) => super::settings::check_reset(&r.reset),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn check(sql: &str) -> Result<(), Refusal> {
        Guard::new().admit(sql).map(|_| ())
    }

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
            "RESET ALL",
            "DISCARD ALL",
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
            "SELECT 1; DROP TABLE t",
            "EXPLAIN ANALYZE INSERT INTO t VALUES (1)",
            "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
            "SELECT * INTO newtable FROM t",
            "/* sneaky */ TRUNCATE t",
            "ALTER TABLE t ADD COLUMN b int",
            "GRANT ALL ON t TO bob",
            "VACUUM",
            "PREPARE p AS INSERT INTO t VALUES (1)",
            "SET datafusion.execution.target_partitions = 1",
            "SET ROLE postgres",
        ] {
            let e = check(sql).expect_err(sql);
            assert_eq!(e.code, "42501", "{sql}: {e:?}");
            assert!(e.message.starts_with("permission denied"), "{sql}: {e:?}");
        }
    }

    #[test]
    fn what_cannot_be_parsed_is_refused_not_passed() {
        for sql in [
            "CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'",
            "DO $$ BEGIN DELETE FROM t; END $$",
            "SELECT 1; INSTALL httpfs",
        ] {
            assert_eq!(check(sql).unwrap_err().code, "42501", "{sql}");
        }
        for sql in [
            "SELECT 'unterminated",
            "SELECT 1 /* unclosed",
            "\u{FF24}\u{FF32}\u{FF2F}\u{FF30} TABLE t",
            "DR\u{200B}OP TABLE t",
            "SELECT (1 +",
        ] {
            let e = check(sql).expect_err(sql);
            assert!(["42601", "42501"].contains(&e.code), "{sql}: {e:?}");
        }
    }

    #[test]
    fn size_and_complexity_limits() {
        let long = format!("SELECT '{}'", "x".repeat(MAX_BYTES));
        assert_eq!(check(&long).unwrap_err().code, "54000");
        let sum = format!("SELECT 1{}", "+1".repeat(MAX_OPERATORS + 1));
        assert_eq!(check(&sum).unwrap_err().code, "54001");
        let ok = format!("SELECT 1{}", "+1".repeat(MAX_OPERATORS - 1));
        assert_eq!(check(&ok), Ok(()));
        let list = format!(
            "SELECT 1 WHERE 1 IN ({})",
            vec!["1"; MAX_LIST_ITEMS + 2].join(",")
        );
        assert_eq!(check(&list).unwrap_err().code, "54001");
        let deep = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
        assert_eq!(check(&deep).unwrap_err().code, "54001");
    }
}
