//! `estimate_cost` and `check_budget` against the emulator: Price List
//! (per-1K and per-1M units, cache, fallbacks), AWS Budgets (moto) and the
//! local policy with their precedence, STS caller identity, the unbilled
//! ledger across calls and processes, and the verdict thresholds.

use crate::common::*;
use aws_sdk_budgets::types::{Budget, BudgetType, Expression, Spend, TagValues, TimeUnit};
use aws_sdk_iam::types::Tag;
use serde_json::{Value, json};

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

#[tokio::test]
async fn prices_come_from_the_price_list_in_either_unit_and_are_cached() {
    let emu = Emulator::start();
    let cache = tempfile::tempdir().unwrap();
    let client = stdio_client(
        Some(&emu),
        &["--price-cache-dir", cache.path().to_str().unwrap()],
        &[],
    )
    .await;
    // Claude is priced per 1M tokens (in-region price, 3.30/16.50 per 1M).
    let out = ok(&call(&client, "estimate_cost", json!({"model": "us.anthropic.claude-sonnet-4-6-v1:0", "input_tokens": 1_000_000, "output_tokens": 100_000, "cache_read_tokens": 200_000})).await);
    assert_eq!(out["price_source"], json!("price_list"));
    assert_eq!(out["model"], json!("Claude Sonnet 4.6"));
    assert!(
        (out["cost_usd"].as_f64().unwrap() - (3.30 + 1.65 + 0.066)).abs() < 1e-9,
        "{}",
        out["cost_usd"]
    );
    assert!((out["unit_prices_per_1k"]["input_per_1k"].as_f64().unwrap() - 0.0033).abs() < 1e-12);
    // Nova is priced per 1K tokens.
    let nova = ok(&call(
        &client,
        "estimate_cost",
        json!({"model": "amazon.nova-lite-v1:0", "input_tokens": 10_000, "output_tokens": 1_000}),
    )
    .await);
    assert!((nova["cost_usd"].as_f64().unwrap() - (10.0 * 0.00006 + 0.00024)).abs() < 1e-12);
    let calls = emu.count("GetProducts").await;
    assert!(calls >= 2, "both service codes asked");
    ok(&call(
        &client,
        "estimate_cost",
        json!({"model": "Claude Haiku 4.5", "input_tokens": 1}),
    )
    .await);
    assert_eq!(emu.count("GetProducts").await, calls, "prices cached");
    assert!(
        cache.path().join("prices-us-east-1.json").exists(),
        "disk cache written"
    );

    let e = err(&call(
        &client,
        "estimate_cost",
        json!({"model": "claude-sonet-4.6", "input_tokens": 1}),
    )
    .await);
    assert!(
        e.contains("unknown model") && e.contains("Claude Sonnet 4.6"),
        "{e}"
    );
    let e = err(&call(
        &client,
        "estimate_cost",
        json!({"model": "Claude Haiku 4.5", "input_tokens": 1_000_000_000_000u64}),
    )
    .await);
    assert!(e.contains("not plausible"), "{e}");
    let e = err(&call(
        &client,
        "estimate_cost",
        json!({"model": "Claude Haiku 4.5", "input_tokens": -5}),
    )
    .await);
    assert!(e.contains("input_tokens") && e.contains("from 0"), "{e}");
    client.cancel().await.unwrap();

    // A new process within the week uses the disk cache without asking AWS.
    let client = stdio_client(
        Some(&emu),
        &["--price-cache-dir", cache.path().to_str().unwrap()],
        &[],
    )
    .await;
    let out = ok(&call(
        &client,
        "estimate_cost",
        json!({"model": "Claude Haiku 4.5", "input_tokens": 1000}),
    )
    .await);
    assert_eq!(out["price_source"], json!("price_cache"));
    assert_eq!(emu.count("GetProducts").await, calls);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn falls_back_to_the_dated_snapshot_when_the_price_list_fails() {
    let emu = Emulator::start();
    emu.post("/_emulator/faults", json!({"operation": "GetProducts", "status": 403, "error_type": "AccessDeniedException", "message": "no", "times": 10})).await;
    let cache = tempfile::tempdir().unwrap();
    let client = stdio_client(
        Some(&emu),
        &["--price-cache-dir", cache.path().to_str().unwrap()],
        &[("AWS_MAX_ATTEMPTS", "1")],
    )
    .await;
    let out = ok(&call(
        &client,
        "estimate_cost",
        json!({"model": "anthropic.claude-sonnet-4-6", "input_tokens": 1_000_000}),
    )
    .await);
    assert_eq!(out["price_source"], json!("snapshot"));
    assert_eq!(out["prices_as_of"], json!("2026-11-01"));
    assert!(
        out["notes"].to_string().contains("pricing:GetProducts"),
        "{}",
        out["notes"]
    );
    assert_eq!(out["cost_usd"], json!(3.0));
    client.cancel().await.unwrap();
}

async fn seed_account(emu: &Emulator) {
    let conf = sdk_config(emu).await;
    let iam = aws_sdk_iam::Client::new(&conf);
    iam.create_role()
        .role_name("MlRole")
        .assume_role_policy_document(TRUST)
        .tags(
            Tag::builder()
                .key("team")
                .value("ml-platform")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    iam.create_role()
        .role_name("PlainRole")
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .unwrap();
    let budgets = aws_sdk_budgets::Client::new(&conf);
    budgets
        .create_budget()
        .account_id("123456789012")
        .budget(
            Budget::builder()
                .budget_name("ml-platform-bedrock")
                .budget_limit(Spend::builder().amount("100").unit("USD").build().unwrap())
                .time_unit(TimeUnit::Monthly)
                .budget_type(BudgetType::Cost)
                .filter_expression(
                    Expression::builder()
                        .tags(
                            TagValues::builder()
                                .key("iamPrincipal/team")
                                .values("ml-platform")
                                .build(),
                        )
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    emu.seed_services(&["Amazon Bedrock"]).await;
    // $60 of ml-platform usage this month, spread over the billed days (see `billed_days`),
    // a credit and another team's usage that a budget on ml-platform must not count; Cost
    // Explorer is computed from these lines by the emulator.
    let days = billed_days();
    let per_day = 60.0 / days.len() as f64;
    let mut lines: Vec<Value> = days
        .iter()
        .map(|d| {
            json!({"line_item_usage_start_date": d.to_string(), "line_item_line_item_type": "Usage",
                   "line_item_iam_principal": "arn:aws:sts::123456789012:assumed-role/MlRole/session-1",
                   "line_item_usage_type": "USE1-Claude4.5Haiku-input-tokens",
                   "line_item_unblended_cost": per_day, "line_item_currency_code": "USD",
                   "product": {"servicename": "Amazon Bedrock"}, "tags": {"iamPrincipal/team": "ml-platform"}})
        })
        .collect();
    let first = days[0].to_string();
    lines.push(json!({"line_item_usage_start_date": first, "line_item_line_item_type": "Credit",
                      "line_item_unblended_cost": -25.0, "product": {"servicename": "Amazon Bedrock"}}));
    lines.push(json!({"line_item_usage_start_date": first, "line_item_line_item_type": "Usage",
                      "line_item_iam_principal": "arn:aws:iam::123456789012:user/web-dev",
                      "line_item_unblended_cost": 500.0, "product": {"servicename": "Amazon Bedrock"},
                      "tags": {"iamPrincipal/team": "web"}}));
    // Last month, two more Bedrock-family services had spend (AgentCore compute without a
    // principal, a Marketplace model edition): Cost Explorer lists them among the services.
    let (last_month_first, _) = last_month_dates();
    for service in [
        "Amazon Bedrock AgentCore",
        "Claude Sonnet 4.6 (Amazon Bedrock Edition)",
    ] {
        lines.push(
            json!({"line_item_usage_start_date": last_month_first.to_string(),
                          "line_item_line_item_type": "Usage", "line_item_unblended_cost": 3.0,
                          "product": {"servicename": service}}),
        );
    }
    emu.post("/_emulator/ce/line-items", json!({"line_items": lines}))
        .await;
}

/// The days of this month with billed spend in the seeded account: the 1st through two days
/// ago (billing lags usage by 24-48 h), or just the 1st early in a month.
pub fn billed_days() -> Vec<chrono::NaiveDate> {
    use chrono::Datelike;
    let today = crate::common::today();
    let first = today.with_day(1).unwrap();
    let last = (today - chrono::Duration::days(2)).max(first);
    (0..=(last - first).num_days())
        .map(|i| first + chrono::Duration::days(i))
        .collect()
}

/// Month-to-date spend projected to the month's end: spend / billed days x days in the month,
/// on the tests' calendar (the README's rule).
pub fn linear_forecast(spent: f64) -> f64 {
    use chrono::Datelike;
    let first = crate::common::today().with_day(1).unwrap();
    let next = (first + chrono::Duration::days(32)).with_day(1).unwrap();
    let days = (next - first).num_days() as f64;
    spent / billed_days().len() as f64 * days
}

#[tokio::test]
async fn verdicts_follow_the_budget_and_the_ledger_sees_unbilled_checks() {
    let emu = Emulator::start();
    seed_account(&emu).await;
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.json");
    let args = ["--ledger", ledger.to_str().unwrap()];
    let client = stdio_client(Some(&emu), &args, &[]).await;
    let who = "arn:aws:sts::123456789012:assumed-role/MlRole/session-1";
    let first = ok(&call(&client, "check_budget", json!({"who": who, "cost_usd": 10})).await);
    // 70% of the budget after the call is under the warn threshold (80%); the verdict then
    // follows the month-end forecast: $60 spent so far (the credit and the web team's $500 are
    // not the budget's), projected linearly over the month from the billed days on the tests'
    // calendar (by hand, as the README describes it).
    let forecast = linear_forecast(60.0);
    let expected = if forecast > 100.0 { "warn" } else { "allow" };
    assert_eq!(first["verdict"], json!(expected), "{first}");
    assert!(
        (first["forecast"].as_f64().unwrap() - forecast).abs() < 0.01 * forecast,
        "forecast {} vs {forecast} by hand",
        first["forecast"]
    );
    assert_eq!(first["budget"]["name"], json!("ml-platform-bedrock"));
    assert_eq!(first["budget"]["source"], json!("aws_budgets"));
    assert_eq!(
        first["budget"]["scope"],
        json!({"kind": "tag", "key": "team", "value": "ml-platform"})
    );
    assert_eq!(
        (first["spent"].clone(), first["spent_source"].clone()),
        (json!(60.0), json!("cost_explorer"))
    );
    assert_eq!(
        (
            first["unbilled"].clone(),
            first["remaining_after"].clone(),
            first["percent_after"].clone()
        ),
        (json!(0.0), json!(30.0), json!(70.0))
    );
    assert_eq!(first["ledger_recorded"], json!(true));

    let second = ok(&call(&client, "check_budget", json!({"who": who, "cost_usd": 15})).await);
    assert_eq!(second["verdict"], json!("warn"), "{second}");
    assert_eq!(
        (
            second["unbilled"].clone(),
            second["unbilled_checks"].clone(),
            second["percent_after"].clone()
        ),
        (json!(10.0), json!(1), json!(85.0))
    );
    let third = ok(&call(&client, "check_budget", json!({"who": who, "cost_usd": 30})).await);
    assert_eq!(third["verdict"], json!("deny"));
    assert_eq!(
        third["ledger_recorded"],
        json!(false),
        "a denied call is not recorded"
    );
    assert!(third["reasons"].to_string().contains("deny threshold"));
    assert_eq!(
        emu.count("GetCostAndUsage").await,
        1,
        "spend is cached between checks"
    );
    client.cancel().await.unwrap();

    // The ledger persists across processes.
    let client = stdio_client(Some(&emu), &args, &[]).await;
    let again = ok(&call(
        &client,
        "check_budget",
        json!({"who": "tag:team=ml-platform", "cost_usd": 1}),
    )
    .await);
    assert_eq!(
        (again["unbilled"].clone(), again["unbilled_checks"].clone()),
        (json!(25.0), json!(2))
    );
    // No budget applies to an untagged role.
    let none = ok(&call(
        &client,
        "check_budget",
        json!({"who": "PlainRole", "cost_usd": 1}),
    )
    .await);
    assert_eq!(none["verdict"], json!("allow"));
    assert!(none["budget"].is_null() && none["reasons"].to_string().contains("no budget applies"));
    let e = err(&call(
        &client,
        "check_budget",
        json!({"who": "NoSuchRole", "cost_usd": 1}),
    )
    .await);
    assert!(e.contains("matches no IAM user or role"), "{e}");
    let e = err(&call(&client, "check_budget", json!({"who": who})).await);
    assert!(e.contains("planned call"), "{e}");
    let e = err(&call(&client, "check_budget", json!({"who": who, "cost_usd": -1})).await);
    assert!(e.contains("between 0"), "{e}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn local_policy_precedence_caller_default_and_budgets_denied() {
    let emu = Emulator::start();
    seed_account(&emu).await;
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "warn_percent = 50\ndeny_percent = 90\n[default]\nmonthly_usd = 5\n[[budgets]]\nrole = \"MlRole\"\nmonthly_usd = 1000\n[[budgets]]\ntag = \"team=ml-platform\"\nmonthly_usd = 2000\n",
    )
    .unwrap();
    let args = [
        "--budget-policy",
        policy.to_str().unwrap(),
        "--ledger",
        dir.path()
            .join("l.json")
            .to_str()
            .unwrap()
            .to_string()
            .leak(),
    ];
    let client = stdio_client(Some(&emu), &args, &[("AWS_MAX_ATTEMPTS", "1")]).await;
    // The role entry is more specific than the AWS tag budget.
    let out = ok(&call(&client, "check_budget", json!({"who": "arn:aws:sts::123456789012:assumed-role/MlRole/s", "model": "Claude Haiku 4.5", "input_tokens": 1000000})).await);
    assert_eq!(
        (
            out["budget"]["source"].clone(),
            out["budget"]["limit_usd"].clone()
        ),
        (json!("local_policy"), json!(1000.0))
    );
    assert_eq!(
        out["planned_cost"],
        json!(1.1),
        "in-region Haiku price from the Price List"
    );
    // The caller (STS) defaults `who`; moto's caller is a user no budget names, so the default applies.
    let me = ok(&call(&client, "check_budget", json!({"cost_usd": 4})).await);
    assert!(
        me["who"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:sts::123456789012:user/")
            || me["who"].as_str().unwrap().contains(":user/"),
        "{}",
        me["who"]
    );
    assert!(me["notes"].to_string().contains("caller's identity"));
    assert_eq!(
        (me["budget"]["name"].clone(), me["verdict"].clone()),
        (json!("default"), json!("warn")),
        "{me}"
    );
    // Budgets are cached: no new DescribeBudgets within five minutes.
    assert_eq!(emu.count("DescribeBudgets").await, 1);
    client.cancel().await.unwrap();
    // AWS Budgets refused (a fresh process, nothing cached): the local policy still answers, and says so.
    let client = stdio_client(Some(&emu), &args, &[("AWS_MAX_ATTEMPTS", "1")]).await;
    emu.fault("DescribeBudgets", "AccessDeniedException", 1)
        .await;
    let out = ok(&call(
        &client,
        "check_budget",
        json!({"who": "tag:team=ml-platform", "cost_usd": 1}),
    )
    .await);
    assert_eq!(
        (
            out["budget"]["source"].clone(),
            out["budget"]["limit_usd"].clone()
        ),
        (json!("local_policy"), json!(2000.0))
    );
    assert!(
        out["notes"].to_string().contains("AWS Budgets unavailable"),
        "{}",
        out["notes"]
    );
    client.cancel().await.unwrap();

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[budgets]]\nmonthly_usd = 5\n").unwrap();
    let out = crate::common::command()
        .args(["--budget-policy", bad.to_str().unwrap(), "--demo", "serve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exactly one of tag, role, principal"));
}

#[tokio::test]
async fn account_wide_bedrock_budgets_use_the_cost_explorer_forecast() {
    let emu = Emulator::start();
    seed_account(&emu).await;
    // The Bedrock-family services Cost Explorer lists (seed_account gives two of them spend
    // last month only).
    let services = [
        "Amazon Bedrock",
        "Amazon Bedrock AgentCore",
        "Claude Sonnet 4.6 (Amazon Bedrock Edition)",
    ];
    emu.post(
        "/_emulator/ce/forecast",
        json!({"Total": {"Amount": "240.0", "Unit": "USD"}, "ForecastResultsByTime": []}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[[budgets]]\nname = \"all-bedrock\"\nbedrock = true\nmonthly_usd = 1000\n",
    )
    .unwrap();
    let ledger = dir.path().join("l.json");
    let client = stdio_client(
        Some(&emu),
        &[
            "--budget-policy",
            policy.to_str().unwrap(),
            "--ledger",
            ledger.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    let out = ok(&call(
        &client,
        "check_budget",
        json!({"who": "PlainRole", "cost_usd": 1}),
    )
    .await);
    assert_eq!(out["budget"]["name"], json!("all-bedrock"));
    // The whole account's Bedrock usage: ml-platform's $60 and web's $500 (the -$25 credit is
    // not usage).
    assert_eq!(out["spent"], json!(560.0));
    assert_eq!(
        out["forecast"],
        json!(800.0),
        "spend so far + Cost Explorer's forecast of the rest"
    );
    assert!(
        out["forecast_method"]
            .as_str()
            .unwrap()
            .contains("GetCostForecast")
    );
    assert_eq!(out["verdict"], json!("allow"));
    assert_eq!(emu.count("GetCostForecast").await, 1);
    // The forecast covers every Bedrock-family service Cost Explorer lists, not a fixed pair.
    let asked = emu.requests("GetCostForecast").await;
    let mut values: Vec<String> = asked[0]["Filter"]["Dimensions"]["Values"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", asked[0]))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    values.sort();
    assert_eq!(values, services.map(String::from).to_vec());
    assert_eq!(asked[0]["Filter"]["Dimensions"]["Key"], json!("SERVICE"));
    client.cancel().await.unwrap();
}

/// A budget whose filter our spend sources cannot apply (here: a linked account beside the
/// team tag) is measured by AWS Budgets' own actual spend; our figure for its scope is shown
/// beside it, and the note says which part of the filter is why.
#[tokio::test]
async fn a_filter_we_cannot_reproduce_uses_the_budgets_own_actual_spend() {
    use aws_sdk_budgets::types::{
        CalculatedSpend, Dimension, ExpressionDimensionValues as DimensionValues,
    };
    let emu = Emulator::start();
    seed_account(&emu).await;
    let conf = sdk_config(&emu).await;
    let budgets = aws_sdk_budgets::Client::new(&conf);
    budgets
        .delete_budget()
        .account_id("123456789012")
        .budget_name("ml-platform-bedrock")
        .send()
        .await
        .unwrap();
    budgets
        .create_budget()
        .account_id("123456789012")
        .budget(
            Budget::builder()
                .budget_name("ml-platform-in-prod-account")
                .budget_limit(Spend::builder().amount("100").unit("USD").build().unwrap())
                .time_unit(TimeUnit::Monthly)
                .budget_type(BudgetType::Cost)
                .calculated_spend(
                    CalculatedSpend::builder()
                        .actual_spend(Spend::builder().amount("77").unit("USD").build().unwrap())
                        .build(),
                )
                .filter_expression(
                    Expression::builder()
                        .and(
                            Expression::builder()
                                .tags(
                                    TagValues::builder()
                                        .key("iamPrincipal/team")
                                        .values("ml-platform")
                                        .build(),
                                )
                                .build(),
                        )
                        .and(
                            Expression::builder()
                                .dimensions(
                                    DimensionValues::builder()
                                        .key(Dimension::LinkedAccount)
                                        .values("123456789012")
                                        .build()
                                        .unwrap(),
                                )
                                .build(),
                        )
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.json");
    let client = stdio_client(Some(&emu), &["--ledger", ledger.to_str().unwrap()], &[]).await;
    let who = "arn:aws:sts::123456789012:assumed-role/MlRole/session-1";
    let out = ok(&call(&client, "check_budget", json!({"who": who, "cost_usd": 1})).await);
    assert_eq!(
        out["budget"]["name"],
        json!("ml-platform-in-prod-account"),
        "{out}"
    );
    assert_eq!(out["spent"], json!(77.0), "AWS's own figure: {out}");
    assert_eq!(out["spent_source"], json!("aws_budgets"));
    assert_eq!(out["spent_computed"], json!(60.0), "ours, beside it");
    assert_eq!(out["budget"]["aws_actual_spend"], json!(77.0));
    let why = out["budget"]["not_reproduced"].to_string();
    assert!(why.contains("LINKED_ACCOUNT = 123456789012"), "{why}");
    assert!(
        out["notes"].to_string().contains("cannot reproduce"),
        "{}",
        out["notes"]
    );
    // 77 + 1 of 100 = 78%: under the warn threshold on AWS's figure.
    assert_eq!(out["percent_after"], json!(78.0));
    client.cancel().await.unwrap();
}

/// The price of the call the agent will make: its tier, a global or a geographic inference
/// profile, 5-minute or 1-hour cache writes, from both Price List offers, including Marketplace
/// rows that name their model only in the service name. Expected prices by hand from the
/// emulator's catalogue (tools/emulator/aws_emulator.py: Nova Lite $0.00006/$0.00024 per 1K,
/// batch and flex x0.5, priority x1.75; Claude per 1M on the global profile, +10% regional).
#[tokio::test]
async fn prices_follow_the_tier_the_profile_and_the_cache_kind() {
    let emu = Emulator::start();
    let cache = tempfile::tempdir().unwrap();
    let client = stdio_client(
        Some(&emu),
        &["--price-cache-dir", cache.path().to_str().unwrap()],
        &[],
    )
    .await;
    let price = |args: Value| {
        let client = &client;
        async move {
            let out = ok(&call(client, "estimate_cost", args.clone()).await);
            (out["cost_usd"].as_f64().unwrap(), out)
        }
    };
    let nova = |tier: &str| json!({"model": "amazon.nova-lite-v1:0", "input_tokens": 10_000, "output_tokens": 1_000, "tier": tier});
    let standard = 10.0 * 0.00006 + 0.00024;
    for (tier, factor) in [
        ("standard", 1.0),
        ("batch", 0.5),
        ("flex", 0.5),
        ("priority", 1.75),
    ] {
        let (cost, out) = price(nova(tier)).await;
        assert!(
            (cost - standard * factor).abs() < 1e-12,
            "{tier}: {cost} vs {}: {out}",
            standard * factor
        );
        assert_eq!(out["tier"], json!(tier));
    }
    // A global profile is priced at the global rate, a geographic one 10% higher.
    let (global, out) =
        price(json!({"model": "global.anthropic.claude-sonnet-4-6", "input_tokens": 1_000_000}))
            .await;
    assert!((global - 3.0).abs() < 1e-9, "{out}");
    assert_eq!(out["scope"], json!("global"));
    let (us, _) =
        price(json!({"model": "us.anthropic.claude-sonnet-4-6-v1:0", "input_tokens": 1_000_000}))
            .await;
    assert!((us - 3.3).abs() < 1e-9, "{us}");
    // 1-hour cache writes; Opus's rows carry no `model` attribute, only the service name.
    let (cw, out) = price(json!({"model": "global.anthropic.claude-opus-4-6", "cache_write_tokens": 1_000_000, "cache_write_1h_tokens": 1_000_000})).await;
    assert!((cw - (6.25 + 10.0)).abs() < 1e-9, "{out}");
    // A tier with no listed price: priced at the standard rate, and the answer says so.
    let (cost, out) =
        price(json!({"model": "Claude Opus 4.6", "input_tokens": 1_000_000, "tier": "flex"})).await;
    assert!((cost - 5.5).abs() < 1e-9, "{out}");
    assert_eq!(out["tier"], json!("standard"));
    assert!(
        out["notes"]
            .to_string()
            .contains("no flex in_region price is listed"),
        "{out}"
    );
    // A priority call with no priority price listed is refused, not priced from the cheaper
    // standard row (a budget check must not understate the call); the error lists what is.
    let e = err(&call(
        &client,
        "estimate_cost",
        json!({"model": "Claude Opus 4.6", "input_tokens": 1_000_000, "tier": "priority"}),
    )
    .await);
    assert!(
        e.contains("no priority in_region price is listed for Claude Opus 4.6")
            && e.contains("standard in_region"),
        "{e}"
    );
    let e = err(&call(
        &client,
        "check_budget",
        json!({"model": "Claude Opus 4.6", "input_tokens": 1_000_000, "tier": "priority"}),
    )
    .await);
    assert!(e.contains("no priority in_region price"), "{e}");
    // A model in neither offer names the offers searched.
    let e = err(&call(
        &client,
        "estimate_cost",
        json!({"model": "Claude Sonnet 9.9", "input_tokens": 1}),
    )
    .await);
    assert!(e.contains("AmazonBedrockFoundationModels"), "{e}");
    client.cancel().await.unwrap();
}
