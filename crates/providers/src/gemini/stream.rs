//! Gemini streams (`streamGenerateContent?alt=sse`) into canonical stream events.
//!
//! Each SSE `data:` is a whole `GenerateContentResponse` fragment: new text per candidate,
//! function calls that arrive whole, a `finishReason` on a candidate's last chunk and
//! `usageMetadata` that is cumulative (often repeated on every chunk). There is no end
//! marker: the stream is complete once a candidate has finished.
//! <https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent>

use switchyard_types::{ApiError, ChatRequest, Delta, ErrorKind, StreamEvent, Usage};

use super::error;
use super::response::{
    Piece, WireResponse, answers_by_tool, blocked, finish_reason, generated_id, index,
    tool_call_id, unix_now,
};
use crate::sse::{SseEvent, SseParser};

/// Reads an upstream Gemini event stream into canonical events, whatever the chunk
/// boundaries.
#[derive(Debug)]
pub struct Decoder {
    parser: SseParser,
    /// Scratch space for the events of one chunk, kept to reuse its allocation.
    events: Vec<SseEvent>,
    /// Reported as the model when the stream names none.
    model: String,
    /// The response id, once `Start` was emitted; also the base of generated tool-call ids.
    id: Option<String>,
    /// What is known of each candidate seen so far.
    candidates: Vec<CandidateState>,
    /// Some candidate reported its finish reason: the answer is complete.
    finished: bool,
    /// The counts last emitted; repeated counts are not emitted again.
    usage: Option<Usage>,
    /// The request's schema-shaped answer was asked for as a call (`answers_by_tool`).
    json_mode: bool,
}

/// Progress of one candidate.
#[derive(Debug)]
struct CandidateState {
    /// The candidate's index (the canonical choice).
    index: u32,
    /// Function calls so far (canonical tool-call indexes count per choice).
    tool_calls: u32,
    /// Its `finishReason` arrived.
    finished: bool,
}

impl Decoder {
    /// A decoder for the answer to `request`.
    pub fn new(request: &ChatRequest) -> Decoder {
        Decoder {
            parser: SseParser::new(),
            events: Vec::new(),
            model: request.model.clone(),
            id: None,
            candidates: Vec::new(),
            finished: false,
            usage: None,
            json_mode: answers_by_tool(request),
        }
    }

    /// Bytes held for an event (or frame) not yet complete.
    pub fn pending(&self) -> usize {
        self.parser.pending()
    }

    /// Feeds raw upstream bytes (cut anywhere), appending canonical events to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        self.parser.push(chunk, &mut self.events);
        let events = std::mem::take(&mut self.events);
        let result = events.iter().try_for_each(|event| self.handle(event, out));
        self.events = events;
        self.events.clear();
        result
    }

    /// The upstream body ended; an error unless some candidate finished.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        if self.parser.has_pending() {
            // Be lenient with a last event that lacks its blank line; a truncated one is
            // reported as the early end it is.
            let mut events = Vec::new();
            self.parser.push(b"\n\n", &mut events);
            for event in &events {
                match self.handle(event, out) {
                    Ok(()) => {}
                    Err(error) if error.kind == ErrorKind::BadGateway => break,
                    Err(error) => return Err(error),
                }
            }
        }
        if self.finished {
            return Ok(());
        }
        Err(ApiError::upstream(
            ErrorKind::BadGateway,
            "the upstream Gemini stream ended before it was complete",
        )
        .with_code("upstream_stream_cut"))
    }

    fn handle(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(());
        }
        let chunk: WireResponse = serde_json::from_str(data).map_err(|error| {
            ApiError::upstream(
                ErrorKind::BadGateway,
                format!(
                    "malformed chunk from upstream Gemini (line {}, column {})",
                    error.line(),
                    error.column()
                ),
            )
            .with_code("upstream_malformed_chunk")
        })?;
        if let Some(error) = chunk.error {
            return Err(error::in_body(error));
        }
        if let Some(error) = blocked(&chunk) {
            return Err(error);
        }
        let response_id = match &self.id {
            Some(id) => id.clone(),
            None => {
                let id = chunk.response_id.unwrap_or_else(generated_id);
                out.push(StreamEvent::Start {
                    id: id.clone(),
                    model: chunk.model_version.unwrap_or_else(|| self.model.clone()),
                    created: unix_now(),
                    system_fingerprint: None,
                });
                self.id = Some(id.clone());
                id
            }
        };
        for (position, candidate) in chunk.candidates.into_iter().enumerate() {
            let choice = candidate.index.unwrap_or_else(|| index(position));
            let state = state(&mut self.candidates, choice);
            let parts = candidate.content.map(|content| content.parts);
            for part in parts.into_iter().flatten() {
                for piece in part.into_pieces() {
                    piece_events(piece.answered(self.json_mode), state, &response_id, out);
                }
            }
            if let Some(reason) = candidate.finish_reason
                && !state.finished
            {
                state.finished = true;
                self.finished = true;
                out.push(StreamEvent::Finish {
                    choice,
                    reason: finish_reason(&reason, state.tool_calls > 0),
                    stop_sequence: None,
                });
            }
        }
        if let Some(usage) = chunk.usage_metadata {
            let usage = usage.to_canonical();
            if self.usage != Some(usage) {
                self.usage = Some(usage);
                out.push(StreamEvent::Usage(usage));
            }
        }
        Ok(())
    }
}

/// The state of candidate `index`, created on first sight.
fn state(candidates: &mut Vec<CandidateState>, index: u32) -> &mut CandidateState {
    let position = match candidates.iter().position(|state| state.index == index) {
        Some(position) => position,
        None => {
            candidates.push(CandidateState {
                index,
                tool_calls: 0,
                finished: false,
            });
            candidates.len() - 1
        }
    };
    &mut candidates[position]
}

/// The deltas of one piece of a candidate's part.
fn piece_events(
    piece: Piece,
    state: &mut CandidateState,
    response_id: &str,
    out: &mut Vec<StreamEvent>,
) {
    let choice = state.index;
    let mut delta = |delta: Delta| out.push(StreamEvent::Delta { choice, delta });
    match piece {
        Piece::Thought { text, signature } => {
            if !text.is_empty() {
                delta(Delta::Thinking(text));
            }
            if let Some(signature) = signature {
                delta(Delta::ThinkingSignature(signature));
            }
        }
        Piece::Signature(signature) => delta(Delta::ThinkingSignature(signature)),
        Piece::Text(text) => delta(Delta::Text(text)),
        Piece::Call {
            id,
            name,
            arguments,
        } => {
            let index = state.tool_calls;
            state.tool_calls += 1;
            let id = id.unwrap_or_else(|| tool_call_id(response_id, index as usize));
            delta(Delta::ToolCallStart { index, id, name });
            delta(Delta::ToolCallArgs { index, arguments });
        }
    }
}

#[cfg(test)]
mod tests;
