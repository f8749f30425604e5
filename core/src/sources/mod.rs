//! The CUR row mapping (`cur_sql`) and the row types every spend source answers with (`rows`);
//! the sources themselves, which do the I/O, are the server's (`bedrock_cost_mcp::sources`).

pub mod cur_sql;
pub mod rows;

pub use rows::{Adjustment, SourceInput, SpendRow};
