//! AWS Agent Registry (the `agent-registry` namespace): registries from the
//! control plane, discovery (search, browse, batch get) from the data plane.
//! Records are returned with their descriptors as raw JSON strings; the tool
//! layer summarises them.

use aws_smithy_types::{Document, Number};

use crate::error::{ToolError, from_sdk};

/// A registry as the control plane lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct RegistryInfo {
    pub id: String,
    pub arn: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// READY, CREATING, ...
    pub status: String,
    /// AWS_IAM or CUSTOM_JWT.
    pub authorizer: String,
}

/// A record's descriptors, raw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawDescriptors {
    pub mcp_server: Option<String>,
    pub mcp_tools: Option<String>,
    pub a2a_card: Option<String>,
    pub skill_definition: Option<String>,
    pub skill_md: Option<String>,
    pub custom: Option<String>,
}

/// A discoverable record.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRecord {
    pub registry_arn: String,
    pub record_id: String,
    pub record_arn: String,
    pub name: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    /// AGENT, MCP, SKILL, CUSTOM, ...
    pub record_type: String,
    pub version: String,
    pub status: String,
    pub updated_at: String,
    pub descriptors: RawDescriptors,
    pub custom_metadata: Option<serde_json::Value>,
}

/// A record that a batch get could not return.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct RecordError {
    pub registry_id: String,
    pub record_id: String,
    pub code: String,
    pub message: String,
}

#[async_trait::async_trait]
pub trait AgentRegistry: Send + Sync {
    async fn registries(&self) -> Result<Vec<RegistryInfo>, ToolError>;
    async fn search(
        &self,
        registry_id: &str,
        query: &str,
        filters: Option<serde_json::Value>,
        max_results: i32,
    ) -> Result<Vec<RawRecord>, ToolError>;
    async fn browse(
        &self,
        registry_id: &str,
        record_types: &[String],
        max_results: i32,
        next_token: Option<String>,
    ) -> Result<(Vec<RawRecord>, Option<String>), ToolError>;
    async fn get(
        &self,
        registry_id: &str,
        record_ids: &[String],
    ) -> Result<(Vec<RawRecord>, Vec<RecordError>), ToolError>;
}

pub struct AwsAgentRegistry {
    data: crate::sources::Lazy<aws_sdk_agentregistry::Client>,
    control: crate::sources::Lazy<aws_sdk_agentregistrycontrol::Client>,
}

impl AwsAgentRegistry {
    pub fn new(sdk: crate::sources::Lazy<aws_config::SdkConfig>) -> Self {
        let (a, b) = (sdk.clone(), sdk);
        AwsAgentRegistry {
            data: crate::sources::lazy(move || aws_sdk_agentregistry::Client::new(&a)),
            control: crate::sources::lazy(move || crate::sources::clients::registry_control(&b)),
        }
    }
}

/// JSON to a Smithy document (search filters).
pub fn to_document(v: &serde_json::Value) -> Document {
    match v {
        serde_json::Value::Null => Document::Null,
        serde_json::Value::Bool(b) => Document::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Document::Number(Number::PosInt(u)),
            (_, Some(i)) => Document::Number(Number::NegInt(i)),
            _ => Document::Number(Number::Float(n.as_f64().unwrap_or(0.0))),
        },
        serde_json::Value::String(s) => Document::String(s.clone()),
        serde_json::Value::Array(a) => Document::Array(a.iter().map(to_document).collect()),
        serde_json::Value::Object(o) => {
            Document::Object(o.iter().map(|(k, v)| (k.clone(), to_document(v))).collect())
        }
    }
}

/// A Smithy document to JSON (custom metadata).
pub fn from_document(d: &Document) -> serde_json::Value {
    match d {
        Document::Null => serde_json::Value::Null,
        Document::Bool(b) => serde_json::Value::Bool(*b),
        Document::Number(Number::PosInt(u)) => serde_json::json!(u),
        Document::Number(Number::NegInt(i)) => serde_json::json!(i),
        Document::Number(Number::Float(f)) => serde_json::json!(f),
        Document::String(s) => serde_json::Value::String(s.clone()),
        Document::Array(a) => serde_json::Value::Array(a.iter().map(from_document).collect()),
        Document::Object(o) => serde_json::Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), from_document(v)))
                .collect(),
        ),
    }
}

fn descriptors(d: Option<&aws_sdk_agentregistry::types::Descriptors>) -> RawDescriptors {
    let Some(d) = d else {
        return RawDescriptors::default();
    };
    RawDescriptors {
        mcp_server: d.mcp_server().and_then(|m| m.data()).map(str::to_string),
        mcp_tools: d
            .mcp_server()
            .and_then(|m| m.additional_data())
            .and_then(|a| a.tools())
            .and_then(|t| t.data())
            .map(str::to_string),
        a2a_card: d
            .a2a_agent_card()
            .and_then(|a| a.data())
            .map(str::to_string),
        skill_definition: d
            .agent_skills_definition()
            .and_then(|s| s.data())
            .map(str::to_string),
        skill_md: d
            .agent_skills_definition()
            .and_then(|s| s.additional_data())
            .and_then(|a| a.skill_md())
            .and_then(|m| m.data())
            .map(str::to_string),
        custom: d.custom().and_then(|c| c.data()).map(str::to_string),
    }
}

/// A `RawRecord` from either summary shape (search/batch get, or browse):
/// they share these accessors but are different SDK types.
macro_rules! raw_record {
    ($r:expr, $descriptors:expr, $metadata:expr) => {
        RawRecord {
            registry_arn: $r.registry_arn().to_string(),
            record_id: $r.record_id().to_string(),
            record_arn: $r.record_arn().to_string(),
            name: $r.name().to_string(),
            display_name: $r.display_name().map(str::to_string),
            description: $r.description().map(str::to_string),
            record_type: $r.record_type().as_str().to_string(),
            version: $r.record_version().to_string(),
            status: $r.status().as_str().to_string(),
            updated_at: $r.updated_at().to_string(),
            descriptors: $descriptors,
            custom_metadata: $metadata,
        }
    };
}

fn record(r: &aws_sdk_agentregistry::types::RegistryRecordSummary) -> RawRecord {
    raw_record!(
        r,
        descriptors(r.descriptors()),
        r.custom_metadata().map(from_document)
    )
}

fn registry_error(e: ToolError, registry_id: &str) -> ToolError {
    match e {
        ToolError::Upstream { code, message, .. } if code == "UnauthorizedException" => {
            ToolError::Unsupported(format!(
                "registry {registry_id} uses CUSTOM_JWT authorization, which SigV4 (AWS credentials) cannot query: {message}. Query it with its JWT bearer token, or ask its owner for an AWS_IAM registry"
            ))
        }
        ToolError::Upstream { code, message, .. } if code == "ResourceNotFoundException" => {
            ToolError::invalid(format!(
                "no registry '{registry_id}' ({message}); list_registries shows the ones you can read"
            ))
        }
        other => other,
    }
}

#[async_trait::async_trait]
impl AgentRegistry for AwsAgentRegistry {
    async fn registries(&self) -> Result<Vec<RegistryInfo>, ToolError> {
        let mut out = Vec::new();
        let mut pages = self
            .control
            .list_registries()
            .max_results(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| from_sdk("Agent Registry", "agent-registry:ListRegistries", &e))?;
            for r in page.registries() {
                out.push(RegistryInfo {
                    id: r.registry_id().to_string(),
                    arn: r.registry_arn().to_string(),
                    name: r.name().to_string(),
                    description: r.description().map(str::to_string),
                    status: r.status().as_str().to_string(),
                    authorizer: r
                        .discovery_configuration()
                        .and_then(|d| d.authorizer_type())
                        .map(|a| a.as_str().to_string())
                        .unwrap_or_else(|| "AWS_IAM".into()),
                });
            }
        }
        Ok(out)
    }

    async fn search(
        &self,
        registry_id: &str,
        query: &str,
        filters: Option<serde_json::Value>,
        max_results: i32,
    ) -> Result<Vec<RawRecord>, ToolError> {
        let out = self
            .data
            .search_discoverable_registry_records()
            .search_query(query)
            .registry_ids(registry_id)
            .max_results(max_results)
            .set_filters(filters.as_ref().map(to_document))
            .send()
            .await
            .map_err(|e| {
                registry_error(
                    from_sdk(
                        "Agent Registry",
                        "agent-registry:SearchDiscoverableRegistryRecords",
                        &e,
                    ),
                    registry_id,
                )
            })?;
        Ok(out.registry_records().iter().map(record).collect())
    }

    async fn browse(
        &self,
        registry_id: &str,
        record_types: &[String],
        max_results: i32,
        next_token: Option<String>,
    ) -> Result<(Vec<RawRecord>, Option<String>), ToolError> {
        use aws_sdk_agentregistry::types::{RegistryRecordFilter, RegistryRecordFilterName};
        let mut call = self
            .data
            .list_discoverable_registry_records()
            .registry_id(registry_id)
            .max_results(max_results)
            .set_next_token(next_token);
        if !record_types.is_empty() {
            let f = RegistryRecordFilter::builder()
                .name(RegistryRecordFilterName::RecordType)
                .set_values(Some(record_types.to_vec()))
                .build()
                .map_err(|e| ToolError::invalid(e.to_string()))?;
            call = call.filters(f);
        }
        let out = call.send().await.map_err(|e| {
            registry_error(
                from_sdk(
                    "Agent Registry",
                    "agent-registry:ListDiscoverableRegistryRecords",
                    &e,
                ),
                registry_id,
            )
        })?;
        let records = out
            .registry_records()
            .iter()
            .map(|r| raw_record!(r, RawDescriptors::default(), None))
            .collect();
        Ok((
            records,
            out.next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_string),
        ))
    }

    async fn get(
        &self,
        registry_id: &str,
        record_ids: &[String],
    ) -> Result<(Vec<RawRecord>, Vec<RecordError>), ToolError> {
        use aws_sdk_agentregistry::types::RegistryRecordsEntry;
        let entry = RegistryRecordsEntry::builder()
            .registry_id(registry_id)
            .set_record_ids(Some(record_ids.to_vec()))
            .build()
            .map_err(|e| ToolError::invalid(e.to_string()))?;
        let out = self
            .data
            .batch_get_discoverable_registry_record()
            .entries(entry)
            .send()
            .await
            .map_err(|e| {
                registry_error(
                    from_sdk(
                        "Agent Registry",
                        "agent-registry:GetDiscoverableRegistryRecord",
                        &e,
                    ),
                    registry_id,
                )
            })?;
        let errors = out
            .errors()
            .iter()
            .map(|e| RecordError {
                registry_id: e.registry_id().to_string(),
                record_id: e.record_id().to_string(),
                code: e.error_code().as_str().to_string(),
                message: e.message().unwrap_or_default().to_string(),
            })
            .collect();
        Ok((out.registry_records().iter().map(record).collect(), errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_round_trip() {
        let v = serde_json::json!({"$and": [{"recordType": {"$eq": "MCP"}}, {"customMetadata.requiresApproval": {"$eq": true}}], "n": -3, "f": 1.5});
        assert_eq!(from_document(&to_document(&v)), v);
    }
}
