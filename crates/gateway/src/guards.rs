//! The guards as the config builds them: a scanner and an action for personal data, one for
//! secrets, and the key of the keyed-hash operator. Built with the runtime (a reload builds
//! them anew); the stage that runs them is `pipeline/guard.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use switchyard_guard::injection::Detector;
use switchyard_guard::scan::{pii_recognizers, secret_recognizers};
use switchyard_guard::{Category, Operator, Recognizer, Scanner};

use crate::config::file::GuardsConfig;

pub mod transformer;

pub use transformer::Transformer;

/// What the PII guard does with what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PiiAction {
    /// Rewrites it with this operator.
    Operate(Operator),
    /// Counts it on the call's records; changes nothing.
    Flag,
}

/// What the secrets guard does with what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretAction {
    /// Refuses the call.
    Block,
    /// Replaces it by its kind (`[OPENAI_KEY]`).
    Redact,
    /// Counts it on the call's records; changes nothing.
    Flag,
}

pub use switchyard_guard::stream::OutputAction;

/// The built guards.
#[derive(Debug)]
pub struct Guards {
    /// Personal data: the scanner and its action.
    pub pii: Option<(Scanner, PiiAction)>,
    /// Secrets: the scanner and its action.
    pub secrets: Option<(Scanner, SecretAction)>,
    /// The `hash` operator's key.
    pub hash_key: hmac::Key,
    /// On answers: the scanner (the chosen kinds' recognizers) and, per category, what to do.
    pub output: Option<(Scanner, HashMap<Category, OutputAction>)>,
    /// Injection detection: the detector, whether it blocks (else flags), its threshold.
    pub injection: Option<(Detector, bool, f32)>,
    /// The injection guard's transformer tier (`guards.injection.transformer`).
    pub transformer: Option<Arc<Transformer>>,
    /// Whether the system prompt gets a canary (`guards.output.canary`).
    pub canary: bool,
    /// Structured answers checked against the request's schema: whether a failure blocks
    /// (else it is counted).
    pub json_schema: Option<bool>,
    /// Requests with more guarded text than this are inspected on the blocking pool.
    pub offload_bytes: usize,
    /// How long the input guards may take on one request.
    pub timeout: std::time::Duration,
    /// Whether a guard that fails or runs out of time lets the call go on (else refuses it).
    pub fail_open: bool,
}

/// The injection detector with the tiers `config` asks for.
fn injection_detector(
    config: &crate::config::file::InjectionConfig,
) -> Result<Detector, Box<dyn std::error::Error>> {
    let model = config
        .model
        .then(switchyard_guard::ngram::Model::shipped)
        .transpose()?;
    let similar = config
        .similarity
        .then(switchyard_guard::similar::Corpus::shipped)
        .transpose()?;
    Ok(Detector::with_model(model)?.with_similar(similar))
}

/// The built-in entity names of personal data.
pub const PII_ENTITIES: [&str; 8] = [
    "EMAIL",
    "PHONE",
    "CREDIT_CARD",
    "IBAN",
    "US_SSN",
    "IP_ADDRESS",
    "DATE_OF_BIRTH",
    "CRYPTO_WALLET",
];

impl Guards {
    /// The guards `config` asks for (`None`: every guard off), or every problem with its path.
    pub fn build(config: &GuardsConfig) -> Result<Option<Guards>, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let pii_action = match config.pii.action.as_str() {
            "off" => None,
            "flag" => Some(PiiAction::Flag),
            other => match Operator::parse(other) {
                Some(operator) => Some(PiiAction::Operate(operator)),
                None => {
                    problems.push((
                        "guards.pii.action".to_owned(),
                        "must be off, tokenize, redact, mask, label, hash or flag".to_owned(),
                    ));
                    None
                }
            },
        };
        let secret_action = match config.secrets.action.as_str() {
            "off" => None,
            "block" => Some(SecretAction::Block),
            "redact" => Some(SecretAction::Redact),
            "flag" => Some(SecretAction::Flag),
            _ => {
                problems.push((
                    "guards.secrets.action".to_owned(),
                    "must be off, block, redact or flag".to_owned(),
                ));
                None
            }
        };
        for (index, entity) in config.pii.entities.iter().enumerate() {
            if !PII_ENTITIES.contains(&entity.as_str()) {
                problems.push((
                    format!("guards.pii.entities[{index}]"),
                    format!(
                        "unknown entity (expected one of {})",
                        PII_ENTITIES.join(", ")
                    ),
                ));
            }
        }
        let mut recognizers: Vec<Recognizer> = pii_recognizers()
            .into_iter()
            .filter(|r| {
                config.pii.entities.is_empty()
                    || config.pii.entities.iter().any(|e| e == r.entity())
            })
            .collect();
        let valid_name = |name: &str| {
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        };
        for (index, custom) in config.pii.custom.iter().enumerate() {
            if !valid_name(&custom.name) {
                problems.push((
                    format!("guards.pii.custom[{index}].name"),
                    "letters, digits and _ only".to_owned(),
                ));
            }
            match Recognizer::custom(
                &custom.name.to_ascii_uppercase(),
                Category::Pii,
                &custom.pattern,
                custom.score,
                &custom.context,
            ) {
                Ok(recognizer) => recognizers.push(recognizer),
                Err(error) => problems.push((
                    format!("guards.pii.custom[{index}].pattern"),
                    switchyard_types::clip(&error.to_string(), 300).into_owned(),
                )),
            }
        }
        for (index, list) in config.pii.deny_lists.iter().enumerate() {
            if !valid_name(&list.name) || list.terms.is_empty() {
                problems.push((
                    format!("guards.pii.deny_lists[{index}]"),
                    "a name (letters, digits and _) and at least one term".to_owned(),
                ));
                continue;
            }
            match Recognizer::deny_list(&list.name.to_ascii_uppercase(), Category::Pii, &list.terms)
            {
                Ok(recognizer) => recognizers.push(recognizer),
                Err(error) => problems.push((
                    format!("guards.pii.deny_lists[{index}].terms"),
                    switchyard_types::clip(&error.to_string(), 300).into_owned(),
                )),
            }
        }
        if !(0.0..=1.0).contains(&config.pii.threshold) {
            problems.push((
                "guards.pii.threshold".to_owned(),
                "must be between 0 and 1".to_owned(),
            ));
        }
        let thresholds: HashMap<Arc<str>, f32> = config
            .pii
            .thresholds
            .iter()
            .map(|(entity, threshold)| (Arc::from(entity.to_ascii_uppercase()), *threshold))
            .collect();
        if let Some(key) = &config.hash_key
            && key.expose().len() < 16
        {
            problems.push((
                "guards.hash_key".to_owned(),
                "at least 16 characters".to_owned(),
            ));
        }
        let mut output_actions = HashMap::new();
        for (path, value, category) in [
            (
                "guards.output.secrets",
                &config.output.secrets,
                Category::Secret,
            ),
            ("guards.output.pii", &config.output.pii, Category::Pii),
            (
                "guards.output.markdown_images",
                &config.output.markdown_images,
                Category::Link,
            ),
            (
                "guards.output.banned_terms",
                &config.output.banned_terms,
                Category::Banned,
            ),
            (
                "guards.output.system_prompt_leak",
                &config.output.system_prompt_leak,
                Category::Leak,
            ),
        ] {
            match value.as_str() {
                "off" => {}
                "redact" => {
                    output_actions.insert(category, OutputAction::Redact);
                }
                "block" => {
                    output_actions.insert(category, OutputAction::Block);
                }
                _ => problems.push((path.to_owned(), "must be off, redact or block".to_owned())),
            }
        }
        let injection_blocks = match config.injection.action.as_str() {
            "off" => None,
            "block" => Some(true),
            "flag" => Some(false),
            _ => {
                problems.push((
                    "guards.injection.action".to_owned(),
                    "must be off, block or flag".to_owned(),
                ));
                None
            }
        };
        if !(0.0..=1.0).contains(&config.injection.threshold) {
            problems.push((
                "guards.injection.threshold".to_owned(),
                "must be between 0 and 1".to_owned(),
            ));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let injection = match injection_blocks {
            Some(blocks) => Some((
                injection_detector(&config.injection)
                    .map_err(|error| vec![("guards.injection".to_owned(), error.to_string())])?,
                blocks,
                config.injection.threshold,
            )),
            None => None,
        };
        let transformer = match (&injection, &config.injection.transformer) {
            (Some(_), Some(tier)) => Some(
                Transformer::load(&tier.model_dir, tier.head.as_deref(), tier.max_windows)
                    .map_err(|error| vec![("guards.injection.transformer".to_owned(), error)])?,
            ),
            _ => None,
        };
        let mut output_recognizers = Vec::new();
        if output_actions.contains_key(&Category::Secret) {
            output_recognizers.extend(secret_recognizers());
        }
        if output_actions.contains_key(&Category::Pii) {
            output_recognizers.extend(recognizers.iter().cloned());
        }
        if output_actions.contains_key(&Category::Link) {
            output_recognizers.extend(switchyard_guard::scan::link_recognizers());
        }
        if output_actions.contains_key(&Category::Banned) && config.output.banned.is_empty() {
            problems.push((
                "guards.output.banned".to_owned(),
                "banned_terms is on: at least one list of terms".to_owned(),
            ));
        }
        for (index, list) in config.output.banned.iter().enumerate() {
            if !valid_name(&list.name) || list.terms.iter().all(|term| term.trim().is_empty()) {
                problems.push((
                    format!("guards.output.banned[{index}]"),
                    "a name (letters, digits and _) and at least one term".to_owned(),
                ));
                continue;
            }
            let terms: Vec<String> = list
                .terms
                .iter()
                .filter(|term| !term.trim().is_empty())
                .cloned()
                .collect();
            match Recognizer::deny_list(&list.name.to_ascii_uppercase(), Category::Banned, &terms) {
                Ok(recognizer) => output_recognizers.push(recognizer),
                Err(error) => problems.push((
                    format!("guards.output.banned[{index}].terms"),
                    switchyard_types::clip(&error.to_string(), 300).into_owned(),
                )),
            }
        }
        let json_schema = match config.output.json_schema.as_str() {
            "off" => None,
            "flag" => Some(false),
            "block" => Some(true),
            _ => {
                problems.push((
                    "guards.output.json_schema".to_owned(),
                    "must be off, flag or block".to_owned(),
                ));
                None
            }
        };
        if json_schema.is_some() && !cfg!(feature = "json-schema") {
            problems.push((
                "guards.output.json_schema".to_owned(),
                "this build has no JSON Schema support (cargo feature json-schema)".to_owned(),
            ));
        }
        let fail_open = match config.on_error.as_deref() {
            None | Some("closed") => false,
            Some("open") => true,
            Some(_) => {
                problems.push((
                    "guards.on_error".to_owned(),
                    "must be closed or open".to_owned(),
                ));
                false
            }
        };
        if config.timeout_ms == Some(0) {
            problems.push((
                "guards.timeout_ms".to_owned(),
                "must be at least 1".to_owned(),
            ));
        }
        if config.output.canary && !output_actions.contains_key(&Category::Leak) {
            problems.push((
                "guards.output.canary".to_owned(),
                "needs system_prompt_leak on (redact or block) to catch it".to_owned(),
            ));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let compile = |recognizers, threshold, thresholds| {
            Scanner::new(recognizers, threshold, thresholds)
                .map_err(|error| vec![("guards".to_owned(), error.to_string())])
        };
        let pii = match pii_action {
            Some(action) => Some((
                compile(recognizers, config.pii.threshold, thresholds.clone())?,
                action,
            )),
            None => None,
        };
        let secrets = match secret_action {
            Some(action) => Some((compile(secret_recognizers(), 0.5, HashMap::new())?, action)),
            None => None,
        };
        let output = if output_actions.is_empty() && json_schema.is_none() {
            None
        } else {
            Some((
                compile(output_recognizers, config.pii.threshold, thresholds)?,
                output_actions,
            ))
        };
        if pii.is_none() && secrets.is_none() && output.is_none() && injection.is_none() {
            return Ok(None);
        }
        let hash_key = match &config.hash_key {
            Some(key) => hmac::Key::new(hmac::HMAC_SHA256, key.expose().as_bytes()),
            None => {
                let mut random = [0u8; 32];
                SystemRandom::new().fill(&mut random).map_err(|_| {
                    vec![("guards.hash_key".to_owned(), "no randomness".to_owned())]
                })?;
                hmac::Key::new(hmac::HMAC_SHA256, &random)
            }
        };
        Ok(Some(Guards {
            pii,
            secrets,
            hash_key,
            output,
            canary: config.output.canary,
            json_schema,
            offload_bytes: config.offload_bytes.unwrap_or(64 * 1024),
            timeout: std::time::Duration::from_millis(config.timeout_ms.unwrap_or(5000)),
            fail_open,
            injection,
            transformer,
        }))
    }
}
