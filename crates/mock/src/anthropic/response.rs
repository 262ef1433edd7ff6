//! Encodes an [`Answer`] as an Anthropic `message` object or as its event stream, shaped like
//! the API's own (<https://docs.anthropic.com/en/api/messages>,
//! <https://docs.anthropic.com/en/docs/build-with-claude/streaming>).
//!
//! Content blocks come in the order Claude sends them: a `thinking` block when thinking is
//! enabled, with the web search server tool a `server_tool_use` block (its query streamed as
//! input) and its `web_search_tool_result`, a text block (`"Calling tools."` before tool
//! calls), then one `tool_use` block per call.

use serde::Serialize;
use serde_json::Value;

use crate::behaviour::text::{word_pieces, words};
use crate::behaviour::{Answer, Text, ToolCall};
use crate::ids;
use crate::options::{Finish, Options};
use crate::reply::write_json;
use crate::script::Script;

/// The event a `malformed` stream fault inserts.
pub(crate) const MALFORMED_EVENT: &[u8] =
    b"event: content_block_delta\ndata: {this is not json\n\n";

/// Text of the thinking block.
const THINKING: &str = "Mock reasoning.";
/// Signature of the thinking block.
const SIGNATURE: &str = "bW9jay10aGlua2luZy1zaWduYXR1cmU=";
/// Text before tool calls.
const PREAMBLE: &str = "Calling tools.";

/// One content block of the answer.
#[derive(Debug)]
enum Part<'a> {
    Thinking,
    /// A web search (its id and input) and its result.
    Search(String, Value),
    SearchResult(String),
    Text(&'a Text),
    ToolUse(&'a ToolCall, String),
}

/// Everything one reply is made of.
#[derive(Debug)]
pub(crate) struct Reply<'a> {
    id: String,
    model: &'a str,
    parts: Vec<Part<'a>>,
    stop_reason: &'static str,
    stop_sequence: Option<&'a str>,
    input_tokens: u64,
    output_tokens: u64,
    cache_read_input_tokens: u64,
}

impl<'a> Reply<'a> {
    /// A reply to a request with `prompt_tokens`; cached tokens are reported as cache reads
    /// and, as Anthropic counts them, not in `input_tokens`.
    pub(crate) fn new(
        model: &'a str,
        answer: &'a Answer,
        preamble: &'a Text,
        thinking: bool,
        prompt_tokens: u64,
        options: &Options,
    ) -> Self {
        let mut parts = Vec::with_capacity(2 + answer.tool_calls.len());
        let mut output_tokens = answer.completion_tokens;
        if thinking {
            parts.push(Part::Thinking);
            output_tokens += words(THINKING);
        }
        match &answer.text {
            Some(text) => parts.push(Part::Text(text)),
            None => {
                parts.push(Part::Text(preamble));
                output_tokens += words(&preamble.content);
            }
        }
        for call in &answer.tool_calls {
            parts.push(Part::ToolUse(call, ids::new("toolu_", 24)));
        }
        Self {
            id: ids::new("msg_", 24),
            model,
            parts,
            stop_reason: stop_reason(answer),
            stop_sequence: answer.stop_sequence.as_deref(),
            input_tokens: prompt_tokens.saturating_sub(options.cached_tokens),
            output_tokens,
            cache_read_input_tokens: options.cached_tokens,
        }
    }

    /// Searches the web for `query` before the answer, as Claude does with the web search
    /// server tool.
    pub(crate) fn searching(mut self, query: Option<&str>) -> Self {
        let Some(query) = query else {
            return self;
        };
        let id = ids::new("srvtoolu_", 24);
        let at = usize::from(matches!(self.parts.first(), Some(Part::Thinking)));
        self.parts.insert(at, Part::SearchResult(id.clone()));
        self.parts
            .insert(at, Part::Search(id, serde_json::json!({ "query": query })));
        self
    }

    /// The text that precedes tool calls.
    pub(crate) fn preamble() -> Text {
        Text::words(PREAMBLE.to_owned())
    }

    /// The `message` JSON.
    pub(crate) fn message(&self) -> Vec<u8> {
        let content = self
            .parts
            .iter()
            .map(|part| match part {
                Part::Thinking => Block::Thinking {
                    thinking: THINKING,
                    signature: SIGNATURE,
                },
                Part::Text(text) => Block::Text {
                    text: &text.content,
                },
                Part::Search(id, input) => Block::ServerToolUse {
                    id,
                    name: "web_search",
                    input,
                },
                Part::SearchResult(id) => Block::WebSearchToolResult {
                    tool_use_id: id,
                    content: search_results(),
                },
                Part::ToolUse(call, id) => Block::ToolUse {
                    id,
                    name: &call.name,
                    input: &call.arguments,
                },
            })
            .collect();
        let mut body = Vec::with_capacity(512);
        write_json(
            &mut body,
            &self.envelope(
                content,
                Some(self.stop_reason),
                self.stop_sequence,
                self.output_tokens,
            ),
        );
        body
    }

    /// Writes the event stream into `script`: `message_start`, `ping`, each block's
    /// `content_block_start` / deltas / `content_block_stop`, `message_delta`, `message_stop`.
    pub(crate) fn stream(&self, script: &mut Script) {
        script.structural(|buffer| {
            event(
                buffer,
                "message_start",
                &Event::MessageStart {
                    message: self.envelope(Vec::new(), None, None, 1),
                },
            );
            event(buffer, "ping", &Event::Ping);
        });
        for (index, part) in self.parts.iter().enumerate() {
            let start = match part {
                Part::Thinking => BlockStart::Thinking { thinking: "" },
                Part::Text(_) => BlockStart::Text { text: "" },
                Part::Search(id, _) => BlockStart::ServerToolUse {
                    id,
                    name: "web_search",
                    input: Empty {},
                },
                Part::SearchResult(id) => BlockStart::WebSearchToolResult {
                    tool_use_id: id,
                    content: search_results(),
                },
                Part::ToolUse(call, id) => BlockStart::ToolUse {
                    id,
                    name: &call.name,
                    input: Empty {},
                },
            };
            script.structural(|buffer| {
                let start = Event::ContentBlockStart {
                    index,
                    content_block: start,
                };
                event(buffer, "content_block_start", &start);
            });
            let delta = |script: &mut Script, delta: Delta<'_>| {
                script.content(|buffer| {
                    event(
                        buffer,
                        "content_block_delta",
                        &Event::ContentBlockDelta { index, delta },
                    );
                });
            };
            match part {
                Part::Thinking => {
                    for piece in word_pieces(THINKING) {
                        let thinking = THINKING.get(piece).unwrap_or_default();
                        delta(script, Delta::Thinking { thinking });
                    }
                    delta(
                        script,
                        Delta::Signature {
                            signature: SIGNATURE,
                        },
                    );
                }
                Part::Text(text) => {
                    for text in text.pieces() {
                        delta(script, Delta::Text { text });
                    }
                }
                Part::ToolUse(call, _) => {
                    for partial_json in call.argument_pieces() {
                        delta(script, Delta::InputJson { partial_json });
                    }
                }
                Part::Search(_, input) => {
                    let input = input.to_string();
                    // In two pieces, as input arrives.
                    let (first, rest) = input.split_at(input.len() / 2);
                    delta(
                        script,
                        Delta::InputJson {
                            partial_json: first,
                        },
                    );
                    delta(script, Delta::InputJson { partial_json: rest });
                }
                Part::SearchResult(_) => {}
            }
            script.structural(|buffer| {
                event(
                    buffer,
                    "content_block_stop",
                    &Event::ContentBlockStop { index },
                );
            });
        }
        script.terminal(|buffer| {
            let delta = Event::MessageDelta {
                delta: MessageDelta {
                    stop_reason: self.stop_reason,
                    stop_sequence: self.stop_sequence,
                },
                usage: DeltaUsage {
                    output_tokens: self.output_tokens,
                },
            };
            event(buffer, "message_delta", &delta);
        });
        script.terminal(|buffer| event(buffer, "message_stop", &Event::MessageStop));
    }

    fn envelope<'s>(
        &'s self,
        content: Vec<Block<'s>>,
        stop_reason: Option<&'static str>,
        stop_sequence: Option<&'s str>,
        output_tokens: u64,
    ) -> Message<'s> {
        Message {
            id: &self.id,
            kind: "message",
            role: "assistant",
            model: self.model,
            content,
            stop_reason,
            stop_sequence,
            usage: Usage {
                input_tokens: self.input_tokens,
                output_tokens,
                cache_creation_input_tokens: 0,
                cache_read_input_tokens: self.cache_read_input_tokens,
            },
        }
    }
}

/// The wire stop reason.
fn stop_reason(answer: &Answer) -> &'static str {
    match answer.finish {
        Finish::Stop if answer.stop_sequence.is_some() => "stop_sequence",
        Finish::Stop => "end_turn",
        Finish::Length => "max_tokens",
        Finish::ContentFilter => "refusal",
        Finish::ToolCalls => "tool_use",
    }
}

/// `event: <name>\ndata: <json>\n\n`.
fn event(buffer: &mut Vec<u8>, name: &str, data: &Event<'_>) {
    buffer.extend_from_slice(b"event: ");
    buffer.extend_from_slice(name.as_bytes());
    buffer.extend_from_slice(b"\ndata: ");
    write_json(buffer, data);
    buffer.extend_from_slice(b"\n\n");
}

#[derive(Serialize)]
struct Message<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<Block<'a>>,
    stop_reason: Option<&'static str>,
    stop_sequence: Option<&'a str>,
    usage: Usage,
}

#[derive(Serialize)]
struct Usage {
    input_tokens: u64,
    output_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Thinking {
        thinking: &'a str,
        signature: &'a str,
    },
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a Value,
    },
    ServerToolUse {
        id: &'a str,
        name: &'static str,
        input: &'a Value,
    },
    WebSearchToolResult {
        tool_use_id: &'a str,
        content: Value,
    },
}

/// What the mock's web search finds: one page.
fn search_results() -> Value {
    serde_json::json!([{
        "type": "web_search_result",
        "url": "https://example.com/answer",
        "title": "The answer",
        "encrypted_content": "bW9jay1zZWFyY2gtcmVzdWx0",
        "page_age": "April 1, 2026",
    }])
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    MessageStart {
        message: Message<'a>,
    },
    Ping,
    ContentBlockStart {
        index: usize,
        content_block: BlockStart<'a>,
    },
    ContentBlockDelta {
        index: usize,
        delta: Delta<'a>,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        delta: MessageDelta<'a>,
        usage: DeltaUsage,
    },
    MessageStop,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockStart<'a> {
    Thinking {
        thinking: &'static str,
    },
    Text {
        text: &'static str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Empty,
    },
    ServerToolUse {
        id: &'a str,
        name: &'static str,
        input: Empty,
    },
    WebSearchToolResult {
        tool_use_id: &'a str,
        content: Value,
    },
}

/// Serializes as `{}`.
#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
#[serde(tag = "type")]
enum Delta<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "signature_delta")]
    Signature { signature: &'a str },
}

#[derive(Serialize)]
struct MessageDelta<'a> {
    stop_reason: &'static str,
    stop_sequence: Option<&'a str>,
}

#[derive(Serialize)]
struct DeltaUsage {
    output_tokens: u64,
}

#[cfg(test)]
mod tests;
