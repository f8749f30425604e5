//! Only the CUR row mapping and the row types it produces.

#[path = "../../../src/sources/cur_sql.rs"]
pub mod cur_sql;
#[path = "../../../src/sources/rows.rs"]
pub mod rows;

pub use rows::{Adjustment, SourceInput, SpendRow};
