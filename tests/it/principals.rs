//! `untagged_principals`, `cost_allocation_tags` and the write tools against
//! moto's IAM (seeded through the real IAM API) and the emulator's Cost
//! Explorer tag operations, with spend from a generated CUR export whose
//! truth gives the expected ranking to the cent.

use std::collections::BTreeMap;

use crate::common::*;
use aws_sdk_iam::types::Tag;
use serde_json::{Value, json};

const ACCOUNT: &str = "123456789012";

#[derive(Debug, Clone, PartialEq)]
enum Class {
    Full,
    TeamOnly,
    Untagged,
    Deleted,
}

#[derive(Debug, Clone)]
struct Entity {
    kind: &'static str,
    name: String,
    path: String,
    spend: f64,
    class: Class,
}

/// IAM entities of our account from the CUR truth, each given a tagging class.
fn entities(truth: &Value) -> (Vec<Entity>, f64) {
    let mut map: BTreeMap<(String, String), (String, f64)> = BTreeMap::new();
    let mut other_accounts = 0.0;
    for (arn, v) in truth["by_principal"].as_object().unwrap() {
        let amount = v.as_f64().unwrap();
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        if parts[4] != ACCOUNT {
            other_accounts += amount;
            continue;
        }
        let res = parts[5];
        let (kind, name, path) = if let Some(rest) = res.strip_prefix("user/") {
            let name = rest.rsplit('/').next().unwrap().to_string();
            let path = format!("/{}", &rest[..rest.len() - name.len()]);
            ("user", name, path)
        } else {
            let rest = res.strip_prefix("assumed-role/").unwrap();
            (
                "role",
                rest.split('/').next().unwrap().to_string(),
                "/".to_string(),
            )
        };
        map.entry((kind.to_string(), name)).or_insert((path, 0.0)).1 += amount;
    }
    let list = map
        .into_iter()
        .enumerate()
        .map(|(i, ((kind, name), (path, spend)))| Entity {
            kind: if kind == "user" { "user" } else { "role" },
            name,
            path,
            spend,
            class: match i % 4 {
                0 => Class::Full,
                1 => Class::TeamOnly,
                2 => Class::Untagged,
                _ => Class::Deleted,
            },
        })
        .collect();
    (list, other_accounts)
}

fn tags(class: &Class) -> Vec<Tag> {
    let t = |k: &str, v: &str| Tag::builder().key(k).value(v).build().unwrap();
    match class {
        Class::Full => vec![t("team", "ml"), t("cost-center", "cc-1")],
        Class::TeamOnly => vec![t("team", "web")],
        _ => vec![],
    }
}

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const TRUST_TAG_SESSION: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;

async fn seed(emu: &Emulator, list: &[Entity]) {
    let iam = aws_sdk_iam::Client::new(&sdk_config(emu).await);
    for e in list.iter().filter(|e| e.class != Class::Deleted) {
        if e.kind == "user" {
            iam.create_user()
                .user_name(&e.name)
                .path(&e.path)
                .set_tags(Some(tags(&e.class)))
                .send()
                .await
                .unwrap();
        } else {
            iam.create_role()
                .role_name(&e.name)
                .path(&e.path)
                .assume_role_policy_document(TRUST)
                .set_tags(Some(tags(&e.class)))
                .send()
                .await
                .unwrap();
        }
    }
    iam.create_role()
        .role_name("IdleRole")
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .unwrap();
    iam.create_role()
        .role_name("SessionTaggedRole")
        .assume_role_policy_document(TRUST_TAG_SESSION)
        .send()
        .await
        .unwrap();
    iam.create_role()
        .role_name("AWSServiceRoleForSupport")
        .path("/aws-service-role/support.amazonaws.com/")
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .unwrap();
    emu.post(
        "/_emulator/ce/cost-allocation-tags",
        json!({"CostAllocationTags": [
            {"TagKey": "iamPrincipal/team", "Type": "UserDefined", "Status": "Active", "LastUpdatedDate": "2026-09-01T00:00:00Z", "LastUsedDate": "2026-11-20T00:00:00Z"},
            {"TagKey": "iamPrincipal/cost-center", "Type": "UserDefined", "Status": "Active"},
            {"TagKey": "iamPrincipal/owner", "Type": "UserDefined", "Status": "Inactive"},
            {"TagKey": "resourceTags/user:env", "Type": "UserDefined", "Status": "Active"}
        ]}),
    )
    .await;
}

fn period() -> Value {
    let (start, _) = last_month();
    let s = chrono::NaiveDate::parse_from_str(&start, "%Y-%m-%d").unwrap();
    json!({"start": start, "end": (s + chrono::Duration::days(45)).to_string()})
}

async fn setup() -> (Emulator, tempfile::TempDir, Vec<Entity>, f64) {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::common::command()
        .args([
            "generate-cur",
            "--out",
            dir.path().to_str().unwrap(),
            "--rows",
            "8000",
            "--start",
            period()["start"].as_str().unwrap(),
            "--days",
            "45",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("truth.json")).unwrap())
            .unwrap();
    let (list, other) = entities(&truth);
    for c in [
        Class::Full,
        Class::TeamOnly,
        Class::Untagged,
        Class::Deleted,
    ] {
        assert!(
            list.iter().any(|e| e.class == c && e.spend > 0.0),
            "each class has spenders"
        );
    }
    let emu = Emulator::start();
    seed(&emu, &list).await;
    (emu, dir, list, other)
}

#[tokio::test]
async fn ranks_untagged_principals_by_spend_with_fixes_orphans_and_policy() {
    let (emu, dir, list, other) = setup().await;
    let client = stdio_client(Some(&emu), &["--cur", dir.path().to_str().unwrap()], &[]).await;
    let out = ok(&call(
        &client,
        "untagged_principals",
        json!({"period": period(), "max_results": 500}),
    )
    .await);
    assert_eq!(out["required_keys"], json!(["cost-center", "team"]));
    assert_eq!(
        out["required_keys_source"],
        json!("active_cost_allocation_tags")
    );
    assert_eq!(out["spend_source"], json!("cur"));
    let mut want: Vec<&Entity> = list
        .iter()
        .filter(|e| matches!(e.class, Class::TeamOnly | Class::Untagged))
        .collect();
    want.sort_by(|a, b| b.spend.total_cmp(&a.spend));
    let got = out["findings"].as_array().unwrap();
    assert_eq!(
        got.len(),
        want.len(),
        "only principals with spend are listed by default"
    );
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g["name"].as_str().unwrap(), w.name);
        assert!(
            (g["spend"].as_f64().unwrap() - w.spend).abs() < 0.01,
            "{}: {} vs {}",
            w.name,
            g["spend"],
            w.spend
        );
        let missing = if w.class == Class::TeamOnly {
            json!(["cost-center"])
        } else {
            json!(["cost-center", "team"])
        };
        assert_eq!(g["missing_keys"], missing, "{}", w.name);
        let verb = if w.kind == "user" {
            "tag-user --user-name"
        } else {
            "tag-role --role-name"
        };
        assert_eq!(
            g["fix"].as_str().unwrap().split(" --tags").next().unwrap(),
            format!("aws iam {verb} {}", w.name)
        );
        assert!(
            g["fix"]
                .as_str()
                .unwrap()
                .contains("Key=cost-center,Value=<cost-center>")
        );
    }
    let deleted: f64 = list
        .iter()
        .filter(|e| e.class == Class::Deleted)
        .map(|e| e.spend)
        .sum();
    let orphans = out["not_in_iam"].as_array().unwrap();
    let by_reason = |r: &str| {
        orphans
            .iter()
            .filter(|o| o["reason"] == json!(r))
            .map(|o| o["amount"].as_f64().unwrap())
            .sum::<f64>()
    };
    assert!((by_reason("deleted_or_renamed") - deleted).abs() < 0.01);
    assert!((by_reason("other_account") - other).abs() < 0.01);
    let unattributed: f64 = want.iter().map(|e| e.spend).sum::<f64>() + deleted + other;
    assert!((out["summary"]["unattributed_spend"].as_f64().unwrap() - unattributed).abs() < 0.02);
    assert_eq!(
        out["summary"]["principals_scanned"].as_u64().unwrap() as usize,
        list.iter().filter(|e| e.class != Class::Deleted).count() + 3
    );
    assert_eq!(
        out["iam_requests"],
        json!(1),
        "one page of one paginated sweep"
    );
    assert_eq!(emu.count("GetAccountAuthorizationDetails").await, 1);
    assert_eq!(
        emu.count("ListUserTags").await + emu.count("ListRoleTags").await,
        0,
        "no per-principal tag calls"
    );
    let policy = &out["prevention_policy"];
    assert_eq!(
        policy["Statement"][0]["Action"],
        json!(["iam:CreateUser", "iam:CreateRole"])
    );
    assert_eq!(
        policy["Statement"][0]["Condition"]["Null"],
        json!({"aws:RequestTag/cost-center": "true", "aws:RequestTag/team": "true"})
    );

    // With principals that have no spend, flags say why some are not certain misses.
    let all = ok(&call(
        &client,
        "untagged_principals",
        json!({"period": period(), "include_no_spend": true, "kind": "role", "max_results": 500}),
    )
    .await);
    let find = |n: &str| {
        all["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == json!(n))
            .cloned()
            .unwrap_or_else(|| panic!("{n} missing"))
    };
    assert_eq!(
        find("SessionTaggedRole")["flags"],
        json!(["may_be_tagged_per_session", "no_bedrock_spend"])
    );
    assert_eq!(
        find("AWSServiceRoleForSupport")["flags"],
        json!(["service_linked", "no_bedrock_spend"])
    );
    assert!(
        all["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["kind"] == json!("role"))
    );
    // Paging with a cursor walks the same list.
    let p1 = ok(&call(
        &client,
        "untagged_principals",
        json!({"period": period(), "max_results": 2}),
    )
    .await);
    assert_eq!(p1["findings"].as_array().unwrap().len(), 2);
    let p2 = ok(&call(
        &client,
        "untagged_principals",
        json!({"period": period(), "max_results": 2, "cursor": p1["next_cursor"]}),
    )
    .await);
    assert_eq!(p2["findings"][0]["name"], out["findings"][2]["name"]);
    assert_eq!(
        emu.count("GetAccountAuthorizationDetails").await,
        1,
        "paging reuses the inventory"
    );
    // Name and path filters.
    let named = ok(&call(
        &client,
        "untagged_principals",
        json!({"period": period(), "name": "IdleRo?e", "include_no_spend": true}),
    )
    .await);
    assert_eq!(
        named["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].clone())
            .collect::<Vec<_>>(),
        vec![json!("IdleRole")]
    );
    let pathed = ok(&call(
        &client,
        "untagged_principals",
        json!({"period": period(), "path_prefix": "/aws-service-role/", "include_no_spend": true}),
    )
    .await);
    assert_eq!(pathed["findings"].as_array().unwrap().len(), 1);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn tag_health_and_errors() {
    let (emu, dir, _, _) = setup().await;
    let client = stdio_client(
        Some(&emu),
        &[
            "--cur",
            dir.path().to_str().unwrap(),
            "--required-tag-keys",
            "team,project,owner",
        ],
        &[("AWS_MAX_ATTEMPTS", "1")],
    )
    .await;
    let out = ok(&call(&client, "cost_allocation_tags", json!({})).await);
    assert_eq!(out["active_keys"], json!(["cost-center", "team"]));
    assert_eq!(out["required_missing"], json!(["project"]));
    assert_eq!(out["required_inactive"], json!(["owner"]));
    assert_eq!(
        out["tags"].as_array().unwrap().len(),
        3,
        "only iamPrincipal/* keys"
    );
    assert!(
        out["how_to_activate"]
            .as_str()
            .unwrap()
            .contains("TagKey=iamPrincipal/owner,Status=Active")
    );
    assert_eq!(
        (out["paid_requests"].clone(), out["cached"].clone()),
        (json!(1), json!(false))
    );
    let again = ok(&call(&client, "cost_allocation_tags", json!({})).await);
    assert_eq!(
        (again["paid_requests"].clone(), again["cached"].clone()),
        (json!(0), json!(true))
    );
    assert_eq!(emu.count("ListCostAllocationTags").await, 1);

    // Configured keys are used as they are.
    let u = ok(&call(&client, "untagged_principals", json!({"period": period()})).await);
    assert_eq!(
        (
            u["required_keys"].clone(),
            u["required_keys_source"].clone()
        ),
        (json!(["team", "project", "owner"]), json!("config"))
    );
    let warnings = u["warnings"].to_string();
    assert!(
        warnings.contains("iamPrincipal/project is not an activated")
            && warnings.contains("iamPrincipal/owner is not an active"),
        "{warnings}"
    );
    assert!(!warnings.contains("iamPrincipal/team is not"), "{warnings}");

    let e = err(&call(
        &client,
        "untagged_principals",
        json!({"required_keys": ["bad\"key"]}),
    )
    .await);
    assert!(e.contains("not a valid tag key"), "{e}");
    client.cancel().await.unwrap();

    // A fresh server has no cached inventory or tag listing.
    let client = stdio_client(Some(&emu), &[], &[("AWS_MAX_ATTEMPTS", "1")]).await;
    emu.fault("GetAccountAuthorizationDetails", "AccessDenied", 1)
        .await;
    // Two refusals: one met by untagged_principals' activation check (a warning), one by cost_allocation_tags.
    emu.fault("ListCostAllocationTags", "AccessDeniedException", 2)
        .await;
    let e = err(&call(
        &client,
        "untagged_principals",
        json!({"period": period(), "required_keys": ["team"]}),
    )
    .await);
    assert!(
        e.contains("iam:GetAccountAuthorizationDetails") && e.contains("access denied"),
        "{e}"
    );
    let e = err(&call(&client, "cost_allocation_tags", json!({})).await);
    assert!(e.contains("ce:ListCostAllocationTags"), "{e}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn cost_explorer_only_sizes_the_untagged_bucket() {
    let (emu, _dir, _, _) = setup().await;
    // Cost Explorer computed by the emulator from these lines of last month (inside `period`):
    // a principal with both keys, one with team only, one with neither, AgentCore compute
    // without a principal, and a credit and a refund (no principal, no tags).
    let (first, _) = last_month_dates();
    let day = |n: i64| first + chrono::Duration::days(n);
    let sonnet = "USE1-Claude4.6Sonnet-input-tokens";
    emu.load_ce_lines(&[
        ce_line(
            day(1),
            "Usage",
            "arn:aws:sts::123456789012:assumed-role/FullRole/s1",
            &[("team", "ml"), ("cost-center", "cc-1")],
            "Amazon Bedrock",
            sonnet,
            "70.00",
        ),
        ce_line(
            day(2),
            "Usage",
            "arn:aws:iam::123456789012:user/team-only",
            &[("team", "ml")],
            "Amazon Bedrock",
            sonnet,
            "20.00",
        ),
        ce_line(
            day(3),
            "Usage",
            "arn:aws:iam::123456789012:user/no-tags",
            &[],
            "Amazon Bedrock",
            "USE1-Claude4.5Haiku-output-tokens",
            "10.00",
        ),
        ce_line(
            day(4),
            "Usage",
            "",
            &[],
            "Amazon Bedrock AgentCore",
            "USE1-AgentCore-Runtime-vCPU-Hours",
            "4.40",
        ),
        ce_line(
            day(0),
            "Credit",
            "",
            &[],
            "Amazon Bedrock",
            sonnet,
            "-25.00",
        ),
        ce_line(day(5), "Refund", "", &[], "Amazon Bedrock", sonnet, "-3.00"),
    ])
    .await;
    let client = stdio_client(Some(&emu), &[], &[]).await;
    let out = ok(&call(&client, "untagged_principals", json!({"period": period()})).await);
    assert_eq!(out["spend_source"], json!("cost_explorer"));
    // Principals without the key, by hand: cost-center 20.00 (team-only) + 10.00 (no-tags) =
    // 30.00; team 10.00 (no-tags). AgentCore's 4.40 has no principal to tag (no_principal, not
    // untagged), and the credit and refund belong to no principal (netted in, the two would be
    // 30.00 - 25.00 - 3.00 = 2.00 and 10.00 - 28.00 = -18.00).
    assert_eq!(
        out["untagged_spend_by_key"],
        json!({"cost-center": 30.0, "team": 10.0})
    );
    // The larger of the two.
    assert_eq!(out["summary"]["unattributed_spend"], json!(30.0));
    // Usage only: 70.00 + 20.00 + 10.00 + 4.40 (76.40 with the credit and refund netted in).
    assert_eq!(out["summary"]["total_spend"], json!(104.4));
    assert!(
        out["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f.get("spend").is_none()),
        "no per-principal spend on Cost Explorer"
    );
    assert!(out["findings"].as_array().unwrap().len() >= 3);
    // The active keys (ListCostAllocationTags), service discovery, then per key the usage and
    // the untagged split; the adjustments request is the same for both keys and asked once.
    assert_eq!(out["paid_requests"], json!(1 + 1 + 2 * 2 + 1));
    assert_eq!(
        (
            emu.count("ListCostAllocationTags").await,
            emu.count("GetDimensionValues").await,
            emu.count("GetCostAndUsage").await
        ),
        (1, 1, 5)
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn write_tools_need_the_flag_and_confirmation() {
    let emu = Emulator::start();
    seed(&emu, &[]).await;
    let client = stdio_client(Some(&emu), &[], &[]).await;
    let names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(
        !names.contains(&"tag_principal".to_string())
            && !names.contains(&"activate_cost_allocation_tags".to_string())
    );
    client.cancel().await.unwrap();

    let client = stdio_client(Some(&emu), &["--allow-writes"], &[]).await;
    let tools = client.list_all_tools().await.unwrap();
    let tag_tool = tools
        .iter()
        .find(|t| t.name == "tag_principal")
        .expect("listed with --allow-writes");
    let a = tag_tool.annotations.as_ref().unwrap();
    assert_eq!(
        (a.read_only_hint, a.destructive_hint, a.idempotent_hint),
        (Some(false), Some(false), Some(true))
    );
    let e = err(&call(
        &client,
        "tag_principal",
        json!({"kind": "role", "name": "IdleRole", "tags": {"team": "ops"}}),
    )
    .await);
    assert!(e.contains("confirm"), "{e}");
    let out = ok(&call(&client, "tag_principal", json!({"kind": "role", "name": "IdleRole", "tags": {"team": "ops", "cost-center": "cc-9"}, "confirm": true})).await);
    assert_eq!(out["added"], json!({"cost-center": "cc-9", "team": "ops"}));
    let iam = aws_sdk_iam::Client::new(&sdk_config(&emu).await);
    let tags: BTreeMap<String, String> = iam
        .list_role_tags()
        .role_name("IdleRole")
        .send()
        .await
        .unwrap()
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    assert_eq!(
        tags,
        BTreeMap::from([
            ("cost-center".to_string(), "cc-9".to_string()),
            ("team".to_string(), "ops".to_string())
        ])
    );
    let e = err(&call(
        &client,
        "tag_principal",
        json!({"kind": "role", "name": "NoSuchRole", "tags": {"team": "ops"}, "confirm": true}),
    )
    .await);
    assert!(e.contains("NoSuchEntity"), "{e}");

    let e = err(&call(
        &client,
        "activate_cost_allocation_tags",
        json!({"keys": ["owner"]}),
    )
    .await);
    assert!(e.contains("confirm"), "{e}");
    let out = ok(&call(
        &client,
        "activate_cost_allocation_tags",
        json!({"keys": ["owner", "iamPrincipal/nosuch"], "confirm": true}),
    )
    .await);
    assert_eq!(
        (out["activated"].clone(), out["failed"].clone()),
        (json!(1), json!(1))
    );
    assert!(
        out["results"][1]["error"]
            .as_str()
            .unwrap()
            .contains("TagKeysNotFound")
    );
    let health = ok(&call(
        &client,
        "cost_allocation_tags",
        json!({"required_keys": ["owner"]}),
    )
    .await);
    assert_eq!(
        health["required_inactive"],
        json!([]),
        "owner is active now"
    );
    let e = err(&call(
        &client,
        "activate_cost_allocation_tags",
        json!({"keys": (0..21).map(|i| format!("k{i}")).collect::<Vec<_>>(), "confirm": true}),
    )
    .await);
    assert!(e.contains("1 to 20"), "{e}");
    client.cancel().await.unwrap();
}

/// IAM answers the inventory in pages (the emulator pages like IAM): every page is read, and a
/// page that keeps failing after retries leaves a report of what was read, with a warning.
#[tokio::test]
async fn iam_inventory_pages_and_a_failed_page_leaves_a_partial_report() {
    let (emu, dir, list, _) = setup().await;
    let scanned = list.iter().filter(|e| e.class != Class::Deleted).count() + 3;
    emu.post("/_emulator/iam/page-cap", json!({"max_items": 7}))
        .await;
    let args = json!({"period": period(), "max_results": 500, "include_no_spend": true});
    let cur = dir.path().to_str().unwrap();
    let client = stdio_client(Some(&emu), &["--cur", cur], &[]).await;
    let full = ok(&call(&client, "untagged_principals", args.clone()).await);
    let pages = scanned.div_ceil(7);
    assert!(pages >= 3, "{scanned} principals");
    assert_eq!(full["summary"]["principals_scanned"], json!(scanned));
    assert_eq!(full["iam_requests"], json!(pages));
    assert_eq!(
        emu.count("GetAccountAuthorizationDetails").await,
        pages as u64
    );
    assert!(
        !full["warnings"].to_string().contains("IAM sweep stopped"),
        "{full}"
    );

    // A fresh server (no cached inventory): page 2 fails every retry.
    emu.post(
        "/_emulator/faults",
        json!({"operation": "GetAccountAuthorizationDetails", "status": 500,
               "error_type": "ServiceFailure", "message": "injected", "after": 1, "times": 20}),
    )
    .await;
    let client = stdio_client(Some(&emu), &["--cur", cur], &[]).await;
    let part = ok(&call(&client, "untagged_principals", args).await);
    assert_eq!(part["summary"]["principals_scanned"], json!(7));
    assert_eq!(part["iam_requests"], json!(1));
    let warnings = part["warnings"].to_string();
    assert!(
        warnings.contains("the IAM sweep stopped after 1 page(s) (7 principals)"),
        "{warnings}"
    );
    // What was read is reported as in the full sweep.
    let first_page: Vec<&Value> = part["findings"].as_array().unwrap().iter().collect();
    for f in &first_page {
        assert!(
            full["findings"].as_array().unwrap().contains(f),
            "{f} is in the full report"
        );
    }
}
