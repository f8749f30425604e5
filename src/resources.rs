//! MCP resources: the effective configuration and the required-tags policy,
//! as JSON. Built from an explicit list of fields, so nothing secret (tokens,
//! credentials, environment) can appear: AWS credentials are never held by
//! the configuration at all, and URLs lose any `user:password@` part.

use rmcp::model::Resource;
use serde_json::{Value, json};

use crate::usecases::context::Ctx;

pub const CONFIG_URI: &str = "bedrock-cost://config";
pub const REQUIRED_TAGS_URI: &str = "bedrock-cost://policy/required-tags";

/// The resources, in a fixed order.
pub fn list() -> Vec<Resource> {
    vec![
        Resource::new(CONFIG_URI, "config")
            .with_title("Effective configuration")
            .with_description(
                "Sources, default tag key, Cost Explorer cap and cache times, budgets and ledger settings, as this server runs (no secrets).",
            )
            .with_mime_type("application/json"),
        Resource::new(REQUIRED_TAGS_URI, "required-tags-policy")
            .with_title("Required principal tags")
            .with_description(
                "The iamPrincipal tag keys every IAM user and role must carry, where they come from, and an IAM policy / SCP that enforces them.",
            )
            .with_mime_type("application/json"),
    ]
}

/// `s3://user:secret@bucket/x` -> `s3://bucket/x`.
fn redact_userinfo(raw: &str) -> String {
    match raw.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://{host}{path}"),
                None => raw.to_string(),
            }
        }
        None => raw.to_string(),
    }
}

fn path(p: &Option<std::path::PathBuf>) -> Value {
    p.as_ref()
        .map(|p| json!(p.display().to_string()))
        .unwrap_or(Value::Null)
}

impl Ctx {
    /// The effective configuration (no secrets).
    pub fn effective_config(&self) -> Value {
        let c = &self.config;
        let default_source = if self.cur.is_some() {
            "cur"
        } else if self.sources.athena.is_some() {
            "athena"
        } else {
            "cost_explorer"
        };
        let cur = match (&c.cur, c.demo) {
            (Some(raw), _) => json!(redact_userinfo(raw)),
            (None, true) => json!("bundled demo export"),
            (None, false) => Value::Null,
        };
        let athena = match (&c.athena_database, &c.athena_table) {
            (Some(db), Some(table)) => json!({
                "catalog": c.athena_catalog,
                "database": db,
                "table": table,
                "workgroup": c.athena_workgroup,
                "output": c.athena_output.as_deref().map(redact_userinfo),
                "partition_column": c.athena_partition_column,
                "timeout_secs": c.athena_timeout_secs,
            }),
            _ => Value::Null,
        };
        json!({
            "server": {"name": env!("CARGO_PKG_NAME"), "version": env!("CARGO_PKG_VERSION")},
            "mode": if c.demo { "demo" } else { "aws" },
            "aws": {
                "region": self.config_region(),
                "credentials": if c.demo {
                    "none (demo data)"
                } else {
                    "the standard AWS chain (profile, SSO, environment, instance role); never shown"
                },
            },
            "default_tag_key": c.default_tag_key,
            "sources": {
                "default": default_source,
                "cost_explorer": true,
                "cur": cur,
                "athena": athena,
                "cur_rollup_dir": path(&c.cur_rollups()),
                "cur_prebuild_months": c.cur_prebuild_months,
                "cur_rollup_min_mb": c.cur_rollup_min_mb,
            },
            "cost_explorer": {
                "max_paid_requests_per_hour": c.ce_max_requests_per_hour,
                "max_paid_requests_per_caller_per_hour": c.ce_max_requests_per_caller_per_hour,
                "cache_ttl_open_secs": c.cache_ttl_open_secs,
                "cache_ttl_closed_secs": c.cache_ttl_closed_secs,
            },
            "accounts": {
                "allow_profiles": c.allow_profiles,
                "allow_regions": c.allow_regions,
                "allow_role_arns": c.allow_role_arns,
                "role_session_name": c.role_session_name,
            },
            "required_tag_keys": c.required_tag_keys,
            "allow_writes": c.allow_writes,
            "iam_cache_secs": c.iam_cache_secs,
            "registry_max_results": c.registry_max_results,
            "budgets": {
                "policy_file": path(&c.budget_policy),
                "ledger": path(&c.ledger),
                "ledger_window_hours": c.ledger_window_hours,
                "price_cache_dir": path(&c.price_cache_dir),
            },
            "log": c.log,
        })
    }

    /// The required-tags policy: keys, their origin, and an enforcing policy.
    /// Without configured keys it uses the active `iamPrincipal/*` keys when
    /// they are known without a paid request, and says so otherwise.
    pub async fn required_tags_policy(&self) -> Value {
        let configured: Vec<String> = self
            .config
            .required_tag_keys
            .iter()
            .filter_map(|k| crate::domain::group::tag_key(k).map(str::to_string))
            .collect();
        let (keys, source, note) = if !configured.is_empty() {
            (
                Some(configured),
                "config",
                "Set with --required-tag-keys (BEDROCK_COST_MCP_REQUIRED_TAG_KEYS).".to_string(),
            )
        } else {
            let listing = self.sources.allocation.principal_tags_if_free().await;
            match listing {
                Some(l) => (
                    Some(
                        l.tags
                            .iter()
                            .filter(|t| t.status == "Active")
                            .map(|t| t.key.trim_start_matches("iamPrincipal/").to_string())
                            .collect(),
                    ),
                    "active_cost_allocation_tags",
                    "No keys are configured, so the active iamPrincipal/* cost-allocation tag keys are required.".to_string(),
                ),
                None => (
                    None,
                    "active_cost_allocation_tags",
                    "No keys are configured, so the active iamPrincipal/* cost-allocation tag keys are required; they are not known yet without a paid Cost Explorer request: call cost_allocation_tags (or untagged_principals) to resolve them.".to_string(),
                ),
            }
        };
        json!({
            "required_keys": keys,
            "source": source,
            "tag_prefix": "iamPrincipal/",
            "note": note,
            "check_with": "untagged_principals",
            "prevention_policy": keys
                .as_deref()
                .filter(|k| !k.is_empty())
                .map(crate::domain::prevention::prevention_policy),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::redact_userinfo;

    #[test]
    fn urls_lose_their_userinfo() {
        assert_eq!(
            redact_userinfo("s3://AKIA:secret@bucket/cur"),
            "s3://bucket/cur"
        );
        assert_eq!(redact_userinfo("s3://bucket/cur"), "s3://bucket/cur");
        assert_eq!(redact_userinfo("./local"), "./local");
    }
}
