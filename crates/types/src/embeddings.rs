//! The canonical embeddings request and response.
//!
//! Clients ask in OpenAI's `POST /v1/embeddings` shape; upstreams answer in their own (OpenAI,
//! Gemini `batchEmbedContents`, Bedrock Titan and Cohere). What every dialect can express lives
//! here; OpenAI fields with no canonical place travel in [`EmbeddingRequest::extra`].

use serde_json::{Map, Value};

use crate::usage::Usage;

/// One embeddings request: one vector is wanted per input, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingRequest {
    /// The model (group) the client asked for.
    pub model: String,
    /// What to embed: never empty once decoded.
    pub inputs: Inputs,
    /// The length each vector should have, when the client chose one.
    pub dimensions: Option<u32>,
    /// How the client wants the vectors written.
    pub encoding: Encoding,
    /// The end user's id (OpenAI `user`).
    pub user: Option<String>,
    /// OpenAI fields with no canonical place, in the client's order: forwarded to
    /// OpenAI-compatible upstreams, read by name where another dialect has a use for one
    /// (`input_type`), dropped otherwise.
    pub extra: Map<String, Value>,
}

/// The inputs of a request: texts, or texts already tokenized (OpenAI only).
#[derive(Debug, Clone, PartialEq)]
pub enum Inputs {
    /// One text per vector.
    Texts(Vec<String>),
    /// One array of token ids per vector.
    Tokens(Vec<Vec<u32>>),
}

impl Inputs {
    /// How many vectors the request asks for.
    pub fn len(&self) -> usize {
        match self {
            Inputs::Texts(texts) => texts.len(),
            Inputs::Tokens(tokens) => tokens.len(),
        }
    }

    /// Whether there is nothing to embed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The texts, when the inputs are texts.
    pub fn texts(&self) -> Option<&[String]> {
        match self {
            Inputs::Texts(texts) => Some(texts),
            Inputs::Tokens(_) => None,
        }
    }
}

/// How vectors are written in an OpenAI response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// A JSON array of numbers.
    #[default]
    Float,
    /// Standard base64 (with padding) of the vector's little-endian `f32` bytes.
    Base64,
}

impl Encoding {
    /// OpenAI's name for it (`encoding_format`).
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Float => "float",
            Encoding::Base64 => "base64",
        }
    }
}

/// The vectors an upstream computed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EmbeddingResponse {
    /// The model that answered, as the upstream named it.
    pub model: String,
    /// One vector per input, in the inputs' order.
    pub vectors: Vec<Vec<f32>>,
    /// Token counts: only `prompt_tokens` is ever set, and it is 0 when the upstream reports
    /// none (Gemini, Cohere on Bedrock).
    pub usage: Usage,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_count_vectors_of_either_kind() {
        let texts = Inputs::Texts(vec!["a".into(), "b".into()]);
        assert_eq!(texts.len(), 2);
        assert_eq!(texts.texts().map(<[String]>::len), Some(2));
        let tokens = Inputs::Tokens(vec![vec![1, 2, 3]]);
        assert_eq!(tokens.len(), 1);
        assert!(tokens.texts().is_none());
        assert!(Inputs::Texts(Vec::new()).is_empty());
    }

    #[test]
    fn encodings_have_openai_names() {
        assert_eq!(Encoding::default(), Encoding::Float);
        assert_eq!(Encoding::Float.as_str(), "float");
        assert_eq!(Encoding::Base64.as_str(), "base64");
    }
}
