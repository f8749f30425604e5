//! The unbilled-spend ledger. Billing lags 24-48 h, so a runaway agent would
//! only see its spend after the money is gone. Every `check_budget` that
//! answers allow or warn records its estimate here (persisted as JSON); later
//! checks under the same budget add the estimates still inside the lag
//! window to billed spend. Estimates may overlap with spend that was billed
//! meanwhile, which errs on the side of caution.
//!
//! The file is JSON Lines, appended one entry per check (so a check costs one
//! small write however long the ledger is) and compacted when opened.

use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub key: String,
    pub at: DateTime<Utc>,
    pub amount: f64,
    pub what: String,
    /// The check's id (`check_id` in its answer): a caller releases an estimate whose call did
    /// not run by naming it. Empty in ledgers written before ids.
    #[serde(default)]
    pub id: String,
}

/// A new check id: 128 random bits, unguessable, so naming one proves it was handed out.
pub fn new_id() -> String {
    let mut b = [0u8; 16];
    // Without randomness an id could be guessed: then there is none (nothing can be released).
    if getrandom::fill(&mut b).is_err() {
        return String::new();
    }
    format!(
        "chk_{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

/// Most estimates kept at once (a few hundred bytes each): checks in a loop, or a caller
/// naming many subjects, cannot grow the ledger without bound.
pub const MAX_ENTRIES: usize = 20_000;

pub struct Ledger {
    path: Option<PathBuf>,
    window: Duration,
    entries: tokio::sync::Mutex<Vec<Entry>>,
}

impl Ledger {
    /// Open (or start) the ledger at `path`; `None` keeps it in memory only.
    pub fn open(path: Option<PathBuf>, window: Duration) -> Ledger {
        let now = crate::domain::clock::now();
        let text = path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        let all: Vec<Entry> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let read = text.lines().count();
        let entries: Vec<Entry> = all.into_iter().filter(|e| now - e.at < window).collect();
        if let Some(p) = &path
            && entries.len() < read
        {
            // Compact: expired (or unreadable) lines go.
            let body: String = entries
                .iter()
                .filter_map(|e| serde_json::to_string(e).ok())
                .map(|l| l + "\n")
                .collect();
            let tmp = p.with_extension(format!("tmp{}", std::process::id()));
            if std::fs::write(&tmp, body).is_ok() {
                let _ = std::fs::rename(&tmp, p);
            }
        }
        Ledger {
            path,
            window,
            entries: tokio::sync::Mutex::new(entries),
        }
    }

    pub fn window_hours(&self) -> i64 {
        self.window.num_hours()
    }

    /// Unexpired estimates for `key` recorded since `since` (the start of the budget's period:
    /// a call checked late on the 31st is January's spend, not February's): (sum, count).
    pub async fn unbilled(
        &self,
        key: &str,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> (f64, usize) {
        let entries = self.entries.lock().await;
        let live: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.key == key && e.at >= since && now - e.at < self.window)
            .collect();
        (live.iter().map(|e| e.amount).sum(), live.len())
    }

    /// Take back the estimate recorded as `id` (its call did not run), if it is still held and
    /// its key starts with `key_prefix` (a limited caller releases only its own). The file is
    /// rewritten without it.
    pub async fn release(&self, id: &str, key_prefix: &str) -> Result<Entry, String> {
        let mut entries = self.entries.lock().await;
        let at = entries
            .iter()
            .position(|e| !e.id.is_empty() && e.id == id && e.key.starts_with(key_prefix))
            .ok_or_else(|| {
                format!("no unbilled check {id} to release (released already, billed, expired, or not this caller's)")
            })?;
        let gone = entries.remove(at);
        if let Some(path) = &self.path {
            let body: String = entries
                .iter()
                .filter_map(|e| serde_json::to_string(e).ok())
                .map(|l| l + "\n")
                .collect();
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            if let Err(e) = std::fs::write(&tmp, body).and_then(|()| std::fs::rename(&tmp, path)) {
                entries.insert(at, gone);
                return Err(format!("cannot rewrite {}: {e}", path.display()));
            }
        }
        Ok(gone)
    }

    /// Record an estimate (appended to the file) and forget expired ones. The ledger keeps at
    /// most [`MAX_ENTRIES`] estimates; past that the oldest go first (the file is compacted).
    pub async fn record(&self, entry: Entry) -> Result<(), String> {
        use std::io::Write;
        let mut entries = self.entries.lock().await;
        let now = entry.at;
        entries.retain(|e| now - e.at < self.window);
        if entries.len() >= MAX_ENTRIES {
            let drop = entries.len() + 1 - MAX_ENTRIES;
            entries.drain(..drop);
            if let Some(path) = &self.path {
                let body: String = entries
                    .iter()
                    .filter_map(|e| serde_json::to_string(e).ok())
                    .map(|l| l + "\n")
                    .collect();
                let tmp = path.with_extension(format!("tmp{}", std::process::id()));
                std::fs::write(&tmp, body)
                    .and_then(|()| std::fs::rename(&tmp, path))
                    .map_err(|e| format!("cannot compact {}: {e}", path.display()))?;
            }
        }
        if let Some(path) = &self.path {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            let line = serde_json::to_string(&entry).map_err(|e| e.to_string())? + "\n";
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(line.as_bytes()))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        entries.push(entry);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn estimates_add_up_expire_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.json");
        let l = Ledger::open(Some(path.clone()), Duration::hours(48));
        let t0 = Utc::now();
        l.record(Entry {
            key: "tag:team=ml".into(),
            at: t0 - Duration::hours(50),
            amount: 5.0,
            what: "old".into(),
            id: String::new(),
        })
        .await
        .unwrap();
        l.record(Entry {
            key: "tag:team=ml".into(),
            at: t0,
            amount: 1.5,
            what: "new".into(),
            id: "chk_a".into(),
        })
        .await
        .unwrap();
        l.record(Entry {
            key: "other".into(),
            at: t0,
            amount: 9.0,
            what: "x".into(),
            id: "chk_b".into(),
        })
        .await
        .unwrap();
        let month_ago = t0 - Duration::days(31);
        assert_eq!(l.unbilled("tag:team=ml", month_ago, t0).await, (1.5, 1));
        let again = Ledger::open(Some(path), Duration::hours(48));
        assert_eq!(again.unbilled("tag:team=ml", month_ago, t0).await, (1.5, 1));
        assert_eq!(
            again
                .unbilled("tag:team=ml", month_ago, t0 + Duration::hours(49))
                .await,
            (0.0, 0)
        );
        // Within the window but before the period began (a new month): not this period's.
        assert_eq!(
            again
                .unbilled(
                    "tag:team=ml",
                    t0 + Duration::seconds(1),
                    t0 + Duration::hours(1)
                )
                .await,
            (0.0, 0)
        );
        // Released by id, only under the caller's own keys, once; the file forgets it too.
        assert!(again.release("chk_a", "other").await.is_err());
        assert_eq!(again.release("chk_a", "tag:").await.unwrap().amount, 1.5);
        assert!(again.release("chk_a", "").await.is_err());
        assert!(
            again.release("", "").await.is_err(),
            "entries without an id stay"
        );
        assert_eq!(again.unbilled("tag:team=ml", month_ago, t0).await, (0.0, 0));
        let reread = Ledger::open(Some(again.path.clone().unwrap()), Duration::hours(48));
        assert_eq!(
            reread.unbilled("tag:team=ml", month_ago, t0).await,
            (0.0, 0)
        );
        assert_eq!(reread.unbilled("other", month_ago, t0).await, (9.0, 1));
        assert!(new_id().starts_with("chk_") && new_id() != new_id());
    }
}
