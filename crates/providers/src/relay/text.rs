//! What a reader of a relayed stream (an output guard) needs of each event: the text it
//! carries (a choice's answer, its refusal, a tool call's arguments), the choices it ends a
//! part of, and, for a reader that ends the stream early, what the client has been sent.
//!
//! The events still go out as the upstream wrote them; one whose text a reader changes is
//! written again with only that text replaced ([`rewrite`]).

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use switchyard_types::WireFormat;

use crate::json::scan;
use crate::sse::{SseEvent, SseParser, write_event};

/// Which text of a choice a piece is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextPart {
    /// The answer's text.
    Text,
    /// OpenAI's refusal.
    Refusal,
    /// A tool call's arguments: OpenAI's tool-call index, Anthropic's content block index.
    Arguments(u32),
}

/// Text one event carries for one part of one choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The choice (0 for Anthropic).
    pub choice: u32,
    /// Which of its texts.
    pub part: TextPart,
    /// The text, unescaped.
    pub text: String,
}

/// One event of a relayed stream, as the relay wrote it for the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mark {
    /// Where its bytes end, from the start of what that call of `Relay::next` appended.
    pub end: usize,
    /// The text it carries.
    pub pieces: Vec<Piece>,
    /// The choices it carries something else for (a finish, a tool call or a content block
    /// starting or ending, thinking): what is held of them may go out before it.
    pub touches: Vec<u32>,
    /// OpenAI: the choices it finishes.
    finishes: Vec<u32>,
    /// Anthropic: the content block it opens or closes.
    block: Block,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Block {
    #[default]
    None,
    Start(u32),
    Stop,
}

impl Mark {
    /// Reads one event's data (already checked to be JSON by the relay). `opaque`: the
    /// Anthropic content blocks so far whose input is not the model's tool call (a server
    /// tool's), one bit each: their input is not read as text, as the decoded path keeps
    /// such blocks whole.
    /// `choices`: an OpenAI chunk's `choices` as the relay's scanner found them (read alone,
    /// rather than the whole chunk again).
    pub(crate) fn read(
        format: WireFormat,
        data: &str,
        choices: Option<&str>,
        end: usize,
        opaque: &mut u64,
    ) -> Mark {
        let mut mark = Mark {
            end,
            ..Mark::default()
        };
        match format {
            WireFormat::OpenAi => mark.read_openai(data, choices),
            WireFormat::Anthropic => mark.read_anthropic(data, opaque),
        }
        mark
    }

    /// Bytes with nothing to read: a keep-alive, `[DONE]`.
    pub(crate) fn plain(end: usize) -> Mark {
        Mark {
            end,
            ..Mark::default()
        }
    }

    fn read_openai(&mut self, data: &str, choices: Option<&str>) {
        #[derive(Deserialize)]
        struct Chunk {
            #[serde(default)]
            choices: Option<Vec<Choice>>,
        }
        #[derive(Deserialize)]
        struct Choice {
            #[serde(default)]
            index: u32,
            #[serde(default)]
            delta: Option<DeltaIn>,
            #[serde(default)]
            finish_reason: Option<IgnoredAny>,
        }
        #[derive(Deserialize)]
        struct DeltaIn {
            #[serde(default)]
            content: Option<String>,
            #[serde(default)]
            refusal: Option<String>,
            #[serde(default)]
            tool_calls: Option<Vec<ToolCallIn>>,
        }
        #[derive(Deserialize)]
        struct ToolCallIn {
            #[serde(default)]
            index: u32,
            #[serde(default)]
            id: Option<IgnoredAny>,
            #[serde(default)]
            function: Option<FunctionIn>,
        }
        #[derive(Deserialize)]
        struct FunctionIn {
            #[serde(default)]
            name: Option<IgnoredAny>,
            #[serde(default)]
            arguments: Option<String>,
        }
        if let Some(text) = choices
            && self.read_one_choice(text).is_some()
        {
            return;
        }
        let choices = match choices {
            Some(text) => serde_json::from_str::<Option<Vec<Choice>>>(text)
                .ok()
                .flatten(),
            None if data.trim() == "[DONE]" => None,
            None => serde_json::from_str::<Chunk>(data)
                .ok()
                .and_then(|chunk| chunk.choices),
        };
        for choice in choices.unwrap_or_default() {
            let index = choice.index;
            if let Some(delta) = choice.delta {
                for (part, text) in [
                    (TextPart::Text, delta.content),
                    (TextPart::Refusal, delta.refusal),
                ] {
                    if let Some(text) = text.filter(|text| !text.is_empty()) {
                        self.pieces.push(Piece {
                            choice: index,
                            part,
                            text,
                        });
                    }
                }
                for call in delta.tool_calls.unwrap_or_default() {
                    let (named, arguments) = match call.function {
                        Some(function) => (function.name.is_some(), function.arguments),
                        None => (false, None),
                    };
                    if call.id.is_some() || named {
                        self.touches.push(index);
                    }
                    if let Some(text) = arguments.filter(|text| !text.is_empty()) {
                        self.pieces.push(Piece {
                            choice: index,
                            part: TextPart::Arguments(call.index),
                            text,
                        });
                    }
                }
            }
            if choice.finish_reason.is_some() {
                self.touches.push(index);
                self.finishes.push(index);
            }
        }
    }

    /// The common case without serde: `choices` holds one choice whose delta has text or a
    /// refusal and no tool calls. `None` (nothing read) for anything else.
    fn read_one_choice(&mut self, choices: &str) -> Option<()> {
        let inner = choices.trim().strip_prefix('[')?.strip_suffix(']')?;
        let [index, delta, finish_reason] =
            scan::members(inner, ["index", "delta", "finish_reason"])?;
        let index = match index {
            None => 0,
            Some(text) => text.parse::<u32>().ok()?,
        };
        let mut pieces = Vec::new();
        if let Some(delta) = delta.filter(|delta| *delta != "null") {
            let [content, refusal, tool_calls] =
                scan::members(delta, ["content", "refusal", "tool_calls"])?;
            if tool_calls.is_some_and(|calls| calls != "null") {
                return None;
            }
            for (part, text) in [(TextPart::Text, content), (TextPart::Refusal, refusal)] {
                match text {
                    None | Some("null") => {}
                    Some(text) => {
                        let text = unquote(text)?;
                        if !text.is_empty() {
                            pieces.push(Piece {
                                choice: index,
                                part,
                                text,
                            });
                        }
                    }
                }
            }
        }
        self.pieces = pieces;
        if finish_reason.is_some_and(|reason| reason != "null") {
            self.touches.push(index);
            self.finishes.push(index);
        }
        Some(())
    }

    fn read_anthropic(&mut self, data: &str, opaque: &mut u64) {
        #[derive(Deserialize)]
        struct Event {
            #[serde(rename = "type")]
            kind: String,
            #[serde(default)]
            index: u32,
            #[serde(default)]
            delta: Option<DeltaIn>,
            #[serde(default)]
            content_block: Option<BlockIn>,
        }
        #[derive(Deserialize)]
        struct BlockIn {
            #[serde(rename = "type")]
            kind: String,
        }
        #[derive(Deserialize)]
        struct DeltaIn {
            #[serde(rename = "type", default)]
            kind: Option<String>,
            #[serde(default)]
            text: Option<String>,
            #[serde(default)]
            partial_json: Option<String>,
        }
        let Ok(event) = serde_json::from_str::<Event>(data) else {
            return;
        };
        match event.kind.as_str() {
            "content_block_delta" => {
                let delta = event.delta.unwrap_or(DeltaIn {
                    kind: None,
                    text: None,
                    partial_json: None,
                });
                let kept_whole = event.index < 64 && *opaque & (1 << event.index) != 0;
                let piece = match delta.kind.as_deref() {
                    Some("text_delta") => delta.text.map(|text| (TextPart::Text, text)),
                    Some("input_json_delta") if !kept_whole => delta
                        .partial_json
                        .map(|text| (TextPart::Arguments(event.index), text)),
                    _ => None,
                };
                match piece {
                    Some((_, text)) if text.is_empty() => {}
                    Some((part, text)) => self.pieces.push(Piece {
                        choice: 0,
                        part,
                        text,
                    }),
                    // Thinking, a signature, a citation: another part of the answer.
                    None => self.touches.push(0),
                }
            }
            "content_block_start" => {
                self.touches.push(0);
                self.block = Block::Start(event.index);
                let tool = event.content_block.is_none_or(|block| {
                    matches!(block.kind.as_str(), "text" | "tool_use" | "thinking")
                });
                if !tool && event.index < 64 {
                    *opaque |= 1 << event.index;
                }
            }
            "content_block_stop" => {
                self.touches.push(0);
                self.block = Block::Stop;
            }
            "message_delta" => self.touches.push(0),
            _ => {}
        }
    }
}

/// A JSON string's text (`None` if it is not a string).
fn unquote(text: &str) -> Option<String> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str(text).ok()
    } else {
        Some(inner.to_owned())
    }
}

/// What the client has been sent of a relayed stream whose reader holds events back: enough
/// to end it in its dialect ([`crate::Relay::write_filtered_end`]).
#[derive(Debug, Clone, Default)]
pub struct Sent {
    /// OpenAI: the choices that got their finish (one bit each, the first 64).
    finished: u64,
    /// Anthropic: the content block open at the client.
    open_block: Option<u32>,
}

impl Sent {
    /// `mark`'s event went out to the client.
    pub fn note(&mut self, mark: &Mark) {
        for choice in &mark.finishes {
            if *choice < 64 {
                self.finished |= 1 << choice;
            }
        }
        match mark.block {
            Block::None => {}
            Block::Start(index) => self.open_block = Some(index),
            Block::Stop => self.open_block = None,
        }
    }

    pub(crate) fn finished(&self, choice: u32) -> bool {
        choice < 64 && self.finished & (1 << choice) != 0
    }

    pub(crate) fn open_block(&self) -> Option<u32> {
        self.open_block
    }
}

/// `event` (its SSE bytes, as the relay wrote them) written again with the texts of
/// `changes` (by choice and part) in place of its own. `None` if it cannot be read (it was
/// read once already, so it can).
pub fn rewrite(
    format: WireFormat,
    event: &[u8],
    changes: &[(u32, TextPart, &str)],
) -> Option<Vec<u8>> {
    let mut parser = SseParser::new();
    let mut events: Vec<SseEvent> = Vec::new();
    parser.push(event, &mut events);
    let [event] = <[SseEvent; 1]>::try_from(events).ok()?;
    let mut data: Value = serde_json::from_str(&event.data).ok()?;
    for (choice, part, text) in changes {
        let slot = match format {
            WireFormat::OpenAi => openai_slot(&mut data, *choice, *part),
            WireFormat::Anthropic => match part {
                TextPart::Text => data.pointer_mut("/delta/text"),
                TextPart::Arguments(_) => data.pointer_mut("/delta/partial_json"),
                TextPart::Refusal => None,
            },
        }?;
        *slot = Value::String((*text).to_owned());
    }
    let mut out = Vec::with_capacity(event.data.len() + 32);
    write_event(
        &mut out,
        event.event.as_deref(),
        serde_json::to_string(&data).ok()?.as_bytes(),
    );
    Some(out)
}

/// Where an OpenAI chunk keeps one part of one choice.
fn openai_slot(data: &mut Value, choice: u32, part: TextPart) -> Option<&mut Value> {
    let choice = data
        .get_mut("choices")?
        .as_array_mut()?
        .iter_mut()
        .find(|entry| {
            entry.get("index").and_then(Value::as_u64).unwrap_or(0) == u64::from(choice)
        })?;
    let delta = choice.get_mut("delta")?;
    match part {
        TextPart::Text => delta.get_mut("content"),
        TextPart::Refusal => delta.get_mut("refusal"),
        TextPart::Arguments(index) => delta
            .get_mut("tool_calls")?
            .as_array_mut()?
            .iter_mut()
            .find(|call| {
                call.get("index").and_then(Value::as_u64).unwrap_or(0) == u64::from(index)
            })?
            .pointer_mut("/function/arguments"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_chunks_give_their_texts_and_what_they_end() {
        let choices = r#"[{"index":1,"delta":{"content":"Hi","refusal":null},"logprobs":{"content":[]},"finish_reason":null},{"index":0,"delta":{"tool_calls":[{"index":2,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\""}}]},"finish_reason":"tool_calls"}]"#;
        let data = format!(r#"{{"id":"c","choices":{choices}}}"#);
        let mark = Mark::read(WireFormat::OpenAi, &data, None, 9, &mut 0);
        // The same from the `choices` the relay's scanner found.
        assert_eq!(
            Mark::read(WireFormat::OpenAi, &data, Some(choices), 9, &mut 0),
            mark
        );
        assert_eq!(mark.end, 9);
        assert_eq!(
            mark.pieces,
            vec![
                Piece {
                    choice: 1,
                    part: TextPart::Text,
                    text: "Hi".into()
                },
                Piece {
                    choice: 0,
                    part: TextPart::Arguments(2),
                    text: "{\"a\"".into()
                },
            ]
        );
        assert_eq!(mark.touches, vec![0, 0]);
        let mut sent = Sent::default();
        sent.note(&mark);
        assert!(sent.finished(0) && !sent.finished(1));
    }

    /// One choice read by the scanner reads as serde reads it.
    #[test]
    fn one_choice_reads_the_same_without_serde() {
        for choices in [
            r#"[{"index":0,"delta":{"content":"Hi \"there\"\n","refusal":null},"logprobs":null,"finish_reason":null}]"#,
            r#"[{"index":2,"delta":{"refusal":"No."},"finish_reason":"stop"}]"#,
            r#"[{"index":0,"delta":{},"finish_reason":"length"}]"#,
            r#"[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]"#,
            r#"[ {"delta":{"content":"é"}} ]"#,
        ] {
            let data = format!(r#"{{"choices":{choices}}}"#);
            let mut fast = Mark::default();
            assert!(fast.read_one_choice(choices).is_some(), "{choices}");
            let mut slow = Mark::default();
            slow.read_openai(&data, None);
            assert_eq!(fast, slow, "{choices}");
        }
        // Tool calls and several choices are left to serde.
        let mut mark = Mark::default();
        assert!(mark.read_one_choice(r#"[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]"#).is_none());
        assert!(
            mark.read_one_choice(r#"[{"index":0,"delta":{}},{"index":1,"delta":{}}]"#)
                .is_none()
        );
    }

    #[test]
    fn anthropic_events_give_their_texts_and_blocks() {
        let mut opaque = 0;
        let mut read = |data: &str| Mark::read(WireFormat::Anthropic, data, None, 0, &mut opaque);
        let text = read(
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hé"}}"#,
        );
        assert_eq!(text.pieces[0].text, "Hé");
        assert!(text.touches.is_empty());
        let args = read(
            r#"{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\"q\":"}}"#,
        );
        assert_eq!(args.pieces[0].part, TextPart::Arguments(3));
        let thinking = read(
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#,
        );
        assert!(thinking.pieces.is_empty());
        assert_eq!(thinking.touches, vec![0]);
        // A server tool's input is not the model's text: kept whole, as decoded answers keep it.
        read(
            r#"{"type":"content_block_start","index":4,"content_block":{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}}"#,
        );
        let query = read(
            r#"{"type":"content_block_delta","index":4,"delta":{"type":"input_json_delta","partial_json":"{\"query\":"}}"#,
        );
        assert!(query.pieces.is_empty());
        let mut sent = Sent::default();
        sent.note(&read(
            r#"{"type":"content_block_start","index":2,"content_block":{"type":"text","text":""}}"#,
        ));
        assert_eq!(sent.open_block(), Some(2));
        sent.note(&read(r#"{"type":"content_block_stop","index":2}"#));
        assert_eq!(sent.open_block(), None);
    }

    #[test]
    fn a_rewritten_event_changes_only_its_text() {
        let event = b"data: {\"id\":\"c\",\"obfuscation\":\"x1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"key sk-1\"},\"finish_reason\":null}]}\n\n";
        let out = rewrite(
            WireFormat::OpenAi,
            event,
            &[(0, TextPart::Text, "key [KEY]")],
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("data: {") && text.ends_with("}\n\n"),
            "{text}"
        );
        let data: Value = serde_json::from_str(text.trim_start_matches("data: ").trim()).unwrap();
        assert_eq!(data["choices"][0]["delta"]["content"], "key [KEY]");
        assert_eq!(data["obfuscation"], "x1");

        let event = b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"sk-1\"}}\n\n";
        let out = rewrite(
            WireFormat::Anthropic,
            event,
            &[(0, TextPart::Arguments(1), "")],
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("event: content_block_delta\ndata: "),
            "{text}"
        );
        assert!(text.contains("\"partial_json\":\"\""), "{text}");
    }
}
