//! The DuckDB baseline: Python's `duckdb` (pinned) from PyPI, installed by the bench into a
//! virtual environment (`python3 -m venv`) under the build's target directory, runs
//! `case_flow.py` over the same NDJSON file. When python3, venv or pip cannot give it, the
//! baseline is reported unavailable with the reason; it is never replaced by anything else.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _};

/// The DuckDB release the baseline is pinned to.
pub const VERSION: &str = "2.0.1";
const SCRIPT: &str = include_str!("case_flow.py");

/// One case-flow row: period, code, reported, cases, referred.
pub type Row = (String, String, u64, u64, u64);

/// What one run of the script gave.
pub struct Run {
    pub version: String,
    pub load_s: f64,
    pub query_s: Vec<f64>,
    pub rows: Vec<Row>,
}

/// The default place of the virtual environment: `bench-venv` in the target directory this
/// binary was built into (`target/release/gryning` → `target/bench-venv`), else the work dir.
pub fn default_venv(work: &Path) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            let profile = exe.parent()?;
            let target = profile.parent()?;
            (target.file_name()? == "target" || target.join("CACHEDIR.TAG").exists())
                .then(|| target.join("bench-venv"))
        })
        .unwrap_or_else(|| work.join("bench-venv"))
}

fn python(venv: &Path) -> PathBuf {
    venv.join("bin").join("python")
}

fn quiet(mut command: Command, what: &str) -> anyhow::Result<()> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        bail!("{what} failed: {}", last.trim());
    }
    Ok(())
}

/// Makes sure `venv` holds duckdb [`VERSION`]; the error says why it cannot.
pub fn install(venv: &Path) -> anyhow::Result<()> {
    let has = |venv: &Path| {
        Command::new(python(venv))
            .args([
                "-c",
                &format!("import duckdb, sys; sys.exit(duckdb.__version__ != {VERSION:?})"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if has(venv) {
        return Ok(());
    }
    if !python(venv).exists() {
        let mut create = Command::new("python3");
        create.arg("-m").arg("venv").arg(venv);
        quiet(create, "python3 -m venv")?;
    }
    let mut pip = Command::new(python(venv));
    pip.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--timeout",
        "30",
        "--retries",
        "1",
        &format!("duckdb=={VERSION}"),
    ]);
    quiet(pip, &format!("pip install duckdb=={VERSION}"))?;
    if !has(venv) {
        bail!(
            "duckdb {VERSION} is not importable in {} after pip install",
            venv.display()
        );
    }
    Ok(())
}

/// Loads `events` into DuckDB and computes case-flow `queries` times.
pub fn run(venv: &Path, work: &Path, events: &Path, queries: u32) -> anyhow::Result<Run> {
    let script = work.join("case_flow.py");
    std::fs::write(&script, SCRIPT).context("writing case_flow.py")?;
    let out = Command::new(python(venv))
        .arg(&script)
        .arg(events)
        .arg(queries.to_string())
        .stdin(Stdio::null())
        .output()
        .context("cannot run the DuckDB script")?;
    if !out.status.success() {
        bail!(
            "the DuckDB script failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("the DuckDB script's output is not JSON")?;
    let f = |x: &serde_json::Value| x.as_f64().context("a number in the DuckDB output");
    let rows = v["rows"]
        .as_array()
        .context("rows")?
        .iter()
        .map(|r| {
            let s = |i: usize| r[i].as_str().map(str::to_string).context("a text cell");
            let n = |i: usize| r[i].as_u64().context("a count cell");
            Ok((s(0)?, s(1)?, n(2)?, n(3)?, n(4)?))
        })
        .collect::<anyhow::Result<Vec<Row>>>()?;
    Ok(Run {
        version: v["version"].as_str().unwrap_or_default().to_string(),
        load_s: f(&v["load_s"])?,
        query_s: v["query_s"]
            .as_array()
            .context("query_s")?
            .iter()
            .map(f)
            .collect::<anyhow::Result<_>>()?,
        rows,
    })
}

/// gryning's `table case-flow --format json` output as rows.
pub fn gryning_rows(json: &[u8]) -> anyhow::Result<Vec<Row>> {
    let v: serde_json::Value =
        serde_json::from_slice(json).context("gryning table --format json gave no JSON")?;
    let mut rows = v
        .as_array()
        .context("the table is not a JSON array")?
        .iter()
        .map(|r| {
            let s = |k: &str| {
                r[k].as_str()
                    .map(str::to_string)
                    .with_context(|| k.to_string())
            };
            let n = |k: &str| r[k].as_u64().with_context(|| k.to_string());
            Ok((
                s("period")?,
                s("code")?,
                n("reported")?,
                n("cases")?,
                n("referred")?,
            ))
        })
        .collect::<anyhow::Result<Vec<Row>>>()?;
    rows.sort();
    Ok(rows)
}
