//! The EPS connector: the snapshot's 13 real workbook editions, idempotency, the vendor drop
//! folder's validation, and upstream faults (a truncated workbook, the discontinued URL's 404).

use std::path::{Path, PathBuf};

use macrolake::app::App;
use macrolake::config::Config;
use macrolake::http::Mode;
use macrolake::lake::StagingRow;
use macrolake::sources::{SourceKind, Window, eps};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::common::*;

const FINAL: &str = "sp-500-eps-est_asof_2026-01-29_final-edition.xlsx";

fn final_edition() -> Vec<u8> {
    std::fs::read(snapshot().join("eps_archive").join(FINAL)).unwrap()
}

/// `macrolake ingest eps …` with the snapshot (replayed URL + archive); returns (code, out+err).
fn ingest_eps_snapshot(cwd: &Path, lake: &Path, extra: &[&str]) -> (i32, String) {
    let (code, out, err) = run(bin(cwd)
        .arg("--lake")
        .arg(lake)
        .arg("--config")
        .arg(snapshot_config())
        .arg("--replay")
        .arg(snapshot())
        .args(["ingest", "eps"])
        .args(extra));
    (code, format!("{out}\n{err}"))
}

#[test]
fn snapshot_lands_13_editions_and_a_second_ingest_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let (code, out) = ingest_eps_snapshot(dir.path(), &lake, &[]);
    assert_eq!(code, 0, "{out}");
    let q = "select count(distinct as_of_date) as editions, count(*) as n, \
             min(as_of_date) as first, max(as_of_date) as last from staging.eps_estimates";
    let first = sql_csv(dir.path(), &lake, q);
    assert_eq!(
        first.trim(),
        "editions,n,first,last\n13,5480,2019-01-03,2026-01-30"
    );
    // The final edition (recorded URL body and archive copy: one edition) is as of the sheet's
    // date; the archive's copy wins, so its file name is kept.
    let last = sql_csv(
        dir.path(),
        &lake,
        "select index, period, kind, value, is_estimate, source, file, origin from staging.eps_estimates \
         where as_of_date = '2026-01-30' and ((index = 'SP500' and period in ('2025', '2026Q1') and kind = 'operating_eps') \
         or (index = 'SP400' and period = '2026' and kind = 'operating_eps') \
         or (index = 'SP600' and kind in ('operating_pe', 'projected_growth_pct'))) order by index, period",
    );
    assert_eq!(
        last.trim(),
        format!(
            "index,period,kind,value,is_estimate,source,file,origin\n\
             SP400,2026,operating_eps,203.08,true,spdji_workbook,{FINAL},SECTOR EPS!DL21\n\
             SP500,2025,operating_eps,265.42,true,spdji_workbook,{FINAL},ESTIMATES&PEs!I142\n\
             SP500,2026Q1,operating_eps,69.65,true,spdji_workbook,{FINAL},ESTIMATES&PEs!C141\n\
             SP600,2025,operating_pe,22.0,true,spdji_workbook,{FINAL},ESTIMATES&PEs!K71\n\
             SP600,5Y,projected_growth_pct,13.0288043783294,true,spdji_workbook,{FINAL},ESTIMATES&PEs!L71"
        )
    );
    let raw = std::fs::read_dir(lake.join("raw/eps")).map(|d| d.count());
    assert!(
        matches!(raw, Ok(n) if n > 0),
        "the downloaded body landed raw"
    );

    let version = status_row(dir.path(), &lake, "staging.eps_estimates");
    let dump = "select * except (ingested_at) from staging.eps_estimates order by as_of_date, index, period, kind";
    let rows_before = sql_csv(dir.path(), &lake, dump);
    let (code, out) = ingest_eps_snapshot(dir.path(), &lake, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("eps        ok             0"),
        "no rows written:\n{out}"
    );
    assert_eq!(
        sql_csv(dir.path(), &lake, q),
        first,
        "a second ingest adds no rows"
    );
    assert_eq!(sql_csv(dir.path(), &lake, dump), rows_before);
    assert_eq!(
        status_row(dir.path(), &lake, "staging.eps_estimates"),
        version,
        "no new Delta version"
    );
}

#[test]
fn since_keeps_editions_in_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let (code, out) = ingest_eps_snapshot(dir.path(), &lake, &["--since", "2025-01-01"]);
    assert_eq!(code, 0, "{out}");
    let got = sql_csv(
        dir.path(),
        &lake,
        "select as_of_date, count(*) as n from staging.eps_estimates group by 1 order by 1",
    );
    assert_eq!(
        got.trim(),
        "as_of_date,n\n2025-08-27,471\n2025-09-30,471\n2026-01-30,471"
    );
}

/// A config (beside `dir`) reading only the vendor folder `dir/vendor` (a relative path).
fn vendor_setup(dir: &Path) -> (PathBuf, PathBuf) {
    let vendor = dir.join("vendor");
    std::fs::create_dir_all(&vendor).unwrap();
    let cfg = dir.join("macrolake.toml");
    std::fs::write(
        &cfg,
        "[sources.eps]\nfetch_url = false\nvendor_dir = \"vendor\"\n",
    )
    .unwrap();
    (cfg, vendor)
}

const HEADER: &str = "as_of_date,index,period,eps,kind,source\n";

fn ingest_vendor(dir: &Path, cfg: &Path, extra: &[&str]) -> (i32, String) {
    let (code, out, err) = run(bin(dir)
        .arg("--config")
        .arg(cfg)
        .args(["--lake", "lake", "ingest", "eps"])
        .args(extra));
    (code, format!("{out}\n{err}"))
}

fn vendor_rows(dir: &Path) -> String {
    sql_csv(
        dir,
        &dir.join("lake"),
        "select file, origin, as_of_date, index, period, value, kind, source, is_estimate \
         from staging.eps_estimates order by file, origin",
    )
}

#[test]
fn a_bad_vendor_row_names_file_and_line_and_only_that_file_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, vendor) = vendor_setup(dir.path());
    std::fs::write(
        vendor.join("a_bank.csv"),
        format!("{HEADER}2026-02-13,RUT,2026,98.5,operating_eps,a_bank\n2026-02-13,RUT,NTM,101.25,forward_eps,a_bank\n"),
    )
    .unwrap();
    std::fs::write(
        vendor.join("b_broker.csv"),
        format!("{HEADER}2026-02-13,RUT,2027,120,operating_eps,b_broker\n\n2026-02-13,RUT,2026,n/a,operating_eps,b_broker\n"),
    )
    .unwrap();
    std::fs::write(vendor.join("notes.txt"), "not a CSV: ignored").unwrap();
    let (code, out) = ingest_vendor(dir.path(), &cfg, &[]);
    assert_eq!(code, 1, "{out}");
    let bad = vendor.join("b_broker.csv");
    assert!(
        out.contains(&format!("{}:4: eps \"n/a\" is not a number", bad.display())),
        "file:line and the problem:\n{out}"
    );
    assert_eq!(
        vendor_rows(dir.path()).trim(),
        "file,origin,as_of_date,index,period,value,kind,source,is_estimate\n\
         a_bank.csv,line 2,2026-02-13,RUT,2026,98.5,operating_eps,a_bank,true\n\
         a_bank.csv,line 3,2026-02-13,RUT,NTM,101.25,forward_eps,a_bank,true",
        "the good file landed, nothing of the bad one (not even its valid line 2)"
    );
    let runs = sql_csv(
        dir.path(),
        &dir.path().join("lake"),
        "select status, error from meta.runs where kind = 'ingest'",
    );
    assert!(
        runs.contains("failed") && runs.contains("b_broker.csv:4"),
        "{runs}"
    );

    // Fixed: it lands; a key already landed from another file is refused with both places.
    std::fs::write(
        &bad,
        format!("{HEADER}2026-02-13,RUT,2027,120,operating_eps,b_broker\n"),
    )
    .unwrap();
    std::fs::write(
        vendor.join("c_copy.csv"),
        format!("{HEADER}2026-02-13,RUT,2026,99,operating_eps,a_bank\n"),
    )
    .unwrap();
    let (code, out) = ingest_vendor(dir.path(), &cfg, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("c_copy.csv:2: same as_of_date, index, period, kind, source as a_bank.csv:2"),
        "{out}"
    );
    let rows = vendor_rows(dir.path());
    assert!(
        rows.contains("b_broker.csv,line 2,2026-02-13,RUT,2027,120.0"),
        "{rows}"
    );
    assert!(!rows.contains("c_copy.csv"), "{rows}");
    assert_eq!(rows.trim().lines().count(), 4, "{rows}");

    // A full refresh while a file fails keeps what that file landed before...
    std::fs::remove_file(vendor.join("c_copy.csv")).unwrap();
    std::fs::write(&bad, "as_of_date,index,period,eps\n").unwrap();
    let (code, out) = ingest_vendor(dir.path(), &cfg, &["--full-refresh"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("b_broker.csv:1: header must be"), "{out}");
    assert_eq!(vendor_rows(dir.path()).trim().lines().count(), 4);
    // ...and with every file read, replaces the table with what the folder holds now.
    std::fs::remove_file(&bad).unwrap();
    let (code, out) = ingest_vendor(dir.path(), &cfg, &["--full-refresh"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(vendor_rows(dir.path()).trim().lines().count(), 3);
}

fn mock_app(dir: &Path, url: &str, archive: Option<&Path>) -> App {
    let mut text = format!(
        "[http]\nmax_retries = 1\nbackoff_base_ms = 10\n\n[sources.eps]\nurl = \"{url}\"\n"
    );
    if let Some(a) = archive {
        text.push_str(&format!("archive_dir = \"{}\"\n", a.display()));
    }
    let cfg = dir.join("macrolake.toml");
    std::fs::write(&cfg, text).unwrap();
    let lake = dir.join("lake");
    App::new(
        Config::load(&cfg, true).unwrap(),
        Some(lake.to_str().unwrap()),
        Mode::Live,
    )
    .unwrap()
}

async fn count(app: &App) -> usize {
    let session = app.lake.session(None, &[]).await.unwrap();
    let batches = session
        .ctx
        .sql("select * from staging.eps_estimates")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    batches.iter().map(|b| b.num_rows()).sum()
}

#[tokio::test]
async fn a_truncated_workbook_fails_clearly_and_keeps_the_table_version() {
    let server = MockServer::start().await;
    let body = final_edition();
    Mock::given(method("GET"))
        .and(path("/sp-500-eps-est.xlsx"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(body.clone()))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/sp-500-eps-est.xlsx"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(body[..body.len() - 1000].to_vec()))
        .with_priority(2)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/sp-500-eps-est.xlsx", server.uri());
    let app = mock_app(dir.path(), &url, None);
    let outcomes = app
        .ingest(&[SourceKind::Eps], Window::default())
        .await
        .unwrap();
    assert!(outcomes[0].errors.is_empty(), "{:?}", outcomes[0].errors);
    assert_eq!(outcomes[0].rows, 471);
    let version = app
        .lake
        .version(&eps::row::EstimateRow::table())
        .await
        .unwrap();
    assert!(version.is_some());

    let outcomes = app
        .ingest(&[SourceKind::Eps], Window::default())
        .await
        .unwrap();
    let err = outcomes[0].errors[0].to_string();
    assert!(
        err.contains("eps current workbook: malformed body from")
            && err.contains(&url)
            && err.contains("not a readable xlsx workbook"),
        "{err}"
    );
    assert_eq!(
        app.lake
            .version(&eps::row::EstimateRow::table())
            .await
            .unwrap(),
        version
    );
    assert_eq!(count(&app).await, 471);
}

#[test]
fn the_discontinued_url_404_warns_when_an_archive_stands_in_and_fails_without() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(MockServer::start());
    rt.block_on(
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(404).set_body_string("Page not found"))
            .mount(&server),
    );
    let url = format!("{}/sp-500-eps-est.xlsx", server.uri());
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("saved");
    std::fs::create_dir_all(&archive).unwrap();
    std::fs::write(archive.join(FINAL), final_edition()).unwrap();
    std::fs::write(archive.join("~$lock.xlsx"), b"excel lock file").unwrap();
    let cfg = dir.path().join("with_archive.toml");
    std::fs::write(
        &cfg,
        format!("[sources.eps]\nurl = \"{url}\"\narchive_dir = \"saved\"\n"),
    )
    .unwrap();
    let (code, out, err) = run(bin(dir.path())
        .arg("--config")
        .arg(&cfg)
        .args(["--lake", "lake", "ingest", "eps"]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("WARN")
            && err.contains("answered 404")
            && err.contains("landing the archive only"),
        "{err}"
    );
    assert!(out.contains("eps        ok           471"), "{out}");

    let cfg = dir.path().join("url_only.toml");
    std::fs::write(&cfg, format!("[sources.eps]\nurl = \"{url}\"\n")).unwrap();
    let (code, out, err) = run(bin(dir.path())
        .arg("--config")
        .arg(&cfg)
        .args(["--lake", "lake2", "ingest", "eps"]));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("HTTP 404") && err.contains("discontinued") && err.contains("archive_dir"),
        "{err}"
    );
}

/// Vendor rows feed `marts.eps_growth` per index by the same rule as the workbook: the newest
/// edition known (a vendor file the day after its as-of date), at most 45 days, and a base year
/// that is not positive gives NULL with the reason. (The numbers are format examples.)
#[test]
fn vendor_rows_reach_eps_growth_by_the_stated_rule() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, vendor) = vendor_setup(dir.path());
    std::fs::write(
        vendor.join("a_bank.csv"),
        format!(
            "{HEADER}2026-02-13,RUT,2026,100,operating_eps,a_bank\n2026-02-13,RUT,2027,120,operating_eps,a_bank\n\
             2026-02-13,XYZ,2026,-5,operating_eps,a_bank\n2026-02-13,XYZ,2027,10,operating_eps,a_bank\n"
        ),
    )
    .unwrap();
    let (code, out) = ingest_vendor(dir.path(), &cfg, &[]);
    assert_eq!(code, 0, "{out}");
    let lake = dir.path().join("lake");
    let (code, out, err) =
        run(bin(repo())
            .arg("--lake")
            .arg(&lake)
            .args(["build", "--select", "eps_growth"]));
    assert_eq!(code, 0, "{out}\n{err}");
    let got = sql_csv(
        dir.path(),
        &lake,
        "select index, min(date) as first, max(date) as last, count(*) as days, round(max(growth_pct), 9) as growth, \
         max(growth_note) as note from marts.eps_growth group by index order by index",
    );
    assert_eq!(
        got.trim(),
        "index,first,last,days,growth,note\n\
         RUT,2026-02-14,2026-03-30,45,20.0,\n\
         XYZ,2026-02-14,2026-03-30,45,,2026 EPS is not positive (-5.0): growth has no meaning"
    );
}

/// What the EPS ingest logs when it reads the inputs of its last landing again.
const NOTHING_PARSED: &str =
    "the same inputs as the last landing, into a table unchanged since (nothing parsed)";

#[tokio::test]
async fn the_inputs_of_the_last_landing_are_not_parsed_again_until_the_table_or_an_input_changes() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let (code, out) = ingest_eps_snapshot(dir.path(), &lake, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains(NOTHING_PARSED), "{out}");
    let dump = "select * except (ingested_at) from staging.eps_estimates order by as_of_date, index, period, kind";
    let landed = sql_csv(dir.path(), &lake, dump);
    let (code, out) = ingest_eps_snapshot(dir.path(), &lake, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(NOTHING_PARSED), "{out}");

    // Something else commits to the table (a hand-made "fix" of one value): the same inputs are
    // parsed again and the MERGE puts the workbook's value back.
    let one = "as_of_date = '2026-01-30' and index = 'SP500' and period = '2026' and kind = 'operating_eps'";
    let handle = macrolake::lake::Lake::open(lake.to_str().unwrap(), false).unwrap();
    let session = handle.session(None, &[]).await.unwrap();
    let changed = session
        .ctx
        .sql(&format!(
            "select * replace (value + 1 as value) from staging.eps_estimates where {one}"
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(changed.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    let table = eps::row::EstimateRow::table();
    let outcome = handle
        .write(
            &table,
            changed,
            macrolake::lake::WriteMode::merge_on(eps::row::EstimateRow::KEYS),
        )
        .await
        .unwrap();
    assert!(outcome.committed);
    assert_ne!(sql_csv(dir.path(), &lake, dump), landed);
    let (code, out) = ingest_eps_snapshot(dir.path(), &lake, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        !out.contains(NOTHING_PARSED),
        "the table changed: parsed again\n{out}"
    );
    assert_eq!(
        sql_csv(dir.path(), &lake, dump),
        landed,
        "the workbook's value is back"
    );

    // Other settings (another window): parsed again. (A changed input: the truncated workbook
    // of a_truncated_workbook_fails_clearly_and_keeps_the_table_version is parsed and refused.)
    let (code, out) = ingest_eps_snapshot(dir.path(), &lake, &[]);
    assert!(code == 0 && out.contains(NOTHING_PARSED), "{out}");
    let (code, out) = ingest_eps_snapshot(dir.path(), &lake, &["--since", "2020-01-01"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        !out.contains(NOTHING_PARSED),
        "another window: parsed again\n{out}"
    );
}
