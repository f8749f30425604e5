//! OAuth 2.1 resource server: JWT access tokens checked against the authorization server's JWKS.
//!
//! Checks, in order: compact JWS form; `alg` in RS256/RS384/RS512/ES256/ES384/EdDSA (never `none`,
//! never HMAC: we hold no shared secret); a key with the token's `kid` (or the only key) whose type
//! fits `alg`; the signature; `iss` equals the configured issuer; `aud` (string or list) contains
//! our resource URI; `exp` in the future and `nbf` not in the future (60 s leeway). Scopes come
//! from `scope` (space separated) or `scp` (list or string).
//!
//! Keys are fetched from `jwks_url` (or the issuer's RFC 8414 / OpenID metadata), kept for
//! `jwks_ttl`, and fetched again early when a token names an unknown `kid` (at most every 30 s),
//! so the issuer can rotate keys without a restart.

use std::time::{Duration, Instant};

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::Value;

use super::{AuthError, Caller, Visibility};

const LEEWAY_S: i64 = 60;
const MIN_REFETCH: Duration = Duration::from_secs(30);

/// Settings for JWT validation.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub issuer: String,
    pub audience: String,
    pub jwks_url: Option<String>,
    pub jwks_ttl: Duration,
    /// Claim whose value(s) are the `iamPrincipal/<visibility_tag_key>` values the caller may see.
    pub visibility_claim: Option<String>,
    pub visibility_tag_key: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

#[derive(Default)]
struct KeyCache {
    keys: Vec<Jwk>,
    fetched: Option<Instant>,
}

/// Verifies access tokens; cheap to share.
pub struct JwtVerifier {
    settings: JwtSettings,
    http: jwks_http::Client,
    cache: tokio::sync::Mutex<KeyCache>,
}

impl JwtVerifier {
    pub fn new(settings: JwtSettings) -> Result<JwtVerifier, String> {
        if !(settings.issuer.starts_with("https://") || settings.issuer.starts_with("http://")) {
            return Err(format!(
                "--jwt-issuer {}: give the authorization server's issuer URL",
                settings.issuer
            ));
        }
        let http = jwks_http::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build the JWKS HTTP client: {e}"))?;
        Ok(JwtVerifier {
            settings,
            http,
            cache: tokio::sync::Mutex::new(KeyCache::default()),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    /// Check a token and say who it belongs to.
    pub async fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let parts: Vec<&str> = token.split('.').collect();
        let [h, p, s] = parts.as_slice() else {
            return Err(AuthError::Invalid("not a JWT".into()));
        };
        let header: Value = serde_json::from_slice(&b64url(h)?)
            .map_err(|_| AuthError::Invalid("malformed JWT header".into()))?;
        let alg = header["alg"].as_str().unwrap_or("");
        let kid = header["kid"].as_str();
        if !matches!(
            alg,
            "RS256" | "RS384" | "RS512" | "ES256" | "ES384" | "EdDSA"
        ) {
            return Err(AuthError::Invalid(format!("unsupported alg '{alg}'")));
        }
        let sig = b64url(s)?;
        let signed = &token.as_bytes()[..h.len() + 1 + p.len()];
        let key = self.key_for(kid, alg).await?;
        verify_sig(&key, alg, signed, &sig)?;
        let claims: Value = serde_json::from_slice(&b64url(p)?)
            .map_err(|_| AuthError::Invalid("malformed JWT claims".into()))?;
        self.check_claims(&claims, chrono::Utc::now().timestamp())
    }

    fn check_claims(&self, c: &Value, now: i64) -> Result<Caller, AuthError> {
        if c["iss"].as_str() != Some(self.settings.issuer.as_str()) {
            return Err(AuthError::Invalid("wrong issuer".into()));
        }
        let aud_ok = match &c["aud"] {
            Value::String(a) => a == &self.settings.audience,
            Value::Array(v) => v
                .iter()
                .any(|a| a.as_str() == Some(&self.settings.audience)),
            _ => false,
        };
        if !aud_ok {
            return Err(AuthError::Invalid(format!(
                "audience is not this server ({})",
                self.settings.audience
            )));
        }
        match c["exp"].as_i64() {
            Some(exp) if exp + LEEWAY_S < now => return Err(AuthError::Expired),
            Some(_) => {}
            None => return Err(AuthError::Invalid("no exp claim".into())),
        }
        if let Some(nbf) = c["nbf"].as_i64()
            && nbf - LEEWAY_S > now
        {
            return Err(AuthError::Invalid("token not valid yet (nbf)".into()));
        }
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
            .to_string();
        let visibility = match (
            &self.settings.visibility_claim,
            &self.settings.visibility_tag_key,
        ) {
            (Some(claim), Some(key)) => Some(Visibility {
                tag_key: Some(key.clone()),
                tag_values: match &c[claim.as_str()] {
                    Value::String(s) => vec![s.clone()],
                    Value::Array(v) => v
                        .iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect(),
                    _ => vec![],
                },
                principals: vec![],
            }),
            _ => None,
        };
        Ok(Caller {
            name,
            scopes,
            visibility,
        })
    }

    async fn key_for(&self, kid: Option<&str>, alg: &str) -> Result<Jwk, AuthError> {
        let mut cache = self.cache.lock().await;
        let stale = cache
            .fetched
            .is_none_or(|t| t.elapsed() > self.settings.jwks_ttl);
        if stale {
            self.refresh(&mut cache).await?;
        }
        if let Some(k) = pick(&cache.keys, kid, alg) {
            return Ok(k);
        }
        // Unknown kid: the issuer may have rotated its keys.
        if cache.fetched.is_none_or(|t| t.elapsed() > MIN_REFETCH) {
            self.refresh(&mut cache).await?;
            if let Some(k) = pick(&cache.keys, kid, alg) {
                return Ok(k);
            }
        }
        Err(AuthError::Invalid(format!(
            "no signing key {} for {alg}",
            kid.map(|k| format!("'{k}'")).unwrap_or_default()
        )))
    }

    async fn refresh(&self, cache: &mut KeyCache) -> Result<(), AuthError> {
        let url = match &self.settings.jwks_url {
            Some(u) => u.clone(),
            None => self.discover().await?,
        };
        let doc = self.get_json(&url).await?;
        let keys: Vec<Jwk> = serde_json::from_value(doc["keys"].clone())
            .map_err(|e| AuthError::KeysUnavailable(format!("{url}: no usable keys: {e}")))?;
        tracing::info!(url = %url, keys = keys.len(), "fetched JWKS");
        cache.keys = keys;
        cache.fetched = Some(Instant::now());
        Ok(())
    }

    async fn discover(&self) -> Result<String, AuthError> {
        let base = self.settings.issuer.trim_end_matches('/');
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
        Err(AuthError::KeysUnavailable(format!(
            "{base} publishes no jwks_uri; pass --jwt-jwks-url"
        )))
    }

    async fn get_json(&self, url: &str) -> Result<Value, AuthError> {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| AuthError::KeysUnavailable(format!("{url}: {e}")))?;
        if !resp.status().is_success() {
            return Err(AuthError::KeysUnavailable(format!(
                "{url}: HTTP {}",
                resp.status()
            )));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| AuthError::KeysUnavailable(format!("{url}: {e}")))?;
        serde_json::from_slice(&body)
            .map_err(|e| AuthError::KeysUnavailable(format!("{url}: not JSON: {e}")))
    }
}

fn pick(keys: &[Jwk], kid: Option<&str>, alg: &str) -> Option<Jwk> {
    let fits = |k: &&Jwk| {
        let kty_ok = match alg {
            "RS256" | "RS384" | "RS512" => k.kty == "RSA",
            "ES256" => k.kty == "EC" && k.crv.as_deref() == Some("P-256"),
            "ES384" => k.kty == "EC" && k.crv.as_deref() == Some("P-384"),
            "EdDSA" => k.kty == "OKP" && k.crv.as_deref() == Some("Ed25519"),
            _ => false,
        };
        kty_ok
            && k.alg.as_deref().is_none_or(|a| a == alg)
            && k.use_.as_deref().is_none_or(|u| u == "sig")
    };
    let mut candidates = keys.iter().filter(fits);
    match kid {
        Some(kid) => candidates.find(|k| k.kid.as_deref() == Some(kid)).cloned(),
        None => {
            let first = candidates.next()?;
            // Without a kid, only an unambiguous key will do.
            candidates.next().is_none().then(|| first.clone())
        }
    }
}

fn verify_sig(key: &Jwk, alg: &str, msg: &[u8], sig: &[u8]) -> Result<(), AuthError> {
    let bad = || AuthError::Invalid("bad signature".into());
    let field = |v: &Option<String>| -> Result<Vec<u8>, AuthError> {
        b64url(
            v.as_deref()
                .ok_or_else(|| AuthError::Invalid("incomplete JWK".into()))?,
        )
    };
    match alg {
        "RS256" | "RS384" | "RS512" => {
            let params = match alg {
                "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                _ => &signature::RSA_PKCS1_2048_8192_SHA512,
            };
            let (n, e) = (field(&key.n)?, field(&key.e)?);
            RsaPublicKeyComponents { n: &n, e: &e }
                .verify(params, msg, sig)
                .map_err(|_| bad())
        }
        "ES256" | "ES384" => {
            let params = if alg == "ES256" {
                &signature::ECDSA_P256_SHA256_FIXED
            } else {
                &signature::ECDSA_P384_SHA384_FIXED
            };
            let mut point = vec![4u8];
            point.extend(field(&key.x)?);
            point.extend(field(&key.y)?);
            UnparsedPublicKey::new(params, &point)
                .verify(msg, sig)
                .map_err(|_| bad())
        }
        "EdDSA" => UnparsedPublicKey::new(&signature::ED25519, &field(&key.x)?)
            .verify(msg, sig)
            .map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// base64url without padding (RFC 7515 §2); padding is tolerated.
pub fn b64url(s: &str) -> Result<Vec<u8>, AuthError> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return Err(AuthError::Invalid("bad base64url".into())),
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier() -> JwtVerifier {
        JwtVerifier::new(JwtSettings {
            issuer: "https://idp.example".into(),
            audience: "https://cost.example/mcp".into(),
            jwks_url: Some("http://127.0.0.1:9/jwks".into()),
            jwks_ttl: Duration::from_secs(600),
            visibility_claim: Some("team".into()),
            visibility_tag_key: Some("team".into()),
        })
        .unwrap()
    }

    #[test]
    fn base64url_decodes_with_and_without_padding() {
        assert_eq!(b64url("aGVsbG8").unwrap(), b"hello");
        assert_eq!(b64url("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(b64url("-_8").unwrap(), vec![0xfb, 0xff]);
        assert!(b64url("a+b").is_err());
    }

    #[test]
    fn claims_are_checked() {
        let v = verifier();
        let now = 1_800_000_000;
        let good = serde_json::json!({"iss": "https://idp.example", "aud": ["x", "https://cost.example/mcp"],
            "exp": now + 300, "sub": "alice", "scope": "cost.read openid", "team": ["ml", "search"]});
        let c = v.check_claims(&good, now).unwrap();
        assert_eq!(c.name, "alice");
        assert_eq!(c.scopes, vec!["cost.read", "openid"]);
        assert_eq!(c.visibility.unwrap().tag_values, vec!["ml", "search"]);
        let mut bad = good.clone();
        bad["aud"] = "https://other/mcp".into();
        assert!(matches!(
            v.check_claims(&bad, now),
            Err(AuthError::Invalid(_))
        ));
        let mut bad = good.clone();
        bad["iss"] = "https://evil".into();
        assert!(v.check_claims(&bad, now).is_err());
        let mut bad = good.clone();
        bad["exp"] = (now - 61).into();
        assert_eq!(v.check_claims(&bad, now), Err(AuthError::Expired));
        let mut bad = good;
        bad["nbf"] = (now + 120).into();
        assert!(v.check_claims(&bad, now).is_err());
    }
}
