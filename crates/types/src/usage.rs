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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
