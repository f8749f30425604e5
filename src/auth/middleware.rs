//! The HTTP guard in front of `/mcp`: authentication and scopes, per-caller rate limit,
//! concurrency limit, per-request timeout, and one structured access-log line per request.
//!
//! Order: read the body (bounded) -> authenticate (when configured) -> scope check from the
//! JSON-RPC method and tool name -> rate limit -> concurrency permit -> run with a timeout.
//! The authenticated [`Caller`] travels in the request's extensions; rmcp hands the request
//! parts to the tool handlers, which narrow answers to the caller's visibility.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Auth, AuthError, Caller, SCOPE_READ, SCOPE_WRITE};

/// Tools that change the AWS account; they need `cost.write`.
pub const WRITE_TOOLS: &[&str] = &["activate_cost_allocation_tags", "tag_principal"];

/// Limits for the HTTP transport.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub timeout: Duration,
    pub max_concurrent: usize,
    /// Requests per minute per authenticated caller (0: unlimited).
    pub rate_per_minute: u32,
}

/// Idle buckets are swept when a new caller arrives and this many are kept.
const BUCKET_SWEEP_AT: usize = 1024;
/// A bucket's capacity is one minute of its rate.
const REFILL: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Clone)]
pub struct Guard {
    auth: Option<Auth>,
    limits: Limits,
    permits: Arc<tokio::sync::Semaphore>,
    buckets: Arc<Mutex<HashMap<String, (f64, Instant)>>>,
}

impl Guard {
    pub fn new(auth: Option<Auth>, limits: Limits) -> Guard {
        Guard {
            permits: Arc::new(tokio::sync::Semaphore::new(limits.max_concurrent.max(1))),
            auth,
            limits,
            buckets: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Take one request from `who`'s bucket; Err(seconds to wait) when empty.
    fn take(&self, who: &str) -> Result<(), u64> {
        self.take_at(who, Instant::now())
    }

    fn take_at(&self, who: &str, now: Instant) -> Result<(), u64> {
        let rate = self.limits.rate_per_minute;
        if rate == 0 {
            return Ok(());
        }
        let per_sec = rate as f64 / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        // A bucket idle for a minute has refilled: forgetting it changes nothing, and keeps
        // the map as small as the set of recent callers (JWT subjects are unbounded).
        if buckets.len() >= BUCKET_SWEEP_AT && !buckets.contains_key(who) {
            buckets.retain(|_, (_, at)| now.saturating_duration_since(*at) < REFILL);
        }
        let (tokens, at) = buckets.entry(who.to_string()).or_insert((rate as f64, now));
        *tokens =
            (*tokens + now.saturating_duration_since(*at).as_secs_f64() * per_sec).min(rate as f64);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / per_sec).ceil().max(1.0) as u64)
        }
    }
}

/// What the access log and the scope check need from a JSON-RPC body.
#[derive(Deserialize, Default)]
struct Peek<'a> {
    #[serde(borrow, default)]
    method: Option<&'a str>,
    #[serde(borrow, default)]
    params: Option<PeekParams<'a>>,
}

#[derive(Deserialize, Default)]
struct PeekParams<'a> {
    #[serde(borrow, default)]
    name: Option<&'a str>,
}

struct Line {
    caller: String,
    rpc: String,
    tool: String,
}

fn json_error(status: StatusCode, msg: &str) -> Response {
    let body = serde_json::json!({ "error": msg }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn challenge(
    auth: &Auth,
    status: StatusCode,
    error: Option<(&str, String)>,
    scope: Option<&str>,
) -> Response {
    let mut v = format!("Bearer resource_metadata=\"{}\"", auth.metadata_url());
    if let Some((code, desc)) = &error {
        // Quotes and backslashes cannot appear inside a quoted-string unescaped.
        let desc: String = desc
            .chars()
            .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
            .collect();
        v.push_str(&format!(", error=\"{code}\", error_description=\"{desc}\""));
    }
    if let Some(s) = scope {
        v.push_str(&format!(", scope=\"{s}\""));
    }
    let mut resp = json_error(
        status,
        &error
            .map(|(_, d)| d)
            .unwrap_or_else(|| "authentication required".into()),
    );
    if let Ok(h) = HeaderValue::from_str(&v) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, h);
    }
    resp
}

/// axum middleware for `/mcp`.
pub async fn guard(State(g): State<Guard>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let http_method = req.method().clone();
    let remote = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    let mut line = Line {
        caller: "-".into(),
        rpc: "-".into(),
        tool: "-".into(),
    };
    let resp = run(&g, req, next, &mut line).await;
    // No header, body or token is logged: only who, what and how it went.
    tracing::info!(
        target: "bedrock_cost_mcp::access",
        remote = %remote,
        caller = %line.caller,
        http = %http_method,
        rpc = %line.rpc,
        tool = %line.tool,
        status = resp.status().as_u16(),
        ms = format_args!("{:.1}", started.elapsed().as_secs_f64() * 1000.0),
        "request"
    );
    resp
}

async fn run(g: &Guard, req: Request, next: Next, line: &mut Line) -> Response {
    let (mut parts, body) = req.into_parts();
    // Bounded read: a body over the limit is refused before anything parses it.
    let bytes = match axum::body::to_bytes(body, g.limits.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            return json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("request body over {} bytes", g.limits.max_body_bytes),
            );
        }
    };
    let peek: Peek = serde_json::from_slice(&bytes).unwrap_or_default();
    if let Some(m) = peek.method {
        line.rpc = m.chars().take(64).collect();
    }
    let tool = peek
        .params
        .as_ref()
        .and_then(|p| p.name)
        .filter(|_| peek.method == Some("tools/call"));
    if let Some(t) = tool {
        line.tool = t.chars().take(64).collect();
    }

    let mut who = None;
    if let Some(auth) = &g.auth {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return challenge(auth, StatusCode::UNAUTHORIZED, None, None);
        };
        let caller: Caller = match auth.authenticate(token).await {
            Ok(c) => c,
            Err(AuthError::KeysUnavailable(e)) => {
                tracing::warn!(error = %e, "cannot check JWTs");
                return json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "cannot check tokens right now (authorization server keys unavailable)",
                );
            }
            Err(e) => {
                return challenge(
                    auth,
                    StatusCode::UNAUTHORIZED,
                    Some(("invalid_token", e.to_string())),
                    None,
                );
            }
        };
        line.caller = caller.name.clone();
        if !caller.has_scope(SCOPE_READ) {
            return challenge(
                auth,
                StatusCode::FORBIDDEN,
                Some((
                    "insufficient_scope",
                    format!("this server needs scope {SCOPE_READ}"),
                )),
                Some(SCOPE_READ),
            );
        }
        if let Some(t) = tool
            && WRITE_TOOLS.contains(&t)
            && !caller.has_scope(SCOPE_WRITE)
        {
            return challenge(
                auth,
                StatusCode::FORBIDDEN,
                Some((
                    "insufficient_scope",
                    format!("{t} needs scope {SCOPE_WRITE}"),
                )),
                Some(&format!("{SCOPE_READ} {SCOPE_WRITE}")),
            );
        }
        who = Some(caller.name.clone());
        parts.extensions.insert(caller);
    }
    if let Some(who) = &who
        && let Err(wait) = g.take(who)
    {
        let mut resp = json_error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "rate limit of {} requests per minute reached; retry in {wait} s",
                g.limits.rate_per_minute
            ),
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return resp;
    }
    let Ok(_permit) = g.permits.clone().try_acquire_owned() else {
        let mut resp = json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "server busy: {} requests in flight; retry shortly",
                g.limits.max_concurrent
            ),
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(1u32));
        return resp;
    };
    let req = Request::from_parts(parts, Body::from(bytes));
    match tokio::time::timeout(g.limits.timeout, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => json_error(
            StatusCode::GATEWAY_TIMEOUT,
            &format!(
                "request took longer than {} s and was stopped; narrow the question (period, filters) or raise --request-timeout-secs",
                g.limits.timeout.as_secs()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(rate: u32) -> Guard {
        Guard::new(
            None,
            Limits {
                max_body_bytes: 1024,
                timeout: Duration::from_secs(1),
                max_concurrent: 1,
                rate_per_minute: rate,
            },
        )
    }

    #[test]
    fn bucket_empties_refills_and_idle_buckets_are_forgotten() {
        let g = guard(2);
        let t0 = Instant::now();
        assert!(g.take_at("a", t0).is_ok());
        assert!(g.take_at("a", t0).is_ok());
        assert_eq!(g.take_at("a", t0), Err(30), "one token per 30 s at 2/min");
        assert!(g.take_at("a", t0 + Duration::from_secs(30)).is_ok());
        // Fill the map with callers, then let them idle for a minute.
        for i in 0..BUCKET_SWEEP_AT {
            g.take_at(&format!("c{i}"), t0).unwrap();
        }
        let later = t0 + REFILL + Duration::from_secs(1);
        assert!(g.take_at("new", later).is_ok());
        let kept = g.buckets.lock().unwrap().len();
        assert_eq!(
            kept, 2,
            "the idle ones are gone; `a` (30 s ago) and the new caller stay"
        );
        // Recent buckets survive a sweep: their state still limits.
        let g = guard(1);
        g.take_at("busy", t0).unwrap();
        for i in 0..BUCKET_SWEEP_AT {
            g.take_at(&format!("c{i}"), t0).unwrap();
        }
        g.take_at("another", t0 + Duration::from_secs(1)).unwrap();
        assert!(g.take_at("busy", t0 + Duration::from_secs(2)).is_err());
    }
}
