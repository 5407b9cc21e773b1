//! The status page (`serve --http`) over a lake built from the snapshot plus one failed ingest:
//! nothing without a login but /healthz, wrong logins get 401 and no data, and each page shows
//! what the lake holds (the browser test in tests/clients/browser.cjs looks at the same pages in
//! Chromium).

use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE, WWW_AUTHENTICATE};

use super::common::*;
use super::serve::{PASSWORD, start_with};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get(c: &reqwest::Client, url: &str, cookie: &str) -> (StatusCode, String) {
    let r = c.get(url).header("cookie", cookie).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn login(c: &reqwest::Client, base: &str, password: &str) -> reqwest::Response {
    c.post(format!("{base}login"))
        .form(&[
            ("user", "bi"),
            ("password", password),
            ("next", "/freshness"),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_page_needs_a_login_and_shows_runs_freshness_chart_lineage_and_downloads() {
    let dir = tempfile::tempdir().unwrap();
    let lake = nightly_lake(dir.path());
    // A failed run: FRED from an empty replay folder (nothing recorded → the source fails).
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, _, err) = run(bin(repo())
        .arg("--lake")
        .arg(&lake)
        .arg("--config")
        .arg(snapshot_config())
        .arg("--replay")
        .arg(&empty)
        .args(["ingest", "fred"]));
    assert_ne!(code, 0, "an ingest with no recordings must fail: {err}");

    let models = format!("[models]\ndir = {:?}\n", repo().join("sql"));
    let server = start_with(&lake, &models, &["--http", "127.0.0.1:0"]);
    let base = server
        .web
        .clone()
        .expect("the status page's URL is printed");
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let c = client();

    // Public: /healthz only. Everything else goes to the login form, data-free.
    let (status, body) = get(&c, &format!("{base}healthz"), "").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok\n"));
    for path in [
        "",
        "freshness",
        "download/marts.liquidity_vs_risk.csv",
        "lineage",
    ] {
        let r = c.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "/{path}");
        let to = r.headers()[LOCATION].to_str().unwrap().to_string();
        assert!(to.starts_with("/login?next=%2F"), "/{path} → {to}");
        assert_eq!(
            r.text().await.unwrap(),
            "",
            "/{path} answered data without a login"
        );
    }

    // A wrong password: 401, the form again, no cookie, nothing of the lake.
    let r = login(&c, &base, "wrong").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get(SET_COOKIE).is_none());
    let body = r.text().await.unwrap();
    assert!(body.contains("id=\"login-error\""), "{body}");
    assert!(
        !body.contains("nightly") && !body.contains("id=\"runs\""),
        "{body}"
    );
    // HTTP Basic: a wrong password is 401 with a challenge; the right one gets the page.
    let r = c
        .get(format!("{base}freshness"))
        .basic_auth("bi", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get(WWW_AUTHENTICATE).is_some());
    let r = c
        .get(format!("{base}freshness"))
        .basic_auth("bi", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // The right password: a session cookie and a redirect to where the user was going.
    let r = login(&c, &base, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/freshness");
    let set = r.headers()[SET_COOKIE].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();

    // Runs: the nightly job, its commands, and the failed ingest in red linking to its error.
    let (status, runs) = get(&c, &base, &cookie).await;
    assert_eq!(status, StatusCode::OK, "{runs}");
    assert!(runs.contains("id=\"runs\""), "{runs}");
    assert!(runs.contains(">nightly</a>"), "{runs}");
    let failed_row = runs
        .split("<tr")
        .find(|r| r.starts_with(" class=\"failed\""))
        .unwrap_or_else(|| panic!("no failed run row: {runs}"));
    let href = failed_row
        .split("href=\"")
        .find_map(|s| s.split('"').next().filter(|h| h.ends_with("#error")))
        .unwrap_or_else(|| panic!("the failed run links to its error: {failed_row}"));
    let (status, run_page) = get(&c, &format!("{base}{}", &href[1..]), &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(run_page.contains("id=\"error\""), "{run_page}");
    assert!(run_page.contains("fred"), "{run_page}");
    assert!(
        run_page.contains("<td class=\"failed\">failed</td>"),
        "{run_page}"
    );

    // Freshness: every table with its version; staging limits and the marts' tests.
    let (_, fresh) = get(&c, &format!("{base}freshness"), &cookie).await;
    for t in [
        "marts.liquidity_vs_risk",
        "staging.prices_daily",
        "staging.fred_observations",
        "meta.runs",
    ] {
        assert!(fresh.contains(&format!("<td>{t}</td>")), "{t}: {fresh}");
    }
    assert!(fresh.contains("test freshness(date, 14)"), "{fresh}");
    assert!(fresh.contains("class=\"failed\">stale<") || fresh.contains("class=\"ok\">fresh<"));

    // The product: the chart inline and the mart's 30 newest rows, newest first.
    let (status, product) = get(&c, &format!("{base}product?from=2025-01-01"), &cookie).await;
    assert_eq!(status, StatusCode::OK, "{product}");
    assert!(
        product.contains("<figure id=\"chart\"><svg"),
        "no inline chart"
    );
    let newest = sql_csv(
        repo(),
        &lake,
        "select cast(max(date) as varchar) from marts.liquidity_vs_risk",
    );
    let newest = newest.lines().nth(1).unwrap();
    let rows = product.split("id=\"newest-rows\"").nth(1).unwrap();
    assert_eq!(rows.matches("<tr>").count(), 1 + 30, "header + 30 rows");
    assert!(
        rows.contains(&format!("<td>{newest}</td>")),
        "newest day {newest}"
    );
    let (status, bad) = get(&c, &format!("{base}product?from=2025-13-01"), &cookie).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(bad.contains("is not a date"), "{bad}");

    // Lineage: the graph links each model; a model's page has its columns, tests and builds.
    let (_, lineage) = get(&c, &format!("{base}lineage"), &cookie).await;
    assert!(lineage.contains("<svg id=\"lineage-graph\""));
    assert!(lineage.contains("href=\"/lineage/marts.liquidity_vs_risk\""));
    let (status, model) = get(
        &c,
        &format!("{base}lineage/marts.liquidity_vs_risk"),
        &cookie,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{model}");
    assert!(
        model.contains("<td>net_liquidity_musd</td><td>Float64</td>"),
        "{model}"
    );
    assert!(model.contains("freshness(date, 14)"), "{model}");
    assert!(
        model.contains("href=\"/lineage/marts.net_liquidity_daily\""),
        "reads"
    );
    assert!(model.contains("id=\"builds\""), "{model}");

    // Downloads: the bytes `macrolake export` writes.
    let r = c
        .get(format!("{base}download/marts.liquidity_vs_risk.csv"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("marts.liquidity_vs_risk.csv")
    );
    // Sent while the table is read (chunked), not encoded whole first.
    assert!(
        r.headers().get("content-length").is_none(),
        "{:?}",
        r.headers()
    );
    assert_eq!(r.headers()["transfer-encoding"], "chunked");
    let downloaded = r.bytes().await.unwrap();
    let out = dir.path().join("exports");
    let (code, _, err) = run(bin(repo()).arg("--lake").arg(&lake).args([
        "export",
        "liquidity_vs_risk",
        "--format",
        "csv",
        "--to",
        out.to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "{err}");
    let exported = std::fs::read(out.join("marts.liquidity_vs_risk.csv")).unwrap();
    assert!(downloaded.len() > 100_000, "{} bytes", downloaded.len());
    assert_eq!(downloaded.as_ref(), exported.as_slice());
    let (status, _) = get(&c, &format!("{base}download/marts.nope.csv"), &cookie).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Read-only, and a logout ends the session.
    let r = c
        .post(format!("{base}freshness"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let r = c
        .post(format!("{base}logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (status, _) = get(&c, &base, &cookie).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the old cookie still worked");
}
