//! Grouping keys and the spend query every source answers.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use super::period::Period;

/// One dimension to group spend by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupKey {
    /// `tag:<key>`: the principal tag `iamPrincipal/<key>`.
    Tag(String),
    Service,
    UsageType,
    Region,
    /// Full principal ARN (CUR only).
    Principal,
    /// Role ARN with the session stripped; users as they are (CUR only).
    Role,
    /// Assumed-role session name (CUR only).
    Session,
    /// Model (CUR only).
    Model,
    /// input / output / cache_read / cache_write_5m / cache_write_1h / other (CUR only).
    TokenKind,
    /// How the call was served: standard, batch, flex, priority, reserved, provisioned (CUR only).
    Tier,
    /// in_region, cross_region (a geographic inference profile) or global (CUR only).
    InferenceScope,
    /// The inference profile a call went through (its id or ARN as logged; none for a direct
    /// model call). Invocation logs only: bill lines name the model, not the profile.
    InferenceProfile,
    Day,
    Month,
}

pub const GROUP_KEY_FORMS: &str = "tag:<key>, service, usage_type, region, principal, role, session, model, token_kind, tier, inference_scope, inference_profile, day, month";

impl GroupKey {
    /// Whether Cost Explorer can group by this key.
    pub fn on_cost_explorer(&self) -> bool {
        matches!(
            self,
            GroupKey::Tag(_) | GroupKey::Service | GroupKey::UsageType | GroupKey::Region
        )
    }

    /// Whether only the invocation logs (source live) can answer this key.
    pub fn only_live(&self) -> bool {
        matches!(self, GroupKey::InferenceProfile)
    }

    /// Whether a missing value means "untagged" (as opposed to "not applicable").
    pub fn is_tag(&self) -> bool {
        matches!(self, GroupKey::Tag(_))
    }

    /// Whether the key depends on who called: its value is unknown on lines without an IAM
    /// principal, which then form a bucket of their own (`no_principal`).
    pub fn depends_on_principal(&self) -> bool {
        matches!(
            self,
            GroupKey::Tag(_) | GroupKey::Principal | GroupKey::Role | GroupKey::Session
        )
    }
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Parsing strips one `iamPrincipal/`; a key that still starts with it keeps
            // its own, so the text parses back to this key.
            GroupKey::Tag(k) if k.starts_with("iamPrincipal/") => write!(f, "tag:iamPrincipal/{k}"),
            GroupKey::Tag(k) => write!(f, "tag:{k}"),
            GroupKey::Service => f.write_str("service"),
            GroupKey::UsageType => f.write_str("usage_type"),
            GroupKey::Region => f.write_str("region"),
            GroupKey::Principal => f.write_str("principal"),
            GroupKey::Role => f.write_str("role"),
            GroupKey::Session => f.write_str("session"),
            GroupKey::Model => f.write_str("model"),
            GroupKey::TokenKind => f.write_str("token_kind"),
            GroupKey::Tier => f.write_str("tier"),
            GroupKey::InferenceScope => f.write_str("inference_scope"),
            GroupKey::InferenceProfile => f.write_str("inference_profile"),
            GroupKey::Day => f.write_str("day"),
            GroupKey::Month => f.write_str("month"),
        }
    }
}

/// A principal tag key as callers write it (`team`, ` iamPrincipal/team `),
/// reduced to its bare form; `None` when it is not a valid tag key.
pub fn tag_key(raw: &str) -> Option<&str> {
    let k = raw.trim();
    // Trimmed after the prefix too: `tag:iamPrincipal/ team` is `team`, and a key reads back
    // the same from its own text (found by fuzz/fuzz_targets/tool_args.rs).
    let k = k.strip_prefix("iamPrincipal/").map(str::trim).unwrap_or(k);
    valid_tag_key(k).then_some(k)
}

/// Validate a tag key: the characters AWS allows in tag keys, 1..=128 long.
pub fn valid_tag_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 128
        && k.chars()
            .all(|c| c.is_alphanumeric() || " _.:/=+-@".contains(c))
}

impl FromStr for GroupKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if let Some(k) = t.strip_prefix("tag:") {
            let k = tag_key(k).ok_or_else(|| {
                format!("'{s}' is not a valid tag key (1-128 letters, digits, spaces and _.:/=+-@)")
            })?;
            return Ok(GroupKey::Tag(k.to_string()));
        }
        Ok(match t.to_ascii_lowercase().as_str() {
            "service" => GroupKey::Service,
            "usage_type" => GroupKey::UsageType,
            "region" => GroupKey::Region,
            "principal" => GroupKey::Principal,
            "role" => GroupKey::Role,
            "session" => GroupKey::Session,
            "model" => GroupKey::Model,
            "token_kind" => GroupKey::TokenKind,
            "tier" => GroupKey::Tier,
            "inference_scope" => GroupKey::InferenceScope,
            "inference_profile" => GroupKey::InferenceProfile,
            "day" => GroupKey::Day,
            "month" => GroupKey::Month,
            _ => {
                return Err(format!(
                    "unknown group key '{s}'; use one of {GROUP_KEY_FORMS}"
                ));
            }
        })
    }
}

/// Time buckets of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    Monthly,
    Daily,
}

/// Which cost figure to sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// `UnblendedCost` / `line_item_unblended_cost`.
    Unblended,
    /// `NetUnblendedCost` / `COALESCE(line_item_net_unblended_cost, line_item_unblended_cost)`.
    NetUnblended,
    /// `AmortizedCost` (Cost Explorer only).
    Amortized,
}

impl Metric {
    pub fn ce_name(self) -> &'static str {
        match self {
            Metric::Unblended => "UnblendedCost",
            Metric::NetUnblended => "NetUnblendedCost",
            Metric::Amortized => "AmortizedCost",
        }
    }
}

/// Restrictions on the spend counted. Tag values `""` select untagged spend.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SpendFilter {
    /// Tag key (without `iamPrincipal/`) to accepted values; `""` = untagged.
    pub tags: BTreeMap<String, Vec<String>>,
    /// Globs on the principal ARN (CUR only).
    pub principals: Vec<String>,
    /// Globs on the role ARN (CUR only).
    pub roles: Vec<String>,
    /// Models (CUR only): any spelling of a model (name, model id, inference profile), or a glob
    /// on its name.
    pub models: Vec<String>,
    /// Currencies (`line_item_currency_code`, CUR only): lines in several currencies are never
    /// added together, so a question over them names one.
    pub currencies: Vec<String>,
}

impl SpendFilter {
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
            && self.principals.is_empty()
            && self.roles.is_empty()
            && self.models.is_empty()
            && self.currencies.is_empty()
    }
}

/// The question "how much was spent, grouped how, over which period".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpendQuery {
    pub period: Period,
    pub granularity: Granularity,
    pub group_by: Vec<GroupKey>,
    pub filter: SpendFilter,
    pub metric: Metric,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys() {
        assert_eq!(
            "tag:team".parse::<GroupKey>().unwrap(),
            GroupKey::Tag("team".into())
        );
        assert_eq!(
            "tag:iamPrincipal/cost-center".parse::<GroupKey>().unwrap(),
            GroupKey::Tag("cost-center".into())
        );
        assert_eq!(" Service ".parse::<GroupKey>().unwrap(), GroupKey::Service);
        let e = "owner".parse::<GroupKey>().unwrap_err();
        assert!(e.contains("tag:<key>"), "{e}");
        assert!("tag:".parse::<GroupKey>().is_err());
        assert!("tag:a\"b".parse::<GroupKey>().is_err());
        assert_eq!(GroupKey::Tag("team".into()).to_string(), "tag:team");
        // Found by fuzzing: spaces after the prefix did not read back the same.
        let k = "tag:iamPrincipal/   team".parse::<GroupKey>().unwrap();
        assert_eq!(k, GroupKey::Tag("team".into()));
        assert_eq!(k.to_string().parse::<GroupKey>().unwrap(), k);
    }

    #[test]
    fn keys_round_trip_through_their_text() {
        // Found by fuzz/fuzz_targets/tool_args.rs: the tag key "iamPrincipal/x" (written
        // "tag:iamPrincipal/iamPrincipal/x") was shown as "tag:iamPrincipal/x", which
        // parses to the tag key "x".
        for text in [
            "tag:iamPrincipal/iamPrincipal/x",
            "tag:team",
            "tag:a b",
            "model",
            "day",
        ] {
            let k: GroupKey = text.parse().unwrap();
            assert_eq!(k.to_string().parse::<GroupKey>().unwrap(), k, "{text}");
        }
        assert_eq!(
            GroupKey::Tag("iamPrincipal/x".into()).to_string(),
            "tag:iamPrincipal/iamPrincipal/x"
        );
    }
}
