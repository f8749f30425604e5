//! Streamable HTTP at `/mcp`: stateless, JSON responses, Host and Origin
//! allow-lists always on, graceful shutdown on SIGINT/SIGTERM.
//! Binding beyond loopback is refused until HTTP authentication exists.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::cli::ServeArgs;
use crate::server::App;

/// Host header values always accepted.
const LOOPBACK_HOSTS: &[&str] = &["localhost", "127.0.0.1", "::1", "[::1]"];
/// Origins always accepted (pages served from this machine).
const LOOPBACK_ORIGINS: &[&str] = &["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"];

/// Why the HTTP server did not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(
        "refusing to bind {0}: serving beyond loopback needs HTTP authentication, which this version does not have yet. Bind 127.0.0.1 (or ::1), or put an authenticating proxy on this machine in front of it"
    )]
    NotLoopback(SocketAddr),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// The axum router: `/mcp` and `/healthz`.
pub fn router(app: App, args: &ServeArgs, ct: CancellationToken) -> Router {
    let hosts: Vec<String> = LOOPBACK_HOSTS
        .iter()
        .map(|s| s.to_string())
        .chain(args.allowed_hosts.iter().cloned())
        .collect();
    let origins: Vec<String> = LOOPBACK_ORIGINS
        .iter()
        .map(|s| s.to_string())
        .chain(args.allowed_origins.iter().cloned())
        .collect();
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_allowed_hosts(hosts)
        .with_allowed_origins(origins)
        .enforce_origin_validation()
        .with_max_request_body_bytes(args.max_body_bytes)
        .with_cancellation_token(ct);
    let service = StreamableHttpService::new(
        move || Ok(app.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    Router::new()
        .nest_service("/mcp", service)
        .route("/healthz", get(|| async { "ok" }))
}

/// Serve until SIGINT or SIGTERM.
pub async fn serve(app: App, args: ServeArgs, addr: SocketAddr) -> Result<(), HttpError> {
    if !addr.ip().is_loopback() {
        return Err(HttpError::NotLoopback(addr));
    }
    let ct = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
    let local = listener.local_addr().map_err(HttpError::Serve)?;
    // One line on stderr that tools and tests can wait for.
    eprintln!("listening on http://{local}/mcp");
    tracing::info!(%local, "serving streamable HTTP");
    let router = router(app, &args, ct.child_token());
    let shutdown = ct.clone();
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            tracing::info!("shutting down");
            shutdown.cancel();
        })
        .await
        .map_err(HttpError::Serve)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
