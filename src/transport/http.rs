//! Streamable HTTP at `/mcp`: stateless, JSON responses, Host and Origin
//! allow-lists always on, graceful shutdown on SIGINT/SIGTERM. `/mcp` sits behind the guard in
//! `auth::middleware` (authentication when configured, scopes, limits, access log); `/healthz`
//! and the RFC 9728 metadata are open. Binding beyond loopback needs authentication configured.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::auth::Auth;
use crate::auth::jwt::{JwtSettings, JwtVerifier};
use crate::auth::middleware::{Guard, Limits};
use crate::auth::tokens::TokenFile;
use crate::server::Server;

/// Host header values always accepted.
const LOOPBACK_HOSTS: &[&str] = &["localhost", "127.0.0.1", "::1", "[::1]"];
/// Origins always accepted (pages served from this machine).
const LOOPBACK_ORIGINS: &[&str] = &["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"];

/// Why the HTTP server did not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(
        "refusing to bind {0}: serving beyond loopback needs HTTP authentication. Pass --auth-tokens FILE and/or --jwt-issuer URL (see README \"HTTP authentication\"), or bind 127.0.0.1 (or ::1)"
    )]
    NotLoopback(SocketAddr),
    #[error("{0}")]
    Config(String),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// How the HTTP transport serves: address, accepted hosts and origins, authentication and
/// limits. Read from flags and environment by clap (`serve`), so each setting is stated here
/// once.
#[derive(Debug, Clone, clap::Args)]
pub struct HttpSettings {
    /// Serve streamable HTTP on this address instead of stdio (beyond loopback only with --auth-tokens or --jwt-issuer).
    #[arg(long, env = "BEDROCK_COST_MCP_HTTP")]
    pub http: Option<SocketAddr>,

    /// Extra accepted `Host` header values (loopback names are always accepted).
    #[arg(
        long = "allowed-host",
        env = "BEDROCK_COST_MCP_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,

    /// Accepted browser `Origin` values, with scheme (`https://app.example.com:443`, `:*` for any port).
    /// Loopback origins are always accepted; any other present Origin gets 403.
    #[arg(
        long = "allowed-origin",
        env = "BEDROCK_COST_MCP_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// Largest accepted HTTP request body, in bytes.
    #[arg(long, env = "BEDROCK_COST_MCP_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Static bearer tokens (TOML, hashed; see README "HTTP authentication"). With this or
    /// --jwt-issuer every /mcp request needs `Authorization: Bearer`, and binding beyond loopback is allowed.
    #[arg(long, env = "BEDROCK_COST_MCP_AUTH_TOKENS")]
    pub auth_tokens: Option<std::path::PathBuf>,

    /// OAuth 2.1 authorization server (JWT `iss`) whose access tokens are accepted.
    #[arg(long, env = "BEDROCK_COST_MCP_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// The issuer's JWKS URL (default: discovered from its RFC 8414 / OpenID metadata).
    #[arg(long, env = "BEDROCK_COST_MCP_JWT_JWKS_URL")]
    pub jwt_jwks_url: Option<String>,

    /// How long fetched signing keys are kept, in seconds (unknown key ids refetch early).
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_JWT_JWKS_TTL_SECS",
        default_value_t = 600
    )]
    pub jwt_jwks_ttl_secs: u64,

    /// Least seconds between two fetches of the JWKS (tried or not): a token naming an unknown
    /// key id (rotation) fetches again at most this often, so junk tokens cannot hammer the issuer.
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_JWT_JWKS_MIN_REFETCH_SECS",
        default_value_t = 30
    )]
    pub jwt_jwks_min_refetch_secs: u64,

    /// JWT claim listing the iamPrincipal tag values a caller may see (e.g. `team`); with --jwt-visibility-tag-key.
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_JWT_VISIBILITY_CLAIM",
        requires = "jwt_visibility_tag_key"
    )]
    pub jwt_visibility_claim: Option<String>,

    /// The iamPrincipal/<key> tag those claim values are values of (e.g. `team`).
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_JWT_VISIBILITY_TAG_KEY",
        requires = "jwt_visibility_claim"
    )]
    pub jwt_visibility_tag_key: Option<String>,

    /// A blank value of the visibility claim grants untagged spend (principals without the
    /// tag). Off: a blank value grants nothing, so a token missing its team sees nothing.
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_JWT_VISIBILITY_ALLOW_UNTAGGED",
        requires = "jwt_visibility_claim"
    )]
    pub jwt_visibility_allow_untagged: bool,

    /// This server's public resource URI (the JWT audience and RFC 9728 `resource`);
    /// default `http://<bound address>/mcp`.
    #[arg(long, env = "BEDROCK_COST_MCP_RESOURCE_URL")]
    pub resource_url: Option<String>,

    /// Longest time one HTTP request may take, in seconds.
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_REQUEST_TIMEOUT_SECS",
        default_value_t = 300
    )]
    pub request_timeout_secs: u64,

    /// Requests served at once; more get 503 with Retry-After.
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_MAX_CONCURRENT_REQUESTS",
        default_value_t = 256
    )]
    pub max_concurrent_requests: usize,

    /// Requests per minute per authenticated caller (0: unlimited); more get 429 with Retry-After.
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_RATE_LIMIT_PER_MINUTE",
        default_value_t = 600
    )]
    pub rate_limit_per_minute: u32,
}

/// Authentication from the serve flags (None: no auth configured).
pub fn auth_from_args(args: &HttpSettings, local: SocketAddr) -> Result<Option<Auth>, HttpError> {
    if args.auth_tokens.is_none() && args.jwt_issuer.is_none() {
        return Ok(None);
    }
    let resource = args
        .resource_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}/mcp"));
    let tokens = match &args.auth_tokens {
        Some(p) => Some(Arc::new(TokenFile::load(p).map_err(HttpError::Config)?)),
        None => None,
    };
    let jwt = match &args.jwt_issuer {
        Some(issuer) => Some(Arc::new(
            JwtVerifier::new(JwtSettings {
                issuer: issuer.clone(),
                audience: resource.clone(),
                jwks_url: args.jwt_jwks_url.clone(),
                jwks_ttl: std::time::Duration::from_secs(args.jwt_jwks_ttl_secs),
                min_refetch: std::time::Duration::from_secs(args.jwt_jwks_min_refetch_secs),
                visibility_claim: args.jwt_visibility_claim.clone(),
                visibility_tag_key: args.jwt_visibility_tag_key.clone(),
                visibility_allow_untagged: args.jwt_visibility_allow_untagged,
            })
            .map_err(HttpError::Config)?,
        )),
        None => None,
    };
    Ok(Some(Auth {
        tokens,
        jwt,
        resource,
    }))
}

/// The axum router: `/mcp` (guarded), `/healthz`, and the protected-resource metadata.
pub fn router(
    app: Server,
    args: &HttpSettings,
    auth: Option<Auth>,
    ct: CancellationToken,
) -> Router {
    let hosts: Vec<String> = LOOPBACK_HOSTS
        .iter()
        .map(std::string::ToString::to_string)
        .chain(args.allowed_hosts.iter().cloned())
        .collect();
    let origins: Vec<String> = LOOPBACK_ORIGINS
        .iter()
        .map(std::string::ToString::to_string)
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
    let guard = Guard::new(
        auth.clone(),
        Limits {
            max_body_bytes: args.max_body_bytes,
            timeout: std::time::Duration::from_secs(args.request_timeout_secs.max(1)),
            max_concurrent: args.max_concurrent_requests,
            rate_per_minute: args.rate_limit_per_minute,
        },
    );
    let mut router = Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(
            guard,
            crate::auth::middleware::guard,
        ))
        .layer(axum::middleware::from_fn(json_by_default))
        .route("/healthz", get(|| async { "ok" }));
    if let Some(auth) = auth {
        let doc = auth.metadata();
        let path = auth
            .metadata_url()
            .split_once("/.well-known/")
            .map(|(_, p)| format!("/.well-known/{p}"))
            .unwrap_or_else(|| "/.well-known/oauth-protected-resource".into());
        let serve_doc = move || {
            let doc = doc.clone();
            async move { axum::Json(doc) }
        };
        router = router.route(&path, get(serve_doc.clone()));
        if path != "/.well-known/oauth-protected-resource" {
            router = router.route("/.well-known/oauth-protected-resource", get(serve_doc));
        }
    }
    router
}

/// The body of a POST to `/mcp` is one JSON-RPC message (MCP streamable HTTP); a POST that does
/// not say its Content-Type is read as JSON, so a malformed body gets JSON-RPC error -32700
/// (HTTP 400, from the guard) like any other, not 415. A Content-Type naming something else
/// stays 415, answered as a JSON-RPC error that says what to send.
async fn json_by_default(
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{HeaderValue, Method, StatusCode, header};
    use axum::response::IntoResponse;
    let post = req.method() == Method::POST;
    if post && !req.headers().contains_key(header::CONTENT_TYPE) {
        req.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    let resp = next.run(req).await;
    if !(post && resp.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE) {
        return resp;
    }
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {
            "code": -32600,
            "message": "Invalid Request: send the JSON-RPC message with Content-Type: application/json"
        }
    })
    .to_string();
    (
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// Serve until SIGINT or SIGTERM.
pub async fn serve(app: Server, args: HttpSettings, addr: SocketAddr) -> Result<(), HttpError> {
    let has_auth = args.auth_tokens.is_some() || args.jwt_issuer.is_some();
    if !addr.ip().is_loopback() && !has_auth {
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
    let auth = auth_from_args(&args, local)?;
    if auth.is_none() {
        tracing::warn!(
            "no HTTP authentication configured: anyone who can reach {local} can read spend"
        );
    }
    let router = router(app, &args, auth, ct.child_token());
    let shutdown = ct.clone();
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
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

/// `health-check`: GET `url` (plain HTTP, the server's own `/healthz` inside its container,
/// which has no shell or curl for a `HEALTHCHECK`) within `timeout`; Ok when it answers 200 `ok`.
pub async fn health_check(url: &str, timeout: std::time::Duration) -> Result<(), String> {
    use http_body_util::{BodyExt, Empty};
    let uri: axum::http::Uri = url.parse().map_err(|e| format!("--url {url}: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "--url {url}: only http:// (the server's own /healthz) is checked"
        ));
    }
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<axum::body::Bytes>>();
    let answer = tokio::time::timeout(timeout, async {
        let resp = client.get(uri).await.map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{url}: {e}"))?
            .to_bytes();
        Ok::<_, String>((status, body))
    })
    .await
    .map_err(|_| format!("{url}: no answer within {} s", timeout.as_secs()))??;
    if answer.0 == axum::http::StatusCode::OK && answer.1.trim_ascii() == b"ok" {
        Ok(())
    } else {
        Err(format!("{url}: HTTP {}", answer.0))
    }
}
