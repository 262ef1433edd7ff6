//! `POST /v1/embeddings` through OpenAI-compatible, Gemini and Bedrock (Titan, Cohere)
//! upstreams. The mock gives the same vector for the same text in every dialect, so the
//! translations can be compared with the relayed answer.

use serde_json::{Value, json};

use super::support;

const EMBEDDINGS: &str = r#"
models:
  - name: embed-openai
    deployments:
      - provider: openai_compatible
        model: text-embedding-3-small
        api_base: "{MOCK}"
        api_key: k
  - name: embed-azure
    deployments:
      - provider: azure
        model: my-embedding-deployment
        api_base: "{MOCK_ROOT}"
        api_key: azure-key
  - name: embed-gemini
    deployments:
      - provider: gemini
        model: text-embedding-004
        api_base: "{MOCK}"
        api_key: k
  - name: embed-titan
    deployments:
      - provider: mock_bedrock
        model: "amazon.titan-embed-text-v2:0"
        api_base: "{MOCK_ROOT}"
  - name: embed-cohere
    deployments:
      - provider: mock_bedrock
        model: "cohere.embed-english-v3"
        api_base: "{MOCK_ROOT}"
  - name: claude
    deployments:
      - provider: anthropic
        model: echo
        api_base: "{MOCK}"
        api_key: k
"#;

async fn embed(setup: &support::Setup, body: Value) -> (u16, Value) {
    let response = setup
        .client
        .post(setup.url("/v1/embeddings"))
        .bearer_auth("sk-anything")
        .json(&body)
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

fn vectors(body: &Value) -> Vec<Vec<f64>> {
    body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|item| {
            item["embedding"]
                .as_array()
                .expect("floats")
                .iter()
                .map(|x| x.as_f64().expect("number"))
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn every_dialect_gives_the_same_vectors_in_openais_shape() {
    let setup = support::start(EMBEDDINGS).await;
    let input = json!(["the quick brown fox", "jumps over"]);
    let (status, relayed) = embed(&setup, json!({"model": "embed-openai", "input": input})).await;
    assert_eq!(status, 200, "{relayed}");
    assert_eq!(relayed["object"], "list");
    assert_eq!(relayed["data"][1]["index"], 1);
    assert_eq!(relayed["usage"]["prompt_tokens"], 6);
    let expected = vectors(&relayed);
    assert_eq!(expected.len(), 2);
    for model in ["embed-azure", "embed-gemini", "embed-titan", "embed-cohere"] {
        let (status, body) = embed(&setup, json!({"model": model, "input": input})).await;
        assert_eq!(status, 200, "{model}: {body}");
        assert_eq!(body["object"], "list", "{model}");
        let got = vectors(&body);
        assert_eq!(got.len(), 2, "{model}");
        for (a, b) in got.iter().flatten().zip(expected.iter().flatten()) {
            assert!((a - b).abs() < 1e-6, "{model}: {got:?} vs {expected:?}");
        }
    }
}

#[tokio::test]
async fn dimensions_and_base64_are_honoured() {
    let setup = support::start(EMBEDDINGS).await;
    for model in ["embed-openai", "embed-gemini", "embed-titan"] {
        let (status, body) = embed(
            &setup,
            json!({"model": model, "input": "hello", "dimensions": 4}),
        )
        .await;
        assert_eq!(status, 200, "{model}: {body}");
        assert_eq!(vectors(&body)[0].len(), 4, "{model}");
        let (status, body) = embed(
            &setup,
            json!({"model": model, "input": "hello", "dimensions": 4, "encoding_format": "base64"}),
        )
        .await;
        assert_eq!(status, 200, "{model}: {body}");
        let encoded = body["data"][0]["embedding"]
            .as_str()
            .expect("base64 string");
        assert_eq!(
            encoded.len(),
            24,
            "{model}: 4 floats are 16 bytes, 24 base64 characters"
        );
    }
}

#[tokio::test]
async fn bad_embedding_requests_get_clear_errors() {
    let setup = support::start(EMBEDDINGS).await;
    let (status, body) = embed(&setup, json!({"model": "embed-openai", "input": 5})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "input");
    let (status, body) = embed(&setup, json!({"model": "nope", "input": "x"})).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = embed(&setup, json!({"model": "claude", "input": "x"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "embeddings_not_supported");
    let (status, body) = embed(
        &setup,
        json!({"model": "embed-gemini", "input": [[1, 2, 3]]}),
    )
    .await;
    assert_eq!(status, 400, "token input cannot reach Gemini: {body}");
}
