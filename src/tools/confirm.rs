//! Asking the user before a change. Three ways, chosen by what the client can do:
//!
//! - **Elicitation as a server request** (protocol versions before 2026-07-28, the client
//!   declares form elicitation): `elicitation/create`, one question at a time.
//! - **Multi round-trip** (2026-07-28 and later, SEP-2322, which forbids server requests): the
//!   call answers `input_required` with every question at once; the client asks its user and
//!   retries the same call with the answers and the `requestState` it was given. The state is
//!   sealed (HMAC, rmcp's `RequestStateCodec`) over the caller, the tool and the exact
//!   questions, expires after [`STATE_TTL`], and is accepted once: answers given for other
//!   changes, by another caller, or replayed, change nothing.
//! - **`confirm: true`** in the arguments, only for clients with neither. A client that can ask
//!   its user is always asked, whatever the arguments say: the model sets arguments, the user
//!   answers questions.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rmcp::RoleServer;
use rmcp::model::{
    ElicitRequest, ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationSchema,
    InputRequest, InputRequiredResult, InputResponses, RequestStateCodec, SealOptions,
};
use rmcp::service::RequestContext;

use crate::error::ToolError;

/// How long the user has to answer a multi round-trip question.
pub const STATE_TTL: Duration = Duration::from_secs(10 * 60);

/// The user's answer to a change a write tool is about to make.
#[derive(Debug, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
pub struct Confirm {
    /// true: make these changes.
    pub confirm: bool,
}
rmcp::elicit_safe!(Confirm);

/// What asking gave.
#[derive(Debug)]
pub enum Asked {
    /// Per question, in order: the user accepted it (or `confirm: true` from a client that
    /// cannot ask).
    Answers(Vec<bool>),
    /// No way to ask and no `confirm: true`: change nothing, show the plan.
    Unavailable,
    /// 2026-07-28 and later: answer the call with these questions; the client retries with
    /// the answers.
    Ask(InputRequiredResult),
}

impl Asked {
    /// The one question's answer: Some(true) accepted, Some(false) declined, None no way to ask.
    pub fn single(&self) -> Option<bool> {
        match self {
            Asked::Answers(a) => Some(a.first().copied().unwrap_or(false)),
            _ => None,
        }
    }
}

/// Who can be asked, and how, for one tool call.
pub struct Asker {
    how: How,
    /// Binds a multi round-trip state to this caller and tool.
    caller: String,
    tool: String,
}

enum How {
    /// No client (the CLI): only `confirm: true`.
    Nobody,
    /// A client before 2026-07-28: server requests, when it declared form elicitation.
    Request {
        peer: rmcp::Peer<RoleServer>,
        can_elicit: bool,
    },
    /// A client on 2026-07-28 or later: input_required results.
    RoundTrip {
        can_elicit: bool,
        responses: Option<InputResponses>,
        state: Option<String>,
    },
}

impl Asker {
    /// Nobody to ask (the command line).
    pub fn nobody(tool: &str) -> Asker {
        Asker {
            how: How::Nobody,
            caller: String::new(),
            tool: tool.to_string(),
        }
    }

    /// The asker of one MCP tool call, with the answers and state of a retried call.
    pub fn for_call(
        ctx: &RequestContext<RoleServer>,
        tool: &str,
        responses: Option<InputResponses>,
        state: Option<String>,
    ) -> Asker {
        let caps = ctx.client_capabilities();
        let can_elicit = caps
            .as_ref()
            .and_then(|c| c.elicitation.as_ref())
            // An empty `elicitation: {}` means form (the spec's backward compatibility).
            .is_some_and(|e| e.form.is_some() || e.url.is_none());
        let round_trip = ctx
            .protocol_version()
            .is_some_and(|v| v >= rmcp::model::ProtocolVersion::V_2026_07_28);
        let caller = crate::domain::visibility::current()
            .map_or_else(|| "stdio".to_string(), |c| c.name.clone());
        Asker {
            how: if round_trip {
                How::RoundTrip {
                    can_elicit,
                    responses,
                    state,
                }
            } else {
                How::Request {
                    peer: ctx.peer.clone(),
                    can_elicit,
                }
            },
            caller,
            tool: tool.to_string(),
        }
    }

    /// Can this client ask its user (so `confirm: true` is not taken)?
    pub fn can_ask(&self) -> bool {
        match &self.how {
            How::Nobody => false,
            How::Request { can_elicit, .. } | How::RoundTrip { can_elicit, .. } => *can_elicit,
        }
    }

    /// Ask `questions` (each: a key and the text that shows exactly what will change).
    /// `confirmed` is the call's `confirm: true`, taken only when the client cannot ask.
    pub async fn ask(
        &self,
        confirmed: bool,
        questions: &[(String, String)],
    ) -> Result<Asked, ToolError> {
        if !self.can_ask() {
            return Ok(if confirmed {
                Asked::Answers(vec![true; questions.len()])
            } else {
                Asked::Unavailable
            });
        }
        match &self.how {
            How::Nobody => Ok(Asked::Unavailable),
            How::Request { peer, .. } => {
                let mut answers = Vec::with_capacity(questions.len());
                for (_, q) in questions {
                    // A client that said it can ask and then fails to is taken as a no: the
                    // change is made only on a yes.
                    answers.push(matches!(
                        peer.elicit::<Confirm>(q.clone()).await,
                        Ok(Some(Confirm { confirm: true }))
                    ));
                }
                Ok(Asked::Answers(answers))
            }
            How::RoundTrip {
                responses, state, ..
            } => {
                let binding = self.binding(questions);
                match (responses, state) {
                    (None, None) => Ok(Asked::Ask(self.questions(questions, &binding)?)),
                    (Some(responses), Some(state)) => {
                        open_state(state, &binding)?;
                        Ok(Asked::Answers(
                            questions
                                .iter()
                                .map(|(k, _)| responses.get(k).is_some_and(accepted))
                                .collect(),
                        ))
                    }
                    _ => Err(ToolError::invalid(
                        "a retried call needs both inputResponses and the requestState it was given; nothing was changed",
                    )),
                }
            }
        }
    }

    /// What the state is bound to: the caller, the tool, and every question's key and text.
    fn binding(&self, questions: &[(String, String)]) -> Vec<u8> {
        let q: Vec<(&str, &str)> = questions
            .iter()
            .map(|(k, q)| (k.as_str(), q.as_str()))
            .collect();
        serde_json::to_vec(&(&self.caller, &self.tool, q)).unwrap_or_default()
    }

    fn questions(
        &self,
        questions: &[(String, String)],
        binding: &[u8],
    ) -> Result<InputRequiredResult, ToolError> {
        let schema = ElicitationSchema::from_type::<Confirm>()
            .map_err(|e| ToolError::Unsupported(format!("the confirmation form: {e}")))?;
        let requests: BTreeMap<String, InputRequest> = questions
            .iter()
            .map(|(k, q)| {
                (
                    k.clone(),
                    InputRequest::Elicitation(ElicitRequest::new(
                        ElicitRequestParams::FormElicitationParams {
                            meta: None,
                            message: q.clone(),
                            requested_schema: schema.clone(),
                        },
                    )),
                )
            })
            .collect();
        let nonce = random_hex(16);
        let sealed = codec().seal_with(
            nonce.as_bytes(),
            &SealOptions::new().associated_data(binding).ttl(STATE_TTL),
        );
        Ok(InputRequiredResult::new(Some(requests), Some(sealed)))
    }
}

/// An answer is a yes only when accepted with `confirm: true`.
fn accepted(v: &serde_json::Value) -> bool {
    serde_json::from_value::<ElicitResult>(v.clone()).is_ok_and(|r| {
        r.action == ElicitationAction::Accept
            && r.content
                .and_then(|c| serde_json::from_value::<Confirm>(c).ok())
                .is_some_and(|c| c.confirm)
    })
}

/// Check a returned state: sealed by this process, for these questions and this caller, not
/// expired, and not used before.
fn open_state(state: &str, binding: &[u8]) -> Result<(), ToolError> {
    let nonce = codec().open_with(state, binding).map_err(|e| {
        ToolError::invalid(format!(
            "the answers do not match this call ({e}): they were given for other changes or another caller, have expired ({} min), or come from before a server restart. Nothing was changed; call again to be asked",
            STATE_TTL.as_secs() / 60
        ))
    })?;
    let nonce = String::from_utf8_lossy(&nonce).to_string();
    let mut used = used().lock().expect("used states lock");
    used.retain(|_, at| at.elapsed() < STATE_TTL);
    if used.insert(nonce, Instant::now()).is_some() {
        return Err(ToolError::invalid(
            "these answers were already used once; nothing was changed. Call again to be asked",
        ));
    }
    Ok(())
}

/// The process's key for sealing states: random at start, so a restart voids open questions.
fn codec() -> &'static RequestStateCodec {
    static CODEC: OnceLock<RequestStateCodec> = OnceLock::new();
    CODEC.get_or_init(|| {
        let mut key = [0u8; 32];
        aws_lc_rs::rand::fill(&mut key).expect("the system's random source");
        RequestStateCodec::try_new(key.to_vec()).expect("a 32-byte key")
    })
}

/// States already answered (nonce -> when), kept for [`STATE_TTL`].
fn used() -> &'static Mutex<HashMap<String, Instant>> {
    static USED: OnceLock<Mutex<HashMap<String, Instant>>> = OnceLock::new();
    USED.get_or_init(Mutex::default)
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut b).expect("the system's random source");
    b.iter().map(|x| format!("{x:02x}")).collect()
}
