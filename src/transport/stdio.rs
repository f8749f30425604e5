//! MCP over stdin/stdout. Nothing but MCP messages is written to stdout.

use rmcp::ServiceExt;

use crate::server::Server;

/// Serve until the client closes stdin.
pub async fn serve(app: Server) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let running = app.serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    Ok(())
}
