//! `bedrock_spend` on Cost Explorer: the real binary over stdio and HTTP,
//! against the AWS emulator on loopback, whose Cost Explorer answers are computed
//! from line items written here (expected figures by hand from the same lines).
//! Paid requests are counted at the emulator, not trusted from the server.

use crate::common::*;
use serde_json::json;

/// The *Bedrock* service names of the seeded lines (what service discovery must find).
const SERVICES: &[&str] = &[
    "Amazon Bedrock",
    "Amazon Bedrock AgentCore",
    "Amazon Bedrock Service",
    "Claude Sonnet 4.6 (Amazon Bedrock Edition)",
];

const ML_ROLE: &str = "arn:aws:sts::123456789012:assumed-role/MlRole/session-1";
const WEB_DEV: &str = "arn:aws:iam::123456789012:user/web-dev";
/// A principal without the iamPrincipal/team tag.
const INTERN: &str = "arn:aws:iam::123456789012:user/intern";
const USAGE_TYPES: [&str; 3] = ["Usage", "DiscountedUsage", "SavingsPlanCoveredUsage"];

/// Last month's Bedrock bill, line by line as AWS writes it, plus lines that must not count.
/// Cost Explorer's answers are computed from them by the emulator. By hand (last month, the
/// Bedrock services, usage record types only):
///   ml           100.00 + 23.45          = 123.45
///   web                                    20.00
///   untagged     (intern, no team tag)       7.10
///   no_principal 4.40 (AgentCore) + 12.00 (provisioned throughput) = 16.40
///   total        123.45 + 20.00 + 7.10 + 16.40 = 166.95 (named 143.45)
/// and beside it the adjustments: Credit -25.00, Refund -3.00, Tax 2.10, so
///   total_after_adjustments 166.95 - 25.00 - 3.00 + 2.10 = 141.05.
/// Grouped with usage (no RECORD_TYPE exclusion), the credit, refund and tax (no tag) would land
/// in the untagged group: 7.10 + 16.40 - 25.00 - 3.00 + 2.10 = -2.40 before the split, and the
/// total would be 141.05 instead of 166.95.
fn bill() -> Vec<serde_json::Value> {
    let (first, next) = last_month_dates();
    let day = |n: i64| first + chrono::Duration::days(n);
    vec![
        ce_line(
            day(2),
            "Usage",
            ML_ROLE,
            &[("team", "ml")],
            "Amazon Bedrock",
            "USE1-Claude4.6Sonnet-input-tokens",
            "100.00",
        ),
        ce_line(
            day(9),
            "Usage",
            ML_ROLE,
            &[("team", "ml")],
            "Claude Sonnet 4.6 (Amazon Bedrock Edition)",
            "USE1-MP:USE1_OutputTokenCount-Units",
            "23.45",
        ),
        ce_line(
            day(4),
            "Usage",
            WEB_DEV,
            &[("team", "web")],
            "Amazon Bedrock Service",
            "USE1-NovaLite-input-tokens",
            "20.00",
        ),
        ce_line(
            day(6),
            "Usage",
            INTERN,
            &[],
            "Amazon Bedrock",
            "USE1-Claude4.5Haiku-input-tokens",
            "7.10",
        ),
        // Spend that never has a principal.
        ce_line(
            day(1),
            "Usage",
            "",
            &[],
            "Amazon Bedrock AgentCore",
            "USE1-AgentCore-Runtime-vCPU-Hours",
            "4.40",
        ),
        ce_line(
            day(1),
            "Usage",
            "",
            &[],
            "Amazon Bedrock",
            "USE1-ProvisionedThroughput-NovaPro-ModelUnits",
            "12.00",
        ),
        // Adjustments: no principal, no tags.
        ce_line(
            day(0),
            "Credit",
            "",
            &[],
            "Amazon Bedrock",
            "USE1-Claude4.6Sonnet-input-tokens",
            "-25.00",
        ),
        ce_line(
            day(14),
            "Refund",
            "",
            &[],
            "Amazon Bedrock",
            "USE1-Claude4.6Sonnet-input-tokens",
            "-3.00",
        ),
        ce_line(day(27), "Tax", "", &[], "Amazon Bedrock", "", "2.10"),
        // Not Bedrock, and Bedrock outside the period: never counted.
        ce_line(
            day(3),
            "Usage",
            ML_ROLE,
            &[("team", "ml")],
            "Amazon EC2",
            "USE1-BoxUsage:m5.large",
            "999.00",
        ),
        ce_line(
            first - chrono::Duration::days(1),
            "Usage",
            ML_ROLE,
            &[("team", "ml")],
            "Amazon Bedrock",
            "USE1-Claude4.6Sonnet-input-tokens",
            "40.00",
        ),
        ce_line(
            next,
            "Usage",
            ML_ROLE,
            &[("team", "ml")],
            "Amazon Bedrock",
            "USE1-Claude4.6Sonnet-input-tokens",
            "50.00",
        ),
    ]
}

async fn seeded_emulator() -> Emulator {
    let emu = Emulator::start();
    emu.load_ce_lines(&bill()).await;
    emu
}

/// (tag:team value, amount, untagged, no_principal) of each row.
fn team_rows(out: &serde_json::Value) -> Vec<(String, f64, bool, bool)> {
    out["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["keys"]["tag:team"].as_str().unwrap().to_string(),
                r["amount"].as_f64().unwrap(),
                r["untagged"].as_bool().unwrap(),
                r["no_principal"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// (line_item_type, amount) of each adjustment, sorted.
fn adjustments(out: &serde_json::Value) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = out["adjustments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            assert_eq!(a["in_net"], json!(false), "{a}");
            (
                a["line_item_type"].as_str().unwrap().to_string(),
                a["amount"].as_f64().unwrap(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The RECORD_TYPE clause of a GetCostAndUsage filter: (negated, values).
fn record_type_clause(body: &serde_json::Value) -> Option<(bool, Vec<String>)> {
    let parts = body["Filter"]["And"].as_array()?;
    parts.iter().find_map(|p| {
        let (negated, dims) = match p.get("Not") {
            Some(inner) => (true, &inner["Dimensions"]),
            None => (false, &p["Dimensions"]),
        };
        (dims["Key"] == json!("RECORD_TYPE")).then(|| {
            (
                negated,
                serde_json::from_value(dims["Values"].clone()).unwrap(),
            )
        })
    })
}

/// The GroupBy of a request as "TYPE:Key" strings.
fn group_by(body: &serde_json::Value) -> Vec<String> {
    body["GroupBy"]
        .as_array()
        .map(|g| {
            g.iter()
                .map(|d| {
                    format!(
                        "{}:{}",
                        d["Type"].as_str().unwrap(),
                        d["Key"].as_str().unwrap()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The three requests of a grouped answer with an untagged group and no tag filter, checked:
/// usage grouped by the tag (usage record types only), the untagged group by usage type (usage
/// record types only, the tag ABSENT), and the adjustments by record type (all but usage).
fn check_three_requests(bodies: &[serde_json::Value]) {
    let usage: Vec<String> = USAGE_TYPES
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    let mut kinds: Vec<Vec<String>> = bodies.iter().map(group_by).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            vec!["DIMENSION:RECORD_TYPE".to_string()],
            vec!["DIMENSION:USAGE_TYPE".to_string()],
            vec!["TAG:iamPrincipal/team".to_string()],
        ],
        "{bodies:#?}"
    );
    for b in bodies {
        let clause = record_type_clause(b).unwrap_or_else(|| panic!("no RECORD_TYPE clause: {b}"));
        let adjustments = group_by(b) == ["DIMENSION:RECORD_TYPE"];
        assert_eq!(clause, (adjustments, usage.clone()), "{b}");
        let filter = b["Filter"].to_string();
        if group_by(b) == ["DIMENSION:USAGE_TYPE"] {
            assert!(
                filter.contains("iamPrincipal/team") && filter.contains("ABSENT"),
                "the split asks for the untagged lines only: {filter}"
            );
        }
    }
}

#[tokio::test]
async fn spend_table_with_untagged_row_reconciles_and_second_call_is_cached() {
    let emu = seeded_emulator().await;
    let client = stdio_client(Some(&emu), &[], &[]).await;
    let r = call(&client, "bedrock_spend", json!({"period": "last_month"})).await;
    let out = ok(&r);
    // Figures by hand: see `bill`.
    assert_eq!(
        team_rows(&out),
        vec![
            ("ml".into(), 123.45, false, false),
            ("web".into(), 20.0, false, false),
            ("no_principal".into(), 16.4, false, true),
            ("untagged".into(), 7.1, true, false),
        ]
    );
    assert_eq!(out["total"], json!(166.95));
    assert_eq!(
        out["reconciliation"],
        json!({"named": 143.45, "untagged": 7.1, "no_principal": 16.4, "others": 0.0, "total": 166.95, "reconciled": true})
    );
    // Credits and refunds are in no group (the untagged group is the intern's 7.10 alone) but
    // beside the total; netted in, the groups would add up to 141.05 (see `bill`).
    assert_eq!(
        adjustments(&out),
        vec![
            ("Credit".into(), -25.0),
            ("Refund".into(), -3.0),
            ("Tax".into(), 2.1)
        ]
    );
    let (start, _) = last_month();
    assert!(
        out["adjustments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["bucket"] == json!(start)),
        "{}",
        out["adjustments"]
    );
    assert_eq!(out["total_after_adjustments"], json!(141.05));
    let mut services: Vec<String> =
        serde_json::from_value(out["services_counted"].clone()).unwrap();
    services.sort();
    assert_eq!(
        services, SERVICES,
        "every *Bedrock* service name and nothing else"
    );
    assert_eq!(
        (
            out["source"].as_str(),
            out["metric"].as_str(),
            out["currency"].as_str()
        ),
        (Some("cost_explorer"), Some("UnblendedCost"), Some("USD"))
    );
    assert_eq!(
        out["paid_requests"],
        json!(4),
        "one GetDimensionValues + one page each of usage, the untagged split and adjustments"
    );
    assert_eq!(out["cached"], json!(false));
    assert_eq!(out["estimated"], json!(false));
    let (start, end) = last_month();
    assert_eq!(out["period"], json!({"start": start, "end": end}));
    let table = text(&r);
    assert!(
        table.contains("untagged")
            && table.contains("no_principal")
            && table.contains("166.95")
            && table.contains("141.05")
            && table.contains("reconciled"),
        "{table}"
    );
    assert_eq!(
        (
            emu.count("GetCostAndUsage").await,
            emu.count("GetDimensionValues").await
        ),
        (3, 1)
    );
    check_three_requests(&emu.requests("GetCostAndUsage").await);

    let again = ok(&call(&client, "bedrock_spend", json!({"period": "last_month"})).await);
    assert_eq!(
        (again["paid_requests"].clone(), again["cached"].clone()),
        (json!(0), json!(true))
    );
    assert_eq!(again["total"], json!(166.95));
    assert_eq!(again["reconciliation"], out["reconciliation"]);
    assert_eq!(again["adjustments"], out["adjustments"]);
    assert_eq!(
        (
            emu.count("GetCostAndUsage").await,
            emu.count("GetDimensionValues").await
        ),
        (3, 1),
        "no new paid request"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn pages_through_next_page_token() {
    let emu = Emulator::start();
    let (first, _) = last_month_dates();
    let day = |n: i64| first + chrono::Duration::days(n);
    const DATA_ROLE: &str = "arn:aws:sts::123456789012:assumed-role/DataRole/etl";
    emu.load_ce_lines(&[
        ce_line(
            day(1),
            "Usage",
            ML_ROLE,
            &[("team", "ml")],
            "Amazon Bedrock",
            "USE1-Claude4.6Sonnet-input-tokens",
            "100.00",
        ),
        ce_line(
            day(2),
            "Usage",
            WEB_DEV,
            &[("team", "web")],
            "Amazon Bedrock",
            "USE1-NovaLite-input-tokens",
            "50.00",
        ),
        ce_line(
            day(3),
            "Usage",
            DATA_ROLE,
            &[("team", "data")],
            "Amazon Bedrock",
            "USE1-NovaPro-output-tokens",
            "25.00",
        ),
        ce_line(
            day(4),
            "Usage",
            INTERN,
            &[],
            "Amazon Bedrock",
            "USE1-Claude4.5Haiku-input-tokens",
            "4.00",
        ),
        ce_line(
            day(5),
            "Usage",
            INTERN,
            &[],
            "Amazon Bedrock",
            "USE1-Claude4.5Haiku-output-tokens",
            "1.00",
        ),
        ce_line(
            day(6),
            "Usage",
            "",
            &[],
            "Amazon Bedrock AgentCore",
            "USE1-AgentCore-Runtime-vCPU-Hours",
            "3.00",
        ),
        ce_line(
            day(0),
            "Credit",
            "",
            &[],
            "Amazon Bedrock",
            "USE1-Claude4.6Sonnet-input-tokens",
            "-10.00",
        ),
        ce_line(
            day(7),
            "Refund",
            "",
            &[],
            "Amazon Bedrock",
            "USE1-Claude4.6Sonnet-input-tokens",
            "-2.00",
        ),
        ce_line(day(8), "Tax", "", &[], "Amazon Bedrock", "", "0.50"),
    ])
    .await;
    // Two groups a page: the usage answer has 4 groups (team$ = 4.00 + 1.00 + 3.00, data, ml,
    // web), the untagged split 3 (the intern's two usage types, AgentCore's), the adjustments 3
    // (Credit, Refund, Tax): two pages each.
    emu.ce_page_size(2).await;
    let (start, end) = last_month();
    let client = stdio_client(Some(&emu), &[], &[]).await;
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": {"start": start, "end": end}}),
    )
    .await);
    // 100.00 + 50.00 + 25.00 + 4.00 + 1.00 + 3.00 = 183.00: named 175.00, untagged 4.00 + 1.00,
    // no_principal 3.00; rows ml, web, data, untagged, no_principal.
    assert_eq!(out["total"], json!(183.0));
    assert_eq!(
        team_rows(&out),
        vec![
            ("ml".into(), 100.0, false, false),
            ("web".into(), 50.0, false, false),
            ("data".into(), 25.0, false, false),
            ("untagged".into(), 5.0, true, false),
            ("no_principal".into(), 3.0, false, true),
        ]
    );
    assert_eq!(
        out["reconciliation"],
        json!({"named": 175.0, "untagged": 5.0, "no_principal": 3.0, "others": 0.0, "total": 183.0, "reconciled": true})
    );
    assert_eq!(
        adjustments(&out),
        vec![
            ("Credit".into(), -10.0),
            ("Refund".into(), -2.0),
            ("Tax".into(), 0.5)
        ]
    );
    // 183.00 - 10.00 - 2.00 + 0.50
    assert_eq!(out["total_after_adjustments"], json!(171.5));
    assert_eq!(
        out["paid_requests"],
        json!(7),
        "service discovery + two pages each of usage, the untagged split and adjustments"
    );
    assert_eq!(emu.count("GetCostAndUsage").await, 6);
    let bodies = emu.requests("GetCostAndUsage").await;
    let firsts: Vec<serde_json::Value> = bodies
        .iter()
        .filter(|b| b.get("NextPageToken").is_none())
        .cloned()
        .collect();
    check_three_requests(&firsts);
    // Each second page is its first page's request with the token the first page gave.
    for b in bodies.iter().filter(|b| b.get("NextPageToken").is_some()) {
        let mut without = b.clone();
        without.as_object_mut().unwrap().remove("NextPageToken");
        assert!(firsts.contains(&without), "a page of no first request: {b}");
    }
    assert_eq!(bodies.len() - firsts.len(), 3, "{bodies:#?}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn concurrent_identical_calls_make_one_request() {
    let emu = seeded_emulator().await;
    emu.latency(1000).await;
    let server = HttpServer::start(Some(&emu), &[], &[]);
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let url = server.url.clone();
        tasks.push(tokio::spawn(async move {
            let client: Client = rmcp::ServiceExt::serve(
                (),
                rmcp::transport::StreamableHttpClientTransport::from_uri(url),
            )
            .await
            .unwrap();
            let r = call(&client, "bedrock_spend", json!({"period": "last_month"})).await;
            let out = ok(&r);
            (
                out["total"].as_f64().unwrap(),
                out["reconciliation"]["no_principal"].as_f64().unwrap(),
            )
        }));
    }
    for t in tasks {
        // See `bill`: 166.95, of which 16.40 without a principal.
        assert_eq!(t.await.unwrap(), (166.95, 16.4));
    }
    assert_eq!(
        emu.count("GetCostAndUsage").await,
        3,
        "single-flight: one request per distinct request (usage, untagged split, adjustments) for six identical calls"
    );
    check_three_requests(&emu.requests("GetCostAndUsage").await);
    assert_eq!(emu.count("GetDimensionValues").await, 1);
}

#[tokio::test]
async fn hourly_cap_refuses_further_paid_requests_but_serves_cache() {
    let emu = seeded_emulator().await;
    // Four: service discovery and the three requests of last month's answer.
    let client = stdio_client(Some(&emu), &["--ce-max-requests-per-hour", "4"], &[]).await;
    let first = ok(&call(&client, "bedrock_spend", json!({"period": "last_month"})).await);
    assert_eq!(first["paid_requests"], json!(4));
    let e = err(&call(&client, "bedrock_spend", json!({"period": "last_7_days"})).await);
    assert!(
        e.contains("paid request cap") && e.contains("--ce-max-requests-per-hour"),
        "{e}"
    );
    let cached = ok(&call(&client, "bedrock_spend", json!({"period": "last_month"})).await);
    assert_eq!(cached["cached"], json!(true));
    assert_eq!(cached["total"], json!(166.95));
    assert_eq!(emu.count("GetCostAndUsage").await, 3);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn aws_errors_become_actionable_tool_errors() {
    let emu = seeded_emulator().await;
    let client = stdio_client(Some(&emu), &[], &[("AWS_MAX_ATTEMPTS", "1")]).await;
    emu.fault("GetCostAndUsage", "AccessDeniedException", 1)
        .await;
    let e = err(&call(&client, "bedrock_spend", json!({"period": "last_month"})).await);
    assert!(
        e.contains("ce:GetCostAndUsage") && e.contains("access denied"),
        "{e}"
    );
    emu.fault("GetCostAndUsage", "LimitExceededException", 1)
        .await;
    let e = err(&call(&client, "bedrock_spend", json!({"period": "last_month"})).await);
    assert!(
        e.contains("throttled") && e.contains("LimitExceededException") && e.contains("minute"),
        "{e}"
    );
    // Errors are not cached: the next call succeeds (see `bill` for 166.95).
    let out = ok(&call(&client, "bedrock_spend", json!({"period": "last_month"})).await);
    assert_eq!(out["total"], json!(166.95));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn malformed_answers_are_reported_not_dropped() {
    let emu = seeded_emulator().await;
    let client = stdio_client(Some(&emu), &[], &[("AWS_MAX_ATTEMPTS", "1")]).await;
    let (start, end) = last_month();
    emu.post(
        "/_emulator/faults",
        json!({"operation": "GetCostAndUsage", "status": 200, "body": json!({"ResultsByTime": [{"TimePeriod": {"Start": start, "End": end}, "Groups": [{"Keys": ["iamPrincipal/team$ml"], "Metrics": {"UnblendedCost": {"Amount": "12,5", "Unit": "USD"}}}]}]}).to_string()}),
    )
    .await;
    let e = err(&call(&client, "bedrock_spend", json!({"period": "last_month"})).await);
    assert!(e.contains("malformed") && e.contains("12,5"), "{e}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn bad_input_names_the_accepted_forms() {
    let emu = seeded_emulator().await;
    let client = stdio_client(Some(&emu), &[], &[]).await;
    let cases = [
        (json!({"period": "yesterday"}), "last_month"),
        (
            json!({"period": {"start": "2026-02-30", "end": "2026-03-01"}}),
            "YYYY-MM-DD",
        ),
        (
            json!({"period": {"start": "2026-10-05", "end": "2026-10-01"}}),
            "end is exclusive",
        ),
        (
            json!({"period": {"start": "2099-01-01", "end": "2099-02-01"}}),
            "future",
        ),
        (
            json!({"period": {"start": "2020-01-01", "end": "2020-02-01"}}),
            "13 months",
        ),
        (json!({"group_by": ["owner"]}), "tag:<key>"),
        (json!({"group_by": ["principal"]}), "--cur"),
        // A string is read as a one-item list (tools::lenient); a number cannot be one.
        (json!({"group_by": 5}), "group_by: expected a list"),
        (json!({"top_n": "many"}), "top_n must be a whole number"),
        (
            json!({"granularity": "hourly"}),
            "granularity: the string \"hourly\" is not one of the accepted values",
        ),
        (json!({"periodd": "last_month"}), "unknown field"),
        (json!({"source": "cur"}), "--cur PATH"),
        (json!({"cursor": "garbage"}), "next_cursor"),
    ];
    for (args, needle) in cases {
        let e = err(&call(&client, "bedrock_spend", args.clone()).await);
        assert!(e.contains(needle), "{args} -> {e}");
    }
    assert_eq!(
        emu.count("GetCostAndUsage").await,
        0,
        "bad input never reaches AWS"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_tag_key_with_no_values_says_it_may_not_be_activated() {
    let emu = Emulator::start();
    let (first, _) = last_month_dates();
    let day = |n: i64| first + chrono::Duration::days(n);
    // Principals tagged with team, none with owner; and AgentCore compute without a principal.
    emu.load_ce_lines(&[
        ce_line(
            day(2),
            "Usage",
            ML_ROLE,
            &[("team", "ml")],
            "Amazon Bedrock",
            "USE1-Claude4.6Sonnet-input-tokens",
            "30.00",
        ),
        ce_line(
            day(3),
            "Usage",
            WEB_DEV,
            &[("team", "web")],
            "Amazon Bedrock",
            "USE1-NovaLite-input-tokens",
            "12.00",
        ),
        ce_line(
            day(4),
            "Usage",
            "",
            &[],
            "Amazon Bedrock AgentCore",
            "USE1-AgentCore-Runtime-vCPU-Hours",
            "2.00",
        ),
    ])
    .await;
    let client = stdio_client(Some(&emu), &[], &[]).await;
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "group_by": ["tag:owner"]}),
    )
    .await);
    // Untagged for owner: 30.00 + 12.00 = 42.00; the AgentCore 2.00 has no principal at all.
    assert_eq!(
        out["reconciliation"],
        json!({"named": 0.0, "untagged": 42.0, "no_principal": 2.0, "others": 0.0, "total": 44.0, "reconciled": true})
    );
    let notes = out["notes"].to_string();
    assert!(
        notes.contains("not be activated") && notes.contains("iamPrincipal/owner"),
        "{notes}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn missing_credentials_say_how_to_configure() {
    let client = stdio_client(None, &[], &[("AWS_MAX_ATTEMPTS", "1")]).await;
    let e = err(&call(&client, "bedrock_spend", json!({"period": "last_month"})).await);
    assert!(
        e.contains("no AWS credentials") && e.contains("--demo"),
        "{e}"
    );
    client.cancel().await.unwrap();
}

/// On a shared HTTP server each authenticated caller gets its own share of the paid requests
/// (--ce-max-requests-per-caller-per-hour): one caller using it up does not block another, and
/// cached answers stay free.
#[tokio::test]
async fn per_caller_share_of_paid_requests_over_http() {
    let emu = seeded_emulator().await;
    let (first, _) = last_month_dates();
    let sha = |t: &str| -> String {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, t.as_bytes());
        d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    };
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        format!(
            "[[token]]\nname = \"alice\"\nsha256 = \"{}\"\nscopes = [\"cost.read\"]\n\n\
             [[token]]\nname = \"bob\"\nsha256 = \"{}\"\nscopes = [\"cost.read\"]\n",
            sha("tok-alice-91c2"),
            sha("tok-bob-5d07")
        ),
    )
    .unwrap();
    // Four a caller: service discovery and the three requests of last month's answer.
    let server = HttpServer::start(
        Some(&emu),
        &["--ce-max-requests-per-caller-per-hour", "4"],
        &[("BEDROCK_COST_MCP_AUTH_TOKENS", tokens.to_str().unwrap())],
    );
    let alice = server.client_with_token("tok-alice-91c2").await.unwrap();
    let bob = server.client_with_token("tok-bob-5d07").await.unwrap();
    let day = |d: i64| {
        let s = first + chrono::Duration::days(d);
        json!({"period": {"start": s.to_string(), "end": (s + chrono::Duration::days(1)).to_string()}})
    };
    let a1 = ok(&call(&alice, "bedrock_spend", json!({"period": "last_month"})).await);
    assert_eq!(
        a1["paid_requests"],
        json!(4),
        "GetDimensionValues + GetCostAndUsage for usage, the untagged split and adjustments"
    );
    assert_eq!(a1["total"], json!(166.95));
    let e = err(&call(&alice, "bedrock_spend", day(4)).await);
    assert!(
        e.contains("caller 'alice'") && e.contains("per-caller cap 4"),
        "{e}"
    );
    // Cached answers stay free for her; Bob has his own share.
    let again = ok(&call(&alice, "bedrock_spend", json!({"period": "last_month"})).await);
    assert_eq!(
        (again["paid_requests"].clone(), again["cached"].clone()),
        (json!(0), json!(true))
    );
    // Day 4 of last month holds web-dev's 20.00 alone (see `bill`): no untagged group to split,
    // so usage and adjustments (none that day); the service names are shared from the cache.
    let b = ok(&call(&bob, "bedrock_spend", day(4)).await);
    assert_eq!(b["total"], json!(20.0));
    assert_eq!(b["adjustments"], json!([]));
    assert_eq!(b["paid_requests"], json!(2));
    assert_eq!(emu.count("GetCostAndUsage").await, 3 + 2);
    assert_eq!(emu.count("GetDimensionValues").await, 1);
}
