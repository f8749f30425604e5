//! The pure core of bedrock-cost-mcp (see Cargo.toml): the server re-exports each module under
//! the same path, so `crate::domain::period` names the same item here and there.

pub mod domain;
pub mod error;
pub mod sources;
pub mod tools;
