//! Canonical messages the request tests of every dialect build from.

use switchyard_types::{ContentPart, Message, Role, ToolCall};

/// An assistant turn with `content` and tool calls given as `(id, name, arguments)`.
pub(crate) fn assistant(content: Vec<ContentPart>, calls: &[(&str, &str, &str)]) -> Message {
    Message {
        tool_calls: calls
            .iter()
            .map(|(id, name, arguments)| ToolCall {
                id: (*id).into(),
                name: (*name).into(),
                arguments: (*arguments).into(),
            })
            .collect(),
        ..Message::new(Role::Assistant, content)
    }
}

/// The text result of tool call `id`.
pub(crate) fn tool_result(id: &str, text: &str) -> Message {
    Message {
        tool_call_id: Some(id.into()),
        ..Message::new(Role::Tool, vec![ContentPart::text(text)])
    }
}
