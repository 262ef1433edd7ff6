use super::{Index, Item, dot};
use crate::cache::key::Key;

fn unit(values: &[f32]) -> Vec<f32> {
    let length = values.iter().map(|v| v * v).sum::<f32>().sqrt();
    values.iter().map(|v| v / length).collect()
}

fn item(byte: u8, text: &str) -> Item {
    Item {
        key: Key([byte; 32]),
        text: text.into(),
    }
}

#[test]
fn the_dot_product_is_exact_at_any_length() {
    for length in [1usize, 7, 8, 9, 384] {
        let a: Vec<f32> = (0..length).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..length).map(|i| 1.0 - i as f32 * 0.25).collect();
        let expected: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - expected).abs() <= expected.abs() * 1e-5 + 1e-5);
    }
}

#[test]
fn search_finds_the_nearest_in_its_scope_only() {
    let index = Index::new(100, usize::MAX);
    let (one, two) = (Key([1; 32]), Key([2; 32]));
    index.insert(one, &unit(&[1.0, 0.0, 0.0]), item(10, "x"));
    index.insert(one, &unit(&[0.0, 1.0, 0.0]), item(11, "y"));
    index.insert(two, &unit(&[1.0, 0.0, 0.0]), item(12, "other scope"));
    let found = index.search(&one, &unit(&[0.9, 0.1, 0.0]), 0.5, 3);
    assert_eq!(found.len(), 1);
    assert_eq!(&*found[0].item.text, "x");
    assert!(found[0].similarity > 0.99);
    assert!(
        index
            .search(&Key([3; 32]), &unit(&[1.0, 0.0, 0.0]), 0.0, 3)
            .is_empty()
    );
    let both = index.search(&one, &unit(&[1.0, 1.0, 0.0]), 0.0, 3);
    assert_eq!(both.len(), 2, "two at or above the threshold, best first");
}

#[test]
fn the_oldest_go_first_past_the_capacity_and_removal_keeps_rows_aligned() {
    let index = Index::new(3, usize::MAX);
    let scope = Key([1; 32]);
    for (byte, vector) in [
        (1u8, [1.0, 0.0]),
        (2, [0.0, 1.0]),
        (3, [0.6, 0.8]),
        (4, [0.8, 0.6]),
    ] {
        index.insert(scope, &vector, item(byte, &byte.to_string()));
    }
    assert_eq!(index.len(), 3);
    let texts = |query: [f32; 2]| -> Vec<String> {
        index
            .search(&scope, &query, 0.99, 3)
            .into_iter()
            .map(|candidate| candidate.item.text.to_string())
            .collect()
    };
    assert!(texts([1.0, 0.0]).is_empty(), "the first went");
    index.remove(&scope, &Key([2; 32]));
    assert_eq!(index.len(), 2);
    assert_eq!(texts([0.6, 0.8]), ["3"]);
    assert_eq!(texts([0.8, 0.6]), ["4"]);
}

/// The local model `scripts/fetch-models` fetches, when it is there.
#[cfg(feature = "semantic-cache")]
fn model() -> Option<super::minilm::MiniLm> {
    let folder = std::env::var("SWITCHYARD_TEST_MODEL_DIR").map_or_else(
        |_| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../.cache/models/all-minilm-l6-v2")
        },
        std::path::PathBuf::from,
    );
    if !folder.join("model.safetensors").exists() {
        eprintln!(
            "skipped: no model in {} (scripts/fetch-models)",
            folder.display()
        );
        return None;
    }
    Some(super::minilm::MiniLm::load(&folder).expect("the model loads"))
}

#[cfg(feature = "semantic-cache")]
#[test]
fn the_local_model_places_paraphrases_near_and_other_questions_far() {
    use super::Embedder as _;
    let Some(model) = model() else {
        return;
    };
    assert_eq!(model.dimensions(), 384);
    let embed = |text: &str| model.embed(text).expect("embeds");
    let started = std::time::Instant::now();
    let question = embed("How do I reset my password?");
    eprintln!("one embedding: {:?}", started.elapsed());
    let length: f32 = question.iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!((length - 1.0).abs() < 1e-4, "unit length: {length}");
    let paraphrase = dot(&question, &embed("I forgot my password, what do I do?"));
    let other = dot(&question, &embed("What is the capital of Australia?"));
    let negated = dot(
        &embed("Turn on the kitchen lights"),
        &embed("Turn off the kitchen lights"),
    );
    eprintln!("paraphrase {paraphrase:.3}, unrelated {other:.3}, negation {negated:.3}");
    assert!(paraphrase > 0.6, "{paraphrase}");
    assert!(other < 0.3, "{other}");
    assert!(paraphrase > other + 0.3);
    // Why the verifier exists: a negation embeds almost like the original.
    assert!(negated > 0.8, "{negated}");
    assert_eq!(
        embed("How do I reset my password?"),
        question,
        "the same text, the same vector"
    );
}

#[test]
fn a_large_scope_is_searched_approximately_and_still_finds_near_neighbours() {
    let dimensions = 384;
    let mut state = 7u64;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let mut vectors = Vec::new();
    let index = Index::new(50_000, 2_000);
    let scope = Key([9; 32]);
    for number in 0..8_000u32 {
        let vector = unit(&(0..dimensions).map(|_| random()).collect::<Vec<f32>>());
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(&number.to_le_bytes());
        index.insert(
            scope,
            &vector,
            Item {
                key: Key(key),
                text: number.to_string().into(),
            },
        );
        vectors.push(vector);
    }
    // Queries near stored vectors (cosine about 0.93): each finds its own.
    let mut found = 0;
    for target in (0..8_000).step_by(200) {
        let noisy: Vec<f32> = vectors[target]
            .iter()
            .map(|v| v + random() * 0.05)
            .collect();
        let query = unit(&noisy);
        let similarity = dot(&query, &vectors[target]);
        assert!(similarity > 0.85, "{similarity}");
        let best = index.search(&scope, &query, 0.8, 1);
        if best
            .first()
            .is_some_and(|candidate| *candidate.item.text == *target.to_string())
        {
            found += 1;
        }
    }
    assert_eq!(found, 40, "every query finds its neighbour");
}
