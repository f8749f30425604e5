//! MCP prompts: ready-made questions that tell the model which tools to call,
//! with which arguments, and what to report. Pure: the server lists and fills
//! them ([`list`], [`get`]); the texts name the exact tool arguments, so a
//! model that follows them asks the same questions the README documents.

use rmcp::model::{GetPromptResult, JsonObject, Prompt, PromptArgument, PromptMessage, Role};
use serde_json::{Value, json};

pub const WHO_IS_SPENDING: &str = "who_is_spending";
pub const TAG_HYGIENE_REPORT: &str = "tag_hygiene_report";
pub const BEFORE_I_RUN_THIS_JOB: &str = "before_i_run_this_job";

fn arg(name: &str, description: &str, required: bool) -> PromptArgument {
    PromptArgument::new(name)
        .with_description(description)
        .with_required(required)
}

/// The prompts, sorted by name.
pub fn list() -> Vec<Prompt> {
    vec![
        Prompt::new(
            BEFORE_I_RUN_THIS_JOB,
            Some("Budget check before a Bedrock job: price it, then allow / warn / deny."),
            Some(vec![
                arg("model", "Model id or name, e.g. Claude Sonnet 4.6.", false),
                arg("input_tokens", "Input tokens per call.", false),
                arg("output_tokens", "Output tokens per call.", false),
                arg("calls", "Number of calls (default 1).", false),
                arg("cost_usd", "Planned cost in USD, instead of model and tokens.", false),
                arg(
                    "who",
                    "Principal ARN, role, or tag:<key>=<value> (default: the caller).",
                    false,
                ),
            ]),
        )
        .with_title("Before I run this job"),
        Prompt::new(
            TAG_HYGIENE_REPORT,
            Some(
                "Which principals escape attribution: tag keys, untagged principals with fixes, orphaned spend, prevention policy.",
            ),
            Some(vec![
                arg(
                    "required_keys",
                    "Tag keys every principal needs, comma-separated (default: configured, else the active cost-allocation keys).",
                    false,
                ),
                arg(
                    "period",
                    "Spend period for ranking (default last_30_days).",
                    false,
                ),
            ]),
        )
        .with_title("Tag hygiene report"),
        Prompt::new(
            WHO_IS_SPENDING,
            Some("Bedrock spend this month by team, the top principals, and the untagged share."),
            Some(vec![
                arg(
                    "period",
                    "this_month (default), last_month, last_7_days, last_30_days.",
                    false,
                ),
                arg("tag_key", "Principal tag key that names teams (default: the configured one).", false),
                arg("top_n", "How many principals to list (default 10).", false),
            ]),
        )
        .with_title("Who is spending"),
    ]
}

/// A prompt filled with its arguments; `Err` names what is wrong with them.
pub fn get(
    name: &str,
    args: Option<&JsonObject>,
    default_tag_key: &str,
    required_keys: &[String],
) -> Result<GetPromptResult, String> {
    let args = Args(args);
    let (description, text) = match name {
        WHO_IS_SPENDING => who_is_spending(&args, default_tag_key)?,
        TAG_HYGIENE_REPORT => tag_hygiene(&args, default_tag_key, required_keys)?,
        BEFORE_I_RUN_THIS_JOB => before_job(&args)?,
        _ => {
            return Err(format!(
                "unknown prompt '{name}'; use {WHO_IS_SPENDING}, {TAG_HYGIENE_REPORT} or {BEFORE_I_RUN_THIS_JOB}"
            ));
        }
    };
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
            .with_description(description),
    )
}

/// Prompt arguments: strings by the spec; numbers sent as numbers are accepted too.
struct Args<'a>(Option<&'a JsonObject>);

impl Args<'_> {
    fn text(&self, key: &str) -> Option<String> {
        match self.0?.get(key)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    fn count(&self, key: &str) -> Result<Option<u64>, String> {
        self.text(key)
            .map(|s| {
                s.replace(['_', ','], "")
                    .parse::<u64>()
                    .map_err(|_| format!("{key} must be a whole number, got '{s}'"))
            })
            .transpose()
    }
}

/// A period argument as tool JSON: a word, or a {"start","end"} object.
fn period(args: &Args, default: &str) -> Result<Value, String> {
    match args.text("period") {
        None => Ok(json!(default)),
        Some(p) if p.starts_with('{') => serde_json::from_str::<Value>(&p)
            .ok()
            .filter(|v| v.get("start").is_some() && v.get("end").is_some())
            .ok_or_else(|| {
                format!("period '{p}' must be a word such as last_month or {{\"start\":\"YYYY-MM-DD\",\"end\":\"YYYY-MM-DD\"}}")
            }),
        Some(p) if p.chars().all(|c| c.is_ascii_lowercase() || c == '_') => Ok(json!(p)),
        Some(p) => Err(format!(
            "period '{p}' must be this_month, last_month, last_7_days, last_30_days or {{\"start\":\"YYYY-MM-DD\",\"end\":\"YYYY-MM-DD\"}}"
        )),
    }
}

fn tag_key(raw: &str) -> Result<String, String> {
    crate::domain::group::tag_key(raw)
        .map(str::to_string)
        .ok_or_else(|| format!("'{raw}' is not a valid tag key"))
}

fn call(tool: &str, args: Value) -> String {
    format!("{tool} {args}")
}

fn who_is_spending(args: &Args, default_tag_key: &str) -> Result<(String, String), String> {
    let period = period(args, "this_month")?;
    let key = tag_key(&args.text("tag_key").unwrap_or(default_tag_key.into()))?;
    let top = args.count("top_n")?.unwrap_or(10).clamp(1, 100);
    let label = period
        .as_str()
        .map(str::to_string)
        .unwrap_or(period.to_string());
    let text = format!(
        "Who is spending what on Amazon Bedrock ({label})? Use the bedrock-cost-mcp tools in this order.\n\
1. {by_team}: spend per {key}. The \"untagged\" row is spend by principals without the iamPrincipal/{key} tag; the untagged share is reconciliation.untagged / total. Add \"chart\": true if you can show images.\n\
2. {by_principal}: the top {top} principals (users, and roles with their sessions). If the source cannot group by principal, say so and go on.\n\
3. If the untagged share is above zero: {untagged}: the principals behind the untagged spend, each with its fix command.\n\
Then answer with: the total and currency; a table of each {key} with amount and share, the untagged row included; the top {top} principals with amounts; the untagged share as a percentage; and how fresh the figures are (as_of, estimated; billing lags 24-48 h).",
        by_team = call(
            "bedrock_spend",
            json!({"period": period, "group_by": [format!("tag:{key}")]})
        ),
        by_principal = call(
            "bedrock_spend",
            json!({"period": period, "group_by": ["principal"], "top_n": top})
        ),
        untagged = call(
            "untagged_principals",
            json!({"period": period, "required_keys": [key]})
        ),
    );
    Ok((
        format!("Bedrock spend {label} by {key}, top principals and untagged share"),
        text,
    ))
}

fn tag_hygiene(
    args: &Args,
    default_tag_key: &str,
    configured: &[String],
) -> Result<(String, String), String> {
    let period = period(args, "last_30_days")?;
    let keys: Vec<String> = match args.text("required_keys") {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(tag_key)
            .collect::<Result<_, _>>()?,
        None => vec![],
    };
    let keys_arg = |v: &mut Value| {
        if !keys.is_empty() {
            v["required_keys"] = json!(keys);
        }
    };
    let mut tags = json!({});
    keys_arg(&mut tags);
    let mut untagged = json!({"period": period, "include_no_spend": true});
    keys_arg(&mut untagged);
    let first = keys
        .first()
        .or(configured.first())
        .cloned()
        .unwrap_or_else(|| default_tag_key.to_string());
    let which = if !keys.is_empty() {
        keys.join(", ")
    } else if !configured.is_empty() {
        format!("{} (configured)", configured.join(", "))
    } else {
        "the active iamPrincipal/* cost-allocation keys".into()
    };
    let text = format!(
        "Write a tag hygiene report for Bedrock spend attribution. Required keys: {which}.\n\
1. {tags}: which iamPrincipal/* keys exist and are active; required keys that are missing or inactive, and how to activate them.\n\
2. {untagged}: IAM users and roles missing required keys, ranked by Bedrock spend, with fix commands; spend by principals IAM no longer lists; the prevention policy.\n\
3. {spend}: the untagged row is the spend not attributed by iamPrincipal/{first}.\n\
Report: each key as active, inactive or missing; the unattributed spend and its share of the total; the principals to fix first (largest spend first), each with its fix command; spend by principals not in IAM; and the prevention policy as JSON to attach as an IAM policy or SCP. Do not run the fix commands or write tools yourself: list them for a person to apply.",
        tags = call("cost_allocation_tags", tags),
        untagged = call("untagged_principals", untagged),
        spend = call(
            "bedrock_spend",
            json!({"period": period, "group_by": [format!("tag:{first}")]})
        ),
    );
    Ok((
        "Tag keys, untagged principals with fixes, orphaned spend and a prevention policy".into(),
        text,
    ))
}

fn before_job(args: &Args) -> Result<(String, String), String> {
    let who = args.text("who");
    let with_who = |mut v: Value| {
        if let Some(w) = &who {
            v["who"] = json!(w);
        }
        v
    };
    let decide = "Then decide: on deny, do not run the job; say which budget applies and by how much the job would exceed it. On warn, tell the user the share of the budget used after the job and ask before running it. On allow, go ahead and say how much budget remains.";
    if let Some(cost) = args.text("cost_usd") {
        let usd: f64 = cost
            .parse()
            .ok()
            .filter(|c: &f64| c.is_finite() && *c >= 0.0)
            .ok_or_else(|| format!("cost_usd must be a non-negative number, got '{cost}'"))?;
        let check = call(
            "check_budget",
            with_who(json!({"cost_usd": usd, "record": false})),
        );
        let text = format!(
            "Before running this job (planned cost {usd} USD), check that it fits the budget.\n\
1. {check}: allow, warn or deny, with the budget that applied, spend so far, unbilled estimates of recent checks and the month-end forecast. It is a what-if (record false): when you do run the job, check once more without record false, so the job's cost counts as unbilled spend until it is billed.\n\
{decide}"
        );
        return Ok((format!("Budget check for a {usd} USD job"), text));
    }
    let model = args.text("model").ok_or(
        "give model (with input_tokens and output_tokens per call) or cost_usd".to_string(),
    )?;
    let calls = args.count("calls")?.unwrap_or(1).max(1);
    let input = args.count("input_tokens")?.unwrap_or(0);
    let output = args.count("output_tokens")?.unwrap_or(0);
    if input == 0 && output == 0 {
        return Err("give input_tokens and/or output_tokens per call (or cost_usd)".into());
    }
    let (total_in, total_out) = (input.saturating_mul(calls), output.saturating_mul(calls));
    let planned = json!({"model": model, "input_tokens": total_in, "output_tokens": total_out});
    let what_if = {
        let mut p = planned.clone();
        p["record"] = json!(false);
        p
    };
    let text = format!(
        "Before running this job, check that it fits the budget. The job: {calls} call(s) of {model}, {input} input and {output} output tokens each ({total_in} input and {total_out} output tokens in all).\n\
1. {estimate}: the job's price per token kind, and where the prices come from.\n\
2. {check}: allow, warn or deny, with the budget that applied, spend so far, unbilled estimates of recent checks and the month-end forecast. It is a what-if (record false): when you do run the job, check once more without record false, so the job's cost counts as unbilled spend until it is billed.\n\
{decide}",
        estimate = call("estimate_cost", planned.clone()),
        check = call("check_budget", with_who(what_if)),
    );
    Ok((format!("Budget check for {calls} call(s) of {model}"), text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(r: &GetPromptResult) -> String {
        r.messages[0]
            .content
            .as_text()
            .map(|t| t.text.clone())
            .unwrap()
    }

    #[test]
    fn prompts_fill_tool_arguments() {
        let args = json!({"period": "last_month", "tag_key": "cost-center", "top_n": "5"});
        let r = get(WHO_IS_SPENDING, args.as_object(), "team", &[]).unwrap();
        let t = text(&r);
        assert!(
            t.contains(r#"bedrock_spend {"group_by":["tag:cost-center"],"period":"last_month"}"#),
            "{t}"
        );
        assert!(t.contains(r#"{"group_by":["principal"],"period":"last_month","top_n":5}"#));
        let job = json!({"model": "Claude Sonnet 4.6", "input_tokens": 2000, "output_tokens": "500", "calls": "10"});
        let t = text(&get(BEFORE_I_RUN_THIS_JOB, job.as_object(), "team", &[]).unwrap());
        assert!(
            t.contains(r#"check_budget {"input_tokens":20000,"model":"Claude Sonnet 4.6","output_tokens":5000,"record":false}"#),
            "{t}"
        );
    }

    #[test]
    fn bad_arguments_are_named() {
        let e = get(BEFORE_I_RUN_THIS_JOB, None, "team", &[]).unwrap_err();
        assert!(e.contains("cost_usd"), "{e}");
        let bad = json!({"calls": "many", "model": "m", "input_tokens": "1"});
        assert!(
            get(BEFORE_I_RUN_THIS_JOB, bad.as_object(), "team", &[])
                .unwrap_err()
                .contains("calls")
        );
        let p = json!({"period": "since; DROP"});
        assert!(get(WHO_IS_SPENDING, p.as_object(), "team", &[]).is_err());
        assert!(get("nope", None, "team", &[]).is_err());
    }
}
