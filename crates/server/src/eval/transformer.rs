//! `switchyard eval train-transformer`: the injection guard's transformer tier. Every text of
//! the injection corpus is read by the encoder in windows, as the gateway reads a message (the
//! vectors are kept in a file beside the corpus, so later runs skip the encoder); the
//! classifier is trained on the training part (less any family left out) and calibrated as the
//! n-gram tier is, written where the crate ships it, and its detection rate printed per
//! family on both parts: alone, the other tiers, and all of them.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use switchyard_gateway::cache::semantic::Embedder;
use switchyard_gateway::cache::semantic::minilm::MiniLm;
use switchyard_guard::eval::injection::{Labelled, Rate, calibrates, held_out};
use switchyard_guard::head::{Head, HeadTraining};
use switchyard_guard::injection::{Detector, normalize};

const MAGIC: &[u8; 8] = b"SYVECS01";

/// What `eval train-transformer` is asked.
pub struct Options<'a> {
    pub model: &'a Path,
    pub data: &'a Path,
    pub out: Option<&'a Path>,
    pub leave_out: &'a [String],
    pub max_windows: usize,
    pub threshold: f32,
    pub training: HeadTraining,
}

/// Each text's window vectors: from the file beside the corpus when it was made for the same
/// texts, encoder and windows, else read by the encoder (on every core) and kept there.
fn vectors(
    encoder: &MiniLm,
    corpus: &[Labelled],
    folder: &Path,
    max_windows: usize,
) -> Result<Vec<Vec<Vec<f32>>>, String> {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in corpus
        .iter()
        .flat_map(|item| item.text.bytes().chain([0]))
        .chain(encoder.name().bytes())
        .chain((max_windows as u64).to_le_bytes())
    {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    let file = folder.join("transformer-vectors.bin");
    if let Ok(bytes) = std::fs::read(&file)
        && let Some(vectors) = read_vectors(&bytes, hash, corpus.len(), encoder.dimensions())
    {
        return Ok(vectors);
    }
    let started = std::time::Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = corpus.len().div_ceil(threads).max(1);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let parts: Vec<Result<Vec<Vec<Vec<f32>>>, String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = corpus
            .chunks(chunk)
            .map(|items| {
                let done = &done;
                scope.spawn(move || {
                    items
                        .iter()
                        .map(|item| {
                            let vectors = encoder
                                .embed_windows(&item.text, max_windows)
                                .map_err(|error| error.to_string());
                            let count = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if count % 1000 == 999 {
                                eprintln!(
                                    "  {} of {} texts read ({:.0} s)",
                                    count + 1,
                                    corpus.len(),
                                    started.elapsed().as_secs_f64()
                                );
                            }
                            vectors
                        })
                        .collect()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|_| Err("a worker panicked".to_owned()))
            })
            .collect()
    });
    let mut vectors = Vec::with_capacity(corpus.len());
    for part in parts {
        vectors.extend(part?);
    }
    let mut bytes = Vec::new();
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&hash.to_le_bytes());
    for windows in &vectors {
        bytes.extend_from_slice(&(windows.len() as u32).to_le_bytes());
        for vector in windows {
            for x in vector {
                bytes.extend_from_slice(&x.to_le_bytes());
            }
        }
    }
    std::fs::write(&file, bytes).map_err(|error| format!("{}: {error}", file.display()))?;
    eprintln!(
        "read {} texts in {:.0} s into {}",
        corpus.len(),
        started.elapsed().as_secs_f64(),
        file.display()
    );
    Ok(vectors)
}

fn read_vectors(
    bytes: &[u8],
    hash: u64,
    texts: usize,
    dimensions: usize,
) -> Option<Vec<Vec<Vec<f32>>>> {
    let rest = bytes.strip_prefix(MAGIC.as_slice())?;
    let (stored, mut rest) = rest.split_at_checked(8)?;
    if u64::from_le_bytes(stored.try_into().ok()?) != hash {
        return None;
    }
    let mut vectors = Vec::with_capacity(texts);
    for _ in 0..texts {
        let (count, after) = rest.split_at_checked(4)?;
        let count = u32::from_le_bytes(count.try_into().ok()?) as usize;
        let (floats, after) = after.split_at_checked(count * dimensions * 4)?;
        let floats: Vec<f32> = floats
            .chunks_exact(4)
            .map(|word| f32::from_le_bytes([word[0], word[1], word[2], word[3]]))
            .collect();
        vectors.push(floats.chunks(dimensions).map(<[f32]>::to_vec).collect());
        rest = after;
    }
    rest.is_empty().then_some(vectors)
}

/// Trains, writes and measures the transformer tier.
pub fn run(corpus: &[Labelled], options: &Options<'_>) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let encoder = match MiniLm::load(options.model) {
        Ok(encoder) => encoder,
        Err(error) => {
            eprintln!("{}: {error}", options.model.display());
            return ExitCode::FAILURE;
        }
    };
    let vectors = match vectors(&encoder, corpus, options.data, options.max_windows) {
        Ok(vectors) => vectors,
        Err(error) => {
            eprintln!("reading the corpus: {error}");
            return ExitCode::FAILURE;
        }
    };
    // The same split as the n-gram tier: the held-out part never trains; one benign text in
    // eight of the training part calibrates.
    let mut examples: Vec<(&[f32], bool)> = Vec::new();
    let mut calibration: Vec<&[f32]> = Vec::new();
    for (item, windows) in corpus.iter().zip(&vectors) {
        if held_out(&item.text) || options.leave_out.contains(&item.group) {
            continue;
        }
        if item.attack {
            examples.extend(windows.iter().take(1).map(|v| (v.as_slice(), true)));
        } else if calibrates(&normalize(&item.text)) {
            calibration.extend(windows.iter().map(Vec::as_slice));
        } else {
            examples.extend(windows.iter().map(|v| (v.as_slice(), false)));
        }
    }
    let started = std::time::Instant::now();
    let head = Head::train(&examples, &calibration, options.training);
    let _ = writeln!(
        out,
        "trained on {} windows ({} attacks), calibrated on {} benign windows, in {:.1} s, {:?}",
        examples.len(),
        examples.iter().filter(|(_, attack)| *attack).count(),
        calibration.len(),
        started.elapsed().as_secs_f64(),
        options.training
    );
    if let Some(file) = options.out {
        if let Err(error) = std::fs::write(file, head.to_bytes()) {
            eprintln!("{}: {error}", file.display());
            return ExitCode::FAILURE;
        }
        let _ = writeln!(out, "classifier: {}", file.display());
    }
    let detector = match Detector::new() {
        Ok(detector) => detector,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let threshold = options.threshold;
    let _ = writeln!(
        out,
        "transformer tier (threshold {threshold}), detected / texts: the transformer alone, the other tiers, all"
    );
    let _ = writeln!(
        out,
        "  {:<22} {:<9} {:>16} {:>16} {:>16}",
        "group", "part", "transformer", "others", "all"
    );
    let mut groups: BTreeMap<(bool, &str, bool), [Rate; 3]> = BTreeMap::new();
    let mut totals: BTreeMap<(bool, bool), [Rate; 3]> = BTreeMap::new();
    for (item, windows) in corpus.iter().zip(&vectors) {
        let score = windows
            .iter()
            .map(|vector| head.score(vector))
            .fold(0.0, f32::max);
        let mine = score >= threshold;
        let others = detector.detect(&item.text).score >= threshold;
        let held = held_out(&item.text);
        for rates in [
            groups.entry((!item.attack, &item.group, held)).or_default(),
            totals.entry((!item.attack, held)).or_default(),
        ] {
            for (rate, hit) in rates.iter_mut().zip([mine, others, mine || others]) {
                rate.total += 1;
                rate.detected += usize::from(hit);
            }
        }
    }
    let cell = |rate: &Rate| format!("{}/{} {:.3}", rate.detected, rate.total, rate.ratio());
    for ((benign, group, held), rates) in &groups {
        let part = if *held { "held-out" } else { "training" };
        let kind = if *benign { "benign " } else { "" };
        let left = if options.leave_out.iter().any(|left| left == group) {
            " (left out)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {:<22} {part:<9} {:>16} {:>16} {:>16}{left}",
            format!("{kind}{group}"),
            cell(&rates[0]),
            cell(&rates[1]),
            cell(&rates[2])
        );
    }
    for ((benign, held), rates) in totals {
        let (what, part) = super::total_label(benign, held);
        let _ = writeln!(
            out,
            "  {what:<22} {part:<9} {:>16} {:>16} {:>16}",
            cell(&rates[0]),
            cell(&rates[1]),
            cell(&rates[2])
        );
    }
    ExitCode::SUCCESS
}
