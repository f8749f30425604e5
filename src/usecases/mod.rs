//! Use cases: questions answered from one or more sources, below the tools and above the
//! sources. Their typed answers are what tools, the CLI tables and the charts render.

pub mod anomalies;
pub mod budget;
pub mod context;
pub mod live;
pub mod setup;
pub mod spend;
pub mod untagged;

use serde::Serialize;

/// Most bytes of listed items (as JSON) in one answer page: big pages near the 25,000-token
/// tool-output limit of some clients (Claude Code's MAX_MCP_OUTPUT_TOKENS) get cut off, so a
/// page stops earlier and its cursor continues.
pub const PAGE_BYTES: usize = 40 * 1024;

/// Up to `max` items, stopping before their JSON passes [`PAGE_BYTES`] (always at least one).
pub fn take_page<T: Serialize>(items: impl IntoIterator<Item = T>, max: usize) -> Vec<T> {
    let mut bytes = 0;
    items
        .into_iter()
        .take(max)
        .enumerate()
        .take_while(|(i, item)| {
            bytes += serde_json::to_vec(item).map(|v| v.len() + 1).unwrap_or(0);
            *i == 0 || bytes <= PAGE_BYTES
        })
        .map(|(_, item)| item)
        .collect()
}

#[cfg(test)]
mod page_tests {
    use super::*;

    #[test]
    fn take_page_stops_at_the_byte_budget_but_never_returns_nothing() {
        let small: Vec<String> = (0..10).map(|i| format!("item{i}")).collect();
        assert_eq!(take_page(small.clone(), 3), small[..3]);
        assert_eq!(take_page(small.clone(), 50).len(), 10);
        let big: Vec<String> = (0..10).map(|_| "x".repeat(15 * 1024)).collect();
        let page = take_page(big.clone(), 50);
        assert_eq!(page.len(), 2, "3 x 15 KiB > 40 KiB");
        let huge = vec!["y".repeat(100 * 1024)];
        assert_eq!(
            take_page(huge, 50).len(),
            1,
            "one oversized item still goes out"
        );
    }
}
