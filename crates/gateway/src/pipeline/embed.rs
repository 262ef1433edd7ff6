//! One embeddings call to one deployment: relayed to an OpenAI-compatible (or Azure) upstream,
//! translated for Gemini and Vertex (`batchEmbedContents`) and Bedrock (`InvokeModel`, one call
//! per Titan text or per batch of Cohere texts).

use axum::body::Bytes;
use secrecy::SecretString;
use switchyard_providers::embeddings::{bedrock, gemini, openai};
use switchyard_providers::{Limits, Provider};
use switchyard_types::{ApiError, EmbeddingRequest, EmbeddingResponse, ErrorKind, Origin, Usage};

use super::call::upstream_for;
use crate::router::Deployment;
use crate::runtime::Runtime;

/// An embeddings answer.
#[derive(Debug)]
pub enum Embedded {
    /// The upstream's OpenAI-shaped body, as it wrote it, and the usage it reports.
    Relayed(Bytes, Usage),
    /// Vectors translated from another dialect, to be written in OpenAI's shape.
    Translated(EmbeddingResponse),
}

/// Calls `deployment` for `request` within `limits`.
pub async fn once(
    runtime: &Runtime,
    request: &EmbeddingRequest,
    provider_key: Option<&SecretString>,
    deployment: &Deployment,
    limits: Limits,
) -> Result<Embedded, ApiError> {
    let upstream = upstream_for(deployment, provider_key)?;
    let upstream = upstream.as_ref();
    let Some(url) = upstream.embeddings_url() else {
        return Err(ApiError::new(
            ErrorKind::InvalidRequest,
            Origin::Client,
            format!(
                "Deployment `{}` has no embeddings API (Anthropic offers none)",
                deployment.label
            ),
        )
        .with_code("embeddings_not_supported"));
    };
    let client = deployment.client(&runtime.client);
    let model = &upstream.model;
    match upstream.provider {
        Provider::OpenAi | Provider::Azure { .. } => {
            let body = openai::encode_request(request, model);
            let (_, answer) = upstream.post(client, &url, body, limits).await?;
            let usage = openai::decode_response(&answer)?.usage;
            Ok(Embedded::Relayed(answer, usage))
        }
        Provider::Gemini | Provider::Vertex => {
            let body = gemini::encode_request(request, model)?;
            let (_, answer) = upstream.post(client, &url, body, limits).await?;
            Ok(Embedded::Translated(gemini::decode_response(
                &answer, model,
            )?))
        }
        Provider::Bedrock => {
            let family = bedrock::family(model).ok_or_else(|| {
                ApiError::invalid_request(
                    format!("`{model}` is not a Bedrock embedding model this gateway knows (Titan Text Embeddings or Cohere Embed)"),
                    Some("model".into()),
                )
            })?;
            let mut answers = Vec::new();
            let mut input_tokens = 0;
            for body in bedrock::encode_requests(request, family)? {
                let (headers, answer) = upstream.post(client, &url, body, limits).await?;
                input_tokens += bedrock::header_input_tokens(&headers).unwrap_or(0);
                answers.push(answer.to_vec());
            }
            let mut response = bedrock::decode_responses(&answers, family, model)?;
            if response.usage.prompt_tokens == 0 {
                response.usage.prompt_tokens = input_tokens;
            }
            Ok(Embedded::Translated(response))
        }
        Provider::Anthropic => Err(ApiError::new(
            ErrorKind::InvalidRequest,
            Origin::Client,
            "Anthropic offers no embeddings API",
        )),
    }
}
