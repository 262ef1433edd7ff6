//! `POST /model/{modelId}/invoke`: Bedrock's `InvokeModel` for the embedding models, signed and
//! verified as Converse is, with the body of the family the model id names
//! (<https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html>):
//!
//! - Amazon Titan Text Embeddings (`amazon.titan-embed-text…`): `{"inputText", "dimensions",
//!   "normalize", "embeddingTypes"}` → `{"embedding", "inputTextTokenCount",
//!   "embeddingsByType"}`.
//! - Cohere Embed (`cohere.embed…`): `{"texts", "input_type", "truncate", "embedding_types",
//!   "output_dimension", "max_tokens"}` → `{"id", "texts", "embeddings", "response_type"}`,
//!   the embeddings an array of vectors (`embeddings_floats`) unless `embedding_types` asks for
//!   them by type (`embeddings_by_type`, `float` only).
//!
//! Like Bedrock, the mock refuses keys a model does not take ("extraneous key"), and reports the
//! input tokens (words) in `x-amzn-bedrock-input-token-count`.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::vector::{self, DEFAULT_DIMENSIONS, MAX_DIMENSIONS};
use super::{model_name, options_model};
use crate::bedrock::error::{forbidden, status_fault, validation};
use crate::bedrock::signature;
use crate::behaviour::text::words;
use crate::options::{Fault, Options};
use crate::{BODY_LIMIT, Shared, ids, reply};

/// Most texts one Cohere call may hold.
const COHERE_MAX_TEXTS: usize = 96;

/// The keys each family's body may have.
const TITAN_KEYS: [&str; 4] = ["inputText", "dimensions", "normalize", "embeddingTypes"];
const COHERE_KEYS: [&str; 8] = [
    "texts",
    "images",
    "inputs",
    "input_type",
    "truncate",
    "embedding_types",
    "output_dimension",
    "max_tokens",
];

/// The embedding model families, whose bodies differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Titan,
    Cohere,
}

/// Answers one `InvokeModel` call.
pub(crate) async fn invoke(
    State(state): State<Shared>,
    model: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    state.counters.request();
    let mut response = respond(&state, model, request).await;
    reply::insert(&mut response, "x-amzn-requestid", &uuid());
    response
}

async fn respond(
    state: &Shared,
    model: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return validation(&format!(
            "Input is too long: the request body exceeds {BODY_LIMIT} bytes."
        ));
    };
    if let Err(refusal) = signature::verify(&parts, &body) {
        return forbidden(refusal.error_type(), &refusal.message());
    }
    let Ok(Path(model)) = model else {
        return validation("The provided model identifier is invalid.");
    };
    let name = model_name(&model);
    let Some(family) = family(name) else {
        return validation(&format!(
            "switchyard-mock serves InvokeModel only for embedding models \
             (amazon.titan-embed-text…, cohere.embed…), not {name}."
        ));
    };
    let options = match Options::parse(&options_model(&model), &parts.headers) {
        Ok(options) => options,
        Err(error) => return validation(&format!("modelId: {error}")),
    };
    let body = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(body)) => body,
        Ok(_) | Err(_) => {
            return validation(
                "Malformed input request: expected a JSON object, please reformat your input \
                 and try again.",
            );
        }
    };
    let reply = match family {
        Family::Titan => titan(&body),
        Family::Cohere => cohere(&body),
    };
    let (reply, tokens) = match reply {
        Ok(reply) => reply,
        Err(message) => return validation(&format!("Malformed input request: {message}")),
    };

    if let Some(response) = super::transport_fault(state, &options).await {
        return response;
    }
    if let Some(Fault::Status(status)) = options.fail {
        return status_fault(status, &model, &options);
    }
    let mut body = Vec::with_capacity(256);
    reply::write_json(&mut body, &reply);
    let mut response = super::answer(&options, body);
    reply::insert(
        &mut response,
        "x-amzn-bedrock-input-token-count",
        &tokens.to_string(),
    );
    response
}

/// The family a model id (without options) names, also behind a cross-region prefix.
fn family(name: &str) -> Option<Family> {
    let name = name.rsplit('/').next().unwrap_or(name);
    let names = |prefix: &str| {
        name.starts_with(prefix)
            || name
                .split_once('.')
                .is_some_and(|(_, rest)| rest.starts_with(prefix))
    };
    if names("amazon.titan-embed-text") || names("amazon.titan-embed-g1-text") {
        Some(Family::Titan)
    } else if names("cohere.embed") {
        Some(Family::Cohere)
    } else {
        None
    }
}

/// Titan's answer to `body` and its token count, or why the body is refused.
fn titan(body: &Map<String, Value>) -> Result<(Value, u64), String> {
    extraneous(body, &TITAN_KEYS)?;
    let Some(text) = body.get("inputText") else {
        return Err(required("inputText"));
    };
    let Some(text) = text.as_str() else {
        return Err(expected("inputText", "String"));
    };
    let dimensions = dimensions(body, "dimensions")?;
    let normalize = match body.get("normalize") {
        None => true,
        Some(Value::Bool(normalize)) => *normalize,
        Some(_) => return Err(expected("normalize", "Boolean")),
    };
    if let Some(types) = body.get("embeddingTypes") {
        float_only(types, "embeddingTypes")?;
    }
    let embedding = if normalize {
        vector::of_text(text, dimensions)
    } else {
        vector::of_text_unnormalized(text, dimensions)
    };
    let tokens = words(text);
    Ok((
        json!({
            "embedding": embedding,
            "inputTextTokenCount": tokens,
            "embeddingsByType": {"float": embedding},
        }),
        tokens,
    ))
}

/// Cohere's answer to `body` and its token count, or why the body is refused.
fn cohere(body: &Map<String, Value>) -> Result<(Value, u64), String> {
    extraneous(body, &COHERE_KEYS)?;
    if body.contains_key("images") || body.contains_key("inputs") {
        return Err("switchyard-mock embeds only `texts`".to_owned());
    }
    let Some(texts) = body.get("texts") else {
        return Err(required("texts"));
    };
    let Some(texts) = texts
        .as_array()
        .and_then(|texts| texts.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
    else {
        return Err(expected("texts", "JSONArray of strings"));
    };
    if texts.len() > COHERE_MAX_TEXTS {
        return Err(format!(
            "#/texts: expected maximum item count: {COHERE_MAX_TEXTS}, found: {}",
            texts.len()
        ));
    }
    match body.get("input_type") {
        None => return Err(required("input_type")),
        Some(Value::String(_)) => {}
        Some(_) => return Err(expected("input_type", "String")),
    }
    let dimensions = dimensions(body, "output_dimension")?;
    let by_type = match body.get("embedding_types") {
        None | Some(Value::Null) => false,
        Some(types) => {
            float_only(types, "embedding_types")?;
            true
        }
    };
    let vectors: Vec<Vec<f32>> = texts
        .iter()
        .map(|text| vector::of_text(text, dimensions))
        .collect();
    let tokens = texts.iter().map(|text| words(text)).sum();
    let (embeddings, response_type) = if by_type {
        (json!({"float": vectors}), "embeddings_by_type")
    } else {
        (json!(vectors), "embeddings_floats")
    };
    Ok((
        json!({
            "id": uuid(),
            "texts": texts,
            "embeddings": embeddings,
            "response_type": response_type,
        }),
        tokens,
    ))
}

/// Refuses a key the model does not take, as Bedrock does.
fn extraneous(body: &Map<String, Value>, keys: &[&str]) -> Result<(), String> {
    match body.keys().find(|key| !keys.contains(&key.as_str())) {
        Some(key) => Err(format!(
            "extraneous key [{key}] is not permitted, please reformat your input and try again."
        )),
        None => Ok(()),
    }
}

/// The vector length in `key`, the default when absent.
fn dimensions(body: &Map<String, Value>, key: &str) -> Result<u32, String> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(DEFAULT_DIMENSIONS),
        Some(value) => match value.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n @ 1..=MAX_DIMENSIONS) => Ok(n),
            _ => Err(format!(
                "#/{key}: {value} is not a dimension switchyard-mock serves (1 to \
                 {MAX_DIMENSIONS})"
            )),
        },
    }
}

/// The mock computes float vectors only.
fn float_only(types: &Value, key: &str) -> Result<(), String> {
    match types.as_array() {
        Some(types) if !types.is_empty() && types.iter().all(|kind| kind == "float") => Ok(()),
        _ => Err(format!(
            "#/{key}: switchyard-mock answers only [\"float\"] embeddings"
        )),
    }
}

fn required(key: &str) -> String {
    format!("#: required key [{key}] not found, please reformat your input and try again.")
}

fn expected(key: &str, kind: &str) -> String {
    format!("#/{key}: expected type: {kind}, please reformat your input and try again.")
}

/// An id in AWS's UUID shape.
fn uuid() -> String {
    ids::uuid()
}
