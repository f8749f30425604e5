//! Who the server runs as (STS GetCallerIdentity), the default `who` of a
//! budget check.

use crate::error::{ToolError, from_sdk};

#[async_trait::async_trait]
pub trait Identity: Send + Sync {
    /// The caller's ARN.
    async fn caller(&self) -> Result<String, ToolError>;
}

/// STS, asked once per process (the credentials' identity does not change).
pub struct Sts {
    client: crate::sources::Lazy<aws_sdk_sts::Client>,
    arn: tokio::sync::OnceCell<String>,
}

impl Sts {
    pub fn new(client: crate::sources::Lazy<aws_sdk_sts::Client>) -> Self {
        Sts {
            client,
            arn: tokio::sync::OnceCell::new(),
        }
    }
}

#[async_trait::async_trait]
impl Identity for Sts {
    async fn caller(&self) -> Result<String, ToolError> {
        self.arn
            .get_or_try_init(|| async {
                let out = self
                    .client
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(|e| from_sdk("STS", "sts:GetCallerIdentity", &e))?;
                out.arn()
                    .map(str::to_string)
                    .ok_or_else(|| ToolError::Malformed {
                        service: "STS".into(),
                        message: "GetCallerIdentity returned no Arn".into(),
                    })
            })
            .await
            .cloned()
    }
}

/// The demo organisation's invoice agent.
pub struct DemoIdentity;

#[async_trait::async_trait]
impl Identity for DemoIdentity {
    async fn caller(&self) -> Result<String, ToolError> {
        Ok(format!(
            "arn:aws:sts::{}:assumed-role/InvoiceAgentRole/BedrockAgentCore-3f2a9c1e",
            crate::demo_data::DEMO_ACCOUNT
        ))
    }
}
