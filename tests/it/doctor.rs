//! `bedrock-cost-mcp doctor`: the real binary against the AWS emulator and the Agent Registry
//! emulator on loopback. Every check's status is asserted by name, failures must name the IAM
//! action to grant, and Cost Explorer (paid) is counted at the emulator.

use std::collections::HashMap;

use crate::common::{Emulator, RegistryEmulator};
use serde_json::{Value, json};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("doctor --json printed no JSON ({e}): {}", self.stdout))
    }
}

/// Run `doctor` with hermetic AWS settings pointing at the emulators (`None`: no credentials);
/// `extra_env` adds variables, or removes those given an empty value.
fn doctor(
    emu: Option<&Emulator>,
    reg: Option<&RegistryEmulator>,
    args: &[&str],
    extra_env: &[(&str, &str)],
) -> Run {
    let mut cmd = crate::common::command();
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("BEDROCK_COST_MCP_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(crate::common::aws_env(emu));
    if let Some(r) = reg {
        cmd.envs(r.env());
    }
    // An empty value removes the variable.
    for (k, v) in extra_env {
        if v.is_empty() {
            cmd.env_remove(k);
        } else {
            cmd.env(k, v);
        }
    }
    let out = cmd.args(args).output().expect("run the binary");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// name -> (status, detail, fix) of every check.
fn checks(v: &Value) -> HashMap<String, (String, String, String)> {
    v["checks"]
        .as_array()
        .expect("checks array")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                (
                    c["status"].as_str().unwrap().to_string(),
                    c["detail"].as_str().unwrap().to_string(),
                    c["fix"].as_str().unwrap_or("").to_string(),
                ),
            )
        })
        .collect()
}

fn statuses(v: &Value) -> Vec<(String, String)> {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn expected(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The text table's line for a check.
fn line<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no line for {name} in:\n{text}"))
}

const CE_OPERATIONS: [&str; 5] = [
    "ListCostAllocationTags",
    "GetCostAndUsage",
    "GetDimensionValues",
    "GetAnomalies",
    "GetCostForecast",
];

async fn ce_calls(emu: &Emulator) -> u64 {
    let calls = emu.calls().await;
    CE_OPERATIONS
        .iter()
        .map(|op| calls.get(*op).copied().unwrap_or(0))
        .sum()
}

#[tokio::test]
async fn all_checks_pass_with_good_credentials_and_cost_explorer_is_not_called() {
    let emu = Emulator::start();
    let reg = RegistryEmulator::start();

    let run = doctor(Some(&emu), Some(&reg), &["doctor", "--json"], &[]);
    assert_eq!(
        run.code, 0,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    let v = run.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["mode"], "aws");
    assert_eq!(v["paid_requests"], 0);
    assert_eq!(
        statuses(&v),
        expected(&[
            ("credentials", "ok"),
            ("identity", "ok"),
            ("region", "ok"),
            ("endpoints", "ok"),
            ("iam", "ok"),
            ("budgets", "ok"),
            ("budget_policy", "skipped"),
            ("pricing", "ok"),
            ("agent_registry", "ok"),
            ("athena", "skipped"),
            ("cur", "skipped"),
            ("cost_explorer", "skipped"),
            ("principal_tags", "skipped"),
            ("accounts", "skipped"),
            ("invocation_logs", "skipped"),
            ("setup", "skipped"),
        ])
    );
    let c = checks(&v);
    assert!(
        c["credentials"].1.contains("environment variables"),
        "{:?}",
        c["credentials"]
    );
    assert!(c["credentials"].1.contains("long-term"));
    assert_eq!(
        c["identity"].1,
        "arn:aws:sts::123456789012:user/moto (account 123456789012)"
    );
    assert!(
        c["region"]
            .1
            .starts_with("us-east-1, partition aws (from AWS_REGION)"),
        "{:?}",
        c["region"]
    );
    assert!(
        c["endpoints"]
            .1
            .contains(&format!("AWS_ENDPOINT_URL={}", emu.url)),
        "{:?}",
        c["endpoints"]
    );
    assert!(
        c["endpoints"].1.contains(&format!(
            "AWS_ENDPOINT_URL_AGENT_REGISTRY_CONTROL={}",
            reg.url
        )),
        "{:?}",
        c["endpoints"]
    );
    assert!(c["agent_registry"].1.contains("platform-tools"));
    assert!(
        c["cost_explorer"].1.contains("$0.01") && c["cost_explorer"].1.contains("--paid-checks"),
        "{:?}",
        c["cost_explorer"]
    );
    // No fix on a passing or skipped check.
    assert!(c.values().all(|(_, _, fix)| fix.is_empty()));
    // Per tool: nothing failed; cost_allocation_tags is only checkable with --paid-checks.
    let tools = v["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 9);
    assert!(tools.iter().all(|t| t["status"] == "ok"), "{tools:?}");
    let cat = tools
        .iter()
        .find(|t| t["tool"] == "cost_allocation_tags")
        .unwrap();
    assert_eq!(
        cat["not_checked"],
        json!(["cost_explorer", "principal_tags"])
    );

    // One free call each, and not one Cost Explorer request.
    let calls = emu.calls().await;
    for op in [
        "GetCallerIdentity",
        "GetAccountAuthorizationDetails",
        "DescribeBudgets",
        "GetProducts",
    ] {
        assert_eq!(calls.get(op), Some(&1), "{op}: {calls:?}");
    }
    assert_eq!(ce_calls(&emu).await, 0, "{calls:?}");
    assert_eq!(reg.calls().await.get("ListRegistries"), Some(&1));

    // The table says the same, and still makes no paid call. Temporary credentials are named
    // as such, and no secret reaches stdout or the (debug-level) log.
    let (secret, token) = ("S3cr3t-doctor-never-prints", "T0ken-doctor-never-prints");
    let run = doctor(
        Some(&emu),
        Some(&reg),
        &["doctor"],
        &[
            ("AWS_SECRET_ACCESS_KEY", secret),
            ("AWS_SESSION_TOKEN", token),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        line(&run.stdout, "credentials").contains("temporary (session token)"),
        "{}",
        run.stdout
    );
    for s in [secret, token] {
        assert!(!run.stdout.contains(s) && !run.stderr.contains(s));
    }
    assert!(line(&run.stdout, "iam").contains(" ok "), "{}", run.stdout);
    let ce = line(&run.stdout, "cost_explorer");
    assert!(ce.contains("skipped") && ce.contains("$0.01"), "{ce}");
    assert!(
        run.stdout
            .contains("8 ok, 0 failed, 8 skipped; 0 paid Cost Explorer request(s)."),
        "{}",
        run.stdout
    );
    assert_eq!(ce_calls(&emu).await, 0);
}

#[tokio::test]
async fn access_denied_fails_that_check_and_names_the_iam_action() {
    let emu = Emulator::start();
    let reg = RegistryEmulator::start();
    for (operation, error, check, action) in [
        (
            "GetAccountAuthorizationDetails",
            "AccessDenied",
            "iam",
            "iam:GetAccountAuthorizationDetails",
        ),
        (
            "DescribeBudgets",
            "AccessDeniedException",
            "budgets",
            "budgets:ViewBudget",
        ),
        (
            "GetProducts",
            "AccessDeniedException",
            "pricing",
            "pricing:GetProducts",
        ),
    ] {
        emu.fault(operation, error, 1).await;
        let run = doctor(Some(&emu), Some(&reg), &["doctor"], &[]);
        assert_eq!(run.code, 1, "{operation}: {}", run.stdout);
        assert!(
            line(&run.stdout, check).contains(" fail "),
            "{operation}: {}",
            run.stdout
        );
        assert!(
            run.stdout.contains(&format!(
                "fix: grant {action} to arn:aws:sts::123456789012:user/moto"
            )),
            "{operation}: {}",
            run.stdout
        );
        assert!(
            run.stdout.contains("1 failed"),
            "only {check} failed: {}",
            run.stdout
        );
    }

    // Agent Registry (its own emulator), seen through --json.
    reg.post(
        "/_emulator/faults",
        json!({"operation": "ListRegistries", "error_type": "AccessDeniedException", "message": "not allowed"}),
    )
    .await;
    let run = doctor(Some(&emu), Some(&reg), &["doctor", "--json"], &[]);
    assert_eq!(run.code, 1);
    let v = run.json();
    assert_eq!(v["ok"], false);
    let c = checks(&v);
    assert_eq!(c["agent_registry"].0, "fail");
    assert!(
        c["agent_registry"]
            .1
            .contains("access denied for agent-registry:ListRegistries"),
        "{:?}",
        c["agent_registry"]
    );
    assert!(
        c["agent_registry"]
            .2
            .starts_with("grant agent-registry:ListRegistries"),
        "{:?}",
        c["agent_registry"]
    );
    let failed: Vec<&String> = c
        .iter()
        .filter(|(_, s)| s.0 == "fail")
        .map(|(k, _)| k)
        .collect();
    assert_eq!(failed, vec!["agent_registry"]);
    let tools = v["tools"].as_array().unwrap();
    let search = tools
        .iter()
        .find(|t| t["tool"] == "search_registry")
        .unwrap();
    assert_eq!(search["status"], "fail");
    assert_eq!(search["failed"], json!(["agent_registry"]));
    let spend = tools.iter().find(|t| t["tool"] == "bedrock_spend").unwrap();
    assert_eq!(spend["status"], "ok");

    // STS denied: identity fails, and Budgets (which needs the account id) is skipped.
    emu.fault("GetCallerIdentity", "AccessDenied", 1).await;
    let run = doctor(Some(&emu), Some(&reg), &["doctor", "--json"], &[]);
    assert_eq!(run.code, 1);
    let c = checks(&run.json());
    assert_eq!(c["identity"].0, "fail");
    assert!(c["identity"].2.starts_with("grant sts:GetCallerIdentity"));
    assert_eq!(c["budgets"].0, "skipped");
    assert!(c["budgets"].1.contains("account id"), "{:?}", c["budgets"]);
    assert_eq!(c["iam"].0, "ok");
    assert_eq!(ce_calls(&emu).await, 0);
}

#[tokio::test]
async fn paid_checks_call_cost_explorer_exactly_once_and_report_principal_tags() {
    let emu = Emulator::start();
    let reg = RegistryEmulator::start();
    emu.post(
        "/_emulator/ce/cost-allocation-tags",
        json!({"CostAllocationTags": [
            {"TagKey": "iamPrincipal/team", "Type": "UserDefined", "Status": "Active"},
            {"TagKey": "iamPrincipal/project", "Type": "UserDefined", "Status": "Inactive"},
            {"TagKey": "env", "Type": "UserDefined", "Status": "Active"}
        ]}),
    )
    .await;

    let run = doctor(Some(&emu), Some(&reg), &["doctor", "--json"], &[]);
    assert_eq!(run.code, 0);
    assert_eq!(emu.count("ListCostAllocationTags").await, 0);

    let run = doctor(
        Some(&emu),
        Some(&reg),
        &["doctor", "--paid-checks", "--json"],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    let v = run.json();
    assert_eq!(v["paid_requests"], 1);
    let c = checks(&v);
    assert_eq!(c["cost_explorer"].0, "ok");
    assert!(
        c["cost_explorer"]
            .1
            .starts_with("ce:ListCostAllocationTags allowed (1 paid request, $0.01; 3 tag key(s))"),
        "{:?}",
        c["cost_explorer"]
    );
    assert_eq!(c["principal_tags"].0, "ok");
    assert_eq!(
        c["principal_tags"].1,
        "active: iamPrincipal/team; inactive: iamPrincipal/project"
    );
    assert_eq!(emu.count("ListCostAllocationTags").await, 1);
    assert_eq!(ce_calls(&emu).await, 1, "{:?}", emu.calls().await);

    // A required key that is not active fails, with the activation as the fix.
    let run = doctor(
        Some(&emu),
        Some(&reg),
        &[
            "--required-tag-keys",
            "team,project",
            "doctor",
            "--paid-checks",
        ],
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(line(&run.stdout, "principal_tags").contains(" fail "));
    assert!(
        run.stdout
            .contains("fix: activate iamPrincipal/project in Billing > Cost allocation tags"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("1 paid Cost Explorer request(s)."));
    assert_eq!(emu.count("ListCostAllocationTags").await, 2);

    // Cost Explorer denied: that check fails with the action, principal_tags cannot run.
    emu.fault("ListCostAllocationTags", "AccessDeniedException", 1)
        .await;
    let run = doctor(
        Some(&emu),
        Some(&reg),
        &["doctor", "--paid-checks", "--json"],
        &[],
    );
    assert_eq!(run.code, 1);
    let c = checks(&run.json());
    assert_eq!(c["cost_explorer"].0, "fail");
    assert!(
        c["cost_explorer"]
            .2
            .starts_with("grant ce:ListCostAllocationTags")
    );
    assert_eq!(c["principal_tags"].0, "skipped");
    assert_eq!(emu.count("ListCostAllocationTags").await, 3);
}

#[tokio::test]
async fn cur_and_athena_are_checked_when_configured() {
    let emu = Emulator::start();
    let reg = RegistryEmulator::start();
    let dir = tempfile::tempdir().unwrap();
    let with = dir.path().join("with");
    let without = dir.path().join("without");
    for (out, extra) in [(&with, None), (&without, Some("--no-principal-column"))] {
        let mut cmd = crate::common::command();
        cmd.args(["generate-cur", "--out", out.to_str().unwrap()])
            .args(["--rows", "300", "--days", "3"]);
        if let Some(e) = extra {
            cmd.arg(e);
        }
        assert!(cmd.output().unwrap().status.success());
    }

    let run = doctor(
        Some(&emu),
        Some(&reg),
        &[
            "--cur",
            with.to_str().unwrap(),
            "--athena-database",
            "cur",
            "--athena-table",
            "cur2",
            "--athena-output",
            "s3://results/doctor",
            "doctor",
            "--json",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    let c = checks(&run.json());
    assert_eq!(c["cur"].0, "ok");
    assert!(
        c["cur"].1.contains("1 Parquet file(s)")
            && c["cur"].1.contains("line_item_iam_principal present")
            && c["cur"].1.contains("month rollups in ")
            && c["cur"].1.contains("(0 kept)"),
        "{:?}",
        c["cur"]
    );
    assert_eq!(c["athena"].0, "ok");
    assert!(
        c["athena"]
            .1
            .contains("workgroup 'primary', results to s3://results/doctor (--athena-output)"),
        "{:?}",
        c["athena"]
    );
    assert_eq!(emu.count("GetWorkGroup").await, 1);
    assert_eq!(emu.count("StartQueryExecution").await, 0);

    // A rollup folder that cannot be written is said, with the flag to fix it; not a failure.
    let blocker = with.join("not-a-folder");
    std::fs::write(&blocker, b"x").unwrap();
    let bad = blocker.join("rollups");
    let bad_run = doctor(
        Some(&emu),
        Some(&reg),
        &[
            "--cur",
            with.to_str().unwrap(),
            "--cur-rollup-dir",
            bad.to_str().unwrap(),
            "doctor",
            "--json",
        ],
        &[],
    );
    let c2 = checks(&bad_run.json());
    assert_eq!(c2["cur"].0, "ok");
    assert!(
        c2["cur"].1.contains("month rollups cannot be written")
            && c2["cur"].1.contains("--cur-rollup-dir"),
        "{:?}",
        c2["cur"]
    );
    // An export without IAM principal data, and a workgroup with no result location.
    let run = doctor(
        Some(&emu),
        Some(&reg),
        &[
            "--cur",
            without.to_str().unwrap(),
            "--athena-database",
            "cur",
            "--athena-table",
            "cur2",
            "doctor",
            "--json",
        ],
        &[],
    );
    assert_eq!(run.code, 1);
    let c = checks(&run.json());
    assert_eq!(c["cur"].0, "fail");
    assert!(c["cur"].1.contains("no line_item_iam_principal column"));
    assert!(
        c["cur"].2.contains("INCLUDE_IAM_PRINCIPAL_DATA"),
        "{:?}",
        c["cur"]
    );
    assert_eq!(c["athena"].0, "fail");
    assert!(
        c["athena"].2.starts_with("pass --athena-output"),
        "{:?}",
        c["athena"]
    );

    // A missing folder and a denied GetWorkGroup.
    emu.fault("GetWorkGroup", "AccessDeniedException", 1).await;
    let missing = dir.path().join("missing");
    let run = doctor(
        Some(&emu),
        Some(&reg),
        &[
            "--cur",
            missing.to_str().unwrap(),
            "--athena-database",
            "cur",
            "--athena-table",
            "cur2",
            "doctor",
        ],
        &[],
    );
    assert_eq!(run.code, 1);
    assert!(line(&run.stdout, "cur").contains(" fail "));
    assert!(run.stdout.contains("fix: point --cur"), "{}", run.stdout);
    assert!(line(&run.stdout, "athena").contains(" fail "));
    assert!(
        run.stdout.contains("fix: grant athena:GetWorkGroup"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn without_credentials_doctor_says_how_to_configure_them() {
    let run = doctor(None, None, &["doctor", "--json"], &[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let v = run.json();
    let c = checks(&v);
    assert_eq!(c["credentials"].0, "fail");
    assert!(
        c["credentials"].2.contains("AWS_PROFILE"),
        "{:?}",
        c["credentials"]
    );
    assert!(!c["credentials"].1.contains('\n'));
    for name in ["identity", "iam", "budgets", "agent_registry"] {
        assert_eq!(c[name].0, "skipped", "{name}");
        assert!(c[name].1.contains("needs AWS credentials"), "{name}");
    }
    // Prices need no credentials: the bundled snapshot answers.
    assert_eq!(c["pricing"].0, "ok", "{:?}", c["pricing"]);
    assert!(c["pricing"].1.contains("bundled price snapshot"));
    assert_eq!(c["region"].0, "ok");

    // No region: the region check says what to set.
    let run = doctor(
        None,
        None,
        &["doctor", "--json"],
        &[
            ("AWS_REGION", ""),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ],
    );
    let c = checks(&run.json());
    assert_eq!(c["region"].0, "fail");
    assert!(
        c["region"].2.starts_with("set AWS_REGION"),
        "{:?}",
        c["region"]
    );
    assert_eq!(c["identity"].0, "skipped");
    assert_eq!(run.code, 1);
}

#[test]
fn demo_needs_no_aws_and_bad_usage_exits_2() {
    let run = doctor(None, None, &["--demo", "doctor"], &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("no AWS account"), "{}", run.stdout);
    let run = doctor(None, None, &["doctor", "--demo", "--json"], &[]);
    assert_eq!(run.code, 0);
    let v = run.json();
    assert_eq!(v["mode"], "demo");
    assert_eq!(v["ok"], true);
    assert_eq!(statuses(&v), expected(&[("demo", "ok")]));

    let run = doctor(None, None, &["doctor", "--no-such-flag"], &[]);
    assert_eq!(run.code, 2);
    let run = doctor(None, None, &["--cur", "s3:///nobucket", "doctor"], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("no bucket"), "{}", run.stderr);
    let run = doctor(
        None,
        None,
        &["doctor", "--json"],
        &[("AWS_ENDPOINT_URL", "not a url")],
    );
    assert_eq!(run.code, 1);
    let c = checks(&run.json());
    assert_eq!(c["endpoints"].0, "fail");
}

#[tokio::test]
async fn profile_credentials_and_partitions_come_from_the_standard_configuration() {
    let emu = Emulator::start();
    let reg = RegistryEmulator::start();
    let dir = tempfile::tempdir().unwrap();
    let (config, credentials) = (dir.path().join("config"), dir.path().join("credentials"));
    std::fs::write(&config, "[profile dev]\nregion = eu-west-1\n").unwrap();
    std::fs::write(
        &credentials,
        "[dev]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
    )
    .unwrap();
    let files = [
        ("AWS_CONFIG_FILE", config.to_str().unwrap()),
        ("AWS_SHARED_CREDENTIALS_FILE", credentials.to_str().unwrap()),
        ("AWS_ACCESS_KEY_ID", ""),
        ("AWS_SECRET_ACCESS_KEY", ""),
        ("AWS_REGION", ""),
    ];

    let mut env = files.to_vec();
    env.push(("AWS_PROFILE", "dev"));
    let run = doctor(Some(&emu), Some(&reg), &["doctor", "--json"], &env);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let c = checks(&run.json());
    assert_eq!(
        c["credentials"].1,
        "from profile 'dev' (shared config/credentials files); long-term access key"
    );
    assert_eq!(
        c["region"].1,
        "eu-west-1, partition aws (from the profile or instance metadata); Budgets and Price List via us-east-1"
    );

    // A profile that does not exist: the fix names it and the files searched.
    let mut env = files.to_vec();
    env.push(("AWS_PROFILE", "nope"));
    let run = doctor(Some(&emu), Some(&reg), &["doctor", "--json"], &env);
    assert_eq!(run.code, 1);
    let c = checks(&run.json());
    assert_eq!(c["credentials"].0, "fail");
    assert!(
        c["credentials"]
            .1
            .contains("profile `nope` was not defined"),
        "{:?}",
        c["credentials"]
    );
    assert!(
        c["credentials"].2.starts_with(&format!(
            "AWS_PROFILE=nope: check that the profile exists in {}",
            config.display()
        )),
        "{:?}",
        c["credentials"]
    );

    // China and GovCloud through AWS_REGION alone: the identity is of that partition, and
    // the global services (Budgets, Price List) go to its global region.
    for (region, partition, global) in [
        ("cn-north-1", "aws-cn", "cn-northwest-1"),
        ("us-gov-east-1", "aws-us-gov", "us-gov-west-1"),
    ] {
        let run = doctor(
            Some(&emu),
            Some(&reg),
            &["doctor", "--json"],
            &[("AWS_REGION", region)],
        );
        assert_eq!(run.code, 0, "{region}: {}", run.stdout);
        let c = checks(&run.json());
        assert_eq!(
            c["region"].1,
            format!(
                "{region}, partition {partition} (from AWS_REGION); Budgets and Price List via {global}"
            )
        );
        assert_eq!(
            c["identity"].1,
            format!("arn:{partition}:sts::123456789012:user/moto (account 123456789012)")
        );
        for name in ["iam", "budgets", "pricing", "agent_registry"] {
            assert_eq!(c[name].0, "ok", "{region} {name}: {:?}", c[name]);
        }
    }
}

/// With allow-lists, doctor checks each account a tool call may pick, for free.
#[tokio::test]
async fn accounts_check_reaches_each_allowed_account() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        "[profile base]\naws_access_key_id = basekey\naws_secret_access_key = basesecret\nregion = us-east-1\n",
    )
    .unwrap();
    let run = doctor(
        Some(&emu),
        None,
        &[
            "--allow-profiles",
            "base,ghost",
            "--allow-regions",
            "us-gov-west-1",
            "--allow-role-arns",
            "arn:aws:iam::111111111111:role/FinOpsRead,arn:aws:iam::*:role/Other",
            "doctor",
            "--json",
        ],
        &[("AWS_CONFIG_FILE", config.to_str().unwrap())],
    );
    let v = run.json();
    let c = checks(&v);
    let (status, detail, fix) = &c["accounts"];
    assert_eq!(status, "fail", "{detail}");
    assert!(
        detail.contains("profile base: ok as arn:aws:sts::123456789012:user/moto"),
        "{detail}"
    );
    assert!(detail.contains("profile ghost: FAILS"), "{detail}");
    assert!(detail.contains("region us-gov-west-1: ok as"), "{detail}");
    assert!(
        detail.contains("role arn:aws:iam::111111111111:role/FinOpsRead: ok as arn:aws:sts::111111111111:assumed-role/FinOpsRead/bedrock-cost-mcp"),
        "{detail}"
    );
    assert!(
        detail.contains("role pattern arn:aws:iam::*:role/Other: not checked"),
        "{detail}"
    );
    assert!(
        fix.contains("define profile ghost") && !fix.contains("profile base"),
        "{fix}"
    );
    assert_eq!(run.code, 1);
    assert_eq!(emu.count("GetCostAndUsage").await, 0);
}

/// The tool and check of that name in a `doctor --json` report.
fn tool<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["tools"]
        .as_array()
        .expect("tools array")
        .iter()
        .find(|t| t["tool"] == name)
        .unwrap_or_else(|| panic!("no tool {name} in {v}"))
}

/// A local CUR export and no credentials at all: bedrock_spend (local CUR) and estimate_cost
/// (bundled price snapshot) answer offline, so nothing fails; what needs AWS is skipped, with
/// the reason.
#[test]
fn a_local_export_without_credentials_is_an_offline_setup_not_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    crate::common::generate_cur(&export, &["--rows", "300", "--days", "3"]);
    let cur = export.to_str().unwrap();

    let run = doctor(None, None, &["--cur", cur, "doctor", "--json"], &[]);
    assert_eq!(
        run.code, 0,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    let v = run.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["paid_requests"], 0);
    let c = checks(&v);
    let failed: Vec<&String> = c
        .iter()
        .filter(|(_, s)| s.0 == "fail")
        .map(|(k, _)| k)
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(c["credentials"].0, "skipped", "{:?}", c["credentials"]);
    assert!(
        c["credentials"].1.contains("none needed"),
        "{:?}",
        c["credentials"]
    );
    assert_eq!(c["cur"].0, "ok", "{:?}", c["cur"]);
    assert!(c["cur"].1.contains("line_item_iam_principal present"));
    assert_eq!(c["pricing"].0, "ok", "{:?}", c["pricing"]);
    assert!(c["pricing"].1.contains("bundled price snapshot"));
    for name in [
        "identity",
        "iam",
        "budgets",
        "agent_registry",
        "cost_explorer",
    ] {
        assert_eq!(c[name].0, "skipped", "{name}");
        assert!(
            c[name].1.contains("needs AWS credentials"),
            "{name}: {:?}",
            c[name]
        );
    }
    assert!(c.values().all(|(_, _, fix)| fix.is_empty()), "{c:?}");

    // Per tool: what answers offline is ok, what calls AWS is skipped and says why.
    let spend = tool(&v, "bedrock_spend");
    assert_eq!(spend["status"], "ok", "{spend}");
    assert!(
        spend["source"]
            .as_str()
            .unwrap()
            .contains("local CUR export"),
        "{spend}"
    );
    assert_eq!(spend["failed"], json!([]));
    let estimate = tool(&v, "estimate_cost");
    assert_eq!(estimate["status"], "ok", "{estimate}");
    assert!(
        estimate["source"]
            .as_str()
            .unwrap()
            .contains("bundled price snapshot"),
        "{estimate}"
    );
    for name in ["check_budget", "spend_anomalies"] {
        assert_eq!(tool(&v, name)["status"], "ok", "{}", tool(&v, name));
    }
    for name in [
        "search_registry",
        "list_registries",
        "get_registry_record",
        "cost_allocation_tags",
        "untagged_principals",
    ] {
        let t = tool(&v, name);
        assert_eq!(t["status"], "skipped", "{t}");
        assert!(
            t["source"]
                .as_str()
                .unwrap()
                .contains("needs AWS credentials"),
            "{t}"
        );
        assert_eq!(t["failed"], json!([]));
    }
    assert!(
        v["hint"].as_str().unwrap().starts_with("offline setup"),
        "{v}"
    );

    // The table says the same, with no fix to apply; --paid-checks has nothing to call.
    let run = doctor(None, None, &["--cur", cur, "doctor", "--paid-checks"], &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        line(&run.stdout, "credentials").contains(" skipped "),
        "{}",
        run.stdout
    );
    assert!(line(&run.stdout, "estimate_cost").contains("bundled price snapshot"));
    assert!(
        line(&run.stdout, "bedrock_spend").contains(" ok "),
        "{}",
        run.stdout
    );
    assert!(line(&run.stdout, "search_registry").contains(" skipped "));
    assert!(!run.stdout.contains("fix:"), "{}", run.stdout);
    assert!(
        run.stdout.contains(" 0 failed,")
            && run.stdout.contains("0 paid Cost Explorer request(s).")
    );

    // No region either: not needed offline.
    let run = doctor(
        None,
        None,
        &["--cur", cur, "doctor", "--json"],
        &[("AWS_REGION", "")],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(checks(&run.json())["region"].0, "skipped");

    // Athena configured as well: it needs AWS, so the missing credentials do fail, though
    // bedrock_spend (CUR first) and estimate_cost still answer.
    let run = doctor(
        None,
        None,
        &[
            "--cur",
            cur,
            "--athena-database",
            "cur",
            "--athena-table",
            "cur2",
            "doctor",
            "--json",
        ],
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    let v = run.json();
    assert_eq!(checks(&v)["credentials"].0, "fail");
    assert_eq!(tool(&v, "bedrock_spend")["status"], "ok", "{v}");
    assert_eq!(tool(&v, "estimate_cost")["status"], "ok", "{v}");
    assert_eq!(tool(&v, "search_registry")["status"], "fail", "{v}");
}

/// No credentials and nothing local to read: the report suggests the demo.
#[test]
fn without_credentials_or_local_data_doctor_suggests_the_demo() {
    let run = doctor(None, None, &["doctor"], &[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout.contains("`bedrock-cost-mcp --demo doctor`")
            && run
                .stdout
                .contains("`bedrock-cost-mcp --demo spend --period last_month --by team,model`"),
        "{}",
        run.stdout
    );
    assert!(
        line(&run.stdout, "estimate_cost").contains(" ok "),
        "{}",
        run.stdout
    );
    assert!(
        line(&run.stdout, "bedrock_spend").contains(" fail "),
        "{}",
        run.stdout
    );

    let run = doctor(None, None, &["doctor", "--json"], &[]);
    let v = run.json();
    assert!(v["hint"].as_str().unwrap().contains("--demo"), "{v}");
    let spend = tool(&v, "bedrock_spend");
    assert_eq!(spend["failed"], json!(["credentials"]), "{spend}");
    assert!(
        spend["source"]
            .as_str()
            .unwrap()
            .starts_with("Cost Explorer")
    );

    // An export on S3 cannot be read without credentials either.
    let run = doctor(
        None,
        None,
        &["--cur", "s3://bucket/cur", "doctor", "--json"],
        &[],
    );
    assert_eq!(run.code, 1);
    let v = run.json();
    assert_eq!(checks(&v)["cur"].0, "skipped");
    assert!(v["hint"].as_str().unwrap().contains("--demo"), "{v}");

    // The demo itself, and a working setup, get no such hint.
    let run = doctor(None, None, &["--demo", "doctor", "--json"], &[]);
    assert!(run.json().get("hint").is_none(), "{}", run.stdout);
}

/// With credentials and a local export, the AWS checks run as before, and each tool is
/// judged by its own source: bedrock_spend by the export, not by Cost Explorer.
#[tokio::test]
async fn with_credentials_each_tool_follows_the_source_it_will_use() {
    let emu = Emulator::start();
    let reg = RegistryEmulator::start();
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    crate::common::generate_cur(&export, &["--rows", "300", "--days", "3"]);

    let run = doctor(
        Some(&emu),
        Some(&reg),
        &["--cur", export.to_str().unwrap(), "doctor", "--json"],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    let v = run.json();
    let c = checks(&v);
    for name in [
        "credentials",
        "identity",
        "region",
        "endpoints",
        "iam",
        "budgets",
        "pricing",
        "agent_registry",
        "cur",
    ] {
        assert_eq!(c[name].0, "ok", "{name}: {:?}", c[name]);
    }
    assert!(c["pricing"].1.starts_with("pricing:GetProducts allowed"));
    assert!(v.get("hint").is_none(), "{v}");
    let spend = tool(&v, "bedrock_spend");
    assert_eq!(spend["status"], "ok");
    assert!(
        spend["source"]
            .as_str()
            .unwrap()
            .contains("local CUR export")
    );
    // Cost Explorer is not what bedrock_spend uses here.
    assert_eq!(spend["not_checked"], json!(["principal_tags"]), "{spend}");
    let ce = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "cost_explorer")
        .unwrap();
    assert!(
        !ce["tools"]
            .as_array()
            .unwrap()
            .contains(&json!("bedrock_spend")),
        "{ce}"
    );
    let estimate = tool(&v, "estimate_cost");
    assert!(
        estimate["source"]
            .as_str()
            .unwrap()
            .starts_with("the Price List API"),
        "{estimate}"
    );
    assert!(
        v["tools"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "ok"),
        "{v}"
    );
    assert_eq!(emu.count("GetProducts").await, 1);
    assert_eq!(ce_calls(&emu).await, 0);

    // Price List denied: that check fails (AWS is used), and says the snapshot stands in.
    emu.fault("GetProducts", "AccessDeniedException", 1).await;
    let run = doctor(
        Some(&emu),
        Some(&reg),
        &["--cur", export.to_str().unwrap(), "doctor", "--json"],
        &[],
    );
    assert_eq!(run.code, 1);
    let c = checks(&run.json());
    assert_eq!(c["pricing"].0, "fail");
    assert!(
        c["pricing"].2.contains("bundled snapshot"),
        "{:?}",
        c["pricing"]
    );
}

#[tokio::test]
async fn doctor_says_where_invocation_logs_go_and_whether_the_server_reads_them() {
    let emu = Emulator::start();
    let check = |args: &[&str]| {
        let run = doctor(
            Some(&emu),
            None,
            &[&["doctor", "--json"], args].concat(),
            &[],
        );
        checks(&run.json())["invocation_logs"].clone()
    };
    // Logging off, live layer not configured: how to turn it on.
    let (status, detail, _) = check(&[]);
    assert_eq!(status, "skipped");
    assert!(detail.contains("logging is off in us-east-1"), "{detail}");
    // Logging off, live layer configured: a failure with the command that turns it on.
    let (status, detail, fix) = check(&["--invocation-logs", "s3://acme-logs/bedrock"]);
    assert_eq!(status, "fail", "{detail}");
    assert!(
        fix.contains("put-model-invocation-logging-configuration"),
        "{fix}"
    );
    // Logging on, to S3 and a log group.
    let bedrock = aws_sdk_bedrock::Client::new(&crate::common::sdk_config(&emu).await);
    bedrock
        .put_model_invocation_logging_configuration()
        .logging_config(
            aws_sdk_bedrock::types::LoggingConfig::builder()
                .s3_config(
                    aws_sdk_bedrock::types::S3Config::builder()
                        .bucket_name("acme-logs")
                        .key_prefix("bedrock")
                        .build()
                        .unwrap(),
                )
                .cloud_watch_config(
                    aws_sdk_bedrock::types::CloudWatchConfig::builder()
                        .log_group_name("/aws/bedrock/modelinvocations")
                        .role_arn("arn:aws:iam::123456789012:role/BedrockLogs")
                        .build()
                        .unwrap(),
                )
                .text_data_delivery_enabled(false)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let (status, detail, _) = check(&[]);
    assert_eq!(status, "skipped");
    assert!(
        detail.contains("delivers to s3://acme-logs/bedrock and CloudWatch Logs group /aws/bedrock/modelinvocations (metadata only)")
            && detail.contains("start with --invocation-logs s3://acme-logs/bedrock"),
        "{detail}"
    );
    let (status, detail, _) = check(&["--invocation-logs", "s3://acme-logs/bedrock/AWSLogs"]);
    assert_eq!(status, "ok", "{detail}");
    let (status, _, _) = check(&["--invocation-log-group", "/aws/bedrock/modelinvocations"]);
    assert_eq!(status, "ok");
    let (status, detail, fix) = check(&["--invocation-logs", "s3://other-bucket/bedrock"]);
    assert_eq!(status, "fail", "{detail}");
    assert!(
        fix.contains("--invocation-logs s3://acme-logs/bedrock"),
        "{fix}"
    );
    let (status, _, fix) = check(&["--invocation-log-group", "/wrong"]);
    assert_eq!(status, "fail");
    assert!(
        fix.contains("--invocation-log-group /aws/bedrock/modelinvocations"),
        "{fix}"
    );
}
