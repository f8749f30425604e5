//! Output for people at a terminal: aligned tables (comfy-table) drawn from the tools' typed
//! outputs, the same values `--json` prints (a renamed field fails to compile here), and a progress line on stderr
//! while a long question runs (indicatif).

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use crate::domain::label::fmt_money;
use crate::sources::{Progress, no_progress};
use crate::tools::registry::SearchOutput;
use crate::usecases::budget::CheckOutput;
use crate::usecases::untagged::UntaggedOutput;

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

/// A number as the `--json` answer writes it (`80.0`, `3`).
fn num<T: serde::Serialize>(x: T) -> String {
    serde_json::to_string(&x).unwrap_or_default()
}

fn money(v: Option<f64>) -> String {
    v.map(fmt_money).unwrap_or_else(|| "-".into())
}

fn opt(v: Option<&str>) -> String {
    v.unwrap_or("-").to_string()
}

/// `arn:aws:iam::123456789012:role/X` -> `123456789012:role/X`.
fn short_arn(s: &str) -> String {
    s.strip_prefix("arn:aws:iam::")
        .or_else(|| s.strip_prefix("arn:aws:sts::"))
        .unwrap_or(s)
        .to_string()
}

/// The answer's notes, and the pinned clock's (which the structured answer adds to its notes).
fn notes(notes: &[String]) -> impl Iterator<Item = String> + '_ {
    notes.iter().cloned().chain(crate::domain::clock::note())
}

/// `untagged_principals` as tables.
pub fn untagged(o: &UntaggedOutput) -> String {
    let mut s = format!(
        "Principals missing {} ({}); spend {} to {} (end exclusive) from {}.\n",
        o.required_keys.join(", "),
        o.required_keys_source,
        o.period.start,
        o.period.end,
        o.spend_source,
    );
    let mut t = Table::new(&["KIND", "NAME", "MISSING", ">SPEND", "FLAGS"]);
    for f in &o.findings {
        t.row(vec![
            f.kind.as_str().to_string(),
            f.name.clone(),
            f.missing_keys.join(", "),
            money(f.spend),
            f.flags.join(", "),
        ]);
    }
    if t.is_empty() {
        s.push_str("Every principal scanned carries the required keys.\n");
    } else {
        s.push_str(&t.render());
    }
    if !o.not_in_iam.is_empty() {
        s.push_str("\nSpend by principals IAM does not list:\n");
        let mut t = Table::new(&["PRINCIPAL", "REASON", ">SPEND"]);
        for x in &o.not_in_iam {
            t.row(vec![
                x.principal.clone(),
                x.reason.clone(),
                money(Some(x.amount)),
            ]);
        }
        s.push_str(&t.render());
    }
    if !o.untagged_spend_by_key.is_empty() {
        s.push_str("\nUntagged spend per key (Cost Explorer):\n");
        let mut t = Table::new(&["KEY", ">UNTAGGED SPEND"]);
        for (k, v) in &o.untagged_spend_by_key {
            t.row(vec![k.clone(), money(Some(*v))]);
        }
        s.push_str(&t.render());
    }
    let sum = &o.summary;
    let (un, total) = (sum.unattributed_spend, sum.total_spend);
    s.push_str(&format!(
        "\nUnattributed {} of {}{}; {} principals scanned, {} fully tagged, {} missing keys with spend, {} without.\n",
        fmt_money(un),
        fmt_money(total),
        if total > 0.0 {
            format!(" ({:.1}%)", un / total * 100.0)
        } else {
            String::new()
        },
        sum.principals_scanned,
        sum.fully_tagged,
        sum.missing_with_spend,
        sum.missing_without_spend,
    ));
    if !o.findings.is_empty() {
        s.push_str("Fix commands (fill in the values):\n");
        for f in &o.findings {
            s.push_str(&format!("  {}\n", f.fix));
        }
    }
    for w in &o.warnings {
        s.push_str(&format!("Warning: {w}\n"));
    }
    if let Some(c) = &o.next_cursor {
        s.push_str(&format!("More: --cursor {c}\n"));
    }
    s.push_str("The prevention policy (IAM policy / SCP requiring the keys) is in --json as prevention_policy.\n");
    s
}

/// `check_budget` as a two-column table.
pub fn check(o: &CheckOutput) -> String {
    let mut t = Table::new(&["", ""]);
    let mut kv = |k: &str, v: String| t.row(vec![k.to_string(), v]);
    kv("verdict", o.verdict.to_uppercase());
    kv("who", o.who.clone());
    kv(
        "budget",
        match &o.budget {
            Some(b) => format!(
                "{} ({}): {} USD a month, warn at {}%, deny at {}%",
                b.name,
                b.source,
                fmt_money(b.limit_usd),
                num(b.warn_percent),
                num(b.deny_percent)
            ),
            None => "none applies".into(),
        },
    );
    kv(
        "period",
        format!("{} to {} (end exclusive)", o.period.start, o.period.end),
    );
    kv(
        "spent",
        format!(
            "{} ({}, as of {})",
            money(o.spent),
            o.spent_source,
            o.spent_as_of
        ),
    );
    kv(
        "unbilled",
        format!(
            "{} ({} recent check(s))",
            money(o.unbilled),
            o.unbilled_checks
        ),
    );
    if o.logged.is_some() {
        kv(
            "logged",
            format!(
                "{} (invocation logs since the last billed day, newest record {})",
                money(o.logged),
                o.newest_log_record.as_deref().unwrap_or("none")
            ),
        );
    }
    kv("planned", fmt_money(o.planned_cost));
    kv("forecast", money(o.forecast));
    if let Some(r) = o.remaining_after {
        kv(
            "after",
            format!(
                "{} left{}",
                fmt_money(r),
                o.percent_after
                    .map(|p| format!(" ({p:.1}% of the budget used)"))
                    .unwrap_or_default()
            ),
        );
    }
    let mut s = t.render();
    for r in &o.reasons {
        s.push_str(&format!("- {r}\n"));
    }
    for n in notes(&o.notes) {
        s.push_str(&format!("Note: {n}\n"));
    }
    s
}

/// `search_registry` as a table, then how to connect to each hit.
pub fn registry_search(o: &SearchOutput) -> String {
    let hits = &o.hits;
    let searched = o.registries_searched.len();
    let mut s = if o.query.is_empty() {
        format!("{} record(s) in {searched} registries.\n", hits.len())
    } else {
        format!(
            "{} hit(s) for \"{}\" in {searched} registr{}.\n",
            hits.len(),
            o.query,
            if searched == 1 { "y" } else { "ies" }
        )
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
        for h in hits {
            let roles = h
                .roles
                .iter()
                .map(|r| short_arn(r))
                .collect::<Vec<_>>()
                .join(", ");
            t.row(vec![
                h.record_type.clone(),
                h.name.clone(),
                h.version.clone(),
                h.registry.clone(),
                if roles.is_empty() { "-".into() } else { roles },
                money(h.role_spend_this_month),
            ]);
        }
        s.push_str(&t.render());
        s.push('\n');
        for h in hits {
            s.push_str(&format!(
                "{}: {}\n  {}\n",
                h.name,
                opt(h.description.as_deref()),
                opt(h.connect.as_deref())
            ));
        }
    }
    for e in &o.registry_errors {
        s.push_str(&format!("Registry error: {e}\n"));
    }
    for n in notes(&o.notes) {
        s.push_str(&format!("Note: {n}\n"));
    }
    if let Some(c) = &o.next_cursor {
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
        let o = CheckOutput {
            verdict: "deny".into(),
            reasons: vec!["over".into()],
            who: "tag:team=web".into(),
            budget: None,
            period: crate::usecases::spend::PeriodOut {
                start: "2026-11-01".into(),
                end: "2026-12-01".into(),
            },
            spent: Some(10.0),
            spent_source: "cur".into(),
            spent_computed: None,
            spent_as_of: "x".into(),
            unbilled: Some(0.0),
            unbilled_checks: 0,
            logged: None,
            newest_log_record: None,
            planned_cost: 5.0,
            forecast: Some(20.0),
            forecast_method: String::new(),
            remaining_after: None,
            percent_after: None,
            ledger_recorded: false,
            check_id: None,
            released: None,
            figures_withheld: None,
            notes: vec![],
        };
        let s = check(&o);
        assert!(s.starts_with("verdict   DENY\n"), "{s}");
        assert!(s.contains("budget    none applies\n"), "{s}");
        assert!(s.contains("spent     10.00 (cur, as of x)\n"), "{s}");
        assert!(s.contains("- over\n"));
    }
}
