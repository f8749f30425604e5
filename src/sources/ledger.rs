//! The unbilled-spend ledger. Billing lags 24-48 h, so a runaway agent would
//! only see its spend after the money is gone. Every `check_budget` that
//! answers allow or warn records its estimate here (persisted as JSON); later
//! checks under the same budget add the estimates still inside the lag
//! window to billed spend. Estimates may overlap with spend that was billed
//! meanwhile, which errs on the side of caution.

use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub key: String,
    pub at: DateTime<Utc>,
    pub amount: f64,
    pub what: String,
}

pub struct Ledger {
    path: Option<PathBuf>,
    window: Duration,
    entries: tokio::sync::Mutex<Vec<Entry>>,
}

impl Ledger {
    /// Open (or start) the ledger at `path`; `None` keeps it in memory only.
    pub fn open(path: Option<PathBuf>, window: Duration) -> Ledger {
        let entries = path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|s| serde_json::from_str::<Vec<Entry>>(&s).ok())
            .unwrap_or_default();
        Ledger {
            path,
            window,
            entries: tokio::sync::Mutex::new(entries),
        }
    }

    pub fn window_hours(&self) -> i64 {
        self.window.num_hours()
    }

    /// Unexpired estimates for `key`: (sum, count).
    pub async fn unbilled(&self, key: &str, now: DateTime<Utc>) -> (f64, usize) {
        let entries = self.entries.lock().await;
        let live: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.key == key && now - e.at < self.window)
            .collect();
        (live.iter().map(|e| e.amount).sum(), live.len())
    }

    /// Record an estimate, drop expired ones, persist atomically.
    pub async fn record(&self, entry: Entry) -> Result<(), String> {
        let mut entries = self.entries.lock().await;
        let now = entry.at;
        entries.retain(|e| now - e.at < self.window);
        entries.push(entry);
        if let Some(path) = &self.path {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, serde_json::to_vec(&*entries).unwrap_or_default())
                .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
            std::fs::rename(&tmp, path)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
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
        })
        .await
        .unwrap();
        l.record(Entry {
            key: "tag:team=ml".into(),
            at: t0,
            amount: 1.5,
            what: "new".into(),
        })
        .await
        .unwrap();
        l.record(Entry {
            key: "other".into(),
            at: t0,
            amount: 9.0,
            what: "x".into(),
        })
        .await
        .unwrap();
        assert_eq!(l.unbilled("tag:team=ml", t0).await, (1.5, 1));
        let again = Ledger::open(Some(path), Duration::hours(48));
        assert_eq!(again.unbilled("tag:team=ml", t0).await, (1.5, 1));
        assert_eq!(
            again
                .unbilled("tag:team=ml", t0 + Duration::hours(49))
                .await,
            (0.0, 0)
        );
    }
}
