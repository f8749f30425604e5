//! `setup`: from an empty account to answers. Reads the account's state, prints a plan (each step,
//! the AWS calls with their parameters, what it costs, when data appears, whether it is done),
//! and changes nothing until `--apply`. Every applied step writes what it created to a state
//! file, so `--undo STEP` removes exactly that (never what existed before).
//!
//! Steps: `export` (CUR 2.0 with caller identity, and its bucket and bucket policy), `tags`
//! (activate the `iamPrincipal/*` keys, ask for a backfill), `athena` (database and table with
//! partition projection), `logging` (model invocation logging to S3, metadata only),
//! `prevention` (the policy requiring the keys, written to a file). `anomaly_monitor` and
//! `budgets` are planned with their exact calls, not applied by this version.
//!
//! Shapes: aws-sdk-bcmdataexports 1.120 (Export, DataQuery.TableConfigurations
//! COST_AND_USAGE_REPORT properties), aws-sdk-costexplorer 1.138
//! (StartCostAllocationTagBackfill: BackfillFrom the first day of a month, at most twelve months
//! back, one request per 24 hours), aws-sdk-bedrock 1.166 (PutModelInvocationLoggingConfiguration),
//! Athena DDL (CREATE EXTERNAL TABLE ... STORED AS PARQUET with `projection.*` table properties,
//! <https://docs.aws.amazon.com/athena/latest/ug/partition-projection.html>).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::Datelike;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::Config;

/// The steps, in the order they run.
pub const STEPS: [&str; 7] = [
    "export",
    "tags",
    "athena",
    "logging",
    "anomaly_monitor",
    "budgets",
    "prevention",
];

/// Sid of the statements setup adds to a bucket policy (found again by undo).
const SID_EXPORTS: &str = "BedrockCostMcpDataExports";
const SID_LOGGING: &str = "BedrockCostMcpInvocationLogging";

#[derive(clap::Args, Debug, Clone)]
pub struct SetupArgs {
    /// Make the changes of the plan (the steps not done yet; with --steps, only those).
    #[arg(long)]
    pub apply: bool,
    /// Remove what an earlier --apply of STEP created (as the state file records it).
    #[arg(long, value_name = "STEP", conflicts_with = "apply")]
    pub undo: Option<String>,
    /// Only these steps (comma-separated): export, tags, athena, logging, anomaly_monitor,
    /// budgets, prevention.
    #[arg(long, value_delimiter = ',')]
    pub steps: Vec<String>,
    /// The bucket of the CUR export and the invocation logs (created when missing).
    #[arg(long)]
    pub bucket: Option<String>,
    /// Name of the CUR 2.0 export.
    #[arg(long, default_value = "bedrock-cost-mcp-cur2")]
    pub export_name: String,
    /// Prefix of the export in the bucket.
    #[arg(long, default_value = "cur2")]
    pub export_prefix: String,
    /// Principal tag keys to activate (without `iamPrincipal/`).
    #[arg(long, value_delimiter = ',', default_value = "team")]
    pub tag_keys: Vec<String>,
    /// Ask AWS to backfill the tags from this month (YYYY-MM, at most 12 months back).
    #[arg(long, value_name = "YYYY-MM")]
    pub backfill_from: Option<String>,
    /// Athena database to create.
    #[arg(long, default_value = "bedrock_cost")]
    pub database: String,
    /// Athena table to create over the export.
    #[arg(long, default_value = "cur2")]
    pub table: String,
    /// Where Athena writes the DDL results (default s3://BUCKET/athena-results/).
    #[arg(long)]
    pub athena_results: Option<String>,
    /// Prefix of the invocation logs in the bucket.
    #[arg(long, default_value = "bedrock-invocation-logs")]
    pub logs_prefix: String,
    /// Email or SNS topic ARN for the anomaly monitor's alerts (planned only).
    #[arg(long)]
    pub notify: Option<String>,
    /// Where the prevention policy is written.
    #[arg(long, default_value = "bedrock-cost-mcp-require-tags.json")]
    pub policy_file: PathBuf,
    /// The state file of applied steps (default $XDG_STATE_HOME/bedrock-cost-mcp/setup.json).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Print the plan (and results) as JSON.
    #[arg(long)]
    pub json: bool,
}

/// One AWS call a step makes, with its parameters.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedCall {
    pub api: String,
    pub params: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Nothing to do.
    Done,
    /// `--apply` makes the calls listed.
    ToDo,
    /// Could not be read or cannot be done now (says why).
    Blocked,
    /// Planned with its calls; this version does not apply it.
    PlanOnly,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub id: &'static str,
    pub title: &'static str,
    pub state: StepState,
    /// What is there now.
    pub found: String,
    pub calls: Vec<PlannedCall>,
    pub cost: &'static str,
    pub data_after: &'static str,
    /// What `--undo` removes, or why it cannot.
    pub undo: String,
    pub permissions: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub account: String,
    pub region: String,
    pub steps: Vec<Step>,
    /// The server flags that read what setup turns on, ready to paste.
    pub configuration: Vec<String>,
}

/// What an applied step created (or changed), so undo can remove exactly that.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Created {
    Bucket {
        name: String,
    },
    PolicyStatement {
        bucket: String,
        sid: String,
    },
    Export {
        arn: String,
    },
    /// INCLUDE_IAM_PRINCIPAL_DATA turned on in an existing export (its value before).
    ExportPrincipalData {
        arn: String,
        previous: Option<String>,
    },
    TagActivated {
        key: String,
    },
    /// Cannot be undone.
    Backfill {
        from: String,
    },
    AthenaDatabase {
        name: String,
    },
    AthenaTable {
        database: String,
        name: String,
    },
    LoggingConfiguration,
    File {
        path: String,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub account: String,
    pub steps: BTreeMap<String, Vec<Created>>,
}

#[derive(Debug, Serialize)]
pub struct Outcome {
    pub step: &'static str,
    pub ok: bool,
    pub created: Vec<Created>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The step's state when read again after the change.
    pub verified: StepState,
}

/// The AWS clients setup uses.
struct Aws {
    sts: aws_sdk_sts::Client,
    exports: aws_sdk_bcmdataexports::Client,
    s3: aws_sdk_s3::Client,
    ce: aws_sdk_costexplorer::Client,
    athena: aws_sdk_athena::Client,
    bedrock: aws_sdk_bedrock::Client,
    region: String,
}

impl Aws {
    async fn load() -> Aws {
        let sdk = crate::sources::http_client::load_sdk_config().await;
        let region = sdk
            .region()
            .map(|r| r.as_ref().to_string())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "us-east-1".into());
        let global =
            crate::sources::clients::global_region(crate::sources::clients::partition(&region));
        // Data Exports is served from us-east-1 (its partition's global region).
        let exports = aws_sdk_bcmdataexports::Client::from_conf(
            aws_sdk_bcmdataexports::config::Builder::from(&sdk)
                .region(aws_config::Region::new(global))
                .build(),
        );
        // An endpoint override (a local emulator) serves buckets by path.
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(sdk.endpoint_url().is_some())
                .build(),
        );
        Aws {
            sts: crate::sources::clients::sts(&sdk),
            exports,
            s3,
            ce: crate::sources::clients::cost_explorer(&sdk),
            athena: crate::sources::clients::athena(&sdk),
            bedrock: crate::sources::clients::bedrock(&sdk),
            region,
        }
    }
}

/// An SDK error as one line, with the action it needed when AWS refused it.
fn err_line<E, R>(
    action: &str,
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let code = e.code().unwrap_or("error");
    let msg = e.message().unwrap_or_default();
    if code.contains("AccessDenied") || code == "UnauthorizedOperation" {
        format!(
            "{action} was refused ({code}): the caller lacks it; it is usually held by the payer (management) account's administrator"
        )
    } else {
        format!("{action}: {code} {msg}").trim().to_string()
    }
}

fn code_of<E, R>(e: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    e.code().unwrap_or_default().to_string()
}

/// The settings the plan and the changes are made from.
struct Wanted<'a> {
    args: &'a SetupArgs,
    account: String,
    bucket: Option<String>,
    keys: Vec<String>,
}

impl Wanted<'_> {
    fn export_location(&self) -> Option<String> {
        self.bucket.as_ref().map(|b| {
            format!(
                "s3://{b}/{}/{}/data/",
                self.args.export_prefix.trim_matches('/'),
                self.args.export_name
            )
        })
    }
    fn logs_location(&self) -> Option<String> {
        self.bucket
            .as_ref()
            .map(|b| format!("s3://{b}/{}", self.args.logs_prefix.trim_matches('/')))
    }
    fn results(&self) -> Option<String> {
        self.args.athena_results.clone().or_else(|| {
            self.bucket
                .as_ref()
                .map(|b| format!("s3://{b}/athena-results/"))
        })
    }
}

/// The export's table properties: CUR 2.0 with caller identity, resources, daily.
fn table_properties() -> HashMap<String, String> {
    [
        ("INCLUDE_IAM_PRINCIPAL_DATA", "TRUE"),
        ("INCLUDE_RESOURCES", "TRUE"),
        ("TIME_GRANULARITY", "DAILY"),
        ("INCLUDE_SPLIT_COST_ALLOCATION_DATA", "FALSE"),
        ("INCLUDE_MANUAL_DISCOUNT_COMPATIBILITY", "FALSE"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The statement that lets Data Exports write to the bucket (Data Exports user guide, "Setting up
/// an Amazon S3 bucket for data exports": the service principal, the source account and the
/// export ARN conditions; AWS writes a test object at the bucket root, so the whole bucket).
fn exports_statement(bucket: &str, account: &str) -> Value {
    json!({
        "Sid": SID_EXPORTS,
        "Effect": "Allow",
        "Principal": {"Service": ["bcm-data-exports.amazonaws.com", "billingreports.amazonaws.com"]},
        "Action": ["s3:PutObject", "s3:GetBucketPolicy"],
        "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
        "Condition": {
            "StringLike": {
                "aws:SourceAccount": account,
                "aws:SourceArn": [
                    format!("arn:aws:cur:us-east-1:{account}:definition/*"),
                    format!("arn:aws:bcm-data-exports:us-east-1:{account}:export/*")
                ]
            }
        }
    })
}

/// The statement that lets model invocation logging write to the bucket (Bedrock user guide,
/// "Monitor model invocation using CloudWatch Logs and Amazon S3").
fn logging_statement(bucket: &str, prefix: &str, account: &str, region: &str) -> Value {
    json!({
        "Sid": SID_LOGGING,
        "Effect": "Allow",
        "Principal": {"Service": "bedrock.amazonaws.com"},
        "Action": ["s3:PutObject"],
        "Resource": [format!("arn:aws:s3:::{bucket}/{prefix}/AWSLogs/{account}/BedrockModelInvocationLogs/*")],
        "Condition": {
            "StringEquals": {"aws:SourceAccount": account},
            "ArnLike": {"aws:SourceArn": format!("arn:aws:bedrock:{region}:{account}:*")}
        }
    })
}

/// The Athena statements: the database, and the table over the export's Parquet with the
/// billing period projected (`BILLING_PERIOD=YYYY-MM` folders), so no crawler is needed.
pub fn athena_ddl(database: &str, table: &str, location: &str) -> Vec<String> {
    let location = location.trim_end_matches('/');
    vec![
        format!("CREATE DATABASE IF NOT EXISTS {database}"),
        format!(
            "CREATE EXTERNAL TABLE IF NOT EXISTS {database}.{table} (\n  \
             bill_billing_period_start_date timestamp,\n  \
             line_item_usage_start_date timestamp,\n  \
             line_item_usage_end_date timestamp,\n  \
             line_item_usage_account_id string,\n  \
             line_item_line_item_type string,\n  \
             line_item_product_code string,\n  \
             line_item_usage_type string,\n  \
             line_item_operation string,\n  \
             line_item_iam_principal string,\n  \
             line_item_usage_amount double,\n  \
             line_item_unblended_cost double,\n  \
             line_item_net_unblended_cost double,\n  \
             line_item_currency_code string,\n  \
             pricing_unit string,\n  \
             product_region_code string,\n  \
             product map<string,string>,\n  \
             tags map<string,string>\n)\n\
             PARTITIONED BY (billing_period string)\n\
             STORED AS PARQUET\n\
             LOCATION '{location}/'\n\
             TBLPROPERTIES (\n  \
             'projection.enabled'='true',\n  \
             'projection.billing_period.type'='date',\n  \
             'projection.billing_period.format'='yyyy-MM',\n  \
             'projection.billing_period.range'='2024-01,NOW',\n  \
             'projection.billing_period.interval'='1',\n  \
             'projection.billing_period.interval.unit'='MONTHS',\n  \
             'storage.location.template'='{location}/BILLING_PERIOD=${{billing_period}}/'\n)"
        ),
    ]
}

/// `YYYY-MM` as the backfill start AWS takes (`YYYY-MM-01T00:00:00Z`), checked against today:
/// not in the future, at most twelve months back.
pub fn backfill_start(month: &str, today: chrono::NaiveDate) -> Result<String, String> {
    let d = chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
        .map_err(|_| format!("--backfill-from {month}: expected YYYY-MM"))?;
    let months = |d: chrono::NaiveDate| d.year() * 12 + d.month0() as i32;
    if months(d) > months(today) {
        return Err(format!("--backfill-from {month} is in the future"));
    }
    if months(today) - months(d) > 12 {
        return Err(format!(
            "--backfill-from {month} is more than 12 months back (AWS backfills at most the previous twelve months)"
        ));
    }
    Ok(format!("{}T00:00:00Z", d.format("%Y-%m-%d")))
}

/// Add `statement` to a bucket policy (replacing one with the same Sid).
fn with_statement(policy: Option<&str>, statement: Value) -> Result<String, String> {
    let mut doc: Value = match policy {
        Some(p) if !p.trim().is_empty() => {
            serde_json::from_str(p).map_err(|e| format!("the bucket policy is not JSON: {e}"))?
        }
        _ => json!({"Version": "2012-10-17", "Statement": []}),
    };
    let sid = statement["Sid"].clone();
    let list = doc["Statement"]
        .as_array_mut()
        .ok_or("the bucket policy has no Statement list")?;
    list.retain(|s| s["Sid"] != sid);
    list.push(statement);
    Ok(doc.to_string())
}

/// A bucket policy without the statement `sid`; None when nothing else is left.
fn without_statement(policy: &str, sid: &str) -> Option<String> {
    let mut doc: Value = serde_json::from_str(policy).ok()?;
    let list = doc["Statement"].as_array_mut()?;
    list.retain(|s| s["Sid"] != json!(sid));
    (!list.is_empty()).then(|| doc.to_string())
}

fn state_path(args: &SetupArgs) -> PathBuf {
    args.state.clone().unwrap_or_else(|| {
        let base = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .unwrap_or_else(|| PathBuf::from("."));
        base.join("bedrock-cost-mcp/setup.json")
    })
}

fn read_state(path: &Path) -> Result<State, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| format!("the setup state {} is not readable: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(format!("the setup state {}: {e}", path.display())),
    }
}

fn write_state(path: &Path, state: &State) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(state).unwrap_or_default())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// What the export step finds: the export that has (or lacks) principal data.
struct FoundExport {
    arn: String,
    name: String,
    principal_data: Option<String>,
    location: Option<String>,
}

async fn find_export(aws: &Aws, name: &str) -> Result<Option<FoundExport>, String> {
    let list = aws
        .exports
        .list_exports()
        .send()
        .await
        .map_err(|e| err_line("bcm-data-exports:ListExports", &e))?;
    let mut fallback = None;
    for r in list.exports() {
        let got = aws
            .exports
            .get_export()
            .export_arn(r.export_arn())
            .send()
            .await
            .map_err(|e| err_line("bcm-data-exports:GetExport", &e))?;
        let Some(export) = got.export() else { continue };
        let Some(props) = export
            .data_query()
            .and_then(|q| q.table_configurations())
            .and_then(|t| t.get("COST_AND_USAGE_REPORT"))
        else {
            continue;
        };
        let location = export
            .destination_configurations()
            .and_then(|d| d.s3_destination())
            .map(|s| {
                format!(
                    "s3://{}/{}/{}/data/",
                    s.s3_bucket(),
                    s.s3_prefix().trim_matches('/'),
                    export.name()
                )
            });
        let found = FoundExport {
            arn: r.export_arn().to_string(),
            name: export.name().to_string(),
            principal_data: props.get("INCLUDE_IAM_PRINCIPAL_DATA").cloned(),
            location,
        };
        if found.principal_data.as_deref() == Some("TRUE") || found.name == name {
            return Ok(Some(found));
        }
        fallback.get_or_insert(found);
    }
    Ok(fallback)
}

async fn bucket_exists(aws: &Aws, bucket: &str) -> Result<bool, String> {
    match aws.s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(aws_sdk_s3::operation::head_bucket::HeadBucketError::is_not_found) =>
        {
            Ok(false)
        }
        Err(e) if matches!(code_of(&e).as_str(), "NotFound" | "NoSuchBucket" | "404") => Ok(false),
        Err(e) => Err(err_line("s3:ListBucket (HeadBucket)", &e)),
    }
}

async fn bucket_policy(aws: &Aws, bucket: &str) -> Result<Option<String>, String> {
    match aws.s3.get_bucket_policy().bucket(bucket).send().await {
        Ok(out) => Ok(out.policy().map(str::to_string)),
        Err(e) if code_of(&e) == "NoSuchBucketPolicy" => Ok(None),
        Err(e) => Err(err_line("s3:GetBucketPolicy", &e)),
    }
}

/// Read the account and build the plan.
async fn plan(aws: &Aws, w: &Wanted<'_>, config: &Config) -> Plan {
    let mut steps = Vec::new();
    let bucket_note = "name the bucket with --bucket (created when missing)".to_string();

    // 1. export
    let mut s = Step {
        id: "export",
        title: "CUR 2.0 export with caller identity (IAM principal) data",
        state: StepState::ToDo,
        found: String::new(),
        calls: vec![],
        cost: "Data Exports: no charge for the export itself; S3 storage of the Parquet files (a few cents a month for most accounts)",
        data_after: "first delivery within 24 hours; Bedrock lines complete after the next daily refresh",
        undo: String::new(),
        permissions: vec![
            "bcm-data-exports:ListExports",
            "bcm-data-exports:GetExport",
            "bcm-data-exports:CreateExport",
            "bcm-data-exports:UpdateExport",
            "cur:PutReportDefinition",
            "s3:CreateBucket",
            "s3:GetBucketPolicy",
            "s3:PutBucketPolicy",
        ],
        notes: vec![],
    };
    match find_export(aws, &w.args.export_name).await {
        Err(e) => {
            s.state = StepState::Blocked;
            s.found = e;
        }
        Ok(Some(f)) if f.principal_data.as_deref() == Some("TRUE") => {
            s.state = StepState::Done;
            s.found = format!(
                "export {} ({}) includes caller identity data; it delivers to {}",
                f.name,
                f.arn,
                f.location.as_deref().unwrap_or("?")
            );
            s.undo = "nothing of this step was created by setup".into();
        }
        Ok(Some(f)) => {
            s.found = format!(
                "export {} ({}) has no caller identity data (INCLUDE_IAM_PRINCIPAL_DATA {})",
                f.name,
                f.arn,
                f.principal_data.as_deref().unwrap_or("absent")
            );
            s.calls.push(PlannedCall {
                api: "bcm-data-exports:UpdateExport".into(),
                params: json!({"ExportArn": f.arn, "Export": {"DataQuery": {"TableConfigurations": {"COST_AND_USAGE_REPORT": {"INCLUDE_IAM_PRINCIPAL_DATA": "TRUE"}}}}}),
            });
            s.undo = "sets INCLUDE_IAM_PRINCIPAL_DATA back to its value before; data already delivered stays".into();
        }
        Ok(None) => match &w.bucket {
            None => {
                s.state = StepState::Blocked;
                s.found = format!("no CUR 2.0 export; {bucket_note}");
            }
            Some(bucket) => {
                s.found = "no CUR 2.0 export".into();
                match bucket_exists(aws, bucket).await {
                    Ok(false) => {
                        s.calls.push(PlannedCall {
                            api: "s3:CreateBucket".into(),
                            params: json!({"Bucket": bucket}),
                        });
                    }
                    Ok(true) => {}
                    Err(e) => s.notes.push(e),
                }
                s.calls.push(PlannedCall {
                    api: "s3:PutBucketPolicy".into(),
                    params: json!({"Bucket": bucket, "Statement added": exports_statement(bucket, &w.account)}),
                });
                s.calls.push(PlannedCall {
                    api: "bcm-data-exports:CreateExport".into(),
                    params: json!({"Export": {
                        "Name": w.args.export_name,
                        "DataQuery": {"QueryStatement": "SELECT * FROM COST_AND_USAGE_REPORT",
                                      "TableConfigurations": {"COST_AND_USAGE_REPORT": table_properties()}},
                        "DestinationConfigurations": {"S3Destination": {
                            "S3Bucket": bucket, "S3Prefix": w.args.export_prefix, "S3Region": aws.region,
                            "S3OutputConfigurations": {"OutputType": "CUSTOM", "Format": "PARQUET",
                                                       "Compression": "PARQUET", "Overwrite": "OVERWRITE_REPORT"}}},
                        "RefreshCadence": {"Frequency": "SYNCHRONOUS"}}}),
                });
                s.undo = "deletes the export, the policy statement it added and the bucket if setup created it and it is empty; delivered data stays until you delete it".into();
            }
        },
    }
    steps.push(s);

    // 2. tags
    let mut s = Step {
        id: "tags",
        title: "Activate the iamPrincipal/* cost allocation tags (payer account), backfill",
        state: StepState::ToDo,
        found: String::new(),
        calls: vec![],
        cost: "$0.01 per Cost Explorer request (ListCostAllocationTags, UpdateCostAllocationTagsStatus, the backfill calls)",
        data_after: "activation takes up to 24 hours and applies to new usage; a backfill runs for hours",
        undo: "deactivates the keys setup activated; a backfill request cannot be undone".into(),
        permissions: vec![
            "ce:ListCostAllocationTags",
            "ce:UpdateCostAllocationTagsStatus",
            "ce:StartCostAllocationTagBackfill",
            "ce:ListCostAllocationTagBackfillHistory",
        ],
        notes: vec![
            "AWS documents the backfill for activated cost allocation tags in general (StartCostAllocationTagBackfill backfills the activation status of all tag keys); it does not say whether iamPrincipal/* keys are included: check the Cost Explorer grouping of a past month once the backfill SUCCEEDED".into(),
        ],
    };
    let want: Vec<String> = w.keys.iter().map(|k| format!("iamPrincipal/{k}")).collect();
    match aws
        .ce
        .list_cost_allocation_tags()
        .set_tag_keys(Some(want.clone()))
        .send()
        .await
    {
        Err(e) => {
            s.state = StepState::Blocked;
            s.found = err_line("ce:ListCostAllocationTags", &e);
        }
        Ok(out) => {
            let status: BTreeMap<&str, &str> = out
                .cost_allocation_tags()
                .iter()
                .map(|t| (t.tag_key(), t.status().as_str()))
                .collect();
            let mut found = vec![];
            let mut to_activate = vec![];
            for k in &want {
                match status.get(k.as_str()) {
                    Some(&"Active") => found.push(format!("{k} active")),
                    Some(st) => {
                        found.push(format!("{k} {}", st.to_lowercase()));
                        to_activate.push(k.clone());
                    }
                    None => found.push(format!(
                        "{k} not seen yet (a key appears after a principal carrying it makes a billed call; activate it then)"
                    )),
                }
            }
            s.found = found.join("; ");
            if !to_activate.is_empty() {
                s.calls.push(PlannedCall {
                    api: "ce:UpdateCostAllocationTagsStatus".into(),
                    params: json!({"CostAllocationTagsStatus": to_activate.iter().map(|k| json!({"TagKey": k, "Status": "Active"})).collect::<Vec<_>>()}),
                });
            }
        }
    }
    if let Some(month) = &w.args.backfill_from {
        match backfill_start(month, crate::domain::clock::today()) {
            Err(e) => s.notes.push(e),
            Ok(from) => {
                match aws
                    .ce
                    .list_cost_allocation_tag_backfill_history()
                    .send()
                    .await
                {
                    Err(e) => s
                        .notes
                        .push(err_line("ce:ListCostAllocationTagBackfillHistory", &e)),
                    Ok(h) => {
                        let last = h.backfill_requests().first();
                        if let Some(b) = last {
                            s.notes.push(format!(
                                "last backfill: from {} requested {} is {}",
                                b.backfill_from().unwrap_or("?"),
                                b.requested_at().unwrap_or("?"),
                                b.backfill_status().map_or("?", |s| s.as_str())
                            ));
                        }
                        let processing = last.is_some_and(|b| {
                        b.backfill_status().map(aws_sdk_costexplorer::types::CostAllocationTagBackfillStatus::as_str) == Some("PROCESSING")
                    });
                        if processing {
                            s.notes
                                .push("a backfill is still processing: no new request".into());
                        } else if last.is_some_and(|b| b.backfill_from() == Some(from.as_str())) {
                            s.notes
                                .push(format!("a backfill from {from} was already requested"));
                        } else {
                            s.calls.push(PlannedCall {
                                api: "ce:StartCostAllocationTagBackfill".into(),
                                params: json!({"BackfillFrom": from}),
                            });
                        }
                    }
                }
            }
        }
    }
    if s.state == StepState::ToDo && s.calls.is_empty() {
        s.state = StepState::Done;
    }
    steps.push(s);

    // 3. athena
    let location = w.export_location();
    let mut s = Step {
        id: "athena",
        title: "Athena database and table over the export (partition projection, no crawler)",
        state: StepState::ToDo,
        found: String::new(),
        calls: vec![],
        cost: "Athena: DDL statements are free; queries $5 per TB scanned (the server reads only the months asked)",
        data_after: "as soon as the export has delivered",
        undo: "drops the table and the database setup created (the export's files stay)".into(),
        permissions: vec![
            "athena:StartQueryExecution",
            "athena:GetQueryExecution",
            "athena:GetTableMetadata",
            "glue:CreateDatabase",
            "glue:CreateTable",
            "glue:DeleteTable",
            "glue:DeleteDatabase",
            "s3:PutObject (the results location)",
        ],
        notes: vec![
            "partition projection (projection.* table properties) is accepted by the emulator as text only; a real account confirms it on the first query".into(),
        ],
    };
    match (&location, w.results()) {
        (Some(loc), Some(results)) => {
            let exists = aws
                .athena
                .get_table_metadata()
                .catalog_name("AwsDataCatalog")
                .database_name(&w.args.database)
                .table_name(&w.args.table)
                .send()
                .await;
            match exists {
                Ok(_) => {
                    s.state = StepState::Done;
                    s.found = format!("table {}.{} exists", w.args.database, w.args.table);
                }
                Err(e) => {
                    s.found = format!(
                        "table {}.{} not found ({})",
                        w.args.database,
                        w.args.table,
                        code_of(&e)
                    );
                    for sql in athena_ddl(&w.args.database, &w.args.table, loc) {
                        s.calls.push(PlannedCall {
                            api: "athena:StartQueryExecution".into(),
                            params: json!({"QueryString": sql, "ResultConfiguration": {"OutputLocation": results}}),
                        });
                    }
                }
            }
        }
        _ => {
            s.state = StepState::Blocked;
            s.found = format!("the table's location is the export's: {bucket_note}");
        }
    }
    steps.push(s);

    // 4. logging
    let mut s = Step {
        id: "logging",
        title: "Bedrock model invocation logging to S3, metadata only (the live layer)",
        state: StepState::ToDo,
        found: String::new(),
        calls: vec![],
        cost: "S3 storage of one small JSON record per call (text, image and embedding bodies stay off); CloudWatch Logs delivery would add $0.50 per GB ingested",
        data_after: "minutes after each call",
        undo: "deletes the logging configuration if setup turned it on (none was there) and the bucket policy statement it added".into(),
        permissions: vec![
            "bedrock:GetModelInvocationLoggingConfiguration",
            "bedrock:PutModelInvocationLoggingConfiguration",
            "s3:PutBucketPolicy",
        ],
        notes: vec![],
    };
    match crate::sources::invocation_logs::logging_setup(&aws.bedrock).await {
        Err(e) => {
            s.state = StepState::Blocked;
            s.found = e.to_string();
        }
        Ok(l) if l.is_on() => {
            s.state = StepState::Done;
            s.found = format!(
                "logging is on in {} ({}{})",
                aws.region,
                l.s3.as_deref().unwrap_or(""),
                l.log_group
                    .as_deref()
                    .map(|g| format!(" CloudWatch Logs {g}"))
                    .unwrap_or_default()
            );
            s.undo = "nothing of this step was created by setup".into();
        }
        Ok(_) => match &w.bucket {
            None => {
                s.state = StepState::Blocked;
                s.found = format!("logging is off in {}; {bucket_note}", aws.region);
            }
            Some(bucket) => {
                s.found = format!("logging is off in {}", aws.region);
                s.calls.push(PlannedCall {
                    api: "s3:PutBucketPolicy".into(),
                    params: json!({"Bucket": bucket, "Statement added": logging_statement(bucket, w.args.logs_prefix.trim_matches('/'), &w.account, &aws.region)}),
                });
                s.calls.push(PlannedCall {
                    api: "bedrock:PutModelInvocationLoggingConfiguration".into(),
                    params: json!({"loggingConfig": {"s3Config": {"bucketName": bucket, "keyPrefix": w.args.logs_prefix.trim_matches('/')},
                        "textDataDeliveryEnabled": false, "imageDataDeliveryEnabled": false,
                        "embeddingDataDeliveryEnabled": false, "videoDataDeliveryEnabled": false}}),
                });
            }
        },
    }
    steps.push(s);

    // 5. anomaly monitor (plan only)
    let key = w.keys.first().cloned().unwrap_or_else(|| "team".into());
    steps.push(Step {
        id: "anomaly_monitor",
        title: "Cost Anomaly Detection monitor on the principal tag",
        state: StepState::PlanOnly,
        found: String::new(),
        calls: vec![
            PlannedCall {
                api: "ce:CreateAnomalyMonitor".into(),
                params: json!({"AnomalyMonitor": {"MonitorName": format!("bedrock-by-{key}"), "MonitorType": "CUSTOM",
                    "MonitorSpecification": {"Tags": {"Key": format!("iamPrincipal/{key}"), "MatchOptions": ["ABSENT", "EQUALS"]}}}}),
            },
            PlannedCall {
                api: "ce:CreateAnomalySubscription".into(),
                params: json!({"AnomalySubscription": {"SubscriptionName": format!("bedrock-by-{key}"),
                    "Frequency": if w.args.notify.as_deref().is_some_and(|n| n.starts_with("arn:")) { "IMMEDIATE" } else { "DAILY" },
                    "Subscribers": [match w.args.notify.as_deref() {
                        Some(n) if n.starts_with("arn:") => json!({"Type": "SNS", "Address": n}),
                        Some(n) => json!({"Type": "EMAIL", "Address": n}),
                        None => json!({"Type": "EMAIL", "Address": "<--notify>"}),
                    }],
                    "ThresholdExpression": {"Dimensions": {"Key": "ANOMALY_TOTAL_IMPACT_ABSOLUTE", "Values": ["10"], "MatchOptions": ["GREATER_THAN_OR_EQUAL"]}}}}),
            },
        ],
        cost: "free",
        data_after: "Anomaly Detection needs about 10 days of history before it flags",
        undo: "not applied by this version".into(),
        permissions: vec!["ce:CreateAnomalyMonitor", "ce:CreateAnomalySubscription"],
        notes: vec!["planned only: run the two calls with the AWS CLI (aws ce create-anomaly-monitor / create-anomaly-subscription)".into()],
    });

    // 6. budgets (plan only)
    let teams: Vec<String> = config
        .budget_policy
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|t| {
            t.lines()
                .filter_map(|l| {
                    l.trim()
                        .strip_prefix("[team.")
                        .map(|r| r.trim_end_matches(']').trim_matches('"').to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    steps.push(Step {
        id: "budgets",
        title: "Monthly budgets per team, filtered on the principal tag",
        state: StepState::PlanOnly,
        found: if teams.is_empty() {
            "no teams in a --budget-policy file".into()
        } else {
            format!("teams in the budget policy: {}", teams.join(", "))
        },
        calls: teams
            .iter()
            .map(|t| PlannedCall {
                api: "budgets:CreateBudget".into(),
                params: json!({"AccountId": w.account, "Budget": {"BudgetName": format!("bedrock-{t}"), "BudgetType": "COST", "TimeUnit": "MONTHLY",
                    "FilterExpression": {"Tags": {"Key": format!("iamPrincipal/{key}"), "Values": [t], "MatchOptions": ["EQUALS"]}}}}),
            })
            .collect(),
        cost: "two budgets free, then $0.02 per budget per day; budget actions $0.10 per action per day after the first two",
        data_after: "after the tags are active",
        undo: "not applied by this version".into(),
        permissions: vec!["budgets:ModifyBudget", "budgets:CreateBudgetAction (enforcement; needs an execution role)"],
        notes: vec!["planned only; enforcement at 100% needs a budget action with an execution role that may attach a deny policy to the team's principals".into()],
    });

    // 7. prevention policy
    let path = w.args.policy_file.display().to_string();
    let exists = w.args.policy_file.exists();
    steps.push(Step {
        id: "prevention",
        title: "The policy that requires the tag keys on new users and roles",
        state: if exists { StepState::Done } else { StepState::ToDo },
        found: if exists {
            format!("{path} exists")
        } else {
            format!("{path} not written")
        },
        calls: vec![PlannedCall {
            api: "write file".into(),
            params: json!({"path": path, "policy": crate::domain::prevention::prevention_policy(&w.keys)}),
        }],
        cost: "free",
        data_after: "attach it as an SCP (organizations:AttachPolicy) or IAM policy yourself; setup only writes it",
        undo: "deletes the file setup wrote".into(),
        permissions: vec![],
        notes: vec![],
    });

    let mut configuration = vec![];
    if let Some(loc) = &location {
        configuration.push(format!("--cur {loc}"));
        configuration.push(format!(
            "--athena-database {} --athena-table {}{}",
            w.args.database,
            w.args.table,
            w.results()
                .map(|r| format!(" --athena-output {r}"))
                .unwrap_or_default()
        ));
    }
    if let Some(l) = w.logs_location() {
        configuration.push(format!("--invocation-logs {l}"));
    }
    configuration.push(format!("--required-tag-keys {}", w.keys.join(",")));
    Plan {
        account: w.account.clone(),
        region: aws.region.clone(),
        steps,
        configuration,
    }
}

/// Apply one step; what it created, in order (recorded even when a later call fails).
async fn apply_step(
    aws: &Aws,
    w: &Wanted<'_>,
    step: &Step,
    created: &mut Vec<Created>,
) -> Result<(), String> {
    match step.id {
        "export" => {
            for call in &step.calls {
                match call.api.as_str() {
                    "s3:CreateBucket" => {
                        let bucket = w.bucket.clone().unwrap_or_default();
                        let mut req = aws.s3.create_bucket().bucket(&bucket);
                        if aws.region != "us-east-1" {
                            req = req.create_bucket_configuration(
                                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                                    .location_constraint(
                                        aws_sdk_s3::types::BucketLocationConstraint::from(
                                            aws.region.as_str(),
                                        ),
                                    )
                                    .build(),
                            );
                        }
                        req.send()
                            .await
                            .map_err(|e| err_line("s3:CreateBucket", &e))?;
                        created.push(Created::Bucket { name: bucket });
                    }
                    "s3:PutBucketPolicy" => {
                        let bucket = w.bucket.clone().unwrap_or_default();
                        put_statement(aws, &bucket, exports_statement(&bucket, &w.account)).await?;
                        created.push(Created::PolicyStatement {
                            bucket,
                            sid: SID_EXPORTS.into(),
                        });
                    }
                    "bcm-data-exports:CreateExport" => {
                        let export = build_export(w, &aws.region)?;
                        let out = aws
                            .exports
                            .create_export()
                            .export(export)
                            .send()
                            .await
                            .map_err(|e| err_line("bcm-data-exports:CreateExport", &e))?;
                        created.push(Created::Export {
                            arn: out.export_arn().unwrap_or_default().to_string(),
                        });
                    }
                    "bcm-data-exports:UpdateExport" => {
                        let arn = call.params["ExportArn"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string();
                        let previous = set_principal_data(aws, &arn, Some("TRUE")).await?;
                        created.push(Created::ExportPrincipalData { arn, previous });
                    }
                    other => return Err(format!("unknown call {other}")),
                }
            }
            Ok(())
        }
        "tags" => {
            for call in &step.calls {
                match call.api.as_str() {
                    "ce:UpdateCostAllocationTagsStatus" => {
                        let keys: Vec<String> = call.params["CostAllocationTagsStatus"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|e| e["TagKey"].as_str().map(str::to_string))
                            .collect();
                        let errors = set_tag_status(aws, &keys, "Active").await?;
                        for k in &keys {
                            if !errors.iter().any(|e| e.starts_with(k.as_str())) {
                                created.push(Created::TagActivated { key: k.clone() });
                            }
                        }
                        if !errors.is_empty() {
                            return Err(errors.join("; "));
                        }
                    }
                    "ce:StartCostAllocationTagBackfill" => {
                        let from = call.params["BackfillFrom"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string();
                        aws.ce
                            .start_cost_allocation_tag_backfill()
                            .backfill_from(&from)
                            .send()
                            .await
                            .map_err(|e| err_line("ce:StartCostAllocationTagBackfill", &e))?;
                        created.push(Created::Backfill { from });
                    }
                    other => return Err(format!("unknown call {other}")),
                }
            }
            Ok(())
        }
        "athena" => {
            let results = w.results().unwrap_or_default();
            for (i, call) in step.calls.iter().enumerate() {
                let sql = call.params["QueryString"].as_str().unwrap_or_default();
                run_athena(aws, sql, &results).await?;
                created.push(if i == 0 {
                    Created::AthenaDatabase {
                        name: w.args.database.clone(),
                    }
                } else {
                    Created::AthenaTable {
                        database: w.args.database.clone(),
                        name: w.args.table.clone(),
                    }
                });
            }
            Ok(())
        }
        "logging" => {
            let bucket = w.bucket.clone().unwrap_or_default();
            let prefix = w.args.logs_prefix.trim_matches('/').to_string();
            put_statement(
                aws,
                &bucket,
                logging_statement(&bucket, &prefix, &w.account, &aws.region),
            )
            .await?;
            created.push(Created::PolicyStatement {
                bucket: bucket.clone(),
                sid: SID_LOGGING.into(),
            });
            let config = aws_sdk_bedrock::types::LoggingConfig::builder()
                .s3_config(
                    aws_sdk_bedrock::types::S3Config::builder()
                        .bucket_name(&bucket)
                        .key_prefix(&prefix)
                        .build()
                        .map_err(|e| e.to_string())?,
                )
                .text_data_delivery_enabled(false)
                .image_data_delivery_enabled(false)
                .embedding_data_delivery_enabled(false)
                .video_data_delivery_enabled(false)
                .build();
            aws.bedrock
                .put_model_invocation_logging_configuration()
                .logging_config(config)
                .send()
                .await
                .map_err(|e| err_line("bedrock:PutModelInvocationLoggingConfiguration", &e))?;
            created.push(Created::LoggingConfiguration);
            Ok(())
        }
        "prevention" => {
            let text = serde_json::to_string_pretty(&crate::domain::prevention::prevention_policy(
                &w.keys,
            ))
            .unwrap_or_default();
            std::fs::write(&w.args.policy_file, text + "\n")
                .map_err(|e| format!("{}: {e}", w.args.policy_file.display()))?;
            created.push(Created::File {
                path: w.args.policy_file.display().to_string(),
            });
            Ok(())
        }
        other => Err(format!("{other} is planned only in this version")),
    }
}

fn build_export(
    w: &Wanted<'_>,
    region: &str,
) -> Result<aws_sdk_bcmdataexports::types::Export, String> {
    use aws_sdk_bcmdataexports::types as t;
    let bucket = w.bucket.clone().unwrap_or_default();
    let e = |e: aws_smithy_types::error::operation::BuildError| e.to_string();
    t::Export::builder()
        .name(&w.args.export_name)
        .description("CUR 2.0 with caller identity, for bedrock-cost-mcp")
        .data_query(
            t::DataQuery::builder()
                .query_statement("SELECT * FROM COST_AND_USAGE_REPORT")
                .table_configurations("COST_AND_USAGE_REPORT", table_properties())
                .build()
                .map_err(e)?,
        )
        .destination_configurations(
            t::DestinationConfigurations::builder()
                .s3_destination(
                    t::S3Destination::builder()
                        .s3_bucket(bucket)
                        .s3_prefix(w.args.export_prefix.trim_matches('/'))
                        .s3_region(region)
                        .s3_output_configurations(
                            t::S3OutputConfigurations::builder()
                                .output_type(t::S3OutputType::Custom)
                                .format(t::FormatOption::Parquet)
                                .compression(t::CompressionOption::Parquet)
                                .overwrite(t::OverwriteOption::OverwriteReport)
                                .build()
                                .map_err(e)?,
                        )
                        .build()
                        .map_err(e)?,
                )
                .build(),
        )
        .refresh_cadence(
            t::RefreshCadence::builder()
                .frequency(t::FrequencyOption::Synchronous)
                .build()
                .map_err(e)?,
        )
        .build()
        .map_err(e)
}

/// Set INCLUDE_IAM_PRINCIPAL_DATA of an export (None removes it); its value before.
async fn set_principal_data(
    aws: &Aws,
    arn: &str,
    value: Option<&str>,
) -> Result<Option<String>, String> {
    let got = aws
        .exports
        .get_export()
        .export_arn(arn)
        .send()
        .await
        .map_err(|e| err_line("bcm-data-exports:GetExport", &e))?;
    let export = got.export().ok_or("GetExport returned no export")?.clone();
    let query = export
        .data_query()
        .ok_or("the export has no query")?
        .clone();
    let mut tables = query.table_configurations().cloned().unwrap_or_default();
    let props = tables.entry("COST_AND_USAGE_REPORT".into()).or_default();
    let previous = props.get("INCLUDE_IAM_PRINCIPAL_DATA").cloned();
    match value {
        Some(v) => props.insert("INCLUDE_IAM_PRINCIPAL_DATA".into(), v.into()),
        None => props.remove("INCLUDE_IAM_PRINCIPAL_DATA"),
    };
    let query = aws_sdk_bcmdataexports::types::DataQuery::builder()
        .query_statement(query.query_statement())
        .set_table_configurations(Some(tables))
        .build()
        .map_err(|e| e.to_string())?;
    let updated = aws_sdk_bcmdataexports::types::Export::builder()
        .name(export.name())
        .set_description(export.description().map(str::to_string))
        .data_query(query)
        .set_destination_configurations(export.destination_configurations().cloned())
        .set_refresh_cadence(export.refresh_cadence().cloned())
        .build()
        .map_err(|e| e.to_string())?;
    aws.exports
        .update_export()
        .export_arn(arn)
        .export(updated)
        .send()
        .await
        .map_err(|e| err_line("bcm-data-exports:UpdateExport", &e))?;
    Ok(previous)
}

/// Set the status of tag keys; the keys that failed, as `key: why`.
async fn set_tag_status(aws: &Aws, keys: &[String], status: &str) -> Result<Vec<String>, String> {
    use aws_sdk_costexplorer::types::{CostAllocationTagStatus, CostAllocationTagStatusEntry};
    let entries = keys
        .iter()
        .map(|k| {
            CostAllocationTagStatusEntry::builder()
                .tag_key(k)
                .status(CostAllocationTagStatus::from(status))
                .build()
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let out = aws
        .ce
        .update_cost_allocation_tags_status()
        .set_cost_allocation_tags_status(Some(entries))
        .send()
        .await
        .map_err(|e| err_line("ce:UpdateCostAllocationTagsStatus", &e))?;
    Ok(out
        .errors()
        .iter()
        .map(|e| {
            format!(
                "{}: {} {}",
                e.tag_key().unwrap_or("?"),
                e.code().unwrap_or(""),
                e.message().unwrap_or("")
            )
        })
        .collect())
}

async fn put_statement(aws: &Aws, bucket: &str, statement: Value) -> Result<(), String> {
    let current = bucket_policy(aws, bucket).await?;
    let policy = with_statement(current.as_deref(), statement)?;
    aws.s3
        .put_bucket_policy()
        .bucket(bucket)
        .policy(policy)
        .send()
        .await
        .map_err(|e| err_line("s3:PutBucketPolicy", &e))?;
    Ok(())
}

/// Run one Athena statement to its end (at most two minutes).
async fn run_athena(aws: &Aws, sql: &str, results: &str) -> Result<(), String> {
    use aws_sdk_athena::types::{QueryExecutionState, ResultConfiguration};
    let started = aws
        .athena
        .start_query_execution()
        .query_string(sql)
        .result_configuration(
            ResultConfiguration::builder()
                .output_location(results)
                .build(),
        )
        .send()
        .await
        .map_err(|e| err_line("athena:StartQueryExecution", &e))?;
    let id = started.query_execution_id().unwrap_or_default().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let out = aws
            .athena
            .get_query_execution()
            .query_execution_id(&id)
            .send()
            .await
            .map_err(|e| err_line("athena:GetQueryExecution", &e))?;
        let status = out.query_execution().and_then(|q| q.status());
        match status.and_then(|s| s.state()) {
            Some(QueryExecutionState::Succeeded) => return Ok(()),
            Some(QueryExecutionState::Failed | QueryExecutionState::Cancelled) => {
                return Err(format!(
                    "Athena {}: {}",
                    sql.lines().next().unwrap_or_default(),
                    status
                        .and_then(|s| s.state_change_reason())
                        .unwrap_or("failed")
                ));
            }
            _ => {}
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("Athena query {id} did not finish within 2 minutes"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

/// Remove what a step created, newest first; what could not be removed.
async fn undo_created(
    aws: &Aws,
    created: &[Created],
    results: &str,
    in_use: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut left = vec![];
    for c in created.iter().rev() {
        if let Created::Bucket { name } = c
            && let Some(step) = in_use.get(name)
        {
            left.push(format!(
                "bucket {name} is still used by step {step}: left in place (undo {step} first)"
            ));
            continue;
        }
        let r: Result<(), String> = match c {
            Created::Export { arn } => aws
                .exports
                .delete_export()
                .export_arn(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| err_line("bcm-data-exports:DeleteExport", &e)),
            Created::ExportPrincipalData { arn, previous } => {
                set_principal_data(aws, arn, previous.as_deref())
                    .await
                    .map(|_| ())
            }
            Created::PolicyStatement { bucket, sid } => match bucket_policy(aws, bucket).await {
                Ok(Some(p)) => match without_statement(&p, sid) {
                    Some(rest) => aws
                        .s3
                        .put_bucket_policy()
                        .bucket(bucket)
                        .policy(rest)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| err_line("s3:PutBucketPolicy", &e)),
                    None => aws
                        .s3
                        .delete_bucket_policy()
                        .bucket(bucket)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| err_line("s3:DeleteBucketPolicy", &e)),
                },
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            },
            Created::Bucket { name } => match aws.s3.delete_bucket().bucket(name).send().await {
                Ok(_) => Ok(()),
                Err(e) if code_of(&e) == "BucketNotEmpty" => Err(format!(
                    "bucket {name} holds data (delivered exports or logs): left in place; empty and delete it yourself if you want it gone"
                )),
                Err(e) => Err(err_line("s3:DeleteBucket", &e)),
            },
            Created::TagActivated { key } => {
                set_tag_status(aws, std::slice::from_ref(key), "Inactive")
                    .await
                    .and_then(|errs| {
                        if errs.is_empty() {
                            Ok(())
                        } else {
                            Err(errs.join("; "))
                        }
                    })
            }
            Created::Backfill { from } => Err(format!(
                "the backfill from {from} cannot be undone (AWS keeps what it applied)"
            )),
            Created::AthenaTable { database, name } => {
                run_athena(
                    aws,
                    &format!("DROP TABLE IF EXISTS {database}.{name}"),
                    results,
                )
                .await
            }
            Created::AthenaDatabase { name } => {
                run_athena(aws, &format!("DROP DATABASE IF EXISTS {name}"), results).await
            }
            Created::LoggingConfiguration => aws
                .bedrock
                .delete_model_invocation_logging_configuration()
                .send()
                .await
                .map(|_| ())
                .map_err(|e| err_line("bedrock:DeleteModelInvocationLoggingConfiguration", &e)),
            Created::File { path } => std::fs::remove_file(path).or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(format!("{path}: {e}"))
                }
            }),
        };
        if let Err(e) = r {
            left.push(e);
        }
    }
    left
}

fn render(plan: &Plan) -> String {
    let mut out = format!(
        "setup plan for account {} in {}\n",
        plan.account, plan.region
    );
    for (i, s) in plan.steps.iter().enumerate() {
        let state = match s.state {
            StepState::Done => "done",
            StepState::ToDo => "to do",
            StepState::Blocked => "blocked",
            StepState::PlanOnly => "planned only",
        };
        out.push_str(&format!(
            "\n{}. {} [{}] {}\n   now: {}\n",
            i + 1,
            s.id,
            state,
            s.title,
            s.found
        ));
        for c in &s.calls {
            out.push_str(&format!("   call: {} {}\n", c.api, c.params));
        }
        out.push_str(&format!(
            "   cost: {}\n   data: {}\n   undo: {}\n",
            s.cost, s.data_after, s.undo
        ));
        if !s.permissions.is_empty() {
            out.push_str(&format!("   needs: {}\n", s.permissions.join(", ")));
        }
        for n in &s.notes {
            out.push_str(&format!("   note: {n}\n"));
        }
    }
    out.push_str("\nserver configuration once data arrives:\n");
    for c in &plan.configuration {
        out.push_str(&format!("  {c}\n"));
    }
    out
}

/// `bedrock-cost-mcp setup`: 0 when the plan (or every applied step) is fine, 1 when a step
/// failed, 2 on bad usage.
pub async fn main(config: Config, args: &SetupArgs) -> u8 {
    for s in args.steps.iter().chain(args.undo.iter()) {
        if !STEPS.contains(&s.as_str()) {
            eprintln!(
                "error: unknown step '{s}'; the steps are {}",
                STEPS.join(", ")
            );
            return 2;
        }
    }
    if let Some(m) = &args.backfill_from
        && let Err(e) = backfill_start(m, crate::domain::clock::today())
    {
        eprintln!("error: {e}");
        return 2;
    }
    let keys: Vec<String> = args
        .tag_keys
        .iter()
        .filter_map(|k| crate::domain::group::tag_key(k).map(str::to_string))
        .collect();
    if keys.is_empty() || keys.len() != args.tag_keys.len() {
        eprintln!("error: --tag-keys takes tag keys (1-128 letters, digits, spaces and _.:/=+-@)");
        return 2;
    }
    let aws = Aws::load().await;
    let account = match aws.sts.get_caller_identity().send().await {
        Ok(o) => o.account().unwrap_or_default().to_string(),
        Err(e) => {
            eprintln!("error: {}", err_line("sts:GetCallerIdentity", &e));
            return 1;
        }
    };
    let state_file = state_path(args);
    let mut state = match read_state(&state_file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    if !state.account.is_empty() && state.account != account {
        eprintln!(
            "error: the setup state {} belongs to account {}, these credentials to {account}; pass --state for this account",
            state_file.display(),
            state.account
        );
        return 2;
    }
    state.account = account.clone();
    let wanted = Wanted {
        args,
        account,
        bucket: args.bucket.clone(),
        keys,
    };

    if let Some(step) = &args.undo {
        let created = state.steps.get(step).cloned().unwrap_or_default();
        if created.is_empty() {
            println!(
                "setup --undo {step}: nothing recorded as created by setup for this step ({})",
                state_file.display()
            );
            return 0;
        }
        // Buckets other steps still write to (their policy statements) are not deleted.
        let in_use: BTreeMap<String, String> = state
            .steps
            .iter()
            .filter(|(s, _)| *s != step)
            .flat_map(|(s, cs)| {
                cs.iter().filter_map(move |c| match c {
                    Created::PolicyStatement { bucket, .. } => Some((bucket.clone(), s.clone())),
                    _ => None,
                })
            })
            .collect();
        let left = undo_created(
            &aws,
            &created,
            &wanted.results().unwrap_or_default(),
            &in_use,
        )
        .await;
        // A bucket that could not be removed (data in it, or still in use) stays recorded.
        let keep: Vec<Created> = created
            .iter()
            .filter(|c| match c {
                Created::Bucket { name } => left.iter().any(|l| {
                    l.starts_with(&format!("bucket {name} "))
                        && (l.contains("holds data") || l.contains("still used"))
                }),
                _ => false,
            })
            .cloned()
            .collect();
        if keep.is_empty() {
            state.steps.remove(step);
        } else {
            state.steps.insert(step.clone(), keep);
        }
        if let Err(e) = write_state(&state_file, &state) {
            eprintln!("error: {e}");
            return 1;
        }
        let answer = json!({"undone": step, "removed": created.len(), "left": left});
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&answer).unwrap_or_default()
            );
        } else {
            println!("setup --undo {step}: {} change(s) reverted", created.len());
            for l in &left {
                println!("  left: {l}");
            }
        }
        return u8::from(left.iter().any(|l| {
            !l.contains("cannot be undone")
                && !l.contains("holds data")
                && !l.contains("still used")
        }));
    }

    let mut plan_now = plan(&aws, &wanted, &config).await;
    if !args.apply {
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&plan_now).unwrap_or_default()
            );
        } else {
            print!("{}", render(&plan_now));
            println!(
                "\nnothing was changed; run again with --apply to make the changes (steps marked 'to do'), --steps to pick some"
            );
        }
        return 0;
    }
    let mut outcomes = vec![];
    let chosen: Vec<Step> = plan_now
        .steps
        .iter()
        .filter(|s| args.steps.is_empty() || args.steps.iter().any(|x| x == s.id))
        .filter(|s| s.state == StepState::ToDo)
        .cloned()
        .collect();
    for step in &chosen {
        let mut created = vec![];
        let r = apply_step(&aws, &wanted, step, &mut created).await;
        if !created.is_empty() {
            state
                .steps
                .entry(step.id.to_string())
                .or_default()
                .extend(created.clone());
            if let Err(e) = write_state(&state_file, &state) {
                eprintln!("error: {e}");
                return 1;
            }
        }
        outcomes.push(Outcome {
            step: step.id,
            ok: r.is_ok(),
            created,
            error: r.err(),
            verified: StepState::Blocked,
        });
    }
    // Verify: read the account again.
    plan_now = plan(&aws, &wanted, &config).await;
    for o in &mut outcomes {
        if let Some(s) = plan_now.steps.iter().find(|s| s.id == o.step) {
            o.verified = s.state;
        }
    }
    let failed = outcomes.iter().any(|o| !o.ok);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"applied": outcomes, "plan": plan_now, "state_file": state_file.display().to_string()}))
                .unwrap_or_default()
        );
    } else {
        for o in &outcomes {
            println!(
                "{}: {} ({} change(s) recorded; now {:?}){}",
                o.step,
                if o.ok { "applied" } else { "FAILED" },
                o.created.len(),
                o.verified,
                o.error
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
        }
        print!("\n{}", render(&plan_now));
        println!(
            "state of applied steps: {} (setup --undo STEP removes what a step created)",
            state_file.display()
        );
    }
    u8::from(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backfill_starts_on_the_first_of_a_month_at_most_twelve_months_back() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        assert_eq!(
            backfill_start("2026-01", today).unwrap(),
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(
            backfill_start("2025-12", today).unwrap(),
            "2025-12-01T00:00:00Z"
        );
        assert!(
            backfill_start("2025-11", today)
                .unwrap_err()
                .contains("12 months")
        );
        assert!(
            backfill_start("2027-01", today)
                .unwrap_err()
                .contains("future")
        );
        assert!(backfill_start("2026-13", today).is_err());
    }

    #[test]
    fn statements_are_added_once_and_removed_by_sid() {
        let existing = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Theirs","Effect":"Deny","Principal":"*","Action":"s3:DeleteBucket","Resource":"arn:aws:s3:::b"}]}"#;
        let once = with_statement(Some(existing), exports_statement("b", "123456789012")).unwrap();
        let twice = with_statement(Some(&once), exports_statement("b", "123456789012")).unwrap();
        let doc: Value = serde_json::from_str(&twice).unwrap();
        assert_eq!(doc["Statement"].as_array().unwrap().len(), 2);
        let back: Value =
            serde_json::from_str(&without_statement(&twice, SID_EXPORTS).unwrap()).unwrap();
        assert_eq!(back["Statement"][0]["Sid"], "Theirs");
        assert_eq!(back["Statement"].as_array().unwrap().len(), 1);
        assert!(
            without_statement(
                &with_statement(None, exports_statement("b", "1")).unwrap(),
                SID_EXPORTS
            )
            .is_none()
        );
    }
}
