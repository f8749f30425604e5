//! MCP prompts and resources, through rmcp's client against the real binary:
//! the prompts name the exact tool calls, and the resources are the effective
//! configuration (without secrets) and the required-tags policy.

use crate::common::*;
use rmcp::model::{GetPromptRequestParams, ReadResourceRequestParams, ResourceContents};
use serde_json::{Value, json};

fn prompt_text(r: &rmcp::model::GetPromptResult) -> String {
    assert_eq!(r.messages.len(), 1);
    assert_eq!(r.messages[0].role, rmcp::model::Role::User);
    r.messages[0]
        .content
        .as_text()
        .expect("a text message")
        .text
        .clone()
}

async fn read_json(client: &Client, uri: &str) -> (Value, String) {
    let r = client
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .expect("resources/read");
    assert_eq!(r.contents.len(), 1);
    match &r.contents[0] {
        ResourceContents::TextResourceContents {
            uri: got,
            mime_type,
            text,
            ..
        } => {
            assert_eq!(got, uri);
            assert_eq!(mime_type.as_deref(), Some("application/json"));
            (serde_json::from_str(text).expect("JSON"), text.clone())
        }
        other => panic!("text contents expected, got {other:?}"),
    }
}

#[tokio::test]
async fn prompts_list_and_fill_in_the_tool_calls() {
    let client = stdio_client(None, &["--demo"], &[]).await;
    let caps = client.peer_info().unwrap().capabilities.clone();
    assert!(
        caps.prompts.is_some() && caps.resources.is_some(),
        "advertised"
    );
    let prompts = client.list_all_prompts().await.unwrap();
    let listed: Vec<(String, Vec<String>)> = prompts
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                p.arguments
                    .iter()
                    .flatten()
                    .map(|a| a.name.clone())
                    .collect(),
            )
        })
        .collect();
    let s = |v: &[&str]| {
        v.iter()
            .map(std::string::ToString::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        listed,
        vec![
            (
                "before_i_run_this_job".to_string(),
                s(&[
                    "model",
                    "input_tokens",
                    "output_tokens",
                    "calls",
                    "cost_usd",
                    "who"
                ])
            ),
            (
                "tag_hygiene_report".to_string(),
                s(&["required_keys", "period"])
            ),
            (
                "who_is_spending".to_string(),
                s(&["period", "tag_key", "top_n"])
            ),
        ]
    );

    let r = client
        .get_prompt(GetPromptRequestParams::new("who_is_spending"))
        .await
        .unwrap();
    assert_eq!(
        r.description.as_deref(),
        Some("Bedrock spend this_month by team, top principals and untagged share")
    );
    assert_eq!(
        prompt_text(&r),
        "Who is spending what on Amazon Bedrock (this_month)? Use the bedrock-cost-mcp tools in this order.\n\
1. bedrock_spend {\"group_by\":[\"tag:team\"],\"period\":\"this_month\"}: spend per team. The \"untagged\" row is spend by principals without the iamPrincipal/team tag; the untagged share is reconciliation.untagged / total. Add \"chart\": true if you can show images.\n\
2. bedrock_spend {\"group_by\":[\"principal\"],\"period\":\"this_month\",\"top_n\":10}: the top 10 principals (users, and roles with their sessions). If the source cannot group by principal, say so and go on.\n\
3. If the untagged share is above zero: untagged_principals {\"period\":\"this_month\",\"required_keys\":[\"team\"]}: the principals behind the untagged spend, each with its fix command.\n\
Then answer with: the total and currency; a table of each team with amount and share, the untagged row included; the top 10 principals with amounts; the untagged share as a percentage; and how fresh the figures are (as_of, estimated; billing lags 24-48 h)."
    );

    let job = client
        .get_prompt(
            GetPromptRequestParams::new("before_i_run_this_job").with_arguments(
                json!({"model": "Claude Sonnet 4.6", "input_tokens": "20000", "output_tokens": "4000", "calls": "50", "who": "tag:team=web"})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        )
        .await
        .unwrap();
    let t = prompt_text(&job);
    assert!(t.starts_with("Before running this job, check that it fits the budget. The job: 50 call(s) of Claude Sonnet 4.6, 20000 input and 4000 output tokens each (1000000 input and 200000 output tokens in all).\n"), "{t}");
    assert!(t.contains("\n1. estimate_cost {\"input_tokens\":1000000,\"model\":\"Claude Sonnet 4.6\",\"output_tokens\":200000}: "), "{t}");
    assert!(t.contains("\n2. check_budget {\"input_tokens\":1000000,\"model\":\"Claude Sonnet 4.6\",\"output_tokens\":200000,\"record\":false,\"who\":\"tag:team=web\"}: "), "{t}");
    assert!(t.ends_with("On allow, go ahead and say how much budget remains."));

    // The arguments the prompt names are ones the tools accept: run them.
    let check = ok(&call(
        &client,
        "check_budget",
        json!({"input_tokens": 1000000, "model": "Claude Sonnet 4.6", "output_tokens": 200000, "who": "tag:team=web"}),
    )
    .await);
    assert!(["allow", "warn", "deny"].contains(&check["verdict"].as_str().unwrap()));

    let hygiene = client
        .get_prompt(
            GetPromptRequestParams::new("tag_hygiene_report").with_arguments(
                json!({"required_keys": "team, cost-center"})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        )
        .await
        .unwrap();
    let t = prompt_text(&hygiene);
    for line in [
        "Write a tag hygiene report for Bedrock spend attribution. Required keys: team, cost-center.\n",
        "\n1. cost_allocation_tags {\"required_keys\":[\"team\",\"cost-center\"]}: ",
        "\n2. untagged_principals {\"include_no_spend\":true,\"period\":\"last_30_days\",\"required_keys\":[\"team\",\"cost-center\"]}: ",
        "\n3. bedrock_spend {\"group_by\":[\"tag:team\"],\"period\":\"last_30_days\"}: ",
    ] {
        assert!(t.contains(line), "{line:?} in {t}");
    }

    // Bad arguments and unknown prompts are protocol errors naming the fix.
    let e = client
        .get_prompt(
            GetPromptRequestParams::new("before_i_run_this_job").with_arguments(
                json!({"model": "x", "calls": "lots", "input_tokens": "1"})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("calls must be a whole number"), "{e}");
    let e = client
        .get_prompt(GetPromptRequestParams::new("nope"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown prompt 'nope'"), "{e}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn resources_are_the_configuration_and_the_tag_policy() {
    let secret = "wJalrXUtnFEMI-not-a-real-secret";
    let client = stdio_client(
        None,
        &["--demo", "--default-tag-key", "cost-center"],
        &[
            ("AWS_SECRET_ACCESS_KEY", secret),
            ("AWS_SESSION_TOKEN", secret),
        ],
    )
    .await;
    let resources = client.list_all_resources().await.unwrap();
    let listed: Vec<(&str, &str, Option<&str>)> = resources
        .iter()
        .map(|r| (r.uri.as_str(), r.name.as_str(), r.mime_type.as_deref()))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("bedrock-cost://config", "config", Some("application/json")),
            (
                "bedrock-cost://policy/required-tags",
                "required-tags-policy",
                Some("application/json")
            ),
        ]
    );

    let (config, raw) = read_json(&client, "bedrock-cost://config").await;
    assert!(!raw.contains(secret), "no secret in the configuration");
    // The tests' scratch folder for CUR month rollups (crate::common::aws_env sets it).
    let rollup_dir = aws_env(None)
        .into_iter()
        .find(|(k, _)| k == "BEDROCK_COST_MCP_CUR_ROLLUP_DIR")
        .map(|(_, v)| v)
        .unwrap();
    assert_eq!(
        config,
        json!({
            "server": {"name": "bedrock-cost-mcp", "version": env!("CARGO_PKG_VERSION")},
            "mode": "demo",
            "aws": {"region": "us-east-1", "credentials": "none (demo data)"},
            "default_tag_key": "cost-center",
            "sources": {"default": "cur", "cost_explorer": true, "cur": "bundled demo export", "athena": null, "cur_rollup_dir": rollup_dir, "cur_prebuild_months": 2, "cur_rollup_min_mb": 32},
            "cost_explorer": {"max_paid_requests_per_hour": 60, "max_paid_requests_per_caller_per_hour": 0, "cache_ttl_open_secs": 900, "cache_ttl_closed_secs": 86400},
            "accounts": {"allow_profiles": [], "allow_regions": [], "allow_role_arns": [], "role_session_name": "bedrock-cost-mcp"},
            "required_tag_keys": [],
            "allow_writes": false,
            "iam_cache_secs": 300,
            "registry_max_results": 50,
            "budgets": {"policy_file": null, "ledger": null, "ledger_window_hours": 48, "price_cache_dir": null},
            "log": "bedrock_cost_mcp=info,rmcp=warn"
        })
    );

    // No keys configured: the demo's active cost-allocation keys (free to learn) are required.
    let (policy, _) = read_json(&client, "bedrock-cost://policy/required-tags").await;
    let keys = vec!["cost-center".to_string(), "team".to_string()];
    assert_eq!(
        policy,
        json!({
            "required_keys": keys,
            "source": "active_cost_allocation_tags",
            "tag_prefix": "iamPrincipal/",
            "note": "No keys are configured, so the active iamPrincipal/* cost-allocation tag keys are required.",
            "check_with": "untagged_principals",
            "prevention_policy": bedrock_cost_mcp::domain::prevention::prevention_policy(&keys),
        })
    );
    let e = client
        .read_resource(ReadResourceRequestParams::new("bedrock-cost://nope"))
        .await
        .unwrap_err();
    let rmcp::ServiceError::McpError(err) = &e else {
        panic!("not an MCP error: {e}");
    };
    // SEP-2164: resource not found, naming the URI in the error's data.
    assert_eq!(
        err.code,
        rmcp::model::ErrorCode::RESOURCE_NOT_FOUND,
        "{err:?}"
    );
    assert_eq!(
        err.data,
        Some(json!({"uri": "bedrock-cost://nope"})),
        "{err:?}"
    );
    assert!(
        err.message.contains("no resource 'bedrock-cost://nope'"),
        "{err:?}"
    );
    client.cancel().await.unwrap();

    // Configured keys win, and the policy enforces exactly them.
    let client = stdio_client(None, &["--demo", "--required-tag-keys", "team,owner"], &[]).await;
    let (policy, _) = read_json(&client, "bedrock-cost://policy/required-tags").await;
    assert_eq!(policy["source"], "config");
    assert_eq!(policy["required_keys"], json!(["team", "owner"]));
    assert_eq!(
        policy["prevention_policy"],
        bedrock_cost_mcp::domain::prevention::prevention_policy(&["team".into(), "owner".into()])
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn aws_mode_reads_no_paid_request_for_the_policy() {
    // Against the emulator with no keys configured: the policy says the keys are not known yet
    // instead of spending $0.01 on ListCostAllocationTags.
    let emu = Emulator::start();
    let client = stdio_client(Some(&emu), &[], &[]).await;
    let (policy, _) = read_json(&client, "bedrock-cost://policy/required-tags").await;
    assert_eq!(policy["required_keys"], Value::Null);
    assert_eq!(policy["prevention_policy"], Value::Null);
    assert_eq!(emu.count("ListCostAllocationTags").await, 0);
    let (config, raw) = read_json(&client, "bedrock-cost://config").await;
    assert_eq!(config["mode"], "aws");
    assert_eq!(config["sources"]["default"], "cost_explorer");
    assert!(
        !raw.contains("testing"),
        "the emulator's credentials are not shown"
    );
    client.cancel().await.unwrap();
}
