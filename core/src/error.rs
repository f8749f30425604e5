//! One place that turns failures into answers a model can act on.
//!
//! Every variant's text names the fix: the IAM action to grant, the date form
//! to use, when to retry. Tools return these as `isError` results, never as
//! protocol errors.

use std::fmt::Write as _;

/// A failure of a tool call, worded for the caller.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ToolError {
    /// The input was wrong; the text says what is accepted.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The authenticated HTTP caller may not see or do this.
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// AWS refused the call for lack of permission.
    #[error(
        "access denied: AWS refused the call. Grant the caller's IAM identity {action} (see the README's permissions table). AWS said: {message}"
    )]
    AccessDenied { action: String, message: String },
    /// AWS throttled the call.
    #[error(
        "throttled: {service} answered {code} ({message}). Wait about a minute and ask again; cached answers are still served."
    )]
    Throttled {
        service: String,
        code: String,
        message: String,
    },
    /// Our own hourly cap on paid Cost Explorer requests.
    #[error(
        "paid request cap reached: {used} Cost Explorer requests in the last hour (cap {cap}, $0.01 each). The next slot frees in about {retry_after_secs} s; cached answers are still served. Raise the cap with --ce-max-requests-per-hour or BEDROCK_COST_MCP_CE_MAX_REQUESTS_PER_HOUR."
    )]
    RequestCap {
        used: usize,
        cap: usize,
        retry_after_secs: u64,
    },
    /// One authenticated caller's share of the paid requests is used up.
    #[error(
        "paid request cap reached for caller '{caller}': {used} Cost Explorer requests in the last hour (per-caller cap {cap}, $0.01 each). The next slot frees in about {retry_after_secs} s; cached answers are still served. The server's operator sets it with --ce-max-requests-per-caller-per-hour."
    )]
    CallerRequestCap {
        caller: String,
        used: usize,
        cap: usize,
        retry_after_secs: u64,
    },
    /// No usable AWS credentials or region.
    #[error(
        "no AWS credentials: {0}. Configure the standard AWS chain (AWS_PROFILE, `aws sso login`, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) or start the server with --demo to use bundled sample data."
    )]
    NoCredentials(String),
    /// AWS (or the engine) answered with an error we pass on.
    #[error("{service} error {code}: {message}{hint}")]
    Upstream {
        service: String,
        code: String,
        message: String,
        hint: String,
    },
    /// The answer from AWS did not have the expected shape.
    #[error(
        "malformed answer from {service}: {message}. This is not your input's fault; retry, and report it if it persists."
    )]
    Malformed { service: String, message: String },
    /// The configured source cannot answer this question.
    #[error("{0}")]
    Unsupported(String),
    /// Something on this side failed (drawing a chart, writing the demo export, shaping an
    /// answer): not the input's fault (the CLI exits 1, not 2).
    #[error("{0}")]
    Internal(String),
    /// The call was cancelled by the client.
    #[error("cancelled by the client")]
    Cancelled,
    /// Could not reach the endpoint.
    #[error(
        "cannot reach {service}: {message}. Check network access and AWS_ENDPOINT_URL / region settings."
    )]
    Unreachable { service: String, message: String },
}

impl ToolError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        ToolError::InvalidInput(msg.into())
    }
}

/// Classify an AWS SDK error for `action` (e.g. `ce:GetCostAndUsage`) of `service`.
pub fn from_sdk<E, R>(
    service: &str,
    action: &str,
    err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> ToolError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    match err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            match e.code() {
                Some(code) => {
                    let message = e.message().unwrap_or("").to_string();
                    classify_code(service, action, code, &message)
                }
                // No error code: the body could not be read as an AWS answer (a proxy's HTML
                // page, truncated or malformed JSON).
                None => ToolError::Malformed {
                    service: service.into(),
                    message: format!(
                        "{action} answered something that is not an AWS response ({})",
                        chain_text(err)
                    ),
                },
            }
        }
        SdkError::DispatchFailure(df) => {
            let text = chain_text(err);
            if df.is_user() || text.to_ascii_lowercase().contains("credential") {
                ToolError::NoCredentials(text)
            } else {
                ToolError::Unreachable {
                    service: service.into(),
                    message: text,
                }
            }
        }
        SdkError::TimeoutError(_) => ToolError::Unreachable {
            service: service.into(),
            message: "the request timed out".into(),
        },
        SdkError::ResponseError(_) => ToolError::Malformed {
            service: service.into(),
            message: chain_text(err),
        },
        SdkError::ConstructionFailure(_) => {
            let text = chain_text(err);
            if text.to_ascii_lowercase().contains("credential")
                || text.to_ascii_lowercase().contains("region")
            {
                ToolError::NoCredentials(text)
            } else {
                ToolError::Upstream {
                    service: service.into(),
                    code: "RequestConstruction".into(),
                    message: text,
                    hint: String::new(),
                }
            }
        }
        _ => ToolError::Upstream {
            service: service.into(),
            code: "Unknown".into(),
            message: chain_text(err),
            hint: String::new(),
        },
    }
}

/// Map an AWS error code to a tool error.
pub fn classify_code(service: &str, action: &str, code: &str, message: &str) -> ToolError {
    match code {
        "AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation" | "UnrecognizedClientException"
        | "AccessDeniedError" => ToolError::AccessDenied { action: action.into(), message: message.into() },
        "ExpiredTokenException" | "ExpiredToken" | "InvalidClientTokenId" | "InvalidSignatureException" => {
            ToolError::NoCredentials(format!("{code}: {message}"))
        }
        "LimitExceededException" | "ThrottlingException" | "Throttling" | "TooManyRequestsException"
        | "RequestLimitExceeded" => ToolError::Throttled { service: service.into(), code: code.into(), message: message.into() },
        "DataUnavailableException" => ToolError::Upstream {
            service: service.into(),
            code: code.into(),
            message: message.into(),
            hint: ". Cost Explorer has no data for that period or grouping yet (billing data lags 24-48 h; product attributes exist only from 2026-09-01)".into(),
        },
        "BillExpirationException" => ToolError::Upstream {
            service: service.into(),
            code: code.into(),
            message: message.into(),
            hint: ". Cost Explorer keeps 13 months of history plus the current month; ask for a later period or use the CUR source".into(),
        },
        "RequestChangedException" => ToolError::Upstream {
            service: service.into(),
            code: code.into(),
            message: message.into(),
            hint: ". The data changed while paging; ask again".into(),
        },
        _ => ToolError::Upstream { service: service.into(), code: code.into(), message: message.into(), hint: String::new() },
    }
}

/// The error and all its sources on one line.
pub fn chain_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let _ = write!(s, ": {e}");
        cur = e.source();
    }
    s
}
