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
    ExitCode::SUCCESS
}
