//! The guard around Cost Explorer, where every request costs $0.01.
//!
//! Three mechanisms, all in one place:
//! - a TTL cache keyed by the normalised request (closed periods keep longer);
//! - single-flight: identical concurrent requests share one fetch;
//! - an hourly cap on paid requests, enforced per page before it is sent.
//!
//! Errors are shared with the callers waiting on the same fetch, never cached.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use crate::error::ToolError;

type SharedFetch<V> = Shared<BoxFuture<'static, Result<Arc<V>, ToolError>>>;

struct Entry<V> {
    id: u64,
    fetch: SharedFetch<V>,
    created: Instant,
    ttl: Duration,
}

/// Cache with single-flight for values of type `V`.
pub struct SingleFlightCache<V> {
    entries: Mutex<HashMap<String, Entry<V>>>,
    next_id: AtomicU64,
    max_entries: usize,
}

/// How a value was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// This call fetched it.
    Fetched,
    /// From the cache, or by joining an identical fetch already under way.
    Shared,
}

impl<V: Send + Sync + 'static> SingleFlightCache<V> {
    pub fn new(max_entries: usize) -> Self {
        SingleFlightCache {
            entries: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            max_entries,
        }
    }

    /// Return the cached value for `key`, join a fetch under way, or start `fetch`.
    pub async fn get_or_fetch<F>(
        &self,
        key: &str,
        ttl: Duration,
        fetch: F,
    ) -> Result<(Arc<V>, Served), ToolError>
    where
        F: FnOnce() -> BoxFuture<'static, Result<V, ToolError>>,
    {
        let (id, shared, served) = {
            let mut map = self.entries.lock().expect("cache lock poisoned");
            let now = Instant::now();
            let live = map
                .get(key)
                .filter(|e| now.duration_since(e.created) < e.ttl);
            match live {
                Some(e) => (e.id, e.fetch.clone(), Served::Shared),
                None => {
                    if map.len() >= self.max_entries {
                        map.retain(|_, e| now.duration_since(e.created) < e.ttl);
                        if map.len() >= self.max_entries {
                            // Still full of live entries: drop the oldest.
                            if let Some(oldest) = map
                                .iter()
                                .min_by_key(|(_, e)| e.created)
                                .map(|(k, _)| k.clone())
                            {
                                map.remove(&oldest);
                            }
                        }
                    }
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let fut: BoxFuture<'static, Result<Arc<V>, ToolError>> =
                        fetch().map(|r| r.map(Arc::new)).boxed();
                    let shared = fut.shared();
                    map.insert(
                        key.to_string(),
                        Entry {
                            id,
                            fetch: shared.clone(),
                            created: now,
                            ttl,
                        },
                    );
                    (id, shared, Served::Fetched)
                }
            }
        };
        match shared.await {
            Ok(v) => Ok((v, served)),
            Err(e) => {
                let mut map = self.entries.lock().expect("cache lock poisoned");
                if map.get(key).is_some_and(|e| e.id == id) {
                    map.remove(key);
                }
                Err(e)
            }
        }
    }

    /// The value for `key` if a fetch for it has finished and is still fresh; never fetches.
    pub fn peek(&self, key: &str) -> Option<Arc<V>> {
        let map = self.entries.lock().expect("cache lock poisoned");
        let e = map
            .get(key)
            .filter(|e| Instant::now().duration_since(e.created) < e.ttl)?;
        e.fetch.peek().and_then(|r| r.as_ref().ok().cloned())
    }

    /// Forget everything (after a write that changes the answers).
    pub fn clear(&self) {
        self.entries.lock().expect("cache lock poisoned").clear();
    }

    /// Number of entries (live or expired) held.
    pub fn len(&self) -> usize {
        self.entries.lock().expect("cache lock poisoned").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Sliding one-hour window of paid requests.
pub struct RequestCap {
    cap: usize,
    sent: Mutex<VecDeque<Instant>>,
    /// Most paid requests one authenticated caller may cause per hour (0: no per-caller limit).
    per_caller: usize,
    by_caller: Mutex<std::collections::HashMap<std::sync::Arc<str>, VecDeque<Instant>>>,
}

tokio::task_local! {
    /// The authenticated HTTP caller a tool call runs for: the one a paid request it causes is
    /// charged to (unset for stdio and unauthenticated loopback).
    pub static PAYER: std::sync::Arc<str>;
}

impl RequestCap {
    pub fn new(cap: usize) -> Self {
        Self::with_per_caller(cap, 0)
    }

    /// A cap for everyone plus one per authenticated caller (0: none), so one caller of a shared
    /// server cannot spend the whole hour's budget.
    pub fn with_per_caller(cap: usize, per_caller: usize) -> Self {
        RequestCap {
            cap,
            sent: Mutex::new(VecDeque::new()),
            per_caller,
            by_caller: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Take one slot for a request about to be sent, or say when one frees.
    pub fn take(&self) -> Result<(), ToolError> {
        let hour = Duration::from_secs(3600);
        let now = Instant::now();
        let retry = |q: &VecDeque<Instant>| {
            q.front()
                .map(|t| hour.saturating_sub(now.duration_since(*t)).as_secs() + 1)
                .unwrap_or(60)
        };
        let mut sent = self.sent.lock().expect("cap lock poisoned");
        while sent.front().is_some_and(|t| now.duration_since(*t) >= hour) {
            sent.pop_front();
        }
        if sent.len() >= self.cap {
            return Err(ToolError::RequestCap {
                used: sent.len(),
                cap: self.cap,
                retry_after_secs: retry(&sent),
            });
        }
        if self.per_caller > 0
            && let Ok(who) = PAYER.try_with(std::clone::Clone::clone)
        {
            let mut by = self.by_caller.lock().expect("cap lock poisoned");
            by.retain(|_, q| {
                while q.front().is_some_and(|t| now.duration_since(*t) >= hour) {
                    q.pop_front();
                }
                !q.is_empty()
            });
            let mine = by.entry(who.clone()).or_default();
            if mine.len() >= self.per_caller {
                return Err(ToolError::CallerRequestCap {
                    caller: who.to_string(),
                    used: mine.len(),
                    cap: self.per_caller,
                    retry_after_secs: retry(mine),
                });
            }
            mine.push_back(now);
        }
        sent.push_back(now);
        Ok(())
    }

    /// Requests sent in the last hour.
    pub fn used(&self) -> usize {
        let now = Instant::now();
        let sent = self.sent.lock().expect("cap lock poisoned");
        sent.iter()
            .filter(|t| now.duration_since(**t) < Duration::from_secs(3600))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_caller_has_a_share_and_uncharged_calls_only_the_global_cap() {
        let cap = RequestCap::with_per_caller(10, 2);
        PAYER
            .scope("alice".into(), async {
                cap.take().unwrap();
                cap.take().unwrap();
                let e = cap.take().unwrap_err().to_string();
                assert!(
                    e.contains("caller 'alice'") && e.contains("per-caller cap 2"),
                    "{e}"
                );
            })
            .await;
        PAYER
            .scope("bob".into(), async { cap.take() })
            .await
            .unwrap();
        cap.take().unwrap();
        assert_eq!(cap.used(), 4, "the refused request took no slot");
        // The global cap still binds everyone.
        let small = RequestCap::with_per_caller(1, 5);
        PAYER
            .scope("a".into(), async { small.take() })
            .await
            .unwrap();
        let e = PAYER
            .scope("b".into(), async { small.take() })
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("--ce-max-requests-per-hour"), "{e}");
    }
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn identical_concurrent_calls_fetch_once_and_errors_are_not_cached() {
        let cache = Arc::new(SingleFlightCache::<u32>::new(16));
        let calls = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for _ in 0..8 {
            let (cache, calls) = (cache.clone(), calls.clone());
            handles.push(tokio::spawn(async move {
                cache
                    .get_or_fetch("k", Duration::from_secs(60), move || {
                        async move {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok(7)
                        }
                        .boxed()
                    })
                    .await
            }));
        }
        let mut fetched = 0;
        for h in handles {
            let (v, served) = h.await.unwrap().unwrap();
            assert_eq!(*v, 7);
            fetched += (served == Served::Fetched) as usize;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(fetched, 1);

        let err = cache
            .get_or_fetch("e", Duration::from_secs(60), || {
                async { Err(ToolError::Cancelled) }.boxed()
            })
            .await;
        assert!(err.is_err());
        let ok = cache
            .get_or_fetch("e", Duration::from_secs(60), || async { Ok(1) }.boxed())
            .await
            .unwrap();
        assert_eq!((*ok.0, ok.1), (1, Served::Fetched));
    }

    #[tokio::test]
    async fn expired_entries_refetch() {
        let cache = SingleFlightCache::<u32>::new(1);
        cache
            .get_or_fetch("a", Duration::from_millis(0), || async { Ok(1) }.boxed())
            .await
            .unwrap();
        let (v, s) = cache
            .get_or_fetch("a", Duration::from_secs(5), || async { Ok(2) }.boxed())
            .await
            .unwrap();
        assert_eq!((*v, s), (2, Served::Fetched));
        // Capacity 1: a second key evicts the first.
        cache
            .get_or_fetch("b", Duration::from_secs(5), || async { Ok(3) }.boxed())
            .await
            .unwrap();
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn cap_refuses_beyond_the_hourly_budget() {
        let cap = RequestCap::new(2);
        cap.take().unwrap();
        cap.take().unwrap();
        let e = cap.take().unwrap_err();
        assert!(e.to_string().contains("cap 2"), "{e}");
        assert_eq!(cap.used(), 2);
    }
}
