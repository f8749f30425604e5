//! The guard around Cost Explorer, where every request costs $0.01.
//!
//! Three mechanisms, all in one place:
//! - a TTL cache keyed by the normalised request (closed periods keep longer);
//! - single-flight: identical concurrent requests share one fetch;
//! - an hourly cap on paid requests, enforced per page before it is sent.
//!
//! Errors are shared with the callers waiting on the same fetch, never cached.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::error::ToolError;

/// A cached value and how long it stays fresh (closed periods keep longer than open ones).
struct Cached<V> {
    value: Arc<V>,
    ttl: Duration,
}

/// Each entry expires after its own time to live.
struct ByTtl;

impl<V> moka::Expiry<String, Arc<Cached<V>>> for ByTtl {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Arc<Cached<V>>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Cache with single-flight for values of type `V` (moka: one fetch at a time per key, the
/// others wait for it; errors are shared with them and not cached; least recently used entries
/// go first beyond the capacity).
pub struct SingleFlightCache<V> {
    cache: moka::future::Cache<String, Arc<Cached<V>>>,
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
            cache: moka::future::Cache::builder()
                .max_capacity(max_entries as u64)
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .expire_after(ByTtl)
                .build(),
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
        let ran = AtomicBool::new(false);
        let got = self
            .cache
            .try_get_with(key.to_string(), async {
                ran.store(true, Ordering::Relaxed);
                let value = fetch().await?;
                Ok::<_, ToolError>(Arc::new(Cached {
                    value: Arc::new(value),
                    ttl,
                }))
            })
            .await;
        match got {
            Ok(c) => {
                let served = if ran.load(Ordering::Relaxed) {
                    Served::Fetched
                } else {
                    Served::Shared
                };
                Ok((c.value.clone(), served))
            }
            Err(e) => Err((*e).clone()),
        }
    }

    /// The value for `key` if a fetch for it has finished and is still fresh; never fetches.
    pub async fn peek(&self, key: &str) -> Option<Arc<V>> {
        self.cache.get(key).await.map(|c| c.value.clone())
    }

    /// Forget everything (after a write that changes the answers).
    pub fn clear(&self) {
        self.cache.invalidate_all();
    }

    /// Number of entries held (after pending evictions are applied).
    #[cfg(test)]
    async fn len(&self) -> u64 {
        self.cache.run_pending_tasks().await;
        self.cache.entry_count()
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
        // Charged to the caller of the tool call (`domain::visibility::current`): none for
        // stdio and unauthenticated loopback.
        if self.per_caller > 0
            && let Some(caller) = crate::domain::visibility::current()
        {
            let who: std::sync::Arc<str> = caller.name.as_str().into();
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

/// The pages of a Cost Explorer operation. Cost Explorer bills each request, every page
/// included, so each page is taken from the cap before it is sent (the SDK's paginators would
/// send the next page without asking):
///
/// ```ignore
/// let mut pager = PaidPages::new(&cap);
/// while let Some(token) = pager.next()? {
///     let out = client.get_anomalies().set_next_page_token(token).send().await?;
///     pager.after(out.next_page_token());
/// }
/// ```
pub struct PaidPages<'a> {
    cap: &'a RequestCap,
    token: Option<String>,
    done: bool,
    /// Pages sent so far.
    pub pages: u32,
}

impl<'a> PaidPages<'a> {
    pub fn new(cap: &'a RequestCap) -> PaidPages<'a> {
        PaidPages {
            cap,
            token: None,
            done: false,
            pages: 0,
        }
    }

    /// The token of the next page to send (None inside for the first), once the cap allows
    /// it; None when the last page has been read.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Option<String>>, ToolError> {
        if self.done {
            return Ok(None);
        }
        self.cap.take()?;
        self.pages += 1;
        Ok(Some(self.token.take()))
    }

    /// The page just read named this next token (none or empty: it was the last).
    pub fn after(&mut self, next: Option<&str>) {
        self.token = next.filter(|t| !t.is_empty()).map(str::to_string);
        self.done = self.token.is_none();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    fn caller(name: &str) -> Option<Arc<crate::domain::visibility::Caller>> {
        Some(Arc::new(crate::domain::visibility::Caller {
            name: name.into(),
            scopes: vec![],
            visibility: None,
        }))
    }

    #[tokio::test]
    async fn each_caller_has_a_share_and_uncharged_calls_only_the_global_cap() {
        use crate::domain::visibility::run_as;
        let cap = RequestCap::with_per_caller(10, 2);
        run_as(caller("alice"), async {
            cap.take().unwrap();
            cap.take().unwrap();
            let e = cap.take().unwrap_err().to_string();
            assert!(
                e.contains("caller 'alice'") && e.contains("per-caller cap 2"),
                "{e}"
            );
        })
        .await;
        run_as(caller("bob"), async { cap.take() }).await.unwrap();
        run_as(None, async { cap.take() }).await.unwrap();
        assert_eq!(cap.used(), 4, "the refused request took no slot");
        // The global cap still binds everyone.
        let small = RequestCap::with_per_caller(1, 5);
        run_as(caller("a"), async { small.take() }).await.unwrap();
        let e = run_as(caller("b"), async { small.take() })
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
        assert_eq!(cache.len().await, 1);
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
