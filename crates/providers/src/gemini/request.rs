//! The body of a Gemini `generateContent` call, built from a canonical request of any dialect.
//!
//! Gemini's rules met here: system and developer messages become `systemInstruction`; turns
//! alternate between `user` and `model` (consecutive turns of one role merge, which also puts
//! consecutive tool results into one turn); a tool result is a `functionResponse` that names
//! the function, found from the call it answers; function declarations take Gemini's OpenAPI
//! subset of JSON Schema (`schema`); thought signatures go back on the parts Gemini put them
//! on. Fields of another dialect ([`Extra`](switchyard_types::Extra)), `user` and `metadata`
//! have no Gemini equivalent and are dropped.
//! <https://ai.google.dev/api/generate-content#request-body>

use serde_json::{Map, Value, json};
use switchyard_types::{
    ApiError, ChatRequest, ContentPart, ImageSource, Message, ResponseFormat, Role, Tool,
    ToolChoice,
};

use crate::answer::{JSON_OBJECT_INSTRUCTION, JSON_TOOL};
use crate::reasoning;
use crate::turns::Turns;

mod schema;

/// The signature Google documents for function calls it did not sign itself: calls from
/// another provider's turn, or from a client whose dialect has nowhere to keep Gemini's
/// signature. Gemini 3 rejects a function call of the current turn that carries none.
/// <https://ai.google.dev/gemini-api/docs/thought-signatures>
const SKIP_SIGNATURE_VALIDATOR: &str = "skip_thought_signature_validator";

/// Builds the body for a Gemini upstream (the model is in the URL, not the body; `model` says
/// how it takes thinking).
pub fn encode(request: &ChatRequest, model: &str) -> Result<Vec<u8>, ApiError> {
    // Gemini refuses a JSON response type together with function calling: with tools, a
    // schema is asked for as a call to one more function and a JSON object in the system
    // instruction, as the Anthropic and Bedrock paths do.
    let json_by_tool = !request.tools.is_empty() && request.response_format.is_some();
    let mut body = Map::new();
    body.insert(
        "contents".into(),
        Value::Array(encode_contents(&request.messages)?),
    );
    let asks_json_object =
        json_by_tool && request.response_format == Some(ResponseFormat::JsonObject);
    if let Some(system) = encode_system(&request.messages, asks_json_object) {
        body.insert("systemInstruction".into(), system);
    }
    if !request.tools.is_empty() {
        let mut declarations = request
            .tools
            .iter()
            .enumerate()
            .map(|(i, tool)| encode_tool(tool, i))
            .collect::<Result<Vec<_>, _>>()?;
        let mut choice = request.tool_choice.as_ref().map(function_calling_config);
        if let Some(ResponseFormat::JsonSchema {
            description,
            schema,
            ..
        }) = &request.response_format
        {
            let tool = Tool {
                name: JSON_TOOL.into(),
                description: Some(description.clone().unwrap_or_else(|| {
                    "Respond with the answer, a JSON value following this schema.".into()
                })),
                parameters: schema.clone(),
                strict: None,
                cache_control: None,
            };
            declarations.push(encode_tool(&tool, declarations.len())?);
            // The answer must be either a call to one of the client's functions or the JSON; a
            // client that named a function keeps it, one that allowed no call gets the JSON.
            choice = Some(match &request.tool_choice {
                Some(ToolChoice::Tool(name)) => {
                    json!({"mode": "ANY", "allowedFunctionNames": [name]})
                }
                Some(ToolChoice::None) => {
                    json!({"mode": "ANY", "allowedFunctionNames": [JSON_TOOL]})
                }
                _ => json!({"mode": "ANY"}),
            });
        }
        body.insert(
            "tools".into(),
            json!([{"functionDeclarations": declarations}]),
        );
        if let Some(choice) = choice {
            body.insert(
                "toolConfig".into(),
                json!({"functionCallingConfig": choice}),
            );
        }
    }
    let config = generation_config(request, model, json_by_tool)?;
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    Ok(Value::Object(body).to_string().into_bytes())
}

/// Every system and developer message, wherever it is, as one `systemInstruction`, and the
/// instruction to answer in JSON when `asks_json_object`.
fn encode_system(messages: &[Message], asks_json_object: bool) -> Option<Value> {
    let mut parts: Vec<Value> = messages
        .iter()
        .filter(|message| matches!(message.role, Role::System | Role::Developer))
        .flat_map(|message| &message.content)
        .filter_map(|part| match part {
            ContentPart::Text { text, .. } if !text.is_empty() => Some(json!({"text": text})),
            _ => None,
        })
        .collect();
    if asks_json_object {
        parts.push(json!({"text": JSON_OBJECT_INSTRUCTION}));
    }
    (!parts.is_empty()).then(|| json!({"parts": parts}))
}
/// The conversation as alternating `user` and `model` turns.
fn encode_contents(messages: &[Message]) -> Result<Vec<Value>, ApiError> {
    let mut turns = Turns::default();
    for (i, message) in messages.iter().enumerate() {
        match message.role {
            Role::System | Role::Developer => {}
            Role::User => turns.push(
                "user",
                message.content.iter().filter_map(user_part).collect(),
            ),
            Role::Assistant => turns.push("model", model_parts(message, i)?),
            Role::Tool => turns.push("user", tool_result_parts(messages, message, i)?),
        }
    }
    Ok(turns
        .finish(|part| part.get("functionResponse").is_some())
        .map(|(role, parts)| json!({"role": role, "parts": parts}))
        .collect())
}

/// A user message's part; thinking is the model's own and never sent as the user's.
fn user_part(part: &ContentPart) -> Option<Value> {
    match part {
        ContentPart::Text { text, .. } => (!text.is_empty()).then(|| json!({"text": text})),
        ContentPart::Image { source, .. } => Some(image_part(source)),
        ContentPart::Thinking { .. }
        | ContentPart::RedactedThinking { .. }
        | ContentPart::Opaque { .. } => None,
    }
}

/// An assistant message as the parts of a `model` turn.
///
/// Signed thinking with text goes back as a thought part. A signature with empty text is one
/// Gemini put on a text or function-call part (see [`super::response`]): it goes back onto
/// the first function call, where Gemini 3 validates it, or else onto the last text part,
/// where Gemini puts the signature of an answer without calls. Unsigned thinking is dropped:
/// Gemini reads nothing from it.
fn model_parts(message: &Message, i: usize) -> Result<Vec<Value>, ApiError> {
    let mut parts = Vec::with_capacity(message.content.len() + message.tool_calls.len());
    let mut bare_signatures = Vec::new();
    for part in &message.content {
        match part {
            ContentPart::Text { text, .. } if !text.is_empty() => {
                parts.push(json!({"text": text}));
            }
            ContentPart::Image { source, .. } => parts.push(image_part(source)),
            ContentPart::Thinking {
                text,
                signature: Some(signature),
            } if !signature.is_empty() => {
                if text.is_empty() {
                    bare_signatures.push(signature.as_str());
                } else {
                    parts.push(
                        json!({"text": text, "thought": true, "thoughtSignature": signature}),
                    );
                }
            }
            ContentPart::Text { .. }
            | ContentPart::Thinking { .. }
            | ContentPart::RedactedThinking { .. }
            | ContentPart::Opaque { .. } => {}
        }
    }
    if message.tool_calls.is_empty() {
        if let Some(signature) = bare_signatures.last()
            && let Some(Value::Object(last_text)) = parts
                .iter_mut()
                .rev()
                .find(|part| part.get("text").is_some() && part.get("thought").is_none())
        {
            last_text.insert("thoughtSignature".into(), (*signature).into());
        }
        return Ok(parts);
    }
    for (j, call) in message.tool_calls.iter().enumerate() {
        let args = call_arguments(&call.arguments).ok_or_else(|| {
            invalid(
                format!(
                    "messages[{i}]: the arguments of tool call `{}` are not a JSON object",
                    call.id
                ),
                format!("messages[{i}].tool_calls[{j}].function.arguments"),
            )
        })?;
        let mut part = Map::new();
        part.insert(
            "functionCall".into(),
            json!({"name": call.name, "args": args}),
        );
        // Of parallel calls, Gemini signs only the first.
        if j == 0 {
            let signature = bare_signatures
                .first()
                .copied()
                .unwrap_or(SKIP_SIGNATURE_VALIDATOR);
            part.insert("thoughtSignature".into(), signature.into());
        }
        parts.push(Value::Object(part));
    }
    Ok(parts)
}

/// A tool message as a `functionResponse` part (plus its images, which have no place inside
/// the response object). Gemini matches a response to its call by the function's name, which
/// the canonical tool message lacks: it comes from the latest earlier call with the same id.
fn tool_result_parts(
    messages: &[Message],
    message: &Message,
    i: usize,
) -> Result<Vec<Value>, ApiError> {
    let id = message.tool_call_id.as_deref().ok_or_else(|| {
        invalid(
            format!("messages[{i}]: a tool message needs the tool_call_id of the call it answers"),
            format!("messages[{i}].tool_call_id"),
        )
    })?;
    let name = messages
        .get(..i)
        .unwrap_or_default()
        .iter()
        .rev()
        .filter(|earlier| earlier.role == Role::Assistant)
        .flat_map(|earlier| &earlier.tool_calls)
        .find(|call| call.id == id)
        .map(|call| call.name.as_str())
        .ok_or_else(|| {
            invalid(
                format!(
                    "messages[{i}]: no earlier assistant message has a tool call with id `{id}`; \
                     Gemini needs the name of the function a tool result answers"
                ),
                format!("messages[{i}].tool_call_id"),
            )
        })?;
    let text = message.text();
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(object @ Value::Object(_)) => object,
        // Google's convention for a failed call is an `error` key.
        _ if message.is_error => json!({"error": text}),
        _ => json!({"content": text}),
    };
    let mut parts = vec![json!({"functionResponse": {"name": name, "response": response}})];
    for part in &message.content {
        if let ContentPart::Image { source, .. } = part {
            parts.push(image_part(source));
        }
    }
    Ok(parts)
}

/// Tool-call arguments as the object `functionCall.args` must be; an empty string means none.
fn call_arguments(arguments: &str) -> Option<Value> {
    if arguments.trim().is_empty() {
        return Some(Value::Object(Map::new()));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(value @ Value::Object(_)) => Some(value),
        _ => None,
    }
}

/// Inline data as `inlineData`; a URL as `fileData`, whose MIME type Gemini requires.
fn image_part(source: &ImageSource) -> Value {
    match source {
        ImageSource::Base64 { media_type, data } => {
            json!({"inlineData": {"mimeType": media_type, "data": data}})
        }
        ImageSource::Url(url) => {
            json!({"fileData": {"mimeType": guess_mime_type(url), "fileUri": url}})
        }
    }
}

/// The MIME type a URL's extension suggests; `image/jpeg` when it suggests none.
fn guess_mime_type(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let file = path.rsplit('/').next().unwrap_or(path);
    let extension = file
        .rsplit_once('.')
        .map(|(_, extension)| extension.to_ascii_lowercase());
    match extension.as_deref() {
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        Some("heic") => "image/heic",
        Some("heif") => "image/heif",
        Some("pdf") => "application/pdf",
        _ => "image/jpeg",
    }
}

fn encode_tool(tool: &Tool, i: usize) -> Result<Value, ApiError> {
    let mut out = Map::new();
    out.insert("name".into(), tool.name.clone().into());
    if let Some(description) = &tool.description {
        out.insert("description".into(), description.clone().into());
    }
    match schema::parameters(&tool.parameters, &tool.name, i)? {
        Some(schema::Declared::Parameters(parameters)) => {
            out.insert("parameters".into(), parameters);
        }
        Some(schema::Declared::JsonSchema(schema)) => {
            out.insert("parametersJsonSchema".into(), schema);
        }
        None => {}
    }
    Ok(Value::Object(out))
}

fn function_calling_config(choice: &ToolChoice) -> Value {
    match choice {
        ToolChoice::Auto => json!({"mode": "AUTO"}),
        ToolChoice::None => json!({"mode": "NONE"}),
        ToolChoice::Required => json!({"mode": "ANY"}),
        ToolChoice::Tool(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
    }
}

/// `generationConfig`: sampling, limits, the answer's format (unless `json_by_tool` asks for
/// it otherwise) and thinking.
fn generation_config(
    request: &ChatRequest,
    model: &str,
    json_by_tool: bool,
) -> Result<Map<String, Value>, ApiError> {
    let mut config = Map::new();
    if let Some(temperature) = request.temperature {
        config.insert("temperature".into(), temperature.into());
    }
    if let Some(top_p) = request.top_p {
        config.insert("topP".into(), top_p.into());
    }
    if let Some(top_k) = request.top_k {
        config.insert("topK".into(), top_k.into());
    }
    if let Some(max_tokens) = request.max_tokens {
        config.insert("maxOutputTokens".into(), max_tokens.into());
    }
    if !request.stop.is_empty() {
        config.insert("stopSequences".into(), request.stop.clone().into());
    }
    if let Some(n) = request.n {
        config.insert("candidateCount".into(), n.into());
    }
    if let Some(seed) = request.seed {
        config.insert("seed".into(), seed.into());
    }
    match &request.response_format {
        _ if json_by_tool => {}
        Some(ResponseFormat::JsonObject) => {
            config.insert("responseMimeType".into(), "application/json".into());
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            config.insert("responseMimeType".into(), "application/json".into());
            // `responseJsonSchema` takes JSON Schema as written, unlike `responseSchema`.
            config.insert("responseJsonSchema".into(), schema.clone());
        }
        Some(ResponseFormat::Text) | None => {}
    }
    if let Some(reasoning) = &request.reasoning
        && let Some(thinking) = reasoning::gemini(reasoning, model)?
    {
        config.insert("thinkingConfig".into(), thinking);
    }
    Ok(config)
}

fn invalid(message: impl Into<String>, param: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message, Some(param.into()))
}

#[cfg(test)]
mod tests;
