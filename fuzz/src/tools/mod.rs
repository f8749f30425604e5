//! Only the tools' argument types and checks.

#[path = "../../../src/tools/args.rs"]
pub mod args;
