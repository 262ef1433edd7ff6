//! Token usage as reported by a provider.

use serde::{Deserialize, Serialize};

/// Token counts for one call.
///
/// `prompt_tokens` counts every input token, cached or not (OpenAI's convention); Anthropic's
/// `input_tokens` excludes cache reads and writes, so its translation adds them back in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// All input tokens, including cache reads and cache writes.
    pub prompt_tokens: u64,
    /// Output tokens, including reasoning tokens.
    pub completion_tokens: u64,
    /// Input tokens served from the provider's prompt cache.
    pub cache_read_tokens: u64,
    /// Input tokens written to the provider's prompt cache.
    pub cache_write_tokens: u64,
    /// Output tokens spent on reasoning (a subset of `completion_tokens`).
    pub reasoning_tokens: u64,
    /// Cache writes kept for an hour (a subset of `cache_write_tokens`; Anthropic prices them
    /// apart from the five-minute ones).
    #[serde(default)]
    pub cache_write_1h_tokens: u64,
    /// The service tier the provider says served the call (its prices differ).
    #[serde(default)]
    pub service_tier: ServiceTier,
}

/// The service tier that served a call, as the provider reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceTier {
    /// Standard prices (OpenAI `default`, Anthropic `standard`, or not said).
    #[default]
    Standard,
    /// Priority processing (OpenAI and Anthropic `priority`).
    Priority,
    /// OpenAI's `flex` processing, priced as the Batch API.
    Flex,
    /// A batch (Anthropic's Message Batches report `batch`).
    Batch,
}

impl ServiceTier {
    /// The tier a provider's `service_tier` value names (OpenAI `default`, `flex`, `priority`,
    /// `scale`; Anthropic `standard`, `priority`, `batch`); others are standard.
    pub fn parse(value: &str) -> ServiceTier {
        match value {
            "priority" => ServiceTier::Priority,
            "flex" => ServiceTier::Flex,
            "batch" => ServiceTier::Batch,
            _ => ServiceTier::Standard,
        }
    }
}

/// Reads any provider's value, never failing on one it does not know (or a `null`).
impl<'de> Deserialize<'de> for ServiceTier {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Said<'a> {
            Text(#[serde(borrow)] std::borrow::Cow<'a, str>),
            Other(serde::de::IgnoredAny),
        }
        Ok(match Said::deserialize(deserializer)? {
            Said::Text(value) => ServiceTier::parse(&value),
            Said::Other(_) => ServiceTier::Standard,
        })
    }
}

impl Usage {
    /// Input plus output tokens.
    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }

    /// Input tokens neither read from nor written to a cache.
    pub fn uncached_prompt_tokens(&self) -> u64 {
        self.prompt_tokens
            .saturating_sub(self.cache_read_tokens)
            .saturating_sub(self.cache_write_tokens)
    }

    /// Takes every non-zero count of `other` (stream usage arrives in pieces).
    pub fn merge(&mut self, other: &Usage) {
        let take = |mine: &mut u64, theirs: u64| {
            if theirs != 0 {
                *mine = theirs;
            }
        };
        take(&mut self.prompt_tokens, other.prompt_tokens);
        take(&mut self.completion_tokens, other.completion_tokens);
        take(&mut self.cache_read_tokens, other.cache_read_tokens);
        take(&mut self.cache_write_tokens, other.cache_write_tokens);
        take(&mut self.reasoning_tokens, other.reasoning_tokens);
        take(&mut self.cache_write_1h_tokens, other.cache_write_1h_tokens);
        if other.service_tier != ServiceTier::Standard {
            self.service_tier = other.service_tier;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_service_tier_a_provider_writes_reads() {
        let read = |text: &str| serde_json::from_str::<ServiceTier>(text).expect(text);
        assert_eq!(read(r#""priority""#), ServiceTier::Priority);
        assert_eq!(read(r#""flex""#), ServiceTier::Flex);
        assert_eq!(read(r#""batch""#), ServiceTier::Batch);
        for standard in [
            r#""default""#,
            r#""standard""#,
            r#""scale""#,
            "null",
            "3",
            "{}",
        ] {
            assert_eq!(read(standard), ServiceTier::Standard, "{standard}");
        }
        // Usage written before the tier existed still reads.
        let old: Usage = serde_json::from_str(
            r#"{"prompt_tokens":1,"completion_tokens":2,"cache_read_tokens":0,"cache_write_tokens":0,"reasoning_tokens":0}"#,
        )
        .expect("old usage");
        assert_eq!(old.service_tier, ServiceTier::Standard);
    }

    #[test]
    fn merge_keeps_known_counts() {
        let mut usage = Usage {
            prompt_tokens: 10,
            ..Usage::default()
        };
        usage.merge(&Usage {
            completion_tokens: 5,
            ..Usage::default()
        });
        assert_eq!(usage.prompt_tokens, 10);
        assert_eq!(usage.completion_tokens, 5);
        assert_eq!(usage.total_tokens(), 15);
    }

    #[test]
    fn uncached_excludes_cache_reads_and_writes() {
        let usage = Usage {
            prompt_tokens: 100,
            cache_read_tokens: 60,
            cache_write_tokens: 30,
            ..Usage::default()
        };
        assert_eq!(usage.uncached_prompt_tokens(), 10);
    }
}
