//! Encodes an [`Answer`] as an OpenAI `chat.completion` object or as a stream of
//! `chat.completion.chunk` events, shaped field by field like the API's own
//! (<https://platform.openai.com/docs/api-reference/chat/object>,
//! <https://platform.openai.com/docs/api-reference/chat-streaming>).

use serde::Serialize;

use crate::behaviour::Answer;
use crate::options::{Finish, Options};
use crate::reply::write_json;
use crate::script::Script;
use crate::{clock, ids};

/// The event a `malformed` stream fault inserts.
pub(crate) const MALFORMED_EVENT: &[u8] = b"data: {this is not json\n\n";

const SYSTEM_FINGERPRINT: &str = "fp_mock";

/// Everything one reply is made of.
#[derive(Debug)]
pub(crate) struct Reply<'a> {
    id: String,
    created: u64,
    model: &'a str,
    n: u32,
    answer: &'a Answer,
    usage: Usage,
    /// Tool call ids, per choice then per call.
    call_ids: Vec<Vec<String>>,
    /// Stream chunks carry OpenAI's `obfuscation` padding (`stream_options.include_obfuscation`).
    pub(crate) obfuscation: bool,
    /// The `service_tier` reported.
    pub(crate) service_tier: &'static str,
}

/// The `usage` object.
#[derive(Debug, Serialize)]
pub(crate) struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: PromptTokensDetails,
    completion_tokens_details: CompletionTokensDetails,
}

#[derive(Debug, Serialize)]
struct PromptTokensDetails {
    cached_tokens: u64,
    audio_tokens: u64,
}

#[derive(Debug, Serialize)]
struct CompletionTokensDetails {
    reasoning_tokens: u64,
    audio_tokens: u64,
    accepted_prediction_tokens: u64,
    rejected_prediction_tokens: u64,
}

impl<'a> Reply<'a> {
    /// A reply with `n` identical choices. Completion tokens count every choice, and include
    /// the reasoning tokens as OpenAI's do.
    pub(crate) fn new(
        model: &'a str,
        n: u32,
        answer: &'a Answer,
        prompt_tokens: u64,
        options: &Options,
    ) -> Self {
        let completion_tokens = answer.completion_tokens * u64::from(n) + options.reasoning_tokens;
        let call_ids = (0..n)
            .map(|_| {
                answer
                    .tool_calls
                    .iter()
                    .map(|_| ids::new("call_", 24))
                    .collect()
            })
            .collect();
        Self {
            obfuscation: false,
            service_tier: "default",
            id: ids::new("chatcmpl-", 29),
            created: clock::unix_now(),
            model,
            n,
            answer,
            usage: Usage {
                prompt_tokens,
                completion_tokens,
                total_tokens: prompt_tokens + completion_tokens,
                prompt_tokens_details: PromptTokensDetails {
                    cached_tokens: options.cached_tokens,
                    audio_tokens: 0,
                },
                completion_tokens_details: CompletionTokensDetails {
                    reasoning_tokens: options.reasoning_tokens,
                    audio_tokens: 0,
                    accepted_prediction_tokens: 0,
                    rejected_prediction_tokens: 0,
                },
            },
            call_ids,
        }
    }

    /// The `chat.completion` JSON.
    pub(crate) fn completion(&self) -> Vec<u8> {
        let content = self.answer.text.as_ref().map(|text| text.content.as_str());
        let choices = (0..self.n)
            .map(|index| Choice {
                index,
                message: AssistantMessage {
                    role: "assistant",
                    content,
                    refusal: None,
                    annotations: [],
                    tool_calls: self
                        .answer
                        .tool_calls
                        .iter()
                        .zip(self.ids_of(index))
                        .map(|(call, id)| ToolCallOut {
                            id,
                            kind: "function",
                            function: FunctionOut {
                                name: &call.name,
                                arguments: &call.arguments_json,
                            },
                        })
                        .collect(),
                },
                logprobs: None,
                finish_reason: finish_reason(self.answer.finish),
            })
            .collect();
        let mut body = Vec::with_capacity(512);
        write_json(
            &mut body,
            &Completion {
                id: &self.id,
                object: "chat.completion",
                created: self.created,
                model: self.model,
                choices,
                usage: &self.usage,
                service_tier: self.service_tier,
                system_fingerprint: SYSTEM_FINGERPRINT,
            },
        );
        body
    }

    /// Writes the chunk stream into `script`: a role chunk per choice, the content (text
    /// pieces, or tool call headers then argument pieces), a finish chunk per choice, the
    /// usage chunk when asked for, then `[DONE]`. Choices interleave by index.
    pub(crate) fn stream(&self, include_usage: bool, script: &mut Script) {
        let usage = include_usage.then_some(None);
        let has_text = self.answer.text.is_some();
        script.structural(|buffer| {
            self.each_choice(buffer, usage, |_| Delta {
                role: Some("assistant"),
                content: Some(has_text.then_some("")),
                refusal: Some(None),
                tool_calls: None,
            });
        });
        if let Some(text) = &self.answer.text {
            for piece in text.pieces() {
                script.content(|buffer| {
                    self.each_choice(buffer, usage, |_| Delta {
                        content: Some(Some(piece)),
                        ..Delta::default()
                    });
                });
            }
        }
        for (position, call) in self.answer.tool_calls.iter().enumerate() {
            script.content(|buffer| {
                self.each_choice(buffer, usage, |index| Delta {
                    tool_calls: Some([ToolCallDelta {
                        index: position,
                        id: self.ids_of(index).nth(position),
                        kind: Some("function"),
                        function: FunctionDelta {
                            name: Some(&call.name),
                            arguments: "",
                        },
                    }]),
                    ..Delta::default()
                });
            });
            for piece in call.argument_pieces() {
                script.content(|buffer| {
                    self.each_choice(buffer, usage, |_| Delta {
                        tool_calls: Some([ToolCallDelta {
                            index: position,
                            id: None,
                            kind: None,
                            function: FunctionDelta {
                                name: None,
                                arguments: piece,
                            },
                        }]),
                        ..Delta::default()
                    });
                });
            }
        }
        let finish = Some(finish_reason(self.answer.finish));
        script.terminal(|buffer| {
            for index in 0..self.n {
                let choice = ChunkChoice {
                    index,
                    delta: Delta::default(),
                    logprobs: None,
                    finish_reason: finish,
                };
                self.chunk(buffer, &[choice], usage);
            }
        });
        if include_usage {
            script.terminal(|buffer| self.chunk(buffer, &[], Some(Some(&self.usage))));
        }
        script.terminal(|buffer| buffer.extend_from_slice(b"data: [DONE]\n\n"));
    }

    fn ids_of(&self, index: u32) -> impl Iterator<Item = &str> {
        self.call_ids
            .get(index as usize)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// One chunk per choice, each with the delta `delta(index)`.
    fn each_choice<'d>(
        &'d self,
        buffer: &mut Vec<u8>,
        usage: Option<Option<&Usage>>,
        delta: impl Fn(u32) -> Delta<'d>,
    ) {
        for index in 0..self.n {
            let choice = ChunkChoice {
                index,
                delta: delta(index),
                logprobs: None,
                finish_reason: None,
            };
            self.chunk(buffer, &[choice], usage);
        }
    }

    fn chunk(
        &self,
        buffer: &mut Vec<u8>,
        choices: &[ChunkChoice<'_>],
        usage: Option<Option<&Usage>>,
    ) {
        buffer.extend_from_slice(b"data: ");
        write_json(
            buffer,
            &Chunk {
                id: &self.id,
                object: "chat.completion.chunk",
                created: self.created,
                model: self.model,
                service_tier: self.service_tier,
                system_fingerprint: SYSTEM_FINGERPRINT,
                choices,
                usage,
                obfuscation: self.obfuscation.then(|| obfuscation(choices)),
            },
        );
        buffer.extend_from_slice(b"\n\n");
    }
}

/// The wire name of a finish reason.
fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "stop",
        Finish::Length => "length",
        Finish::ContentFilter => "content_filter",
        Finish::ToolCalls => "tool_calls",
    }
}

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<Choice<'a>>,
    usage: &'a Usage,
    service_tier: &'static str,
    system_fingerprint: &'static str,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: AssistantMessage<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct AssistantMessage<'a> {
    role: &'static str,
    content: Option<&'a str>,
    refusal: Option<&'a str>,
    annotations: [(); 0],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallOut<'a>>,
}

#[derive(Serialize)]
struct ToolCallOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionOut<'a>,
}

#[derive(Serialize)]
struct FunctionOut<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    service_tier: &'static str,
    system_fingerprint: &'static str,
    choices: &'a [ChunkChoice<'a>],
    /// Absent without `include_usage`; then `null`, and the usage on the final chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<&'a Usage>>,
    /// Padding that hides the length of the chunk's content.
    #[serde(skip_serializing_if = "Option::is_none")]
    obfuscation: Option<String>,
}

/// Padding that brings a chunk's text to a multiple of 16 characters, as OpenAI's
/// `obfuscation` evens out chunk sizes (its characters are random there; fixed here).
fn obfuscation(choices: &[ChunkChoice<'_>]) -> String {
    let text: usize = choices
        .iter()
        .map(|choice| choice.delta.content.flatten().map_or(0, str::len))
        .sum();
    "Zq8vR2mX4kT7wN1b"[..16 - text % 16].to_owned()
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

/// A chunk's delta; an absent outer `Option` leaves the field out, `Some(None)` sends `null`.
#[derive(Default, Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallDelta<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolCallDelta<'a> {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionDelta<'a>,
}

#[derive(Serialize)]
struct FunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

#[cfg(test)]
mod tests;
