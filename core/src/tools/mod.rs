//! The tools' argument types and their checks; the tools are the server's
//! (`bedrock_cost_mcp::tools`).

pub mod args;
