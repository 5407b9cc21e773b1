//! Hostile SQL against `macrolake serve`, sent by a real client (tokio-postgres) over both the
//! simple and the extended protocol. Proves that:
//!
//! - every statement that writes, defines, touches files or changes a non-allow-listed setting —
//!   in any spelling: case, comments, parentheses, CTEs, EXPLAIN, several statements, PREPARE —
//!   is refused with SQLSTATE 42501;
//! - what the guard cannot parse (unicode look-alikes, invisible characters, unbalanced quotes,
//!   comments and dollar quotes, garbage) is refused with 42601 or 42501, never run;
//! - a statement over 1 MiB gets 54000, one with thousands of operators 54001 (or 42601/54000),
//!   and none of them crashes the server: a dashboard query answers after each one;
//! - harmless session settings, comments, EXPLAIN and SHOW still work;
//! - afterwards every `_delta_log` file of the lake is byte-identical, no file appeared anywhere,
//!   the shared query context (tables, settings) is unchanged, the server process is alive, and
//!   no answer ever contained a line of `/etc/passwd`;
//! - a `SET` of an allowed variable changes only the connection that sent it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, SimpleQueryMessage};

use super::common::*;
use super::serve::{PASSWORD, connect, start};

/// Longest any one statement (or the connection to send it) may take to be answered.
const ANSWER_WITHIN: Duration = Duration::from_secs(60);

/// A lake with every mart, built once for the tests in this file (nothing here writes to it).
fn lake() -> &'static Path {
    static LAKE: OnceLock<PathBuf> = OnceLock::new();
    LAKE.get_or_init(|| nightly_lake(&tempfile::tempdir().unwrap().keep()))
}

/// What the server must answer to a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Writes, defines, touches files or changes a guarded setting: 42501.
    Refused,
    /// The guard cannot parse it: 42601 (syntax error) or 42501, never run.
    Unparsable,
    /// Over 1 MiB: 54000 (program_limit_exceeded).
    TooBig,
    /// Thousands of operators, nesting levels or list items: 54001, 42601 or 54000.
    TooComplex,
    /// Names a host file or a function that would read one: any error (DataFusion has no such
    /// table or function), as long as no file content comes back.
    Fails,
    /// Harmless: must succeed.
    Allowed,
}

impl Expect {
    fn accepts(self, code: &SqlState) -> bool {
        match self {
            Expect::Refused => *code == SqlState::INSUFFICIENT_PRIVILEGE,
            Expect::Unparsable => {
                *code == SqlState::SYNTAX_ERROR || *code == SqlState::INSUFFICIENT_PRIVILEGE
            }
            Expect::TooBig => *code == SqlState::PROGRAM_LIMIT_EXCEEDED,
            Expect::TooComplex => {
                *code == SqlState::STATEMENT_TOO_COMPLEX
                    || *code == SqlState::SYNTAX_ERROR
                    || *code == SqlState::PROGRAM_LIMIT_EXCEEDED
            }
            Expect::Fails => true,
            Expect::Allowed => false,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Expect::Refused => "42501",
            Expect::Unparsable => "42601 or 42501",
            Expect::TooBig => "54000",
            Expect::TooComplex => "54001, 42601 or 54000",
            Expect::Fails => "an error",
            Expect::Allowed => "success",
        }
    }
}

/// One hostile (or harmless) statement and what the server must answer.
struct Case {
    sql: String,
    expect: Expect,
    /// Several statements in one string. The extended protocol takes one statement per Parse
    /// (PostgreSQL itself refuses several), so there any error is accepted — only success is not.
    multi: bool,
}

fn one(sql: impl Into<String>, expect: Expect) -> Case {
    Case {
        sql: sql.into(),
        expect,
        multi: false,
    }
}

fn multi(sql: impl Into<String>, expect: Expect) -> Case {
    Case {
        sql: sql.into(),
        expect,
        multi: true,
    }
}

/// `SELECT 1+1+…` with `terms` terms.
fn plus_chain(terms: usize) -> String {
    format!("SELECT {}", vec!["1"; terms].join("+"))
}

/// `SELECT ((…(1)…))` nested `depth` times.
fn nested_parens(depth: usize) -> String {
    format!("SELECT {}1{}", "(".repeat(depth), ")".repeat(depth))
}

/// A count over the product table filtered by `n` comparisons joined with `op`.
fn predicate_chain(n: usize, op: &str) -> String {
    let terms: Vec<String> = (0..n)
        .map(|i| format!("net_liquidity_musd > {i}"))
        .collect();
    format!(
        "SELECT count(*) FROM marts.liquidity_vs_risk WHERE {}",
        terms.join(&format!(" {op} "))
    )
}

/// A count over the product table filtered by an IN list of `n` numbers.
fn in_list(n: usize) -> String {
    let items: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    format!(
        "SELECT count(*) FROM marts.liquidity_vs_risk WHERE net_liquidity_musd IN ({})",
        items.join(", ")
    )
}

/// Every statement of the suite; files the statements try to create are under `out`.
#[rustfmt::skip] // a table: one statement a line
fn cases(out: &Path) -> Vec<Case> {
    use Expect::*;
    let out = out.display();
    vec![
        // ---- Allowed: harmless settings, comments, EXPLAIN, SHOW, literals that look hostile.
        one("SET statement_timeout = '5s'", Allowed),
        one("SET search_path = public", Allowed),
        one("SET client_encoding = 'UTF8'", Allowed),
        one("SET DateStyle = 'ISO'", Allowed),
        one("SET TimeZone = 'UTC'", Allowed),
        one("SET application_name = 'x'", Allowed),
        one("SET extra_float_digits = 3", Allowed),
        one("RESET ALL", Allowed),
        one("DISCARD ALL", Allowed),
        one("/* dashboard */ SELECT count(*) FROM marts.liquidity_vs_risk", Allowed),
        one("-- dashboard\nSELECT max(date) FROM marts.liquidity_vs_risk", Allowed),
        one(
            "SELECT date FROM marts.liquidity_vs_risk /* ; DROP TABLE marts.liquidity_vs_risk */ \
             ORDER BY date DESC LIMIT 1",
            Allowed,
        ),
        one(
            "select count(*) from marts.liquidity_vs_risk where tga_source = 'dts' -- ; delete from marts.co_highs",
            Allowed,
        ),
        one("EXPLAIN SELECT count(*) FROM marts.liquidity_vs_risk", Allowed),
        one("SHOW server_version", Allowed),
        one("SELECT 'DROP TABLE marts.liquidity_vs_risk; --' AS s", Allowed),
        one("SELECT $$ ; DROP TABLE marts.co_highs $$ AS s", Allowed),
        one(plus_chain(100), Allowed),
        one(in_list(200), Allowed),
        one(nested_parens(10), Allowed),
        // ---- Refused: DDL in every spelling.
        one("CREATE TABLE marts.x (a int)", Refused),
        one("CREATE TEMP TABLE t (a int)", Refused),
        one("CREATE TEMPORARY TABLE t AS SELECT * FROM marts.co_highs", Refused),
        one("CREATE OR REPLACE TABLE marts.liquidity_vs_risk AS SELECT 1 AS a", Refused),
        one("CREATE TABLE IF NOT EXISTS staging.x AS SELECT 1 AS a", Refused),
        one("CREATE UNLOGGED TABLE t (a int)", Refused),
        one("create table t as select * from marts.liquidity_vs_risk", Refused),
        one("/* ddl */ CrEaTe TaBlE marts.y (a int)", Refused),
        one("CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'", Refused),
        one(
            "CREATE EXTERNAL TABLE q (line varchar) STORED AS CSV LOCATION '/etc/' \
             OPTIONS ('format.has_header' 'false')",
            Refused,
        ),
        one("CREATE UNBOUNDED EXTERNAL TABLE u STORED AS CSV LOCATION '/dev/zero'", Refused),
        one(format!("CREATE EXTERNAL TABLE o STORED AS PARQUET LOCATION '{out}/ext/'"), Refused),
        one("CREATE VIEW marts.v AS SELECT 1 AS a", Refused),
        one("CREATE OR REPLACE VIEW marts.liquidity_vs_risk AS SELECT 1 AS a", Refused),
        one("CREATE TEMP VIEW v AS SELECT * FROM marts.co_highs", Refused),
        one("CREATE MATERIALIZED VIEW mv AS SELECT 1 AS a", Refused),
        one("CREATE SCHEMA evil", Refused),
        one("CREATE SCHEMA IF NOT EXISTS marts", Refused),
        one("CREATE DATABASE evil", Refused),
        one("CREATE FUNCTION f() RETURNS int AS 'SELECT 1' LANGUAGE sql", Refused),
        one(
            "CREATE OR REPLACE FUNCTION version() RETURNS text AS $$ SELECT 'pwned' $$ LANGUAGE sql",
            Refused,
        ),
        one("CREATE INDEX i ON marts.co_highs (x)", Refused),
        one("CREATE ROLE evil SUPERUSER", Refused),
        one("CREATE EXTENSION file_fdw", Refused),
        // ---- Refused: DML in every spelling.
        one("INSERT INTO marts.co_highs SELECT * FROM marts.co_highs", Refused),
        one("insert into marts.co_highs select * from marts.co_highs", Refused),
        one("InSeRt InTo marts.co_highs SeLeCt * FrOm marts.co_highs", Refused),
        one("/* harmless */ INSERT INTO marts.co_highs SELECT * FROM marts.co_highs", Refused),
        one("-- harmless\nINSERT INTO marts.co_highs SELECT * FROM marts.co_highs", Refused),
        one("/* a */ -- b\n/* c */ DELETE FROM marts.co_highs", Refused),
        one("(INSERT INTO marts.co_highs SELECT * FROM marts.co_highs)", Refused),
        one("((DELETE FROM marts.co_highs))", Refused),
        one(
            "WITH x AS (INSERT INTO marts.co_highs SELECT * FROM marts.co_highs RETURNING *) SELECT * FROM x",
            Refused,
        ),
        one("WITH x AS (DELETE FROM marts.co_highs RETURNING *) SELECT count(*) FROM x", Refused),
        one(
            "WITH x AS (UPDATE marts.liquidity_vs_risk SET net_liquidity_musd = 0 RETURNING *) SELECT 1",
            Refused,
        ),
        one(
            "WITH a AS (SELECT 1) INSERT INTO marts.co_highs SELECT * FROM marts.co_highs",
            Refused,
        ),
        one("WITH a AS (SELECT * FROM marts.co_highs) DELETE FROM marts.co_highs", Refused),
        one("INSERT INTO meta.runs (run_id) VALUES ('x')", Refused),
        one("INSERT INTO marts.co_highs DEFAULT VALUES", Refused),
        one("INSERT OVERWRITE TABLE marts.co_highs SELECT * FROM marts.co_highs", Refused),
        one("UPDATE marts.liquidity_vs_risk SET net_liquidity_musd = 0", Refused),
        one("update marts.liquidity_vs_risk set divergence = true where true", Refused),
        one("DELETE FROM marts.liquidity_vs_risk", Refused),
        one("DELETE FROM meta.runs WHERE true", Refused),
        one(
            "MERGE INTO marts.co_highs t USING marts.co_highs s ON t.date = s.date WHEN MATCHED THEN DELETE",
            Refused,
        ),
        one("DROP TABLE marts.liquidity_vs_risk", Refused),
        one("drop table if exists marts.co_highs", Refused),
        one("DROP VIEW marts.liquidity_vs_risk", Refused),
        one("DROP SCHEMA marts CASCADE", Refused),
        one("DROP DATABASE macrolake", Refused),
        one("DROP FUNCTION version", Refused),
        one("TRUNCATE marts.co_highs", Refused),
        one("TRUNCATE TABLE meta.runs", Refused),
        one("ALTER TABLE marts.co_highs ADD COLUMN x int", Refused),
        one("ALTER TABLE marts.co_highs RENAME TO stolen", Refused),
        one("ALTER ROLE bi SUPERUSER", Refused),
        one("GRANT ALL ON ALL TABLES IN SCHEMA marts TO PUBLIC", Refused),
        one("REVOKE SELECT ON marts.co_highs FROM bi", Refused),
        one("COMMENT ON TABLE marts.co_highs IS 'pwned'", Refused),
        // ---- Refused: COPY and SELECT INTO.
        one(format!("COPY marts.co_highs TO '{out}/stolen.csv'"), Refused),
        one(
            format!("copy marts.liquidity_vs_risk to '{out}/stolen2.csv' (format csv)"),
            Refused,
        ),
        one("COPY (SELECT * FROM marts.co_highs) TO STDOUT", Refused),
        one("COPY (SELECT 1) TO STDOUT WITH (FORMAT csv)", Refused),
        one("COPY marts.co_highs FROM '/etc/passwd'", Refused),
        one("COPY marts.co_highs FROM STDIN", Refused),
        one(format!("COPY (SELECT 1) TO PROGRAM 'touch {out}/pwned'"), Refused),
        one("SELECT * INTO marts.stolen FROM marts.co_highs", Refused),
        one("SELECT 1 AS a INTO TEMP t", Refused),
        // ---- Refused: EXPLAIN of a write (ANALYZE would run it).
        one(
            "EXPLAIN ANALYZE INSERT INTO marts.co_highs SELECT * FROM marts.co_highs",
            Refused,
        ),
        one("EXPLAIN ANALYZE DELETE FROM marts.co_highs", Refused),
        one("EXPLAIN ANALYZE CREATE TABLE marts.z AS SELECT 1 AS a", Refused),
        one("EXPLAIN INSERT INTO marts.co_highs SELECT * FROM marts.co_highs", Refused),
        one("EXPLAIN UPDATE marts.liquidity_vs_risk SET net_liquidity_musd = 0", Refused),
        one("EXPLAIN VERBOSE DELETE FROM meta.runs", Refused),
        // ---- Refused: a write hidden behind a harmless first statement.
        multi("SELECT 1; DROP TABLE marts.liquidity_vs_risk", Refused),
        multi("SELECT 1;INSERT INTO marts.co_highs SELECT * FROM marts.co_highs", Refused),
        multi("SELECT 1; DELETE FROM marts.co_highs", Refused),
        multi("BEGIN; DROP TABLE marts.co_highs; COMMIT", Refused),
        multi("SELECT ';' ; DROP TABLE marts.co_highs", Refused),
        multi("SELECT 1 -- ;\n; DROP TABLE marts.co_highs", Refused),
        multi("TABLE marts.co_highs; TRUNCATE marts.co_highs", Refused),
        multi("VALUES (1); DELETE FROM marts.co_highs", Refused),
        multi("SELECT '\\'; DROP TABLE marts.co_highs; --'", Refused),
        multi("SELECT $$a$$; DROP TABLE marts.co_highs; SELECT $$b$$", Refused),
        multi("SHOW server_version; DROP TABLE marts.co_highs", Refused),
        multi("SET statement_timeout = '5s'; DELETE FROM meta.runs", Refused),
        multi(
            "BEGIN; SET datafusion.execution.target_partitions = 1; COMMIT",
            Refused,
        ),
        multi("BEGIN READ WRITE; DELETE FROM marts.co_highs; COMMIT", Refused),
        multi(
            "SELECT 1; CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'; SELECT * FROM p",
            Refused,
        ),
        // ---- Refused: PREPARE/EXECUTE, procedural code, maintenance, other engines' commands.
        one(
            "PREPARE w AS INSERT INTO marts.co_highs SELECT * FROM marts.co_highs",
            Refused,
        ),
        one("PREPARE d (date) AS DELETE FROM marts.co_highs WHERE date = $1", Refused),
        one("EXECUTE w", Refused),
        one("DO $$ BEGIN DELETE FROM marts.co_highs; END $$", Refused),
        one("CALL refresh_marts()", Refused),
        one("VACUUM", Refused),
        one("VACUUM FULL marts.co_highs", Refused),
        one("ANALYZE marts.co_highs", Refused),
        one("REFRESH MATERIALIZED VIEW marts.liquidity_vs_risk", Refused),
        one("LOAD 'httpfs'", Refused),
        one("INSTALL httpfs", Refused),
        one(format!("ATTACH '{out}/attached.db' AS evil"), Refused),
        // ---- Refused: settings that are not allow-listed (the query context is shared).
        one("SET datafusion.execution.target_partitions = 1", Refused),
        one("set datafusion.execution.target_partitions to 1", Refused),
        one("SET \"datafusion.execution.batch_size\" = 1", Refused),
        one("/* tune */ SET datafusion.execution.batch_size = 1", Refused),
        one("SET datafusion.catalog.information_schema = false", Refused),
        one("SET datafusion.runtime.memory_limit = '100G'", Refused),
        one("SET datafusion.sql_parser.dialect = 'MySQL'", Refused),
        one("SET SESSION datafusion.execution.batch_size = 1", Refused),
        one("SET LOCAL datafusion.execution.batch_size = 1", Refused),
        one("SET work_mem = '1GB'", Refused),
        one("SET session_replication_role = replica", Refused),
        one("SET ROLE postgres", Refused),
        one("SET SESSION AUTHORIZATION postgres", Refused),
        one("SET default_transaction_read_only = off", Refused),
        one("SET transaction_read_only = off", Refused),
        // ---- Writes and admin commands PostgreSQL's grammar in sqlparser may not know: refused
        // (42501) or unparsable (42601), never run.
        one("ALTER SYSTEM SET work_mem = '1GB'", Unparsable),
        one("CHECKPOINT", Unparsable),
        one("LOCK TABLE marts.co_highs IN ACCESS EXCLUSIVE MODE", Unparsable),
        one("REINDEX TABLE marts.co_highs", Unparsable),
        one("CLUSTER marts.co_highs", Unparsable),
        one("LISTEN evil", Unparsable),
        one("NOTIFY evil, 'payload'", Unparsable),
        one("SECURITY LABEL ON TABLE marts.co_highs IS 'x'", Unparsable),
        // ---- Unparsable: unicode tricks.
        one("ＤＲＯＰ TABLE marts.liquidity_vs_risk", Unparsable),
        one("DR\u{200B}OP TABLE marts.liquidity_vs_risk", Unparsable),
        one("D\u{0415}LETE FROM marts.co_highs", Unparsable),
        one("\u{202E}DROP TABLE marts.co_highs", Unparsable),
        one("SELECT 1 \u{202E}; DROP TABLE marts.co_highs", Unparsable),
        one("\u{FEFF}DELETE FROM marts.co_highs", Unparsable),
        one("ＳＥＬＥＣＴ 1; ＤＥＬＥＴＥ FROM marts.co_highs", Unparsable),
        one("\u{1F525} DROP TABLE marts.co_highs", Unparsable),
        one("SEL\u{00AD}ECT 1; DROP TABLE marts.co_highs", Unparsable),
        one("SELECT 1;\u{00A0}DROP TABLE marts.co_highs", Unparsable),
        // ---- Unparsable: unbalanced quotes, comments and dollar quotes; garbage.
        one("SELECT 'unclosed", Unparsable),
        one("SELECT \"unclosed", Unparsable),
        one("SELECT 1 /* unclosed", Unparsable),
        one("SELECT 1 /* /* nested */ ; DROP TABLE marts.co_highs", Unparsable),
        one("*/ DROP TABLE marts.co_highs", Unparsable),
        one("$$ ; DROP TABLE marts.co_highs $$", Unparsable),
        one("SELECT $x$ ; $y$; DROP TABLE marts.co_highs", Unparsable),
        one("SELECT $$ unterminated ; DROP TABLE marts.co_highs", Unparsable),
        one("'; DROP TABLE marts.co_highs; --", Unparsable),
        one("\"; DROP TABLE marts.co_highs; --", Unparsable),
        one(
            "SELECT 1 FROM marts.co_highs WHERE date = ''' ; DROP TABLE marts.co_highs; --",
            Unparsable,
        ),
        one("~!@#%^&*()_+{}|:<>?", Unparsable),
        one(")))(((", Unparsable),
        one("SELECT * FROM marts.liquidity_vs_risk WHERE", Unparsable),
        one("SELECT FROM WHERE GROUP BY", Unparsable),
        one(format!("\\copy marts.co_highs to '{out}/psql_copy.csv'"), Unparsable),
        one(format!("\\! touch {out}/shell"), Unparsable),
        one("DECLARE c CURSOR FOR DELETE FROM marts.co_highs RETURNING *", Unparsable),
        // ---- Fails: reading host files through a table name or a function.
        one("SELECT * FROM '/etc/passwd'", Fails),
        one("SELECT * FROM \"/etc/passwd\"", Fails),
        one("SELECT * FROM 'file:///etc/passwd'", Fails),
        one("SELECT * FROM read_csv('/etc/passwd')", Fails),
        one("SELECT * FROM parquet_scan('/etc/passwd')", Fails),
        one("SELECT pg_read_file('/etc/passwd')", Fails),
        one("SELECT * FROM pg_ls_dir('/')", Fails),
        one("SELECT lo_import('/etc/passwd')", Fails),
        // ---- TooBig: over 1 MiB.
        one(format!("SELECT 1 /* {} */", "x".repeat(1_100_000)), TooBig),
        one(format!("SELECT '{}' AS s", "a".repeat(2 * 1024 * 1024)), TooBig),
        one(
            format!(
                "SELECT count(*) FROM marts.liquidity_vs_risk WHERE tga_source = '{}'",
                "b".repeat(1_500_000)
            ),
            TooBig,
        ),
        one(format!("-- {}\nSELECT 1", "c".repeat(1_200_000)), TooBig),
        one(format!("SELECT 1{}", " ".repeat(1_100_000)), TooBig),
        // ---- TooComplex: thousands of operators, nesting levels or list items.
        one(plus_chain(5000), TooComplex),
        one(nested_parens(5000), TooComplex),
        one(predicate_chain(5000, "AND"), TooComplex),
        one(predicate_chain(5000, "OR"), TooComplex),
        one(in_list(50_000), TooComplex),
        one(
            format!(
                "SELECT * FROM {}SELECT 1 AS a{}",
                "(SELECT * FROM ".repeat(3000),
                ") s".repeat(3000)
            ),
            TooComplex,
        ),
        one(
            format!("SELECT {}1{}", "abs(".repeat(5000), ")".repeat(5000)),
            TooComplex,
        ),
        one(format!("SELECT {}true", "NOT ".repeat(5000)), TooComplex),
        one(format!("SELECT {}1", "- ".repeat(5000)), TooComplex),
        one(
            format!(
                "SELECT {}1{}",
                "CASE WHEN true THEN ".repeat(2000),
                " END".repeat(2000)
            ),
            TooComplex,
        ),
        one(
            (0..3000)
                .map(|i| format!("SELECT {i} AS a"))
                .collect::<Vec<_>>()
                .join(" UNION ALL "),
            TooComplex,
        ),
        one(
            format!("SELECT {}", vec!["'a'"; 5000].join(" || ")),
            TooComplex,
        ),
    ]
}

/// A statement for a message: its first 120 characters (escaped, so invisible characters show)
/// and, when longer, its size.
fn shown(sql: &str) -> String {
    let head: String = sql.chars().take(120).collect();
    if head.len() == sql.len() {
        format!("{head:?}")
    } else {
        format!("{head:?}… ({} bytes)", sql.len())
    }
}

/// At most 300 characters of `text`.
fn clip(text: &str) -> String {
    let head: String = text.chars().take(300).collect();
    if head.len() < text.len() {
        format!("{head}…")
    } else {
        head
    }
}

/// An error with its SQLSTATE and message (tokio-postgres' Display says only "db error").
fn err_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut text = format!("{} {}", db.code().code(), db.message());
            for extra in [db.detail(), db.hint()].into_iter().flatten() {
                text.push_str(" / ");
                text.push_str(extra);
            }
            text
        }
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// What one protocol answered.
enum Answer {
    /// Success, with each row's text columns joined.
    Rows(Vec<String>),
    /// An error.
    Error(tokio_postgres::Error),
    /// Nothing within [`ANSWER_WITHIN`].
    Silent,
}

impl Answer {
    /// Everything the server said, for the leak check.
    fn text(&self) -> String {
        match self {
            Answer::Rows(rows) => rows.join("\n"),
            Answer::Error(e) => err_text(e),
            Answer::Silent => String::new(),
        }
    }
}

async fn bi(addr: &str) -> Client {
    match tokio::time::timeout(ANSWER_WITHIN, connect(addr, "bi", Some(PASSWORD))).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => panic!("bi cannot log in: {}", err_text(&e)),
        Err(_) => panic!("bi cannot log in: no answer within {ANSWER_WITHIN:?}"),
    }
}

/// `sql` over the simple protocol.
async fn simple(c: &Client, sql: &str) -> Answer {
    match tokio::time::timeout(ANSWER_WITHIN, c.simple_query(sql)).await {
        Err(_) => Answer::Silent,
        Ok(Err(e)) => Answer::Error(e),
        Ok(Ok(messages)) => Answer::Rows(
            messages
                .iter()
                .filter_map(|m| match m {
                    SimpleQueryMessage::Row(r) => Some(
                        (0..r.len())
                            .map(|i| r.get(i).unwrap_or(""))
                            .collect::<Vec<_>>()
                            .join("|"),
                    ),
                    _ => None,
                })
                .collect(),
        ),
    }
}

/// `sql` over the extended protocol: Parse/Describe (`prepare`), then Bind/Execute (`query`);
/// a refusal may come at either step.
async fn extended(c: &Client, sql: &str) -> Answer {
    let run = async {
        let statement = c.prepare(sql).await?;
        let rows = c.query(&statement, &[]).await?;
        Ok::<_, tokio_postgres::Error>(rows)
    };
    match tokio::time::timeout(ANSWER_WITHIN, run).await {
        Err(_) => Answer::Silent,
        Ok(Err(e)) => Answer::Error(e),
        Ok(Ok(rows)) => Answer::Rows(
            rows.iter()
                .map(|row| {
                    (0..row.len())
                        .map(|i| {
                            row.try_get::<_, Option<String>>(i)
                                .ok()
                                .flatten()
                                .unwrap_or_default()
                        })
                        .collect::<Vec<_>>()
                        .join("|")
                })
                .collect(),
        ),
    }
}

/// Why `answer` breaks the contract for `case` over `protocol`, if it does.
fn judge(protocol: &str, case: &Case, answer: &Answer) -> Option<String> {
    let what = format!("[{protocol}] {}", shown(&case.sql));
    match (case.expect, answer) {
        (_, Answer::Silent) => Some(format!("{what}: no answer within {ANSWER_WITHIN:?}")),
        (Expect::Allowed, Answer::Rows(_)) => None,
        (Expect::Allowed, Answer::Error(e)) => Some(format!(
            "{what}: must succeed, failed with {}",
            clip(&err_text(e))
        )),
        (expect, Answer::Rows(rows)) => Some(format!(
            "{what}: must fail with {}, succeeded ({} row(s))",
            expect.describe(),
            rows.len()
        )),
        (_, Answer::Error(_)) if case.multi && protocol == "extended" => None,
        (expect, Answer::Error(e)) => match e.code() {
            Some(code) if expect.accepts(code) => None,
            _ if expect == Expect::Fails => None,
            _ => Some(format!(
                "{what}: expected {}, got {}",
                expect.describe(),
                clip(&err_text(e))
            )),
        },
    }
}

/// The lines of the host's `/etc/passwd` long enough to be unmistakable.
fn passwd_lines() -> Vec<String> {
    std::fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(':') && l.len() >= 12)
        .map(str::to_string)
        .collect()
}

/// Every file under `dir`, recursively.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Every file under every `_delta_log` folder of `lake`: path → bytes.
fn delta_log_bytes(lake: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    walk(lake)
        .into_iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == "_delta_log"))
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, bytes)
        })
        .collect()
}

/// What differs between two snapshots of delta logs (added, removed, changed files).
fn log_changes(
    before: &BTreeMap<PathBuf, Vec<u8>>,
    after: &BTreeMap<PathBuf, Vec<u8>>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (path, bytes) in after {
        match before.get(path) {
            None => out.push(format!("added {}", path.display())),
            Some(old) if old != bytes => out.push(format!("changed {}", path.display())),
            Some(_) => {}
        }
    }
    for path in before.keys().filter(|p| !after.contains_key(*p)) {
        out.push(format!("removed {}", path.display()));
    }
    out
}

/// The shared query context as every client sees it: its tables and its settings.
async fn context_state(c: &Client) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT table_schema, table_name FROM information_schema.tables ORDER BY 1, 2",
        "SELECT name, value FROM information_schema.df_settings ORDER BY name",
        "SELECT arrow_typeof(now())",
    ] {
        match simple(c, sql).await {
            Answer::Rows(rows) => out.extend(rows.into_iter().map(|r| format!("{sql}: {r}"))),
            Answer::Error(e) => panic!("{sql}: {}", err_text(&e)),
            Answer::Silent => panic!("{sql}: no answer within {ANSWER_WITHIN:?}"),
        }
    }
    out
}

/// Rows of the product table, or why the dashboard query failed.
async fn product_rows(c: &Client) -> Result<i64, String> {
    const SQL: &str = "SELECT count(*) FROM marts.liquidity_vs_risk";
    match simple(c, SQL).await {
        Answer::Rows(rows) => rows
            .first()
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| format!("{SQL}: answered {rows:?}")),
        Answer::Error(e) => Err(format!("{SQL}: {}", err_text(&e))),
        Answer::Silent => Err(format!("{SQL}: no answer within {ANSWER_WITHIN:?}")),
    }
}

/// `c` when its connection is still open, else a new one.
async fn open(c: Client, addr: &str) -> Client {
    if c.is_closed() { bi(addr).await } else { c }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_statements_are_refused_over_both_protocols_and_change_nothing() {
    let out = tempfile::tempdir().unwrap();
    let cases = cases(out.path());
    assert!(
        cases.len() >= 90,
        "only {} statements in the suite",
        cases.len()
    );
    let mut server = start(lake(), "");
    let logs_before = delta_log_bytes(lake());
    assert!(
        !logs_before.is_empty(),
        "no _delta_log file under {}",
        lake().display()
    );
    let files_before = walk(lake());
    let probe = bi(&server.addr).await;
    let context_before = context_state(&probe).await;
    let rows_before = product_rows(&probe)
        .await
        .expect("the product table answers");
    assert!(
        rows_before > 4000,
        "SELECT count(*) FROM marts.liquidity_vs_risk: {rows_before}"
    );
    let passwd = passwd_lines();

    let mut failures = Vec::new();
    for case in &cases {
        // A connection per statement: one statement's session state cannot decide another's
        // verdict, and a connection the server closes is attributed to its statement.
        let c = bi(&server.addr).await;
        let mut answers = Vec::new();
        answers.push(("simple", simple(&c, &case.sql).await));
        let c = open(c, &server.addr).await;
        answers.push(("extended", extended(&c, &case.sql).await));
        for (protocol, answer) in &answers {
            failures.extend(judge(protocol, case, answer));
            let text = answer.text();
            if let Some(line) = passwd.iter().find(|l| text.contains(l.as_str())) {
                failures.push(format!(
                    "[{protocol}] {}: the answer contains /etc/passwd's line {line:?}",
                    shown(&case.sql)
                ));
            }
        }
        // The server survives: the dashboard query answers, on the same connection when the
        // server kept it open, else on a new one.
        let c = open(c, &server.addr).await;
        assert!(
            server.alive(),
            "the server process died after {}",
            shown(&case.sql)
        );
        match product_rows(&c).await {
            Ok(n) if n == rows_before => {}
            Ok(n) => failures.push(format!(
                "after {}: marts.liquidity_vs_risk has {n} rows, had {rows_before}",
                shown(&case.sql)
            )),
            Err(e) => failures.push(format!("after {}: {e}", shown(&case.sql))),
        }
    }

    assert!(
        server.alive(),
        "the server process is alive after the whole suite"
    );
    let changes = log_changes(&logs_before, &delta_log_bytes(lake()));
    assert!(
        changes.is_empty(),
        "the hostile suite changed the lake's delta logs:\n{}",
        changes.join("\n")
    );
    let files_after = walk(lake());
    let new_files: Vec<_> = files_after
        .iter()
        .filter(|p| !files_before.contains(p))
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        new_files.is_empty(),
        "files appeared in the lake: {new_files:?}"
    );
    let escaped = walk(out.path());
    assert!(
        escaped.is_empty(),
        "COPY/ATTACH/PROGRAM/external-table statements created files: {escaped:?}"
    );
    let probe = open(probe, &server.addr).await;
    let context_after = context_state(&probe).await;
    let drift: Vec<_> = context_after
        .iter()
        .filter(|l| !context_before.contains(l))
        .chain(context_before.iter().filter(|l| !context_after.contains(l)))
        .collect();
    assert!(
        drift.is_empty(),
        "the shared query context changed (tables, settings or time zone):\n{drift:#?}"
    );
    assert!(
        failures.is_empty(),
        "{} of {} answers ({} statements × 2 protocols) broke the contract:\n{}",
        failures.len(),
        cases.len() * 2,
        cases.len(),
        failures.join("\n")
    );
}

/// The first value of the first row `sql` returns, or why there is none.
async fn first_value(c: &Client, sql: &str) -> String {
    match simple(c, sql).await {
        Answer::Rows(rows) => rows
            .first()
            .map(|r| r.split('|').next().unwrap_or("").to_string())
            .unwrap_or_else(|| panic!("{sql}: no row")),
        Answer::Error(e) => panic!("{sql}: {}", err_text(&e)),
        Answer::Silent => panic!("{sql}: no answer within {ANSWER_WITHIN:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn set_of_an_allowed_variable_changes_only_that_connection() {
    let mut server = start(lake(), "");
    let a = bi(&server.addr).await;
    let b = bi(&server.addr).await;
    let b_zone_before = first_value(&b, "SHOW TimeZone").await;
    let b_now_type = first_value(&b, "SELECT arrow_typeof(now())").await;

    const SET: &str = "SET TimeZone = 'America/New_York'";
    if let Answer::Error(e) = simple(&a, SET).await {
        panic!("A: {SET}: {}", err_text(&e));
    }
    assert_eq!(
        first_value(&a, "SHOW TimeZone").await,
        "America/New_York",
        "A: SHOW TimeZone after {SET}"
    );

    // B, connected before A's SET, and C, connected after it, keep the server's default.
    let c = bi(&server.addr).await;
    for (who, client) in [("B", &b), ("C", &c)] {
        let zone = first_value(client, "SHOW TimeZone").await;
        assert_ne!(
            zone, "America/New_York",
            "{who}: SHOW TimeZone sees A's {SET}"
        );
        assert_eq!(
            zone, b_zone_before,
            "{who}: SHOW TimeZone changed after A's {SET}"
        );
        let now_type = first_value(client, "SELECT arrow_typeof(now())").await;
        assert_eq!(
            now_type, b_now_type,
            "{who}: SELECT arrow_typeof(now()) — A's {SET} leaked into the shared context"
        );
    }
    assert!(server.alive(), "the server process is alive");
}
