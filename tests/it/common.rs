//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The bundled real-data replay snapshot.
pub fn snapshot() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upstream")
}

/// The snapshot's configuration (default series minus WSHOBL).
pub fn snapshot_config() -> PathBuf {
    snapshot().join("macrolake.toml")
}

/// The `macrolake` binary with a clean environment (no secrets, no config from the cwd).
pub fn bin(cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_macrolake"));
    cmd.current_dir(cwd)
        .env_remove("FRED_API_KEY")
        .env_remove("MACROLAKE_LAKE")
        .env_remove("MACROLAKE_CONFIG")
        .env_remove("MACROLAKE_LOG")
        .env("NO_COLOR", "1");
    cmd
}

/// Runs a command and returns (exit code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("binary runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// The binary on `lake` with the snapshot's config, replaying the snapshot; add the command.
pub fn on_snapshot(cwd: &Path, lake: &Path) -> Command {
    let mut cmd = bin(cwd);
    cmd.arg("--lake")
        .arg(lake)
        .arg("--config")
        .arg(snapshot_config())
        .arg("--replay")
        .arg(snapshot());
    cmd
}

/// Ingests the snapshot into `lake` and asserts success.
pub fn ingest_snapshot(cwd: &Path, lake: &Path) {
    let (code, out, err) = run(on_snapshot(cwd, lake).arg("ingest"));
    assert_eq!(code, 0, "ingest failed\nstdout:\n{out}\nstderr:\n{err}");
}

/// `table`'s line of `macrolake status` as its trimmed cells joined by ` | ` (table, rows,
/// newest date, last ingest, version). Column widths follow the other tables' values, so a
/// padded line is not compared.
pub fn status_row(cwd: &Path, lake: &Path, table: &str) -> String {
    let (code, out, err) = run(bin(cwd).arg("--lake").arg(lake).arg("status"));
    assert_eq!(code, 0, "status failed\n{err}");
    status_rows(&out)
        .into_iter()
        .find(|row| row.starts_with(&format!("{table} |")))
        .unwrap_or_else(|| panic!("{table} not in status:\n{out}"))
}

/// Every table line of a `macrolake status` output as trimmed cells joined by ` | `.
pub fn status_rows(status: &str) -> Vec<String> {
    status
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| table "))
        .map(|l| {
            l.trim_matches(|c: char| c == '|' || c.is_whitespace())
                .split('|')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect()
}

/// `macrolake sql` as CSV; asserts success.
pub fn sql_csv(cwd: &Path, lake: &Path, query: &str) -> String {
    let (code, out, err) = run(bin(cwd)
        .arg("--lake")
        .arg(lake)
        .args(["sql", "--format", "csv", query]));
    assert_eq!(code, 0, "sql failed: {query}\nstderr:\n{err}");
    out
}

/// A config file pointing FRED at a mock server, with fast retries.
pub fn mock_config(dir: &Path, base: &str, series: &[&str]) -> PathBuf {
    let list: Vec<String> = series.iter().map(|s| format!("\"{s}\"")).collect();
    let text = format!(
        "[http]\nmax_retries = 3\nbackoff_base_ms = 10\nbackoff_cap_ms = 50\n\n\
         [sources.fred]\nseries = [{}]\nfredgraph_url = \"{base}/graph/fredgraph.csv\"\napi_url = \"{base}/fred/\"\n",
        list.join(", ")
    );
    let path = dir.join("macrolake.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The real WALCL body from the snapshot.
pub fn real_body(series: &str) -> String {
    std::fs::read_to_string(snapshot().join(format!(
        "fred.stlouisfed.org/graph_fredgraph.csv--id={series}.body.csv"
    )))
    .unwrap()
}

/// The repository root (the CLI finds `sql/` and `schedules/` there).
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds a lake at `<dir>/lake` from the snapshot with `macrolake run nightly` (ingest, build,
/// test: about 20 s) and returns its path.
pub fn nightly_lake(dir: &Path) -> PathBuf {
    let lake = dir.join("lake");
    let (code, out, err) = run(on_snapshot(repo(), &lake).args(["run", "nightly"]));
    assert_eq!(code, 0, "nightly failed\nstdout:\n{out}\nstderr:\n{err}");
    lake
}

/// Every file below `dir`, at any depth.
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p)
            } else {
                out.push(p)
            }
        }
    }
    out
}
