//! The transformer tier's classifier: logistic regression over a sentence encoder's vector.
//! The encoder runs elsewhere (the gateway's MiniLM on candle, behind a cargo feature, so the
//! default build stays lean); this part is pure: scoring, training and the weights' file.
//!
//! The head that ships (`data/injection-minilm.bin`, 384 weights and a bias) is made by
//! `switchyard eval train-injection --encoder DIR` from the same corpus and split as the
//! n-gram tier, and calibrated the same way: a score of 0.8 is where its false-positive rate
//! on benign training texts kept out of the descent is [`Head::CALIBRATION_FALSE_POSITIVES`].

use crate::ngram::BadModel;

const MAGIC: &[u8; 8] = b"SYHEAD01";
/// The score calibration maps to the training cut (`logit(0.8)`).
const CUT_LOGIT: f32 = 1.386_294_4;

/// A trained head.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    weights: Vec<f32>,
    bias: f32,
}

/// How to train a head.
#[derive(Debug, Clone, Copy)]
pub struct HeadTraining {
    /// Passes over the examples.
    pub epochs: usize,
    /// AdaGrad's base step.
    pub rate: f32,
    /// L2 decay per step.
    pub decay: f32,
    /// How much more an attack counts than a benign text (the classes are unbalanced).
    pub attack_weight: f32,
    /// The shuffling's seed: the same examples give the same head.
    pub seed: u64,
}

impl Default for HeadTraining {
    fn default() -> HeadTraining {
        HeadTraining {
            epochs: 40,
            rate: 0.5,
            decay: 1e-6,
            attack_weight: 3.0,
            seed: 7,
        }
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl Head {
    /// The share of calibration texts (benign) allowed over 0.8.
    pub const CALIBRATION_FALSE_POSITIVES: f32 = 0.005;

    /// The head that ships with the crate, for all-MiniLM-L6-v2's 384-dimension vectors.
    pub fn shipped() -> Result<Head, BadModel> {
        Head::from_bytes(include_bytes!("../data/injection-minilm.bin"))
    }

    /// The vectors' length it reads.
    pub fn dimensions(&self) -> usize {
        self.weights.len()
    }

    fn margin(&self, vector: &[f32]) -> f32 {
        self.bias
            + self
                .weights
                .iter()
                .zip(vector)
                .map(|(weight, x)| weight * x)
                .sum::<f32>()
    }

    /// How likely the text behind `vector` is an injection, 0 to 1 (0 for a vector of
    /// another length).
    pub fn score(&self, vector: &[f32]) -> f32 {
        if vector.len() != self.weights.len() {
            return 0.0;
        }
        sigmoid(self.margin(vector))
    }

    /// Trains a head on `examples` (a text's vector, whether it is an attack) by stochastic
    /// gradient descent with AdaGrad steps, then calibrates it on `calibration` (benign
    /// texts' vectors the descent never saw).
    pub fn train(
        examples: &[(&[f32], bool)],
        calibration: &[&[f32]],
        options: HeadTraining,
    ) -> Head {
        let dimensions = examples.first().map_or(0, |(vector, _)| vector.len());
        let mut weights = vec![0f32; dimensions];
        let mut squares = vec![1e-6f32; dimensions];
        let (mut bias, mut bias_square) = (0f32, 1e-6f32);
        let mut order: Vec<usize> = (0..examples.len())
            .filter(|i| examples[*i].0.len() == dimensions)
            .collect();
        let mut rng = fastrand::Rng::with_seed(options.seed);
        for _ in 0..options.epochs {
            rng.shuffle(&mut order);
            for &i in &order {
                let (vector, attack) = examples[i];
                let margin = bias
                    + weights
                        .iter()
                        .zip(vector)
                        .map(|(weight, x)| weight * x)
                        .sum::<f32>();
                let target = if attack { 1.0 } else { 0.0 };
                let scale = if attack { options.attack_weight } else { 1.0 };
                let gradient = (sigmoid(margin) - target) * scale;
                for ((weight, square), x) in weights.iter_mut().zip(&mut squares).zip(vector) {
                    let g = gradient * x + options.decay * *weight;
                    *square += g * g;
                    *weight -= options.rate * g / square.sqrt();
                }
                bias_square += gradient * gradient;
                bias -= options.rate * gradient / bias_square.sqrt();
            }
        }
        let mut head = Head { weights, bias };
        head.calibrate(calibration);
        head
    }

    /// Shifts the bias so that [`Head::CALIBRATION_FALSE_POSITIVES`] of `benign` score over
    /// 0.8.
    fn calibrate(&mut self, benign: &[&[f32]]) {
        let mut margins: Vec<f32> = benign.iter().map(|vector| self.margin(vector)).collect();
        if margins.is_empty() {
            return;
        }
        margins.sort_by(|a, b| b.total_cmp(a));
        let allowed = (margins.len() as f32 * Head::CALIBRATION_FALSE_POSITIVES) as usize;
        let cut = margins[allowed.min(margins.len() - 1)];
        // The calibration text at the cut scores just under 0.8.
        self.bias += CUT_LOGIT - cut - 1e-4;
    }

    /// The head as its file: the magic, the dimension (u32), the bias and the weights
    /// (little-endian f32).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + 4 * self.weights.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.weights.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.bias.to_le_bytes());
        for weight in &self.weights {
            out.extend_from_slice(&weight.to_le_bytes());
        }
        out
    }

    /// Reads a head's file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Head, BadModel> {
        let rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or(BadModel("not a head file"))?;
        let word = |at: usize| -> Result<[u8; 4], BadModel> {
            rest.get(at..at + 4)
                .and_then(|word| word.try_into().ok())
                .ok_or(BadModel("truncated"))
        };
        let dimensions = u32::from_le_bytes(word(0)?) as usize;
        if rest.len() != 8 + 4 * dimensions || dimensions == 0 {
            return Err(BadModel("wrong length"));
        }
        let bias = f32::from_le_bytes(word(4)?);
        let weights = (0..dimensions)
            .map(|i| word(8 + 4 * i).map(f32::from_le_bytes))
            .collect::<Result<Vec<f32>, BadModel>>()?;
        if !bias.is_finite() || weights.iter().any(|weight| !weight.is_finite()) {
            return Err(BadModel("not finite"));
        }
        Ok(Head { weights, bias })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors near one of two directions, with noise.
    fn cloud(rng: &mut fastrand::Rng, attack: bool, count: usize) -> Vec<Vec<f32>> {
        (0..count)
            .map(|_| {
                let mut vector: Vec<f32> = (0..16).map(|_| rng.f32() * 0.6 - 0.3).collect();
                vector[if attack { 3 } else { 9 }] += 1.0;
                vector
            })
            .collect()
    }

    #[test]
    fn a_head_learns_to_tell_two_clouds_apart_and_is_calibrated() {
        let mut rng = fastrand::Rng::with_seed(1);
        let attacks = cloud(&mut rng, true, 200);
        let benign = cloud(&mut rng, false, 800);
        let calibration = cloud(&mut rng, false, 400);
        let examples: Vec<(&[f32], bool)> = attacks
            .iter()
            .map(|v| (v.as_slice(), true))
            .chain(benign.iter().map(|v| (v.as_slice(), false)))
            .collect();
        let calibration: Vec<&[f32]> = calibration.iter().map(Vec::as_slice).collect();
        let head = Head::train(&examples, &calibration, HeadTraining::default());
        let unseen_attacks = cloud(&mut rng, true, 100);
        let caught = unseen_attacks
            .iter()
            .filter(|v| head.score(v) >= 0.8)
            .count();
        assert!(caught >= 95, "{caught}");
        let over = calibration.iter().filter(|v| head.score(v) >= 0.8).count();
        assert!(over <= 2, "calibrated to 0.5%: {over}");
        assert_eq!(head.score(&[1.0; 3]), 0.0, "a vector of another length");
        let again = Head::from_bytes(&head.to_bytes()).expect("reads back");
        assert_eq!(again, head);
        assert!(Head::from_bytes(&head.to_bytes()[..20]).is_err());
        assert!(Head::from_bytes(b"SYNGRAM1....").is_err());
    }

    #[test]
    fn the_shipped_head_reads_minilm_vectors() {
        let head = Head::shipped().expect("the shipped head reads");
        assert_eq!(head.dimensions(), 384);
    }
}
