//! Output for people at a terminal: aligned tables (comfy-table) drawn from the tools'
//! structured answers (so `--json` and the table always agree), and a progress line on stderr
//! while a long question runs (indicatif).

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::domain::label::fmt_money;
use crate::sources::{Progress, no_progress};

/// A table with aligned columns; numeric columns align right.
pub struct Table {
    headers: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Column headers; a header starting with '>' is right-aligned (the '>' is dropped).
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers
                .iter()
                .map(|h| h.trim_start_matches('>').to_string())
                .collect(),
            right: headers.iter().map(|h| h.starts_with('>')).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Columns two spaces apart, no borders, no trailing spaces (comfy-table).
    pub fn render(&self) -> String {
        use comfy_table::{CellAlignment, ContentArrangement, presets};
        let mut t = comfy_table::Table::new();
        t.load_preset(presets::NOTHING)
            .set_content_arrangement(ContentArrangement::Disabled);
        // A key/value table has no header line.
        if self.headers.iter().any(|h| !h.is_empty()) {
            t.set_header(&self.headers);
        }
        for r in &self.rows {
            t.add_row(r);
        }
        let n = self.headers.len();
        for (i, right) in self.right.iter().enumerate() {
            if let Some(c) = t.column_mut(i) {
                c.set_padding((0, if i + 1 < n { 2 } else { 0 }));
                if *right {
                    c.set_cell_alignment(CellAlignment::Right);
                }
            }
        }
        let mut out = String::new();
        for line in t.lines() {
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn money(v: &Value) -> String {
    v.as_f64().map(fmt_money).unwrap_or_else(|| "-".into())
}

/// `arn:aws:iam::123456789012:role/X` -> `123456789012:role/X`.
fn short_arn(s: &str) -> String {
    s.strip_prefix("arn:aws:iam::")
        .or_else(|| s.strip_prefix("arn:aws:sts::"))
        .unwrap_or(s)
        .to_string()
}

/// `untagged_principals` as tables.
pub fn untagged(o: &Value) -> String {
    let mut s = format!(
        "Principals missing {} ({}); spend {} to {} (end exclusive) from {}.\n",
        text(&o["required_keys"]),
        text(&o["required_keys_source"]),
        text(&o["period"]["start"]),
        text(&o["period"]["end"]),
        text(&o["spend_source"]),
    );
    let mut t = Table::new(&["KIND", "NAME", "MISSING", ">SPEND", "FLAGS"]);
    let findings = o["findings"].as_array().cloned().unwrap_or_default();
    for f in &findings {
        t.row(vec![
            text(&f["kind"]),
            text(&f["name"]),
            text(&f["missing_keys"]),
            money(&f["spend"]),
            text(&f["flags"]),
        ]);
    }
    if t.is_empty() {
        s.push_str("Every principal scanned carries the required keys.\n");
    } else {
        s.push_str(&t.render());
    }
    let orphans = o["not_in_iam"].as_array().cloned().unwrap_or_default();
    if !orphans.is_empty() {
        s.push_str("\nSpend by principals IAM does not list:\n");
        let mut t = Table::new(&["PRINCIPAL", "REASON", ">SPEND"]);
        for x in &orphans {
            t.row(vec![
                text(&x["principal"]),
                text(&x["reason"]),
                money(&x["amount"]),
            ]);
        }
        s.push_str(&t.render());
    }
    if let Some(by_key) = o["untagged_spend_by_key"].as_object()
        && !by_key.is_empty()
    {
        s.push_str("\nUntagged spend per key (Cost Explorer):\n");
        let mut t = Table::new(&["KEY", ">UNTAGGED SPEND"]);
        for (k, v) in by_key {
            t.row(vec![k.clone(), money(v)]);
        }
        s.push_str(&t.render());
    }
    let sum = &o["summary"];
    let (un, total) = (
        sum["unattributed_spend"].as_f64().unwrap_or(0.0),
        sum["total_spend"].as_f64().unwrap_or(0.0),
    );
    s.push_str(&format!(
        "\nUnattributed {} of {}{}; {} principals scanned, {} fully tagged, {} missing keys with spend, {} without.\n",
        fmt_money(un),
        fmt_money(total),
        if total > 0.0 {
            format!(" ({:.1}%)", un / total * 100.0)
        } else {
            String::new()
        },
        text(&sum["principals_scanned"]),
        text(&sum["fully_tagged"]),
        text(&sum["missing_with_spend"]),
        text(&sum["missing_without_spend"]),
    ));
    if !findings.is_empty() {
        s.push_str("Fix commands (fill in the values):\n");
        for f in &findings {
            s.push_str(&format!("  {}\n", text(&f["fix"])));
        }
    }
    for w in o["warnings"].as_array().into_iter().flatten() {
        s.push_str(&format!("Warning: {}\n", text(w)));
    }
    if let Some(c) = o["next_cursor"].as_str() {
        s.push_str(&format!("More: --cursor {c}\n"));
    }
    s.push_str("The prevention policy (IAM policy / SCP requiring the keys) is in --json as prevention_policy.\n");
    s
}

/// `check_budget` as a two-column table.
pub fn check(o: &Value) -> String {
    let mut t = Table::new(&["", ""]);
    let mut kv = |k: &str, v: String| t.row(vec![k.to_string(), v]);
    kv("verdict", text(&o["verdict"]).to_uppercase());
    kv("who", text(&o["who"]));
    kv(
        "budget",
        match o.get("budget") {
            Some(b) if !b.is_null() => format!(
                "{} ({}): {} USD a month, warn at {}%, deny at {}%",
                text(&b["name"]),
                text(&b["source"]),
                money(&b["limit_usd"]),
                text(&b["warn_percent"]),
                text(&b["deny_percent"])
            ),
            _ => "none applies".into(),
        },
    );
    kv(
        "period",
        format!(
            "{} to {} (end exclusive)",
            text(&o["period"]["start"]),
            text(&o["period"]["end"])
        ),
    );
    kv(
        "spent",
        format!(
            "{} ({}, as of {})",
            money(&o["spent"]),
            text(&o["spent_source"]),
            text(&o["spent_as_of"])
        ),
    );
    kv(
        "unbilled",
        format!(
            "{} ({} recent check(s))",
            money(&o["unbilled"]),
            text(&o["unbilled_checks"])
        ),
    );
    kv("planned", money(&o["planned_cost"]));
    kv("forecast", money(&o["forecast"]));
    if let Some(r) = o.get("remaining_after").filter(|v| !v.is_null()) {
        kv(
            "after",
            format!(
                "{} left{}",
                money(r),
                o.get("percent_after")
                    .and_then(Value::as_f64)
                    .map(|p| format!(" ({p:.1}% of the budget used)"))
                    .unwrap_or_default()
            ),
        );
    }
    let mut s = t.render();
    for r in o["reasons"].as_array().into_iter().flatten() {
        s.push_str(&format!("- {}\n", text(r)));
    }
    for n in o["notes"].as_array().into_iter().flatten() {
        s.push_str(&format!("Note: {}\n", text(n)));
    }
    s
}

/// `search_registry` as a table, then how to connect to each hit.
pub fn registry_search(o: &Value) -> String {
    let hits = o["hits"].as_array().cloned().unwrap_or_default();
    let searched = o["registries_searched"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    let mut s = match o["query"].as_str() {
        Some(q) if !q.is_empty() => format!(
            "{} hit(s) for \"{q}\" in {searched} registr{}.\n",
            hits.len(),
            if searched == 1 { "y" } else { "ies" }
        ),
        _ => format!("{} record(s) in {searched} registries.\n", hits.len()),
    };
    if !hits.is_empty() {
        let mut t = Table::new(&[
            "TYPE",
            "NAME",
            "VERSION",
            "REGISTRY",
            "RUNS AS",
            ">SPEND THIS MONTH",
        ]);
        for h in &hits {
            t.row(vec![
                text(&h["record_type"]),
                text(&h["name"]),
                text(&h["version"]),
                text(&h["registry"]),
                h["roles"]
                    .as_array()
                    .map(|r| {
                        r.iter()
                            .map(|x| short_arn(&text(x)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| "-".into()),
                money(&h["role_spend_this_month"]),
            ]);
        }
        s.push_str(&t.render());
        s.push('\n');
        for h in &hits {
            s.push_str(&format!(
                "{}: {}\n  {}\n",
                text(&h["name"]),
                text(&h["description"]),
                text(&h["connect"])
            ));
        }
    }
    for e in o["registry_errors"].as_array().into_iter().flatten() {
        s.push_str(&format!("Registry error: {}\n", text(e)));
    }
    for n in o["notes"].as_array().into_iter().flatten() {
        s.push_str(&format!("Note: {}\n", text(n)));
    }
    if let Some(c) = o["next_cursor"].as_str() {
        s.push_str(&format!("More: --cursor {c}\n"));
    }
    s
}

/// A progress line on stderr while a question runs, only when stderr is a terminal (scripts
/// and pipes get clean output; indicatif). It shows the elapsed time and the latest progress
/// message of the source (CUR engine, Athena polls).
pub struct Spinner {
    bar: Option<(indicatif::ProgressBar, tokio::task::JoinHandle<()>)>,
}

impl Spinner {
    /// Start after a short delay (quick answers print no progress at all).
    pub fn start(label: &str) -> (Spinner, Progress) {
        use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
        if !std::io::stderr().is_terminal() {
            return (Spinner { bar: None }, no_progress());
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.set_message(label.to_string());
        let shown = bar.clone();
        let show = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            shown.set_draw_target(ProgressDrawTarget::stderr());
            shown.enable_steady_tick(Duration::from_millis(150));
        });
        let sink = bar.clone();
        let progress: Progress = Arc::new(move |_done: f64, _total: f64, m: String| {
            sink.set_message(m);
        });
        (
            Spinner {
                bar: Some((bar, show)),
            },
            progress,
        )
    }

    /// Stop and clear the progress line.
    pub fn stop(self) {
        if let Some((bar, show)) = self.bar {
            show.abort();
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align() {
        let mut t = Table::new(&["NAME", ">SPEND"]);
        t.row(vec!["a".into(), "1.00".into()]);
        t.row(vec!["longer".into(), "1,234.50".into()]);
        assert_eq!(
            t.render(),
            "NAME       SPEND\na           1.00\nlonger  1,234.50\n"
        );
    }

    #[test]
    fn check_reads_as_key_values() {
        let o = json!({"verdict": "deny", "who": "tag:team=web", "period": {"start": "2026-11-01", "end": "2026-12-01"},
            "spent": 10.0, "spent_source": "cur", "spent_as_of": "x", "unbilled": 0.0, "unbilled_checks": 0,
            "planned_cost": 5.0, "forecast": 20.0, "reasons": ["over"], "notes": []});
        let s = check(&o);
        assert!(s.starts_with("verdict   DENY\n"), "{s}");
        assert!(s.contains("budget    none applies\n"), "{s}");
        assert!(s.contains("- over\n"));
    }
}
