//! The pure part of bedrock-cost-mcp, compiled from the main crate's own files
//! with the same module paths (`crate::domain`, `crate::error`,
//! `crate::sources::cur_sql`, `crate::tools::args`), so they build here
//! unchanged and without the heavy dependencies of the rest of the crate.

#[path = "../../src/domain/mod.rs"]
pub mod domain;

#[path = "../../src/error.rs"]
pub mod error;

pub mod sources;
pub mod tools;
