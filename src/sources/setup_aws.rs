//! The AWS calls of `setup` ([`crate::usecases::setup`]): read the account's state and make or
//! remove what a step needs. Errors are one line each; a refused call names the IAM action and
//! who usually holds it.
//!
//! Shapes: aws-sdk-bcmdataexports 1.120 (Export, DataQuery.TableConfigurations), aws-sdk-s3
//! (HeadBucket, CreateBucket, Get/Put/DeleteBucketPolicy, DeleteBucket), aws-sdk-costexplorer 1.138
//! (cost allocation tags, StartCostAllocationTagBackfill, ListCostAllocationTagBackfillHistory),
//! aws-sdk-athena (StartQueryExecution, GetQueryExecution, GetTableMetadata), aws-sdk-bedrock 1.166
//! (Put/Get/DeleteModelInvocationLoggingConfiguration).

use std::collections::{BTreeMap, HashMap};

use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde_json::{Value, json};

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

/// A CUR 2.0 export found in the account.
#[derive(Debug, Clone)]
pub struct ExportFound {
    pub arn: String,
    pub name: String,
    /// Its INCLUDE_IAM_PRINCIPAL_DATA property, when set.
    pub principal_data: Option<String>,
    /// `s3://bucket/prefix/name/data/`.
    pub location: Option<String>,
}

/// The export setup creates.
pub struct ExportSpec<'a> {
    pub name: &'a str,
    pub bucket: &'a str,
    pub prefix: &'a str,
    pub region: &'a str,
    pub query: &'a str,
    pub properties: HashMap<String, String>,
}

/// One tag backfill request, newest first in [`SetupAws::backfills`].
#[derive(Debug, Clone)]
pub struct BackfillSeen {
    pub from: String,
    pub requested_at: String,
    pub status: String,
}

/// The clients setup uses.
pub struct SetupAws {
    sts: aws_sdk_sts::Client,
    exports: aws_sdk_bcmdataexports::Client,
    s3: aws_sdk_s3::Client,
    ce: aws_sdk_costexplorer::Client,
    athena: aws_sdk_athena::Client,
    bedrock: aws_sdk_bedrock::Client,
    budgets: aws_sdk_budgets::Client,
    iam: aws_sdk_iam::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    region: String,
}

impl SetupAws {
    pub async fn load() -> SetupAws {
        let sdk = super::http_client::load_sdk_config().await;
        let region = sdk
            .region()
            .map(|r| r.as_ref().to_string())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "us-east-1".into());
        let global = super::clients::global_region(super::clients::partition(&region));
        // Data Exports is served from its partition's global region (us-east-1 in `aws`).
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
        SetupAws {
            sts: super::clients::sts(&sdk),
            exports,
            s3,
            ce: super::clients::cost_explorer(&sdk),
            athena: super::clients::athena(&sdk),
            bedrock: super::clients::bedrock(&sdk),
            budgets: super::clients::budgets(&sdk),
            iam: super::clients::iam(&sdk),
            logs: super::clients::logs(&sdk),
            region,
        }
    }

    /// The configured region (us-east-1 when none is).
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The caller's account (sts:GetCallerIdentity, free).
    pub async fn account(&self) -> Result<String, String> {
        self.sts
            .get_caller_identity()
            .send()
            .await
            .map(|o| o.account().unwrap_or_default().to_string())
            .map_err(|e| err_line("sts:GetCallerIdentity", &e))
    }

    /// The CUR 2.0 export to use: one with caller identity data, else the one named `name`,
    /// else the first CUR 2.0 export.
    pub async fn find_export(&self, name: &str) -> Result<Option<ExportFound>, String> {
        let list = self
            .exports
            .list_exports()
            .send()
            .await
            .map_err(|e| err_line("bcm-data-exports:ListExports", &e))?;
        let mut fallback: Option<ExportFound> = None;
        for r in list.exports() {
            let got = self
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
            let found = ExportFound {
                arn: r.export_arn().to_string(),
                name: export.name().to_string(),
                principal_data: props.get("INCLUDE_IAM_PRINCIPAL_DATA").cloned(),
                location,
            };
            if found.principal_data.as_deref() == Some("TRUE") {
                return Ok(Some(found));
            }
            if found.name == name || fallback.is_none() {
                fallback = Some(found);
            }
        }
        Ok(fallback)
    }

    pub async fn create_export(&self, spec: &ExportSpec<'_>) -> Result<String, String> {
        use aws_sdk_bcmdataexports::types as t;
        let e = |e: aws_smithy_types::error::operation::BuildError| e.to_string();
        let export = t::Export::builder()
            .name(spec.name)
            .description("CUR 2.0 with caller identity, for bedrock-cost-mcp")
            .data_query(
                t::DataQuery::builder()
                    .query_statement(spec.query)
                    .table_configurations("COST_AND_USAGE_REPORT", spec.properties.clone())
                    .build()
                    .map_err(e)?,
            )
            .destination_configurations(
                t::DestinationConfigurations::builder()
                    .s3_destination(
                        t::S3Destination::builder()
                            .s3_bucket(spec.bucket)
                            .s3_prefix(spec.prefix)
                            .s3_region(spec.region)
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
            .map_err(e)?;
        let out = self
            .exports
            .create_export()
            .export(export)
            .send()
            .await
            .map_err(|e| err_line("bcm-data-exports:CreateExport", &e))?;
        Ok(out.export_arn().unwrap_or_default().to_string())
    }

    pub async fn delete_export(&self, arn: &str) -> Result<(), String> {
        self.exports
            .delete_export()
            .export_arn(arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err_line("bcm-data-exports:DeleteExport", &e))
    }

    /// Set INCLUDE_IAM_PRINCIPAL_DATA of an export (None removes it), keeping the rest of the
    /// export as it is; its value before.
    pub async fn set_principal_data(
        &self,
        arn: &str,
        value: Option<&str>,
    ) -> Result<Option<String>, String> {
        let got = self
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
        self.exports
            .update_export()
            .export_arn(arn)
            .export(updated)
            .send()
            .await
            .map_err(|e| err_line("bcm-data-exports:UpdateExport", &e))?;
        Ok(previous)
    }

    pub async fn bucket_exists(&self, bucket: &str) -> Result<bool, String> {
        match self.s3.head_bucket().bucket(bucket).send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error().is_some_and(
                    aws_sdk_s3::operation::head_bucket::HeadBucketError::is_not_found,
                ) =>
            {
                Ok(false)
            }
            Err(e) if matches!(code_of(&e).as_str(), "NotFound" | "NoSuchBucket" | "404") => {
                Ok(false)
            }
            Err(e) => Err(err_line("s3:ListBucket (HeadBucket)", &e)),
        }
    }

    pub async fn create_bucket(&self, bucket: &str) -> Result<(), String> {
        let mut req = self.s3.create_bucket().bucket(bucket);
        if self.region != "us-east-1" {
            req = req.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                        self.region.as_str(),
                    ))
                    .build(),
            );
        }
        req.send()
            .await
            .map(|_| ())
            .map_err(|e| err_line("s3:CreateBucket", &e))
    }

    /// Delete an empty bucket; a bucket with objects is left, and the error says so.
    pub async fn delete_bucket(&self, bucket: &str) -> Result<(), String> {
        match self.s3.delete_bucket().bucket(bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) if code_of(&e) == "BucketNotEmpty" => Err(format!(
                "bucket {bucket} holds data (delivered exports or logs): left in place; empty and delete it yourself if you want it gone"
            )),
            Err(e) => Err(err_line("s3:DeleteBucket", &e)),
        }
    }

    async fn bucket_policy(&self, bucket: &str) -> Result<Option<String>, String> {
        match self.s3.get_bucket_policy().bucket(bucket).send().await {
            Ok(out) => Ok(out.policy().map(str::to_string)),
            Err(e) if code_of(&e) == "NoSuchBucketPolicy" => Ok(None),
            Err(e) => Err(err_line("s3:GetBucketPolicy", &e)),
        }
    }

    /// Add `statement` to the bucket's policy (replacing one with its `Sid`), keeping the rest.
    pub async fn add_policy_statement(&self, bucket: &str, statement: Value) -> Result<(), String> {
        let current = self.bucket_policy(bucket).await?;
        let policy = with_statement(current.as_deref(), statement)?;
        self.s3
            .put_bucket_policy()
            .bucket(bucket)
            .policy(policy)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err_line("s3:PutBucketPolicy", &e))
    }

    /// Remove the statement `sid` from the bucket's policy (the policy itself when nothing else
    /// is left).
    pub async fn remove_policy_statement(&self, bucket: &str, sid: &str) -> Result<(), String> {
        let Some(p) = self.bucket_policy(bucket).await? else {
            return Ok(());
        };
        match without_statement(&p, sid) {
            Some(rest) => self
                .s3
                .put_bucket_policy()
                .bucket(bucket)
                .policy(rest)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| err_line("s3:PutBucketPolicy", &e)),
            None => self
                .s3
                .delete_bucket_policy()
                .bucket(bucket)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| err_line("s3:DeleteBucketPolicy", &e)),
        }
    }

    /// The status (`Active`, `Inactive`) of each of these cost allocation tag keys AWS knows.
    pub async fn tag_statuses(&self, keys: &[String]) -> Result<BTreeMap<String, String>, String> {
        let out = self
            .ce
            .list_cost_allocation_tags()
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map_err(|e| err_line("ce:ListCostAllocationTags", &e))?;
        Ok(out
            .cost_allocation_tags()
            .iter()
            .map(|t| (t.tag_key().to_string(), t.status().as_str().to_string()))
            .collect())
    }

    /// Set the status of tag keys; the keys that failed, as `key: why`.
    pub async fn set_tag_status(
        &self,
        keys: &[String],
        status: &str,
    ) -> Result<Vec<String>, String> {
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
        let out = self
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

    /// The tag backfill requests, newest first.
    pub async fn backfills(&self) -> Result<Vec<BackfillSeen>, String> {
        let h = self
            .ce
            .list_cost_allocation_tag_backfill_history()
            .send()
            .await
            .map_err(|e| err_line("ce:ListCostAllocationTagBackfillHistory", &e))?;
        Ok(h.backfill_requests()
            .iter()
            .map(|b| BackfillSeen {
                from: b.backfill_from().unwrap_or_default().to_string(),
                requested_at: b.requested_at().unwrap_or_default().to_string(),
                status: b
                    .backfill_status()
                    .map_or(
                        "",
                        aws_sdk_costexplorer::types::CostAllocationTagBackfillStatus::as_str,
                    )
                    .to_string(),
            })
            .collect())
    }

    pub async fn start_backfill(&self, from: &str) -> Result<(), String> {
        self.ce
            .start_cost_allocation_tag_backfill()
            .backfill_from(from)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err_line("ce:StartCostAllocationTagBackfill", &e))
    }

    /// Whether the Athena table exists (GetTableMetadata); the error code when it does not.
    pub async fn table(&self, database: &str, table: &str) -> Result<(), String> {
        self.athena
            .get_table_metadata()
            .catalog_name("AwsDataCatalog")
            .database_name(database)
            .table_name(table)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| code_of(&e))
    }

    /// Run one Athena statement to its end (at most two minutes).
    pub async fn run_athena(&self, sql: &str, results: &str) -> Result<(), String> {
        use aws_sdk_athena::types::{QueryExecutionState, ResultConfiguration};
        let started = self
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
            let out = self
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

    /// Where model invocation logging delivers in the configured region.
    pub async fn logging(&self) -> Result<super::invocation_logs::LoggingSetup, String> {
        super::invocation_logs::logging_setup(&self.bedrock)
            .await
            .map_err(|e| e.to_string())
    }

    /// Turn on model invocation logging, metadata only: to S3 (`bucket`, `prefix`) and/or
    /// CloudWatch Logs (`group`, delivered with `role_arn`).
    pub async fn put_logging(
        &self,
        s3: Option<(&str, &str)>,
        cloudwatch: Option<(&str, &str)>,
    ) -> Result<(), String> {
        let s3 = match s3 {
            Some((bucket, prefix)) => Some(
                aws_sdk_bedrock::types::S3Config::builder()
                    .bucket_name(bucket)
                    .key_prefix(prefix)
                    .build()
                    .map_err(|e| e.to_string())?,
            ),
            None => None,
        };
        let cloudwatch = match cloudwatch {
            Some((group, role)) => Some(
                aws_sdk_bedrock::types::CloudWatchConfig::builder()
                    .log_group_name(group)
                    .role_arn(role)
                    .build()
                    .map_err(|e| e.to_string())?,
            ),
            None => None,
        };
        let config = aws_sdk_bedrock::types::LoggingConfig::builder()
            .set_s3_config(s3)
            .set_cloud_watch_config(cloudwatch)
            .text_data_delivery_enabled(false)
            .image_data_delivery_enabled(false)
            .embedding_data_delivery_enabled(false)
            .video_data_delivery_enabled(false)
            .build();
        self.bedrock
            .put_model_invocation_logging_configuration()
            .logging_config(config)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err_line("bedrock:PutModelInvocationLoggingConfiguration", &e))
    }

    pub async fn log_group_exists(&self, group: &str) -> Result<bool, String> {
        let out = self
            .logs
            .describe_log_groups()
            .log_group_name_prefix(group)
            .send()
            .await
            .map_err(|e| err_line("logs:DescribeLogGroups", &e))?;
        Ok(out
            .log_groups()
            .iter()
            .any(|g| g.log_group_name() == Some(group)))
    }

    pub async fn create_log_group(&self, group: &str) -> Result<(), String> {
        self.logs
            .create_log_group()
            .log_group_name(group)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err_line("logs:CreateLogGroup", &e))
    }

    pub async fn delete_log_group(&self, group: &str) -> Result<(), String> {
        self.logs
            .delete_log_group()
            .log_group_name(group)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err_line("logs:DeleteLogGroup", &e))
    }

    /// A role a service assumes (`trust`), with one inline policy; its ARN.
    pub async fn create_service_role(
        &self,
        name: &str,
        trust: &Value,
        policy_name: &str,
        policy: &Value,
    ) -> Result<String, String> {
        let out = self
            .iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(trust.to_string())
            .description("made by bedrock-cost-mcp setup")
            .send()
            .await
            .map_err(|e| err_line("iam:CreateRole", &e))?;
        self.iam
            .put_role_policy()
            .role_name(name)
            .policy_name(policy_name)
            .policy_document(policy.to_string())
            .send()
            .await
            .map_err(|e| err_line("iam:PutRolePolicy", &e))?;
        Ok(out.role().map(|r| r.arn().to_string()).unwrap_or_default())
    }

    pub async fn role_exists(&self, name: &str) -> Result<bool, String> {
        match self.iam.get_role().role_name(name).send().await {
            Ok(_) => Ok(true),
            Err(e) if code_of(&e) == "NoSuchEntity" => Ok(false),
            Err(e) => Err(err_line("iam:GetRole", &e)),
        }
    }

    /// Delete a role and its inline policies.
    pub async fn delete_service_role(&self, name: &str) -> Result<(), String> {
        if let Ok(out) = self.iam.list_role_policies().role_name(name).send().await {
            for p in out.policy_names() {
                let _ = self
                    .iam
                    .delete_role_policy()
                    .role_name(name)
                    .policy_name(p)
                    .send()
                    .await;
            }
        }
        self.iam
            .delete_role()
            .role_name(name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err_line("iam:DeleteRole", &e))
    }

    /// The names of the IAM roles and users that carry the tag `key`=`value` (one
    /// GetAccountAuthorizationDetails sweep).
    pub async fn tagged_principals(
        &self,
        key: &str,
        value: &str,
    ) -> Result<(Vec<String>, Vec<String>), String> {
        use aws_sdk_iam::types::EntityType;
        let (mut roles, mut users) = (vec![], vec![]);
        let mut pages = self
            .iam
            .get_account_authorization_details()
            .filter(EntityType::Role)
            .filter(EntityType::User)
            .into_paginator()
            .send();
        let has = |tags: &[aws_sdk_iam::types::Tag]| {
            tags.iter().any(|t| t.key() == key && t.value() == value)
        };
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| err_line("iam:GetAccountAuthorizationDetails", &e))?;
            for r in page.role_detail_list() {
                if has(r.tags()) {
                    roles.extend(r.role_name().map(str::to_string));
                }
            }
            for u in page.user_detail_list() {
                if has(u.tags()) {
                    users.extend(u.user_name().map(str::to_string));
                }
            }
        }
        Ok((roles, users))
    }

    /// The ids of the budget's actions that apply the IAM policy `policy_arn`.
    pub async fn budget_actions(
        &self,
        account: &str,
        budget: &str,
        policy_arn: &str,
    ) -> Result<Vec<String>, String> {
        let out = self
            .budgets
            .describe_budget_actions_for_budget()
            .account_id(account)
            .budget_name(budget)
            .send()
            .await
            .map_err(|e| err_line("budgets:DescribeBudgetActionsForBudget", &e))?;
        Ok(out
            .actions()
            .iter()
            .filter(|a| {
                a.definition()
                    .and_then(|d| d.iam_action_definition())
                    .is_some_and(|i| i.policy_arn() == policy_arn)
            })
            .map(|a| a.action_id().to_string())
            .collect())
    }

    /// At 100% of actual spend, attach `policy_arn` to these roles and users (automatically,
    /// as `execution_role` allows), telling `notify` (an email, or an SNS topic ARN).
    #[allow(clippy::too_many_arguments)]
    pub async fn create_budget_action(
        &self,
        account: &str,
        budget: &str,
        policy_arn: &str,
        roles: &[String],
        users: &[String],
        execution_role: &str,
        notify: &str,
    ) -> Result<String, String> {
        use aws_sdk_budgets::types::{
            ActionThreshold, ActionType, ApprovalModel, Definition, IamActionDefinition,
            NotificationType, Subscriber, SubscriptionType, ThresholdType,
        };
        let e = |e: aws_smithy_types::error::operation::BuildError| e.to_string();
        let out = self
            .budgets
            .create_budget_action()
            .account_id(account)
            .budget_name(budget)
            .notification_type(NotificationType::Actual)
            .action_type(ActionType::Iam)
            .action_threshold(
                ActionThreshold::builder()
                    .action_threshold_value(100.0)
                    .action_threshold_type(ThresholdType::Percentage)
                    .build()
                    .map_err(e)?,
            )
            .definition(
                Definition::builder()
                    .iam_action_definition(
                        IamActionDefinition::builder()
                            .policy_arn(policy_arn)
                            .set_roles((!roles.is_empty()).then(|| roles.to_vec()))
                            .set_users((!users.is_empty()).then(|| users.to_vec()))
                            .build()
                            .map_err(e)?,
                    )
                    .build(),
            )
            .execution_role_arn(execution_role)
            .approval_model(ApprovalModel::Auto)
            .subscribers(
                Subscriber::builder()
                    .subscription_type(if notify.starts_with("arn:") {
                        SubscriptionType::Sns
                    } else {
                        SubscriptionType::Email
                    })
                    .address(notify)
                    .build()
                    .map_err(e)?,
            )
            .send()
            .await
            .map_err(|e| err_line("budgets:CreateBudgetAction", &e))?;
        Ok(out.action_id().to_string())
    }

    pub async fn delete_budget_action(
        &self,
        account: &str,
        budget: &str,
        id: &str,
    ) -> Result<(), String> {
        self.budgets
            .delete_budget_action()
            .account_id(account)
            .budget_name(budget)
            .action_id(id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err_line("budgets:DeleteBudgetAction", &e))
    }

    /// The ARN of the customer managed policy `name`, when there is one.
    pub async fn managed_policy(
        &self,
        account: &str,
        name: &str,
    ) -> Result<Option<String>, String> {
        let arn = format!("arn:aws:iam::{account}:policy/{name}");
        match self.iam.get_policy().policy_arn(&arn).send().await {
            Ok(_) => Ok(Some(arn)),
            Err(e) if code_of(&e) == "NoSuchEntity" => Ok(None),
            Err(e) => Err(err_line("iam:GetPolicy", &e)),
        }
    }

    /// Create a customer managed policy; its ARN.
    pub async fn create_managed_policy(
        &self,
        name: &str,
        document: &Value,
    ) -> Result<String, String> {
        let out = self
            .iam
            .create_policy()
            .policy_name(name)
            .policy_document(document.to_string())
            .description("bedrock-cost-mcp setup: principals carry the attribution tag keys")
            .send()
            .await
            .map_err(|e| err_line("iam:CreatePolicy", &e))?;
        Ok(out
            .policy()
            .and_then(|p| p.arn())
            .unwrap_or_default()
            .to_string())
    }

    pub async fn delete_managed_policy(&self, arn: &str) -> Result<(), String> {
        self.iam
            .delete_policy()
            .policy_arn(arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err_line("iam:DeletePolicy", &e))
    }

    /// Whether the managed policy `arn` is attached to the IAM `group`, `role` or `user`.
    pub async fn policy_attached(&self, kind: &str, name: &str, arn: &str) -> Result<bool, String> {
        let arns: Vec<String> = match kind {
            "group" => self
                .iam
                .list_attached_group_policies()
                .group_name(name)
                .send()
                .await
                .map_err(|e| err_line("iam:ListAttachedGroupPolicies", &e))?
                .attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_string))
                .collect(),
            "role" => self
                .iam
                .list_attached_role_policies()
                .role_name(name)
                .send()
                .await
                .map_err(|e| err_line("iam:ListAttachedRolePolicies", &e))?
                .attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_string))
                .collect(),
            "user" => self
                .iam
                .list_attached_user_policies()
                .user_name(name)
                .send()
                .await
                .map_err(|e| err_line("iam:ListAttachedUserPolicies", &e))?
                .attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_string))
                .collect(),
            _ => return Err(format!("cannot attach a policy to a {kind}")),
        };
        Ok(arns.iter().any(|a| a == arn))
    }

    /// Attach (or detach) a managed policy to an IAM `group`, `role` or `user`.
    pub async fn attach_policy(
        &self,
        kind: &str,
        name: &str,
        arn: &str,
        attach: bool,
    ) -> Result<(), String> {
        match (kind, attach) {
            ("group", true) => self
                .iam
                .attach_group_policy()
                .group_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| err_line("iam:AttachGroupPolicy", &e)),
            ("group", false) => self
                .iam
                .detach_group_policy()
                .group_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| err_line("iam:DetachGroupPolicy", &e)),
            ("role", true) => self
                .iam
                .attach_role_policy()
                .role_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| err_line("iam:AttachRolePolicy", &e)),
            ("role", false) => self
                .iam
                .detach_role_policy()
                .role_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| err_line("iam:DetachRolePolicy", &e)),
            ("user", true) => self
                .iam
                .attach_user_policy()
                .user_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| err_line("iam:AttachUserPolicy", &e)),
            ("user", false) => self
                .iam
                .detach_user_policy()
                .user_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| err_line("iam:DetachUserPolicy", &e)),
            _ => Err(format!("cannot attach a policy to a {kind}")),
        }
    }

    pub async fn delete_logging(&self) -> Result<(), String> {
        self.bedrock
            .delete_model_invocation_logging_configuration()
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err_line("bedrock:DeleteModelInvocationLoggingConfiguration", &e))
    }
}

impl SetupAws {
    /// The names of the account's budgets.
    pub async fn budget_names(
        &self,
        account: &str,
    ) -> Result<std::collections::BTreeSet<String>, String> {
        let mut names = std::collections::BTreeSet::new();
        let mut pages = self
            .budgets
            .describe_budgets()
            .account_id(account)
            .max_results(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            match page {
                Ok(p) => names.extend(p.budgets().iter().map(|b| b.budget_name().to_string())),
                // No budgets at all is answered with NotFoundException.
                Err(e) if code_of(&e) == "NotFoundException" => break,
                Err(e) => return Err(err_line("budgets:ViewBudget", &e)),
            }
        }
        Ok(names)
    }

    /// A monthly cost budget on one value of an `iamPrincipal/<key>` tag.
    pub async fn create_tag_budget(
        &self,
        account: &str,
        name: &str,
        monthly_usd: f64,
        key: &str,
        value: &str,
    ) -> Result<(), String> {
        use aws_sdk_budgets::types::{Budget, BudgetType, Expression, Spend, TagValues, TimeUnit};
        let budget = Budget::builder()
            .budget_name(name)
            .budget_type(BudgetType::Cost)
            .time_unit(TimeUnit::Monthly)
            .budget_limit(
                Spend::builder()
                    .amount(format!("{monthly_usd:.2}"))
                    .unit("USD")
                    .build()
                    .map_err(|e| e.to_string())?,
            )
            .filter_expression(
                Expression::builder()
                    .tags(
                        TagValues::builder()
                            .key(format!("iamPrincipal/{key}"))
                            .values(value)
                            .build(),
                    )
                    .build(),
            )
            .build()
            .map_err(|e| e.to_string())?;
        self.budgets
            .create_budget()
            .account_id(account)
            .budget(budget)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err_line("budgets:ModifyBudget (CreateBudget)", &e))
    }

    /// The ARN of an AWS managed anomaly monitor on the tag key `tag` (`iamPrincipal/<key>`).
    pub async fn tag_monitor(&self, tag: &str) -> Result<Option<String>, String> {
        let mut token: Option<String> = None;
        loop {
            let out = self
                .ce
                .get_anomaly_monitors()
                .set_next_page_token(token.take())
                .send()
                .await
                .map_err(|e| err_line("ce:GetAnomalyMonitors", &e))?;
            for m in out.anomaly_monitors() {
                let on_tag = m.monitor_dimension()
                    == Some(&aws_sdk_costexplorer::types::MonitorDimension::Tag)
                    && m.monitor_specification()
                        .and_then(|s| s.tags())
                        .and_then(|t| t.key())
                        == Some(tag);
                if on_tag {
                    return Ok(m.monitor_arn().map(str::to_string));
                }
            }
            match out.next_page_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(None),
            }
        }
    }

    /// An AWS managed monitor on every value of the tag key `tag`; its ARN.
    pub async fn create_tag_monitor(&self, name: &str, tag: &str) -> Result<String, String> {
        use aws_sdk_costexplorer::types::{
            AnomalyMonitor, Expression, MonitorDimension, MonitorType, TagValues,
        };
        let monitor = AnomalyMonitor::builder()
            .monitor_name(name)
            .monitor_type(MonitorType::Dimensional)
            .monitor_dimension(MonitorDimension::Tag)
            .monitor_specification(
                Expression::builder()
                    .tags(TagValues::builder().key(tag).build())
                    .build(),
            )
            .build()
            .map_err(|e| e.to_string())?;
        self.ce
            .create_anomaly_monitor()
            .anomaly_monitor(monitor)
            .send()
            .await
            .map(|o| o.monitor_arn().to_string())
            .map_err(|e| err_line("ce:CreateAnomalyMonitor", &e))
    }

    /// Alerts of a monitor to an email address (daily) or an SNS topic (immediate), for
    /// anomalies of at least `min_usd`; the subscription's ARN.
    pub async fn create_subscription(
        &self,
        name: &str,
        monitor: &str,
        notify: &str,
        min_usd: f64,
    ) -> Result<String, String> {
        use aws_sdk_costexplorer::types::{
            AnomalySubscription, AnomalySubscriptionFrequency, Dimension, DimensionValues,
            Expression, MatchOption, Subscriber, SubscriberType,
        };
        let sns = notify.starts_with("arn:");
        let sub = AnomalySubscription::builder()
            .subscription_name(name)
            .monitor_arn_list(monitor)
            .subscribers(
                Subscriber::builder()
                    .address(notify)
                    .r#type(if sns {
                        SubscriberType::Sns
                    } else {
                        SubscriberType::Email
                    })
                    .build(),
            )
            .frequency(if sns {
                AnomalySubscriptionFrequency::Immediate
            } else {
                AnomalySubscriptionFrequency::Daily
            })
            .threshold_expression(
                Expression::builder()
                    .dimensions(
                        DimensionValues::builder()
                            .key(Dimension::AnomalyTotalImpactAbsolute)
                            .values(format!("{min_usd}"))
                            .match_options(MatchOption::GreaterThanOrEqual)
                            .build(),
                    )
                    .build(),
            )
            .build()
            .map_err(|e| e.to_string())?;
        self.ce
            .create_anomaly_subscription()
            .anomaly_subscription(sub)
            .send()
            .await
            .map(|o| o.subscription_arn().to_string())
            .map_err(|e| err_line("ce:CreateAnomalySubscription", &e))
    }

    pub async fn delete_monitor(&self, arn: &str) -> Result<(), String> {
        self.ce
            .delete_anomaly_monitor()
            .monitor_arn(arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err_line("ce:DeleteAnomalyMonitor", &e))
    }

    pub async fn delete_subscription(&self, arn: &str) -> Result<(), String> {
        self.ce
            .delete_anomaly_subscription()
            .subscription_arn(arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err_line("ce:DeleteAnomalySubscription", &e))
    }

    pub async fn delete_budget(&self, account: &str, name: &str) -> Result<(), String> {
        self.budgets
            .delete_budget()
            .account_id(account)
            .budget_name(name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err_line("budgets:ModifyBudget (DeleteBudget)", &e))
    }
}

/// A bucket policy with `statement` added (replacing one with the same Sid).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_added_once_and_removed_by_sid() {
        let existing = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Theirs","Effect":"Deny","Principal":"*","Action":"s3:DeleteBucket","Resource":"arn:aws:s3:::b"}]}"#;
        let ours = json!({"Sid": "Ours", "Effect": "Allow"});
        let once = with_statement(Some(existing), ours.clone()).unwrap();
        let twice = with_statement(Some(&once), ours.clone()).unwrap();
        let doc: Value = serde_json::from_str(&twice).unwrap();
        assert_eq!(doc["Statement"].as_array().unwrap().len(), 2);
        let back: Value =
            serde_json::from_str(&without_statement(&twice, "Ours").unwrap()).unwrap();
        assert_eq!(back["Statement"][0]["Sid"], "Theirs");
        assert_eq!(back["Statement"].as_array().unwrap().len(), 1);
        assert!(without_statement(&with_statement(None, ours).unwrap(), "Ours").is_none());
    }
}
