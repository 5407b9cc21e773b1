//! Model files: discovery and header parsing.

use std::path::{Path, PathBuf};

use super::ModelError;
use crate::lake::{TableName, Zone};

/// How a model is materialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Materialized {
    /// A Delta table, rebuilt and published atomically.
    Table,
    /// A SQL view registered in every session (nothing stored).
    View,
    /// A Delta table of which each build recomputes only the partitions (`partition_by`, e.g.
    /// each symbol) whose input rows changed since the model's last successful build — new
    /// days, late days and revisions of any age — and replaces exactly those partitions in one
    /// commit (a full refresh rebuilds everything).
    Incremental,
}

/// A data test declared in a model header.
#[derive(Debug, Clone, PartialEq)]
pub enum DataTest {
    /// No NULLs in these columns.
    NotNull(Vec<String>),
    /// No two rows share these columns.
    Unique(Vec<String>),
    /// Every non-NULL value within `[min, max]`.
    AcceptedRange {
        /// Column.
        column: String,
        /// Lower bound (inclusive), a SQL literal.
        min: String,
        /// Upper bound (inclusive), a SQL literal.
        max: String,
    },
    /// The newest value of a date column is no older than `max_age_days` before the reference day.
    Freshness {
        /// Date column.
        column: String,
        /// Largest allowed age in days.
        max_age_days: u32,
    },
    /// Every non-NULL value exists in another table's column.
    Relationships {
        /// Column of this model.
        column: String,
        /// `schema.table`.
        to_table: String,
        /// Column there.
        to_column: String,
    },
    /// No row matches a SQL condition (e.g. a value older than its age limit):
    /// `no_rows_where(btc_close IS NOT NULL AND btc_as_of < date - INTERVAL '5 days')`.
    NoRowsWhere(String),
}

impl DataTest {
    /// A short name for reports, e.g. `unique(date)`.
    pub fn name(&self) -> String {
        match self {
            DataTest::NotNull(c) => format!("not_null({})", c.join(", ")),
            DataTest::Unique(c) => format!("unique({})", c.join(", ")),
            DataTest::AcceptedRange { column, min, max } => {
                format!("accepted_range({column}, {min}, {max})")
            }
            DataTest::Relationships {
                column,
                to_table,
                to_column,
            } => format!("relationships({column}, {to_table}.{to_column})"),
            DataTest::Freshness {
                column,
                max_age_days,
            } => format!("freshness({column}, {max_age_days})"),
            DataTest::NoRowsWhere(cond) => format!("no_rows_where({cond})"),
        }
    }

    /// The condition an offending row meets, for a test that looks at one row at a time
    /// (`not_null`, `accepted_range`, and `no_rows_where` without a subquery); `None` for the
    /// others. Such tests can be screened together in one scan (see `models::audit`), and on an
    /// incremental build their outcome on the new rows is their outcome on the whole table.
    pub fn row_condition(&self) -> Option<String> {
        match self {
            DataTest::NotNull(cols) => Some(not_null_condition(cols)),
            DataTest::AcceptedRange { column, min, max } => Some(range_condition(column, min, max)),
            // A condition with a subquery may look at other rows.
            DataTest::NoRowsWhere(cond) if !cond.to_ascii_lowercase().contains("select") => {
                Some(cond.clone())
            }
            _ => None,
        }
    }

    /// A query over `relation` returning the offending rows (none = pass); `reference` is the
    /// day freshness is measured from.
    pub fn failing_rows_sql(&self, relation: &str, reference: chrono::NaiveDate) -> String {
        let q = |c: &str| format!("\"{c}\"");
        let rows_where = |cond: &str| format!("SELECT * FROM {relation} WHERE {cond}");
        match self {
            DataTest::NotNull(cols) => rows_where(&not_null_condition(cols)),
            DataTest::AcceptedRange { column, min, max } => {
                rows_where(&range_condition(column, min, max))
            }
            DataTest::Unique(cols) => {
                let list: Vec<String> = cols.iter().map(|c| q(c)).collect();
                format!(
                    "SELECT {0}, count(*) AS n FROM {relation} GROUP BY {0} HAVING count(*) > 1",
                    list.join(", ")
                )
            }
            DataTest::Relationships {
                column,
                to_table,
                to_column,
            } => format!(
                // The values missing from `to_table` first (two small distinct sets), then their
                // rows: the join's hash table holds the missing values, not the whole table (a
                // NOT IN over a 13M-row mart built one of all its rows).
                "SELECT r.* FROM (SELECT DISTINCT {0} AS missing FROM {relation} WHERE {0} IS NOT NULL \
                 EXCEPT SELECT DISTINCT {1} FROM {to_table} WHERE {1} IS NOT NULL) m \
                 JOIN {relation} r ON r.{0} = m.missing",
                q(column),
                q(to_column)
            ),
            DataTest::Freshness {
                column,
                max_age_days,
            } => format!(
                "SELECT newest, DATE '{reference}' AS reference_day FROM (SELECT max({0}) AS newest FROM {relation}) \
                 WHERE newest IS NULL OR newest < DATE '{reference}' - INTERVAL '{max_age_days} days'",
                q(column)
            ),
            DataTest::NoRowsWhere(cond) => rows_where(cond),
        }
    }
}

/// `"a" IS NULL OR "b" IS NULL …`
fn not_null_condition(cols: &[String]) -> String {
    cols.iter()
        .map(|c| format!("\"{c}\" IS NULL"))
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// `"c" < min OR "c" > max`
fn range_condition(column: &str, min: &str, max: &str) -> String {
    format!("\"{column}\" < {min} OR \"{column}\" > {max}")
}

/// One model.
#[derive(Debug, Clone)]
pub struct Model {
    /// Its table name (`marts.<file stem>` for `sql/marts/<stem>.sql`).
    pub name: TableName,
    /// The file.
    pub path: PathBuf,
    /// The SQL (header included; comments are SQL comments).
    pub sql: String,
    /// Materialization.
    pub materialized: Materialized,
    /// One line saying what it is.
    pub description: Option<String>,
    /// Column descriptions.
    pub columns: Vec<(String, String)>,
    /// Declared data tests, with their header line.
    pub tests: Vec<(usize, DataTest)>,
    /// Natural key of an incremental model.
    pub unique_key: Vec<String>,
    /// Partition columns of an incremental model: a partition is recomputed whole when any input
    /// row carrying its value was ingested since the last build.
    pub partition_by: Vec<String>,
    /// Tags (`-- tags: a, b`), for `--select tag:a`.
    pub tags: Vec<String>,
    /// The append query of an incremental model (`-- append_sql: append/<name>.sql`).
    pub append: Option<Append>,
}

/// How an incremental model appends new rows instead of recomputing a partition (`-- append_sql:
/// append/asset_daily.sql`, a path under the models folder).
///
/// A partition whose only input changes since the last build are rows after its last stored
/// value of the order column (the one `unique_key` column not in `partition_by`, e.g. `date`) is
/// extended by this query instead of recomputed: it reads the engine's tables
/// `append_after(<partition columns>, last_<order column>)` — one row per such partition, with
/// its last stored value — and `append_last`, those partitions' stored last rows (every column of
/// the model, kept beside it in `meta.<model>_last_rows`: reading them costs a row per partition,
/// not the table), and must return the model's rows after it, the same rows a full build would
/// give (e.g. continuing a running maximum from the stored last row). Rows depending on
/// later ones (a centred window, a partition-wide statistic) cannot be appended: such a model
/// must not declare an append query. Any other change (a late day, a revision, a new partition)
/// recomputes the partition as before; `tests/it/incremental.rs` checks that the result equals a
/// full refresh on random update sequences.
#[derive(Debug, Clone)]
pub struct Append {
    /// The append query's file.
    pub path: PathBuf,
    /// Its SQL.
    pub sql: String,
    /// The order column (`unique_key` minus `partition_by`).
    pub order_by: String,
}

impl Append {
    /// The name of the column of `append_after` holding a partition's last stored order value.
    pub fn last_column(&self) -> String {
        format!("last_{}", self.order_by)
    }
}

fn args(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect()
}

fn parse_test(spec: &str) -> Result<DataTest, String> {
    let (kind, rest) = spec
        .split_once('(')
        .ok_or(format!("test {spec:?} is not like kind(args)"))?;
    let inner = rest
        .strip_suffix(')')
        .ok_or(format!("test {spec:?} lacks a closing parenthesis"))?;
    if kind.trim() == "no_rows_where" {
        return if inner.trim().is_empty() {
            Err("no_rows_where needs a condition".into())
        } else {
            Ok(DataTest::NoRowsWhere(inner.trim().to_string()))
        };
    }
    let a = args(inner);
    match (kind.trim(), a.len()) {
        ("not_null", n) if n > 0 => Ok(DataTest::NotNull(a)),
        ("unique", n) if n > 0 => Ok(DataTest::Unique(a)),
        ("accepted_range", 3) => Ok(DataTest::AcceptedRange {
            column: a[0].clone(),
            min: a[1].clone(),
            max: a[2].clone(),
        }),
        ("freshness", 2) => Ok(DataTest::Freshness {
            column: a[0].clone(),
            max_age_days: a[1]
                .parse()
                .map_err(|_| format!("freshness age {:?} is not a whole number of days", a[1]))?,
        }),
        ("relationships", 2) => {
            let (table, col) = a[1].rsplit_once('.').ok_or(format!(
                "relationships target {:?} is not schema.table.column",
                a[1]
            ))?;
            Ok(DataTest::Relationships {
                column: a[0].clone(),
                to_table: table.to_string(),
                to_column: col.to_string(),
            })
        }
        (k, _) => Err(format!(
            "unknown test or wrong arguments: {k}({inner}); use not_null(cols), unique(cols), accepted_range(col, min, max), relationships(col, schema.table.col), freshness(col, days), no_rows_where(condition)"
        )),
    }
}

/// Header keys a model file may set (`-- key: value`).
pub const HEADER_KEYS: [&str; 8] = [
    "materialized",
    "append_sql",
    "description",
    "unique_key",
    "partition_by",
    "tags",
    "test",
    "column <name>",
];

/// A header comment `-- word: …` whose word is a lowercase identifier is meant as a setting
/// (prose starts with a capital or has spaces before its colon), so an unknown one is a typo.
fn looks_like_key(k: &str) -> bool {
    k.len() > 1 && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

fn unknown_key(k: &str) -> String {
    let nearest = HEADER_KEYS
        .iter()
        .map(|known| (edit_distance(k, known), known))
        .min()
        .filter(|(d, _)| *d <= 3)
        .map(|(_, known)| format!(" (did you mean `{known}`?)"))
        .unwrap_or_default();
    format!(
        "unknown header key `{k}`{nearest}; model headers take {}",
        HEADER_KEYS.join(", ")
    )
}

/// Levenshtein distance (for "did you mean").
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

impl Model {
    /// Parses a model file's text.
    pub fn parse(name: TableName, path: &Path, sql: &str) -> Result<Self, ModelError> {
        let invalid = |line: usize, message: String| ModelError::Invalid {
            path: path.to_path_buf(),
            line,
            message,
        };
        let mut model = Model {
            name,
            path: path.to_path_buf(),
            sql: sql.to_string(),
            materialized: Materialized::Table,
            description: None,
            columns: Vec::new(),
            tests: Vec::new(),
            unique_key: Vec::new(),
            partition_by: Vec::new(),
            tags: Vec::new(),
            append: None,
        };
        let mut append_line = None;
        for (i, line) in sql.lines().enumerate() {
            let Some(comment) = line.trim().strip_prefix("--") else {
                if line.trim().is_empty() {
                    continue;
                }
                break;
            };
            let Some((key, value)) = comment.split_once(':') else {
                continue;
            };
            if let Some(file) = model
                .header(i + 1, key.trim(), value.trim())
                .map_err(|m| invalid(i + 1, m))?
            {
                append_line = Some((i + 1, file));
            }
        }
        if model.materialized == Materialized::Incremental
            && (model.unique_key.is_empty() || model.partition_by.is_empty())
        {
            return Err(invalid(
                1,
                "an incremental model needs `-- unique_key: cols` and `-- partition_by: cols`"
                    .into(),
            ));
        }
        if let Some((line, file)) = append_line {
            model.append = Some(model.read_append(&file).map_err(|m| invalid(line, m))?);
        }
        Ok(model)
    }

    /// Applies one `-- key: value` header line (at `line` of the file); returns the file of an `append_sql` line.
    fn header(&mut self, line: usize, key: &str, value: &str) -> Result<Option<String>, String> {
        match key {
            "materialized" => {
                self.materialized = match value {
                    "table" => Materialized::Table,
                    "view" => Materialized::View,
                    "incremental" => Materialized::Incremental,
                    other => {
                        return Err(format!(
                            "materialized must be table, view or incremental, not {other:?}"
                        ));
                    }
                }
            }
            "description" => self.description = Some(value.to_string()),
            "unique_key" => self.unique_key = args(value),
            "tags" => self.tags = args(value),
            "partition_by" => self.partition_by = args(value),
            "append_sql" => return Ok(Some(value.to_string())),
            "time_column" | "lookback_days" => {
                return Err(format!(
                    "`{key}` is gone: a look-back window loses late days and old revisions; \
                     declare `-- partition_by: cols` (each partition whose inputs changed is recomputed whole)"
                ));
            }
            "test" => self.tests.push((line, parse_test(value)?)),
            k if k.starts_with("column ") => self
                .columns
                .push((k["column ".len()..].trim().to_string(), value.to_string())),
            k if looks_like_key(k) => return Err(unknown_key(k)),
            _ => {}
        }
        Ok(None)
    }

    /// Reads the append query `file`, relative to the models folder (the parent of the model's
    /// `staging/` or `marts/` folder).
    fn read_append(&self, file: &str) -> Result<Append, String> {
        if self.materialized != Materialized::Incremental {
            return Err("`append_sql` needs `-- materialized: incremental`".into());
        }
        let order: Vec<&String> = self
            .unique_key
            .iter()
            .filter(|k| !self.partition_by.contains(k))
            .collect();
        let [order_by] = order.as_slice() else {
            return Err(format!(
                "`append_sql` needs exactly one unique_key column outside partition_by (the order \
                 new rows arrive in, e.g. date); here: {order:?}"
            ));
        };
        let root = self
            .path
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."));
        let path = root.join(file);
        let sql = std::fs::read_to_string(&path)
            .map_err(|e| format!("append_sql {}: {e}", path.display()))?;
        Ok(Append {
            path,
            sql,
            order_by: order_by.to_string(),
        })
    }
}

/// A SQL file: its path and text.
pub type SqlFile = (PathBuf, String);

/// Every model under `dir` (`staging/*.sql` → `staging.<stem>`, `marts/*.sql` → `marts.<stem>`),
/// and the custom test files under `dir/tests/`.
pub fn discover(dir: &Path) -> Result<(Vec<Model>, Vec<SqlFile>), ModelError> {
    if !dir.is_dir() {
        return Err(ModelError::MissingDir {
            dir: dir.to_path_buf(),
        });
    }
    let mut models = Vec::new();
    for (folder, zone) in [("staging", Zone::Staging), ("marts", Zone::Marts)] {
        for (path, text) in sql_files(&dir.join(folder))? {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            models.push(Model::parse(TableName { zone, name: stem }, &path, &text)?);
        }
    }
    let tests = sql_files(&dir.join("tests"))?;
    Ok((models, tests))
}

fn sql_files(dir: &Path) -> Result<Vec<SqlFile>, ModelError> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io {
            path: path.clone(),
            source,
        })?;
        out.push((path, text));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn relationships_returns_every_row_whose_value_is_missing_and_nothing_else() {
        let ctx = datafusion::prelude::SessionContext::new();
        for sql in [
            "CREATE TABLE m (symbol VARCHAR, n INT) AS VALUES \
             ('a', 1), ('b', 2), ('b', 3), (NULL, 4), ('c', 5), ('a', 6)",
            "CREATE TABLE p (symbol VARCHAR) AS VALUES ('a'), (NULL), ('a'), ('z')",
        ] {
            ctx.sql(sql).await.unwrap().collect().await.unwrap();
        }
        let test = DataTest::Relationships {
            column: "symbol".into(),
            to_table: "p".into(),
            to_column: "symbol".into(),
        };
        let sql = test.failing_rows_sql("m", chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap());
        let batches = ctx
            .sql(&format!("SELECT symbol, n FROM ({sql}) ORDER BY n"))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let shown = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        // Both `b` rows and the `c` row: not the NULL one, not the `a` ones.
        let rows: Vec<&str> = shown
            .lines()
            .filter(|l| l.starts_with("| "))
            .skip(1)
            .collect();
        assert_eq!(
            rows,
            ["| b      | 2 |", "| b      | 3 |", "| c      | 5 |"],
            "{shown}"
        );
        // Every value present: no rows.
        ctx.sql("INSERT INTO p VALUES ('b'), ('c')")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let n: usize = ctx
            .sql(&sql)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .sum();
        assert_eq!(n, 0);
    }

    #[test]
    fn append_sql_needs_an_incremental_model_one_order_column_and_its_file() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["marts", "append"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        std::fs::write(dir.path().join("append/m.sql"), "SELECT 2").unwrap();
        let path = dir.path().join("marts/m.sql");
        let parse = |header: &str| {
            Model::parse(TableName::marts("m"), &path, &format!("{header}\nSELECT 1"))
                .map_err(|e| e.to_string())
        };
        let inc = "-- materialized: incremental\n-- partition_by: symbol\n";
        let m = parse(&format!(
            "{inc}-- unique_key: symbol, date\n-- append_sql: append/m.sql"
        ))
        .unwrap();
        let a = m.append.unwrap();
        assert_eq!((a.order_by.as_str(), a.sql.as_str()), ("date", "SELECT 2"));
        assert_eq!(a.last_column(), "last_date");
        let err = parse("-- append_sql: append/m.sql").unwrap_err();
        assert!(
            err.ends_with(":1: `append_sql` needs `-- materialized: incremental`"),
            "{err}"
        );
        let err = parse(&format!(
            "{inc}-- unique_key: symbol, date, source\n-- append_sql: append/m.sql"
        ))
        .unwrap_err();
        assert!(
            err.contains(":4: `append_sql` needs exactly one unique_key column"),
            "{err}"
        );
        let err = parse(&format!(
            "{inc}-- unique_key: symbol, date\n-- append_sql: append/gone.sql"
        ))
        .unwrap_err();
        assert!(
            err.contains(":4: append_sql ") && err.contains("gone.sql"),
            "{err}"
        );
    }

    #[test]
    fn header_parses() {
        let sql = "-- description: d\n-- materialized: view\n-- column a: the a\n-- test: unique(a, b)\n-- test: relationships(s, staging.p.symbol)\nSELECT 1 AS a\n-- test: ignored(after the header)\n";
        let m = Model::parse(TableName::marts("m"), Path::new("m.sql"), sql).unwrap();
        assert_eq!(m.materialized, Materialized::View);
        assert_eq!(m.columns, vec![("a".to_string(), "the a".to_string())]);
        assert_eq!(m.tests.len(), 2);
        assert_eq!(
            m.tests[0],
            (4, DataTest::Unique(vec!["a".into(), "b".into()]))
        );
        assert_eq!(m.tests[1].1.name(), "relationships(s, staging.p.symbol)");
        let bad = Model::parse(
            TableName::marts("m"),
            Path::new("m.sql"),
            "-- test: uniq(a)\nSELECT 1",
        )
        .unwrap_err()
        .to_string();
        assert!(bad.starts_with("m.sql:1: unknown test"), "{bad}");
    }

    #[test]
    fn unknown_header_keys_are_errors_with_file_line_and_a_suggestion() {
        let parse = |sql: &str| Model::parse(TableName::marts("m"), Path::new("sql/m.sql"), sql);
        let err = parse("-- description: d\n-- materialised: view\nSELECT 1")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "sql/m.sql:2: unknown header key `materialised` (did you mean `materialized`?)"
            ),
            "{err}"
        );
        let err = parse("-- uniqe_key: a\nSELECT 1").unwrap_err().to_string();
        assert!(err.contains("did you mean `unique_key`"), "{err}");
        // Prose in the header (a capital, spaces before the colon, no colon) is still prose.
        let m = parse(
            "-- Note: weekly data\n-- net liquidity = a - b: in $M\n-- plain words\nSELECT 1",
        )
        .unwrap();
        assert_eq!(m.materialized, Materialized::Table);
        // After the header, comments are the SQL's own.
        assert!(parse("SELECT 1\n-- materialised: view").is_ok());
    }

    #[test]
    fn a_missing_models_folder_is_an_error_not_an_empty_project() {
        let dir = std::env::temp_dir().join(format!("macrolake-no-sql-{}", std::process::id()));
        let err = discover(&dir).unwrap_err().to_string();
        assert!(err.starts_with("no models folder at "), "{err}");
        assert!(err.contains("[models] dir"), "{err}");
        assert!(discover(Path::new("sql")).unwrap().0.len() > 5);
    }
}
