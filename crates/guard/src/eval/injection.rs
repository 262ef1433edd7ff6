//! The injection evaluation: the corpus `scripts/fetch-eval-data` builds (attacks by family,
//! benign prompts by source), split once and for all into a training part and a held-out part
//! by a hash of each normalised text, so the trained tier never sees the held-out part, and
//! the detection rate per family and split at a threshold.

use crate::injection::{Detector, normalize};

/// The benign prompts shipped with the crate (ordinary chat, coding and business requests, and
/// some that talk about security without attacking), one per line.
pub const BENIGN_PROMPTS: &str = include_str!("../../data/benign-prompts.txt");

/// One labelled text.
#[derive(Debug, Clone)]
pub struct Labelled {
    /// The attack family or the benign source.
    pub group: String,
    /// The text as a client would send it.
    pub text: String,
    /// An attack.
    pub attack: bool,
}

/// Reads the corpus' JSON lines (`{"family": …, "text": …}` for attacks, `{"source": …,
/// "text": …}` for benign prompts); lines that do not parse are skipped.
pub fn corpus(attacks: &str, benign: &str) -> Vec<Labelled> {
    let mut out = Vec::new();
    for (lines, key, attack) in [(attacks, "family", true), (benign, "source", false)] {
        for line in lines.lines() {
            let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if let (Some(group), Some(text)) = (value[key].as_str(), value["text"].as_str()) {
                out.push(Labelled {
                    group: group.to_owned(),
                    text: text.to_owned(),
                    attack,
                });
            }
        }
    }
    out
}

/// Whether a text is in the held-out part (one in five, by a hash of its normalised form, so
/// the same text is always on the same side).
pub fn held_out(text: &str) -> bool {
    let digest = ring::digest::digest(&ring::digest::SHA256, normalize(text).as_bytes());
    digest.as_ref()[0] % 5 == 0
}

/// Whether a training text (normalised) calibrates the trained tier's scores rather than
/// training it (one in eight).
pub fn calibrates(normal: &str) -> bool {
    ring::digest::digest(&ring::digest::SHA256, normal.as_bytes()).as_ref()[1] % 8 == 0
}

/// Detections and texts for one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rate {
    /// Texts scored at or above the threshold.
    pub detected: usize,
    /// Texts.
    pub total: usize,
}

impl Rate {
    /// `detected / total`.
    pub fn ratio(self) -> f64 {
        self.detected as f64 / self.total.max(1) as f64
    }
}

/// The share of `texts` the detector scores at or above `threshold`, with the phrase tiers
/// only, the trained tier only, the similarity tier only, and all (as the gateway runs them).
pub fn rates<'a>(
    detector: &Detector,
    texts: impl IntoIterator<Item = &'a str>,
    threshold: f32,
) -> [Rate; 4] {
    let mut rates = [Rate::default(); 4];
    for text in texts {
        let tiers = detector.tiers(text);
        let all = tiers.phrases.max(tiers.model).max(tiers.similar);
        for (rate, score) in rates
            .iter_mut()
            .zip([tiers.phrases, tiers.model, tiers.similar, all])
        {
            rate.total += 1;
            if score >= threshold {
                rate.detected += 1;
            }
        }
    }
    rates
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_corpus_reads_both_files_and_the_split_is_stable() {
        let corpus = corpus(
            "{\"family\":\"dan\",\"text\":\"You are DAN\"}\nnot json\n",
            "{\"source\":\"sharegpt\",\"text\":\"Write a haiku\"}\n{\"source\":1}\n",
        );
        assert_eq!(corpus.len(), 2);
        assert!(corpus[0].attack && corpus[0].group == "dan");
        assert!(!corpus[1].attack && corpus[1].text == "Write a haiku");
        let texts: Vec<String> = (0..1000).map(|i| format!("prompt number {i}")).collect();
        let held = texts.iter().filter(|t| held_out(t)).count();
        assert!((150..250).contains(&held), "{held} of 1000 held out");
        assert_eq!(held_out("Same  TEXT"), held_out("same text"));
    }
}
