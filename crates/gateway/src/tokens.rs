//! Prompt token counting, for the context-window check before a call.
//!
//! Counts with OpenAI's `o200k_base` encoding (exact for current OpenAI models, a close estimate
//! for others) plus the per-message overhead of the chat format. Counting is skipped when the
//! prompt's byte length already proves it fits: a token is at least one byte.

use switchyard_types::{ChatRequest, ContentPart};

/// Tokens the chat format adds per message (role and separators) and per request.
const PER_MESSAGE: u64 = 3;
const PER_REQUEST: u64 = 3;

/// Loads the encoding now (a fraction of a second, once per process) rather than during the
/// first request that needs a count.
pub fn warm() {
    let _ = tiktoken_rs::o200k_base_singleton();
}

/// An upper bound on the prompt's tokens that costs nothing: its text bytes plus overheads.
pub fn upper_bound(request: &ChatRequest) -> u64 {
    let mut bytes = overhead(request);
    visit(request, |text| bytes += text.len() as u64);
    bytes
}

/// Counts running at once, over the process: counting a long prompt takes a core for a
/// while (a 10 MiB prompt without spaces, seconds), and more of them than cores would only
/// queue in the blocking pool.
fn counting() -> &'static tokio::sync::Semaphore {
    static COUNTING: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    COUNTING.get_or_init(|| {
        tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        )
    })
}

/// [`count`] off the worker thread (on the blocking pool, at most one count per core at a
/// time), so a long prompt does not stall every other request on the worker. The request is
/// lent to the counting thread and handed back with its count.
pub async fn count_off_worker(request: Box<ChatRequest>) -> (Box<ChatRequest>, Option<u64>) {
    let Ok(_permit) = counting().acquire().await else {
        return (request, None);
    };
    match tokio::task::spawn_blocking(move || {
        let tokens = count(&request);
        (request, tokens)
    })
    .await
    {
        Ok((request, tokens)) => (request, Some(tokens)),
        // The counting thread panicked: the request went with it.
        Err(_) => (Box::default(), None),
    }
}

/// The prompt's tokens.
pub fn count(request: &ChatRequest) -> u64 {
    let encoding = tiktoken_rs::o200k_base_singleton();
    let mut tokens = overhead(request);
    visit(request, |text| {
        tokens += encoding.encode_ordinary(text).len() as u64;
    });
    tokens
}

fn overhead(request: &ChatRequest) -> u64 {
    PER_REQUEST + PER_MESSAGE * request.messages.len() as u64
}

/// Calls `text` for every piece of prompt text (messages, tool calls, tool definitions).
fn visit(request: &ChatRequest, mut text: impl FnMut(&str)) {
    for each in &request.messages {
        for part in &each.content {
            match part {
                ContentPart::Text { text: body, .. } | ContentPart::Thinking { text: body, .. } => {
                    text(body);
                }
                ContentPart::Image { .. }
                | ContentPart::RedactedThinking { .. }
                | ContentPart::Opaque { .. } => {}
            }
        }
        for call in &each.tool_calls {
            text(&call.name);
            text(&call.arguments);
        }
    }
    for tool in &request.tools {
        text(&tool.name);
        if let Some(description) = &tool.description {
            text(description);
        }
        text(&tool.parameters.to_string());
    }
}

#[cfg(test)]
mod tests {
    use switchyard_types::{Message, Role};

    use super::*;

    fn request(text: &str) -> ChatRequest {
        ChatRequest {
            messages: vec![
                Message::text_message(Role::System, "You are terse."),
                Message::text_message(Role::User, text),
            ],
            ..ChatRequest::default()
        }
    }

    #[test]
    fn counts_text_with_the_chat_overhead() {
        // "hello world" is 2 tokens in o200k_base; "You are terse." is 4.
        assert_eq!(
            count(&request("hello world")),
            2 + 4 + 2 * PER_MESSAGE + PER_REQUEST
        );
    }

    #[test]
    fn the_byte_bound_is_never_below_the_count() {
        for text in [
            "hello world",
            "日本語のテキスト",
            &"word ".repeat(500),
            "🚀🎉",
        ] {
            let request = request(text);
            assert!(upper_bound(&request) >= count(&request), "{text}");
        }
    }
}
