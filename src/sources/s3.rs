//! S3 access for the embedded engine (object_store), with credentials from
//! the standard AWS chain (profiles, SSO, env, instance roles) rather than
//! object_store's own, and the standard endpoint variables
//! (`AWS_ENDPOINT_URL_S3`, then `AWS_ENDPOINT_URL`).

use std::sync::Arc;

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use object_store::aws::{AmazonS3Builder, AwsCredential};
use object_store::{CredentialProvider, ObjectStore};

/// Bridges the AWS SDK credential chain to object_store.
#[derive(Debug)]
struct SdkCredentials(SharedCredentialsProvider);

#[async_trait::async_trait]
impl CredentialProvider for SdkCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let c = self
            .0
            .provide_credentials()
            .await
            .map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: format!(
                    "no AWS credentials for S3: {}",
                    crate::error::chain_text(&e)
                )
                .into(),
            })?;
        Ok(Arc::new(AwsCredential {
            key_id: c.access_key_id().to_string(),
            secret_key: c.secret_access_key().to_string(),
            token: c.session_token().map(str::to_string),
        }))
    }
}

/// An object store for `bucket` configured from the SDK configuration.
pub fn store(sdk: &aws_config::SdkConfig, bucket: &str) -> Result<Arc<dyn ObjectStore>, String> {
    let mut b = AmazonS3Builder::new().with_bucket_name(bucket).with_region(
        sdk.region()
            .map(std::string::ToString::to_string)
            .unwrap_or_else(|| "us-east-1".into()),
    );
    if let Some(p) = sdk.credentials_provider() {
        b = b.with_credentials(Arc::new(SdkCredentials(p)));
    }
    let endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
        .ok()
        .or_else(|| sdk.endpoint_url().map(str::to_string));
    if let Some(e) = endpoint {
        b = b
            .with_allow_http(e.starts_with("http://"))
            .with_endpoint(e)
            .with_virtual_hosted_style_request(false);
    }
    b.build()
        .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        .map_err(|e| format!("cannot configure S3 for bucket {bucket}: {e}"))
}
