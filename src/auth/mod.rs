//! HTTP authentication and per-caller scope (the streamable HTTP transport only; stdio is the
//! local user's own process and is not authenticated).
//!
//! Two kinds of credentials, both `Authorization: Bearer <token>`:
//! - static tokens from a TOML file, stored as SHA-256 hashes and compared in constant time
//!   ([`tokens`]);
//! - OAuth 2.1 access tokens (JWT) from an authorization server, checked against its JWKS,
//!   issuer, audience (our resource URI), expiry and scopes ([`jwt`]).
//!
//! Either yields a [`Caller`]: a name for the access log, scopes (`cost.read`, `cost.write`) and
//! an optional [`Visibility`] that narrows every spend, principal and budget answer. The client's
//! token is never forwarded anywhere, least of all to AWS.

pub mod jwt;
pub mod middleware;
pub mod tokens;

use std::sync::Arc;

pub use crate::domain::visibility::{Caller, SCOPE_READ, SCOPE_WRITE, Visibility};

/// Everything the HTTP transport needs to authenticate requests.
#[derive(Clone)]
pub struct Auth {
    pub tokens: Option<Arc<tokens::TokenFile>>,
    pub jwt: Option<Arc<jwt::JwtVerifier>>,
    /// Our resource URI (the JWT audience), e.g. `https://cost.example.com/mcp`.
    pub resource: String,
}

impl Auth {
    /// Authenticate a bearer token: static tokens first, then JWT.
    pub async fn authenticate(&self, token: &str) -> Result<Caller, AuthError> {
        if let Some(t) = &self.tokens
            && let Some(c) = t.lookup(token)
        {
            return Ok(c);
        }
        match &self.jwt {
            Some(j) if token.matches('.').count() == 2 => j.verify(token).await,
            _ => Err(AuthError::Invalid("unknown token".into())),
        }
    }

    /// RFC 9728 protected-resource metadata.
    pub fn metadata(&self) -> serde_json::Value {
        let mut m = serde_json::json!({
            "resource": self.resource,
            "scopes_supported": crate::domain::visibility::SCOPES,
            "bearer_methods_supported": ["header"],
            "resource_name": "bedrock-cost-mcp",
        });
        if let Some(j) = &self.jwt {
            m["authorization_servers"] = serde_json::json!([j.issuer()]);
        }
        m
    }

    /// Where clients find the metadata: the well-known URI for our resource (RFC 9728 §3.1).
    pub fn metadata_url(&self) -> String {
        match url_split(&self.resource) {
            Some((origin, path)) if path.is_empty() || path == "/" => {
                format!("{origin}/.well-known/oauth-protected-resource")
            }
            Some((origin, path)) => format!("{origin}/.well-known/oauth-protected-resource{path}"),
            None => "/.well-known/oauth-protected-resource".into(),
        }
    }
}

/// `https://host:port/path` -> (`https://host:port`, `/path`).
fn url_split(u: &str) -> Option<(&str, &str)> {
    let scheme_end = u.find("://")? + 3;
    match u[scheme_end..].find('/') {
        Some(i) => Some((&u[..scheme_end + i], &u[scheme_end + i..])),
        None => Some((u, "")),
    }
}

/// Why a request was not authenticated. The text goes to the client in `WWW-Authenticate`
/// (`error_description`), so it never contains the token.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum AuthError {
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("token expired")]
    Expired,
    #[error("the authorization server's keys are unavailable: {0}")]
    KeysUnavailable(String),
}
