//! The two transports over one server type.

pub mod http;
pub mod stdio;
