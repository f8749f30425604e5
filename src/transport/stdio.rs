//! MCP over stdin/stdout. Nothing but MCP messages is written to stdout.

use rmcp::ServiceExt;

use crate::server::App;

/// Serve until the client closes stdin.
pub async fn serve(app: App) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let running = app.serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    Ok(())
}
