//! The bench's results: a JSON document and the Markdown table printed at the end (the one kept
//! in `docs/benchmarks.md`).

use std::fmt::Write;

use serde::Serialize;
use serde_json::Value;

use super::measure::Phase;
use super::universe::Universe;

/// One model's time in one step.
#[derive(Debug, Clone, Serialize)]
pub struct ModelTimes {
    /// `marts.name`.
    pub model: String,
    /// Rows published, checked or written.
    pub rows: usize,
    /// Seconds.
    pub seconds: f64,
}

/// One nightly run: ingest, build, test.
#[derive(Debug, Clone, Serialize)]
pub struct Night {
    /// `full` (empty lake), `next day` (one more session per symbol) or `same answers again`
    /// (the next day's answers once more: nothing new).
    pub name: String,
    /// Ingest, build and test.
    pub phases: Vec<Phase>,
    /// Per model, build.
    pub build: Vec<ModelTimes>,
    /// Per model, data tests.
    pub test: Vec<ModelTimes>,
}

/// Everything one bench run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `small`, `half` or `full`.
    pub scale: String,
    /// Synthetic symbols.
    pub symbols: usize,
    /// Years of bars per synthetic symbol.
    pub years: u32,
    /// Synthetic price rows of the full night (the real snapshot's ~30k come on top).
    pub synthetic_rows: usize,
    /// The synthetic history's last session, and the one the next night adds.
    pub days: (String, String),
    /// Real daily returns the synthetic paths are drawn from.
    pub return_pool: usize,
    /// This machine: CPUs, model, memory.
    pub machine: String,
    /// macrolake version and build profile.
    pub build: String,
    /// Writing the replay folders.
    pub generate: Phase,
    /// The full night and the next one.
    pub nights: Vec<Night>,
    /// Each model's SQL run bare over the built lake, written to Parquet.
    pub bare: Vec<ModelTimes>,
    /// What `bench/compare.py` measured (DuckDB, PostgreSQL, pgwire), when it ran.
    pub compare: Option<Value>,
}

impl Report {
    /// A report with the universe described and nothing measured yet.
    pub fn new(scale: &str, symbols: usize, years: u32, u: &Universe, generate: Phase) -> Self {
        Self {
            scale: scale.to_string(),
            symbols,
            years,
            synthetic_rows: u.rows,
            days: (u.last_day.to_string(), u.next_day.to_string()),
            return_pool: u.return_pool,
            machine: machine(),
            build: format!(
                "macrolake {} ({} build)",
                env!("CARGO_PKG_VERSION"),
                if cfg!(debug_assertions) {
                    "debug"
                } else {
                    "release"
                }
            ),
            generate,
            nights: Vec::new(),
            bare: Vec::new(),
            compare: None,
        }
    }

    /// Records a night.
    pub fn add_night(
        &mut self,
        name: &str,
        phases: [Phase; 3],
        build: &[ModelTimes],
        test: &[ModelTimes],
    ) {
        self.nights.push(Night {
            name: name.to_string(),
            phases: phases.to_vec(),
            build: build.to_vec(),
            test: test.to_vec(),
        });
    }

    /// Records the bare queries.
    pub fn set_bare(&mut self, bare: &[ModelTimes]) {
        self.bare = bare.to_vec();
    }

    /// Records the comparison.
    pub fn set_compare(&mut self, compare: Value) {
        self.compare = Some(compare);
    }

    /// Model names in the order the full build ran them.
    pub fn build_order(&self) -> Vec<String> {
        self.nights
            .first()
            .map(|n| n.build.iter().map(|m| m.model.clone()).collect())
            .unwrap_or_default()
    }

    fn phase(&self, night: usize, name: &str) -> Option<&Phase> {
        self.nights
            .get(night)?
            .phases
            .iter()
            .find(|p| p.name == name)
    }

    /// The results as Markdown: phases, models, queries, and the targets.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "### Scale `{}`: {} synthetic symbols × {} years ({} synthetic rows, sessions to {}; next day {}) + the real snapshot\n\n{} · {}\n",
            self.scale,
            self.symbols,
            self.years,
            self.synthetic_rows,
            self.days.0,
            self.days.1,
            self.machine,
            self.build
        );
        self.phases_table(&mut out);
        self.models_table(&mut out);
        self.queries_table(&mut out);
        self.targets(&mut out);
        out
    }

    fn phases_table(&self, out: &mut String) {
        out.push_str("| night | phase | seconds | rows | rows/s | peak RSS MiB | bytes written |\n|---|---|---|---|---|---|---|\n");
        for n in &self.nights {
            for p in &n.phases {
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.2} | {} | {:.0} | {:.0} | {} |",
                    n.name,
                    p.name,
                    p.seconds,
                    p.rows,
                    p.rows as f64 / p.seconds.max(1e-9),
                    p.peak_rss_mib,
                    p.bytes_written
                );
            }
        }
        out.push('\n');
    }

    fn duckdb(&self, model: &str) -> Option<&Value> {
        self.compare
            .as_ref()?
            .get("duckdb")?
            .as_array()?
            .iter()
            .find(|d| d.get("model").and_then(Value::as_str) == Some(model))
    }

    fn models_table(&self, out: &mut String) {
        out.push_str("| model | rows | build s | next-day build s | test s | bare query s | DuckDB s | build ÷ DuckDB | build ÷ bare | test ÷ build |\n|---|---|---|---|---|---|---|---|---|---|\n");
        let Some(full) = self.nights.first() else {
            return;
        };
        let find = |list: &[ModelTimes], name: &str| {
            list.iter().find(|m| m.model == name).map(|m| m.seconds)
        };
        let opt = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.2}"));
        for m in &full.build {
            let next = self.nights.get(1).and_then(|n| find(&n.build, &m.model));
            let test = find(&full.test, &m.model);
            let bare = find(&self.bare, &m.model);
            let duck = self.duckdb(&m.model);
            let duck_s = duck.and_then(|d| d.get("seconds")).and_then(Value::as_f64);
            let duck_text = match (
                duck_s,
                duck.and_then(|d| d.get("error")).and_then(Value::as_str),
            ) {
                (Some(s), _) => format!("{s:.2}"),
                (None, Some(_)) => "fails¹".to_string(),
                _ => "–".to_string(),
            };
            let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                _ => "–".to_string(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {:.2} | {} | {} | {} | {} | {} | {} | {} |",
                m.model,
                m.rows,
                m.seconds,
                opt(next),
                opt(test),
                opt(bare),
                duck_text,
                ratio(Some(m.seconds), duck_s),
                ratio(Some(m.seconds), bare),
                ratio(test, Some(m.seconds)),
            );
        }
        if self.compare.is_some() {
            out.push_str("\n¹ DuckDB cannot run this model's SQL as written (DataFusion dialect); its error is in the JSON.\n");
        }
        out.push('\n');
    }

    fn queries_table(&self, out: &mut String) {
        let Some(queries) = self
            .compare
            .as_ref()
            .and_then(|c| c.get("queries"))
            .and_then(Value::as_array)
        else {
            return;
        };
        let runs = queries
            .first()
            .and_then(|q| q.get("runs"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "Dashboard queries, psycopg over pgwire, {runs} runs each after warm-up (PostgreSQL: the same mart rows loaded with COPY, indexed on date and (symbol, date)):\n"
        );
        out.push_str("| query | macrolake p50 ms | p95 ms | PostgreSQL p50 ms | p95 ms | p50 ratio | p95 ratio | first-time text: macrolake p50 / p95 ms | PostgreSQL p50 / p95 ms | p50 ratio |\n|---|---|---|---|---|---|---|---|---|---|\n");
        let get = |q: &Value, server: &str, k: &str| {
            q.get(server).and_then(|s| s.get(k)).and_then(Value::as_f64)
        };
        let f = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.2}"));
        let r = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.1}×", a / b),
            _ => "–".into(),
        };
        for q in queries {
            let name = q.get("name").and_then(Value::as_str).unwrap_or("?");
            let (m50, m95) = (get(q, "macrolake", "p50_ms"), get(q, "macrolake", "p95_ms"));
            let (p50, p95) = (get(q, "postgres", "p50_ms"), get(q, "postgres", "p95_ms"));
            let (d50, d95) = (
                get(q, "macrolake_distinct", "p50_ms"),
                get(q, "macrolake_distinct", "p95_ms"),
            );
            let (e50, e95) = (
                get(q, "postgres_distinct", "p50_ms"),
                get(q, "postgres_distinct", "p95_ms"),
            );
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} | {} | {} | {} | {} / {} | {} / {} | {} |",
                f(m50),
                f(m95),
                f(p50),
                f(p95),
                r(m50, p50),
                r(m95, p95),
                f(d50),
                f(d95),
                f(e50),
                f(e95),
                r(d50, e50)
            );
        }
        out.push('\n');
    }

    fn targets(&self, out: &mut String) {
        let seconds = |night: usize, name: &str| self.phase(night, name).map_or(0.0, |p| p.seconds);
        let full_build = seconds(0, "build");
        let next = seconds(1, "ingest") + seconds(1, "build");
        let peak = self
            .nights
            .iter()
            .flat_map(|n| n.phases.iter())
            .map(|p| p.peak_rss_mib)
            .fold(0.0, f64::max);
        let _ = writeln!(
            out,
            "- next-day ingest + build: {next:.2} s = {:.1}% of the full build ({full_build:.2} s) — target ≤ 5%",
            100.0 * next / full_build.max(1e-9)
        );
        if self.nights.len() > 2 {
            let again = seconds(2, "ingest") + seconds(2, "build") + seconds(2, "test");
            let _ = writeln!(
                out,
                "- a night whose answers are all as the night before's (nothing new): ingest + build + test {again:.2} s"
            );
        }
        let (mut ours, mut theirs) = (0.0, 0.0);
        if let Some(full) = self.nights.first() {
            for m in &full.build {
                if let Some(d) = self
                    .duckdb(&m.model)
                    .and_then(|d| d.get("seconds"))
                    .and_then(Value::as_f64)
                {
                    ours += m.seconds;
                    theirs += d;
                }
            }
        }
        if theirs > 0.0 {
            let _ = writeln!(
                out,
                "- full build ÷ DuckDB over the models DuckDB runs: {ours:.2} s ÷ {theirs:.2} s = {:.2}× — target ≤ 1.0×",
                ours / theirs
            );
        }
        let _ = writeln!(
            out,
            "- peak RSS of any phase: {peak:.0} MiB — target ≤ 1024 MiB"
        );
        if let Some(rss) = self
            .compare
            .as_ref()
            .and_then(|c| c.get("serve_peak_rss_mib"))
            .and_then(Value::as_f64)
        {
            let _ = writeln!(
                out,
                "- macrolake serve peak RSS during the queries: {rss:.0} MiB"
            );
        }
    }
}

/// CPUs, CPU model and memory of this machine, from `/proc`.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!(
        "{cpus} CPUs ({model}), {mem:.0} GiB RAM, {}",
        std::env::consts::OS
    )
}
