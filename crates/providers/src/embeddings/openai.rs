//! OpenAI's embeddings API, both ways: a client's `POST /v1/embeddings` body into the canonical
//! request ([`decode_request`]) and the canonical response into the client's answer
//! ([`encode_response`]); the canonical request into the body an OpenAI-compatible upstream
//! takes ([`encode_request`]) and its answer back ([`decode_response`]).
//! <https://platform.openai.com/docs/api-reference/embeddings/create>

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Unexpected, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use switchyard_types::{ApiError, EmbeddingRequest, EmbeddingResponse, Encoding, Inputs, Usage};

use super::{base64, malformed, unexpected};
use crate::json;

/// Most inputs one request may hold (OpenAI's documented limit).
pub const MAX_INPUTS: usize = 2048;

/// The request fields the canonical model has a place for: never taken from `extra`.
const KNOWN_FIELDS: [&str; 5] = ["model", "input", "encoding_format", "dimensions", "user"];

/// Reads a client's request. A field of the wrong type is a 400 naming it (`input[2]`,
/// `dimensions`); so are an empty `input` (no items, an empty string, an empty token array),
/// more than [`MAX_INPUTS`] items, an `encoding_format` other than `float` or `base64`, and
/// `dimensions: 0`. Unknown fields are kept in `extra`.
pub fn decode_request(body: &[u8]) -> Result<EmbeddingRequest, ApiError> {
    let wire: RequestIn = json::parse(body)?;
    let inputs = match wire.input {
        InputIn::Text(text) => {
            if text.is_empty() {
                return Err(invalid("'input' must not be an empty string", "input"));
            }
            Inputs::Texts(vec![text])
        }
        InputIn::Texts(texts) => {
            if let Some(at) = texts.iter().position(String::is_empty) {
                return Err(invalid(
                    format!("'input[{at}]' must not be an empty string"),
                    format!("input[{at}]"),
                ));
            }
            Inputs::Texts(texts)
        }
        InputIn::TokenIds(ids) => Inputs::Tokens(vec![ids]),
        InputIn::TokenArrays(arrays) => {
            if let Some(at) = arrays.iter().position(Vec::is_empty) {
                return Err(invalid(
                    format!("'input[{at}]' must not be an empty array of token ids"),
                    format!("input[{at}]"),
                ));
            }
            Inputs::Tokens(arrays)
        }
    };
    if inputs.is_empty() {
        return Err(invalid("'input' must not be empty", "input"));
    }
    if inputs.len() > MAX_INPUTS {
        return Err(invalid(
            format!(
                "'input' holds {} items; at most {MAX_INPUTS} are allowed",
                inputs.len()
            ),
            "input",
        ));
    }
    if wire.dimensions == Some(0) {
        return Err(invalid(
            "Invalid 'dimensions': it must be at least 1",
            "dimensions",
        ));
    }
    Ok(EmbeddingRequest {
        model: wire.model,
        inputs,
        dimensions: wire.dimensions,
        encoding: match wire.encoding_format {
            None | Some(EncodingIn::Float) => Encoding::Float,
            Some(EncodingIn::Base64) => Encoding::Base64,
        },
        user: wire.user,
        extra: wire.rest,
    })
}

/// The body for an OpenAI-compatible upstream that knows the model as `model`: the client's
/// fields, its unknown ones included. `encoding_format` is sent only for base64 (float is the
/// default), so the upstream answers in the encoding the client asked for and its body can be
/// relayed as it is.
pub fn encode_request(request: &EmbeddingRequest, model: &str) -> Vec<u8> {
    let body = RequestOut {
        model,
        input: match &request.inputs {
            Inputs::Texts(texts) => InputOut::Texts(texts),
            Inputs::Tokens(tokens) => InputOut::Tokens(tokens),
        },
        encoding_format: (request.encoding == Encoding::Base64).then_some("base64"),
        dimensions: request.dimensions,
        user: request.user.as_deref(),
        extra: ExtraOut(&request.extra),
    };
    // Serializing strings, numbers and JSON values cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Reads an upstream's answer, whose vectors may be float arrays or base64 strings. The
/// vectors are put in `index` order; usage an upstream leaves out counts 0.
pub fn decode_response(body: &[u8]) -> Result<EmbeddingResponse, ApiError> {
    let wire: ResponseIn =
        crate::json::from_bytes(body).map_err(|error| malformed("OpenAI", &error))?;
    let count = wire.data.len();
    let mut slots: Vec<Option<Vec<f32>>> = vec![None; count];
    for (position, datum) in wire.data.into_iter().enumerate() {
        let index = datum.index.unwrap_or(position);
        let vector = match datum.embedding {
            EmbeddingIn::Floats(vector) => vector,
            EmbeddingIn::Base64(text) => base64::decode_vector(&text).ok_or_else(|| {
                unexpected(
                    "OpenAI",
                    &format!("the embedding at index {index} is not base64 of f32 values"),
                )
            })?,
        };
        match slots.get_mut(index) {
            Some(slot @ None) => *slot = Some(vector),
            Some(Some(_)) | None => {
                return Err(unexpected(
                    "OpenAI",
                    &format!("the indexes of its {count} embeddings are not 0 to {count} - 1"),
                ));
            }
        }
    }
    Ok(EmbeddingResponse {
        model: wire.model,
        // Every slot is filled: `count` distinct indexes below `count`.
        vectors: slots.into_iter().flatten().collect(),
        usage: Usage {
            prompt_tokens: wire.usage.map_or(0, |usage| usage.prompt_tokens),
            ..Usage::default()
        },
    })
}

/// The client's answer: one `embedding` object per vector, written as floats or as base64.
pub fn encode_response(response: &EmbeddingResponse, encoding: Encoding) -> Vec<u8> {
    let data = response
        .vectors
        .iter()
        .enumerate()
        .map(|(index, vector)| DatumOut {
            object: "embedding",
            index,
            embedding: match encoding {
                Encoding::Float => EmbeddingOut::Floats(vector),
                Encoding::Base64 => EmbeddingOut::Base64(base64::encode_vector(vector)),
            },
        })
        .collect();
    let body = ResponseOut {
        object: "list",
        data,
        model: &response.model,
        usage: UsageOut {
            prompt_tokens: response.usage.prompt_tokens,
            total_tokens: response.usage.prompt_tokens,
        },
    };
    // Serializing strings and numbers cannot fail (a non-finite float is written as null).
    serde_json::to_vec(&body).unwrap_or_default()
}

fn invalid(message: impl Into<String>, param: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message, Some(param.into()))
}

/// A request as a client sends it.
#[derive(Debug, Deserialize)]
struct RequestIn {
    model: String,
    input: InputIn,
    #[serde(default)]
    encoding_format: Option<EncodingIn>,
    #[serde(default)]
    dimensions: Option<u32>,
    #[serde(default)]
    user: Option<String>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum EncodingIn {
    Float,
    Base64,
}

/// `input` in its four documented shapes. The first item of an array decides which shape it
/// is; an item of another shape is an error at that item's path.
#[derive(Debug)]
enum InputIn {
    /// `"text"`.
    Text(String),
    /// `["text", …]`.
    Texts(Vec<String>),
    /// `[1, 2, 3]`: one input, already tokenized.
    TokenIds(Vec<u32>),
    /// `[[1, 2], [3]]`.
    TokenArrays(Vec<Vec<u32>>),
}

impl<'de> Deserialize<'de> for InputIn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<InputIn, D::Error> {
        deserializer.deserialize_any(InputVisitor)
    }
}

struct InputVisitor;

impl<'de> Visitor<'de> for InputVisitor {
    type Value = InputIn;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a string, an array of strings, an array of token ids or an array of arrays of \
             token ids",
        )
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<InputIn, E> {
        Ok(InputIn::Text(text.to_owned()))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<InputIn, E> {
        Ok(InputIn::Text(text))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<InputIn, A::Error> {
        let Some(first) = seq.next_element_seed(Item(None))? else {
            return Ok(InputIn::Texts(Vec::new()));
        };
        let kind = first.kind();
        let capacity = seq.size_hint().unwrap_or(0).min(MAX_INPUTS) + 1;
        match first {
            Parsed::Text(text) => {
                let mut texts = Vec::with_capacity(capacity);
                texts.push(text);
                while let Some(item) = seq.next_element_seed(Item(Some(kind)))? {
                    if let Parsed::Text(text) = item {
                        texts.push(text);
                    }
                }
                Ok(InputIn::Texts(texts))
            }
            Parsed::TokenId(id) => {
                let mut ids = Vec::with_capacity(capacity);
                ids.push(id);
                while let Some(item) = seq.next_element_seed(Item(Some(kind)))? {
                    if let Parsed::TokenId(id) = item {
                        ids.push(id);
                    }
                }
                Ok(InputIn::TokenIds(ids))
            }
            Parsed::TokenArray(array) => {
                let mut arrays = Vec::with_capacity(capacity);
                arrays.push(array);
                while let Some(item) = seq.next_element_seed(Item(Some(kind)))? {
                    if let Parsed::TokenArray(array) = item {
                        arrays.push(array);
                    }
                }
                Ok(InputIn::TokenArrays(arrays))
            }
        }
    }
}

/// The shape of one item of an `input` array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    TokenId,
    TokenArray,
}

#[derive(Debug)]
enum Parsed {
    Text(String),
    TokenId(u32),
    TokenArray(Vec<u32>),
}

impl Parsed {
    fn kind(&self) -> Kind {
        match self {
            Parsed::Text(_) => Kind::Text,
            Parsed::TokenId(_) => Kind::TokenId,
            Parsed::TokenArray(_) => Kind::TokenArray,
        }
    }
}

/// Reads one item of an `input` array: of any shape for the first item, of the first item's
/// shape (`Some`) for the others. Reading the item itself (rather than checking it afterwards)
/// puts an error at the item's path.
struct Item(Option<Kind>);

impl Item {
    fn accepts(&self, kind: Kind) -> bool {
        self.0.is_none_or(|expected| expected == kind)
    }
}

impl<'de> DeserializeSeed<'de> for Item {
    type Value = Parsed;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Parsed, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Item {
    type Value = Parsed;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            None => "a string, a token id or an array of token ids",
            Some(Kind::Text) => "a string, like the first item of `input`",
            Some(Kind::TokenId) => "a token id, like the first item of `input`",
            Some(Kind::TokenArray) => "an array of token ids, like the first item of `input`",
        })
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Parsed, E> {
        self.visit_string(text.to_owned())
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Parsed, E> {
        if !self.accepts(Kind::Text) {
            return Err(E::invalid_type(Unexpected::Str(&text), &self));
        }
        Ok(Parsed::Text(text))
    }

    fn visit_u64<E: de::Error>(self, id: u64) -> Result<Parsed, E> {
        if !self.accepts(Kind::TokenId) {
            return Err(E::invalid_type(Unexpected::Unsigned(id), &self));
        }
        let id = u32::try_from(id)
            .map_err(|_| E::invalid_value(Unexpected::Unsigned(id), &"a token id below 2^32"))?;
        Ok(Parsed::TokenId(id))
    }

    fn visit_i64<E: de::Error>(self, id: i64) -> Result<Parsed, E> {
        match u64::try_from(id) {
            Ok(id) => self.visit_u64(id),
            Err(_) if self.accepts(Kind::TokenId) => Err(E::invalid_value(
                Unexpected::Signed(id),
                &"a token id, which is not negative",
            )),
            Err(_) => Err(E::invalid_type(Unexpected::Signed(id), &self)),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Parsed, A::Error> {
        if !self.accepts(Kind::TokenArray) {
            return Err(de::Error::invalid_type(Unexpected::Seq, &self));
        }
        let mut ids = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(id) = seq.next_element::<u32>()? {
            ids.push(id);
        }
        Ok(Parsed::TokenArray(ids))
    }
}

/// A request as an upstream takes it.
#[derive(Serialize)]
struct RequestOut<'a> {
    model: &'a str,
    input: InputOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encoding_format: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(flatten)]
    extra: ExtraOut<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum InputOut<'a> {
    Texts(&'a [String]),
    Tokens(&'a [Vec<u32>]),
}

/// The unknown fields, without any that would repeat a field written above.
struct ExtraOut<'a>(&'a Map<String, Value>);

impl Serialize for ExtraOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(
            self.0
                .iter()
                .filter(|(name, _)| !KNOWN_FIELDS.contains(&name.as_str())),
        )
    }
}

/// An answer as an upstream sends it (lenient: compatible servers omit `index` and `usage`).
#[derive(Debug, Deserialize)]
struct ResponseIn {
    #[serde(default)]
    model: String,
    data: Vec<DatumIn>,
    #[serde(default)]
    usage: Option<UsageIn>,
}

#[derive(Debug, Deserialize)]
struct DatumIn {
    #[serde(default)]
    index: Option<usize>,
    embedding: EmbeddingIn,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum EmbeddingIn {
    Floats(Vec<f32>),
    Base64(String),
}

#[derive(Debug, Deserialize)]
struct UsageIn {
    #[serde(default)]
    prompt_tokens: u64,
}

/// The answer as a client expects it.
#[derive(Serialize)]
struct ResponseOut<'a> {
    object: &'static str,
    data: Vec<DatumOut<'a>>,
    model: &'a str,
    usage: UsageOut,
}

#[derive(Serialize)]
struct DatumOut<'a> {
    object: &'static str,
    index: usize,
    embedding: EmbeddingOut<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum EmbeddingOut<'a> {
    Floats(&'a [f32]),
    Base64(String),
}

#[derive(Serialize)]
struct UsageOut {
    prompt_tokens: u64,
    total_tokens: u64,
}

#[cfg(test)]
mod tests;
