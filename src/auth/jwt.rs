//! OAuth 2.1 resource server: JWT access tokens checked against the authorization server's JWKS,
//! with the `jsonwebtoken` crate (aws-lc-rs backend).
//!
//! Checks: `alg` in RS256/RS384/RS512/ES256/ES384/EdDSA (never `none`, never HMAC: we hold no
//! shared secret, and symmetric keys in a key set are ignored); a key with the token's `kid` (or
//! the only key) whose type fits `alg`; the signature; `iss` equals the configured issuer; `aud`
//! (string or list) contains our resource URI; `exp` in the future and `nbf` not in the future
//! (60 s leeway, real time). Scopes come from `scope` (space separated) or `scp` (list or
//! string).
//!
//! Keys are fetched from `jwks_url` (or the issuer's RFC 8414 / OpenID metadata) and kept. A
//! request never waits for a refresh while keys are at hand: once they are older than
//! `jwks_ttl` they keep being used while one background task fetches them again, so a brief
//! issuer outage rejects no one. Only the first fetch, and a token naming a `kid` we do not
//! know (the issuer may have rotated its keys), wait for a fetch, and only for one fetch at a
//! time, at most [`FETCH_TIMEOUT`]. A fetch is tried at most once per `min_refetch` (the `--jwt-jwks-min-refetch-secs`), whether
//! it worked or not, so junk tokens with made-up `kid`s cannot make us hammer the issuer; a
//! failed fetch is remembered and its error is the answer until the next try.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use super::{AuthError, Caller, Visibility};

const LEEWAY_S: u64 = 60;
/// Longest a key-set or metadata fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest key set or metadata document read.
const MAX_DOC_BYTES: usize = 1 << 20;

/// Settings for JWT validation.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub issuer: String,
    pub audience: String,
    pub jwks_url: Option<String>,
    pub jwks_ttl: Duration,
    /// Least time between two fetches of the key set, tried or not (`--jwt-jwks-min-refetch-secs`).
    pub min_refetch: Duration,
    /// Claim whose value(s) are the `iamPrincipal/<visibility_tag_key>` values the caller may see.
    pub visibility_claim: Option<String>,
    pub visibility_tag_key: Option<String>,
    /// A blank claim value grants untagged spend.
    pub visibility_allow_untagged: bool,
}

/// One usable verification key.
struct Key {
    kid: Option<String>,
    /// The algorithms the key can verify.
    algs: Vec<Algorithm>,
    key: DecodingKey,
}

struct KeySet {
    keys: Vec<Key>,
    fetched: Instant,
}

#[derive(Default)]
struct FetchState {
    last_attempt: Option<Instant>,
    last_error: Option<String>,
    /// A background refresh is running.
    refreshing: bool,
}

type HttpsClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Empty<Bytes>,
>;

struct Inner {
    settings: JwtSettings,
    http: HttpsClient,
    /// The keys in use; never held across an await.
    keys: RwLock<Option<Arc<KeySet>>>,
    /// Held across a fetch: one fetch at a time.
    fetch: tokio::sync::Mutex<FetchState>,
}

/// Verifies access tokens; cheap to clone and share.
#[derive(Clone)]
pub struct JwtVerifier(Arc<Inner>);

impl JwtVerifier {
    pub fn new(settings: JwtSettings) -> Result<JwtVerifier, String> {
        if !(settings.issuer.starts_with("https://") || settings.issuer.starts_with("http://")) {
            return Err(format!(
                "--jwt-issuer {}: give the authorization server's issuer URL",
                settings.issuer
            ));
        }
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(|e| format!("cannot load the system's TLS roots for the JWKS client: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        let http =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(connector);
        Ok(JwtVerifier(Arc::new(Inner {
            settings,
            http,
            keys: RwLock::new(None),
            fetch: tokio::sync::Mutex::new(FetchState::default()),
        })))
    }

    pub fn issuer(&self) -> &str {
        &self.0.settings.issuer
    }

    fn snapshot(&self) -> Option<Arc<KeySet>> {
        self.0
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Check a token and say who it belongs to.
    pub async fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Invalid("malformed JWT header".into()))?;
        let alg = header.alg;
        if !matches!(
            alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::ES256
                | Algorithm::ES384
                | Algorithm::EdDSA
        ) {
            return Err(AuthError::Invalid(format!("unsupported alg '{alg:?}'")));
        }
        let kid = header.kid.as_deref();
        let set = match self.snapshot() {
            Some(set) => {
                if set.fetched.elapsed() > self.0.settings.jwks_ttl {
                    self.refresh_in_background();
                }
                set
            }
            None => {
                self.fetch_once().await;
                self.snapshot().ok_or_else(|| self.unavailable())?
            }
        };
        let key = match pick(&set.keys, kid, alg) {
            Some(k) => k,
            None => {
                // Unknown kid: the issuer may have rotated its keys (one fetch per min_refetch).
                self.fetch_once().await;
                let set = self.snapshot().ok_or_else(|| self.unavailable())?;
                let found = pick(&set.keys, kid, alg).map(|k| k.key.clone());
                match found {
                    Some(k) => return self.decode(token, alg, &k),
                    None => {
                        return Err(AuthError::Invalid(format!(
                            "no signing key {}for {alg:?}",
                            kid.map(|k| format!("'{}' ", k.chars().take(64).collect::<String>()))
                                .unwrap_or_default()
                        )));
                    }
                }
            }
        };
        let key = key.key.clone();
        self.decode(token, alg, &key)
    }

    fn decode(&self, token: &str, alg: Algorithm, key: &DecodingKey) -> Result<Caller, AuthError> {
        let s = &self.0.settings;
        let mut v = Validation::new(alg);
        v.set_issuer(&[&s.issuer]);
        v.set_audience(&[&s.audience]);
        v.leeway = LEEWAY_S;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Value>(token, key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::InvalidSignature => AuthError::Invalid("bad signature".into()),
                ErrorKind::InvalidIssuer => AuthError::Invalid("wrong issuer".into()),
                ErrorKind::InvalidAudience => {
                    AuthError::Invalid(format!("audience is not this server ({})", s.audience))
                }
                ErrorKind::ImmatureSignature => {
                    AuthError::Invalid("token not valid yet (nbf)".into())
                }
                ErrorKind::MissingRequiredClaim(c) => AuthError::Invalid(format!("no {c} claim")),
                ErrorKind::InvalidAlgorithm => {
                    AuthError::Invalid("the key does not fit the token's alg".into())
                }
                _ => AuthError::Invalid("malformed JWT".into()),
            }
        })?;
        Ok(caller_from_claims(s, &data.claims))
    }

    fn unavailable(&self) -> AuthError {
        let why = self
            .0
            .fetch
            .try_lock()
            .ok()
            .and_then(|f| f.last_error.clone())
            .unwrap_or_else(|| "no key set fetched yet".into());
        AuthError::KeysUnavailable(why)
    }

    /// Fetch the key set now unless one was tried within `min_refetch`; waits for a fetch
    /// another request started instead of starting a second one.
    async fn fetch_once(&self) {
        let asked = Instant::now();
        let Ok(mut state) = tokio::time::timeout(FETCH_TIMEOUT, self.0.fetch.lock()).await else {
            return;
        };
        if state
            .last_attempt
            .is_some_and(|t| t > asked || t.elapsed() < self.0.settings.min_refetch)
        {
            return;
        }
        self.fetch_into(&mut state).await;
    }

    async fn fetch_into(&self, state: &mut FetchState) {
        state.last_attempt = Some(Instant::now());
        match tokio::time::timeout(FETCH_TIMEOUT, self.fetch_keys()).await {
            Ok(Ok(set)) => {
                tracing::info!(keys = set.keys.len(), "fetched JWKS");
                *self
                    .0
                    .keys
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(set));
                state.last_error = None;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "JWKS fetch failed; keeping the keys at hand");
                state.last_error = Some(e);
            }
            Err(_) => {
                let e = format!(
                    "fetching the key set took over {} s",
                    FETCH_TIMEOUT.as_secs()
                );
                tracing::warn!(error = %e, "JWKS fetch failed; keeping the keys at hand");
                state.last_error = Some(e);
            }
        }
    }

    /// Stale keys: one background fetch (at most one per `min_refetch`); requests go on
    /// with the keys at hand.
    fn refresh_in_background(&self) {
        let Ok(mut state) = self.0.fetch.try_lock() else {
            return; // a fetch is running
        };
        if state.refreshing
            || state
                .last_attempt
                .is_some_and(|t| t.elapsed() < self.0.settings.min_refetch)
        {
            return;
        }
        state.refreshing = true;
        drop(state);
        let me = self.clone();
        tokio::spawn(async move {
            let mut state = me.0.fetch.lock().await;
            me.fetch_into(&mut state).await;
            state.refreshing = false;
        });
    }

    async fn fetch_keys(&self) -> Result<KeySet, String> {
        let url = match &self.0.settings.jwks_url {
            Some(u) => u.clone(),
            None => self.discover().await?,
        };
        let doc = self.get_json(&url).await?;
        let Some(list) = doc["keys"].as_array() else {
            return Err(format!("{url}: no \"keys\" list"));
        };
        // A key we cannot use (unknown type, symmetric, encryption) is skipped, not fatal.
        let keys: Vec<Key> = list
            .iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
            .filter_map(|jwk| usable(&jwk))
            .collect();
        if keys.is_empty() {
            return Err(format!("{url}: no usable signing key"));
        }
        Ok(KeySet {
            keys,
            fetched: Instant::now(),
        })
    }

    async fn discover(&self) -> Result<String, String> {
        let base = self.0.settings.issuer.trim_end_matches('/');
        for path in [
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration",
        ] {
            if let Ok(doc) = self.get_json(&format!("{base}{path}")).await
                && let Some(u) = doc["jwks_uri"].as_str()
            {
                return Ok(u.to_string());
            }
        }
        Err(format!("{base} publishes no jwks_uri; pass --jwt-jwks-url"))
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let uri: axum::http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
        let req = axum::http::Request::get(uri)
            .header("accept", "application/json")
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("{url}: {e}"))?;
        let resp = self
            .0
            .http
            .request(req)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("{url}: HTTP {}", resp.status()));
        }
        let body = Limited::new(resp.into_body(), MAX_DOC_BYTES)
            .collect()
            .await
            .map_err(|e| format!("{url}: {e}"))?
            .to_bytes();
        serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))
    }
}

/// A JWK as a verification key, if it is a public signing key of a kind we accept.
fn usable(jwk: &Jwk) -> Option<Key> {
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let algs = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![Algorithm::RS256, Algorithm::RS384, Algorithm::RS512],
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            vec![Algorithm::EdDSA]
        }
        // Symmetric keys (`oct`) would verify HMAC tokens: never.
        _ => return None,
    };
    // A key that names its algorithm verifies only that one.
    let algs: Vec<Algorithm> = match jwk.common.key_algorithm {
        None => algs,
        Some(named) => algs
            .into_iter()
            .filter(|a| key_alg(*a) == Some(named))
            .collect(),
    };
    if algs.is_empty() {
        return None;
    }
    Some(Key {
        kid: jwk.common.key_id.clone(),
        algs,
        key: DecodingKey::from_jwk(jwk).ok()?,
    })
}

fn key_alg(a: Algorithm) -> Option<KeyAlgorithm> {
    Some(match a {
        Algorithm::RS256 => KeyAlgorithm::RS256,
        Algorithm::RS384 => KeyAlgorithm::RS384,
        Algorithm::RS512 => KeyAlgorithm::RS512,
        Algorithm::ES256 => KeyAlgorithm::ES256,
        Algorithm::ES384 => KeyAlgorithm::ES384,
        Algorithm::EdDSA => KeyAlgorithm::EdDSA,
        _ => return None,
    })
}

fn pick<'a>(keys: &'a [Key], kid: Option<&str>, alg: Algorithm) -> Option<&'a Key> {
    let mut candidates = keys.iter().filter(|k| k.algs.contains(&alg));
    match kid {
        Some(kid) => candidates.find(|k| k.kid.as_deref() == Some(kid)),
        None => {
            let first = candidates.next()?;
            // Without a kid, only an unambiguous key will do.
            candidates.next().is_none().then_some(first)
        }
    }
}

/// Name, scopes and visibility from verified claims.
fn caller_from_claims(s: &JwtSettings, c: &Value) -> Caller {
    let scopes: Vec<String> = match (&c["scope"], &c["scp"]) {
        (Value::String(s), _) | (_, Value::String(s)) => {
            s.split_whitespace().map(str::to_string).collect()
        }
        (_, Value::Array(v)) => v
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        _ => vec![],
    };
    let name = ["sub", "client_id", "azp"]
        .iter()
        .find_map(|k| c[*k].as_str())
        .unwrap_or("jwt")
        .chars()
        .take(256)
        .collect();
    let visibility = match (&s.visibility_claim, &s.visibility_tag_key) {
        (Some(claim), Some(key)) => Some(match &c[claim.as_str()] {
            Value::Null => Visibility::nothing(format!(
                "this caller's visibility grants nothing: the token has no `{claim}` claim, which this server reads the iamPrincipal/{key} values the caller may see from"
            )),
            Value::String(v) => Visibility::new(
                Some(key.as_str()),
                std::slice::from_ref(v),
                &[],
                s.visibility_allow_untagged,
            ),
            Value::Array(list) => {
                let values: Vec<String> = list
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                if values.len() < list.len() {
                    Visibility::nothing(format!(
                        "this caller's visibility grants nothing: the `{claim}` claim holds something other than strings"
                    ))
                } else {
                    Visibility::new(
                        Some(key.as_str()),
                        &values,
                        &[],
                        s.visibility_allow_untagged,
                    )
                }
            }
            _ => Visibility::nothing(format!(
                "this caller's visibility grants nothing: the `{claim}` claim is not a string or a list of strings"
            )),
        }),
        _ => None,
    };
    Caller {
        name,
        scopes,
        visibility,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(allow_untagged: bool) -> JwtSettings {
        JwtSettings {
            issuer: "https://idp.example".into(),
            audience: "https://cost.example/mcp".into(),
            jwks_url: Some("http://127.0.0.1:9/jwks".into()),
            jwks_ttl: Duration::from_secs(600),
            min_refetch: Duration::from_secs(30),
            visibility_claim: Some("team".into()),
            visibility_tag_key: Some("team".into()),
            visibility_allow_untagged: allow_untagged,
        }
    }

    #[test]
    fn claims_give_scopes_and_visibility_and_never_fail_open() {
        let s = settings(false);
        let good = serde_json::json!({"sub": "alice", "scope": "cost.read openid", "team": ["ml", "search"]});
        let c = caller_from_claims(&s, &good);
        assert_eq!(c.name, "alice");
        assert_eq!(c.scopes, vec!["cost.read", "openid"]);
        let v = c.visibility.unwrap();
        assert!(v.allows_tag("team", "ml") && v.allows_tag("team", "search"));
        assert!(!v.allows_tag("team", "web"));
        // Missing, empty, blank, mistyped: nothing is granted, and the reason is kept.
        for (claim, why) in [
            (serde_json::json!(null), "has no `team` claim"),
            (serde_json::json!([]), "grants nothing"),
            (serde_json::json!(""), "allow_untagged"),
            (serde_json::json!(["", " "]), "allow_untagged"),
            (serde_json::json!(7), "not a string"),
            (serde_json::json!({"a": 1}), "not a string"),
            (serde_json::json!(["ml", 3]), "other than strings"),
        ] {
            let mut c = good.clone();
            if claim.is_null() {
                c.as_object_mut().unwrap().remove("team");
            } else {
                c["team"] = claim.clone();
            }
            let v = caller_from_claims(&s, &c).visibility.unwrap();
            let got = v
                .grants_nothing()
                .unwrap_or_else(|| panic!("{claim} granted {v:?}"));
            assert!(got.contains(why), "{claim}: {got}");
        }
        // A blank value is untagged spend, with the opt-in only.
        let mut c = good.clone();
        c["team"] = serde_json::json!("");
        let v = caller_from_claims(&settings(true), &c).visibility.unwrap();
        assert!(v.allows(None, None) && !v.allows_tag("team", "ml"));
    }

    #[test]
    fn symmetric_and_encryption_keys_are_never_used() {
        let oct: Jwk =
            serde_json::from_value(serde_json::json!({"kty": "oct", "k": "c2VjcmV0", "kid": "h"}))
                .unwrap();
        assert!(usable(&oct).is_none());
        let ec = serde_json::json!({"kty": "EC", "crv": "P-256", "kid": "e", "use": "enc",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        assert!(usable(&serde_json::from_value(ec.clone()).unwrap()).is_none());
        let mut sig = ec;
        sig["use"] = "sig".into();
        let k = usable(&serde_json::from_value(sig.clone()).unwrap()).unwrap();
        assert_eq!(k.algs, vec![Algorithm::ES256]);
        // A key that names another algorithm than its type allows is skipped.
        sig["alg"] = "RS256".into();
        assert!(usable(&serde_json::from_value(sig).unwrap()).is_none());
    }
}
