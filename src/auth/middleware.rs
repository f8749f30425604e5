//! The HTTP guard in front of `/mcp`: authentication and the read scope, per-caller rate
//! limit, concurrency limit, per-request deadline, and one structured access-log line per
//! request.
//!
//! Order: authenticate (when configured) -> `cost.read` -> rate limit -> concurrency permit ->
//! run with a deadline. The guard never reads the request body: rmcp decodes it once, and
//! everything that depends on what is asked (the write scope, the tool named in the access log)
//! is decided where the call is dispatched, on the decoded values (`server::Server::call_tool`),
//! which reports back through the request's [`RequestNote`].
//!
//! The permit and the deadline also hold for streamed responses: a call that sends progress
//! answers as an event stream once its headers are out, so the permit and the deadline travel
//! inside the response body ([`Bounded`]); at the deadline the stream ends with a JSON-RPC error
//! and is dropped, which cancels the call (rmcp cancels a stateless request whose stream is
//! gone). A body rmcp cannot decode is answered HTTP 400 with JSON-RPC error -32700.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{Auth, AuthError, Caller, SCOPE_READ};
use crate::domain::visibility::NoteInner;
pub use crate::domain::visibility::RequestNote;

/// Limits for the HTTP transport.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub timeout: Duration,
    pub max_concurrent: usize,
    /// Requests per minute per authenticated caller (0: unlimited).
    pub rate_per_minute: u32,
}

/// Callers are swept (those whose state has refilled, which forgetting does not change) when
/// this many are kept: JWT subjects are unbounded.
const BUCKET_SWEEP_AT: usize = 1024;

#[cfg(not(test))]
type LimiterClock = governor::clock::MonotonicClock;
#[cfg(test)]
type LimiterClock = governor::clock::FakeRelativeClock;
/// The per-caller rate (governor's keyed GCRA limiter: a caller may burst a minute's worth,
/// then one request per 60/rate seconds).
type Limiter = governor::RateLimiter<
    String,
    governor::state::keyed::DefaultKeyedStateStore<String>,
    LimiterClock,
    governor::middleware::NoOpMiddleware<<LimiterClock as governor::clock::Clock>::Instant>,
>;

#[derive(Clone)]
pub struct Guard {
    auth: Option<Auth>,
    limits: Limits,
    permits: Arc<tokio::sync::Semaphore>,
    /// None: no rate limit (`rate_per_minute` 0).
    limiter: Option<Arc<Limiter>>,
    clock: LimiterClock,
}

impl Guard {
    pub fn new(auth: Option<Auth>, limits: Limits) -> Guard {
        let clock = LimiterClock::default();
        Guard {
            permits: Arc::new(tokio::sync::Semaphore::new(limits.max_concurrent.max(1))),
            limiter: std::num::NonZeroU32::new(limits.rate_per_minute).map(|rate| {
                Arc::new(governor::RateLimiter::dashmap_with_clock(
                    governor::Quota::per_minute(rate),
                    clock.clone(),
                ))
            }),
            clock,
            auth,
            limits,
        }
    }

    /// Take one request from `who`'s allowance; Err(seconds to wait) when it is spent.
    fn take(&self, who: &str) -> Result<(), u64> {
        use governor::clock::Clock;
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if limiter.len() >= BUCKET_SWEEP_AT {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        limiter.check_key(&who.to_string()).map_err(|not_until| {
            not_until
                .wait_time_from(self.clock.now())
                .as_secs_f64()
                .ceil()
                .max(1.0) as u64
        })
    }
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
    let started = Instant::now();
    let (mut parts, body) = req.into_parts();
    let json_body = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case("application/json"))
        });
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
    let Ok(permit) = g.permits.clone().try_acquire_owned() else {
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
    let note = RequestNote::default();
    parts.extensions.insert(note.clone());
    let deadline = started + g.limits.timeout;
    let req = Request::from_parts(parts, body);
    let resp = match tokio::time::timeout_at(deadline.into(), next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            note.with(|n| fill_line(line, n));
            return json_error(
                StatusCode::GATEWAY_TIMEOUT,
                &timeout_message(g.limits.timeout),
            );
        }
    };
    let (denied, id) = note.with(|n| {
        fill_line(line, n);
        (n.denied.clone(), n.id.clone())
    });
    // The dispatch refused a tool for want of a scope: answer as OAuth asks (RFC 6750 §3.1),
    // so clients can step up; the refusal itself already happened at dispatch.
    if let (Some((tool, scope)), Some(auth)) = (denied, &g.auth) {
        return challenge(
            auth,
            StatusCode::FORBIDDEN,
            Some(("insufficient_scope", format!("{tool} needs scope {scope}"))),
            Some(&format!("{SCOPE_READ} {scope}")),
        );
    }
    // rmcp answers 415 for a JSON body it cannot decode as one JSON-RPC message (and for a
    // wrong content type, which stays 415).
    if resp.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE && json_body {
        return parse_error();
    }
    let streamed = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if !streamed {
        return resp;
    }
    let (resp_parts, body) = resp.into_parts();
    let body = Body::new(Bounded {
        inner: Some(body),
        _permit: permit,
        deadline: Box::pin(tokio::time::sleep_until(deadline.into())),
        timeout_event: Some(timeout_event(id.as_deref(), g.limits.timeout)),
    });
    Response::from_parts(resp_parts, body)
}

fn fill_line(line: &mut Line, n: &NoteInner) {
    if let Some(r) = &n.rpc {
        line.rpc = r.clone();
    }
    if let Some(t) = &n.tool {
        line.tool = t.clone();
    }
}

fn timeout_message(timeout: Duration) -> String {
    format!(
        "request took longer than {} s and was stopped; narrow the question (period, filters) or raise --request-timeout-secs",
        timeout.as_secs()
    )
}

/// HTTP 400 with JSON-RPC error -32700: the body is not one JSON-RPC message (malformed JSON,
/// a batch, a wrong shape).
fn parse_error() -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": -32700, "message": "Parse error: the body is not one JSON-RPC 2.0 message (batches are not accepted)"}
    })
    .to_string();
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// The last event of a stream stopped at its deadline: a JSON-RPC error for the request.
fn timeout_event(id: Option<&str>, timeout: Duration) -> Bytes {
    let error = serde_json::json!({"code": -32000, "message": timeout_message(timeout)});
    let id: serde_json::Value = id
        .and_then(|i| serde_json::from_str(i).ok())
        .unwrap_or(serde_json::Value::Null);
    let msg = serde_json::json!({"jsonrpc": "2.0", "id": id, "error": error});
    Bytes::from(format!("event: message\ndata: {msg}\n\n"))
}

/// A streamed response body that holds the request's concurrency permit until it ends and
/// stops at the request's deadline: then it sends [`timeout_event`] and drops the inner
/// stream (which cancels the call).
struct Bounded {
    inner: Option<Body>,
    _permit: tokio::sync::OwnedSemaphorePermit,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout_event: Option<Bytes>,
}

impl http_body::Body for Bounded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Some(inner) = this.inner.as_mut() {
            match Pin::new(inner).poll_frame(cx) {
                Poll::Ready(None) => {
                    this.inner = None;
                    this.timeout_event = None;
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(frame)) => return Poll::Ready(Some(frame)),
                Poll::Pending => {}
            }
            if this.deadline.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            // The deadline: stop the call, tell the client why.
            this.inner = None;
        }
        Poll::Ready(
            this.timeout_event
                .take()
                .map(|e| Ok(http_body::Frame::data(e))),
        )
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
        let clock = g.clock.clone();
        assert!(g.take("a").is_ok());
        assert!(g.take("a").is_ok());
        assert_eq!(g.take("a"), Err(30), "one request per 30 s at 2/min");
        clock.advance(Duration::from_secs(30));
        assert!(g.take("a").is_ok());
        assert!(g.take("a").is_err(), "the refill was one request");
        // Fill the map with callers, then let them idle for a minute.
        for i in 0..BUCKET_SWEEP_AT {
            g.take(&format!("c{i}")).unwrap();
        }
        clock.advance(Duration::from_secs(61));
        assert!(g.take("new").is_ok());
        let kept = g.limiter.as_ref().unwrap().len();
        assert!(kept <= 2, "the idle ones are gone: {kept} kept");
        // Recent callers survive a sweep: their state still limits.
        let g = guard(1);
        let clock = g.clock.clone();
        g.take("busy").unwrap();
        for i in 0..BUCKET_SWEEP_AT {
            g.take(&format!("c{i}")).unwrap();
        }
        clock.advance(Duration::from_secs(1));
        g.take("another").unwrap();
        clock.advance(Duration::from_secs(1));
        assert!(g.take("busy").is_err());
        // No limit at 0 per minute.
        let g = guard(0);
        for _ in 0..1000 {
            g.take("x").unwrap();
        }
    }
}
