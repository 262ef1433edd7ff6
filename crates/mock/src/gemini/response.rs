//! Encodes an [`Answer`] as a Gemini `GenerateContentResponse`, or as the `alt=sse` stream of
//! them, shaped like the API's own
//! (<https://ai.google.dev/api/generate-content#v1beta.GenerateContentResponse>).
//!
//! A candidate's parts come in the order Gemini sends them: a thought summary
//! (`{"text": …, "thought": true}`) when `thinkingConfig.includeThoughts` is set, then the text
//! or one `functionCall` part per call. Counts that are zero are left out, as Google's proto
//! JSON does. In a stream every chunk is a whole response: one per word of the thought and of
//! the text, one holding all function calls, and a last one with an empty text part, the
//! `finishReason` and the final usage. Every chunk carries `usageMetadata` with the running
//! candidate count, `modelVersion` and `responseId`, as Gemini's do; there is no `[DONE]`.

use serde::Serialize;
use serde_json::Value;

use super::request::PromptTokens;
use crate::behaviour::text::words;
use crate::behaviour::{Answer, Text};
use crate::ids;
use crate::options::{Fault, Finish, Options};
use crate::reply::write_json;
use crate::script::Script;

/// The event a `malformed` stream fault inserts.
pub(crate) const MALFORMED_EVENT: &[u8] = b"data: {this is not json\r\n\r\n";

/// Text of the thought summary part.
const THOUGHT: &str = "Mock reasoning.";

/// Safety ratings of a withheld answer or a blocked prompt: one category rated `HIGH`.
static RATINGS: [SafetyRating; 4] = [
    SafetyRating::negligible("HARM_CATEGORY_SEXUALLY_EXPLICIT"),
    SafetyRating::negligible("HARM_CATEGORY_HATE_SPEECH"),
    SafetyRating {
        category: "HARM_CATEGORY_HARASSMENT",
        probability: "HIGH",
        blocked: true,
    },
    SafetyRating::negligible("HARM_CATEGORY_DANGEROUS_CONTENT"),
];

/// What the content filter withheld.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Withheld {
    /// `fail=safety`: candidates with finish reason `SAFETY` and no content.
    Answer,
    /// `fail=blocked`: no candidates, a `promptFeedback.blockReason`.
    Prompt,
}

/// Everything one reply is made of.
#[derive(Debug)]
pub(crate) struct Reply<'a> {
    response_id: String,
    model: &'a str,
    candidates: u32,
    answer: &'a Answer,
    thought: Option<Text>,
    withheld: Option<Withheld>,
    /// Function call ids, per candidate then per call.
    call_ids: Vec<Vec<String>>,
    prompt: PromptTokens,
    cached_tokens: u64,
    thoughts_tokens: u64,
}

impl<'a> Reply<'a> {
    /// A reply of `candidates` identical candidates. Thought tokens are `reasoning_tokens`
    /// when set, else the words of the thought summary when it is included; as Gemini counts
    /// them, they are not in `candidatesTokenCount` but are in `totalTokenCount`. Cached
    /// tokens are part of the prompt tokens.
    pub(crate) fn new(
        model: &'a str,
        candidates: u32,
        answer: &'a Answer,
        prompt: PromptTokens,
        include_thoughts: bool,
        options: &Options,
    ) -> Self {
        let withheld = match options.fail {
            Some(Fault::Safety) => Some(Withheld::Answer),
            Some(Fault::Blocked) => Some(Withheld::Prompt),
            Some(Fault::Status(_) | Fault::Hang | Fault::Reset | Fault::Cut | Fault::Malformed)
            | None => None,
        };
        let thought =
            (include_thoughts && withheld.is_none()).then(|| Text::words(THOUGHT.to_owned()));
        let thoughts_tokens = if withheld.is_some() {
            0
        } else if options.reasoning_tokens > 0 {
            options.reasoning_tokens
        } else {
            thought
                .as_ref()
                .map_or(0, |thought| words(&thought.content) * u64::from(candidates))
        };
        let call_ids = (0..candidates)
            .map(|_| answer.tool_calls.iter().map(|_| ids::new("", 8)).collect())
            .collect();
        Self {
            response_id: ids::new("", 23),
            model,
            candidates,
            answer,
            thought,
            withheld,
            call_ids,
            prompt,
            cached_tokens: options.cached_tokens,
            thoughts_tokens,
        }
    }

    /// The `GenerateContentResponse` JSON.
    pub(crate) fn response(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(512);
        write_json(&mut body, &self.whole());
        body
    }

    /// Writes the `alt=sse` stream into `script` (see the module docs).
    pub(crate) fn stream(&self, script: &mut Script) {
        if self.withheld.is_some() {
            script.content(|buffer| event(buffer, &self.whole()));
            return;
        }
        if let Some(thought) = &self.thought {
            for piece in thought.pieces() {
                script.content(|buffer| {
                    let parts = |_| vec![PartOut::thought(piece)];
                    event(buffer, &self.chunk(parts, None, 0));
                });
            }
        }
        let n = u64::from(self.candidates);
        if let Some(text) = &self.answer.text {
            for range in &text.pieces {
                let piece = text.content.get(range.clone()).unwrap_or_default();
                let so_far = text.content.get(..range.end).map_or(0, words) * n;
                script.content(|buffer| {
                    let parts = |_| vec![PartOut::text(piece)];
                    event(buffer, &self.chunk(parts, None, so_far));
                });
            }
        }
        if !self.answer.tool_calls.is_empty() {
            script.content(|buffer| {
                let chunk = self.chunk(
                    |index| self.calls(index),
                    None,
                    self.answer.completion_tokens * n,
                );
                event(buffer, &chunk);
            });
        }
        script.terminal(|buffer| {
            let chunk = self.chunk(
                |_| vec![PartOut::text("")],
                Some(finish_reason(self.answer.finish)),
                self.answer.completion_tokens * n,
            );
            event(buffer, &chunk);
        });
    }

    /// The whole answer as one response.
    fn whole(&self) -> ResponseOut<'_> {
        let completion = self.answer.completion_tokens * u64::from(self.candidates);
        match self.withheld {
            Some(Withheld::Prompt) => ResponseOut {
                candidates: Vec::new(),
                prompt_feedback: Some(PromptFeedback {
                    block_reason: "SAFETY",
                    safety_ratings: &RATINGS,
                }),
                usage_metadata: self.usage(0),
                model_version: self.model,
                response_id: &self.response_id,
            },
            Some(Withheld::Answer) => ResponseOut {
                candidates: (0..self.candidates)
                    .map(|index| Candidate {
                        content: None,
                        finish_reason: Some("SAFETY"),
                        safety_ratings: Some(&RATINGS),
                        index,
                    })
                    .collect(),
                prompt_feedback: None,
                usage_metadata: self.usage(0),
                model_version: self.model,
                response_id: &self.response_id,
            },
            None => self.chunk(
                |index| {
                    let mut parts = Vec::with_capacity(1 + self.answer.tool_calls.len());
                    if let Some(thought) = &self.thought {
                        parts.push(PartOut::thought(&thought.content));
                    }
                    if let Some(text) = &self.answer.text {
                        parts.push(PartOut::text(&text.content));
                    }
                    parts.extend(self.calls(index));
                    parts
                },
                Some(finish_reason(self.answer.finish)),
                completion,
            ),
        }
    }

    /// A response with one candidate per index, each with `parts(index)`.
    fn chunk<'s>(
        &'s self,
        parts: impl Fn(u32) -> Vec<PartOut<'s>>,
        finish_reason: Option<&'static str>,
        candidates_tokens: u64,
    ) -> ResponseOut<'s> {
        ResponseOut {
            candidates: (0..self.candidates)
                .map(|index| Candidate {
                    content: Some(ContentOut {
                        parts: parts(index),
                        role: "model",
                    }),
                    finish_reason,
                    safety_ratings: None,
                    index,
                })
                .collect(),
            prompt_feedback: None,
            usage_metadata: self.usage(candidates_tokens),
            model_version: self.model,
            response_id: &self.response_id,
        }
    }

    /// The function call parts of candidate `index`.
    fn calls(&self, index: u32) -> Vec<PartOut<'_>> {
        let ids = self.call_ids.get(index as usize).into_iter().flatten();
        self.answer
            .tool_calls
            .iter()
            .zip(ids)
            .map(|(call, id)| PartOut::FunctionCall {
                function_call: FunctionCallOut {
                    name: &call.name,
                    args: &call.arguments,
                    id,
                },
            })
            .collect()
    }

    fn usage(&self, candidates_tokens: u64) -> UsageMetadata {
        let prompt_tokens = self.prompt.total();
        let mut prompt_tokens_details = vec![ModalityTokenCount {
            modality: "TEXT",
            token_count: self.prompt.text,
        }];
        if self.prompt.media > 0 {
            prompt_tokens_details.push(ModalityTokenCount {
                modality: "IMAGE",
                token_count: self.prompt.media,
            });
        }
        let cache_tokens_details = if self.cached_tokens > 0 {
            vec![ModalityTokenCount {
                modality: "TEXT",
                token_count: self.cached_tokens,
            }]
        } else {
            Vec::new()
        };
        UsageMetadata {
            prompt_token_count: prompt_tokens,
            candidates_token_count: candidates_tokens,
            total_token_count: prompt_tokens + candidates_tokens + self.thoughts_tokens,
            cached_content_token_count: self.cached_tokens,
            prompt_tokens_details,
            cache_tokens_details,
            thoughts_token_count: self.thoughts_tokens,
        }
    }
}

/// The wire finish reason. Gemini has no finish reason for function calls: they end `STOP`.
fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop | Finish::ToolCalls => "STOP",
        Finish::Length => "MAX_TOKENS",
        Finish::ContentFilter => "SAFETY",
    }
}

/// `data: <json>\r\n\r\n`: Google's event stream ends its lines with CRLF.
fn event(buffer: &mut Vec<u8>, response: &ResponseOut<'_>) {
    buffer.extend_from_slice(b"data: ");
    write_json(buffer, response);
    buffer.extend_from_slice(b"\r\n\r\n");
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

fn is_false(value: &bool) -> bool {
    !*value
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    candidates: Vec<Candidate<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_feedback: Option<PromptFeedback>,
    usage_metadata: UsageMetadata,
    model_version: &'a str,
    response_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<ContentOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    safety_ratings: Option<&'static [SafetyRating]>,
    index: u32,
}

#[derive(Serialize)]
struct ContentOut<'a> {
    parts: Vec<PartOut<'a>>,
    role: &'static str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum PartOut<'a> {
    Text {
        text: &'a str,
        #[serde(skip_serializing_if = "is_false")]
        thought: bool,
    },
    FunctionCall {
        #[serde(rename = "functionCall")]
        function_call: FunctionCallOut<'a>,
    },
}

impl<'a> PartOut<'a> {
    fn text(text: &'a str) -> Self {
        Self::Text {
            text,
            thought: false,
        }
    }

    fn thought(text: &'a str) -> Self {
        Self::Text {
            text,
            thought: true,
        }
    }
}

#[derive(Serialize)]
struct FunctionCallOut<'a> {
    name: &'a str,
    args: &'a Value,
    id: &'a str,
}

#[derive(Debug, Serialize)]
struct SafetyRating {
    category: &'static str,
    probability: &'static str,
    #[serde(skip_serializing_if = "is_false")]
    blocked: bool,
}

impl SafetyRating {
    const fn negligible(category: &'static str) -> Self {
        Self {
            category,
            probability: "NEGLIGIBLE",
            blocked: false,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: &'static str,
    safety_ratings: &'static [SafetyRating],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    prompt_token_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    candidates_token_count: u64,
    total_token_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    cached_content_token_count: u64,
    prompt_tokens_details: Vec<ModalityTokenCount>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cache_tokens_details: Vec<ModalityTokenCount>,
    #[serde(skip_serializing_if = "is_zero")]
    thoughts_token_count: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ModalityTokenCount {
    modality: &'static str,
    token_count: u64,
}

#[cfg(test)]
mod tests;
