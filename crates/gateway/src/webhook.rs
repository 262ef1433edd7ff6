//! A hook that is an HTTP service, in any language: each call (and, if asked, its whole
//! answer) is POSTed to it as JSON, and its answer allows, blocks or modifies. The contract:
//!
//! ```text
//! → {"version":1, "hook":"name", "point":"before_model"|"after_model", "request_id", "model",
//!    "key_id", "team_id", "user_id", "dialect", "stream",
//!    "messages":[{"role","content","tool_calls":[{"id","name","arguments"}],"tool_call_id"}],
//!    "answer":{"content","tool_calls","finish_reason"}}            (after_model only)
//! ← {"action":"allow"}
//!   {"action":"block","message":"why"}                               400 blocked_by_hook
//!   {"action":"modify","messages":[{"content":"…"},…]}             before_model: texts replaced
//!   {"action":"modify","content":"…"}                                after_model: answer replaced
//! ```
//!
//! A service that takes longer than `timeout_ms`, answers other than 2xx, or answers what the
//! contract does not say fails: `on_error: closed` refuses the call (503 `hook_unavailable`),
//! `open` lets it through. Either way the call's record says so. Calls run on the background
//! runtime, whose connections outlive any worker's request.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_types::{ApiError, ChatRequest, ChatResponse, ContentPart, ErrorKind, Origin};
use tracing::warn;

use crate::background::Background;
use crate::config::file::{OutagePolicy, WebhookConfig};
use crate::pipeline::guard::Verdict;
use crate::pipeline::hooks::{AfterFuture, Flow, Hook, HookFuture};
use crate::pipeline::{Answer, Ctx, Whole};

/// An HTTP hook.
#[derive(Debug)]
pub struct Webhook {
    name: Arc<str>,
    target: switchyard_providers::http::Target,
    client: switchyard_providers::http::Client,
    headers: HeaderMap,
    before: bool,
    after: bool,
    timeout: Duration,
    policy: OutagePolicy,
    models: Vec<String>,
}

/// What a service answered.
#[derive(Debug, Deserialize)]
struct Reply {
    action: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    messages: Option<Vec<ModifiedMessage>>,
    #[serde(default)]
    content: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ModifiedMessage {
    #[serde(default)]
    content: Option<String>,
}

/// Why a call to the service failed.
#[derive(Debug)]
enum Failure {
    Timeout,
    Transport(String),
    Status(u16),
    Garbage(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Timeout => f.write_str("no answer in time"),
            Failure::Transport(error) => write!(f, "could not be reached: {error}"),
            Failure::Status(status) => write!(f, "answered {status}"),
            Failure::Garbage(error) => write!(f, "answered outside the contract: {error}"),
        }
    }
}

impl Webhook {
    /// The hook `config` describes (checked by config validation).
    pub fn new(config: &WebhookConfig) -> Result<Webhook, String> {
        let target = switchyard_providers::http::Target::parse(&config.url)
            .map_err(|error| format!("hook {}: {error}", config.name))?;
        let client = switchyard_providers::http::client(Duration::from_millis(config.timeout_ms))
            .map_err(|error| format!("hook {}: {error}", config.name))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("hook {}: bad header name {name}", config.name))?;
            let mut value = HeaderValue::from_str(value.expose())
                .map_err(|_| format!("hook {}: bad value for header {name}", config.name))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        Ok(Webhook {
            name: Arc::from(format!("hook:{}", config.name)),
            target,
            client,
            headers,
            before: config.points.iter().any(|point| point == "before_model"),
            after: config.points.iter().any(|point| point == "after_model"),
            timeout: Duration::from_millis(config.timeout_ms),
            policy: config.on_error,
            models: config.models.clone(),
        })
    }

    fn applies(&self, ctx: &Ctx) -> bool {
        self.models.is_empty()
            || ctx
                .group
                .as_ref()
                .is_some_and(|group| self.models.iter().any(|model| *model == group.name))
    }

    /// The call's description for the service.
    fn describe(&self, ctx: &Ctx, point: &str, request: &ChatRequest) -> Value {
        let principal = ctx.principal.as_deref();
        let messages: Vec<Value> = request
            .messages
            .iter()
            .map(|message| {
                json!({
                    "role": message.role.as_str(),
                    "content": message.text(),
                    "tool_calls": message.tool_calls.iter().map(|call| json!({
                        "id": call.id, "name": call.name, "arguments": call.arguments,
                    })).collect::<Vec<_>>(),
                    "tool_call_id": message.tool_call_id,
                })
            })
            .collect();
        json!({
            "version": 1,
            "hook": &self.name["hook:".len()..],
            "point": point,
            "request_id": ctx.request_id,
            "model": ctx.group.as_ref().map(|group| group.name.as_str()),
            "key_id": principal.map(|p| p.key_id.as_str()),
            "team_id": principal.and_then(|p| p.team_id.as_deref()),
            "user_id": principal.and_then(|p| p.user_id.as_deref()),
            "dialect": ctx.client_format.as_str(),
            "stream": request.stream,
            "messages": messages,
        })
    }

    /// Asks the service, on the background runtime, within the time limit.
    async fn ask(&self, background: Background, body: Value) -> Result<Reply, Failure> {
        let (client, target, headers) = (
            self.client.clone(),
            self.target.clone(),
            self.headers.clone(),
        );
        let body = bytes::Bytes::from(body.to_string());
        let call = async move {
            let response = client
                .post(&target, headers, body)
                .await
                .map_err(|error| Failure::Transport(error.to_string()))?;
            let status = response.status().as_u16();
            if !(200..300).contains(&status) {
                return Err(Failure::Status(status));
            }
            let bytes = response
                .bytes(1024 * 1024)
                .await
                .map_err(|error| Failure::Transport(error.to_string()))?;
            serde_json::from_slice::<Reply>(&bytes).map_err(|error| {
                Failure::Garbage(switchyard_types::clip(&error.to_string(), 200).into_owned())
            })
        };
        let timeout = self.timeout;
        match background
            .run(async move { tokio::time::timeout(timeout, call).await })
            .await
        {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(Failure::Timeout),
            None => Err(Failure::Transport("shutting down".to_owned())),
        }
    }

    fn note(&self, ctx: &mut Ctx, action: &'static str) {
        ctx.verdicts.push(Verdict {
            detail: None,
            entity: Arc::clone(&self.name),
            count: 1,
            action,
        });
    }

    /// A failed call, as `on_error` says: through (`Ok`) or refused.
    fn failed(&self, ctx: &mut Ctx, failure: &Failure) -> Result<(), ApiError> {
        warn!(hook = %self.name, request_id = %ctx.request_id, error = %failure, "Hook failed");
        match self.policy {
            OutagePolicy::Open => {
                self.note(ctx, "error_open");
                Ok(())
            }
            OutagePolicy::Closed => {
                self.note(ctx, "error_closed");
                Err(ApiError::new(
                    ErrorKind::Unavailable,
                    Origin::Internal,
                    format!(
                        "The {} check failed ({failure}); the call was not made",
                        self.name
                    ),
                )
                .with_code("hook_unavailable"))
            }
        }
    }

    fn blocked(&self, ctx: &mut Ctx, message: Option<String>) -> ApiError {
        self.note(ctx, "block");
        let message = message.unwrap_or_else(|| "Blocked by a policy check".to_owned());
        ApiError::new(
            ErrorKind::InvalidRequest,
            Origin::Client,
            switchyard_types::clip(&message, 1000).into_owned(),
        )
        .with_code("blocked_by_hook")
    }

    async fn before(&self, ctx: &mut Ctx) -> Result<Flow, ApiError> {
        if !self.before || !self.applies(ctx) {
            return Ok(Flow::Continue);
        }
        let Some(request) = ctx.chat() else {
            return Ok(Flow::Continue);
        };
        let body = self.describe(ctx, "before_model", request);
        let reply = match self.ask(ctx.shared.background.clone(), body).await {
            Ok(reply) => reply,
            Err(failure) => return self.failed(ctx, &failure).map(|()| Flow::Continue),
        };
        match (reply.action.as_str(), reply.messages) {
            ("allow", _) => self.note(ctx, "allow"),
            ("block", _) => return Err(self.blocked(ctx, reply.message)),
            ("modify", Some(messages)) => {
                let count = ctx.chat().map_or(0, |request| request.messages.len());
                if messages.len() != count {
                    let failure = Failure::Garbage(format!(
                        "modify gave {} messages for {count}",
                        messages.len()
                    ));
                    return self.failed(ctx, &failure).map(|()| Flow::Continue);
                }
                if let Some(request) = ctx.chat_mut() {
                    for (message, modified) in request.messages.iter_mut().zip(messages) {
                        if let Some(content) = modified.content {
                            message
                                .content
                                .retain(|part| !matches!(part, ContentPart::Text { .. }));
                            message.content.insert(0, ContentPart::text(content));
                        }
                    }
                }
                self.note(ctx, "modify");
            }
            (other, _) => {
                let failure =
                    Failure::Garbage(format!("action `{}`", switchyard_types::clip(other, 40)));
                return self.failed(ctx, &failure).map(|()| Flow::Continue);
            }
        }
        Ok(Flow::Continue)
    }

    async fn after(&self, ctx: &mut Ctx, answer: &mut Answer) -> Result<(), ApiError> {
        if !self.after || !self.applies(ctx) {
            return Ok(());
        }
        let (Some(request), Answer::Whole(whole)) = (ctx.chat(), &*answer) else {
            return Ok(());
        };
        let response: ChatResponse = match whole {
            Whole::Chat(response) => response.clone(),
            Whole::Raw { body, .. } => match decode(ctx, body, request) {
                Some(response) => response,
                None => return Ok(()),
            },
            Whole::Embeddings(_) => return Ok(()),
        };
        let mut body = self.describe(ctx, "after_model", request);
        let choice = response.choices.first();
        body["answer"] = json!({
            "content": choice.map(|choice| {
                choice.content.iter().filter_map(|part| match part {
                    ContentPart::Text { text, .. } => Some(text.as_str()),
                    _ => None,
                }).collect::<String>()
            }),
            "tool_calls": choice.map(|choice| choice.tool_calls.iter().map(|call| json!({
                "id": call.id, "name": call.name, "arguments": call.arguments,
            })).collect::<Vec<_>>()),
            "finish_reason": choice.map(|choice| choice.finish_reason.openai()),
        });
        let reply = match self.ask(ctx.shared.background.clone(), body).await {
            Ok(reply) => reply,
            Err(failure) => return self.failed(ctx, &failure),
        };
        match (reply.action.as_str(), reply.content) {
            ("allow", _) => self.note(ctx, "allow"),
            ("block", _) => return Err(self.blocked(ctx, reply.message)),
            ("modify", Some(content)) => {
                let mut response = response;
                if let Some(choice) = response.choices.first_mut() {
                    choice
                        .content
                        .retain(|part| !matches!(part, ContentPart::Text { .. }));
                    choice.content.insert(0, ContentPart::text(content));
                }
                *answer = Answer::Whole(Whole::Chat(response));
                self.note(ctx, "modify");
            }
            (other, _) => {
                let failure =
                    Failure::Garbage(format!("action `{}`", switchyard_types::clip(other, 40)));
                return self.failed(ctx, &failure);
            }
        }
        Ok(())
    }
}

/// A relayed answer in the client's dialect, decoded for the service.
fn decode(ctx: &Ctx, body: &[u8], request: &ChatRequest) -> Option<ChatResponse> {
    match ctx.client_format {
        switchyard_types::WireFormat::OpenAi => {
            switchyard_providers::openai::response::decode(body, request).ok()
        }
        switchyard_types::WireFormat::Anthropic => {
            switchyard_providers::anthropic::response::decode(body, request).ok()
        }
    }
}

impl Hook for Webhook {
    fn before_model<'a>(&'a self, ctx: &'a mut Ctx) -> HookFuture<'a> {
        Box::pin(self.before(ctx))
    }

    fn after_model<'a>(&'a self, ctx: &'a mut Ctx, answer: &'a mut Answer) -> AfterFuture<'a> {
        Box::pin(self.after(ctx, answer))
    }
}
