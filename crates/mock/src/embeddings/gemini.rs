//! `POST /v1beta/models/{model}:batchEmbedContents` (also under `/v1`): Gemini's batch
//! embeddings, called by the Gemini route once it has checked the credentials
//! (<https://ai.google.dev/api/embeddings#method:-models.batchembedcontents>).

use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::vector::{self, DEFAULT_DIMENSIONS, MAX_DIMENSIONS};
use super::{model_name, options_model};
use crate::gemini::error::{invalid, status_fault};
use crate::options::{Fault, Options};
use crate::{BODY_LIMIT, Shared, reply};

/// Most requests one batch may hold.
const MAX_REQUESTS: usize = 100;

/// Answers one `batchEmbedContents` call for `model` (as written in the path, options
/// included) of API `version`.
pub(crate) async fn batch_embed_contents(
    state: &Shared,
    model: &str,
    version: &str,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return invalid(&format!(
            "Request payload size exceeds the limit: {BODY_LIMIT} bytes."
        ));
    };
    let request: BatchRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => return invalid(&format!("Invalid JSON payload received. {error}")),
    };
    let requests = match request.requests.as_deref() {
        Some(requests) if !requests.is_empty() => requests,
        Some(_) | None => {
            return invalid("* BatchEmbedContentsRequest.requests: requests is not specified\n");
        }
    };
    if requests.len() > MAX_REQUESTS {
        return invalid(&format!(
            "* BatchEmbedContentsRequest.requests: at most {MAX_REQUESTS} requests can be in \
             one batch\n"
        ));
    }
    let resource = format!("models/{model}");
    let mut texts = Vec::with_capacity(requests.len());
    let mut dimensions = Vec::with_capacity(requests.len());
    for (at, request) in requests.iter().enumerate() {
        if request.model.as_deref() != Some(resource.as_str()) {
            return invalid(&format!(
                "* BatchEmbedContentsRequest.requests[{at}].model: the model of each request \
                 must be the model of the batch, {resource}\n"
            ));
        }
        let Some(text) = request.text() else {
            return invalid(&format!(
                "* BatchEmbedContentsRequest.requests[{at}].content.parts: must hold at least \
                 one text part\n"
            ));
        };
        texts.push(text);
        dimensions.push(match &request.output_dimensionality {
            None | Some(Value::Null) => DEFAULT_DIMENSIONS,
            Some(value) => match value.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n @ 1..=MAX_DIMENSIONS) => n,
                _ => {
                    return invalid(&format!(
                        "* BatchEmbedContentsRequest.requests[{at}].output_dimensionality: \
                         must be from 1 to {MAX_DIMENSIONS}, got {value}\n"
                    ));
                }
            },
        });
    }
    let options = match Options::parse(&options_model(model), headers) {
        Ok(options) => options,
        Err(error) => return invalid(&format!("model: {error}")),
    };

    if let Some(response) = super::transport_fault(state, &options).await {
        return response;
    }
    if let Some(Fault::Status(status)) = options.fail {
        return status_fault(status, model_name(model), version, &options);
    }
    let embeddings = texts
        .iter()
        .zip(dimensions)
        .map(|(text, dimensions)| Embedding {
            values: vector::of_text(text, dimensions),
        })
        .collect();
    let mut body = Vec::with_capacity(256);
    reply::write_json(&mut body, &BatchResponse { embeddings });
    super::answer(&options, body)
}

#[derive(Debug, Deserialize)]
struct BatchRequest {
    #[serde(default)]
    requests: Option<Vec<EmbedRequest>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmbedRequest {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    output_dimensionality: Option<Value>,
}

impl EmbedRequest {
    /// The text parts joined by spaces; `None` without any.
    fn text(&self) -> Option<String> {
        let parts = &self.content.as_ref()?.parts;
        let texts: Vec<&str> = parts
            .iter()
            .filter_map(|part| part.text.as_deref())
            .collect();
        (!texts.is_empty()).then(|| texts.join(" "))
    }
}

#[derive(Debug, Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Debug, Deserialize)]
struct Part {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Serialize)]
struct BatchResponse {
    embeddings: Vec<Embedding>,
}

#[derive(Serialize)]
struct Embedding {
    values: Vec<f32>,
}
