//! One embeddings call to one deployment: forwarded and relayed to an OpenAI-compatible (or
//! Azure) upstream (the client's body with only the model replaced), translated for Gemini and
//! Vertex (`batchEmbedContents`) and Bedrock (`InvokeModel`, one call per Titan text or per
//! batch of Cohere texts).

use secrecy::SecretString;
use switchyard_providers::embeddings::{bedrock, gemini, openai};
use switchyard_providers::{Limits, Provider, forward};
use switchyard_types::{ApiError, EmbeddingRequest, ErrorKind, Origin, WireFormat};

use super::call::{blame, upstream_for};
use super::{Answer, Whole};
use crate::router::Deployment;
use crate::runtime::Runtime;

/// What every attempt of one embeddings call shares.
#[derive(Debug)]
pub struct EmbedInput<'a> {
    /// The runtime serving the request.
    pub runtime: &'a Runtime,
    /// The canonical request.
    pub request: &'a EmbeddingRequest,
    /// The client's body, when no stage changed the request.
    pub raw: Option<&'a [u8]>,
    /// The caller's own provider key.
    pub provider_key: Option<&'a SecretString>,
    /// Where the client's body changes for an OpenAI-dialect upstream, found once.
    pub edits: std::sync::OnceLock<Option<forward::Edits>>,
}

/// Calls `deployment` for `input` within `limits`.
pub async fn once(
    input: &EmbedInput<'_>,
    deployment: &Deployment,
    limits: Limits,
) -> Result<Answer, ApiError> {
    let upstream = upstream_for(deployment, input.provider_key)?;
    let own_key = matches!(upstream, std::borrow::Cow::Owned(_));
    call(input, deployment, upstream.as_ref(), limits)
        .await
        .map_err(|error| blame(error, own_key))
}

async fn call(
    input: &EmbedInput<'_>,
    deployment: &Deployment,
    upstream: &switchyard_providers::Upstream,
    limits: Limits,
) -> Result<Answer, ApiError> {
    let (runtime, request) = (input.runtime, input.request);
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
            let body = input
                .raw
                .and_then(|raw| {
                    input
                        .edits
                        .get_or_init(|| forward::Edits::of(WireFormat::OpenAi, raw, false))
                        .as_ref()
                        .map(|edits| edits.apply(raw, model))
                })
                .unwrap_or_else(|| openai::encode_request(request, model));
            let (_, answer) = upstream.post(client, &url, body, limits).await?;
            let usage = openai::decode_response(&answer)?.usage;
            Ok(Answer::Whole(Whole::Raw {
                body: answer,
                usage,
            }))
        }
        Provider::Gemini | Provider::Vertex => {
            let body = gemini::encode_request(request, model)?;
            let (_, answer) = upstream.post(client, &url, body, limits).await?;
            Ok(Answer::Whole(Whole::Embeddings(gemini::decode_response(
                &answer, model,
            )?)))
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
            Ok(Answer::Whole(Whole::Embeddings(response)))
        }
        Provider::Anthropic => Err(ApiError::new(
            ErrorKind::InvalidRequest,
            Origin::Client,
            "Anthropic offers no embeddings API",
        )),
    }
}
