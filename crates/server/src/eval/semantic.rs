//! `switchyard eval semantic`: how often the semantic cache would serve a right answer and how
//! often a wrong one. Each labelled pair (`scripts/fetch-eval-data` puts fow-cache's in
//! `.cache/eval/semantic/pairs.jsonl`: paraphrases and near repeats that share an answer;
//! negations, swapped entities, changed numbers or dates and changed scopes that do not) plus
//! pairs made here that ask the same in another output format, is scored as a lookup: the
//! first text kept, the second asked. Per threshold: the share of positives served (hit rate),
//! of hard negatives served (false hits), and of served answers that were right, by
//! similarity alone and with the verifier; then the lookup's time at 10k and 100k entries
//! (without the embedding) and the embedding's own.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use switchyard_gateway::cache::key::Key;
use switchyard_gateway::cache::semantic::minilm::MiniLm;
use switchyard_gateway::cache::semantic::{Embedder, Index, Item, dot, verify};

#[derive(Debug)]
struct Pair {
    category: String,
    a: String,
    b: String,
    same_answer: bool,
}

/// Output formats a request may ask for: a pair that differs only by one is a hard negative.
const FORMATS: [&str; 6] = [
    " Answer in JSON.",
    " Put it in a table.",
    " Reply with a bullet list.",
    " Write it as a short poem.",
    " Give me a one-sentence summary.",
    " Answer in French.",
];

fn percentiles(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort_unstable();
    let at = |share: f64| {
        let index = ((times.len() as f64 - 1.0) * share).round() as usize;
        times.get(index).copied().unwrap_or_default()
    };
    (at(0.50), at(0.99))
}

/// Runs the evaluation with the model in `model` on the pairs in `pairs`.
pub fn run(model: &Path, pairs: &Path, sizes: &[usize], show: usize) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let embedder = match MiniLm::load(model) {
        Ok(embedder) => embedder,
        Err(error) => {
            eprintln!("{error} (scripts/fetch-models fetches the model)");
            return ExitCode::FAILURE;
        }
    };
    let text = match std::fs::read_to_string(pairs) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("{}: {error} (scripts/fetch-eval-data)", pairs.display());
            return ExitCode::FAILURE;
        }
    };
    let mut labelled: Vec<Pair> = Vec::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(value) => value,
            Err(error) => {
                eprintln!("{}: {error}", pairs.display());
                return ExitCode::FAILURE;
            }
        };
        let text = |field: &str| value[field].as_str().unwrap_or_default().to_owned();
        labelled.push(Pair {
            category: text("category"),
            a: text("a"),
            b: text("b"),
            same_answer: value["same_answer"].as_bool().unwrap_or(false),
        });
    }
    // Format negatives: a paraphrase asked again in another shape.
    let made: Vec<Pair> = labelled
        .iter()
        .filter(|pair| pair.category == "paraphrase")
        .enumerate()
        .map(|(index, pair)| Pair {
            category: "format (made here)".into(),
            a: pair.a.clone(),
            b: format!("{}{}", pair.a, FORMATS[index % FORMATS.len()]),
            same_answer: false,
        })
        .collect();
    labelled.extend(made);
    let mut embed_times = Vec::new();
    let mut embed = |text: &str| -> Option<Vec<f32>> {
        let started = Instant::now();
        let vector = embedder.embed(text).ok();
        embed_times.push(started.elapsed());
        vector
    };
    // (similarity, verified, right, category)
    let mut scored: Vec<(f32, bool, bool, String)> = Vec::new();
    for pair in &labelled {
        let (Some(a), Some(b)) = (embed(&pair.a), embed(&pair.b)) else {
            eprintln!("cannot embed a pair of {}", pair.category);
            return ExitCode::FAILURE;
        };
        let checked = verify::check(&pair.b, &pair.a);
        let verified = checked.is_ok();
        let similarity = dot(&a, &b);
        if show > 0 && (pair.same_answer == checked.is_err()) {
            let _ = writeln!(
                out,
                "  {} {similarity:.3} {:?} ({}): {} | {}",
                if pair.same_answer {
                    "refused"
                } else {
                    "passed"
                },
                checked.err().map(verify::Mismatch::name),
                pair.category,
                pair.a,
                pair.b
            );
        }
        scored.push((
            dot(&a, &b),
            verified,
            pair.same_answer,
            pair.category.clone(),
        ));
    }
    let positives = scored.iter().filter(|(_, _, right, _)| *right).count();
    let negatives = scored.len() - positives;
    let _ = writeln!(
        out,
        "semantic cache, model {}, {} pairs: {positives} that share an answer, {negatives} hard negatives",
        embedder.name(),
        scored.len()
    );
    let verifier_false_rejections = scored
        .iter()
        .filter(|(_, verified, right, _)| *right && !verified)
        .count();
    let _ = writeln!(
        out,
        "verifier alone: refuses {verifier_false_rejections}/{positives} positives and {}/{negatives} negatives",
        scored
            .iter()
            .filter(|(_, verified, right, _)| !right && !verified)
            .count()
    );
    let _ = writeln!(
        out,
        "\nthreshold | similarity alone: hit rate, false hits, served right | with the verifier: hit rate, false hits, served right"
    );
    let mut chosen: [Option<f32>; 2] = [None, None];
    for step in 70..=99 {
        let threshold = step as f32 / 100.0;
        let mut row = format!("     {threshold:.2}");
        for (column, verifier) in [false, true].into_iter().enumerate() {
            let served = |right: bool| {
                scored
                    .iter()
                    .filter(|(similarity, verified, is_right, _)| {
                        *similarity >= threshold && (!verifier || *verified) && *is_right == right
                    })
                    .count()
            };
            let (hits, false_hits) = (served(true), served(false));
            let precision = if hits + false_hits == 0 {
                1.0
            } else {
                hits as f64 / (hits + false_hits) as f64
            };
            if precision >= 0.99 && chosen[column].is_none() {
                chosen[column] = Some(threshold);
            }
            row.push_str(&format!(
                " | {:>5.3} {:>5.3} {:>5.3}",
                hits as f64 / positives.max(1) as f64,
                false_hits as f64 / negatives.max(1) as f64,
                precision
            ));
        }
        let _ = writeln!(out, "{row}");
    }
    for (column, name) in ["similarity alone", "with the verifier"]
        .into_iter()
        .enumerate()
    {
        let Some(threshold) = chosen[column] else {
            let _ = writeln!(out, "\n{name}: no threshold serves 99% right answers");
            continue;
        };
        let verifier = column == 1;
        let _ = writeln!(
            out,
            "\n{name}: the lowest threshold serving >= 99% right answers is {threshold:.2}; false hits there by category:"
        );
        let mut categories: Vec<&str> = scored
            .iter()
            .filter(|(_, _, right, _)| !right)
            .map(|(_, _, _, category)| category.as_str())
            .collect();
        categories.sort_unstable();
        categories.dedup();
        for category in categories {
            let of: Vec<_> = scored
                .iter()
                .filter(|(_, _, _, own)| own == category)
                .collect();
            let served = of
                .iter()
                .filter(|(similarity, verified, _, _)| {
                    *similarity >= threshold && (!verifier || *verified)
                })
                .count();
            let _ = writeln!(out, "  {category:<20} {served}/{}", of.len());
        }
    }
    let (p50, p99) = percentiles(embed_times);
    let _ = writeln!(
        out,
        "\nembedding one text (this machine, one thread): p50 {:.1} ms, p99 {:.1} ms",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    // Lookups: random unit vectors in one scope, the search alone.
    let dimensions = embedder.dimensions();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let mut unit = move || {
        let vector: Vec<f32> = (0..dimensions).map(|_| random()).collect();
        let length = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
        vector.into_iter().map(|v| v / length).collect::<Vec<f32>>()
    };
    for &size in sizes {
        let index = Index::new(size, 20_000);
        let scope = Key([7; 32]);
        let mut kept = Vec::new();
        for number in 0..size {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(number as u64).to_le_bytes());
            let vector = unit();
            if number % (size / 200).max(1) == 0 {
                kept.push((number, vector.clone()));
            }
            index.insert(
                scope,
                &vector,
                Item {
                    key: Key(key),
                    text: number.to_string().into(),
                },
            );
        }
        // Queries near kept vectors (cosine about 0.93): the lookup must find each one's own.
        let (mut times, mut found) = (Vec::new(), 0);
        for (number, vector) in &kept {
            let noise = unit();
            let query: Vec<f32> = vector
                .iter()
                .zip(&noise)
                .map(|(own, other)| own + other * 0.4)
                .collect();
            let length = query.iter().map(|v| v * v).sum::<f32>().sqrt();
            let query: Vec<f32> = query.into_iter().map(|v| v / length).collect();
            let started = Instant::now();
            let best = index.search(&scope, &query, 0.8, 1);
            times.push(started.elapsed());
            if best
                .first()
                .is_some_and(|candidate| *candidate.item.text == *number.to_string())
            {
                found += 1;
            }
        }
        let (p50, p99) = percentiles(times);
        let _ = writeln!(
            out,
            "lookup among {size} entries of one scope ({}, {dimensions} dimensions): p50 {:.3} ms, p99 {:.3} ms, found its neighbour {found}/{}",
            if size >= 20_000 {
                "sign sketches, then cosine for 1024"
            } else {
                "exact cosine"
            },
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            kept.len()
        );
    }
    ExitCode::SUCCESS
}
