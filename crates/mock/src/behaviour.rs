//! What the mock answers, independent of wire format: the text or tool calls, the finish reason
//! and the completion token count. Pure: each format turns its request into a [`Prompt`] and
//! encodes the [`Answer`].
//!
//! Precedence of the content: the `safety` and `blocked` faults (an empty answer withheld by the
//! content filter), `echo=request`, then `tokens=N`, then tool calls, then the JSON response
//! format, then the echo of the last user message.

mod schema;
pub(crate) mod text;

use std::fmt::Write as _;
use std::ops::Range;

use serde_json::Value;

pub(crate) use self::schema::{Nesting, instance};
use crate::options::{Fault, Finish, Options};

/// Bytes per stream piece of text that is not made of words (JSON content).
const JSON_PIECE_BYTES: usize = 16;

/// The parts of a request that decide the answer.
#[derive(Debug)]
pub(crate) struct Prompt<'a> {
    /// The conversation's last message, as far as the answer depends on it.
    pub last: Last,
    /// The deterministic prompt token count (see the crate docs).
    pub prompt_tokens: u64,
    /// The tools the client offers.
    pub tools: Vec<ToolSpec<'a>>,
    /// Whether and which tools the client lets the model call.
    pub tool_choice: ToolChoice<'a>,
    /// Whether several tools may be called at once.
    pub parallel_tool_calls: bool,
    /// Token limit of the answer.
    pub max_tokens: Option<u64>,
    /// Stop sequences.
    pub stop: Vec<&'a str>,
    /// Requested response format.
    pub format: Format<'a>,
}

/// The last message of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Last {
    /// Who sent it.
    pub role: LastRole,
    /// For a user message its text parts joined with `"\n"`; for a tool result the result
    /// text; otherwise the text of the last user message before it.
    pub text: String,
}

/// The kind of the conversation's last message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LastRole {
    /// A user message with no tool result in it.
    User,
    /// A tool result (OpenAI role `tool`, Anthropic `tool_result` blocks).
    ToolResult,
    /// Anything else (an assistant prefill, a system message, no message at all).
    Other,
}

/// A tool the client offers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ToolSpec<'a> {
    /// The tool's name.
    pub name: &'a str,
    /// The JSON schema of its input.
    pub schema: Option<&'a Value>,
}

/// The client's tool choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ToolChoice<'a> {
    /// The model decides (the mock always calls something).
    Auto,
    /// No tool may be called.
    None,
    /// Some tool must be called.
    Required,
    /// This tool must be called.
    Named(&'a str),
}

/// The requested response format.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Format<'a> {
    /// Free text.
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON matching this schema.
    JsonSchema(Option<&'a Value>),
}

/// The format-neutral answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    /// Text content; `None` when the answer is tool calls.
    pub text: Option<Text>,
    /// Tool calls, in order.
    pub tool_calls: Vec<ToolCall>,
    /// Why generation stopped.
    pub finish: Finish,
    /// The stop sequence that ended the text, if one did.
    pub stop_sequence: Option<String>,
    /// Generated tokens (words of the text, or of the tool arguments, at least 1 per call).
    pub completion_tokens: u64,
}

/// Text content and how a stream splits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Text {
    /// The whole text.
    pub content: String,
    /// Byte ranges of `content`, one per stream chunk, covering it in order.
    pub pieces: Vec<Range<usize>>,
}

impl Text {
    /// Text split into words (each with its leading whitespace).
    pub(crate) fn words(content: String) -> Self {
        let pieces = text::word_pieces(&content);
        Self { content, pieces }
    }

    /// Text split into pieces of about `size` bytes.
    fn bytes(content: String, size: usize) -> Self {
        let pieces = text::byte_pieces(&content, size);
        Self { content, pieces }
    }

    /// The stream chunks.
    pub(crate) fn pieces(&self) -> impl Iterator<Item = &str> {
        self.pieces
            .iter()
            .filter_map(|range| self.content.get(range.clone()))
    }
}

/// One tool call of the answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToolCall {
    /// The called tool.
    pub name: String,
    /// The arguments.
    pub arguments: Value,
    /// The arguments as compact JSON.
    pub arguments_json: String,
}

impl ToolCall {
    /// The arguments JSON split into at least two stream pieces.
    pub(crate) fn argument_pieces(&self) -> impl Iterator<Item = &str> {
        let size = (self.arguments_json.len() / 2).clamp(1, 12);
        text::byte_pieces(&self.arguments_json, size)
            .into_iter()
            .filter_map(|range| self.arguments_json.get(range))
    }
}

/// A request the mock cannot answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AnswerError {
    /// `tool_choice` names a tool the request does not define.
    UnknownTool(String),
}

/// Decides the answer to `prompt`. `body` is the request as received, for `echo=request`.
pub(crate) fn answer(
    prompt: &Prompt<'_>,
    options: &Options,
    body: &[u8],
) -> Result<Answer, AnswerError> {
    if matches!(options.fail, Some(Fault::Safety | Fault::Blocked)) {
        return Ok(Answer {
            text: Some(Text::words(String::new())),
            tool_calls: Vec::new(),
            finish: Finish::ContentFilter,
            stop_sequence: None,
            completion_tokens: 0,
        });
    }
    let tools = if options.echo_request || options.tokens.is_some() {
        Vec::new()
    } else {
        select_tools(prompt)?
    };
    let mut answer = if tools.is_empty() {
        text_answer(prompt, options, body)
    } else {
        let tool_calls: Vec<ToolCall> = tools
            .into_iter()
            .map(|tool| {
                let arguments = instance(tool.schema, Nesting::Flat);
                let arguments_json = arguments.to_string();
                ToolCall {
                    name: tool.name.to_owned(),
                    arguments,
                    arguments_json,
                }
            })
            .collect();
        let completion_tokens = tool_calls
            .iter()
            .map(|call| text::words(&call.arguments_json).max(1))
            .sum();
        Answer {
            text: None,
            tool_calls,
            finish: Finish::ToolCalls,
            stop_sequence: None,
            completion_tokens,
        }
    };
    if let Some(finish) = options.finish {
        answer.finish = finish;
    }
    Ok(answer)
}

/// The tools the mock calls: none unless tools are offered, allowed, and the last message is
/// from the user; then the named one, or those named in the user's text, or the first.
fn select_tools<'p>(prompt: &'p Prompt<'_>) -> Result<Vec<&'p ToolSpec<'p>>, AnswerError> {
    if prompt.tools.is_empty()
        || prompt.tool_choice == ToolChoice::None
        || prompt.last.role != LastRole::User
    {
        return Ok(Vec::new());
    }
    let mut chosen: Vec<&ToolSpec<'_>> = match prompt.tool_choice {
        ToolChoice::Named(name) => {
            let tool = prompt
                .tools
                .iter()
                .find(|tool| tool.name == name)
                .ok_or_else(|| AnswerError::UnknownTool(name.to_owned()))?;
            vec![tool]
        }
        ToolChoice::Auto | ToolChoice::Required | ToolChoice::None => {
            let named: Vec<_> = prompt
                .tools
                .iter()
                .filter(|tool| !tool.name.is_empty() && prompt.last.text.contains(tool.name))
                .collect();
            if named.is_empty() {
                prompt.tools.iter().take(1).collect()
            } else {
                named
            }
        }
    };
    if !prompt.parallel_tool_calls {
        chosen.truncate(1);
    }
    Ok(chosen)
}

fn text_answer(prompt: &Prompt<'_>, options: &Options, body: &[u8]) -> Answer {
    let (mut content, words) = if options.echo_request {
        (text::compact_json(body), false)
    } else if let Some(count) = options.tokens {
        (counted_tokens(count), true)
    } else {
        match prompt.format {
            Format::Text => (echo(&prompt.last), true),
            Format::JsonObject => {
                let echo = serde_json::json!({ "echo": echo(&prompt.last) });
                (echo.to_string(), false)
            }
            Format::JsonSchema(schema) => (instance(schema, Nesting::Deep).to_string(), false),
        }
    };

    let mut finish = Finish::Stop;
    let mut stop_sequence = None;
    let earliest_stop = prompt
        .stop
        .iter()
        .filter(|stop| !stop.is_empty())
        .filter_map(|stop| content.find(*stop).map(|at| (at, *stop)))
        .min_by_key(|(at, _)| *at);
    if let Some((at, stop)) = earliest_stop {
        content.truncate(at);
        stop_sequence = Some(stop.to_owned());
    }
    // The limit is checked after the stop cut: a stop that comes first ends the text first.
    if let Some(limit) = prompt.max_tokens
        && text::truncate_words(&mut content, limit)
    {
        finish = Finish::Length;
        stop_sequence = None;
    }

    let completion_tokens = text::words(&content);
    let text = if words {
        Text::words(content)
    } else {
        Text::bytes(content, JSON_PIECE_BYTES)
    };
    Answer {
        text: Some(text),
        tool_calls: Vec::new(),
        finish,
        stop_sequence,
        completion_tokens,
    }
}

/// `"tok1 tok2 … tokN"`.
fn counted_tokens(count: u64) -> String {
    let mut text = String::with_capacity(usize::try_from(count).unwrap_or(0).saturating_mul(6));
    for n in 1..=count {
        let separator = if n > 1 { " " } else { "" };
        // Writing to a `String` cannot fail.
        let _ = write!(text, "{separator}tok{n}");
    }
    text
}

fn echo(last: &Last) -> String {
    match last.role {
        LastRole::ToolResult => format!("tool result: {}", last.text),
        LastRole::User | LastRole::Other => last.text.clone(),
    }
}

#[cfg(test)]
mod tests;
