//! Gathers the parts (`limits.json`, `ingest.json`, ... in `--parts`) into one table on stdout
//! and the same figures as JSON in `--json`. A part that failed left `NAME.err` instead; its
//! figures are reported as "not measured: <reason>".

use crate::world::{loadavg, write_json};
use crate::Args;
use anyhow::Result;
use coalition_core::clock::{Clock as _, SystemClock};
use serde_json::{json, Value};
use std::path::Path;

const PARTS: [&str; 6] = ["limits", "ingest", "redeem", "audit", "pg", "memory"];

/// Target: ingest ≥ this × the single-core batched verify rate.
const INGEST_RATIO: f64 = 0.8;
/// Target: redemptions/s on 4 nodes.
const REDEEM_RATE: f64 = 2000.0;
/// Target: p99 latency of a redemption, ms.
const REDEEM_P99_MS: f64 = 50.0;
/// Target: audit records/s.
const AUDIT_RATE: f64 = 100_000.0;
/// Target: redemption rate ≥ this × the PostgreSQL baseline.
const PG_RATIO: f64 = 1.0;
/// Signature verifications per certified redemption across a 4-node coalition with quorum 3, counted
/// along the code path (docs/performance.md): the redeemer checks the member's signature (1), its own
/// vote's order (1) and 3 votes; 3 other voters check the member's signature; 3 receivers each check
/// the gossiped entry (author, member, 3 votes) and its gossipsub message signature.
const VERIFICATIONS_PER_REDEMPTION: f64 = 26.0;
/// Target: node RSS in MiB at [`RSS_LOTS`] lots.
const RSS_MIB: f64 = 512.0;
const RSS_LOTS: f64 = 1_000_000.0;

/// One part: its figures, or why there are none.
fn load(dir: &Path, name: &str) -> Result<Value, String> {
    match std::fs::read_to_string(dir.join(format!("{name}.json"))) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{name}.json unreadable: {e}")),
        Err(_) => Err(std::fs::read_to_string(dir.join(format!("{name}.err")))
            .map(|t| t.trim().lines().last().unwrap_or("failed").to_string())
            .unwrap_or_else(|_| "not run".to_string())),
    }
}

fn num(v: &Result<Value, String>, ptr: &str) -> Result<f64, String> {
    match v {
        Ok(v) => v
            .pointer(ptr)
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("no {ptr} in output")),
        Err(e) => Err(e.clone()),
    }
}

/// Thousands separators for a rate or count.
fn fmt_int(x: f64) -> String {
    let s = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x < 0.0 {
        format!("-{out}")
    } else {
        out
    }
}

/// `"{what} ({n}{unit})"`, or `what` alone when `n` is unknown.
fn label(what: &str, n: Result<f64, String>, unit: &str) -> String {
    match n {
        Ok(n) => format!("{what} ({}{unit})", fmt_int(n)),
        Err(_) => what.to_string(),
    }
}

struct Row {
    key: &'static str,
    figure: String,
    measured: String,
    value: Option<f64>,
    reference: String,
    target: String,
    verdict: &'static str,
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "MET",
        Some(false) => "MISSED",
        None => "-",
    }
}

fn row(
    key: &'static str,
    figure: impl Into<String>,
    value: Result<f64, String>,
    unit: &str,
) -> Row {
    let (measured, value) = match value {
        Ok(v) => (format!("{}{unit}", fmt_int(v)), Some(v)),
        Err(e) => (format!("not measured: {e}"), None),
    };
    Row {
        key,
        figure: figure.into(),
        measured,
        value,
        reference: String::new(),
        target: String::new(),
        verdict: "-",
    }
}

pub(crate) fn run(args: &Args) -> Result<()> {
    let dir = args.path("parts")?;
    let json_path = args.path("json")?;
    let run_secs: Option<f64> = args.str("secs").and_then(|s| s.parse().ok());
    let parts: Vec<(&str, Result<Value, String>)> =
        PARTS.iter().map(|n| (*n, load(&dir, n))).collect();
    let get = |name: &str| {
        parts
            .iter()
            .find(|p| p.0 == name)
            .map(|p| p.1.clone())
            .unwrap_or(Err("not run".into()))
    };
    let (limits, ingest, redeem, audit, pg, memory) = (
        get("limits"),
        get("ingest"),
        get("redeem"),
        get("audit"),
        get("pg"),
        get("memory"),
    );
    let mut rows = Vec::new();

    // 1. Limits.
    rows.push(row(
        "ed25519_verify",
        "ed25519 verify_strict, 1 core",
        num(&limits, "/ed25519_verify_strict_per_sec"),
        "/s",
    ));
    let batched = num(&limits, "/ed25519_verify_batched_per_sec");
    rows.push(row(
        "ed25519_verify_batched",
        "ed25519 batched verify (512), 1 core",
        batched.clone(),
        "/s",
    ));
    rows.push(row(
        "blake3",
        "blake3 of 300 B (one record), 1 core",
        num(&limits, "/blake3_per_sec"),
        "/s",
    ));
    let mut r = row(
        "rocksdb_synced",
        "RocksDB synced write batches (8 puts)",
        num(&limits, "/rocksdb_synced_batches_per_sec"),
        "/s",
    );
    if let Ok(v8) = num(&limits, "/rocksdb_synced_batches_per_sec_8_writers") {
        r.reference = format!("{}/s with 8 writers", fmt_int(v8));
    }
    rows.push(r);

    // 2. Ingest.
    let mut r = row(
        "ingest",
        label("Ingest, catch-up", num(&ingest, "/entries"), " issues"),
        num(&ingest, "/records_per_sec"),
        " rec/s",
    );
    r.target = format!(">= {INGEST_RATIO:.2} x batched verify");
    if let (Some(v), Ok(b)) = (r.value, &batched) {
        let ratio = v / b;
        r.reference = format!("{ratio:.2} x batched verify");
        r.verdict = verdict(Some(ratio >= INGEST_RATIO));
    }
    rows.push(r);

    // 3. Redemption.
    let rate = num(&redeem, "/certificates_per_sec");
    let mut r = row(
        "redeem",
        label(
            "Redemptions, 4 nodes",
            num(&redeem, "/concurrency"),
            " concurrent",
        ),
        rate.clone(),
        " cert/s",
    );
    r.target = format!(">= {} /s", fmt_int(REDEEM_RATE));
    r.verdict = verdict(r.value.map(|v| v >= REDEEM_RATE));
    let cores = num(&limits, "/cores");
    if let (Some(v), Ok(single), Ok(cores)) = (
        r.value,
        num(&limits, "/ed25519_verify_strict_per_sec"),
        &cores,
    ) {
        // What the machine's cores could certify if verifying signatures were all they did.
        let ceiling = cores * single / VERIFICATIONS_PER_REDEMPTION;
        r.reference = format!(
            "{:.2} x signature ceiling {}/s",
            v / ceiling,
            fmt_int(ceiling)
        );
    } else if let Ok(f) = num(&redeem, "/certificates") {
        r.reference = format!("{} certificates", fmt_int(f));
    }
    rows.push(r);
    let p99 = num(&redeem, "/p99_ms");
    let mut r = row(
        "redeem_latency",
        "Redemption latency p50 / p99",
        p99.clone(),
        " ms",
    );
    if let (Ok(p50), Ok(p99)) = (num(&redeem, "/p50_ms"), &p99) {
        r.measured = format!("{p50:.1} / {p99:.1} ms");
    }
    r.target = format!("p99 <= {REDEEM_P99_MS:.0} ms");
    r.verdict = verdict(r.value.map(|v| v <= REDEEM_P99_MS));
    rows.push(r);

    // 4. Audit.
    let mut r = row(
        "audit",
        label("Audit verify, offline", num(&audit, "/entries"), " records"),
        num(&audit, "/records_per_sec"),
        " rec/s",
    );
    if let (Some(v), Ok(b), Ok(cores), Ok(sigs), Ok(entries)) = (
        r.value,
        &batched,
        &cores,
        num(&audit, "/signatures"),
        num(&audit, "/entries"),
    ) {
        // Every core doing nothing but batched verification of the export's signatures.
        let ceiling = cores * b * entries / sigs.max(1.0);
        r.reference = format!(
            "{:.2} x signature ceiling {}/s",
            v / ceiling,
            fmt_int(ceiling)
        );
    }
    r.target = format!(">= {} /s", fmt_int(AUDIT_RATE));
    r.verdict = verdict(r.value.map(|v| v >= AUDIT_RATE));
    rows.push(r);

    // 5. PostgreSQL baseline.
    let mut r = row(
        "pg_earn",
        "PostgreSQL earn (SERIALIZABLE txn)",
        num(&pg, "/earn/ops_per_sec"),
        " op/s",
    );
    if let (Ok(p50), Ok(p99)) = (num(&pg, "/earn/p50_ms"), num(&pg, "/earn/p99_ms")) {
        r.reference = format!("p50 {p50:.1} / p99 {p99:.1} ms");
    }
    rows.push(r);
    let pg_redeem = num(&pg, "/redeem/ops_per_sec");
    let mut r = row(
        "pg_redeem",
        "PostgreSQL redeem (SERIALIZABLE txn)",
        pg_redeem.clone(),
        " op/s",
    );
    if let (Ok(p50), Ok(p99)) = (num(&pg, "/redeem/p50_ms"), num(&pg, "/redeem/p99_ms")) {
        r.reference = format!("p50 {p50:.1} / p99 {p99:.1} ms");
    }
    rows.push(r);
    let ratio = match (&rate, &pg_redeem) {
        (Ok(a), Ok(b)) if *b > 0.0 => Ok(a / b),
        (Err(e), _) => Err(format!("redemption: {e}")),
        (_, Err(e)) => Err(format!("PostgreSQL: {e}")),
        _ => Err("PostgreSQL rate is 0".into()),
    };
    let mut r = row("redeem_vs_pg", "Redemption / PostgreSQL redeem", ratio, "");
    if let Some(v) = r.value {
        r.measured = format!("{v:.2} x");
    }
    r.target = format!(">= {PG_RATIO:.1} x");
    r.verdict = verdict(r.value.map(|v| v >= PG_RATIO));
    rows.push(r);

    // Earning, for the record: the set-up phase of the redemption run against the SQL earn.
    let issue = num(&redeem, "/setup/issues_per_sec");
    let mut r = row(
        "issue",
        "Issues over HTTP, 4 nodes (16 clients)",
        issue.clone(),
        " op/s",
    );
    if let (Ok(a), Ok(b)) = (&issue, num(&pg, "/earn/ops_per_sec")) {
        if b > 0.0 {
            r.reference = format!("{:.2} x PostgreSQL earn", a / b);
        }
    }
    rows.push(r);

    // 6. Memory.
    let lots = num(&memory, "/lots");
    let peak = num(&memory, "/peak_rss_mib");
    let mut r = row(
        "rss",
        label("Node peak RSS", lots.clone(), " lots"),
        peak.clone(),
        " MiB",
    );
    if let Some(v) = r.value {
        r.measured = format!("{v:.0} MiB");
    }
    r.target = format!("<= {RSS_MIB:.0} MiB at {} lots", fmt_int(RSS_LOTS));
    let mut extrapolated = None;
    if let (Ok(p), Ok(l)) = (&peak, &lots) {
        if *l >= RSS_LOTS {
            r.verdict = verdict(Some(*p <= RSS_MIB));
        } else if *l > 0.0 {
            // Linear in the lots above what the process held before the store opened.
            let base = num(&memory, "/rss_before_store_mib").unwrap_or(0.0);
            let e = base + (p - base) * RSS_LOTS / l;
            extrapolated = Some(e);
            r.reference = format!("EXTRAPOLATED to 1M lots: {e:.0} MiB");
            r.verdict = verdict(Some(e <= RSS_MIB));
        }
    }
    rows.push(r);

    // The table.
    let headers = [
        "Figure",
        "Measured",
        "Reference / ratio",
        "Target",
        "Verdict",
    ];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.figure.clone(),
                r.measured.clone(),
                r.reference.clone(),
                r.target.clone(),
                r.verdict.to_string(),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for c in &cells {
        for (w, s) in widths.iter_mut().zip(c) {
            *w = (*w).max(s.chars().count());
        }
    }
    let line = |c: &[String]| {
        let s: Vec<String> = c
            .iter()
            .zip(widths)
            .map(|(s, w)| format!("{s:<w$}"))
            .collect();
        format!("| {} |", s.join(" | "))
    };
    let mut table = String::new();
    table += &line(&headers.map(String::from));
    table += "\n";
    table += &format!(
        "|{}|\n",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("|")
    );
    for c in &cells {
        table += &line(c);
        table += "\n";
    }
    print!("{table}");
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let load_now = loadavg();
    println!(
        "\n{cores} cores, load average {}{}",
        load_now
            .map(|l| format!("{l:.2}"))
            .unwrap_or_else(|| "?".into()),
        run_secs
            .map(|s| format!(", benchmark run {s:.0} s"))
            .unwrap_or_default()
    );

    let figures: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "key": r.key,
                "figure": r.figure,
                "value": r.value,
                "measured": r.measured,
                "reference": r.reference,
                "target": r.target,
                "verdict": r.verdict,
            })
        })
        .collect();
    let raw: serde_json::Map<String, Value> = parts
        .iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                v.clone()
                    .unwrap_or_else(|e| json!({ "error": format!("not measured: {e}") })),
            )
        })
        .collect();
    write_json(
        &json_path,
        &json!({
            "generated_unix": SystemClock.now(),
            "cores": cores,
            "loadavg_1m": load_now,
            "run_secs": run_secs,
            "rss_extrapolated_mib_at_1m_lots": extrapolated,
            "figures": figures,
            "table": table,
            "parts": raw,
        }),
    )
}
