//! `setup`: from an empty account to answers. Reads the account's state, prints a plan (each step,
//! the AWS calls with their parameters, what it costs, when data appears, whether it is done),
//! and changes nothing until `--apply`. Every applied step writes what it created to a state
//! file, so `--undo STEP` removes exactly that (never what existed before).
//!
//! Steps: `export` (CUR 2.0 with caller identity, and its bucket and bucket policy), `tags`
//! (activate the `iamPrincipal/*` keys, ask for a backfill), `athena` (database and table with
//! partition projection), `logging` (model invocation logging to S3, metadata only),
//! `budgets` (a monthly AWS budget per tag budget of `--budget-policy`), `prevention` (the
//! policy requiring the keys, written to a file), `anomaly_monitor` (an AWS managed monitor on
//! every value of the tag, and alerts to `--notify`).
//!
//! Shapes: aws-sdk-bcmdataexports 1.120 (Export, DataQuery.TableConfigurations
//! COST_AND_USAGE_REPORT properties), aws-sdk-costexplorer 1.138
//! (StartCostAllocationTagBackfill: BackfillFrom the first day of a month, at most twelve months
//! back, one request per 24 hours), aws-sdk-bedrock 1.166 (PutModelInvocationLoggingConfiguration),
//! Athena DDL (CREATE EXTERNAL TABLE ... STORED AS PARQUET with `projection.*` table properties,
//! <https://docs.aws.amazon.com/athena/latest/ug/partition-projection.html>).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::Datelike;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::Config;
use crate::sources::setup_aws::{ExportSpec, SetupAws};

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

/// Defaults of a setup request (the CLI's and the tool's).
pub const DEFAULT_EXPORT_NAME: &str = "bedrock-cost-mcp-cur2";
pub const DEFAULT_EXPORT_PREFIX: &str = "cur2";
pub const DEFAULT_TAG_KEY: &str = "team";
pub const DEFAULT_DATABASE: &str = "bedrock_cost";
pub const DEFAULT_TABLE: &str = "cur2";
pub const DEFAULT_LOGS_PREFIX: &str = "bedrock-invocation-logs";
pub const DEFAULT_POLICY_FILE: &str = "bedrock-cost-mcp-require-tags.json";

/// What to plan, apply or undo (the CLI flags and the tool's inputs map onto it).
#[derive(Debug, Clone)]
pub struct SetupRequest {
    pub apply: bool,
    pub undo: Option<String>,
    pub steps: Vec<String>,
    pub bucket: Option<String>,
    pub export_name: String,
    pub export_prefix: String,
    pub tag_keys: Vec<String>,
    /// YYYY-MM.
    pub backfill_from: Option<String>,
    pub database: String,
    pub table: String,
    pub athena_results: Option<String>,
    pub logs_prefix: String,
    /// Also (or, without a bucket, only) deliver invocation logs to this CloudWatch Logs group.
    pub log_group: Option<String>,
    pub notify: Option<String>,
    pub policy_file: PathBuf,
    /// Also attach the prevention policy, as a customer managed IAM policy, to this IAM
    /// principal or group: `group:NAME`, `role:NAME` or `user:NAME`.
    pub attach_prevention: Option<String>,
    pub state: Option<PathBuf>,
    /// Budgets step: also a budget action per tag budget that attaches a deny policy to the
    /// team's principals at 100% (needs `notify`).
    pub enforce: bool,
}

impl Default for SetupRequest {
    fn default() -> Self {
        SetupRequest {
            apply: false,
            undo: None,
            steps: vec![],
            bucket: None,
            export_name: DEFAULT_EXPORT_NAME.into(),
            export_prefix: DEFAULT_EXPORT_PREFIX.into(),
            tag_keys: vec![DEFAULT_TAG_KEY.into()],
            backfill_from: None,
            database: DEFAULT_DATABASE.into(),
            table: DEFAULT_TABLE.into(),
            athena_results: None,
            logs_prefix: DEFAULT_LOGS_PREFIX.into(),
            log_group: None,
            notify: None,
            policy_file: PathBuf::from(DEFAULT_POLICY_FILE),
            attach_prevention: None,
            state: None,
            enforce: false,
        }
    }
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
    LogGroup {
        name: String,
    },
    Role {
        name: String,
    },
    Budget {
        name: String,
    },
    BudgetAction {
        budget: String,
        id: String,
    },
    AnomalyMonitor {
        arn: String,
    },
    AnomalySubscription {
        arn: String,
    },
    File {
        path: String,
    },
    ManagedPolicy {
        arn: String,
    },
    PolicyAttached {
        /// group, role or user.
        to: String,
        name: String,
        arn: String,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub account: String,
    pub steps: BTreeMap<String, Vec<Created>>,
    /// When each step was last applied (RFC 3339).
    #[serde(default)]
    pub applied_at: BTreeMap<String, String>,
}

/// How long after a step is applied its data can be expected: the first export delivery within
/// 24 hours (Data Exports user guide), tag activation up to 24 hours, invocation logs within
/// minutes; the Athena table answers once the export has delivered.
pub fn data_delay(step: &str) -> Option<chrono::Duration> {
    match step {
        "export" | "tags" | "athena" => Some(chrono::Duration::hours(24)),
        "logging" => Some(chrono::Duration::minutes(15)),
        _ => None,
    }
}

/// The state file at the default place, if setup was run here.
pub fn read_default_state() -> Result<Option<(PathBuf, State)>, String> {
    let path = default_state_dir().join("setup.json");
    if !path.exists() {
        return Ok(None);
    }
    read_state(&path).map(|s| Some((path, s)))
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

/// The settings the plan and the changes are made from.
struct Wanted<'a> {
    args: &'a SetupRequest,
    account: String,
    bucket: Option<String>,
    keys: Vec<String>,
}

impl Wanted<'_> {
    /// Whether the request asked for this step (every step when it named none): only those
    /// are read from the account, so a plan of one step makes no other step's (paid) calls.
    fn chosen(&self, step: &str) -> bool {
        self.args.steps.is_empty() || self.args.steps.iter().any(|s| s == step)
    }

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

/// Smallest anomaly (total impact, USD) the subscription alerts on.
const ANOMALY_ALERT_USD: f64 = 10.0;

/// The export's query: every column of the CUR 2.0 table (naming columns was refused in 2026
/// for some; `SELECT *` is the documented safe form).
const EXPORT_QUERY: &str = "SELECT * FROM COST_AND_USAGE_REPORT";

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

/// The policy a budget action attaches at 100%, and the role Budgets applies it with.
const DENY_POLICY: &str = "BedrockCostMcpDenyBedrockInvoke";
const BUDGET_ACTION_ROLE: &str = "BedrockCostMcpBudgetActions";

/// Deny model invocation (Converse and ConverseStream are authorized as InvokeModel and
/// InvokeModelWithResponseStream).
fn deny_bedrock_policy() -> Value {
    json!({"Version": "2012-10-17", "Statement": [{
        "Sid": "BudgetExhausted",
        "Effect": "Deny",
        "Action": ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
        "Resource": "*"
    }]})
}

/// The execution role's trust (budgets.amazonaws.com, this account) and permissions (attach and
/// detach the deny policy, and only it).
fn budget_action_role_policies(account: &str) -> (Value, Value) {
    (
        json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "budgets.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account}}
        }]}),
        json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Action": ["iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:AttachUserPolicy", "iam:DetachUserPolicy"],
            "Resource": "*",
            "Condition": {"ArnEquals": {"iam:PolicyARN": format!("arn:aws:iam::{account}:policy/{DENY_POLICY}")}}
        }]}),
    )
}

/// The enforcement part of the budgets step: the deny policy, the execution role, and per tag
/// budget an action on the roles and users that carry the tag (none yet: said, nothing planned).
async fn plan_enforcement(
    aws: &SetupAws,
    w: &Wanted<'_>,
    budgets: &[TagBudget],
    existing: &std::collections::BTreeSet<String>,
    s: &mut Step,
) {
    let Some(notify) = w.args.notify.as_deref() else {
        s.notes.push(
            "--enforce needs --notify EMAIL or an SNS topic ARN: a budget action must tell someone"
                .into(),
        );
        return;
    };
    let policy_arn = format!("arn:aws:iam::{}:policy/{DENY_POLICY}", w.account);
    s.permissions.extend([
        "iam:CreatePolicy",
        "iam:CreateRole",
        "iam:PutRolePolicy",
        "iam:PassRole",
        "iam:GetAccountAuthorizationDetails",
        "budgets:CreateBudgetAction",
        "budgets:DescribeBudgetActionsForBudget",
    ]);
    let mut actions = vec![];
    for b in budgets {
        // Principal tags are the IAM tags themselves (the bill prefixes them iamPrincipal/).
        let (roles, users) = match aws.tagged_principals(&b.key, &b.value).await {
            Ok(p) => p,
            Err(e) => {
                s.notes.push(e);
                continue;
            }
        };
        if roles.is_empty() && users.is_empty() {
            s.notes.push(format!(
                "no IAM role or user carries {}={}: no action for {}",
                b.key, b.value, b.name
            ));
            continue;
        }
        if existing.contains(&b.name) {
            match aws.budget_actions(&w.account, &b.name, &policy_arn).await {
                Ok(ids) if !ids.is_empty() => {
                    s.found.push_str(&format!("; {} is enforced", b.name));
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    s.notes.push(e);
                    continue;
                }
            }
        }
        actions.push(PlannedCall {
            api: "budgets:CreateBudgetAction".into(),
            params: json!({"AccountId": w.account, "BudgetName": b.name, "NotificationType": "ACTUAL",
                "ActionType": "APPLY_IAM_POLICY",
                "ActionThreshold": {"ActionThresholdValue": 100.0, "ActionThresholdType": "PERCENTAGE"},
                "Definition": {"IamActionDefinition": {"PolicyArn": policy_arn, "Roles": roles, "Users": users}},
                "ExecutionRoleArn": format!("arn:aws:iam::{}:role/{BUDGET_ACTION_ROLE}", w.account),
                "ApprovalModel": "AUTOMATIC",
                "Subscribers": [{"SubscriptionType": if notify.starts_with("arn:") { "SNS" } else { "EMAIL" }, "Address": notify}]}),
        });
    }
    if actions.is_empty() {
        return;
    }
    match aws.managed_policy(&w.account, DENY_POLICY).await {
        Ok(None) => s.calls.push(PlannedCall {
            api: "iam:CreatePolicy".into(),
            params: json!({"PolicyName": DENY_POLICY, "PolicyDocument": deny_bedrock_policy()}),
        }),
        Ok(Some(_)) => {}
        Err(e) => s.notes.push(e),
    }
    match aws.role_exists(BUDGET_ACTION_ROLE).await {
        Ok(false) => {
            let (trust, policy) = budget_action_role_policies(&w.account);
            s.calls.push(PlannedCall {
                api: "iam:CreateRole".into(),
                params: json!({"RoleName": BUDGET_ACTION_ROLE, "AssumeRolePolicyDocument": trust,
                    "InlinePolicy": policy}),
            });
        }
        Ok(true) => {}
        Err(e) => s.notes.push(e),
    }
    s.calls.extend(actions);
}

/// The customer managed IAM policy setup makes of the prevention policy.
const PREVENTION_POLICY: &str = "BedrockCostMcpRequireAttributionTags";

fn capitalized(kind: &str) -> String {
    let mut c = kind.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// The role model invocation logging assumes to write to CloudWatch Logs.
const LOGGING_ROLE: &str = "BedrockCostMcpInvocationLogging";

/// Its trust policy (bedrock.amazonaws.com, this account's Bedrock only) and its permissions
/// (write the group's streams), as the Bedrock user guide's CloudWatch Logs destination asks.
fn logging_role_policies(account: &str, region: &str, group: &str) -> (Value, Value) {
    (
        json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "bedrock.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {"aws:SourceArn": format!("arn:aws:bedrock:{region}:{account}:*")}
            }
        }]}),
        json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": format!("arn:aws:logs:{region}:{account}:log-group:{group}:log-stream:aws/bedrock/modelinvocations")
        }]}),
    )
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

/// `$XDG_STATE_HOME/bedrock-cost-mcp` (else `~/.local/state/bedrock-cost-mcp`): where the
/// state file (and the tool's policy file) go.
pub fn default_state_dir() -> PathBuf {
    std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("bedrock-cost-mcp")
}

fn state_path(args: &SetupRequest) -> PathBuf {
    args.state
        .clone()
        .unwrap_or_else(|| default_state_dir().join("setup.json"))
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

/// A monthly budget the policy file sets on one principal tag value.
struct TagBudget {
    name: String,
    key: String,
    value: String,
    monthly_usd: f64,
}

/// The tag budgets of `--budget-policy`, named `bedrock-<key>-<value>` (AWS budget names may
/// not hold `:` or `\\`).
fn tag_budgets(config: &Config) -> Result<Vec<TagBudget>, String> {
    let Some(path) = &config.budget_policy else {
        return Ok(vec![]);
    };
    let policy = crate::sources::budgets::PolicyFile::load(path)?;
    Ok(policy
        .budgets
        .iter()
        .filter_map(|b| {
            let (k, v) = b.tag.as_deref()?.split_once('=')?;
            let (k, v) = (k.trim().trim_start_matches("iamPrincipal/"), v.trim());
            let name: String = format!("bedrock-{k}-{v}")
                .chars()
                .map(|c| if c == ':' || c == '\\' { '-' } else { c })
                .take(100)
                .collect();
            Some(TagBudget {
                name: b.name.clone().unwrap_or(name),
                key: k.to_string(),
                value: v.to_string(),
                monthly_usd: b.monthly_usd,
            })
        })
        .collect())
}

/// Read the account and build the plan.
async fn plan(aws: &SetupAws, w: &Wanted<'_>, config: &Config) -> Plan {
    let mut steps = Vec::new();
    let bucket_note = "name the bucket with --bucket (created when missing)".to_string();
    let location = w.export_location();

    // 1. export
    if w.chosen("export") {
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
        match aws.find_export(&w.args.export_name).await {
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
                    match aws.bucket_exists(bucket).await {
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
                        "DataQuery": {"QueryStatement": EXPORT_QUERY,
                                      "TableConfigurations": {"COST_AND_USAGE_REPORT": table_properties()}},
                        "DestinationConfigurations": {"S3Destination": {
                            "S3Bucket": bucket, "S3Prefix": w.args.export_prefix, "S3Region": aws.region(),
                            "S3OutputConfigurations": {"OutputType": "CUSTOM", "Format": "PARQUET",
                                                       "Compression": "PARQUET", "Overwrite": "OVERWRITE_REPORT"}}},
                        "RefreshCadence": {"Frequency": "SYNCHRONOUS"}}}),
                });
                    s.undo = "deletes the export, the policy statement it added and the bucket if setup created it and it is empty; delivered data stays until you delete it".into();
                }
            },
        }
        steps.push(s);
    }
    // 2. tags
    if w.chosen("tags") {
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
        match aws.tag_statuses(&want).await {
            Err(e) => {
                s.state = StepState::Blocked;
                s.found = e;
            }
            Ok(status) => {
                let mut found = vec![];
                let mut to_activate = vec![];
                for k in &want {
                    match status.get(k).map(String::as_str) {
                    Some("Active") => found.push(format!("{k} active")),
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
                Ok(from) => match aws.backfills().await {
                    Err(e) => s.notes.push(e),
                    Ok(h) => {
                        let last = h.first();
                        if let Some(b) = last {
                            s.notes.push(format!(
                                "last backfill: from {} requested {} is {}",
                                b.from, b.requested_at, b.status
                            ));
                        }
                        let processing = last.is_some_and(|b| b.status == "PROCESSING");
                        if processing {
                            s.notes
                                .push("a backfill is still processing: no new request".into());
                        } else if last.is_some_and(|b| b.from == from) {
                            s.notes
                                .push(format!("a backfill from {from} was already requested"));
                        } else {
                            s.calls.push(PlannedCall {
                                api: "ce:StartCostAllocationTagBackfill".into(),
                                params: json!({"BackfillFrom": from}),
                            });
                        }
                    }
                },
            }
        }
        if s.state == StepState::ToDo && s.calls.is_empty() {
            s.state = StepState::Done;
        }
        steps.push(s);
    }
    // 3. athena
    if w.chosen("athena") {
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
                let exists = aws.table(&w.args.database, &w.args.table).await;
                match exists {
                    Ok(_) => {
                        s.state = StepState::Done;
                        s.found = format!("table {}.{} exists", w.args.database, w.args.table);
                    }
                    Err(e) => {
                        s.found = format!(
                            "table {}.{} not found ({})",
                            w.args.database, w.args.table, e
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
    }
    // 4. logging
    if w.chosen("logging") {
        let mut s = Step {
        id: "logging",
        title: "Bedrock model invocation logging to S3 and/or CloudWatch Logs, metadata only (the live layer)",
        state: StepState::ToDo,
        found: String::new(),
        calls: vec![],
        cost: "S3 storage of one small JSON record per call (text, image and embedding bodies stay off); with --log-group, CloudWatch Logs ingestion ($0.50 per GB) and Logs Insights scans ($0.005 per GB)",
        data_after: "minutes after each call",
        undo: "deletes the logging configuration if setup turned it on (none was there), the bucket policy statement, the role and the log group it created".into(),
        permissions: vec![
            "bedrock:GetModelInvocationLoggingConfiguration",
            "bedrock:PutModelInvocationLoggingConfiguration",
            "s3:PutBucketPolicy",
        ],
        notes: vec![],
    };
        match aws.logging().await {
            Err(e) => {
                s.state = StepState::Blocked;
                s.found = e;
            }
            Ok(l) if l.is_on() => {
                s.state = StepState::Done;
                s.found = format!(
                    "logging is on in {} ({}{})",
                    aws.region(),
                    l.s3.as_deref().unwrap_or(""),
                    l.log_group
                        .as_deref()
                        .map(|g| format!(" CloudWatch Logs {g}"))
                        .unwrap_or_default()
                );
                s.undo = "nothing of this step was created by setup".into();
            }
            Ok(_) if w.bucket.is_none() && w.args.log_group.is_none() => {
                s.state = StepState::Blocked;
                s.found = format!(
                    "logging is off in {}; {bucket_note}, or --log-group NAME for CloudWatch Logs",
                    aws.region()
                );
            }
            Ok(_) => {
                s.found = format!("logging is off in {}", aws.region());
                let prefix = w.args.logs_prefix.trim_matches('/');
                let mut config = json!({"textDataDeliveryEnabled": false, "imageDataDeliveryEnabled": false,
                "embeddingDataDeliveryEnabled": false, "videoDataDeliveryEnabled": false});
                if let Some(bucket) = &w.bucket {
                    s.calls.push(PlannedCall {
                    api: "s3:PutBucketPolicy".into(),
                    params: json!({"Bucket": bucket, "Statement added": logging_statement(bucket, prefix, &w.account, aws.region())}),
                });
                    config["s3Config"] = json!({"bucketName": bucket, "keyPrefix": prefix});
                }
                if let Some(group) = &w.args.log_group {
                    match aws.log_group_exists(group).await {
                        Ok(true) => {}
                        Ok(false) => s.calls.push(PlannedCall {
                            api: "logs:CreateLogGroup".into(),
                            params: json!({"logGroupName": group}),
                        }),
                        Err(e) => s.notes.push(e),
                    }
                    let (trust, policy) = logging_role_policies(&w.account, aws.region(), group);
                    s.calls.push(PlannedCall {
                    api: "iam:CreateRole".into(),
                    params: json!({"RoleName": LOGGING_ROLE, "AssumeRolePolicyDocument": trust}),
                });
                    s.calls.push(PlannedCall {
                    api: "iam:PutRolePolicy".into(),
                    params: json!({"RoleName": LOGGING_ROLE, "PolicyName": "InvocationLogsToCloudWatch", "PolicyDocument": policy}),
                });
                    config["cloudWatchConfig"] = json!({"logGroupName": group,
                    "roleArn": format!("arn:aws:iam::{}:role/{LOGGING_ROLE}", w.account)});
                    s.permissions.extend([
                        "logs:DescribeLogGroups",
                        "logs:CreateLogGroup",
                        "iam:CreateRole",
                        "iam:PutRolePolicy",
                        "iam:PassRole",
                    ]);
                }
                s.calls.push(PlannedCall {
                    api: "bedrock:PutModelInvocationLoggingConfiguration".into(),
                    params: json!({"loggingConfig": config}),
                });
            }
        }
        steps.push(s);
    }
    // 5. anomaly monitor: an AWS managed monitor on every value of the first tag key.
    if w.chosen("anomaly_monitor") {
        let key = w
            .keys
            .first()
            .cloned()
            .unwrap_or_else(|| DEFAULT_TAG_KEY.into());
        let tag = format!("iamPrincipal/{key}");
        let mut s = Step {
            id: "anomaly_monitor",
            title: "Cost Anomaly Detection on every value of the principal tag, alerts to --notify",
            state: StepState::ToDo,
            found: String::new(),
            calls: vec![],
            cost: "free (Cost Anomaly Detection has no charge)",
            data_after: "a monitor needs about 10 days of history before it flags; alerts then daily (email) or at once (SNS)",
            undo: "deletes the monitor and subscription setup created".into(),
            permissions: vec![
                "ce:GetAnomalyMonitors",
                "ce:CreateAnomalyMonitor",
                "ce:CreateAnomalySubscription",
            ],
            notes: vec![],
        };
        match aws.tag_monitor(&tag).await {
            Err(e) => {
                s.state = StepState::Blocked;
                s.found = e;
            }
            Ok(Some(arn)) => {
                s.state = StepState::Done;
                s.found = format!("monitor {arn} watches {tag}");
            }
            Ok(None) => {
                s.found = format!("no monitor watches {tag}");
                s.calls.push(PlannedCall {
                api: "ce:CreateAnomalyMonitor".into(),
                params: json!({"AnomalyMonitor": {"MonitorName": format!("bedrock-cost-mcp-{key}"), "MonitorType": "DIMENSIONAL",
                    "MonitorDimension": "TAG", "MonitorSpecification": {"Tags": {"Key": tag}}}}),
            });
                match w.args.notify.as_deref() {
                Some(n) => s.calls.push(PlannedCall {
                    api: "ce:CreateAnomalySubscription".into(),
                    params: json!({"AnomalySubscription": {"SubscriptionName": format!("bedrock-cost-mcp-{key}"),
                        "MonitorArnList": ["<the new monitor>"],
                        "Subscribers": [{"Type": if n.starts_with("arn:") { "SNS" } else { "EMAIL" }, "Address": n}],
                        "Frequency": if n.starts_with("arn:") { "IMMEDIATE" } else { "DAILY" },
                        "ThresholdExpression": {"Dimensions": {"Key": "ANOMALY_TOTAL_IMPACT_ABSOLUTE", "Values": [ANOMALY_ALERT_USD.to_string()], "MatchOptions": ["GREATER_THAN_OR_EQUAL"]}}}}),
                }),
                None => s.notes.push("no alerts: pass --notify EMAIL or an SNS topic ARN for a subscription".into()),
            }
            }
        }
        steps.push(s);
    }
    // 6. budgets: one monthly AWS budget per tag budget of the local policy file.
    if w.chosen("budgets") {
        let mut s = Step {
            id: "budgets",
            title: "Monthly AWS budgets per tag value of the budget policy, filtered on the principal tag",
            state: StepState::ToDo,
            found: String::new(),
            calls: vec![],
            cost: "two budgets free, then $0.02 per budget per day; budget actions $0.10 per action per day after the first two",
            data_after: "after the tags are active (AWS Budgets refreshes up to three times a day)",
            undo: "deletes the budgets setup created".into(),
            permissions: vec!["budgets:ViewBudget", "budgets:ModifyBudget"],
            notes: vec![],
        };
        if !w.args.enforce {
            s.notes.push("--enforce adds, per budget, an action that attaches a deny-Bedrock policy to the team's roles and users at 100% of actual spend".into());
        }
        match tag_budgets(config) {
            Err(e) => {
                s.state = StepState::Blocked;
                s.found = e;
            }
            Ok(wanted_budgets) if wanted_budgets.is_empty() => {
                s.state = StepState::Blocked;
                s.found = "no tag budgets: give --budget-policy a file with [[budgets]] tag = \"key=value\" entries".into();
            }
            Ok(wanted_budgets) => match aws.budget_names(&w.account).await {
                Err(e) => {
                    s.state = StepState::Blocked;
                    s.found = e;
                }
                Ok(existing) => {
                    let mut found = vec![];
                    for b in &wanted_budgets {
                        if existing.contains(&b.name) {
                            found.push(format!("{} exists", b.name));
                            continue;
                        }
                        found.push(format!("{} missing", b.name));
                        s.calls.push(PlannedCall {
                        api: "budgets:CreateBudget".into(),
                        params: json!({"AccountId": w.account, "Budget": {"BudgetName": b.name, "BudgetType": "COST", "TimeUnit": "MONTHLY",
                            "BudgetLimit": {"Amount": format!("{:.2}", b.monthly_usd), "Unit": "USD"},
                            "FilterExpression": {"Tags": {"Key": format!("iamPrincipal/{}", b.key), "Values": [b.value]}}}}),
                    });
                    }
                    s.found = found.join("; ");
                    if w.args.enforce {
                        plan_enforcement(aws, w, &wanted_budgets, &existing, &mut s).await;
                    }
                    if s.calls.is_empty() {
                        s.state = StepState::Done;
                    }
                }
            },
        }
        steps.push(s);
    }
    // 7. prevention policy: written to a file; attached as an IAM policy when asked.
    if w.chosen("prevention") {
        let path = w.args.policy_file.display().to_string();
        let document = crate::domain::prevention::prevention_policy(&w.keys);
        let exists = w.args.policy_file.exists();
        let mut s = Step {
        id: "prevention",
        title: "The policy that requires the tag keys on new users and roles",
        state: StepState::ToDo,
        found: if exists {
            format!("{path} exists")
        } else {
            format!("{path} not written")
        },
        calls: vec![],
        cost: "free",
        data_after: "at once for principals created after it applies",
        undo: "deletes the file setup wrote, detaches and deletes the IAM policy it made".into(),
        permissions: vec![],
        notes: vec!["as a service control policy it applies to every account of an organization: create and attach it with organizations:CreatePolicy/AttachPolicy from the management account (setup does not)".into()],
    };
        if !exists {
            s.calls.push(PlannedCall {
                api: "write file".into(),
                params: json!({"path": path, "policy": document}),
            });
        }
        if let Some(target) = &w.args.attach_prevention {
            let (kind, name) = target.split_once(':').unwrap_or(("", ""));
            let arn = format!("arn:aws:iam::{}:policy/{PREVENTION_POLICY}", w.account);
            let attached = match aws.managed_policy(&w.account, PREVENTION_POLICY).await {
                Err(e) => {
                    s.notes.push(e);
                    false
                }
                Ok(Some(_)) => {
                    s.found.push_str(&format!("; IAM policy {arn} exists"));
                    match aws.policy_attached(kind, name, &arn).await {
                        Ok(true) => {
                            s.found.push_str(&format!(", attached to {kind} {name}"));
                            true
                        }
                        Ok(false) => false,
                        Err(e) => {
                            s.notes.push(e);
                            false
                        }
                    }
                }
                Ok(None) => {
                    s.calls.push(PlannedCall {
                    api: "iam:CreatePolicy".into(),
                    params: json!({"PolicyName": PREVENTION_POLICY, "PolicyDocument": document}),
                });
                    false
                }
            };
            if !attached {
                s.calls.push(PlannedCall {
                    api: format!("iam:Attach{}Policy", capitalized(kind)),
                    params: json!({format!("{}Name", capitalized(kind)): name, "PolicyArn": arn}),
                });
            }
            s.permissions.extend([
                "iam:GetPolicy",
                "iam:CreatePolicy",
                "iam:AttachGroupPolicy / AttachRolePolicy / AttachUserPolicy",
            ]);
        }
        if s.calls.is_empty() {
            s.state = StepState::Done;
        }
        steps.push(s);
    }

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
    } else if let Some(g) = &w.args.log_group {
        configuration.push(format!("--invocation-log-group {g}"));
    }
    configuration.push(format!("--required-tag-keys {}", w.keys.join(",")));
    Plan {
        account: w.account.clone(),
        region: aws.region().to_string(),
        steps,
        configuration,
    }
}

/// Apply one step; what it created, in order (recorded even when a later call fails).
async fn apply_step(
    aws: &SetupAws,
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
                        aws.create_bucket(&bucket).await?;
                        created.push(Created::Bucket { name: bucket });
                    }
                    "s3:PutBucketPolicy" => {
                        let bucket = w.bucket.clone().unwrap_or_default();
                        aws.add_policy_statement(&bucket, exports_statement(&bucket, &w.account))
                            .await?;
                        created.push(Created::PolicyStatement {
                            bucket,
                            sid: SID_EXPORTS.into(),
                        });
                    }
                    "bcm-data-exports:CreateExport" => {
                        let bucket = w.bucket.clone().unwrap_or_default();
                        let arn = aws
                            .create_export(&ExportSpec {
                                name: &w.args.export_name,
                                bucket: &bucket,
                                prefix: w.args.export_prefix.trim_matches('/'),
                                region: aws.region(),
                                query: EXPORT_QUERY,
                                properties: table_properties(),
                            })
                            .await?;
                        created.push(Created::Export { arn });
                    }
                    "bcm-data-exports:UpdateExport" => {
                        let arn = call.params["ExportArn"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string();
                        let previous = aws.set_principal_data(&arn, Some("TRUE")).await?;
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
                        let errors = aws.set_tag_status(&keys, "Active").await?;
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
                        aws.start_backfill(&from).await?;
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
                aws.run_athena(sql, &results).await?;
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
            let prefix = w.args.logs_prefix.trim_matches('/').to_string();
            if let Some(bucket) = &w.bucket {
                aws.add_policy_statement(
                    bucket,
                    logging_statement(bucket, &prefix, &w.account, aws.region()),
                )
                .await?;
                created.push(Created::PolicyStatement {
                    bucket: bucket.clone(),
                    sid: SID_LOGGING.into(),
                });
            }
            let mut role_arn = String::new();
            if let Some(group) = &w.args.log_group {
                if step.calls.iter().any(|c| c.api == "logs:CreateLogGroup") {
                    aws.create_log_group(group).await?;
                    created.push(Created::LogGroup {
                        name: group.clone(),
                    });
                }
                let (trust, policy) = logging_role_policies(&w.account, aws.region(), group);
                role_arn = aws
                    .create_service_role(
                        LOGGING_ROLE,
                        &trust,
                        "InvocationLogsToCloudWatch",
                        &policy,
                    )
                    .await?;
                created.push(Created::Role {
                    name: LOGGING_ROLE.into(),
                });
            }
            aws.put_logging(
                w.bucket.as_deref().map(|b| (b, prefix.as_str())),
                w.args.log_group.as_deref().map(|g| (g, role_arn.as_str())),
            )
            .await?;
            created.push(Created::LoggingConfiguration);
            Ok(())
        }
        "anomaly_monitor" => {
            let key = w
                .keys
                .first()
                .cloned()
                .unwrap_or_else(|| DEFAULT_TAG_KEY.into());
            let name = format!("bedrock-cost-mcp-{key}");
            let arn = aws
                .create_tag_monitor(&name, &format!("iamPrincipal/{key}"))
                .await?;
            created.push(Created::AnomalyMonitor { arn: arn.clone() });
            if let Some(n) = w.args.notify.as_deref() {
                let sub = aws
                    .create_subscription(&name, &arn, n, ANOMALY_ALERT_USD)
                    .await?;
                created.push(Created::AnomalySubscription { arn: sub });
            }
            Ok(())
        }
        "budgets" => {
            let mut role_arn = format!("arn:aws:iam::{}:role/{BUDGET_ACTION_ROLE}", w.account);
            for call in &step.calls {
                match call.api.as_str() {
                    "iam:CreatePolicy" => {
                        let arn = aws
                            .create_managed_policy(DENY_POLICY, &deny_bedrock_policy())
                            .await?;
                        created.push(Created::ManagedPolicy { arn });
                        continue;
                    }
                    "iam:CreateRole" => {
                        let (trust, policy) = budget_action_role_policies(&w.account);
                        role_arn = aws
                            .create_service_role(
                                BUDGET_ACTION_ROLE,
                                &trust,
                                "ApplyDenyPolicy",
                                &policy,
                            )
                            .await?;
                        created.push(Created::Role {
                            name: BUDGET_ACTION_ROLE.into(),
                        });
                        continue;
                    }
                    "budgets:CreateBudgetAction" => {
                        let p = &call.params;
                        let names = |k: &str| -> Vec<String> {
                            p["Definition"]["IamActionDefinition"][k]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect()
                        };
                        let budget = p["BudgetName"].as_str().unwrap_or_default().to_string();
                        let id = aws
                            .create_budget_action(
                                &w.account,
                                &budget,
                                p["Definition"]["IamActionDefinition"]["PolicyArn"]
                                    .as_str()
                                    .unwrap_or_default(),
                                &names("Roles"),
                                &names("Users"),
                                &role_arn,
                                w.args.notify.as_deref().unwrap_or_default(),
                            )
                            .await?;
                        created.push(Created::BudgetAction { budget, id });
                        continue;
                    }
                    _ => {}
                }
                let b = &call.params["Budget"];
                let tags = &b["FilterExpression"]["Tags"];
                let name = b["BudgetName"].as_str().unwrap_or_default().to_string();
                aws.create_tag_budget(
                    &w.account,
                    &name,
                    b["BudgetLimit"]["Amount"]
                        .as_str()
                        .and_then(|a| a.parse().ok())
                        .unwrap_or(0.0),
                    tags["Key"]
                        .as_str()
                        .unwrap_or_default()
                        .trim_start_matches("iamPrincipal/"),
                    tags["Values"][0].as_str().unwrap_or_default(),
                )
                .await?;
                created.push(Created::Budget { name });
            }
            Ok(())
        }
        "prevention" => {
            let document = crate::domain::prevention::prevention_policy(&w.keys);
            for call in &step.calls {
                match call.api.as_str() {
                    "write file" => {
                        if let Some(dir) = w
                            .args
                            .policy_file
                            .parent()
                            .filter(|d| !d.as_os_str().is_empty())
                        {
                            std::fs::create_dir_all(dir)
                                .map_err(|e| format!("{}: {e}", dir.display()))?;
                        }
                        let text = serde_json::to_string_pretty(&document).unwrap_or_default();
                        std::fs::write(&w.args.policy_file, text + "\n")
                            .map_err(|e| format!("{}: {e}", w.args.policy_file.display()))?;
                        created.push(Created::File {
                            path: w.args.policy_file.display().to_string(),
                        });
                    }
                    "iam:CreatePolicy" => {
                        let arn = aws
                            .create_managed_policy(PREVENTION_POLICY, &document)
                            .await?;
                        created.push(Created::ManagedPolicy { arn });
                    }
                    _ => {
                        let target = w.args.attach_prevention.clone().unwrap_or_default();
                        let (kind, name) = target.split_once(':').unwrap_or(("", ""));
                        let arn = call.params["PolicyArn"].as_str().unwrap_or_default();
                        aws.attach_policy(kind, name, arn, true).await?;
                        created.push(Created::PolicyAttached {
                            to: kind.to_string(),
                            name: name.to_string(),
                            arn: arn.to_string(),
                        });
                    }
                }
            }
            Ok(())
        }
        other => Err(format!("{other} is planned only in this version")),
    }
}

/// Remove what a step created, newest first; what could not be removed.
async fn undo_created(
    aws: &SetupAws,
    account: &str,
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
            Created::Export { arn } => aws.delete_export(arn).await,
            Created::ExportPrincipalData { arn, previous } => aws
                .set_principal_data(arn, previous.as_deref())
                .await
                .map(|_| ()),
            Created::PolicyStatement { bucket, sid } => {
                aws.remove_policy_statement(bucket, sid).await
            }
            Created::Bucket { name } => aws.delete_bucket(name).await,
            Created::TagActivated { key } => aws
                .set_tag_status(std::slice::from_ref(key), "Inactive")
                .await
                .and_then(|errs| {
                    if errs.is_empty() {
                        Ok(())
                    } else {
                        Err(errs.join("; "))
                    }
                }),
            Created::Backfill { from } => Err(format!(
                "the backfill from {from} cannot be undone (AWS keeps what it applied)"
            )),
            Created::AthenaTable { database, name } => {
                aws.run_athena(&format!("DROP TABLE IF EXISTS {database}.{name}"), results)
                    .await
            }
            Created::AthenaDatabase { name } => {
                aws.run_athena(&format!("DROP DATABASE IF EXISTS {name}"), results)
                    .await
            }
            Created::LoggingConfiguration => aws.delete_logging().await,
            Created::LogGroup { name } => aws.delete_log_group(name).await,
            Created::ManagedPolicy { arn } => aws.delete_managed_policy(arn).await,
            Created::PolicyAttached { to, name, arn } => {
                aws.attach_policy(to, name, arn, false).await
            }
            Created::Role { name } => aws.delete_service_role(name).await,
            Created::BudgetAction { budget, id } => {
                aws.delete_budget_action(account, budget, id).await
            }
            Created::Budget { name } => aws.delete_budget(account, name).await,
            Created::AnomalyMonitor { arn } => aws.delete_monitor(arn).await,
            Created::AnomalySubscription { arn } => aws.delete_subscription(arn).await,
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

/// What `setup` answered.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Answer {
    Plan(Plan),
    Applied {
        applied: Vec<Outcome>,
        plan: Plan,
        state_file: String,
    },
    Undone {
        undone: String,
        removed: usize,
        left: Vec<String>,
    },
}

impl Answer {
    /// Whether something the caller asked for failed (exit 1): a step that failed, or an undo
    /// that could not remove something it could have.
    pub fn failed(&self) -> bool {
        match self {
            Answer::Plan(_) => false,
            Answer::Applied { applied, .. } => applied.iter().any(|o| !o.ok),
            Answer::Undone { left, .. } => left.iter().any(|l| {
                !l.contains("cannot be undone")
                    && !l.contains("holds data")
                    && !l.contains("still used")
                    && !l.starts_with("nothing recorded")
            }),
        }
    }

    /// The answer as text.
    pub fn render(&self) -> String {
        match self {
            Answer::Plan(p) => format!(
                "{}\nnothing was changed; run again with --apply (the tool: apply, confirmed) to make the changes of the steps marked 'to do'\n",
                render(p)
            ),
            Answer::Applied {
                applied,
                plan,
                state_file,
            } => {
                let mut out = String::new();
                if applied.is_empty() {
                    out.push_str(
                        "nothing to do: every chosen step is done, blocked or planned only\n",
                    );
                }
                for o in applied {
                    out.push_str(&format!(
                        "{}: {} ({} change(s) recorded; now {:?}){}\n",
                        o.step,
                        if o.ok { "applied" } else { "FAILED" },
                        o.created.len(),
                        o.verified,
                        o.error
                            .as_ref()
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default()
                    ));
                }
                out.push_str(&format!(
                    "\n{}state of applied steps: {state_file} (undo STEP removes what a step created)\n",
                    render(plan)
                ));
                out
            }
            Answer::Undone {
                undone,
                removed,
                left,
            } => {
                let mut out = format!("undo {undone}: {removed} change(s) reverted\n");
                for l in left {
                    out.push_str(&format!("  left: {l}\n"));
                }
                out
            }
        }
    }
}

/// Why `setup` could not run: the request (exit 2) or the account (exit 1).
#[derive(Debug)]
pub enum SetupError {
    Usage(String),
    Failed(String),
}

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetupError::Usage(e) | SetupError::Failed(e) => f.write_str(e),
        }
    }
}

/// Check the request before any AWS call; the tag keys, bare.
pub fn check_args(args: &SetupRequest) -> Result<Vec<String>, String> {
    for s in args.steps.iter().chain(args.undo.iter()) {
        if !STEPS.contains(&s.as_str()) {
            return Err(format!(
                "unknown step '{s}'; the steps are {}",
                STEPS.join(", ")
            ));
        }
    }
    if let Some(m) = &args.backfill_from {
        backfill_start(m, crate::domain::clock::today())?;
    }
    if let Some(b) = &args.bucket
        && !valid_bucket(b)
    {
        return Err(format!(
            "'{b}' is not an S3 bucket name (3-63 lowercase letters, digits, '.' and '-')"
        ));
    }
    for (what, v) in [("database", &args.database), ("table", &args.table)] {
        if !v
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
            || v.is_empty()
            || v.len() > 255
        {
            return Err(format!(
                "{what} '{v}' is not an Athena name for DDL (lowercase letters, digits and _)"
            ));
        }
    }
    for (what, v) in [
        ("export name", &args.export_name),
        ("export prefix", &args.export_prefix),
        ("logs prefix", &args.logs_prefix),
    ] {
        if v.is_empty()
            || v.len() > 128
            || !v
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-_./".contains(&c))
        {
            return Err(format!("{what} '{v}': 1-128 letters, digits and - _ . /"));
        }
    }
    if let Some(t) = &args.attach_prevention {
        let ok = t.split_once(':').is_some_and(|(k, n)| {
            matches!(k, "group" | "role" | "user")
                && !n.is_empty()
                && n.len() <= 128
                && n.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"+=,.@_-".contains(&c))
        });
        if !ok {
            return Err(format!(
                "attach prevention '{t}': give group:NAME, role:NAME or user:NAME"
            ));
        }
    }
    if let Some(g) = &args.log_group
        && (g.is_empty()
            || g.len() > 512
            || !g
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"_-/.#".contains(&c)))
    {
        return Err(format!(
            "log group '{g}': 1-512 letters, digits and _ - / . # (CloudWatch Logs names)"
        ));
    }
    let keys: Vec<String> = args
        .tag_keys
        .iter()
        .filter_map(|k| crate::domain::group::tag_key(k).map(str::to_string))
        .collect();
    if keys.is_empty() || keys.len() != args.tag_keys.len() || keys.len() > 20 {
        return Err("tag keys: 1 to 20 keys of 1-128 letters, digits, spaces and _.:/=+-@".into());
    }
    Ok(keys)
}

/// An S3 bucket name (S3 user guide, bucket naming rules), so no name reaches a policy or a DDL
/// statement that could change its meaning.
fn valid_bucket(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        && b.as_bytes()[0].is_ascii_alphanumeric()
        && b.as_bytes()[b.len() - 1].is_ascii_alphanumeric()
}

/// Plan, apply (`args.apply`) or undo (`args.undo`).
pub async fn run(config: &Config, args: &SetupRequest) -> Result<Answer, SetupError> {
    let keys = check_args(args).map_err(SetupError::Usage)?;
    let aws = SetupAws::load().await;
    let account = aws.account().await.map_err(SetupError::Failed)?;
    let state_file = state_path(args);
    let mut state = read_state(&state_file).map_err(SetupError::Usage)?;
    if !state.account.is_empty() && state.account != account {
        return Err(SetupError::Usage(format!(
            "the setup state {} belongs to account {}, these credentials to {account}; pass another state file for this account",
            state_file.display(),
            state.account
        )));
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
            return Ok(Answer::Undone {
                undone: step.clone(),
                removed: 0,
                left: vec![format!(
                    "nothing recorded as created by setup for this step ({})",
                    state_file.display()
                )],
            });
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
            &wanted.account,
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
            state.applied_at.remove(step);
        } else {
            state.steps.insert(step.clone(), keep);
        }
        write_state(&state_file, &state).map_err(SetupError::Failed)?;
        return Ok(Answer::Undone {
            undone: step.clone(),
            removed: created.len(),
            left,
        });
    }

    let plan_now = plan(&aws, &wanted, config).await;
    if !args.apply {
        return Ok(Answer::Plan(plan_now));
    }
    let mut outcomes = vec![];
    let chosen: Vec<Step> = plan_now
        .steps
        .iter()
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
            state.applied_at.insert(
                step.id.to_string(),
                crate::domain::clock::now().to_rfc3339(),
            );
            write_state(&state_file, &state).map_err(SetupError::Failed)?;
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
    let plan_after = plan(&aws, &wanted, config).await;
    for o in &mut outcomes {
        if let Some(s) = plan_after.steps.iter().find(|s| s.id == o.step) {
            o.verified = s.state;
        }
    }
    Ok(Answer::Applied {
        applied: outcomes,
        plan: plan_after,
        state_file: state_file.display().to_string(),
    })
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
}
