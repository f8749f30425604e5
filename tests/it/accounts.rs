//! Per-call account selection (`profile`, `region`, `role_arn`): the real binary over stdio
//! against the AWS emulator. moto maps the credentials an AssumeRole minted back to the role's
//! account; Cost Explorer is computed from line items loaded for the account about to be asked
//! (the engine's lines are global to the emulator), and the emulator's signing log shows which
//! key and region every call really used.

use crate::common::*;
use serde_json::{Value, json};

const FINOPS: &str = "arn:aws:iam::111111111111:role/FinOpsRead";
const OTHER_ACCOUNT: &str = "111111111111";

/// Load `account`'s Bedrock lines of last month into the emulator's Cost Explorer engine,
/// replacing any loaded before: (principal ARN or "" for none, team tag or "", line item type,
/// usage type, cost). The engine's lines are global to the emulator, not per caller account, so
/// a test loads an account's lines before asking it (and the signing log shows which account's
/// key asked); answers already cached per account must not change when other lines are loaded.
async fn seed_spend(emu: &Emulator, account: &str, lines: &[(&str, &str, &str, &str, &str)]) {
    let (first, _) = last_month_dates();
    let lines: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, (principal, team, kind, usage_type, cost))| {
            let tags: &[(&str, &str)] = if team.is_empty() {
                &[]
            } else {
                &[("team", team)]
            };
            let service = if usage_type.contains("AgentCore") {
                "Amazon Bedrock AgentCore"
            } else {
                "Amazon Bedrock"
            };
            let day = first + chrono::Duration::days(i as i64 + 1);
            let mut line = ce_line(day, kind, principal, tags, service, usage_type, cost);
            line["line_item_usage_account_id"] = json!(account);
            line
        })
        .collect();
    emu.load_ce_lines(&lines).await;
}

const SONNET_IN: &str = "USE1-Claude4.6Sonnet-input-tokens";
const AGENTCORE: &str = "USE1-AgentCore-Runtime-vCPU-Hours";

/// (line_item_type, amount) of each adjustment.
fn adjustments(out: &Value) -> Vec<(String, f64)> {
    out["adjustments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["line_item_type"].as_str().unwrap().to_string(),
                a["amount"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// The GroupBy keys of each GetCostAndUsage request, in order.
async fn ce_group_bys(emu: &Emulator) -> Vec<Vec<String>> {
    emu.requests("GetCostAndUsage")
        .await
        .iter()
        .map(|b| {
            b["GroupBy"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g["Key"].as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

fn team_rows(out: &Value) -> Vec<(String, f64)> {
    rows_by(out, "tag:team")
}

/// (operation, access key, region) of each signed call whose operation is `op`.
async fn signed(emu: &Emulator, op: &str) -> Vec<(String, String)> {
    emu.signed()
        .await
        .iter()
        .filter(|c| c["operation"] == op)
        .map(|c| {
            (
                c["access_key_id"].as_str().unwrap().to_string(),
                c["region"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn role_arn_answers_from_the_assumed_account_and_is_cached_per_account() {
    let emu = Emulator::start();
    let client = stdio_client(
        Some(&emu),
        &[
            "--allow-role-arns",
            "arn:aws:iam::*:role/FinOpsRead",
            "--role-session-name",
            "cost-check",
        ],
        &[],
    )
    .await;

    // The server's own account: web-dev's 5.00 of usage and a 1.00 credit. No untagged group,
    // so two requests: usage, adjustments.
    seed_spend(
        &emu,
        "123456789012",
        &[
            (
                "arn:aws:iam::123456789012:user/web-dev",
                "web",
                "Usage",
                SONNET_IN,
                "5.00",
            ),
            ("", "", "Credit", SONNET_IN, "-1.00"),
        ],
    )
    .await;
    let own = ok(&call(&client, "bedrock_spend", json!({"period": "last_month"})).await);
    assert_eq!(team_rows(&own), vec![("web".into(), 5.0)]);
    assert_eq!(adjustments(&own), vec![("Credit".into(), -1.0)]);
    assert!(own.get("account").is_none());

    // The assumed account: ml 42.00, an untagged principal 1.50, AgentCore compute 0.90 without a
    // principal, a 2.00 refund. Three requests: usage, the untagged split, adjustments.
    seed_spend(
        &emu,
        OTHER_ACCOUNT,
        &[
            (
                "arn:aws:sts::111111111111:assumed-role/MlRole/s1",
                "ml",
                "Usage",
                SONNET_IN,
                "42.00",
            ),
            (
                "arn:aws:iam::111111111111:user/intern",
                "",
                "Usage",
                SONNET_IN,
                "1.50",
            ),
            ("", "", "Usage", AGENTCORE, "0.90"),
            ("", "", "Refund", SONNET_IN, "-2.00"),
        ],
    )
    .await;
    let r = call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "role_arn": FINOPS}),
    )
    .await;
    let other = ok(&r);
    let other_rows = vec![
        ("ml".into(), 42.0),
        ("untagged".into(), 1.5),
        ("no_principal".into(), 0.9),
    ];
    assert_eq!(team_rows(&other), other_rows);
    // 42.00 + 1.50 + 0.90; the refund beside it, in no group.
    assert_eq!(other["total"], json!(44.4));
    assert_eq!(adjustments(&other), vec![("Refund".into(), -2.0)]);
    assert_eq!(other["account"], json!({"role_arn": FINOPS}));
    assert!(text(&r).contains(&format!("account: role {FINOPS}")));

    // One AssumeRole, signed with the server's key; each account asked once per distinct
    // request: its own service discovery and GetCostAndUsage requests, the assumed account's
    // signed with the minted key.
    let assume = emu.signed().await;
    let assume: Vec<&Value> = assume
        .iter()
        .filter(|c| c["operation"] == "AssumeRole")
        .collect();
    assert_eq!(assume.len(), 1, "{assume:?}");
    assert_eq!(assume[0]["access_key_id"], json!("testing"));
    let ce = signed(&emu, "GetCostAndUsage").await;
    assert_eq!(ce.len(), 2 + 3, "{ce:?}");
    assert!(ce[..2].iter().all(|c| c.0 == "testing"), "{ce:?}");
    let minted = &ce[2].0;
    assert_ne!(minted, "testing", "the assumed role's key signs its calls");
    assert!(ce[2..].iter().all(|c| &c.0 == minted), "{ce:?}");
    let dims = signed(&emu, "GetDimensionValues").await;
    assert_eq!(
        dims.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
        vec!["testing", minted.as_str()]
    );
    assert_eq!(
        ce_group_bys(&emu).await,
        vec![
            vec!["iamPrincipal/team".to_string()],
            vec!["RECORD_TYPE".to_string()],
            vec!["iamPrincipal/team".to_string()],
            vec!["USAGE_TYPE".to_string()],
            vec!["RECORD_TYPE".to_string()],
        ]
    );

    // Repeats are answered from each account's own cache: no AWS call, no new AssumeRole.
    let before = emu.calls().await;
    let again = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "role_arn": FINOPS}),
    )
    .await);
    assert_eq!(team_rows(&again), other_rows);
    assert_eq!(again["cached"], json!(true));
    // The own account's answer comes from its own cache, not from the lines loaded since.
    let own_again = ok(&call(&client, "bedrock_spend", json!({"period": "last_month"})).await);
    assert_eq!(team_rows(&own_again), vec![("web".into(), 5.0)]);
    assert_eq!(adjustments(&own_again), vec![("Credit".into(), -1.0)]);
    assert_eq!(own_again["cached"], json!(true));
    assert_eq!(emu.calls().await, before);

    // The session name is the configured one (moto names the assumed-role ARN after it).
    let who = ok(&call(
        &client,
        "check_budget",
        json!({"cost_usd": 1.0, "role_arn": FINOPS}),
    )
    .await);
    let who = who.to_string();
    assert!(
        who.contains("assumed-role/FinOpsRead/cost-check"),
        "check_budget runs as the assumed role: {who}"
    );
}

#[tokio::test]
async fn unlisted_accounts_are_refused_before_any_aws_call() {
    let emu = Emulator::start();
    seed_spend(
        &emu,
        "123456789012",
        &[(
            "arn:aws:iam::123456789012:user/web-dev",
            "web",
            "Usage",
            SONNET_IN,
            "5.00",
        )],
    )
    .await;
    let client = stdio_client(
        Some(&emu),
        &["--allow-role-arns", FINOPS, "--allow-regions", "us-east-1"],
        &[],
    )
    .await;
    for (args, needle) in [
        (
            json!({"role_arn": "arn:aws:iam::111111111111:role/Admin"}),
            "--allow-role-arns",
        ),
        (json!({"region": "eu-west-1"}), "allowed: us-east-1"),
        (json!({"profile": "prod"}), "none are allowed"),
        (
            json!({"role_arn": "arn:aws:iam::111111111111:user/bob"}),
            "not an IAM role ARN",
        ),
        (json!({"region": 7}), "region must be a non-empty string"),
    ] {
        let e = err(&call(&client, "bedrock_spend", args.clone()).await);
        assert!(e.contains(needle), "{args}: {e}");
    }
    assert!(
        emu.signed().await.is_empty(),
        "refused calls reach no AWS API"
    );

    // Without allow-lists the inputs are not advertised, and naming one is refused.
    let plain = stdio_client(Some(&emu), &[], &[]).await;
    let tools = plain.list_all_tools().await.unwrap();
    let spend = tools.iter().find(|t| t.name == "bedrock_spend").unwrap();
    assert!(spend.input_schema["properties"].get("role_arn").is_none());
    let e = err(&call(&plain, "untagged_principals", json!({"role_arn": FINOPS})).await);
    assert!(e.contains("none are allowed"), "{e}");

    let info = client.peer_info().unwrap();
    let instructions = info.instructions.as_deref().unwrap_or_default();
    assert!(instructions.contains("role_arn"), "{instructions}");
    let plain_info = plain.peer_info().unwrap();
    assert!(
        !plain_info
            .instructions
            .as_deref()
            .unwrap_or_default()
            .contains("role_arn")
    );

    // With them, the account tools advertise exactly the allowed values; estimate_cost keeps
    // its own `region` (the Bedrock region it prices).
    let tools = client.list_all_tools().await.unwrap();
    for t in &tools {
        let props = t.input_schema["properties"].as_object().unwrap();
        if t.name == "estimate_cost" {
            assert!(props.get("role_arn").is_none());
            continue;
        }
        assert_eq!(props["role_arn"]["enum"], json!([FINOPS]), "{}", t.name);
        assert_eq!(props["region"]["enum"], json!(["us-east-1"]), "{}", t.name);
        assert!(props.get("profile").is_none(), "{}", t.name);
    }

    // The CLI's `call` goes through the same check.
    let out = crate::common::command()
        .args(["--allow-regions", "us-east-1", "call", "bedrock_spend"])
        .arg(r#"{"region": "eu-west-1"}"#)
        .envs(aws_env(Some(&emu)))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("allowed: us-east-1"), "{stderr}");

    // Demo mode has one fictional account.
    let demo = stdio_client(None, &["--demo", "--allow-regions", "us-east-1"], &[]).await;
    let e = err(&call(&demo, "bedrock_spend", json!({"region": "us-east-1"})).await);
    assert!(e.contains("need AWS mode"), "{e}");
}

#[tokio::test]
async fn profile_brings_its_own_credentials_region_and_role() {
    let emu = Emulator::start();
    // data 9.99 of usage and a 1.00 refund: two requests (usage, adjustments).
    seed_spend(
        &emu,
        "222222222222",
        &[
            (
                "arn:aws:sts::222222222222:assumed-role/DataRole/etl",
                "data",
                "Usage",
                SONNET_IN,
                "9.99",
            ),
            ("", "", "Refund", SONNET_IN, "-1.00"),
        ],
    )
    .await;
    let dir = std::path::PathBuf::from(fresh_dir("accounts"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config");
    std::fs::write(
        &config,
        "[profile base]\naws_access_key_id = basekey\naws_secret_access_key = basesecret\n\n\
         [profile billing]\nregion = eu-west-1\nrole_arn = arn:aws:iam::222222222222:role/Billing\nsource_profile = base\n",
    )
    .unwrap();
    let config = config.to_string_lossy().into_owned();
    let client = stdio_client(
        Some(&emu),
        &["--allow-profiles", "billing,base"],
        &[("AWS_CONFIG_FILE", &config)],
    )
    .await;
    let r = call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "profile": "billing"}),
    )
    .await;
    let out = ok(&r);
    assert_eq!(team_rows(&out), vec![("data".into(), 9.99)]);
    assert_eq!(adjustments(&out), vec![("Refund".into(), -1.0)]);
    assert_eq!(out["account"], json!({"profile": "billing"}));
    // The profile's source credentials assumed its role (not the server's AWS_ACCESS_KEY_ID),
    // in the profile's region.
    let assume = signed(&emu, "AssumeRole").await;
    assert_eq!(assume, vec![("basekey".into(), "eu-west-1".into())]);
    let ce = signed(&emu, "GetCostAndUsage").await;
    assert_eq!(ce.len(), 2, "usage and adjustments, once each: {ce:?}");
    assert_eq!(
        ce_group_bys(&emu).await,
        vec![
            vec!["iamPrincipal/team".to_string()],
            vec!["RECORD_TYPE".to_string()]
        ]
    );
    for c in &ce {
        assert!(
            c.0 != "testing" && c.0 != "basekey",
            "signed with the role's key: {ce:?}"
        );
        assert_eq!(c.1, "eu-west-1");
    }
    assert_eq!(ce[0].0, ce[1].0);

    // An unknown profile in the allow-list: a tool error naming the profile, not a crash.
    let client = stdio_client(
        Some(&emu),
        &["--allow-profiles", "missing"],
        &[("AWS_CONFIG_FILE", &config)],
    )
    .await;
    let e = err(&call(
        &client,
        "cost_allocation_tags",
        json!({"profile": "missing"}),
    )
    .await);
    assert!(e.contains("missing"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn govcloud_and_china_regions_sign_in_their_partition() {
    let emu = Emulator::start();
    let client = stdio_client(
        Some(&emu),
        &["--allow-regions", "us-gov-east-1,cn-north-1"],
        &[],
    )
    .await;
    for (region, global) in [
        ("us-gov-east-1", "us-gov-west-1"),
        ("cn-north-1", "cn-northwest-1"),
    ] {
        let r = call(
            &client,
            "check_budget",
            json!({"cost_usd": 2.0, "region": region}),
        )
        .await;
        let out = ok(&r);
        assert_eq!(out["account"], json!({"region": region}));
        // STS is regional; Budgets is served from the partition's global region.
        assert_eq!(
            signed(&emu, "GetCallerIdentity").await.last().unwrap().1,
            region
        );
        assert_eq!(
            signed(&emu, "DescribeBudgets").await.last().unwrap().1,
            global
        );
    }
}

#[tokio::test]
async fn over_http_a_scoped_caller_keeps_its_scope_in_the_picked_account() {
    let emu = Emulator::start();
    // The caller's scope reaches AWS as a Filter, which the emulator applies to these lines: of
    // ml 42.00, web 7.00, an untagged 3.00 and a 5.00 credit, the scoped caller sees ml's 42.00
    // alone; the refusal below is decided by the server.
    seed_spend(
        &emu,
        OTHER_ACCOUNT,
        &[
            (
                "arn:aws:sts::111111111111:assumed-role/MlRole/s1",
                "ml",
                "Usage",
                SONNET_IN,
                "42.00",
            ),
            (
                "arn:aws:iam::111111111111:user/web-dev",
                "web",
                "Usage",
                SONNET_IN,
                "7.00",
            ),
            (
                "arn:aws:iam::111111111111:user/intern",
                "",
                "Usage",
                SONNET_IN,
                "3.00",
            ),
            ("", "", "Credit", SONNET_IN, "-5.00"),
        ],
    )
    .await;
    const TOKEN: &str = "tok-accounts-ml-5e1d";
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, TOKEN.as_bytes());
    let sha: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let dir = std::path::PathBuf::from(fresh_dir("accounts-http"));
    std::fs::create_dir_all(&dir).unwrap();
    let tokens = dir.join("tokens.toml");
    std::fs::write(
        &tokens,
        format!(
            "[[token]]\nname = \"ml\"\nsha256 = \"{sha}\"\nscopes = [\"cost.read\"]\n\
             visibility = {{ tag_key = \"team\", tag_values = [\"ml\"] }}\n"
        ),
    )
    .unwrap();
    let server = HttpServer::start(
        Some(&emu),
        &["--allow-role-arns", FINOPS],
        &[("BEDROCK_COST_MCP_AUTH_TOKENS", tokens.to_str().unwrap())],
    );
    let client = server.client_with_token(TOKEN).await.expect("initialize");
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "role_arn": FINOPS}),
    )
    .await);
    assert_eq!(team_rows(&out), vec![("ml".into(), 42.0)]);
    assert_eq!(out["total"], json!(42.0));
    assert_eq!(
        out["adjustments"],
        json!([]),
        "account-wide, not the caller's"
    );
    assert_eq!(out["account"], json!({"role_arn": FINOPS}));
    // One request: the scope excludes untagged (no split) and is a tag filter (no adjustments).
    let bodies = emu.requests("GetCostAndUsage").await;
    assert_eq!(bodies.len(), 1, "{bodies:#?}");
    let filter = bodies[0]["Filter"].to_string();
    assert!(
        filter.contains("iamPrincipal/team")
            && filter.contains("\"ml\"")
            && !filter.contains("ABSENT"),
        "{filter}"
    );
    let e = err(&call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "role_arn": FINOPS, "filter": {"team": ["web"]}}),
    )
    .await);
    assert!(e.contains("not allowed"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
