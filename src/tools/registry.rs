//! Agent Registry discovery: `search_registry` (every readable registry at
//! once, merged by relevance, or browsing with a cursor), `list_registries`
//! and `get_registry_record`. Hits are summarised for a person and an agent
//! (endpoint and tools of an MCP server, skills of an A2A agent), and where a
//! record names the IAM role it runs as, that role's Bedrock spend this
//! month is shown beside it (CUR source).

use std::collections::{BTreeMap, HashMap};

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::tool;
use schemars::JsonSchema;
use serde::Serialize;

use super::args::{BrowseCursor, record_ids, search_args, search_filters};
pub use super::args::{GetRecordInput, RecordTypeInput, SearchInput};
use super::{fmt_money, respond};
use crate::domain::group::{Granularity, GroupKey, Metric, SpendFilter, SpendQuery};
use crate::domain::period::PeriodInput;
use crate::error::ToolError;
use crate::sources::no_progress;
use crate::sources::registry::{RawRecord, RecordError, RegistryInfo};
use crate::usecases::context::Ctx;

/// A record summarised.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RecordOut {
    pub registry_id: String,
    pub registry: String,
    pub record_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// AGENT, MCP, SKILL, CUSTOM.
    pub record_type: String,
    pub version: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// MCP endpoint or agent URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// MCP tool names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// A2A skills.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skills: Vec<String>,
    /// How to connect, in one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect: Option<String>,
    /// IAM roles the record says it runs as.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Bedrock spend this month of those roles (CUR source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_spend_this_month: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_metadata: Option<serde_json::Value>,
    /// Parts of the descriptors that could not be read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// Output of `search_registry`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SearchOutput {
    /// search or browse.
    pub mode: String,
    pub query: String,
    pub registries_searched: Vec<String>,
    pub hits: Vec<RecordOut>,
    /// Registries skipped or failed, with the reason.
    pub registry_errors: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GetRecordOutput {
    pub records: Vec<RecordOut>,
    pub errors: Vec<RecordError>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RegistriesOutput {
    pub registries: Vec<RegistryInfo>,
    /// Ids that search_registry queries by default (READY, AWS_IAM).
    pub searchable: Vec<String>,
    pub notes: Vec<String>,
}

/// Every IAM role ARN mentioned in a JSON value.
fn role_arns(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => {
            for (i, _) in s.match_indices("arn:aws") {
                let cand: String = s[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || ":/_+=,.@-".contains(*c))
                    .collect();
                if cand.contains(":iam::") && cand.contains(":role/") && !out.contains(&cand) {
                    out.push(cand);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| role_arns(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| role_arns(x, out)),
        _ => {}
    }
}

fn parse_json(
    label: &str,
    raw: &Option<String>,
    problems: &mut Vec<String>,
) -> Option<serde_json::Value> {
    let raw = raw.as_ref()?;
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(v) => Some(v),
        Err(e) => {
            problems.push(format!("{label} is not valid JSON ({e}); shown without it"));
            None
        }
    }
}

fn str_at<'a>(v: &'a serde_json::Value, paths: &[&[&str]]) -> Option<&'a str> {
    paths.iter().find_map(|p| {
        let mut cur = v;
        for k in *p {
            cur = match k.parse::<usize>() {
                Ok(i) => cur.get(i)?,
                Err(_) => cur.get(*k)?,
            };
        }
        cur.as_str()
    })
}

/// Summarise a raw record for a person and an agent.
pub fn summarise(r: &RawRecord, registry: &RegistryInfo) -> RecordOut {
    let mut problems = Vec::new();
    let server = parse_json("mcpServer.data", &r.descriptors.mcp_server, &mut problems);
    let tools_doc = parse_json(
        "mcpServer tools data",
        &r.descriptors.mcp_tools,
        &mut problems,
    );
    let card = parse_json("a2aAgentCard.data", &r.descriptors.a2a_card, &mut problems);
    let skill = parse_json(
        "agentSkillsDefinition.data",
        &r.descriptors.skill_definition,
        &mut problems,
    );
    let custom = parse_json("custom.data", &r.descriptors.custom, &mut problems);
    let mut endpoint = None;
    let mut transport = None;
    if let Some(s) = &server {
        endpoint = str_at(
            s,
            &[
                &["remotes", "0", "url"],
                &["url"],
                &["endpoint"],
                &["endpoint", "url"],
            ],
        )
        .map(str::to_string);
        transport = str_at(
            s,
            &[
                &["remotes", "0", "type"],
                &["remotes", "0", "transport"],
                &["transport"],
                &["transport", "type"],
            ],
        )
        .map(str::to_string);
    }
    let mut tools = Vec::new();
    if let Some(t) = &tools_doc {
        let list = t.get("tools").unwrap_or(t);
        if let Some(a) = list.as_array() {
            tools = a
                .iter()
                .filter_map(|x| x.get("name").and_then(|n| n.as_str()).map(str::to_string))
                .collect();
        }
    }
    let mut skills = Vec::new();
    if let Some(c) = &card {
        endpoint = endpoint.or_else(|| {
            str_at(c, &[&["url"], &["supportedInterfaces", "0", "url"]]).map(str::to_string)
        });
        if let Some(a) = c.get("skills").and_then(|s| s.as_array()) {
            skills = a
                .iter()
                .filter_map(|x| {
                    x.get("name")
                        .or_else(|| x.get("id"))
                        .and_then(|n| n.as_str())
                        .map(str::to_string)
                })
                .collect();
        }
    }
    let mut description = r.description.clone();
    if description.is_none() {
        description = skill
            .as_ref()
            .and_then(|s| str_at(s, &[&["description"]]).map(str::to_string))
            .or_else(|| {
                r.descriptors.skill_md.as_ref().and_then(|m| {
                    m.lines()
                        .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
                        .map(|l| l.trim().to_string())
                })
            });
    }
    let mut roles = Vec::new();
    for v in [&server, &card, &skill, &custom].into_iter().flatten() {
        role_arns(v, &mut roles);
    }
    if let Some(m) = &r.custom_metadata {
        role_arns(m, &mut roles);
    }
    let connect = match (r.record_type.as_str(), &endpoint) {
        ("MCP", Some(e)) => Some(format!(
            "MCP server at {e} ({})",
            transport
                .clone()
                .unwrap_or_else(|| "streamable-http".into())
        )),
        ("AGENT", Some(e)) => Some(format!("A2A agent at {e}")),
        (_, Some(e)) => Some(e.clone()),
        _ => None,
    };
    RecordOut {
        registry_id: registry.id.clone(),
        registry: registry.name.clone(),
        record_id: r.record_id.clone(),
        name: r.name.clone(),
        display_name: r.display_name.clone(),
        record_type: r.record_type.clone(),
        version: r.version.clone(),
        status: r.status.clone(),
        description,
        endpoint,
        transport,
        tools,
        skills,
        connect,
        roles,
        role_spend_this_month: None,
        custom_metadata: r.custom_metadata.clone(),
        problems,
    }
}

impl Ctx {
    /// Search Agent Registry agents, MCP servers and skills (empty query: browse); hits say how to connect and their role's spend this month.
    #[tool(
        name = "search_registry",
        title = "Search the Agent Registry",
        output_schema = rmcp::handler::server::tool::schema_for_output::<SearchOutput>(),
        annotations(read_only_hint = true, idempotent_hint = true)
    )]
    pub async fn search_registry(
        &self,
        Parameters(input): Parameters<SearchInput>,
    ) -> CallToolResult {
        respond(
            self.registry_search(input)
                .await
                .map(|o| (render_search(&o), o)),
        )
    }

    /// Agent Registry registries you can see, with status and auth type.
    #[tool(
        name = "list_registries",
        title = "Agent Registry registries",
        output_schema = rmcp::handler::server::tool::schema_for_output::<RegistriesOutput>(),
        annotations(read_only_hint = true, idempotent_hint = true)
    )]
    pub async fn list_registries(&self) -> CallToolResult {
        respond(
            self.registries_list()
                .await
                .map(|o| (render_registries(&o), o)),
        )
    }

    /// Agent Registry records in full (descriptor summarised: endpoint, transport, tools, skills, roles); missing ids reported.
    #[tool(
        name = "get_registry_record",
        title = "Agent Registry record",
        output_schema = rmcp::handler::server::tool::schema_for_output::<GetRecordOutput>(),
        annotations(read_only_hint = true, idempotent_hint = true)
    )]
    pub async fn get_registry_record(
        &self,
        Parameters(input): Parameters<GetRecordInput>,
    ) -> CallToolResult {
        respond(
            self.registry_get(input)
                .await
                .map(|o| (render_records(&o.records, &o.errors), o)),
        )
    }
}

impl Ctx {
    /// Registries to query: the named ones, or every READY AWS_IAM one.
    async fn pick_registries(
        &self,
        wanted: Option<&[String]>,
        notes: &mut Vec<String>,
    ) -> Result<Vec<RegistryInfo>, ToolError> {
        let all = self.sources.registry.registries().await?;
        match wanted {
            Some(w) if !w.is_empty() => w
                .iter()
                .map(|id| {
                    all.iter()
                        .find(|r| &r.id == id || &r.name == id || &r.arn == id)
                        .cloned()
                        .ok_or_else(|| {
                            ToolError::invalid(format!(
                                "no registry '{id}'; known: {}",
                                all.iter()
                                    .map(|r| format!("{} ({})", r.name, r.id))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ))
                        })
                })
                .collect(),
            _ => {
                for r in all.iter().filter(|r| r.authorizer == "CUSTOM_JWT") {
                    notes.push(format!("skipped {} ({}): CUSTOM_JWT authorization, which AWS credentials cannot query", r.name, r.id));
                }
                let ready: Vec<RegistryInfo> = all
                    .into_iter()
                    .filter(|r| r.status == "READY" && r.authorizer != "CUSTOM_JWT")
                    .collect();
                if ready.is_empty() {
                    return Err(ToolError::invalid(
                        "no READY registry readable with AWS credentials; list_registries shows what exists",
                    ));
                }
                Ok(ready)
            }
        }
    }

    /// Fill in each hit's role spend this month from the CUR source.
    async fn add_role_spend(&self, hits: &mut [RecordOut], notes: &mut Vec<String>) {
        if hits.iter().all(|h| h.roles.is_empty()) {
            return;
        }
        let Some(cur) = &self.cur else {
            notes.push("per-role spend needs the CUR source (start with --cur PATH)".into());
            return;
        };
        let Ok(period) =
            PeriodInput::Word("this_month".into()).resolve(crate::domain::clock::today())
        else {
            return;
        };
        let mut q = SpendQuery {
            period,
            granularity: Granularity::Monthly,
            group_by: vec![GroupKey::Role],
            filter: SpendFilter::default(),
            metric: Metric::Unblended,
        };
        // A limited caller sees only the spend it may see: roles outside it show no figure.
        if let Err(e) = self.scope_query(&mut q, false) {
            notes.push(format!("role spend not shown: {e}"));
            return;
        }
        let scoped = self.visibility().is_some();
        if scoped {
            notes.push("role spend counts only the principals this caller may see".into());
        }
        match cur.spend(&q, no_progress()).await {
            Ok(ans) => {
                let mut by_name: HashMap<(String, String), f64> = HashMap::new();
                for r in ans.rows {
                    if let Some(Some(role)) = r.keys.first() {
                        *by_name.entry(account_and_name(role)).or_default() += r.amount;
                    }
                }
                for h in hits.iter_mut().filter(|h| !h.roles.is_empty()) {
                    let seen: Vec<f64> = h
                        .roles
                        .iter()
                        .filter_map(|arn| by_name.get(&account_and_name(arn)).copied())
                        .collect();
                    // Unscoped, a role without spend spent 0; scoped, it may be one we cannot see.
                    if seen.is_empty() && scoped {
                        continue;
                    }
                    let total: f64 = seen.iter().sum();
                    h.role_spend_this_month = Some((total * 100.0).round() / 100.0);
                }
            }
            Err(e) => notes.push(format!("could not add role spend: {e}")),
        }
    }
    /// The Agent Registry registries this account can see (`list_registries`).
    pub async fn registries_list(&self) -> Result<RegistriesOutput, ToolError> {
        let registries = self.sources.registry.registries().await?;
        let searchable = registries
            .iter()
            .filter(|r| r.status == "READY" && r.authorizer != "CUSTOM_JWT")
            .map(|r| r.id.clone())
            .collect();
        let mut notes = Vec::new();
        for r in registries.iter().filter(|r| r.authorizer == "CUSTOM_JWT") {
            notes.push(format!(
                "{} ({}) uses CUSTOM_JWT authorization: AWS credentials cannot query it",
                r.name, r.id
            ));
        }
        let out = RegistriesOutput {
            registries,
            searchable,
            notes,
        };
        Ok(out)
    }

    /// `search_registry`, shared with the CLI.
    pub async fn registry_search(&self, input: SearchInput) -> Result<SearchOutput, ToolError> {
        let mut notes = Vec::new();
        let registries = self
            .pick_registries(input.registries.as_deref(), &mut notes)
            .await?;
        let (per, query) = search_args(&input)?;
        let client = &self.sources.registry;
        let mut registry_errors = Vec::new();
        let (mode, mut hits, next_cursor) = if query.is_empty() {
            // Browse: one registry at a time, a page per call.
            let cursor: BrowseCursor = match &input.cursor {
                None => BrowseCursor { r: 0, t: None },
                Some(c) => BrowseCursor::decode(c)?,
            };
            let reg = registries.get(cursor.r).ok_or_else(|| {
                ToolError::invalid("cursor points past the last registry; start again without it")
            })?;
            let types: Vec<String> = input
                .record_types
                .iter()
                .flatten()
                .map(|t| t.api().to_string())
                .collect();
            let (records, token) = client
                .browse(&reg.id, &types, per.max(1) * 5, cursor.t.clone())
                .await?;
            let hits: Vec<RecordOut> = records.iter().map(|r| summarise(r, reg)).collect();
            let next = match token {
                Some(t) => Some(BrowseCursor {
                    r: cursor.r,
                    t: Some(t),
                }),
                None if cursor.r + 1 < registries.len() => Some(BrowseCursor {
                    r: cursor.r + 1,
                    t: None,
                }),
                None => None,
            };
            let next = next.map(|c| c.encode());
            ("browse", hits, next)
        } else {
            let filters = search_filters(&input);
            let searches = registries.iter().map(|reg| {
                let (client, filters, query) = (client.clone(), filters.clone(), query.clone());
                async move { (reg, client.search(&reg.id, &query, filters, per).await) }
            });
            let results = futures::future::join_all(searches).await;
            // Merge by relevance: each registry returns hits best first; interleave by rank.
            let mut lists: Vec<(&RegistryInfo, Vec<RawRecord>)> = Vec::new();
            for (reg, r) in results {
                match r {
                    Ok(list) => lists.push((reg, list)),
                    Err(e) => registry_errors.push(format!("{} ({}): {e}", reg.name, reg.id)),
                }
            }
            if lists.is_empty() && !registry_errors.is_empty() {
                return Err(ToolError::Upstream {
                    service: "Agent Registry".into(),
                    code: "AllRegistriesFailed".into(),
                    message: registry_errors.join("; "),
                    hint: String::new(),
                });
            }
            let mut merged = Vec::new();
            let depth = lists.iter().map(|(_, l)| l.len()).max().unwrap_or(0);
            for i in 0..depth {
                for (reg, list) in &lists {
                    if let Some(r) = list.get(i) {
                        merged.push(summarise(r, reg));
                    }
                }
            }
            merged.truncate(self.config.registry_max_results);
            // Keep search answers chat-sized: metadata is in get_registry_record.
            merged.iter_mut().for_each(|h| h.custom_metadata = None);
            ("search", merged, None)
        };
        if hits.is_empty() {
            notes.push(format!(
                "nothing found{} in {}; only APPROVED records are discoverable, and new approvals take a few minutes to index",
                if query.is_empty() { String::new() } else { format!(" for \"{query}\"") },
                registries.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
        self.add_role_spend(&mut hits, &mut notes).await;
        Ok(SearchOutput {
            mode: mode.into(),
            query,
            registries_searched: registries.iter().map(|r| r.id.clone()).collect(),
            hits,
            registry_errors,
            next_cursor,
            notes,
        })
    }

    /// `get_registry_record`, shared with the CLI.
    pub async fn registry_get(&self, input: GetRecordInput) -> Result<GetRecordOutput, ToolError> {
        let ids = record_ids(&input)?;
        let mut notes = Vec::new();
        let registries = self
            .pick_registries(
                input.registry.as_ref().map(std::slice::from_ref),
                &mut notes,
            )
            .await?;
        let client = &self.sources.registry;
        let mut found: BTreeMap<String, RecordOut> = BTreeMap::new();
        let mut errors: Vec<RecordError> = Vec::new();
        for reg in &registries {
            let missing: Vec<String> = ids
                .iter()
                .filter(|i| !found.contains_key(*i))
                .cloned()
                .collect();
            if missing.is_empty() {
                break;
            }
            match client.get(&reg.id, &missing).await {
                Ok((records, errs)) => {
                    for r in records {
                        found.insert(r.record_id.clone(), summarise(&r, reg));
                    }
                    errors.extend(errs);
                }
                Err(e) => errors.extend(missing.iter().map(|id| RecordError {
                    registry_id: reg.id.clone(),
                    record_id: id.clone(),
                    code: "REGISTRY_ERROR".into(),
                    message: e.to_string(),
                })),
            }
        }
        // An id found in one registry is not an error in another; one error per missing id.
        errors.retain(|e| !found.contains_key(&e.record_id));
        let mut merged: Vec<RecordError> = Vec::new();
        for e in errors {
            match merged.iter_mut().find(|m| m.record_id == e.record_id) {
                Some(m) if m.code == e.code => {
                    m.registry_id = format!("{},{}", m.registry_id, e.registry_id);
                }
                Some(_) => {}
                None => merged.push(e),
            }
        }
        let errors = merged;
        let mut records: Vec<RecordOut> = ids.iter().filter_map(|i| found.remove(i)).collect();
        self.add_role_spend(&mut records, &mut notes).await;
        Ok(GetRecordOutput { records, errors })
    }
}

/// (account, role name) of a role ARN; a record's ARN may carry a path, CUR's never does.
fn account_and_name(arn: &str) -> (String, String) {
    crate::domain::principal::Principal::parse(arn)
        .map(|p| (p.account.to_string(), p.name.to_string()))
        .unwrap_or_default()
}

fn line(h: &RecordOut) -> String {
    let mut s = format!(
        "- [{}] {} v{} ({}, {})",
        h.record_type,
        h.display_name.as_deref().unwrap_or(&h.name),
        h.version,
        h.registry,
        h.record_id
    );
    if let Some(d) = &h.description {
        s.push_str(&format!(": {d}"));
    }
    if let Some(c) = &h.connect {
        s.push_str(&format!("\n  connect: {c}"));
    }
    if !h.tools.is_empty() {
        s.push_str(&format!("\n  tools: {}", h.tools.join(", ")));
    }
    if !h.skills.is_empty() {
        s.push_str(&format!("\n  skills: {}", h.skills.join(", ")));
    }
    if !h.roles.is_empty() {
        s.push_str(&format!(
            "\n  runs as: {}{}",
            h.roles.join(", "),
            h.role_spend_this_month
                .map(|a| format!(" (Bedrock spend this month {})", fmt_money(a)))
                .unwrap_or_default()
        ));
    }
    for p in &h.problems {
        s.push_str(&format!("\n  warning: {p}"));
    }
    s.push('\n');
    s
}

pub(crate) fn render_search(o: &SearchOutput) -> String {
    let mut t = format!(
        "{} {} in {} registr{}: {} hit(s).\n",
        if o.mode == "search" {
            "Searched"
        } else {
            "Browsed"
        },
        if o.query.is_empty() {
            String::new()
        } else {
            format!("\"{}\"", o.query)
        },
        o.registries_searched.len(),
        if o.registries_searched.len() == 1 {
            "y"
        } else {
            "ies"
        },
        o.hits.len()
    );
    for h in &o.hits {
        t.push_str(&line(h));
    }
    for e in &o.registry_errors {
        t.push_str(&format!("Registry error: {e}\n"));
    }
    if let Some(c) = &o.next_cursor {
        t.push_str(&format!("More: pass cursor \"{c}\".\n"));
    }
    for n in &o.notes {
        t.push_str(&format!("Note: {n}\n"));
    }
    t
}

pub(crate) fn render_records(records: &[RecordOut], errors: &[RecordError]) -> String {
    let mut t = String::new();
    for r in records {
        t.push_str(&line(r));
    }
    for e in errors {
        t.push_str(&format!("- {}: {} ({})\n", e.record_id, e.code, e.message));
    }
    t
}

/// The text of a `list_registries` answer.
pub fn render_registries(o: &RegistriesOutput) -> String {
    let mut t = String::new();
    for r in &o.registries {
        t.push_str(&format!(
            "- {} ({}): {} {}{}\n",
            r.name,
            r.id,
            r.status,
            r.authorizer,
            r.description
                .as_deref()
                .map(|d| format!(" - {d}"))
                .unwrap_or_default()
        ));
    }
    t
}

/// `search_registry` in the tool table ([`super::TOOLS`]).
pub const SEARCH_REGISTRY: super::ToolUnit = super::ToolUnit {
    name: "search_registry",
    account: true,
    uses: super::Uses::Registry,
    input: super::input::<super::args::SearchInput>(),
    run: |app, args, _| {
        Box::pin(async move {
            let o = app.registry_search(super::arguments(args)?).await?;
            super::answer(render_search(&o), o)
        })
    },
    route: || {
        ToolRouter::new().with_route((Ctx::search_registry_tool_attr(), Ctx::search_registry))
    },
};

/// `list_registries` in the tool table ([`super::TOOLS`]).
pub const LIST_REGISTRIES: super::ToolUnit = super::ToolUnit {
    name: "list_registries",
    account: true,
    uses: super::Uses::Registry,
    input: None,
    run: |app, _, _| {
        Box::pin(async move {
            let o = app.registries_list().await?;
            super::answer(render_registries(&o), o)
        })
    },
    route: || {
        ToolRouter::new().with_route((Ctx::list_registries_tool_attr(), Ctx::list_registries))
    },
};

/// `get_registry_record` in the tool table ([`super::TOOLS`]).
pub const GET_REGISTRY_RECORD: super::ToolUnit = super::ToolUnit {
    name: "get_registry_record",
    account: true,
    uses: super::Uses::Registry,
    input: super::input::<super::args::GetRecordInput>(),
    run: |app, args, _| {
        Box::pin(async move {
            let o = app.registry_get(super::arguments(args)?).await?;
            super::answer(render_records(&o.records, &o.errors), o)
        })
    },
    route: || {
        ToolRouter::new().with_route((
            Ctx::get_registry_record_tool_attr(),
            Ctx::get_registry_record,
        ))
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::registry::RawDescriptors;

    fn reg() -> RegistryInfo {
        RegistryInfo {
            id: "r1".into(),
            arn: "arn".into(),
            name: "tools".into(),
            description: None,
            status: "READY".into(),
            authorizer: "AWS_IAM".into(),
        }
    }

    #[test]
    fn summarises_mcp_a2a_and_malformed_descriptors() {
        let mut rec = RawRecord {
            registry_arn: "a".into(),
            record_id: "rec".into(),
            record_arn: "b".into(),
            name: "weather".into(),
            display_name: None,
            description: Some("forecasts".into()),
            record_type: "MCP".into(),
            version: "1".into(),
            status: "APPROVED".into(),
            updated_at: "t".into(),
            descriptors: RawDescriptors {
                mcp_server: Some(r#"{"name":"w","remotes":[{"type":"streamable-http","url":"https://w.example/mcp"}]}"#.into()),
                mcp_tools: Some(r#"{"tools":[{"name":"get_forecast"},{"name":"get_alerts"}]}"#.into()),
                ..Default::default()
            },
            custom_metadata: Some(serde_json::json!({"iamRoleArn": "arn:aws:iam::123456789012:role/agents/InvoiceAgentRole"})),
        };
        let s = summarise(&rec, &reg());
        assert_eq!(s.endpoint.as_deref(), Some("https://w.example/mcp"));
        assert_eq!(s.tools, vec!["get_forecast", "get_alerts"]);
        assert_eq!(
            s.roles,
            vec!["arn:aws:iam::123456789012:role/agents/InvoiceAgentRole"]
        );
        assert!(s.connect.unwrap().contains("streamable-http"));
        rec.descriptors.mcp_server = Some("{\"name\": ".into());
        let bad = summarise(&rec, &reg());
        assert_eq!(bad.problems.len(), 1);
        assert_eq!(bad.tools.len(), 2, "what is readable is still shown");
    }

    #[test]
    fn filters_combine() {
        let f = search_filters(&SearchInput {
            record_types: Some(vec![RecordTypeInput::Mcp, RecordTypeInput::Agent]),
            name: Some("x".into()),
            ..Default::default()
        });
        assert_eq!(
            f.unwrap(),
            serde_json::json!({"$and": [{"recordType": {"$in": ["MCP", "AGENT"]}}, {"name": {"$eq": "x"}}]})
        );
        assert_eq!(search_filters(&SearchInput::default()), None);
    }
}
