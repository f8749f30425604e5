//! Agent Registry discovery against our loopback emulator of the
//! `agent-registry` data and control planes (seeded catalog: two AWS_IAM
//! registries, one CUSTOM_JWT, one CREATING).

use crate::common::*;
use serde_json::{Value, json};

const PLATFORM: &str = "k3Xp9QmTz7Lw2RaB";
const FINANCE: &str = "f7Nc2VbHq8Ds4JeM";
const PARTNER: &str = "p4Tg6WyKc1Zr9HuS";

async fn client(reg: &RegistryEmulator, args: &[&str]) -> Client {
    let env = reg.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut all = vec![
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_MAX_ATTEMPTS", "1"),
    ];
    all.extend(env);
    stdio_client(None, args, &all).await
}

fn names(out: &Value) -> Vec<String> {
    out["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn searches_every_readable_registry_at_once_and_merges() {
    let reg = RegistryEmulator::start();
    let c = client(&reg, &[]).await;
    let out = ok(&call(&c, "search_registry", json!({"query": "invoice"})).await);
    assert_eq!(out["mode"], json!("search"));
    let mut searched: Vec<String> =
        serde_json::from_value(out["registries_searched"].clone()).unwrap();
    searched.sort();
    assert_eq!(
        searched,
        vec![FINANCE.to_string(), PLATFORM.to_string()],
        "READY AWS_IAM registries only"
    );
    assert!(
        out["notes"].to_string().contains(PARTNER)
            && out["notes"].to_string().contains("CUSTOM_JWT")
    );
    let hits = names(&out);
    assert!(
        hits.contains(&"invoice-processing-agent".to_string()),
        "{hits:?}"
    );
    assert!(
        !hits
            .iter()
            .any(|h| h == "budget-forecaster" || h == "expense-report-agent"),
        "only APPROVED records: {hits:?}"
    );
    let agent = out["hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["record_id"] == json!("FinvPr0cAg1a"))
        .unwrap();
    assert_eq!(agent["registry"], json!("finance-agents"));
    assert_eq!(
        agent["roles"],
        json!(["arn:aws:iam::123456789012:role/InvoiceAgentRole"])
    );
    assert_eq!(agent["skills"].as_array().unwrap().len(), 3);
    assert!(
        agent["connect"]
            .as_str()
            .unwrap()
            .starts_with("A2A agent at ")
    );
    let calls = reg.calls().await;
    assert_eq!(
        calls.get(&format!("SearchDiscoverableRegistryRecords:{PLATFORM}")),
        Some(&1)
    );
    assert_eq!(
        calls.get(&format!("SearchDiscoverableRegistryRecords:{FINANCE}")),
        Some(&1)
    );
    assert_eq!(
        calls.get(&format!("SearchDiscoverableRegistryRecords:{PARTNER}")),
        None
    );

    // Type filter, and an MCP hit's endpoint and tools.
    let mcp = ok(&call(
        &c,
        "search_registry",
        json!({"query": "invoice ledger erp", "record_types": ["mcp"]}),
    )
    .await);
    assert!(
        mcp["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["record_type"] == json!("MCP"))
    );
    let erp = mcp["hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["record_id"] == json!("FerpLdg2Mcpb"))
        .expect("erp-ledger-mcp");
    assert!(erp["endpoint"].as_str().unwrap().starts_with("https://"));
    assert!(!erp["tools"].as_array().unwrap().is_empty());
    assert_eq!(erp["transport"], json!("streamable-http"));
    let none = ok(&call(&c, "search_registry", json!({"query": "qqqqxyzzy"})).await);
    assert!(none["hits"].as_array().unwrap().is_empty());
    assert!(none["notes"].to_string().contains("nothing found"));
    c.cancel().await.unwrap();
}

#[tokio::test]
async fn browse_pages_with_a_cursor_and_lists_registries() {
    let reg = RegistryEmulator::start();
    let c = client(&reg, &[]).await;
    let regs = ok(&call(&c, "list_registries", json!({})).await);
    assert_eq!(regs["registries"].as_array().unwrap().len(), 4);
    let mut searchable: Vec<String> = serde_json::from_value(regs["searchable"].clone()).unwrap();
    searchable.sort();
    assert_eq!(searchable, vec![FINANCE.to_string(), PLATFORM.to_string()]);

    let mut seen = Vec::new();
    let mut cursor: Option<Value> = None;
    for _ in 0..10 {
        let mut args = json!({"registries": [PLATFORM], "max_results": 1});
        if let Some(c) = &cursor {
            args["cursor"] = c.clone();
        }
        let page = ok(&call(&c, "search_registry", args).await);
        assert_eq!(page["mode"], json!("browse"));
        assert!(page["hits"].as_array().unwrap().len() <= 5);
        seen.extend(names(&page));
        cursor = page.get("next_cursor").cloned();
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(
        seen.len(),
        7,
        "the 7 APPROVED records of platform-tools: {seen:?}"
    );
    let e = err(&call(&c, "search_registry", json!({"cursor": "bogus!"})).await);
    assert!(e.contains("next_cursor"), "{e}");
    c.cancel().await.unwrap();
}

#[tokio::test]
async fn records_in_full_with_per_record_errors_and_malformed_descriptors() {
    let reg = RegistryEmulator::start();
    let c = client(&reg, &[]).await;
    let out = ok(&call(
        &c,
        "get_registry_record",
        json!({"record_ids": ["RsupTri4ge6f", "Rge0Lk7Bad3c", "NoSuchRec0rd"]}),
    )
    .await);
    let recs = out["records"].as_array().unwrap();
    assert_eq!(recs.len(), 2);
    assert_eq!(
        recs[0]["roles"],
        json!(["arn:aws:iam::123456789012:role/SupportBotRole"]),
        "the runtime execution role in the agent card"
    );
    assert!(
        !recs[1]["problems"].as_array().unwrap().is_empty(),
        "malformed descriptor flagged"
    );
    assert_eq!(
        recs[1]["name"],
        json!("geo-lookup-mcp"),
        "what is readable is shown"
    );
    let errs = out["errors"].as_array().unwrap();
    assert_eq!(errs.len(), 1);
    assert_eq!(
        (errs[0]["record_id"].clone(), errs[0]["code"].clone()),
        (json!("NoSuchRec0rd"), json!("RESOURCE_NOT_FOUND"))
    );
    c.cancel().await.unwrap();
}

#[tokio::test]
async fn registry_errors_name_the_fix() {
    let reg = RegistryEmulator::start();
    let c = client(&reg, &[]).await;
    let e = err(&call(
        &c,
        "search_registry",
        json!({"query": "shipping", "registries": [PARTNER]}),
    )
    .await);
    assert!(e.contains("CUSTOM_JWT") && e.contains("bearer"), "{e}");
    let e = err(&call(
        &c,
        "search_registry",
        json!({"query": "x", "registries": ["nope"]}),
    )
    .await);
    assert!(
        e.contains("no registry 'nope'") && e.contains("platform-tools"),
        "{e}"
    );
    reg.post("/_emulator/faults", json!({"operation": "SearchDiscoverableRegistryRecords", "registry": FINANCE, "status": 403, "error_type": "AccessDeniedException", "message": "not allowed", "times": 1})).await;
    let out = ok(&call(&c, "search_registry", json!({"query": "cost explorer"})).await);
    let errors = out["registry_errors"].to_string();
    assert!(
        errors.contains("agent-registry:SearchDiscoverableRegistryRecords")
            && errors.contains(FINANCE),
        "{errors}"
    );
    assert!(
        !out["hits"].as_array().unwrap().is_empty(),
        "the other registry still answers"
    );
    c.cancel().await.unwrap();
}

#[tokio::test]
async fn hits_show_their_roles_bedrock_spend_this_month() {
    use chrono::Datelike;
    let reg = RegistryEmulator::start();
    let dir = tempfile::tempdir().unwrap();
    let today = crate::common::today();
    let first = today.with_day(1).unwrap();
    let out = crate::common::command()
        .args([
            "generate-cur",
            "--out",
            dir.path().to_str().unwrap(),
            "--rows",
            "20000",
            "--start",
            &first.to_string(),
            "--days",
            &today.day().to_string(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("truth.json")).unwrap())
            .unwrap();
    let want = truth["by_role"]["arn:aws:iam::123456789012:role/InvoiceAgentRole"]
        .as_f64()
        .expect("the generator has InvoiceAgentRole");
    let c = client(&reg, &["--cur", dir.path().to_str().unwrap()]).await;
    let res = ok(&call(
        &c,
        "get_registry_record",
        json!({"record_id": "FinvPr0cAg1a"}),
    )
    .await);
    let got = res["records"][0]["role_spend_this_month"].as_f64().unwrap();
    assert!((got - want).abs() < 0.01, "{got} vs {want}");
    c.cancel().await.unwrap();
}
