//! The AWS SDK's default HTTPS client, without its eager TLS set-up.
//!
//! Constructing any SDK client (`Client::from_conf`, and the STS client `aws_config` builds for
//! web-identity credentials) runs the HTTP client's `validate_base_client_config`, which for the
//! default hyper client builds a TLS connector and so reads and parses every certificate under
//! `/etc/ssl/certs`: ~5 ms and a few MB of touched code at start, before any tool is called. This
//! wrapper builds the same client (hyper 1.x, rustls with aws-lc, proxy settings from the
//! environment, as `aws-smithy-runtime` does for `BehaviorVersion::latest()`) but skips that
//! validation, so the connector, and the certificates, are loaded on the first AWS request.

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::shared::IntoShared;

/// The default HTTPS client, building its TLS connector on first use.
#[derive(Debug)]
struct Deferred(SharedHttpClient);

impl HttpClient for Deferred {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    // `validate_base_client_config` keeps its default (no check): the inner client's version
    // would build a connector now. Its final-config check only concerns sleep and time sources,
    // which `aws_config` always provides.

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// The HTTP client every SDK client of this process uses.
pub fn deferred_https_client() -> SharedHttpClient {
    let inner = Builder::new().build_with_connector_fn(|settings, components| {
        let mut conn =
            ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
        conn.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            conn.set_sleep_impl(components.sleep_impl());
        }
        conn.set_proxy_config(Some(ProxyConfig::from_env()));
        conn.build()
    });
    Deferred(inner).into_shared()
}

/// The standard AWS configuration chain (profiles, SSO, environment, `AWS_ENDPOINT_URL*`, IMDS),
/// loaded on first use. Loading builds every credential and region provider of the chain (and an
/// STS client for web identity), a few MB of code the server touches only when a tool first needs
/// AWS; `tools/list` and demo answers never do.
///
/// The load is async (region lookup may ask IMDS). On the server's multi-thread runtime it runs on
/// that runtime (`block_in_place`), so connections opened while loading stay usable; elsewhere on
/// a helper thread with its own runtime.
pub fn deferred_sdk_config() -> crate::sources::Lazy<aws_config::SdkConfig> {
    deferred(load_sdk_config)
}

/// An AWS configuration that `load` builds on first use, on the server's runtime when there is
/// one (see [`deferred_sdk_config`]).
pub fn deferred<F, Fut>(load: F) -> crate::sources::Lazy<aws_config::SdkConfig>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = aws_config::SdkConfig> + Send,
{
    crate::sources::lazy(move || match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(load()))
        }
        _ => std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map(|rt| rt.block_on(load()))
                })
                .join()
        })
        .ok()
        .and_then(Result::ok)
        .unwrap_or_else(|| {
            tracing::error!("could not start a runtime to load the AWS configuration");
            aws_config::SdkConfig::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .http_client(deferred_https_client())
                .build()
        }),
    })
}

/// The standard AWS configuration chain, loaded now (what [`deferred_sdk_config`] loads).
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(deferred_https_client())
        .timeout_config(timeouts());
    // An empty AWS_PROFILE (a client passing an unset setting) is the default profile, not
    // one named "".
    if std::env::var("AWS_PROFILE").is_ok_and(|p| p.trim().is_empty()) {
        loader = loader.profile_name("default");
    }
    loader.load().await
}

/// Every AWS operation ends: a slow or silent endpoint fails the call (and frees whatever
/// waits on it) instead of holding a request forever. Connect 5 s, one attempt 30 s, the
/// operation with its retries 60 s. Athena queries poll with their own timeout.
pub fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .operation_attempt_timeout(std::time::Duration::from_secs(30))
        .operation_timeout(std::time::Duration::from_secs(60))
        .build()
}
