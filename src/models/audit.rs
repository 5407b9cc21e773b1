//! Data tests, the audit of write-audit-publish: a model's declared tests (`-- test:`) and the
//! custom tests attached to it run against the rows about to be published, bound under the
//! model's name; nothing is committed unless every one passes.
//!
//! An incremental build audits in two parts. A test whose outcome on the whole table follows from
//! its outcome on the new rows — a row-by-row condition, uniqueness of keys that include the
//! partition (and the order column when rows were appended after each partition's last stored
//! one), a relationships test to a staging table that has only gained rows since the stored rows
//! passed it or to an input that did not change (a seed), or a `no_rows_where` whose subqueries
//! read only inputs that did not change (`super::added`) — runs over the new rows only: the stored
//! rows passed the same tests when they were published (a change to the model's file makes a
//! full build). Such a relationships test of a partition column does not run at all when every
//! new row extends a stored partition. A freshness test runs over the new rows first: their
//! newest value passing it, the table's does too. The others (freshness the new rows fail, custom
//! tests, relationships otherwise) run over the table as it would be: the stored rows that stay
//! plus the new ones.

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::catalog::TableProvider;
use datafusion::prelude::SessionContext;

use super::session::{collect, mem_table, register};
use super::spec::{DataTest, Model};

/// Custom tests attached to a model: (file, SQL).
pub(super) type Custom = [(std::path::PathBuf, String)];

/// One data test to run: its name for reports, a query returning its offending rows, and for a
/// row-by-row test the condition an offending row meets.
struct Check {
    name: String,
    sql: String,
    row_condition: Option<String>,
}

/// The given declared tests, then the custom tests.
fn checks<'a>(
    model: &Model,
    tests: impl Iterator<Item = &'a (usize, DataTest)>,
    custom: &Custom,
    reference: chrono::NaiveDate,
) -> Vec<Check> {
    let relation = model.name.to_string();
    let mut out: Vec<Check> = tests
        .map(|(line, t)| Check {
            name: format!("{}:{line} {}", model.path.display(), t.name()),
            sql: t.failing_rows_sql(&relation, reference),
            row_condition: t.row_condition(),
        })
        .collect();
    out.extend(custom.iter().map(|(p, sql)| Check {
        name: p.display().to_string(),
        sql: sql.clone(),
        row_condition: None,
    }));
    out
}

/// Runs checks one after another, each with every core; returns the failures, each with up to
/// five offending rows. (Two at once saved about 30 ms over `liquidity_vs_risk`'s 18 small tests,
/// but would let two tests over a large table, e.g. `unique` over 13M rows, hold their memory at
/// the same time.)
///
/// The row-by-row tests are first screened together: one scan for a row meeting any of their
/// conditions. None: they all pass, for one query's planning and scan instead of one each
/// (`liquidity_vs_risk` has 15). Some, or the screen cannot run: each runs on its own, so a
/// failure reads as it would alone.
async fn run_checks(ctx: &SessionContext, relation: &str, checks: Vec<Check>) -> Vec<String> {
    let screened: Vec<&Check> = checks
        .iter()
        .filter(|c| c.row_condition.is_some())
        .collect();
    let passed = screened.len() >= 2 && !screen_finds_rows(ctx, relation, &screened).await;
    let mut failures = Vec::new();
    for check in checks {
        if !(passed && check.row_condition.is_some()) {
            failures.extend(run_check(ctx, check).await);
        }
    }
    failures
}

/// Whether some row of `relation` meets any of the checks' row conditions (true too when the
/// screen cannot run: the checks then run one by one and report their own errors).
async fn screen_finds_rows(ctx: &SessionContext, relation: &str, checks: &[&Check]) -> bool {
    let clock = Instant::now();
    // One condition per line: a condition is the user's SQL and may end in a `--` comment.
    let any: Vec<String> = checks
        .iter()
        .filter_map(|c| c.row_condition.as_ref())
        .map(|c| format!("(\n{c}\n)"))
        .collect();
    let sql = format!(
        "SELECT 1 FROM {relation} WHERE {} LIMIT 1",
        any.join(" OR ")
    );
    let found = collect(ctx, &sql)
        .await
        .map_or(true, |rows| rows.iter().any(|b| b.num_rows() > 0));
    tracing::debug!(
        relation,
        tests = checks.len(),
        found,
        seconds = clock.elapsed().as_secs_f64(),
        "row-by-row data tests screened in one scan"
    );
    found
}

/// Runs one check: `Some(failure)` when it finds offending rows or cannot run.
async fn run_check(ctx: &SessionContext, check: Check) -> Option<String> {
    let Check { name, sql, .. } = check;
    let clock = Instant::now();
    let outcome = collect(
        ctx,
        &format!(
            "SELECT * FROM (\n{}\n) LIMIT 5",
            sql.trim().trim_end_matches(';')
        ),
    )
    .await;
    tracing::debug!(test = %name, seconds = clock.elapsed().as_secs_f64(), "data test ran");
    match outcome {
        Ok(rows) if rows.iter().all(|b| b.num_rows() == 0) => None,
        Ok(rows) => {
            let shown = pretty_format_batches(&rows)
                .map(|t| t.to_string())
                .unwrap_or_default();
            Some(format!(
                "test {name} failed; offending rows (up to 5):\n{shown}"
            ))
        }
        Err(e) => Some(format!("test {name} could not run: {e}")),
    }
}

/// Audits what the model's name is bound to now: every declared test and every custom test
/// attached to the model, but the tests named in `published` (the build that published the
/// stored version proved them, and they still hold: [`super::proven`], [`super::added`]) and the
/// `unique` tests whose keys the stored rows rise in file order. Returns the failures.
pub(super) async fn audit(
    ctx: &SessionContext,
    model: &Model,
    custom: &Custom,
    reference: chrono::NaiveDate,
    published: Vec<String>,
) -> Vec<String> {
    // A view's query would run once more for it (a sort must finish before its first row).
    let stored = model.materialized != super::spec::Materialized::View;
    let mut rising = Vec::new();
    for key in unique_keys(model) {
        let name = DataTest::Unique(key.clone()).name();
        if stored
            && !published.contains(&name)
            && crate::lake::increasing::stored_rows_rise(ctx, &model.name.to_string(), &key).await
        {
            rising.push(name);
        }
    }
    let proofs = [(published, PUBLISHED), (rising, RISING)];
    let relation = model.name.to_string();
    let checks = checks(model, unproven(model, &proofs), custom, reference);
    run_checks(ctx, &relation, checks).await
}

/// Why a `unique` test passed without running: the rows rise in the order of its key.
const RISING: &str = "data test passed: the rows are in strictly increasing order of its key";
/// Why a test passed without running: a build proved it on the stored version.
const PUBLISHED: &str = "data test passed: the build that published the stored version proved it (the table has not changed since, nor lost a row it references)";
/// Why a relationships test passed without running in an incremental build: the stored rows
/// passed it, the table it refers to has only gained rows since, and every new row extends a
/// stored partition (the tested column is a partition column).
const EXTENDED: &str = "data test passed: the stored rows passed it, the table it refers to only gained rows since, and the new rows extend stored partitions";

/// The model's tests but those named in a proof, each logged as passed with the proof's reason.
fn unproven<'a>(
    m: &'a Model,
    proofs: &'a [(Vec<String>, &'static str)],
) -> impl Iterator<Item = &'a (usize, DataTest)> {
    m.tests.iter().filter(move |(line, t)| {
        let name = t.name();
        let Some((_, why)) = proofs.iter().find(|(names, _)| names.contains(&name)) else {
            return true;
        };
        tracing::debug!(test = %format!("{}:{line} {name}", m.path.display()), "{why}");
        false
    })
}

fn not_published(m: &Model, failures: Vec<String>) -> Result<(), String> {
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} not published (the previous version stays visible):\n{}",
            m.name,
            failures.join("\n")
        ))
    }
}

/// The column lists of the model's `unique` tests, for the writer to watch
/// ([`crate::lake::increasing`]).
pub(super) fn unique_keys(m: &Model) -> Vec<Vec<String>> {
    m.tests
        .iter()
        .filter_map(|(_, t)| match t {
            DataTest::Unique(cols) => Some(cols.clone()),
            _ => None,
        })
        .collect()
}

/// Binds the model's name in the session to `candidate`, the rows about to be published (nothing
/// is published yet), and runs its tests against them, except the `unique` tests of keys in
/// `proven` (the rows were written in strictly increasing order of those keys).
pub(super) async fn stage_and_audit(
    ctx: &SessionContext,
    m: &Model,
    custom: &Custom,
    reference: chrono::NaiveDate,
    candidate: Arc<dyn TableProvider>,
    proven: &[Vec<String>],
) -> Result<(), String> {
    register(ctx, &m.name, candidate).map_err(|e| e.to_string())?;
    let proven = proven.iter().map(|k| DataTest::Unique(k.clone()).name());
    let proofs = [(proven.collect(), RISING)];
    let checks = checks(m, unproven(m, &proofs), custom, reference);
    not_published(m, run_checks(ctx, &m.name.to_string(), checks).await)
}

/// Whether `test` passing on the new rows of an incremental build means it passes on the whole
/// table. `appended_after`: the order column, when rows were appended after each partition's
/// last stored row (rather than whole partitions recomputed). `held`: the stored rows still pass
/// the test (a relationships test whose table has only gained rows or did not change, a
/// `no_rows_where` whose subqueries read only unchanged inputs: [`super::added`]).
fn decided_by_new_rows(
    test: &DataTest,
    partition_by: &[String],
    appended_after: Option<&str>,
    held: bool,
) -> bool {
    match test {
        DataTest::NotNull(_) | DataTest::AcceptedRange { .. } => test.row_condition().is_some(),
        DataTest::NoRowsWhere(_) => test.row_condition().is_some() || held,
        DataTest::Unique(cols) => {
            partition_by.iter().all(|p| cols.contains(p))
                && appended_after.is_none_or(|o| cols.iter().any(|c| c == o))
        }
        DataTest::Relationships { .. } => held,
        DataTest::Freshness { .. } => false,
    }
}

/// The rows an incremental build would publish.
pub(super) struct Increment {
    /// Schema of the new rows.
    pub schema: SchemaRef,
    /// The recomputed partitions' rows and the appended rows.
    pub rows: Vec<RecordBatch>,
    /// The table as it would be: stored rows that stay, plus `rows`.
    pub candidate: Arc<dyn TableProvider>,
    /// The order column, when rows were appended after each partition's last stored one.
    pub appended_after: Option<String>,
    /// Whether some partitions were recomputed (rather than only extended).
    pub recomputed: bool,
    /// The names of the relationships and subquery tests the stored rows still pass
    /// ([`super::added`]).
    pub held: Vec<String>,
}

/// Audits an incremental build (see the module's doc). Leaves the model's name bound to the
/// candidate table, so models downstream in the same build read what is being published.
pub(super) async fn audit_increment(
    ctx: &SessionContext,
    m: &Model,
    custom: &Custom,
    reference: chrono::NaiveDate,
    inc: &Increment,
) -> Result<(), String> {
    type Tests<'a> = Vec<&'a (usize, DataTest)>;
    let held = |t: &DataTest| inc.held.contains(&t.name());
    // A held relationships test of a partition column, when every new row extends a stored
    // partition: each new row's value is a stored row's.
    let extended: Vec<String> = m
        .tests
        .iter()
        .filter(|(_, t)| match t {
            DataTest::Relationships { column, .. } => {
                !inc.recomputed && held(t) && m.partition_by.contains(column)
            }
            _ => false,
        })
        .map(|(_, t)| t.name())
        .collect();
    let proofs = [(extended, EXTENDED)];
    let after = inc.appended_after.as_deref();
    let (local, whole): (Tests, Tests) = unproven(m, &proofs)
        .partition(|(_, t)| decided_by_new_rows(t, &m.partition_by, after, held(t)));
    // A freshness test the new rows pass holds on the whole table (its newest value is at least
    // theirs); only one they fail runs again on the table as it would be.
    let (fresh, whole): (Tests, Tests) = whole
        .into_iter()
        .partition(|(_, t)| matches!(t, DataTest::Freshness { .. }));
    let mem = mem_table(ctx, inc.schema.clone(), inc.rows.clone()).map_err(|e| e.to_string())?;
    register(ctx, &m.name, Arc::new(mem)).map_err(|e| e.to_string())?;
    let relation = m.name.to_string();
    let local = checks(m, local.into_iter(), &[], reference);
    let mut failures = run_checks(ctx, &relation, local).await;
    let mut whole = whole;
    for test in fresh {
        let check = checks(m, std::iter::once(test), &[], reference);
        if !run_checks(ctx, &relation, check).await.is_empty() {
            whole.push(test);
        }
    }
    whole.sort_by_key(|(line, _)| *line);
    register(ctx, &m.name, inc.candidate.clone()).map_err(|e| e.to_string())?;
    let whole = checks(m, whole.into_iter(), custom, reference);
    failures.extend(run_checks(ctx, &relation, whole).await);
    not_published(m, failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(t: DataTest) -> Check {
        let reference = chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
        Check {
            name: t.name(),
            sql: t.failing_rows_sql("m", reference),
            row_condition: t.row_condition(),
        }
    }

    fn range(column: &str, min: &str, max: &str) -> DataTest {
        DataTest::AcceptedRange {
            column: column.into(),
            min: min.into(),
            max: max.into(),
        }
    }

    #[tokio::test]
    async fn row_by_row_tests_are_screened_in_one_scan_and_a_failure_still_reads_as_alone() {
        let ctx = SessionContext::new();
        ctx.sql(
            "CREATE TABLE m (d DATE, x DOUBLE, y VARCHAR) AS VALUES \
             (DATE '2026-01-02', 1.0, 'a'), (DATE '2026-01-05', 5.0, NULL)",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
        let not_null = |c: &str| DataTest::NotNull(vec![c.to_string()]);
        let over_100 = || DataTest::NoRowsWhere("x > 100 -- a trailing comment".into());
        let passing = || {
            vec![
                check(not_null("d")),
                check(range("x", "0", "10")),
                check(over_100()),
            ]
        };
        let screened: Vec<Check> = passing();
        assert!(!screen_finds_rows(&ctx, "m", &screened.iter().collect::<Vec<_>>()).await);
        assert!(run_checks(&ctx, "m", passing()).await.is_empty());

        // Two of five fail: each failure is reported as it would be alone, in declared order,
        // and the tests that pass (row-by-row or not) report nothing.
        let mut mixed = passing();
        mixed.insert(1, check(not_null("y")));
        mixed.push(check(range("x", "0", "2")));
        mixed.push(check(DataTest::Unique(vec!["d".into()])));
        let rows: Vec<&Check> = mixed.iter().filter(|c| c.row_condition.is_some()).collect();
        assert!(screen_finds_rows(&ctx, "m", &rows).await);
        let failures = run_checks(&ctx, "m", mixed).await;
        assert_eq!(failures.len(), 2, "{failures:?}");
        assert!(
            failures[0].starts_with("test not_null(y) failed"),
            "{}",
            failures[0]
        );
        assert!(failures[1].starts_with("test accepted_range(x, 0, 2) failed"));
        assert!(failures[1].contains("2026-01-05") && !failures[1].contains("2026-01-02"));

        // A condition that cannot run: the screen gives way and the test names itself.
        let broken = vec![
            check(not_null("d")),
            check(DataTest::NoRowsWhere("nope > 1".into())),
        ];
        let failures = run_checks(&ctx, "m", broken).await;
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(failures[0].starts_with("test no_rows_where(nope > 1) could not run"));
    }

    #[test]
    fn only_row_by_row_tests_and_covering_keys_are_decided_by_new_rows() {
        let p = ["symbol".to_string()];
        let cols = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let unique = DataTest::Unique(cols(&["symbol", "date"]));
        assert!(decided_by_new_rows(&unique, &p, None, false));
        assert!(decided_by_new_rows(&unique, &p, Some("date"), false));
        // Keys without the order column can collide with a stored row of the same partition.
        assert!(!decided_by_new_rows(
            &DataTest::Unique(cols(&["symbol"])),
            &p,
            Some("date"),
            false
        ));
        // Keys without the partition can collide with another partition's rows.
        assert!(!decided_by_new_rows(
            &DataTest::Unique(cols(&["date"])),
            &p,
            None,
            false
        ));
        assert!(decided_by_new_rows(
            &DataTest::NotNull(cols(&["close"])),
            &p,
            Some("date"),
            false
        ));
        let fresh = DataTest::Freshness {
            column: "date".into(),
            max_age_days: 7,
        };
        assert!(!decided_by_new_rows(&fresh, &p, None, false));
        let sub = DataTest::NoRowsWhere("close > (SELECT max(close) FROM marts.x)".into());
        assert!(!decided_by_new_rows(&sub, &p, None, false));
        // … unless what its subquery reads is as the stored rows' build saw it.
        assert!(decided_by_new_rows(&sub, &p, None, true));
        assert!(decided_by_new_rows(
            &DataTest::NoRowsWhere("close < 0".into()),
            &p,
            None,
            false
        ));
    }
}
