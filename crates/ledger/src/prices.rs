//! What models cost: one [`Price`] per model, and the [`PriceTable`] shipped with the gateway.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::money::{Rate, Usd};

/// The shipped table, made by `scripts/refresh-prices`.
const SHIPPED: &str = include_str!("../prices.json");

/// One model's prices. Every field may be absent; what a call uses and the table does not
/// say costs nothing (and the call is marked unpriced when input or output is absent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Price {
    /// Input tokens (neither read from nor written to a prompt cache).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<Rate>,
    /// Output tokens (reasoning included, unless `reasoning` is set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Rate>,
    /// Input tokens read from the provider's prompt cache (else `input`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_read: Option<Rate>,
    /// Input tokens written to the provider's prompt cache (else `input`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<Rate>,
    /// Cache writes kept for an hour (Anthropic's `cache_creation.ephemeral_1h_input_tokens`;
    /// else `cache_write`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_write_1h: Option<Rate>,
    /// Reasoning tokens, when priced apart from the other output tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Rate>,
    /// Batch-API input tokens (also OpenAI's `flex` tier).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_input: Option<Rate>,
    /// Batch-API output tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_output: Option<Rate>,
    /// Input tokens at the priority service tier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority_input: Option<Rate>,
    /// Output tokens at the priority service tier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority_output: Option<Rate>,
    /// Each input image, on top of its tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<Usd>,
    /// Higher prices for calls whose prompt is longer than a threshold (the whole call is
    /// priced at the tier's rates), lowest threshold first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<Tier>,
    /// The model's context window for input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_input_tokens: Option<u64>,
    /// The most the model generates in one call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    /// An embedding model.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub embedding: bool,
}

/// Prices above a prompt length.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tier {
    /// Applies when the prompt has more input tokens than this.
    pub above_input_tokens: u64,
    /// Input tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<Rate>,
    /// Output tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Rate>,
    /// Cache reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_read: Option<Rate>,
    /// Cache writes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<Rate>,
}

impl Price {
    /// Whether the price says what input and output tokens cost.
    pub fn is_priced(&self) -> bool {
        self.input.is_some() && self.output.is_some()
    }

    /// This price with every field `other` sets taken from `other` (a deployment's config
    /// over the table).
    pub fn overlaid(&self, other: &Price) -> Price {
        fn pick<T: Clone>(mine: &Option<T>, theirs: &Option<T>) -> Option<T> {
            theirs.clone().or_else(|| mine.clone())
        }
        Price {
            input: pick(&self.input, &other.input),
            output: pick(&self.output, &other.output),
            cache_read: pick(&self.cache_read, &other.cache_read),
            cache_write: pick(&self.cache_write, &other.cache_write),
            cache_write_1h: pick(&self.cache_write_1h, &other.cache_write_1h),
            reasoning: pick(&self.reasoning, &other.reasoning),
            batch_input: pick(&self.batch_input, &other.batch_input),
            batch_output: pick(&self.batch_output, &other.batch_output),
            priority_input: pick(&self.priority_input, &other.priority_input),
            priority_output: pick(&self.priority_output, &other.priority_output),
            image: pick(&self.image, &other.image),
            tiers: if other.tiers.is_empty() {
                self.tiers.clone()
            } else {
                other.tiers.clone()
            },
            max_input_tokens: pick(&self.max_input_tokens, &other.max_input_tokens),
            max_output_tokens: pick(&self.max_output_tokens, &other.max_output_tokens),
            embedding: self.embedding || other.embedding,
        }
    }
}

/// The shipped price table: models by provider.
#[derive(Debug, Deserialize)]
pub struct PriceTable {
    /// Where the prices come from.
    pub source: String,
    /// When they were taken (`YYYY-MM-DD`).
    pub date: String,
    providers: HashMap<String, HashMap<String, Price>>,
}

impl PriceTable {
    /// The table built into the gateway, read once.
    pub fn shipped() -> &'static PriceTable {
        static TABLE: OnceLock<PriceTable> = OnceLock::new();
        TABLE.get_or_init(|| {
            // The file is checked by this crate's tests; a table that does not read is empty
            // rather than a gateway that cannot start.
            serde_json::from_str(SHIPPED).unwrap_or_else(|_| PriceTable {
                source: "(unreadable)".to_owned(),
                date: String::new(),
                providers: HashMap::new(),
            })
        })
    }

    /// The price of `model` at `provider` (a config's provider name: `openai`, `anthropic`,
    /// `bedrock`, a preset's name…). Tried as written, then without a `provider/` prefix,
    /// then without a trailing date (`claude-sonnet-4-5-20250929` → `claude-sonnet-4-5`) or a
    /// Bedrock region prefix (`us.anthropic…` → `anthropic…`).
    pub fn get(&self, provider: &str, model: &str) -> Option<&Price> {
        let table = self.providers.get(table_name(provider))?;
        let model = model
            .strip_prefix(provider)
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or(model);
        table
            .get(model)
            .or_else(|| undated(model).and_then(|model| table.get(model)))
            .or_else(|| {
                let (region, rest) = model.split_once('.')?;
                matches!(region, "us" | "eu" | "apac" | "global" | "jp" | "au")
                    .then(|| table.get(rest))
                    .flatten()
            })
    }

    /// The number of models priced.
    pub fn len(&self) -> usize {
        self.providers.values().map(HashMap::len).sum()
    }

    /// Whether the table prices nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The table a config provider's prices are under.
fn table_name(provider: &str) -> &str {
    match provider {
        "mock" | "mock_anthropic" | "mock_gemini" | "mock_azure" | "mock_bedrock"
        | "mock_vertex" | "openai_compatible" | "vllm" | "ollama" | "lmstudio" => "",
        other => other,
    }
}

/// `model` without a trailing `-YYYYMMDD` or `-YYYY-MM-DD`.
fn undated(model: &str) -> Option<&str> {
    let digits = |text: &str| text.bytes().all(|b| b.is_ascii_digit());
    if let Some((rest, date)) = model.rsplit_once('-')
        && date.len() == 8
        && digits(date)
    {
        return Some(rest);
    }
    let bytes = model.as_bytes();
    if bytes.len() > 11 && bytes[bytes.len() - 11] == b'-' {
        let (rest, date) = model.split_at(model.len() - 11);
        let date = &date[1..];
        let parts: Vec<&str> = date.split('-').collect();
        if parts.len() == 3 && parts.iter().all(|part| digits(part)) && parts[0].len() == 4 {
            return Some(rest);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(text: &str) -> Option<Rate> {
        Rate::parse(text).ok()
    }

    #[test]
    fn the_shipped_table_reads_and_prices_every_provider_it_names() {
        let table = PriceTable::shipped();
        assert!(table.len() > 1000, "{} models", table.len());
        assert!(!table.source.is_empty() && table.date.len() == 10);
        for (provider, model) in [
            ("openai", "gpt-4o"),
            ("anthropic", "claude-sonnet-4-5"),
            ("gemini", "gemini-2.5-pro"),
            ("vertex", "gemini-2.5-pro"),
            ("mistral", "mistral-large-latest"),
            ("deepseek", "deepseek-chat"),
        ] {
            let price = table.get(provider, model);
            assert!(
                price.is_some_and(Price::is_priced),
                "{provider}/{model}: {price:?}"
            );
        }
        let gpt = table.get("openai", "gpt-4o").cloned().unwrap_or_default();
        assert_eq!((gpt.input, gpt.output), (rate("2.5"), rate("10")));
        assert_eq!(gpt.cache_read, rate("1.25"));
    }

    #[test]
    fn lookups_forgive_prefixes_dates_and_regions() {
        let table = PriceTable::shipped();
        let base = table.get("anthropic", "claude-sonnet-4-5");
        assert!(base.is_some());
        assert_eq!(table.get("anthropic", "claude-sonnet-4-5-20990101"), base);
        assert_eq!(table.get("anthropic", "anthropic/claude-sonnet-4-5"), base);
        assert_eq!(
            table.get("gemini", "gemini/gemini-2.5-pro"),
            table.get("gemini", "gemini-2.5-pro")
        );
        assert_eq!(undated("gpt-4o-2024-08-06"), Some("gpt-4o"));
        assert_eq!(undated("gpt-4o"), None);
        assert!(table.get("mock", "gpt-4o").is_none(), "a mock is free");
        assert!(table.get("openai", "no-such-model").is_none());
    }

    #[test]
    fn tiers_are_kept() {
        let price = PriceTable::shipped()
            .get("gemini", "gemini-2.5-pro")
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            price.tiers.first().map(|tier| tier.above_input_tokens),
            Some(200_000)
        );
    }

    #[test]
    fn a_config_price_overrides_field_by_field() {
        let table = Price {
            input: rate("1"),
            output: rate("2"),
            cache_read: rate("0.1"),
            ..Price::default()
        };
        let config = Price {
            output: rate("3"),
            ..Price::default()
        };
        let price = table.overlaid(&config);
        assert_eq!(
            (price.input, price.output, price.cache_read),
            (rate("1"), rate("3"), rate("0.1"))
        );
    }
}
