//! Per-call account selection (`profile`, `region`, `role_arn`): the real binary over stdio
//! against the AWS emulator. moto keeps state per account, and maps the credentials an
//! AssumeRole minted back to the role's account, so each account answers with its own seeds;
//! the emulator's signing log shows which key and region every call really used.

use crate::common::*;
use serde_json::{Value, json};

const FINOPS: &str = "arn:aws:iam::111111111111:role/FinOpsRead";
const OTHER_ACCOUNT: &str = "111111111111";

async fn seed_spend(emu: &Emulator, account: &str, groups: &[(&str, &str)]) {
    let (start, end) = last_month();
    emu.post(
        "/moto-api/static/ce/cost-and-usage-results",
        json!({"account_id": account, "results": [ce_month(&start, &end, "team", groups, None)]}),
    )
    .await;
    emu.post(
        &format!("/_emulator/ce/dimension-values?account_id={account}"),
        json!({"SERVICE": ["Amazon Bedrock"]}),
    )
    .await;
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
    seed_spend(&emu, "123456789012", &[("web", "5.00")]).await;
    seed_spend(&emu, OTHER_ACCOUNT, &[("ml", "42.00"), ("", "1.50")]).await;
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

    // The server's own account.
    let own = ok(&call(&client, "bedrock_spend", json!({"period": "last_month"})).await);
    assert_eq!(team_rows(&own), vec![("web".into(), 5.0)]);
    assert!(own.get("account").is_none());

    // The assumed account: its own seeds, the role named in the answer.
    let r = call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "role_arn": FINOPS}),
    )
    .await;
    let other = ok(&r);
    assert_eq!(
        team_rows(&other),
        vec![("ml".into(), 42.0), ("untagged".into(), 1.5)]
    );
    assert_eq!(other["account"], json!({"role_arn": FINOPS}));
    assert!(text(&r).contains(&format!("account: role {FINOPS}")));

    // One AssumeRole, signed with the server's key; the spend call signed with the minted key.
    let assume = emu.signed().await;
    let assume: Vec<&Value> = assume
        .iter()
        .filter(|c| c["operation"] == "AssumeRole")
        .collect();
    assert_eq!(assume.len(), 1, "{assume:?}");
    assert_eq!(assume[0]["access_key_id"], json!("testing"));
    let ce = signed(&emu, "GetCostAndUsage").await;
    assert_eq!(ce.len(), 2, "{ce:?}");
    assert_eq!(ce[0].0, "testing");
    assert_ne!(ce[1].0, "testing", "the assumed role's key signs its calls");

    // Repeats are answered from each account's own cache: no AWS call, no new AssumeRole.
    let before = emu.calls().await;
    let again = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "role_arn": FINOPS}),
    )
    .await);
    assert_eq!(
        team_rows(&again),
        vec![("ml".into(), 42.0), ("untagged".into(), 1.5)]
    );
    assert_eq!(again["cached"], json!(true));
    let own_again = ok(&call(&client, "bedrock_spend", json!({"period": "last_month"})).await);
    assert_eq!(team_rows(&own_again), vec![("web".into(), 5.0)]);
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
    seed_spend(&emu, "123456789012", &[("web", "5.00")]).await;
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
    seed_spend(&emu, "222222222222", &[("data", "9.99")]).await;
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
    assert_eq!(out["account"], json!({"profile": "billing"}));
    // The profile's source credentials assumed its role (not the server's AWS_ACCESS_KEY_ID),
    // in the profile's region.
    let assume = signed(&emu, "AssumeRole").await;
    assert_eq!(assume, vec![("basekey".into(), "eu-west-1".into())]);
    let ce = signed(&emu, "GetCostAndUsage").await;
    assert_eq!(ce.len(), 1);
    assert!(
        ce[0].0 != "testing" && ce[0].0 != "basekey",
        "signed with the role's key: {ce:?}"
    );
    assert_eq!(ce[0].1, "eu-west-1");

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
    // moto ignores Cost Explorer's Filter (the caller's scope reaches AWS as one), so the seed is
    // what AWS would answer to the scoped request; the refusal below is decided by the server.
    seed_spend(&emu, OTHER_ACCOUNT, &[("ml", "42.00")]).await;
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
    assert_eq!(out["account"], json!({"role_arn": FINOPS}));
    let e = err(&call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "role_arn": FINOPS, "filter": {"team": ["web"]}}),
    )
    .await);
    assert!(e.contains("not allowed"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
