//! Sources answer our questions; only this module knows AWS service names.
//!
//! Each question is one trait shaped like the question ("spend for a query"),
//! held as `Arc<dyn Trait>`; each backend is one file. Caching and guards wrap
//! the backend that costs money (Cost Explorer).

/// An AWS SDK client built on first use. Constructing the nine clients this server may need
/// touches a few MB of code per service crate; most sessions call two or three of them.
pub type Lazy<C> = Arc<std::sync::LazyLock<C, Box<dyn FnOnce() -> C + Send>>>;

/// Wrap a client constructor so it runs on first use (then once).
pub fn lazy<C>(build: impl FnOnce() -> C + Send + 'static) -> Lazy<C> {
    Arc::new(std::sync::LazyLock::new(Box::new(build)))
}

/// `$XDG_<KIND>_HOME/bedrock-cost-mcp` or `~/<fallback>/bedrock-cost-mcp`.
pub fn user_dir(xdg: &str, fallback: &str) -> Option<std::path::PathBuf> {
    std::env::var_os(xdg)
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(fallback)))
        .map(|d| d.join("bedrock-cost-mcp"))
}

pub mod athena;
pub mod budgets;
pub mod ce_guard;
pub mod clients;
pub mod cost_allocation;
pub mod cost_explorer;
pub mod cur;
pub mod cur_delivery;
pub mod cur_map_get;
pub mod cur_rollup;
pub mod cur_scan;
pub use bedrock_cost_core::sources::cur_sql;
pub mod demo;
pub mod http_client;
pub mod iam;
pub mod identity;
pub mod invocation_logs;
pub mod ledger;
pub mod logs_insights;
pub mod pricing;
pub mod registry;
pub use bedrock_cost_core::sources::rows;
pub mod s3;
pub mod setup_aws;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::domain::group::SpendQuery;
use crate::error::ToolError;
pub use rows::{Adjustment, SourceInput, SpendRow};

/// Reports progress of long work (0..=total); a no-op when the client asked for none.
pub type Progress = Arc<dyn Fn(f64, f64, String) + Send + Sync>;

/// Stops a remote query (Athena, Logs Insights) when dropped while armed: the caller went away
/// before it finished, and the query should not run on (and bill) for nobody.
pub struct StopOnDrop {
    what: String,
    stop: Option<Box<dyn FnOnce() -> futures::future::BoxFuture<'static, ()> + Send>>,
}

impl StopOnDrop {
    /// Armed: `stop` runs (spawned) if this is dropped before [`StopOnDrop::disarm`].
    pub fn new(
        what: String,
        stop: impl FnOnce() -> futures::future::BoxFuture<'static, ()> + Send + 'static,
    ) -> StopOnDrop {
        StopOnDrop {
            what,
            stop: Some(Box::new(stop)),
        }
    }

    /// The query ended on its own: nothing to stop.
    pub fn disarm(&mut self) {
        self.stop = None;
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            tracing::info!(query = %self.what, "stopping abandoned query");
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(stop());
            }
        }
    }
}

/// A progress sink that drops every report.
pub fn no_progress() -> Progress {
    Arc::new(|_, _, _| {})
}

/// A source's answer, before the tool ranks and renders it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpendAnswer {
    pub rows: Vec<SpendRow>,
    pub currency: String,
    /// Cost Explorer's `Estimated` flag (data not final yet).
    pub estimated: bool,
    /// Service names whose spend was counted.
    pub services_counted: Vec<String>,
    /// Paid requests made to answer this call (0 when cached).
    pub paid_requests: u32,
    /// Whether the answer came from the cache.
    pub cached: bool,
    /// When the data was fetched from its source.
    pub as_of: DateTime<Utc>,
    /// Source name: `cost_explorer`, `cur`, `athena`, `demo`, `live`.
    pub source: &'static str,
    /// Remarks the caller should see (clamped periods, fallbacks).
    pub notes: Vec<String>,
    /// Credits, refunds and other non-usage lines (CUR sources).
    pub adjustments: Vec<Adjustment>,
    /// Bytes the engine scanned, when it reports it (Athena).
    pub scanned_bytes: Option<u64>,
    /// Spend on lines without an IAM principal (CUR, Athena); None where the source cannot tell
    /// (Cost Explorer groups them with untagged principals).
    pub no_principal: Option<f64>,
    /// The newest invocation log record the answer saw (the live source).
    pub newest_record: Option<DateTime<Utc>>,
}

/// "How much was spent, grouped how, over which period."
#[async_trait::async_trait]
pub trait SpendSource: Send + Sync {
    /// Short name used in outputs.
    fn name(&self) -> &'static str;
    /// Whether the source can filter by principal ARN or role (CUR, Athena); Cost Explorer and
    /// its demo stand-in filter only on tags.
    fn filters_principals(&self) -> bool {
        true
    }
    /// Answer the query.
    async fn spend(&self, query: &SpendQuery, progress: Progress)
    -> Result<SpendAnswer, ToolError>;
    /// The Bedrock-family service names with spend (Cost Explorer: discovered once a day), for
    /// requests that filter on SERVICE outside `spend` (the forecast). None: not known here.
    async fn bedrock_service_names(&self) -> Option<Vec<String>> {
        None
    }
}
