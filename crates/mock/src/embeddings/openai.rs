//! `POST /v1/embeddings`: OpenAI's embeddings endpoint, with the chat route's authentication,
//! options and error shapes (<https://platform.openai.com/docs/api-reference/embeddings>).

use axum::extract::{Request, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::vector::{self, DEFAULT_DIMENSIONS, MAX_DIMENSIONS};
use crate::behaviour::text::words;
use crate::openai::{invalid, read_json, status_fault};
use crate::options::{Fault, Options};
use crate::{Shared, ids, reply};

/// Most inputs one request may hold.
const MAX_INPUTS: usize = 2048;

/// OpenAI's answer to an `input` of a shape it does not take.
const INVALID_INPUT: &str = "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.";

/// Answers one embeddings request.
pub(crate) async fn create(State(state): State<Shared>, request: Request) -> Response {
    state.counters.request();
    let (parts, body) = request.into_parts();
    let (request, _) = match read_json::<EmbeddingsRequest>(&parts.headers, body).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let Some(model) = request.model.as_deref() else {
        return invalid("you must provide a model parameter", Some("model"));
    };
    let Some(input) = request.input else {
        return invalid("'input' is a required property", Some("input"));
    };
    let Some(inputs) = inputs(input) else {
        return invalid(INVALID_INPUT, None);
    };
    if inputs.len() > MAX_INPUTS {
        return invalid(
            &format!(
                "Invalid 'input': array too long. Expected an array with maximum length \
                 {MAX_INPUTS}, but got an array with length {} instead.",
                inputs.len()
            ),
            Some("input"),
        );
    }
    let base64 = match request.encoding_format.as_ref() {
        None | Some(Value::Null) => false,
        Some(Value::String(format)) if format == "float" => false,
        Some(Value::String(format)) if format == "base64" => true,
        Some(other) => {
            return invalid(
                &format!(
                    "Invalid value for 'encoding_format': expected 'float' or 'base64', got \
                     {other}."
                ),
                Some("encoding_format"),
            );
        }
    };
    let dimensions = match request.dimensions.as_ref() {
        None | Some(Value::Null) => DEFAULT_DIMENSIONS,
        Some(value) => match value.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n @ 1..=MAX_DIMENSIONS) => n,
            _ => {
                return invalid(
                    &format!(
                        "Invalid 'dimensions': expected an integer from 1 to {MAX_DIMENSIONS}, \
                         got {value}."
                    ),
                    Some("dimensions"),
                );
            }
        },
    };
    let options = match Options::parse(model, &parts.headers) {
        Ok(options) => options,
        Err(error) => return invalid(&error.to_string(), Some("model")),
    };

    if let Some(response) = super::transport_fault(&state, &options).await {
        return response;
    }
    if let Some(Fault::Status(status)) = options.fail {
        return status_fault(status, model, &options);
    }
    let mut prompt_tokens = 0;
    let data = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let vector = match input {
                Input::Text(text) => {
                    prompt_tokens += words(text);
                    vector::of_text(text, dimensions)
                }
                Input::Tokens(ids) => {
                    prompt_tokens += ids.len() as u64;
                    vector::of_tokens(ids, dimensions)
                }
            };
            Datum {
                object: "embedding",
                index,
                embedding: if base64 {
                    Embedding::Base64(vector::base64(&vector))
                } else {
                    Embedding::Floats(vector)
                },
            }
        })
        .collect();
    let mut body = Vec::with_capacity(256);
    reply::write_json(
        &mut body,
        &List {
            object: "list",
            data,
            model,
            usage: Usage {
                prompt_tokens,
                total_tokens: prompt_tokens,
            },
        },
    );
    let mut response = super::answer(&options, body);
    reply::insert(&mut response, "x-request-id", &ids::new("req_", 32));
    if let Some(remaining) = options.ratelimit_remaining {
        reply::insert(&mut response, "x-ratelimit-limit-requests", "100");
        reply::insert(
            &mut response,
            "x-ratelimit-remaining-requests",
            &remaining.to_string(),
        );
    }
    response
}

/// The fields the mock reads, each as any JSON so a wrong type gets OpenAI's message rather
/// than serde's.
#[derive(Debug, Deserialize)]
struct EmbeddingsRequest {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    input: Option<Value>,
    #[serde(default)]
    encoding_format: Option<Value>,
    #[serde(default)]
    dimensions: Option<Value>,
}

/// One input: a text or its token ids.
#[derive(Debug)]
enum Input {
    Text(String),
    Tokens(Vec<u32>),
}

/// `input` in one of its four shapes, `None` for anything else: an empty string or array, an
/// empty text among texts, mixed items, ids that are not 32-bit unsigned integers.
fn inputs(input: Value) -> Option<Vec<Input>> {
    let token = |value: &Value| value.as_u64().and_then(|id| u32::try_from(id).ok());
    let tokens = |values: &[Value]| -> Option<Vec<u32>> {
        (!values.is_empty())
            .then(|| values.iter().map(token).collect())
            .flatten()
    };
    match input {
        Value::String(text) if !text.is_empty() => Some(vec![Input::Text(text)]),
        Value::Array(items) => match items.first()? {
            Value::String(_) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(text) if !text.is_empty() => Some(Input::Text(text)),
                    _ => None,
                })
                .collect(),
            Value::Number(_) => Some(vec![Input::Tokens(tokens(&items)?)]),
            Value::Array(_) => items
                .iter()
                .map(|item| Some(Input::Tokens(tokens(item.as_array()?)?)))
                .collect(),
            _ => None,
        },
        _ => None,
    }
}

#[derive(Serialize)]
struct List<'a> {
    object: &'static str,
    data: Vec<Datum>,
    model: &'a str,
    usage: Usage,
}

#[derive(Serialize)]
struct Datum {
    object: &'static str,
    index: usize,
    embedding: Embedding,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Embedding {
    Floats(Vec<f32>),
    Base64(String),
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: u64,
    total_tokens: u64,
}
