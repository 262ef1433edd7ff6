//! `switchyard eval guards`: the PII guard's precision, recall and F2 per entity on a labelled
//! set made from presidio-evaluator's templates and fake identities (`scripts/fetch-eval-data`
//! puts them in `.cache/eval/presidio`), and the whole input scan's time per prompt size;
//! the injection detector per attack family and benign source on the training and held-out
//! parts of its corpus; `switchyard eval train-injection` trains its n-gram tier.

mod cache;
#[cfg(feature = "semantic-cache")]
mod semantic;
#[cfg(feature = "semantic-cache")]
mod transformer;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use switchyard_guard::Scanner;
use switchyard_guard::eval;
use switchyard_guard::eval::injection::{self, Labelled, Rate, calibrates, held_out, rates};
use switchyard_guard::head::HeadTraining;
use switchyard_guard::injection::{Detector, normalize};
use switchyard_guard::ngram::{Example, Model, Training};
use switchyard_guard::scan::{pii_recognizers, secret_recognizers};
use switchyard_guard::similar::Corpus;

/// What to evaluate.
#[derive(Debug, Subcommand)]
pub enum Eval {
    /// The PII and secret guards: scores per entity and scan time.
    Guards {
        /// The folder `scripts/fetch-eval-data` filled.
        #[arg(long, default_value = ".cache/eval/presidio")]
        data: PathBuf,
        /// Samples made from each template.
        #[arg(long, default_value_t = 20)]
        per_template: usize,
        /// The seed of the fake values (the same set every run).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The score a finding needs (as `guards.pii.threshold`).
        #[arg(long, default_value_t = 0.5)]
        threshold: f32,
        /// Scans timed per prompt size.
        #[arg(long, default_value_t = 2000)]
        timed_scans: usize,
        /// Prints up to this many missed values and false findings per entity.
        #[arg(long, default_value_t = 0)]
        show: usize,
        /// The injection corpus (`scripts/fetch-eval-data`).
        #[arg(long, default_value = ".cache/eval/injection")]
        injection: PathBuf,
        /// A model file to score with instead of the shipped one (`eval train-injection`).
        #[arg(long)]
        model: Option<PathBuf>,
        /// A sketch corpus to score with instead of the shipped one.
        #[arg(long)]
        similar: Option<PathBuf>,
        /// The injection score that blocks (as `guards.injection.threshold`).
        #[arg(long, default_value_t = 0.8)]
        injection_threshold: f32,
    },
    /// The exact cache: the key's time, lookups at each size (hits, another tenant's prompts,
    /// prompts nobody asked), in memory or in Redis.
    Cache {
        /// Entries to fill the cache with, one run each.
        #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
        entries: Vec<usize>,
        /// Lookups timed of each kind.
        #[arg(long, default_value_t = 10_000)]
        lookups: usize,
        /// A Redis to measure instead of the in-process cache (`redis://127.0.0.1:6379`).
        #[arg(long)]
        redis: Option<String>,
    },
    /// The semantic cache: hit rate and false hits per threshold on labelled pairs, by
    /// similarity alone and with the verifier; the lookup's and the embedding's time (a build
    /// with `--features semantic-cache`).
    Semantic {
        /// The model folder (`scripts/fetch-models`).
        #[arg(long, default_value = ".cache/models/all-minilm-l6-v2")]
        model: PathBuf,
        /// The labelled pairs (`scripts/fetch-eval-data`).
        #[arg(long, default_value = ".cache/eval/semantic/pairs.jsonl")]
        pairs: PathBuf,
        /// Index sizes to time lookups at.
        #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
        entries: Vec<usize>,
        /// Prints the pairs the verifier gets wrong.
        #[arg(long)]
        show: bool,
    },
    /// Trains the injection detector's n-gram tier on the training part of the corpus (the
    /// held-out part is never read) and writes the model the crate ships.
    TrainInjection {
        /// The injection corpus (`scripts/fetch-eval-data`).
        #[arg(long, default_value = ".cache/eval/injection")]
        data: PathBuf,
        /// Where the model goes.
        #[arg(long, default_value = "crates/guard/data/injection-ngram.bin")]
        out: PathBuf,
        /// Where the sketches of the training attacks go (the similarity tier).
        #[arg(long, default_value = "crates/guard/data/injection-similar.bin")]
        similar_out: PathBuf,
        /// Passes over the training part.
        #[arg(long, default_value_t = Training::default().epochs)]
        epochs: usize,
        /// L2 decay per step.
        #[arg(long, default_value_t = Training::default().decay)]
        decay: f32,
        /// AdaGrad's base step.
        #[arg(long, default_value_t = Training::default().rate)]
        rate: f32,
        /// An attack's weight in the loss relative to a benign window.
        #[arg(long, default_value_t = Training::default().attack_weight)]
        attack_weight: f32,
        /// Attack families left out of training altogether (to measure the tier on a
        /// family it never saw).
        #[arg(long)]
        leave_out: Vec<String>,
        /// The seed of the shuffles.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Trains the injection guard's transformer tier: the corpus read by a local encoder (a
    /// build with `--features semantic-cache`), a classifier over its vectors trained on the
    /// training part and written where the crate ships it, and its rates per family.
    TrainTransformer {
        /// The encoder's folder (`scripts/fetch-models`).
        #[arg(long, default_value = ".cache/models/all-minilm-l6-v2")]
        model: PathBuf,
        /// The injection corpus (`scripts/fetch-eval-data`); the vectors are kept beside it.
        #[arg(long, default_value = ".cache/eval/injection")]
        data: PathBuf,
        /// Where the classifier goes (not written when families are left out, unless given).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Attack families left out of training altogether.
        #[arg(long)]
        leave_out: Vec<String>,
        /// The most windows read from one text (as `guards.injection.transformer.max_windows`).
        #[arg(long, default_value_t = 8)]
        max_windows: usize,
        /// The score that counts as an injection.
        #[arg(long, default_value_t = 0.8)]
        threshold: f32,
        /// Passes over the training part.
        #[arg(long, default_value_t = HeadTraining::default().epochs)]
        epochs: usize,
        /// An attack's weight in the loss relative to a benign window.
        #[arg(long, default_value_t = HeadTraining::default().attack_weight)]
        attack_weight: f32,
    },
}

/// Runs an evaluation and prints its figures.
pub fn run(command: Eval) -> ExitCode {
    match command {
        Eval::TrainInjection {
            data,
            out,
            similar_out,
            epochs,
            decay,
            rate,
            attack_weight,
            leave_out,
            seed,
        } => train_injection(
            &data,
            &out,
            &similar_out,
            &leave_out,
            Training {
                epochs,
                decay,
                rate,
                attack_weight,
                seed,
            },
        ),
        guards @ Eval::Guards { .. } => evaluate_guards(guards),
        #[cfg(feature = "semantic-cache")]
        Eval::TrainTransformer {
            model,
            data,
            out,
            leave_out,
            max_windows,
            threshold,
            epochs,
            attack_weight,
        } => {
            let Some(corpus) = read_corpus(&data) else {
                eprintln!(
                    "{}: no attacks.jsonl and benign.jsonl; run scripts/fetch-eval-data first",
                    data.display()
                );
                return ExitCode::FAILURE;
            };
            let shipped = PathBuf::from("crates/guard/data/injection-minilm.bin");
            let out = out.or_else(|| leave_out.is_empty().then_some(shipped));
            transformer::run(
                &corpus,
                &transformer::Options {
                    model: &model,
                    data: &data,
                    out: out.as_deref(),
                    leave_out: &leave_out,
                    max_windows,
                    threshold,
                    training: HeadTraining {
                        epochs,
                        attack_weight,
                        ..HeadTraining::default()
                    },
                },
            )
        }
        #[cfg(not(feature = "semantic-cache"))]
        Eval::TrainTransformer { .. } => {
            eprintln!("this build has no local encoder: build with --features semantic-cache");
            ExitCode::FAILURE
        }
        Eval::Cache {
            entries,
            lookups,
            redis,
        } => cache::run(&entries, lookups.max(1), redis.as_deref()),
        #[cfg(feature = "semantic-cache")]
        Eval::Semantic {
            model,
            pairs,
            entries,
            show,
        } => semantic::run(&model, &pairs, &entries, usize::from(show)),
        #[cfg(not(feature = "semantic-cache"))]
        Eval::Semantic { .. } => {
            eprintln!("this build has no local embedder: build with --features semantic-cache");
            ExitCode::FAILURE
        }
    }
}

fn evaluate_guards(command: Eval) -> ExitCode {
    let Eval::Guards {
        data,
        per_template,
        seed,
        threshold,
        timed_scans,
        show,
        injection: corpus,
        model,
        similar,
        injection_threshold,
    } = command
    else {
        return ExitCode::FAILURE;
    };
    let read = |name: &str| std::fs::read_to_string(data.join(name));
    let (Ok(templates), Ok(identities)) = (read("templates.txt"), read("identities.csv")) else {
        eprintln!(
            "{}: no templates.txt and identities.csv; run scripts/fetch-eval-data first",
            data.display()
        );
        return ExitCode::FAILURE;
    };
    let identities = eval::identities(&identities);
    let samples = eval::generate(&templates, &identities, per_template, seed);
    let pii = match Scanner::new(pii_recognizers(), threshold, HashMap::new()) {
        Ok(scanner) => scanner,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let counts = eval::evaluate(&pii, &samples);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "PII: {} sentences ({} templates x {per_template}, seed {seed}), {} identities, threshold {threshold}",
        samples.len(),
        templates.lines().filter(|l| !l.trim().is_empty()).count(),
        identities.len()
    );
    table(&mut out, &counts);
    if show > 0 {
        for (entity, text) in eval::mistakes(&pii, &samples, show) {
            let _ = writeln!(out, "  {entity}: {text}");
        }
    }
    held_out_pii(&mut out, &pii, &identities, &corpus, seed, show);
    let secrets = match Scanner::new(secret_recognizers(), 0.5, HashMap::new()) {
        Ok(scanner) => scanner,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let credentials = eval::secrets::generate(per_template.div_ceil(4), seed);
    let _ = writeln!(
        out,
        "secrets: {} texts (every kind in 6 places, and look-alikes in the same places), seed {seed}",
        credentials.len()
    );
    table(&mut out, &eval::evaluate(&secrets, &credentials));
    // What the guard acts on: a credential found under any secret kind is blocked or redacted.
    let (mut caught, mut planted, mut false_alarms, mut decoys) = (0, 0, 0, 0);
    for sample in &credentials {
        let found = secrets.scan(&sample.text);
        if sample.truth.is_empty() {
            decoys += 1;
            false_alarms += usize::from(!found.is_empty());
        } else {
            planted += 1;
            let (_, start, end) = &sample.truth[0];
            caught += usize::from(found.iter().any(|f| f.start < *end && *start < f.end));
        }
    }
    let _ = writeln!(
        out,
        "any secret kind: {caught} / {planted} credentials caught (recall {:.3}), {false_alarms} / {decoys} look-alikes flagged",
        caught as f64 / planted.max(1) as f64
    );
    if show > 0 {
        for (entity, text) in eval::mistakes(&secrets, &credentials, show) {
            let _ = writeln!(out, "  {entity}: {text}");
        }
    }
    let mut all = pii_recognizers();
    all.extend(secret_recognizers());
    let Ok(everything) = Scanner::new(all, threshold, HashMap::new()) else {
        return ExitCode::FAILURE;
    };

    let read =
        |path: &Path| std::fs::read(path).map_err(|error| format!("{}: {error}", path.display()));
    let model = match model {
        None => Model::shipped().map_err(|error| error.to_string()),
        Some(path) => read(&path)
            .and_then(|bytes| Model::from_bytes(&bytes).map_err(|error| error.to_string())),
    };
    let similar = match similar {
        None => Corpus::shipped().map_err(|error| error.to_string()),
        Some(path) => read(&path)
            .and_then(|bytes| Corpus::from_bytes(&bytes).map_err(|error| error.to_string())),
    };
    let detector = model.and_then(|model| {
        Ok(Detector::with_model(Some(model))
            .map_err(|error| error.to_string())?
            .with_similar(Some(similar?)))
    });
    let detector = match detector {
        Ok(detector) => detector,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let Ok(phrases) = Detector::with_model(None) else {
        return ExitCode::FAILURE;
    };
    let timed: [(&str, &Guard); 4] = [
        ("every PII and secret recognizer", &|text| {
            std::hint::black_box(everything.scan(text));
        }),
        ("injection detector, phrase tiers", &|text| {
            std::hint::black_box(phrases.detect(text));
        }),
        ("injection detector, every tier", &|text| {
            std::hint::black_box(detector.detect(text));
        }),
        ("the whole input guard set", &|text| {
            std::hint::black_box(everything.scan(text));
            std::hint::black_box(detector.detect(text));
        }),
    ];
    for (name, guard) in timed {
        for size in [1024, 4096, 16_384] {
            let (p50, p99) = eval::latency(guard, &samples, size, timed_scans);
            let _ = writeln!(
                out,
                "time, {name}, {:>2} KiB prompts: p50 {:>6.1} us, p99 {:>6.1} us ({timed_scans} runs)",
                size / 1024,
                p50.as_secs_f64() * 1e6,
                p99.as_secs_f64() * 1e6
            );
        }
    }
    injection(
        &mut out,
        &detector,
        &corpus,
        &samples,
        injection_threshold,
        show,
    );
    ExitCode::SUCCESS
}

/// The injection detector's true-positive rate per attack family and false-positive rate per
/// benign source, on the training and the held-out part, for the phrase tiers, the trained
/// tier and both.
fn injection(
    out: &mut impl Write,
    detector: &Detector,
    corpus_dir: &Path,
    samples: &[eval::Sample],
    threshold: f32,
    show: usize,
) {
    let Some(corpus) = read_corpus(corpus_dir) else {
        let _ = writeln!(
            out,
            "injection: no corpus in {}; run scripts/fetch-eval-data",
            corpus_dir.display()
        );
        return;
    };
    let mut groups: BTreeMap<(bool, &str, bool), Vec<&str>> = BTreeMap::new();
    for item in &corpus {
        groups
            .entry((!item.attack, &item.group, held_out(&item.text)))
            .or_default()
            .push(&item.text);
    }
    let shipped: Vec<&str> = injection::BENIGN_PROMPTS.lines().collect();
    let sentences: Vec<&str> = samples.iter().map(|sample| sample.text.as_str()).collect();
    groups.insert((true, "shipped prompts", true), shipped);
    groups.insert((true, "presidio sentences", true), sentences);
    let _ = writeln!(
        out,
        "injection (threshold {threshold}), detected / texts per tier: phrases, trained, similar, all"
    );
    let _ = writeln!(
        out,
        "  {:<22} {:<9} {:>16} {:>16} {:>16} {:>16}",
        "group", "part", "phrases", "trained", "similar", "all"
    );
    let mut totals: BTreeMap<(bool, bool), [Rate; 4]> = BTreeMap::new();
    for ((benign, group, held), texts) in &groups {
        let rates = rates(detector, texts.iter().copied(), threshold);
        let total = totals.entry((*benign, *held)).or_default();
        for (sum, rate) in total.iter_mut().zip(rates) {
            sum.detected += rate.detected;
            sum.total += rate.total;
        }
        let part = if *held { "held-out" } else { "training" };
        let kind = if *benign { "benign " } else { "" };
        let _ = writeln!(
            out,
            "  {:<22} {part:<9} {}",
            format!("{kind}{group}"),
            row(&rates)
        );
        if *held {
            // The held-out part's mistakes: benign texts flagged, attacks missed.
            let wrong = texts
                .iter()
                .filter(|text| (detector.detect(text).score >= threshold) == *benign)
                .take(show);
            for text in wrong {
                let cut: String = text.chars().take(160).collect();
                let _ = writeln!(
                    out,
                    "      {:.2} {:?}",
                    detector.detect(text).score,
                    cut.replace('\n', " ")
                );
            }
        }
    }
    for ((benign, held), rates) in totals {
        let (what, part) = total_label(benign, held);
        let _ = writeln!(out, "  {what:<22} {part:<9} {}", row(&rates));
    }
}

/// Precision, recall and F2 per entity, and over all of them.
fn table(out: &mut impl Write, counts: &BTreeMap<std::sync::Arc<str>, eval::Counts>) {
    let _ = writeln!(
        out,
        "{:<16} {:>6} {:>6} {:>6} {:>6} {:>9} {:>7} {:>6}",
        "entity", "truth", "tp", "fp", "fn", "precision", "recall", "f2"
    );
    let mut total = eval::Counts::default();
    for (entity, c) in counts {
        let _ = writeln!(
            out,
            "{entity:<16} {:>6} {:>6} {:>6} {:>6} {:>9.3} {:>7.3} {:>6.3}",
            c.truth,
            c.true_positives,
            c.false_positives,
            c.false_negatives,
            c.precision(),
            c.recall(),
            c.f2()
        );
        total.truth += c.truth;
        total.true_positives += c.true_positives;
        total.false_positives += c.false_positives;
        total.false_negatives += c.false_negatives;
    }
    let _ = writeln!(
        out,
        "{:<16} {:>6} {:>6} {:>6} {:>6} {:>9.3} {:>7.3} {:>6.3}",
        "all",
        total.truth,
        total.true_positives,
        total.false_positives,
        total.false_negatives,
        total.precision(),
        total.recall(),
        total.f2()
    );
}

/// The PII scanner on values put into people's chat turns (the injection corpus' held-out
/// ShareGPT turns): entities the templates did not shape.
fn held_out_pii(
    out: &mut impl Write,
    pii: &Scanner,
    identities: &[eval::Identity],
    corpus_dir: &Path,
    seed: u64,
    show: usize,
) {
    let Some(corpus) = read_corpus(corpus_dir) else {
        return;
    };
    let turns: Vec<&str> = corpus
        .iter()
        .filter(|item| item.group == "sharegpt" && held_out(&item.text) && item.text.len() <= 4000)
        .map(|item| item.text.as_str())
        .collect();
    let samples = eval::in_turns(&turns, identities, seed);
    let _ = writeln!(
        out,
        "PII held out: {} ShareGPT turns (held-out part, up to 4,000 bytes), one value put in each; \
         findings in the turns' own text count as false",
        samples.len()
    );
    table(out, &eval::evaluate(pii, &samples));
    if show > 0 {
        for (entity, text) in eval::mistakes(pii, &samples, show) {
            let cut: String = text.chars().take(200).collect();
            let _ = writeln!(out, "  {entity}: {}", cut.replace('\n', " "));
        }
    }
}

/// A guard timed on a prompt.
type Guard<'a> = dyn Fn(&str) + 'a;

fn row(rates: &[Rate; 4]) -> String {
    rates
        .iter()
        .map(|rate| {
            format!(
                "{:>16}",
                format!("{}/{} {:.3}", rate.detected, rate.total, rate.ratio())
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn read_corpus(dir: &Path) -> Option<Vec<Labelled>> {
    let attacks = std::fs::read_to_string(dir.join("attacks.jsonl")).ok()?;
    let benign = std::fs::read_to_string(dir.join("benign.jsonl")).ok()?;
    Some(injection::corpus(&attacks, &benign))
}

/// Trains the injection detector's n-gram tier on the training part of the corpus and writes
/// the model file: one benign text in eight of the training part is kept out of the descent
/// to calibrate the scores on. Sketches the training part's attacks for the similarity tier.
fn train_injection(
    data: &Path,
    out_file: &Path,
    similar_file: &Path,
    leave_out: &[String],
    options: Training,
) -> ExitCode {
    let Some(corpus) = read_corpus(data) else {
        eprintln!(
            "{}: no attacks.jsonl and benign.jsonl; run scripts/fetch-eval-data first",
            data.display()
        );
        return ExitCode::FAILURE;
    };
    let normal: Vec<(String, bool)> = corpus
        .iter()
        .filter(|item| !held_out(&item.text) && !leave_out.contains(&item.group))
        .map(|item| (normalize(&item.text), item.attack))
        .collect();
    let calibration: Vec<&str> = normal
        .iter()
        .filter(|(text, attack)| !attack && calibrates(text))
        .map(|(text, _)| text.as_str())
        .collect();
    let examples: Vec<Example<'_>> = normal
        .iter()
        .filter(|(text, attack)| *attack || !calibrates(text))
        .map(|(text, attack)| Example {
            text,
            attack: *attack,
        })
        .collect();
    let started = std::time::Instant::now();
    let model = switchyard_guard::ngram::train(&examples, &calibration, options);
    let known = Corpus::build(
        examples
            .iter()
            .filter(|example| example.attack)
            .map(|example| example.text),
    );
    for (file, bytes) in [
        (out_file, model.to_bytes()),
        (similar_file, known.to_bytes()),
    ] {
        if let Err(error) = std::fs::write(file, bytes) {
            eprintln!("{}: {error}", file.display());
            return ExitCode::FAILURE;
        }
    }
    let _ = writeln!(
        std::io::stdout().lock(),
        "trained on {} texts ({} attacks), calibrated on {} benign, of {} ({} held out or left out), {options:?}, in {:.1} s: {}",
        examples.len(),
        examples.iter().filter(|e| e.attack).count(),
        calibration.len(),
        corpus.len(),
        corpus.len() - normal.len(),
        started.elapsed().as_secs_f64(),
        out_file.display()
    );
    let _ = writeln!(
        std::io::stdout().lock(),
        "{} sketches of known jailbreaks: {}",
        known.len(),
        similar_file.display()
    );
    ExitCode::SUCCESS
}

/// The label of a totals row: which texts, and which part of the corpus.
pub(crate) fn total_label(benign: bool, held: bool) -> (&'static str, &'static str) {
    let what = if benign {
        "all benign (fp rate)"
    } else {
        "all attacks (tp rate)"
    };
    (what, if held { "held-out" } else { "training" })
}
