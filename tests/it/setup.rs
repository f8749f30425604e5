//! `setup` through the real binary against the emulator: the plan changes nothing, `--apply`
//! makes exactly the planned calls and reads the account again, a second run does nothing,
//! `--undo STEP` removes what that step created and nothing that existed before.

use serde_json::{Value, json};

use crate::common::*;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", self.stdout, self.stderr))
    }
}

/// The real binary with the tests' AWS settings for `emu`, plus `env`.
fn cli(emu: &Emulator, env: &[(&str, &std::path::Path)], args: &[&str]) -> Run {
    let mut cmd = command();
    cmd.envs(aws_env(Some(emu)));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.args(args).output().expect("run the binary");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `setup --json` on the bucket `bcm-cur`, with its state and policy files in `dir`.
fn setup(emu: &Emulator, dir: &std::path::Path, args: &[&str]) -> Run {
    let state = dir.join("setup.json");
    let policy = dir.join("require-tags.json");
    let base = [
        "setup",
        "--json",
        "--bucket",
        "bcm-cur",
        "--state",
        state.to_str().unwrap(),
        "--policy-file",
        policy.to_str().unwrap(),
    ];
    cli(emu, &[], &[&base[..], args].concat())
}

fn step<'a>(plan: &'a Value, id: &str) -> &'a Value {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == json!(id))
        .unwrap_or_else(|| panic!("no step {id}: {plan}"))
}

fn apis(step: &Value) -> Vec<String> {
    step["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["api"].as_str().unwrap().to_string())
        .collect()
}

async fn get(emu: &Emulator, path: &str) -> Value {
    reqwest::get(format!("{}{path}", emu.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The first day of the month `back` months before the tests' today, as `YYYY-MM`.
fn month_back(back: u32) -> String {
    use chrono::Datelike;
    let t = today();
    let m = t.year() * 12 + t.month0() as i32 - back as i32;
    format!("{:04}-{:02}", m.div_euclid(12), m.rem_euclid(12) + 1)
}

async fn tag_status(ce: &aws_sdk_costexplorer::Client, key: &str) -> String {
    ce.list_cost_allocation_tags()
        .tag_keys(key)
        .send()
        .await
        .unwrap()
        .cost_allocation_tags()
        .first()
        .map(|t| t.status().as_str().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn setup_plans_without_changing_anything_then_applies_verifies_and_undoes_each_step() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    emu.post(
        "/_emulator/ce/cost-allocation-tags",
        json!({"CostAllocationTags": [
            {"TagKey": "iamPrincipal/team", "Type": "UserDefined", "Status": "Inactive"}
        ]}),
    )
    .await;
    let sdk = sdk_config(&emu).await;
    let ce = aws_sdk_costexplorer::Client::new(&sdk);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let bedrock = aws_sdk_bedrock::Client::new(&sdk);
    let backfill = month_back(2);
    let args = [
        "--tag-keys",
        "team,project",
        "--backfill-from",
        backfill.as_str(),
        "--notify",
        "finops@example.com",
    ];

    // The plan: every step with its calls; nothing changes.
    let run = setup(&emu, dir.path(), &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plan = run.json();
    assert_eq!(plan["account"], json!("123456789012"));
    let export = step(&plan, "export");
    assert_eq!(export["state"], json!("to_do"));
    assert_eq!(
        apis(export),
        [
            "s3:CreateBucket",
            "s3:PutBucketPolicy",
            "bcm-data-exports:CreateExport"
        ]
    );
    let create = &export["calls"][2]["params"]["Export"];
    let props = &create["DataQuery"]["TableConfigurations"]["COST_AND_USAGE_REPORT"];
    assert_eq!(props["INCLUDE_IAM_PRINCIPAL_DATA"], json!("TRUE"));
    assert_eq!(props["INCLUDE_RESOURCES"], json!("TRUE"));
    assert_eq!(props["TIME_GRANULARITY"], json!("DAILY"));
    let out = &create["DestinationConfigurations"]["S3Destination"]["S3OutputConfigurations"];
    assert_eq!(
        (&out["Format"], &out["Compression"], &out["Overwrite"]),
        (
            &json!("PARQUET"),
            &json!("PARQUET"),
            &json!("OVERWRITE_REPORT")
        )
    );
    let statement = &export["calls"][1]["params"]["Statement added"];
    assert_eq!(
        statement["Condition"]["StringLike"]["aws:SourceAccount"],
        json!("123456789012")
    );
    assert!(
        statement["Principal"]["Service"]
            .to_string()
            .contains("bcm-data-exports.amazonaws.com")
    );
    let tags = step(&plan, "tags");
    assert_eq!(
        apis(tags),
        [
            "ce:UpdateCostAllocationTagsStatus",
            "ce:StartCostAllocationTagBackfill"
        ]
    );
    assert_eq!(
        tags["calls"][0]["params"]["CostAllocationTagsStatus"],
        json!([{"TagKey": "iamPrincipal/team", "Status": "Active"}])
    );
    assert_eq!(
        tags["calls"][1]["params"]["BackfillFrom"],
        json!(format!("{backfill}-01T00:00:00Z"))
    );
    assert!(
        tags["found"]
            .as_str()
            .unwrap()
            .contains("iamPrincipal/project not seen yet"),
        "{tags}"
    );
    assert!(
        tags["notes"]
            .to_string()
            .contains("does not say whether iamPrincipal")
    );
    // The Athena DDL, statement by statement (Athena DDL reference: CREATE EXTERNAL TABLE,
    // STORED AS PARQUET, LOCATION, TBLPROPERTIES with partition projection).
    let athena = step(&plan, "athena");
    let ddl: Vec<&str> = athena["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["params"]["QueryString"].as_str().unwrap())
        .collect();
    assert_eq!(ddl[0], "CREATE DATABASE IF NOT EXISTS bedrock_cost");
    let location = "s3://bcm-cur/cur2/bedrock-cost-mcp-cur2/data";
    for part in [
        "CREATE EXTERNAL TABLE IF NOT EXISTS bedrock_cost.cur2 (\n",
        "  line_item_iam_principal string,\n",
        "  tags map<string,string>\n)",
        "PARTITIONED BY (billing_period string)\nSTORED AS PARQUET\n",
        &format!("LOCATION '{location}/'\n"),
        "'projection.enabled'='true'",
        "'projection.billing_period.type'='date'",
        "'projection.billing_period.format'='yyyy-MM'",
        "'projection.billing_period.interval.unit'='MONTHS'",
        &format!("'storage.location.template'='{location}/BILLING_PERIOD=${{billing_period}}/'"),
    ] {
        assert!(ddl[1].contains(part), "{part:?} not in\n{}", ddl[1]);
    }
    let logging = step(&plan, "logging");
    assert_eq!(
        apis(logging),
        [
            "s3:PutBucketPolicy",
            "bedrock:PutModelInvocationLoggingConfiguration"
        ]
    );
    assert_eq!(
        logging["calls"][1]["params"]["loggingConfig"]["textDataDeliveryEnabled"],
        json!(false)
    );
    let monitor = step(&plan, "anomaly_monitor");
    assert_eq!(
        apis(monitor),
        ["ce:CreateAnomalyMonitor", "ce:CreateAnomalySubscription"]
    );
    assert_eq!(
        monitor["calls"][0]["params"]["AnomalyMonitor"],
        json!({"MonitorName": "bedrock-cost-mcp-team", "MonitorType": "DIMENSIONAL",
               "MonitorDimension": "TAG", "MonitorSpecification": {"Tags": {"Key": "iamPrincipal/team"}}})
    );
    assert_eq!(step(&plan, "budgets")["state"], json!("blocked"));
    assert_eq!(step(&plan, "prevention")["state"], json!("to_do"));
    assert!(
        plan["configuration"]
            .to_string()
            .contains(&format!("--cur {location}/"))
    );
    // Nothing changed.
    assert_eq!(get(&emu, "/_emulator/data-exports").await, json!([]));
    assert!(s3.head_bucket().bucket("bcm-cur").send().await.is_err());
    assert_eq!(tag_status(&ce, "iamPrincipal/team").await, "Inactive");
    assert_eq!(emu.count("StartCostAllocationTagBackfill").await, 0);
    assert_eq!(emu.count("StartQueryExecution").await, 0);
    assert!(
        bedrock
            .get_model_invocation_logging_configuration()
            .send()
            .await
            .unwrap()
            .logging_config()
            .and_then(|c| c.s3_config())
            .is_none()
    );
    assert!(!dir.path().join("require-tags.json").exists());

    // Apply: the planned calls, then the account read again.
    let run = setup(&emu, dir.path(), &[&args[..], &["--apply"]].concat());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let applied = run.json();
    let outcomes = applied["applied"].as_array().unwrap();
    let done: Vec<(&str, bool, &str)> = outcomes
        .iter()
        .map(|o| {
            (
                o["step"].as_str().unwrap(),
                o["ok"].as_bool().unwrap(),
                o["verified"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        done,
        [
            ("export", true, "done"),
            ("tags", true, "done"),
            ("athena", true, "done"),
            ("logging", true, "done"),
            ("anomaly_monitor", true, "done"),
            ("prevention", true, "done")
        ],
        "{applied}"
    );
    let exports = get(&emu, "/_emulator/data-exports").await;
    assert_eq!(exports.as_array().unwrap().len(), 1);
    assert_eq!(
        exports[0]["DataQuery"]["TableConfigurations"]["COST_AND_USAGE_REPORT"]["INCLUDE_IAM_PRINCIPAL_DATA"],
        json!("TRUE")
    );
    let policy = s3
        .get_bucket_policy()
        .bucket("bcm-cur")
        .send()
        .await
        .unwrap()
        .policy()
        .unwrap()
        .to_string();
    assert!(
        policy.contains("BedrockCostMcpDataExports")
            && policy.contains("BedrockCostMcpInvocationLogging"),
        "{policy}"
    );
    assert_eq!(tag_status(&ce, "iamPrincipal/team").await, "Active");
    assert_eq!(emu.count("StartCostAllocationTagBackfill").await, 1);
    let logging = bedrock
        .get_model_invocation_logging_configuration()
        .send()
        .await
        .unwrap();
    let lc = logging.logging_config().unwrap();
    assert_eq!(lc.s3_config().unwrap().bucket_name(), "bcm-cur");
    assert_eq!(
        lc.s3_config().unwrap().key_prefix(),
        Some("bedrock-invocation-logs")
    );
    assert_eq!(lc.text_data_delivery_enabled(), Some(false));
    let subs = ce.get_anomaly_subscriptions().send().await.unwrap();
    let sub = &subs.anomaly_subscriptions()[0];
    assert_eq!(sub.subscribers()[0].address(), Some("finops@example.com"));
    assert_eq!(sub.frequency().as_str(), "DAILY");
    let monitors = ce.get_anomaly_monitors().send().await.unwrap();
    assert_eq!(monitors.anomaly_monitors().len(), 1);
    assert_eq!(
        sub.monitor_arn_list(),
        [monitors.anomaly_monitors()[0].monitor_arn().unwrap()]
    );
    let catalog = get(&emu, "/_emulator/athena/catalog").await;
    assert_eq!(catalog["tables"][0]["Name"], json!("cur2"));
    assert_eq!(
        catalog["tables"][0]["Parameters"]["location"],
        json!(format!("{location}/"))
    );
    let written: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("require-tags.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        written["Statement"][0]["Condition"]["Null"],
        json!({"aws:RequestTag/team": "true", "aws:RequestTag/project": "true"})
    );

    // Again: nothing left to do, nothing duplicated.
    let run = setup(&emu, dir.path(), &[&args[..], &["--apply"]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["applied"], json!([]));
    assert_eq!(
        get(&emu, "/_emulator/data-exports")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(emu.count("StartCostAllocationTagBackfill").await, 1);

    // Undo, step by step.
    let run = setup(&emu, dir.path(), &["--undo", "export"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let undone = run.json();
    assert!(
        undone["left"]
            .to_string()
            .contains("still used by step logging"),
        "{undone}"
    );
    assert_eq!(get(&emu, "/_emulator/data-exports").await, json!([]));
    let policy = s3
        .get_bucket_policy()
        .bucket("bcm-cur")
        .send()
        .await
        .unwrap()
        .policy()
        .unwrap()
        .to_string();
    assert!(
        !policy.contains("BedrockCostMcpDataExports")
            && policy.contains("BedrockCostMcpInvocationLogging")
    );
    let run = setup(&emu, dir.path(), &["--undo", "logging"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        bedrock
            .get_model_invocation_logging_configuration()
            .send()
            .await
            .unwrap()
            .logging_config()
            .and_then(|c| c.s3_config())
            .is_none()
    );
    // Now the bucket is no step's: undoing export again removes it.
    let run = setup(&emu, dir.path(), &["--undo", "export"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(s3.head_bucket().bucket("bcm-cur").send().await.is_err());
    let run = setup(&emu, dir.path(), &["--undo", "tags"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.json()["left"].to_string().contains("cannot be undone"));
    assert_eq!(tag_status(&ce, "iamPrincipal/team").await, "Inactive");
    let run = setup(&emu, dir.path(), &["--undo", "athena"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        get(&emu, "/_emulator/athena/catalog").await,
        json!({"databases": [], "tables": []})
    );
    let run = setup(&emu, dir.path(), &["--undo", "anomaly_monitor"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        ce.get_anomaly_monitors()
            .send()
            .await
            .unwrap()
            .anomaly_monitors()
            .is_empty()
    );
    assert!(
        ce.get_anomaly_subscriptions()
            .send()
            .await
            .unwrap()
            .anomaly_subscriptions()
            .is_empty()
    );
    let run = setup(&emu, dir.path(), &["--undo", "prevention"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!dir.path().join("require-tags.json").exists());
}

#[tokio::test]
async fn an_export_without_caller_identity_is_updated_not_duplicated_and_undo_restores_it() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let sdk = sdk_config(&emu).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket("theirs").send().await.unwrap();
    let their_policy = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Existing","Effect":"Allow","Principal":{"Service":"bcm-data-exports.amazonaws.com"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::theirs/*"}]}"#;
    s3.put_bucket_policy()
        .bucket("theirs")
        .policy(their_policy)
        .send()
        .await
        .unwrap();
    let exports = aws_sdk_bcmdataexports::Client::new(&sdk);
    use aws_sdk_bcmdataexports::types as t;
    let arn = exports
        .create_export()
        .export(
            t::Export::builder()
                .name("finance-cur")
                .data_query(
                    t::DataQuery::builder()
                        .query_statement("SELECT * FROM COST_AND_USAGE_REPORT")
                        .table_configurations(
                            "COST_AND_USAGE_REPORT",
                            [("TIME_GRANULARITY".to_string(), "HOURLY".to_string())].into(),
                        )
                        .build()
                        .unwrap(),
                )
                .destination_configurations(
                    t::DestinationConfigurations::builder()
                        .s3_destination(
                            t::S3Destination::builder()
                                .s3_bucket("theirs")
                                .s3_prefix("billing")
                                .s3_region("us-east-1")
                                .s3_output_configurations(
                                    t::S3OutputConfigurations::builder()
                                        .output_type(t::S3OutputType::Custom)
                                        .format(t::FormatOption::Parquet)
                                        .compression(t::CompressionOption::Parquet)
                                        .overwrite(t::OverwriteOption::OverwriteReport)
                                        .build()
                                        .unwrap(),
                                )
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .refresh_cadence(
                    t::RefreshCadence::builder()
                        .frequency(t::FrequencyOption::Synchronous)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .export_arn()
        .unwrap()
        .to_string();
    let run = setup(&emu, dir.path(), &["--steps", "export"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plan = run.json();
    let export = step(&plan, "export");
    assert_eq!(apis(export), ["bcm-data-exports:UpdateExport"]);
    assert!(
        export["found"].as_str().unwrap().contains("finance-cur"),
        "{export}"
    );
    let run = setup(&emu, dir.path(), &["--steps", "export", "--apply"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let listed = get(&emu, "/_emulator/data-exports").await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let props = &listed[0]["DataQuery"]["TableConfigurations"]["COST_AND_USAGE_REPORT"];
    assert_eq!(props["INCLUDE_IAM_PRINCIPAL_DATA"], json!("TRUE"));
    assert_eq!(
        props["TIME_GRANULARITY"],
        json!("HOURLY"),
        "the rest is kept"
    );
    let run = setup(&emu, dir.path(), &["--undo", "export"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let listed = get(&emu, "/_emulator/data-exports").await;
    assert_eq!(listed[0]["ExportArn"], json!(arn));
    assert!(
        listed[0]["DataQuery"]["TableConfigurations"]["COST_AND_USAGE_REPORT"]
            .get("INCLUDE_IAM_PRINCIPAL_DATA")
            .is_none(),
        "{listed}"
    );
    // Their bucket and its policy were never touched.
    let policy = s3
        .get_bucket_policy()
        .bucket("theirs")
        .send()
        .await
        .unwrap();
    assert_eq!(policy.policy(), Some(their_policy));
}

#[tokio::test]
async fn a_step_the_caller_may_not_do_names_the_action_and_the_rest_proceeds() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    emu.post(
        "/_emulator/ce/cost-allocation-tags",
        json!({"CostAllocationTags": [
            {"TagKey": "iamPrincipal/team", "Type": "UserDefined", "Status": "Inactive"}
        ]}),
    )
    .await;
    emu.fault("UpdateCostAllocationTagsStatus", "AccessDeniedException", 1)
        .await;
    let run = setup(&emu, dir.path(), &["--steps", "tags,prevention", "--apply"]);
    assert_eq!(run.code, 1, "a failed step fails the run: {}", run.stdout);
    let out = run.json();
    let tags = &out["applied"][0];
    assert_eq!(tags["step"], json!("tags"));
    assert_eq!(tags["ok"], json!(false));
    let e = tags["error"].as_str().unwrap();
    assert!(
        e.contains("ce:UpdateCostAllocationTagsStatus was refused") && e.contains("payer"),
        "{e}"
    );
    assert_eq!(out["applied"][1]["step"], json!("prevention"));
    assert_eq!(out["applied"][1]["ok"], json!(true));
    assert!(dir.path().join("require-tags.json").exists());
    // Bad usage: exit 2 before any AWS call.
    let run = setup(&emu, dir.path(), &["--steps", "everything"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("unknown step 'everything'"),
        "{}",
        run.stderr
    );
    let run = setup(&emu, dir.path(), &["--backfill-from", "2001-01"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("12 months"), "{}", run.stderr);
}

/// A client that offers form elicitation and answers every question with `accept`, keeping the
/// questions it was asked.
#[derive(Clone, Default)]
struct Asked {
    accept: bool,
    /// Accept only questions that contain this.
    only: Option<&'static str>,
    questions: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl rmcp::ClientHandler for Asked {
    fn get_info(&self) -> rmcp::model::ClientConfig {
        let mut c = rmcp::model::ClientConfig::default();
        c.capabilities.elicitation = Some(
            rmcp::model::ElicitationCapability::new()
                .with_form(rmcp::model::FormElicitationCapability::default()),
        );
        c
    }

    async fn create_elicitation(
        &self,
        request: rmcp::model::ElicitRequestParams,
        _ctx: rmcp::service::RequestContext<rmcp::RoleClient>,
    ) -> Result<rmcp::model::ElicitResult, rmcp::ErrorData> {
        let mut accept = self.accept;
        if let rmcp::model::ElicitRequestParams::FormElicitationParams { message, .. } = request {
            if let Some(only) = self.only {
                accept &= message.contains(only);
            }
            self.questions.lock().unwrap().push(message);
        }
        use rmcp::model::{ElicitResult, ElicitationAction};
        Ok(if accept {
            ElicitResult::new(ElicitationAction::Accept).with_content(json!({"confirm": true}))
        } else {
            ElicitResult::new(ElicitationAction::Decline)
        })
    }
}

#[tokio::test]
async fn the_setup_tool_asks_the_user_and_a_declined_change_changes_nothing() {
    let emu = Emulator::start();
    emu.post(
        "/_emulator/ce/cost-allocation-tags",
        json!({"CostAllocationTags": [
            {"TagKey": "iamPrincipal/team", "Type": "UserDefined", "Status": "Inactive"}
        ]}),
    )
    .await;
    let apply = json!({"steps": ["tags"], "apply": true});
    // Declined: the question named the call; nothing reached AWS.
    let asked = Asked::default();
    let client = stdio_client_with(asked.clone(), Some(&emu), &["--allow-writes"], &[]).await;
    let out = ok(&call(&client, "setup", apply.clone()).await);
    assert_eq!(out["declined"], json!(true), "{out}");
    let questions = asked.questions.lock().unwrap().clone();
    assert_eq!(questions.len(), 1);
    assert!(
        questions[0].contains("ce:UpdateCostAllocationTagsStatus")
            && questions[0].contains("iamPrincipal/team"),
        "{}",
        questions[0]
    );
    assert_eq!(emu.count("UpdateCostAllocationTagsStatus").await, 0);
    client.cancel().await.ok();
    // A client without elicitation: the plan and the confirm input, nothing changed.
    let client = stdio_client(Some(&emu), &["--allow-writes"], &[]).await;
    let out = ok(&call(&client, "setup", apply.clone()).await);
    assert_eq!(out["confirm_required"], json!(true), "{out}");
    assert_eq!(emu.count("UpdateCostAllocationTagsStatus").await, 0);
    // ... and with confirm: true, the change.
    let mut confirmed = apply.clone();
    confirmed["confirm"] = json!(true);
    let out = ok(&call(&client, "setup", confirmed).await);
    assert_eq!(out["applied"][0]["step"], json!("tags"), "{out}");
    assert_eq!(out["applied"][0]["verified"], json!("done"));
    assert_eq!(emu.count("UpdateCostAllocationTagsStatus").await, 1);
    client.cancel().await.ok();
    // Accepted through elicitation: applied (here: undone, the state file is the server's).
    let asked = Asked {
        accept: true,
        ..Asked::default()
    };
    let client = stdio_client_with(asked.clone(), Some(&emu), &["--allow-writes"], &[]).await;
    let out = ok(&call(&client, "setup", json!({"steps": ["tags"]})).await);
    assert_eq!(
        step(&out, "tags")["state"],
        json!("done"),
        "plan only: {out}"
    );
    assert!(
        asked.questions.lock().unwrap().is_empty(),
        "a plan asks nothing"
    );
    let out = ok(&call(
        &client,
        "setup",
        json!({"steps": ["prevention"], "apply": true}),
    )
    .await);
    assert_eq!(out["applied"][0]["step"], json!("prevention"), "{out}");
    assert_eq!(out["applied"][0]["ok"], json!(true), "{out}");
    assert_eq!(asked.questions.lock().unwrap().len(), 1);
    client.cancel().await.ok();
    // Two steps, two questions: only the accepted one runs.
    emu.post(
        "/_emulator/ce/cost-allocation-tags",
        json!({"CostAllocationTags": [
            {"TagKey": "iamPrincipal/project", "Type": "UserDefined", "Status": "Inactive"}
        ]}),
    )
    .await;
    let picky = Asked {
        accept: true,
        only: Some("- anomaly_monitor"),
        ..Asked::default()
    };
    let client = stdio_client_with(picky.clone(), Some(&emu), &["--allow-writes"], &[]).await;
    let out = ok(&call(
        &client,
        "setup",
        json!({"steps": ["tags", "anomaly_monitor"], "tag_keys": ["project"], "apply": true}),
    )
    .await);
    assert_eq!(
        picky.questions.lock().unwrap().len(),
        2,
        "one question per step"
    );
    let ran: Vec<&str> = out["applied"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["step"].as_str())
        .collect();
    assert_eq!(ran, ["anomaly_monitor"], "{out}");
    assert_eq!(
        emu.count("UpdateCostAllocationTagsStatus").await,
        1,
        "tags declined"
    );
    client.cancel().await.ok();
    // Without --allow-writes the tool is not there.
    let client = stdio_client(Some(&emu), &[], &[]).await;
    let tools = client.list_all_tools().await.unwrap();
    assert!(!tools.iter().any(|t| t.name == "setup"));
    client.cancel().await.ok();
}

#[tokio::test]
async fn doctor_tells_data_on_its_way_after_setup_from_data_never_set_up() {
    let emu = Emulator::start();
    let home = tempfile::tempdir().unwrap();
    let state_home = home.path().join("state");
    let run = |args: &[&str]| {
        let r = cli(&emu, &[("XDG_STATE_HOME", state_home.as_path())], args);
        (r.code, r.stdout, r.stderr)
    };
    let cur = "s3://bcm-cur/cur2/bedrock-cost-mcp-cur2/data/";
    let check = |out: &str, name: &str| -> Value {
        let v: Value = serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"));
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == json!(name))
            .cloned()
            .unwrap_or_else(|| panic!("no {name} check: {v}"))
    };
    // Before setup: the export is simply missing, and setup says it was never run.
    let (_, out, err) = run(&["--cur", cur, "doctor", "--json"]);
    assert_eq!(check(&out, "cur")["status"], json!("fail"), "{out}{err}");
    let setup = check(&out, "setup");
    assert!(
        setup["detail"]
            .as_str()
            .unwrap()
            .contains("setup has not been run"),
        "{setup}"
    );
    // After setup made the export: on its way, by when.
    let (code, out, err) = run(&[
        "setup", "--bucket", "bcm-cur", "--steps", "export", "--apply",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (_, out, err) = run(&["--cur", cur, "doctor", "--json"]);
    let c = check(&out, "cur");
    assert_eq!(c["status"], json!("skipped"), "{out}{err}");
    // Applied a few seconds after the tests' clock started: its day, or the next one just
    // after midnight.
    let day = |d: chrono::Duration| (now() + d).format("%Y-%m-%d").to_string();
    let detail = c["detail"].as_str().unwrap();
    assert!(
        detail.contains("set up by `setup` (export); data expected by")
            && (detail.contains(&day(chrono::Duration::hours(24)))
                || detail.contains(&day(chrono::Duration::hours(25)))),
        "{detail}"
    );
    let setup = check(&out, "setup");
    assert_eq!(setup["status"], json!("ok"));
    assert!(
        setup["detail"].as_str().unwrap().contains("export applied"),
        "{setup}"
    );
}

#[tokio::test]
async fn tag_budgets_of_the_policy_file_become_aws_budgets_and_undo_deletes_them() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("budgets.toml");
    std::fs::write(
        &policy,
        "[[budgets]]\ntag = \"team=ml-platform\"\nmonthly_usd = 1500\n\n[[budgets]]\ntag = \"team=search\"\nmonthly_usd = 300.5\n\n[[budgets]]\nrole = \"InvoiceAgentRole\"\nmonthly_usd = 50\n",
    )
    .unwrap();
    let p = policy.to_str().unwrap();
    let state = dir.path().join("setup.json");
    let run = |extra: &[&str]| {
        let base = [
            "--budget-policy",
            p,
            "setup",
            "--json",
            "--steps",
            "budgets",
        ];
        let st = ["--state", state.to_str().unwrap()];
        let r = cli(&emu, &[], &[&base[..], &st, extra].concat());
        (r.code, r.stdout)
    };
    let (code, out) = run(&[]);
    assert_eq!(code, 0, "{out}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    let budgets = step(&plan, "budgets");
    assert_eq!(
        apis(budgets),
        ["budgets:CreateBudget", "budgets:CreateBudget"]
    );
    // Only the chosen step is read: no (paid) Cost Explorer call for the tags step.
    assert_eq!(emu.count("ListCostAllocationTags").await, 0);
    assert_eq!(emu.count("ListExports").await, 0);
    assert_eq!(
        budgets["calls"][1]["params"]["Budget"]["BudgetLimit"],
        json!({"Amount": "300.50", "Unit": "USD"})
    );
    let (code, out) = run(&["--apply"]);
    assert_eq!(code, 0, "{out}");
    let sdk = sdk_config(&emu).await;
    let client = aws_sdk_budgets::Client::new(&sdk);
    let listed = client
        .describe_budgets()
        .account_id("123456789012")
        .show_filter_expression(true)
        .send()
        .await
        .unwrap();
    let mut seen: Vec<(String, String, String)> = listed
        .budgets()
        .iter()
        .map(|b| {
            let tags = b.filter_expression().and_then(|e| e.tags()).unwrap();
            (
                b.budget_name().to_string(),
                b.budget_limit().unwrap().amount().to_string(),
                format!("{}={}", tags.key().unwrap_or(""), tags.values().join(",")),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (
                "bedrock-team-ml-platform".to_string(),
                "1500.00".to_string(),
                "iamPrincipal/team=ml-platform".to_string()
            ),
            (
                "bedrock-team-search".to_string(),
                "300.50".to_string(),
                "iamPrincipal/team=search".to_string()
            )
        ]
    );
    let (code, out) = run(&["--apply"]);
    assert_eq!(code, 0);
    let again: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(again["applied"], json!([]), "nothing twice");
    let (code, out) = run(&["--undo", "budgets"]);
    assert_eq!(code, 0, "{out}");
    let undone: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(undone["removed"], json!(2));
    let left = client
        .describe_budgets()
        .account_id("123456789012")
        .send()
        .await;
    assert_eq!(left.map(|l| l.budgets().len()).unwrap_or(0), 0);
}

#[tokio::test]
async fn a_write_declined_through_elicitation_changes_nothing_and_an_accepted_one_writes() {
    let emu = Emulator::start();
    let iam = emu.iam_with_role("MlRole").await;
    let args = json!({"kind": "role", "name": "MlRole", "tags": {"team": "ml-platform"}});
    let declining = Asked::default();
    let client = stdio_client_with(declining.clone(), Some(&emu), &["--allow-writes"], &[]).await;
    let out = ok(&call(&client, "tag_principal", args.clone()).await);
    assert_eq!(out["added"], json!({}), "{out}");
    assert!(out["note"].as_str().unwrap().contains("declined"));
    let q = declining.questions.lock().unwrap().clone();
    assert!(
        q.len() == 1 && q[0].contains("iam:TagRole") && q[0].contains("team=ml-platform"),
        "{q:?}"
    );
    assert_eq!(emu.count("TagRole").await, 0);
    client.cancel().await.ok();
    let accepting = Asked {
        accept: true,
        ..Asked::default()
    };
    let client = stdio_client_with(accepting.clone(), Some(&emu), &["--allow-writes"], &[]).await;
    let out = ok(&call(&client, "tag_principal", args.clone()).await);
    assert_eq!(out["added"], json!({"team": "ml-platform"}), "{out}");
    assert_eq!(emu.count("TagRole").await, 1);
    let tags = iam
        .list_role_tags()
        .role_name("MlRole")
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags().len(), 1);
    client.cancel().await.ok();
    // A client without elicitation: confirm: true as before.
    let client = stdio_client(Some(&emu), &["--allow-writes"], &[]).await;
    let e = err(&call(&client, "tag_principal", args).await);
    assert!(e.contains("confirm"), "{e}");
    assert_eq!(emu.count("TagRole").await, 1);
    client.cancel().await.ok();
}

#[tokio::test]
async fn logging_to_cloudwatch_gets_its_group_and_delivery_role_and_undo_removes_them() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("setup.json");
    let group = "/aws/bedrock/modelinvocations";
    let run = |extra: &[&str]| {
        let base = [
            "setup",
            "--json",
            "--steps",
            "logging",
            "--log-group",
            group,
        ];
        let st = ["--state", state.to_str().unwrap()];
        let r = cli(&emu, &[], &[&base[..], &st, extra].concat());
        (r.code, r.stdout)
    };
    let (code, out) = run(&[]);
    assert_eq!(code, 0, "{out}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    let logging = step(&plan, "logging");
    assert_eq!(
        apis(logging),
        [
            "logs:CreateLogGroup",
            "iam:CreateRole",
            "iam:PutRolePolicy",
            "bedrock:PutModelInvocationLoggingConfiguration"
        ]
    );
    let trust = &logging["calls"][1]["params"]["AssumeRolePolicyDocument"];
    assert_eq!(
        trust["Statement"][0]["Principal"]["Service"],
        json!("bedrock.amazonaws.com")
    );
    assert_eq!(
        trust["Statement"][0]["Condition"]["StringEquals"]["aws:SourceAccount"],
        json!("123456789012")
    );
    assert!(
        plan["configuration"]
            .to_string()
            .contains(&format!("--invocation-log-group {group}"))
    );
    let (code, out) = run(&["--apply"]);
    assert_eq!(code, 0, "{out}");
    let applied: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        applied["applied"][0]["verified"],
        json!("done"),
        "{applied}"
    );
    let sdk = sdk_config(&emu).await;
    let bedrock = aws_sdk_bedrock::Client::new(&sdk);
    let got = bedrock
        .get_model_invocation_logging_configuration()
        .send()
        .await
        .unwrap();
    let cw = got.logging_config().unwrap().cloud_watch_config().unwrap();
    assert_eq!(cw.log_group_name(), group);
    assert_eq!(
        cw.role_arn(),
        "arn:aws:iam::123456789012:role/BedrockCostMcpInvocationLogging"
    );
    let iam = aws_sdk_iam::Client::new(&sdk);
    assert!(
        iam.get_role()
            .role_name("BedrockCostMcpInvocationLogging")
            .send()
            .await
            .is_ok()
    );
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    let groups = logs.describe_log_groups().send().await.unwrap();
    assert!(
        groups
            .log_groups()
            .iter()
            .any(|g| g.log_group_name() == Some(group))
    );
    let (code, out) = run(&["--undo", "logging"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        iam.get_role()
            .role_name("BedrockCostMcpInvocationLogging")
            .send()
            .await
            .is_err()
    );
    let groups = logs.describe_log_groups().send().await.unwrap();
    assert!(groups.log_groups().is_empty());
}

#[tokio::test]
async fn the_prevention_policy_is_attached_as_an_iam_policy_when_asked_and_undo_detaches_it() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let iam = aws_sdk_iam::Client::new(&sdk_config(&emu).await);
    iam.create_group()
        .group_name("Admins")
        .send()
        .await
        .unwrap();
    let args = [
        "--steps",
        "prevention",
        "--attach-prevention",
        "group:Admins",
    ];
    let run = setup(&emu, dir.path(), &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plan = run.json();
    assert_eq!(
        apis(step(&plan, "prevention")),
        ["write file", "iam:CreatePolicy", "iam:AttachGroupPolicy"]
    );
    let run = setup(&emu, dir.path(), &[&args[..], &["--apply"]].concat());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["applied"][0]["verified"], json!("done"));
    let attached = iam
        .list_attached_group_policies()
        .group_name("Admins")
        .send()
        .await
        .unwrap();
    let arn = "arn:aws:iam::123456789012:policy/BedrockCostMcpRequireAttributionTags";
    assert_eq!(
        attached
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn())
            .collect::<Vec<_>>(),
        [arn]
    );
    let version = iam
        .get_policy_version()
        .policy_arn(arn)
        .version_id("v1")
        .send()
        .await
        .unwrap();
    let doc = version.policy_version().unwrap().document().unwrap();
    let doc: Value = serde_json::from_str(&percent_decode(doc)).unwrap();
    assert_eq!(
        doc["Statement"][0]["Sid"],
        json!("RequireAttributionTagsOnCreate")
    );
    let run = setup(&emu, dir.path(), &["--undo", "prevention"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        iam.list_attached_group_policies()
            .group_name("Admins")
            .send()
            .await
            .unwrap()
            .attached_policies()
            .is_empty()
    );
    assert!(iam.get_policy().policy_arn(arn).send().await.is_err());
}

/// IAM returns policy documents URL-encoded (RFC 3986).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn after_setup_the_printed_athena_flags_answer_from_the_export_it_made() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    // Setup makes the bucket, the export and the Athena table over the export's location.
    let run = setup(&emu, dir.path(), &["--steps", "export,athena", "--apply"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let out = run.json();
    let flags: Vec<String> = out["plan"]["configuration"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.as_str())
        .find(|c| c.starts_with("--athena-database"))
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(
        flags,
        [
            "--athena-database",
            "bedrock_cost",
            "--athena-table",
            "cur2",
            "--athena-output",
            "s3://bcm-cur/athena-results/"
        ]
    );
    // AWS delivers the export where the export says: a generated month stands in for it.
    let export = tempfile::tempdir().unwrap();
    let (start, _) = last_month();
    let truth = generate_cur(
        export.path(),
        &["--rows", "2000", "--start", &start, "--days", "20"],
    );
    emu.upload_dir(
        "bcm-cur",
        "cur2/bedrock-cost-mcp-cur2/data",
        &export.path().join("data"),
    )
    .await;
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let client = stdio_client(Some(&emu), &args, &[]).await;
    let got = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "source": "athena", "group_by": ["principal"], "top_n": 1000}),
    )
    .await);
    assert_cents(
        num(&got["total"]),
        num(&truth["total_unblended"]),
        "Athena over the table setup made",
    );
    client.cancel().await.ok();
}

#[tokio::test]
async fn enforcement_adds_a_budget_action_on_the_teams_principals_with_its_role() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let sdk = sdk_config(&emu).await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    iam.create_role()
        .role_name("MlRole")
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("team")
                .value("ml-platform")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let policy = dir.path().join("budgets.toml");
    std::fs::write(
        &policy,
        "[[budgets]]\ntag = \"team=ml-platform\"\nmonthly_usd = 1500\n\n[[budgets]]\ntag = \"team=search\"\nmonthly_usd = 300\n",
    )
    .unwrap();
    let p = policy.to_str().unwrap();
    let state = dir.path().join("setup.json");
    let run = |extra: &[&str]| {
        let base = [
            "--budget-policy",
            p,
            "setup",
            "--json",
            "--steps",
            "budgets",
        ];
        let enforce = ["--enforce", "--notify", "finops@example.com"];
        let st = ["--state", state.to_str().unwrap()];
        let r = cli(&emu, &[], &[&base[..], &enforce, &st, extra].concat());
        (r.code, r.stdout)
    };
    let (code, out) = run(&[]);
    assert_eq!(code, 0, "{out}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    let budgets = step(&plan, "budgets");
    assert_eq!(
        apis(budgets),
        [
            "budgets:CreateBudget",
            "budgets:CreateBudget",
            "iam:CreatePolicy",
            "iam:CreateRole",
            "budgets:CreateBudgetAction"
        ]
    );
    assert!(
        budgets["notes"]
            .to_string()
            .contains("no IAM role or user carries team=search"),
        "{budgets}"
    );
    let action = &budgets["calls"][4]["params"];
    assert_eq!(
        action["Definition"]["IamActionDefinition"]["Roles"],
        json!(["MlRole"])
    );
    let (code, out) = run(&["--apply"]);
    assert_eq!(code, 0, "{out}");
    let applied: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        applied["applied"][0]["verified"],
        json!("done"),
        "{applied}"
    );
    let client = aws_sdk_budgets::Client::new(&sdk);
    let actions = client
        .describe_budget_actions_for_budget()
        .account_id("123456789012")
        .budget_name("bedrock-team-ml-platform")
        .send()
        .await
        .unwrap();
    let a = &actions.actions()[0];
    assert_eq!(
        a.action_threshold().unwrap().action_threshold_value(),
        100.0
    );
    assert_eq!(
        a.execution_role_arn(),
        "arn:aws:iam::123456789012:role/BedrockCostMcpBudgetActions"
    );
    let def = a.definition().unwrap().iam_action_definition().unwrap();
    assert_eq!(
        def.policy_arn(),
        "arn:aws:iam::123456789012:policy/BedrockCostMcpDenyBedrockInvoke"
    );
    assert_eq!(def.roles(), ["MlRole"]);
    let (code, out) = run(&["--undo", "budgets"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        iam.get_role()
            .role_name("BedrockCostMcpBudgetActions")
            .send()
            .await
            .is_err()
    );
    assert!(
        iam.get_policy()
            .policy_arn("arn:aws:iam::123456789012:policy/BedrockCostMcpDenyBedrockInvoke")
            .send()
            .await
            .is_err()
    );
    let left = client
        .describe_budgets()
        .account_id("123456789012")
        .send()
        .await;
    assert_eq!(left.map(|l| l.budgets().len()).unwrap_or(0), 0);
}

/// A 2026-07-28 client on the stateless HTTP transport: the server may not send it requests,
/// so a write answers `input_required` with the question (SEP-2322) and the client's retry
/// carries the user's answer. The model's `confirm: true` is not taken from a client that can
/// ask; the lists carry caching hints for this version only; the server names its icon.
#[tokio::test]
async fn a_2026_client_over_http_is_asked_through_input_required_and_confirm_true_does_not_skip_it()
{
    use rmcp::model::{CacheScope, ProtocolVersion};
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::{ClientLifecycleMode, ClientServiceExt};
    let emu = Emulator::start();
    emu.iam_with_role("MlRole").await;
    let server = HttpServer::start(Some(&emu), &["--allow-writes"], &[]);
    let modern = |h: Asked| {
        let url = server.url.clone();
        async move {
            h.serve_with_lifecycle(
                StreamableHttpClientTransport::from_uri(url),
                ClientLifecycleMode::Discover {
                    preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                },
            )
            .await
            .expect("server/discover handshake")
        }
    };
    // The model says confirm: true; the user declines: nothing changes.
    let args =
        json!({"kind": "role", "name": "MlRole", "tags": {"team": "ml-platform"}, "confirm": true});
    let declining = Asked::default();
    let client = modern(declining.clone()).await;
    let out = ok(&call(&client, "tag_principal", args.clone()).await);
    assert_eq!(out["added"], json!({}), "{out}");
    assert!(out["note"].as_str().unwrap().contains("declined"), "{out}");
    let q = declining.questions.lock().unwrap().clone();
    assert!(
        q.len() == 1 && q[0].contains("iam:TagRole") && q[0].contains("team=ml-platform"),
        "{q:?}"
    );
    assert_eq!(emu.count("TagRole").await, 0);
    // The lists carry SEP-2549 hints on this version: an hour, any cache.
    let tools = client.list_tools(None).await.unwrap();
    assert_eq!(tools.ttl_ms, Some(3_600_000));
    assert_eq!(tools.cache_scope, Some(CacheScope::Public));
    client.cancel().await.ok();
    // Accepted: one TagRole.
    let accepting = Asked {
        accept: true,
        ..Asked::default()
    };
    let client = modern(accepting.clone()).await;
    let out = ok(&call(&client, "tag_principal", args.clone()).await);
    assert_eq!(out["added"], json!({"team": "ml-platform"}), "{out}");
    assert_eq!(emu.count("TagRole").await, 1);
    assert_eq!(accepting.questions.lock().unwrap().len(), 1);
    client.cancel().await.ok();
    // A retry with answers but a forged requestState changes nothing.
    let raw = reqwest::Client::new()
        .post(&server.url)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", "tools/call")
        .header("Mcp-Name", "tag_principal")
        .json(
            &json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
            "name": "tag_principal", "arguments": args,
            "inputResponses": {"confirm": {"action": "accept", "content": {"confirm": true}}},
            "requestState": "rs1.forged",
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}},
                "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"}
            }}}),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(raw.contains("do not match this call"), "{raw}");
    assert_eq!(emu.count("TagRole").await, 1);
    // An older client: no hints, and the icon in its initialize answer.
    let legacy = server.client().await;
    let tools = legacy.list_tools(None).await.unwrap();
    assert_eq!(tools.ttl_ms, None);
    assert_eq!(tools.cache_scope, None);
    let icons = legacy
        .peer_info()
        .and_then(|i| i.server_info.as_ref().and_then(|s| s.icons.clone()))
        .unwrap_or_default();
    assert!(
        icons.len() == 1 && icons[0].src.starts_with("data:image/svg+xml;base64,"),
        "{icons:?}"
    );
}
