//! Pure domain logic: periods, principal ARNs, usage types, grouping keys.
//! Nothing here talks to AWS.

pub mod anomaly;
pub mod clock;
pub mod group;
pub mod invocation_log;
pub mod label;
pub mod lines;
pub mod model;
pub mod names;
pub mod period;
pub mod prevention;
pub mod pricing;
pub mod principal;
pub mod usage_type;
pub mod visibility;
