//! Per-call account selection: a tool call may name an AWS `profile`, a `region` and a `role_arn`
//! to assume, each restricted to an allow-list the server was started with
//! (`--allow-profiles`, `--allow-regions`, `--allow-role-arns`). With no allow-list a call that
//! names one is refused, and the inputs are not advertised in `tools/list`.
//!
//! The account inputs are taken out of the arguments before the tool's own input is read, so
//! every AWS-backed tool gets them the same way (the `account` flag of each tool in `tools::TOOLS`). A choice resolves to an
//! `SdkConfig` through the standard chain: the profile's settings (its own `role_arn`,
//! `sso_session`, `credential_process` included), the region (GovCloud `us-gov-*` and China `cn-*`
//! regions select their partition, whose global services `sources::clients` follows), then an
//! `sts:AssumeRole` into `role_arn` from those credentials. Everything is built on first use:
//! naming an account makes no AWS call until the tool needs one.

use serde_json::{Map, Value, json};

use crate::config::Config;
use crate::domain::names::valid_role_arn;
use crate::error::ToolError;

/// An account a tool call picked. Fields it did not name come from the server's own chain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Account {
    pub profile: Option<String>,
    pub region: Option<String>,
    pub role_arn: Option<String>,
}

impl Account {
    /// Take `profile`, `region` and `role_arn` out of a tool call's arguments. None when the call
    /// names none of them (or only nulls).
    pub fn take(args: &mut Map<String, Value>) -> Result<Option<Account>, ToolError> {
        fn field(args: &mut Map<String, Value>, key: &str) -> Result<Option<String>, ToolError> {
            match args.remove(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
                Some(other) => Err(ToolError::invalid(format!(
                    "{key} must be a non-empty string (got {other}); {}",
                    match key {
                        "profile" => "name an AWS profile from the server's allow-list",
                        "region" => "name an AWS region such as us-east-1 or us-gov-west-1",
                        _ =>
                            "give an IAM role ARN such as arn:aws:iam::111122223333:role/FinOpsRead",
                    }
                ))),
            }
        }
        let account = Account {
            profile: field(args, "profile")?,
            region: field(args, "region")?,
            role_arn: field(args, "role_arn")?,
        };
        Ok((account != Account::default()).then_some(account))
    }

    /// Refuse a choice outside the allow-lists, naming the flag that would allow it.
    pub fn check(&self, config: &Config) -> Result<(), ToolError> {
        if config.demo {
            return Err(ToolError::Unsupported(
                "per-call accounts (profile, region, role_arn) need AWS mode: the demo data is one fictional account. Drop --demo and start the server with --allow-profiles, --allow-regions or --allow-role-arns".into(),
            ));
        }
        let refuse = |what: &str, value: &str, flag: &str, env: &str, allowed: &[String]| {
            let allowed = if allowed.is_empty() {
                "none are allowed".to_string()
            } else {
                format!("allowed: {}", allowed.join(", "))
            };
            Err(ToolError::Forbidden(format!(
                "{what} '{value}' is not in the server's allow-list ({allowed}); the server's operator can add it with {flag} (or {env})"
            )))
        };
        if let Some(p) = &self.profile
            && !config.allow_profiles.iter().any(|a| a == p)
        {
            return refuse(
                "profile",
                p,
                "--allow-profiles",
                "BEDROCK_COST_MCP_ALLOW_PROFILES",
                &config.allow_profiles,
            );
        }
        if let Some(r) = &self.region
            && !config.allow_regions.iter().any(|a| a == r)
        {
            return refuse(
                "region",
                r,
                "--allow-regions",
                "BEDROCK_COST_MCP_ALLOW_REGIONS",
                &config.allow_regions,
            );
        }
        if let Some(arn) = &self.role_arn {
            if !valid_role_arn(arn, false) {
                return Err(ToolError::invalid(format!(
                    "role_arn '{arn}' is not an IAM role ARN; give one such as arn:aws:iam::111122223333:role/FinOpsRead"
                )));
            }
            if !config
                .allow_role_arns
                .iter()
                .any(|a| crate::domain::principal::glob_match(a, arn))
            {
                return refuse(
                    "role_arn",
                    arn,
                    "--allow-role-arns",
                    "BEDROCK_COST_MCP_ALLOW_ROLE_ARNS",
                    &config.allow_role_arns,
                );
            }
        }
        Ok(())
    }

    /// The choice as JSON, for the answer (`account` beside the tool's own fields).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in [
            ("profile", &self.profile),
            ("region", &self.region),
            ("role_arn", &self.role_arn),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), json!(v));
            }
        }
        Value::Object(m)
    }

    /// One line for the text answer: `account: profile prod, region us-gov-west-1`.
    pub fn label(&self) -> String {
        let parts: Vec<String> = [
            ("profile", &self.profile),
            ("region", &self.region),
            ("role", &self.role_arn),
        ]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v}")))
        .collect();
        format!("account: {}", parts.join(", "))
    }
}

/// Say in an answer which account it came from: `account` in the structured content and a
/// line after the text answer.
pub fn annotate(r: &mut rmcp::model::CallToolResult, account: &Account) {
    if let Some(Value::Object(m)) = r.structured_content.as_mut() {
        m.insert("account".into(), account.to_json());
    }
    let at = r.content.len().min(1);
    r.content
        .insert(at, rmcp::model::ContentBlock::text(account.label()));
}

/// Add the allowed account inputs to an account tool's input schema (only those with a
/// non-empty allow-list, each as an enum where it can be). No per-property description: the
/// server instructions explain them once, instead of once per tool in `tools/list`.
pub fn advertise(schema: &mut Map<String, Value>, config: &Config) {
    let Some(Value::Object(props)) = schema.get_mut("properties") else {
        return;
    };
    if !config.allow_profiles.is_empty() {
        props.insert(
            "profile".into(),
            json!({"type": "string", "enum": config.allow_profiles}),
        );
    }
    if !config.allow_regions.is_empty() {
        props.insert(
            "region".into(),
            json!({"type": "string", "enum": config.allow_regions}),
        );
    }
    if !config.allow_role_arns.is_empty() {
        let p = if config.allow_role_arns.iter().any(|a| a.contains('*')) {
            json!({"type": "string", "description": format!("matching {}", config.allow_role_arns.join(", "))})
        } else {
            json!({"type": "string", "enum": config.allow_role_arns})
        };
        props.insert("role_arn".into(), p);
    }
}

/// The AWS configuration of a chosen account, loaded now: the standard chain with the profile
/// and region overridden, then the role assumed from those credentials.
///
/// A picked profile supplies the credentials even when the server's environment carries
/// `AWS_ACCESS_KEY_ID` (which the default chain would prefer), and its `region` unless the call
/// names one.
pub async fn load_sdk_config(account: &Account, session_name: &str) -> aws_config::SdkConfig {
    use aws_config::meta::region::ProvideRegion;
    use aws_credential_types::provider::SharedCredentialsProvider;
    let http = crate::sources::http_client::deferred_https_client();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http.clone())
        .timeout_config(crate::sources::http_client::timeouts());
    let mut region = account.region.clone().map(aws_config::Region::new);
    if let Some(p) = &account.profile {
        loader = loader.profile_name(p);
        if region.is_none() {
            region = aws_config::profile::ProfileFileRegionProvider::builder()
                .profile_name(p)
                .build()
                .region()
                .await;
        }
    }
    if let Some(r) = region {
        loader = loader.region(r);
    }
    let mut config = loader.load().await;
    if let Some(p) = &account.profile {
        let provider_config = aws_config::provider_config::ProviderConfig::default()
            .with_http_client(http)
            .with_region(config.region().cloned());
        let profile = aws_config::profile::ProfileFileCredentialsProvider::builder()
            .profile_name(p)
            .configure(&provider_config)
            .build();
        config = config
            .into_builder()
            .credentials_provider(SharedCredentialsProvider::new(profile))
            .build();
    }
    let Some(role) = &account.role_arn else {
        return config;
    };
    let provider = aws_config::sts::AssumeRoleProvider::builder(role.clone())
        .session_name(session_name)
        .configure(&config)
        .build()
        .await;
    config
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .build()
}

/// [`load_sdk_config`] on first use (see `http_client::deferred_sdk_config`).
pub fn deferred_sdk_config(
    account: Account,
    session_name: String,
) -> crate::sources::Lazy<aws_config::SdkConfig> {
    crate::sources::http_client::deferred(move || async move {
        load_sdk_config(&account, &session_name).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Config {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            config: Config,
        }
        let mut argv = vec!["x"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect("flags").config
    }

    fn take(v: Value) -> Result<Option<Account>, ToolError> {
        let Value::Object(mut m) = v else { panic!() };
        let r = Account::take(&mut m);
        assert!(
            !m.contains_key("profile") && !m.contains_key("region") && !m.contains_key("role_arn")
        );
        r
    }

    #[test]
    fn take_reads_and_removes_the_account_inputs() {
        assert_eq!(take(json!({"period": "last_month"})).unwrap(), None);
        assert_eq!(take(json!({"profile": null})).unwrap(), None);
        assert_eq!(
            take(json!({"profile": " prod ", "region": "us-gov-west-1"})).unwrap(),
            Some(Account {
                profile: Some("prod".into()),
                region: Some("us-gov-west-1".into()),
                role_arn: None
            })
        );
        let e = take(json!({"region": 5})).unwrap_err().to_string();
        assert!(e.contains("region must be a non-empty string"), "{e}");
        assert!(take(json!({"profile": ""})).is_err());
    }

    #[test]
    fn allow_lists_decide_and_the_refusal_names_the_flag() {
        let c = config(&[
            "--allow-profiles",
            "prod,dev",
            "--allow-regions",
            "us-east-1,cn-northwest-1",
            "--allow-role-arns",
            "arn:*:iam::*:role/FinOpsRead",
        ]);
        let ok = Account {
            profile: Some("dev".into()),
            region: Some("cn-northwest-1".into()),
            role_arn: Some("arn:aws-cn:iam::111122223333:role/FinOpsRead".into()),
        };
        assert!(ok.check(&c).is_ok());
        let e = Account {
            profile: Some("staging".into()),
            ..Default::default()
        }
        .check(&c)
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("'staging'") && e.contains("--allow-profiles") && e.contains("prod, dev"),
            "{e}"
        );
        let e = Account {
            role_arn: Some("arn:aws:iam::111122223333:role/Admin".into()),
            ..Default::default()
        }
        .check(&c)
        .unwrap_err()
        .to_string();
        assert!(e.contains("--allow-role-arns"), "{e}");
        let e = Account {
            role_arn: Some("arn:aws:iam::111122223333:user/bob".into()),
            ..Default::default()
        }
        .check(&c)
        .unwrap_err()
        .to_string();
        assert!(e.contains("not an IAM role ARN"), "{e}");
        // No allow-list: refused, saying none are allowed.
        let e = Account {
            region: Some("us-east-1".into()),
            ..Default::default()
        }
        .check(&config(&[]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("none are allowed"), "{e}");
        // Demo mode: one fictional account.
        let e = ok.check(&config(&["--demo"])).unwrap_err().to_string();
        assert!(e.contains("AWS mode"), "{e}");
    }

    #[test]
    fn startup_rejects_malformed_allow_lists() {
        for bad in [
            &["--allow-regions", "us-east"][..],
            &["--allow-regions", "US-EAST-1"],
            &["--allow-role-arns", "arn:aws:iam::1234:role/x"],
            &["--allow-role-arns", "FinOpsRead"],
            &["--allow-profiles", "a b"],
            &["--role-session-name", "has space"],
        ] {
            assert!(
                crate::config::validate_allow_lists(&config(bad)).is_err(),
                "{bad:?}"
            );
        }
        assert!(
            crate::config::validate_allow_lists(&config(&[
                "--allow-regions",
                "us-gov-west-1,eusc-de-east-1",
                "--allow-role-arns",
                "arn:aws-us-gov:iam::111122223333:role/path/Read*"
            ]))
            .is_ok()
        );
    }

    #[test]
    fn advertised_only_when_allowed() {
        let mut schema = json!({"type": "object", "properties": {"period": {}}});
        let Value::Object(s) = &mut schema else {
            panic!()
        };
        advertise(s, &config(&[]));
        assert_eq!(s["properties"].as_object().unwrap().len(), 1);
        advertise(
            s,
            &config(&[
                "--allow-regions",
                "us-gov-west-1",
                "--allow-role-arns",
                "arn:aws:iam::111122223333:role/R",
            ]),
        );
        assert_eq!(s["properties"]["region"]["enum"], json!(["us-gov-west-1"]));
        assert_eq!(
            s["properties"]["role_arn"]["enum"],
            json!(["arn:aws:iam::111122223333:role/R"])
        );
        assert!(s["properties"].get("profile").is_none());
    }
}
