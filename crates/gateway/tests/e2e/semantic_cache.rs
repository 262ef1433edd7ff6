//! The semantic cache as clients see it: a question that means the same gets the kept answer
//! (with the local model, or placed by one of the gateway's own embeddings groups), one that
//! differs does not, and instances sharing Redis find each other's answers by meaning.

use std::time::Duration;

use serde_json::{Value, json};

use crate::cache::{MODELS, ask, openai};
use crate::support::start;

#[cfg(feature = "semantic-cache")]
#[tokio::test]
async fn a_question_that_means_the_same_gets_the_kept_answer_and_one_that_differs_does_not() {
    let Some(model) = crate::support::model_dir() else {
        return;
    };
    let yaml = MODELS.replace(
        "cache:\n  enabled: true\n",
        &format!(
            "cache:\n  enabled: true\n  semantic:\n    enabled: true\n    model_dir: \"{model}\"\n    threshold: 0.85\nmetrics:\n  enabled: true\n"
        ),
    );
    let setup = start(&yaml).await;
    let with_system = |system: &str, text: &str| {
        json!({"model": "gpt", "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": text}
        ]})
    };
    let first = openai(
        &setup,
        &[],
        &with_system("Be brief.", "What is the capital city of France?"),
    )
    .await;
    assert_eq!(first.cache(), "miss");
    // Kept (the write is in the background: the exact repeat waits for it).
    assert_eq!(
        openai(
            &setup,
            &[],
            &with_system("Be brief.", "What is the capital city of France?")
        )
        .await
        .cache(),
        "hit"
    );
    let reworded = openai(
        &setup,
        &[],
        &with_system("Be brief.", "Tell me the capital city of France"),
    )
    .await;
    assert_eq!(reworded.cache(), "hit", "{}", reworded.body);
    let similarity: f32 = reworded
        .header("x-switchyard-cache-similarity")
        .expect("a similarity")
        .parse()
        .expect("a number");
    assert!(similarity >= 0.85, "{similarity}");
    assert_eq!(reworded.text(), first.text(), "the kept answer");
    assert_eq!(setup.mock.stats().requests, 1);

    // Similar words, another answer: the verifier refuses; another system prompt is another
    // scope; a hot request is not answered by meaning.
    for (body, why) in [
        (
            with_system("Be brief.", "What is the capital city of Germany?"),
            "another country",
        ),
        (
            with_system("Answer at length.", "Tell me the capital city of France"),
            "another system prompt",
        ),
    ] {
        let got = openai(&setup, &[], &body).await;
        assert_eq!(got.cache(), "miss", "{why}");
    }
    // An embedding places these side by side (about 0.9); the verifier does not serve one for
    // the other.
    let on = with_system("Be brief.", "Turn on the kitchen lights");
    assert_eq!(openai(&setup, &[], &on).await.cache(), "miss");
    assert_eq!(openai(&setup, &[], &on).await.cache(), "hit");
    let off = openai(
        &setup,
        &[],
        &with_system("Be brief.", "Turn off the kitchen lights"),
    )
    .await;
    assert_eq!(off.cache(), "miss", "{}", off.body);
    assert!(off.text().contains("off"), "{}", off.text());
    let mut hot = with_system("Be brief.", "Tell me the capital city of France!");
    hot["temperature"] = json!(1.5);
    assert_eq!(openai(&setup, &[], &hot).await.cache(), "miss", "too hot");
    let text = setup.get("/metrics").await.text().await.expect("text");
    assert!(
        text.contains(r#"switchyard_cache_lookups_total{model="gpt",result="semantic_hit"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"switchyard_cache_verifier_rejections_total{result="opposites"} 1"#),
        "{text}"
    );
}

/// An embeddings server of the OpenAI shape whose vectors count words (64 buckets): texts with
/// the same words get the same vector, whatever their case, punctuation or order.
async fn word_count_embeddings() -> String {
    async fn embed(axum::Json(body): axum::Json<Value>) -> axum::Json<Value> {
        let text = body["input"].as_str().unwrap_or_default().to_lowercase();
        let mut vector = vec![0f32; 64];
        for word in text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            let bucket = word.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
            }) % 64;
            vector[bucket as usize] += 1.0;
        }
        axum::Json(json!({
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": vector}],
            "model": "word-count",
            "usage": {"prompt_tokens": 5, "total_tokens": 5}
        }))
    }
    let address = crate::hostile::serve(
        axum::Router::new().route("/v1/embeddings", axum::routing::post(embed)),
    )
    .await;
    format!("http://{address}/v1")
}

/// The test models with the semantic cache placing questions through a `words` group on the
/// embeddings server at `embeddings`, and `extra` config after the cache section (its own
/// cache keys first, indented).
fn with_words(embeddings: &str, extra: &str) -> String {
    let (own, rest) = match extra.find("redis:") {
        Some(at) => extra.split_at(at),
        None => (extra, ""),
    };
    MODELS
        .replace(
            "cache:\n  enabled: true\n",
            &format!(
                "cache:\n  enabled: true\n{own}  semantic:\n    enabled: true\n    embeddings_model: words\n    threshold: 0.95\n{rest}"
            ),
        )
        .replace(
            "  - name: uncached\n",
            &format!(
                "  - name: words\n    deployments:\n      - provider: openai_compatible\n        model: word-count\n        api_base: \"{embeddings}\"\n        api_key: test-key\n  - name: uncached\n"
            ),
        )
}

#[tokio::test]
async fn questions_can_be_placed_by_one_of_the_gateways_own_embeddings_groups() {
    let embeddings = word_count_embeddings().await;
    let yaml = with_words(&embeddings, "");
    let setup = start(&yaml).await;
    let first = openai(&setup, &[], &ask("gpt", "What is the capital of France?")).await;
    assert_eq!(first.cache(), "miss");
    // Written in the background: the exact repeat waits for it.
    assert_eq!(
        openai(&setup, &[], &ask("gpt", "What is the capital of France?"))
            .await
            .cache(),
        "hit"
    );
    // The same words otherwise written: another exact key, the same vector.
    let reworded = openai(&setup, &[], &ask("gpt", "what is the capital of france")).await;
    assert_eq!(reworded.cache(), "hit", "{}", reworded.body);
    assert_eq!(
        reworded.header("x-switchyard-cache-similarity"),
        Some("1.000")
    );
    assert_eq!(reworded.text(), first.text());
    assert_eq!(setup.mock.stats().requests, 1);
    // The same words in another order with another meaning: the verifier refuses it.
    let first = openai(&setup, &[], &ask("gpt", "Convert Word to PDF")).await;
    assert_eq!(first.cache(), "miss");
    assert_eq!(
        openai(&setup, &[], &ask("gpt", "Convert Word to PDF"))
            .await
            .cache(),
        "hit"
    );
    let swapped = openai(&setup, &[], &ask("gpt", "Convert PDF to Word")).await;
    assert_eq!(swapped.cache(), "miss");
}

#[tokio::test]
async fn instances_sharing_redis_find_each_others_answers_by_meaning() {
    let Ok(redis) = std::env::var("SWITCHYARD_TEST_REDIS_URL") else {
        eprintln!("skipped: SWITCHYARD_TEST_REDIS_URL is not set");
        return;
    };
    let embeddings = word_count_embeddings().await;
    let prefix = switchyard_store::new_id("sy-test");
    let yaml = with_words(
        &embeddings,
        &format!("  backend: redis\nredis:\n  url: \"{redis}\"\n  prefix: \"{prefix}\"\n"),
    );
    let (one, two) = (start(&yaml).await, start(&yaml).await);
    // Connections and subscriptions are made in the background: ask until the second
    // instance finds, by meaning, what the first kept.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let kept = ask("gpt", &format!("What is the capital of Spain? ({attempt})"));
        openai(&one, &[], &kept).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let asked = ask("gpt", &format!("what is the capital of spain ({attempt})"));
        let got = openai(&two, &[], &asked).await;
        if got.cache() == "hit" {
            assert!(got.header("x-switchyard-cache-similarity").is_some());
            assert!(
                got.text().contains("Spain"),
                "the first instance's answer: {}",
                got.text()
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never found by meaning"
        );
    }
}

#[tokio::test]
async fn a_conversation_holding_a_document_is_never_answered_by_meaning() {
    let embeddings = word_count_embeddings().await;
    let yaml = with_words(&embeddings, "");
    let setup = start(&yaml).await;
    // The gateway keeps only a document block's type: two documents must not share a scope.
    let about = |document: &str, question: &str| {
        json!({"model": "claude", "max_tokens": 100, "messages": [
            {"role": "user", "content": [
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": document}},
                {"type": "text", "text": "Here is a contract."}
            ]},
            {"role": "assistant", "content": "Noted."},
            {"role": "user", "content": question}
        ]})
    };
    let send = |body: Value| {
        let setup = &setup;
        async move {
            let response = setup
                .client
                .post(setup.url("/v1/messages"))
                .header("anthropic-version", "2023-06-01")
                .json(&body)
                .send()
                .await
                .expect("sent");
            (
                response.status().as_u16(),
                response
                    .headers()
                    .get("x-switchyard-cache")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default()
                    .to_owned(),
            )
        }
    };
    assert_eq!(
        send(about("Rent is 900 a month.", "What is the rent?")).await,
        (200, "miss".into())
    );
    assert_eq!(
        send(about("Rent is 900 a month.", "What is the rent?")).await,
        (200, "hit".into())
    );
    // The same question in other words about another document: no hit by meaning.
    assert_eq!(
        send(about("Rent is 1500 a month.", "what is the rent")).await,
        (200, "miss".into())
    );
}
