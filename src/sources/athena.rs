//! CUR 2.0 through Athena, for exports that outgrow one machine: the same
//! questions as the embedded engine ([`super::cur_sql`]), as SQL on the
//! organisation's CUR table. Start, poll with backoff, page the results,
//! stop the query when the caller goes away, report the data scanned.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_athena::Client;
use aws_sdk_athena::types::{
    QueryExecutionContext, QueryExecutionState, ResultConfiguration, ResultReuseByAgeConfiguration,
    ResultReuseConfiguration,
};

use super::cost_explorer::CacheTtl;
use super::cur_sql::{self, Dialect, NO_PRINCIPAL_COLUMN, RawRow, TableShape};
use super::{Progress, SpendAnswer, SpendSource};
use crate::domain::group::SpendQuery;
use crate::error::{ToolError, from_sdk};

/// Where and how to run Athena queries.
#[derive(Debug, Clone)]
pub struct AthenaSettings {
    pub catalog: String,
    pub database: String,
    pub table: String,
    pub workgroup: String,
    /// s3:// location for results; None uses the workgroup's setting.
    pub output: Option<String>,
    /// Partition column of the billing period (`billing_period` for CUR 2.0 tables), if any.
    pub partition_column: Option<String>,
    /// Give up (and stop the query) after this long.
    pub timeout: Duration,
    /// Let Athena reuse an identical query's result up to this old (Athena's query result
    /// reuse: no data scanned, nothing billed); zero turns reuse off. The server passes its
    /// cache times.
    pub reuse: CacheTtl,
}

/// Athena's longest result reuse (7 days).
const MAX_REUSE_MINUTES: u64 = 10_080;

/// Athena identifiers we accept: letters, digits, underscore, hyphen (catalogs).
pub fn valid_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The Athena spend source.
pub struct Athena {
    client: crate::sources::Lazy<Client>,
    settings: AthenaSettings,
    shape: TableShape,
    /// Cleared the first time Athena says the table has no `line_item_iam_principal` column
    /// (an export without IAM principal data): later questions leave the column out, and
    /// questions that need it are refused with how to turn it on.
    principal_column: AtomicBool,
}

impl Athena {
    pub fn new(
        client: crate::sources::Lazy<Client>,
        settings: AthenaSettings,
    ) -> Result<Athena, String> {
        for (what, v) in [
            ("database", &settings.database),
            ("table", &settings.table),
            ("workgroup", &settings.workgroup),
            ("catalog", &settings.catalog),
        ] {
            if !valid_identifier(v) {
                return Err(format!(
                    "--athena-{what} '{v}' is not a valid Athena name (letters, digits, _ and -)"
                ));
            }
        }
        if let Some(o) = &settings.output
            && !o.starts_with("s3://")
        {
            return Err(format!("--athena-output '{o}' must be an s3:// location"));
        }
        if let Some(pc) = &settings.partition_column
            && !valid_identifier(pc)
        {
            return Err(format!(
                "--athena-partition-column '{pc}' is not a valid column name"
            ));
        }
        let shape = TableShape {
            table: format!("\"{}\".\"{}\"", settings.database, settings.table),
            partition_column: settings.partition_column.clone(),
            has_principal: true,
            rollup: false,
        };
        Ok(Athena {
            client,
            settings,
            shape,
            principal_column: AtomicBool::new(true),
        })
    }
}

/// Quote a value as an Athena execution parameter (a SQL string literal).
fn literal(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

fn failure(state: &str, reason: &str) -> ToolError {
    if reason.contains("line_item_iam_principal") {
        return ToolError::Unsupported(NO_PRINCIPAL_COLUMN.into());
    }
    let lower = reason.to_ascii_lowercase();
    if lower.contains("access denied") || lower.contains("accessdenied") {
        return ToolError::AccessDenied {
            action: "s3:PutObject and s3:GetBucketLocation on the Athena output location, s3:GetObject and s3:ListBucket on the CUR bucket, and glue:GetTable".into(),
            message: reason.into(),
        };
    }
    ToolError::Upstream {
        service: "Athena".into(),
        code: format!("Query{state}"),
        message: reason.into(),
        hint: if state == "CANCELLED" {
            ". The query was cancelled; ask again".into()
        } else {
            String::new()
        },
    }
}

#[async_trait::async_trait]
impl SpendSource for Athena {
    fn name(&self) -> &'static str {
        "athena"
    }

    async fn spend(&self, q: &SpendQuery, progress: Progress) -> Result<SpendAnswer, ToolError> {
        let with_principal = self.principal_column.load(Ordering::Relaxed);
        match self.run(q, with_principal, progress.clone()).await {
            // The table has no principal column: a question that does not need it is asked
            // again without it (tag and model questions work on such exports); one that needs
            // it gets the error that says how to turn it on.
            Err(ToolError::Unsupported(m)) if with_principal && m == NO_PRINCIPAL_COLUMN => {
                self.principal_column.store(false, Ordering::Relaxed);
                tracing::warn!(table = %self.shape.table, "the Athena table has no line_item_iam_principal column");
                self.run(q, false, progress).await
            }
            other => other,
        }
    }
}

impl Athena {
    async fn run(
        &self,
        q: &SpendQuery,
        with_principal: bool,
        progress: Progress,
    ) -> Result<SpendAnswer, ToolError> {
        let shape = TableShape {
            has_principal: with_principal,
            ..self.shape.clone()
        };
        let sql = cur_sql::build(q, &shape, Dialect::Athena)?;
        tracing::debug!(sql = %sql.sql, "Athena query");
        let mut start = self
            .client
            .start_query_execution()
            .query_string(&sql.sql)
            .query_execution_context(
                QueryExecutionContext::builder()
                    .catalog(&self.settings.catalog)
                    .database(&self.settings.database)
                    .build(),
            )
            .work_group(&self.settings.workgroup);
        if let Some(o) = &self.settings.output {
            start = start
                .result_configuration(ResultConfiguration::builder().output_location(o).build());
        }
        if !sql.params.is_empty() {
            start = start
                .set_execution_parameters(Some(sql.params.iter().map(|p| literal(p)).collect()));
        }
        let reuse = (self.settings.reuse).for_period(&q.period, crate::domain::clock::today());
        let reuse_minutes = (reuse.as_secs() / 60).min(MAX_REUSE_MINUTES);
        if reuse_minutes > 0 {
            start = start.result_reuse_configuration(
                ResultReuseConfiguration::builder()
                    .result_reuse_by_age_configuration(
                        ResultReuseByAgeConfiguration::builder()
                            .enabled(true)
                            .max_age_in_minutes(reuse_minutes as i32)
                            .build(),
                    )
                    .build(),
            );
        }
        let started = start
            .send()
            .await
            .map_err(|e| from_sdk("Athena", "athena:StartQueryExecution", &e))?;
        let id = started
            .query_execution_id()
            .ok_or_else(|| ToolError::Malformed {
                service: "Athena".into(),
                message: "StartQueryExecution returned no QueryExecutionId".into(),
            })?
            .to_string();
        let mut guard = {
            let (client, id) = (self.client.clone(), id.clone());
            crate::sources::StopOnDrop::new(format!("Athena {id}"), move || {
                Box::pin(async move {
                    let _ = client
                        .stop_query_execution()
                        .query_execution_id(id)
                        .send()
                        .await;
                })
            })
        };
        let t0 = Instant::now();
        let mut delay = Duration::from_millis(200);
        let (scanned, reused) = loop {
            let out = self
                .client
                .get_query_execution()
                .query_execution_id(&id)
                .send()
                .await
                .map_err(|e| from_sdk("Athena", "athena:GetQueryExecution", &e))?;
            let exec = out.query_execution();
            let status = exec.and_then(|e| e.status());
            let state = status
                .and_then(|s| s.state())
                .cloned()
                .unwrap_or(QueryExecutionState::Queued);
            match state {
                QueryExecutionState::Succeeded => {
                    let stats = exec.and_then(|e| e.statistics());
                    break (
                        stats
                            .and_then(aws_sdk_athena::types::QueryExecutionStatistics::data_scanned_in_bytes)
                            .map(|b| b.max(0) as u64),
                        stats
                            .and_then(|s| s.result_reuse_information())
                            .is_some_and(aws_sdk_athena::types::ResultReuseInformation::reused_previous_result),
                    );
                }
                QueryExecutionState::Failed | QueryExecutionState::Cancelled => {
                    guard.disarm();
                    let reason = status
                        .and_then(|s| {
                            s.athena_error()
                                .and_then(|e| e.error_message())
                                .or(s.state_change_reason())
                        })
                        .unwrap_or("no reason given");
                    return Err(failure(state.as_str(), reason));
                }
                _ => {}
            }
            if t0.elapsed() > self.settings.timeout {
                return Err(ToolError::Upstream {
                    service: "Athena".into(),
                    code: "Timeout".into(),
                    message: format!(
                        "query {id} did not finish within {} s and was stopped",
                        self.settings.timeout.as_secs()
                    ),
                    hint: ". Narrow the period, or raise --athena-timeout-secs".into(),
                });
            }
            progress(
                t0.elapsed().as_secs_f64(),
                0.0,
                format!(
                    "Athena query {}: {:.0} s",
                    state.as_str(),
                    t0.elapsed().as_secs_f64()
                ),
            );
            tokio::time::sleep(delay).await;
            delay = (delay * 3 / 2).min(Duration::from_secs(2));
        };
        guard.disarm();
        let mut raw = Vec::new();
        let mut first_page = true;
        let width = sql.columns.len() + 3;
        let mut pages = self
            .client
            .get_query_results()
            .query_execution_id(&id)
            .max_results(1000)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| from_sdk("Athena", "athena:GetQueryResults", &e))?;
            let rows = page
                .result_set()
                .map(aws_sdk_athena::types::ResultSet::rows)
                .unwrap_or_default();
            for (i, row) in rows.iter().enumerate() {
                let cells: Vec<Option<String>> = row
                    .data()
                    .iter()
                    .map(|d| d.var_char_value().map(str::to_string))
                    .collect();
                if first_page && i == 0 && cells.iter().any(|c| c.as_deref() == Some("cost")) {
                    continue; // header row
                }
                if cells.len() != width {
                    return Err(ToolError::Malformed {
                        service: "Athena".into(),
                        message: format!(
                            "a result row has {} columns, expected {width}",
                            cells.len()
                        ),
                    });
                }
                let num = |v: &Option<String>| -> Result<f64, ToolError> {
                    match v.as_deref() {
                        None | Some("") => Ok(0.0),
                        Some(s) => s.parse::<f64>().map_err(|_| ToolError::Malformed {
                            service: "Athena".into(),
                            message: format!("'{s}' is not a number"),
                        }),
                    }
                };
                cur_sql::check_group_count(raw.len() + 1)?;
                raw.push(RawRow {
                    values: cells[..width - 3].to_vec(),
                    cost: num(&cells[width - 3])?,
                    tokens: match cells[width - 2].as_deref() {
                        None | Some("") => None,
                        Some(_) => Some(num(&cells[width - 2])?),
                    },
                    other_cost: num(&cells[width - 1])?,
                });
            }
            first_page = false;
            progress(
                t0.elapsed().as_secs_f64(),
                0.0,
                format!("reading Athena results: {} rows", raw.len()),
            );
        }
        let shaped = cur_sql::shape_off_thread(q, &sql.columns, raw).await?;
        let mut notes = vec![format!("Athena query {id} on {}", self.shape.table)];
        if reused {
            notes.push(format!(
                "Athena reused the result of the same query from the last {reuse_minutes} min: no data scanned, nothing billed (--cache-ttl-open-secs / --cache-ttl-closed-secs set how old it may be; 0 turns reuse off)"
            ));
        } else if let Some(b) = scanned {
            notes.push(format!(
                "Athena scanned {:.1} MB (Athena bills per TB scanned)",
                b as f64 / 1e6
            ));
        }
        if !with_principal {
            notes.push(format!("{} has no line_item_iam_principal column: lines without a principal cannot be told from untagged ones here, and spend per principal is not available (turn on \"Include caller identity (IAM principal) allocation data\" in the export)", self.shape.table));
        }
        notes.extend(cur_sql::shaped_notes(&shaped));
        Ok(SpendAnswer {
            rows: shaped.rows,
            currency: shaped.currency.unwrap_or_else(|| "USD".into()),
            estimated: q.period.may_be_restated(crate::domain::clock::today()),
            services_counted: vec![],
            paid_requests: 0,
            cached: false,
            as_of: crate::domain::clock::now(),
            source: "athena",
            notes,
            adjustments: shaped.adjustments,
            scanned_bytes: scanned,
            no_principal: Some(shaped.no_principal),
            newest_record: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_identifiers() {
        assert_eq!(literal("o'brien"), "'o''brien'");
        assert!(valid_identifier("cur_db") && valid_identifier("AwsDataCatalog"));
        assert!(!valid_identifier("db\"; drop") && !valid_identifier(""));
    }
}
