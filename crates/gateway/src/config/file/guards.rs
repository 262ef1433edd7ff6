//! The `guards` section: what the guards look for in requests and answers, and what they do.

use serde::Deserialize;

use super::Secret;

/// Guards on every chat call's request: personal data and secrets found in its messages and
/// tool calls, and what becomes of them.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GuardsConfig {
    /// Personal data.
    pub pii: PiiConfig,
    /// Credentials.
    pub secrets: SecretsConfig,
    /// The key of the `hash` operator's HMAC-SHA256 (at least 16 characters). Unset: a key
    /// made for the process (hashes then differ across restarts and instances).
    pub hash_key: Option<Secret>,
    /// Guards on what the model answers.
    pub output: OutputGuardsConfig,
    /// Prompt-injection and jailbreak detection on user messages and tool results.
    pub injection: InjectionConfig,
    /// Requests with more guarded text than this are inspected off the worker thread.
    pub offload_bytes: Option<usize>,
    /// How long the input guards may take on one request, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// When they fail or run out of time: `closed` (503 `guard_unavailable`) or `open`.
    pub on_error: Option<String>,
    /// Named policies (each a `guards` section of its own, without `policies`), chosen by a
    /// key's or team's `metadata.guard_policy` or a model group's `guard_policy`.
    pub policies: std::collections::BTreeMap<String, GuardsConfig>,
}

/// What the output guards do with what the model wrote (whole answers and streams).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OutputGuardsConfig {
    /// Credentials in the answer: `off`, `redact` (replaced by their kind) or `block` (the
    /// answer ends with a `content_filter` finish).
    #[serde(deserialize_with = "switch")]
    pub secrets: String,
    /// Personal data the model wrote (the PII guard's entities and thresholds; values it was
    /// given as placeholders are not counted): `off`, `redact` or `block`.
    #[serde(deserialize_with = "switch")]
    pub pii: String,
    /// Markdown images pointing at a URL (`![x](https://…)`), the way injected instructions
    /// carry data out of a chat: `off`, `redact` or `block`.
    #[serde(deserialize_with = "switch")]
    pub markdown_images: String,
    /// Terms of `banned` in the answer: `off`, `redact` (replaced by the list's name) or
    /// `block`.
    #[serde(deserialize_with = "switch")]
    pub banned_terms: String,
    /// Named lists of banned terms (a topic, a competitor's products), matched whole-word,
    /// case aside.
    pub banned: Vec<DenyListConfig>,
    /// The system prompt copied into the answer (a run of eight or more of its words) or its
    /// canary: `off`, `redact` or `block`.
    #[serde(deserialize_with = "switch")]
    pub system_prompt_leak: String,
    /// Adds a canary (a keyed hash of the system prompt, the same for the same prompt) to the
    /// system prompt, for `system_prompt_leak` to catch.
    pub canary: bool,
    /// Answers to requests that ask for JSON (`response_format` `json_schema` or
    /// `json_object`) checked against the request's schema: `off`, `flag` (counted on the
    /// call's records) or `block` (502 `invalid_structured_output` for a whole answer; a
    /// stream is held whole until it can be checked).
    #[serde(deserialize_with = "switch")]
    pub json_schema: String,
}

/// A guard's action as text; YAML's `off` (which YAML 1.1 reads as `false`) is `off`.
fn switch<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Switch {
        Flag(bool),
        Text(String),
    }
    Ok(match Switch::deserialize(deserializer)? {
        Switch::Flag(false) => "off".to_owned(),
        Switch::Flag(true) => "on".to_owned(),
        Switch::Text(text) => text,
    })
}

impl Default for OutputGuardsConfig {
    fn default() -> OutputGuardsConfig {
        OutputGuardsConfig {
            secrets: "off".to_owned(),
            pii: "off".to_owned(),
            markdown_images: "off".to_owned(),
            banned_terms: "off".to_owned(),
            banned: Vec::new(),
            system_prompt_leak: "off".to_owned(),
            canary: false,
            json_schema: "off".to_owned(),
        }
    }
}

/// What the PII guard does.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PiiConfig {
    /// `off`, `tokenize` (placeholders the answer gets its values back for), `redact`, `mask`,
    /// `label`, `hash`, or `flag` (counted on the call's records, nothing changed).
    #[serde(deserialize_with = "switch")]
    pub action: String,
    /// Built-in entities to look for (`EMAIL`, `PHONE`, `CREDIT_CARD`, `IBAN`, `US_SSN`,
    /// `IP_ADDRESS`, `DATE_OF_BIRTH`, `CRYPTO_WALLET`); empty: all of them.
    pub entities: Vec<String>,
    /// The score a finding needs (0 to 1).
    pub threshold: f32,
    /// Per-entity thresholds over `threshold`.
    pub thresholds: std::collections::HashMap<String, f32>,
    /// Patterns of your own.
    pub custom: Vec<CustomEntityConfig>,
    /// Exact terms of your own (case-insensitive, whole words).
    pub deny_lists: Vec<DenyListConfig>,
}

impl Default for PiiConfig {
    fn default() -> PiiConfig {
        PiiConfig {
            action: "off".to_owned(),
            entities: Vec::new(),
            threshold: 0.5,
            thresholds: std::collections::HashMap::new(),
            custom: Vec::new(),
            deny_lists: Vec::new(),
        }
    }
}

/// A pattern of one's own.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CustomEntityConfig {
    /// The entity's name (`EMPLOYEE_ID`): letters, digits and `_`.
    pub name: String,
    /// A regular expression (linear-time syntax: no look-around, no back-references).
    pub pattern: String,
    /// Its score (default 1.0).
    #[serde(default = "one")]
    pub score: f32,
    /// Words that raise the score when shortly before a match.
    #[serde(default)]
    pub context: Vec<String>,
}

fn one() -> f32 {
    1.0
}

/// Terms of one's own.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DenyListConfig {
    /// The entity's name (`PROJECT`).
    pub name: String,
    /// The terms.
    pub terms: Vec<String>,
}

/// What the injection guard does.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct InjectionConfig {
    /// `off`, `block` (400 `prompt_injection_detected`) or `flag` (on the call's records).
    #[serde(deserialize_with = "switch")]
    pub action: String,
    /// The score that counts as an injection (0 to 1).
    pub threshold: f32,
    /// Whether the trained n-gram tier runs beside the phrase tiers (the shipped model; its
    /// scores are calibrated so that 0.8 means the same as for the phrases).
    pub model: bool,
    /// Whether the similarity tier runs: closeness to the shipped sketches of known jailbreaks
    /// (0.8 when half their word 3-grams are shared).
    pub similarity: bool,
    /// The transformer tier (off unless set; the gateway must be built with the
    /// `semantic-cache` feature, which brings the local encoder): a sentence encoder of the
    /// MiniLM class read from a folder, and a classifier over its vectors.
    pub transformer: Option<TransformerConfig>,
}

/// The injection guard's transformer tier.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TransformerConfig {
    /// The encoder's folder (`model.safetensors`, `tokenizer.json`, `config.json`; the
    /// quick start's `scripts/fetch-models` puts all-MiniLM-L6-v2 in
    /// `.cache/models/all-minilm-l6-v2`).
    pub model_dir: std::path::PathBuf,
    /// A classifier file made by `switchyard eval train-transformer` (default: the one that
    /// ships, trained for all-MiniLM-L6-v2).
    #[serde(default)]
    pub head: Option<std::path::PathBuf>,
    /// The most windows of 254 tokens read from one message (spread over a longer one).
    #[serde(default = "default_windows")]
    pub max_windows: usize,
}

fn default_windows() -> usize {
    8
}

impl Default for InjectionConfig {
    fn default() -> InjectionConfig {
        InjectionConfig {
            action: "off".to_owned(),
            threshold: 0.8,
            model: true,
            similarity: true,
            transformer: None,
        }
    }
}

/// What the secrets guard does.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// `off`, `block` (the call is refused, 400 `secret_detected`), `redact` (replaced by the
    /// secret's kind), or `flag`.
    #[serde(deserialize_with = "switch")]
    pub action: String,
}

impl Default for SecretsConfig {
    fn default() -> SecretsConfig {
        SecretsConfig {
            action: "off".to_owned(),
        }
    }
}
