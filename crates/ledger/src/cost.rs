//! What one call cost, by kind of token.

use serde::Serialize;
use switchyard_types::Usage;

use crate::money::{Rate, Usd};
use crate::prices::Price;

/// A call's cost: the total and its parts. The total is the parts' exact sum in pico-dollars,
/// rounded once to the nano-dollar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Cost {
    /// Everything.
    pub total: Usd,
    /// Input tokens neither read from nor written to a cache.
    pub input: Usd,
    /// Cache reads.
    pub cache_read: Usd,
    /// Cache writes.
    pub cache_write: Usd,
    /// Output tokens other than reasoning.
    pub output: Usd,
    /// Reasoning tokens.
    pub reasoning: Usd,
    /// Input images.
    pub images: Usd,
    /// The price did not say what input or output tokens cost: the total may be short.
    pub unpriced: bool,
}

impl Cost {
    /// The cost of a call that used `usage` and sent `images` images, at `price`. A prompt
    /// longer than a tier's threshold prices the whole call at that tier's rates.
    pub fn of(price: &Price, usage: &Usage, images: u64) -> Cost {
        let tier = price
            .tiers
            .iter()
            .rev()
            .find(|tier| usage.prompt_tokens > tier.above_input_tokens);
        let input = tier.and_then(|tier| tier.input).or(price.input);
        let output = tier.and_then(|tier| tier.output).or(price.output);
        let cache_read = tier
            .and_then(|tier| tier.cache_read)
            .or(price.cache_read)
            .or(input);
        let cache_write = tier
            .and_then(|tier| tier.cache_write)
            .or(price.cache_write)
            .or(input);
        let reasoning = price.reasoning.or(output);
        let at = |rate: Option<Rate>, tokens: u64| rate.unwrap_or(Rate::ZERO).times(tokens);
        let reasoning_tokens = usage.reasoning_tokens.min(usage.completion_tokens);
        let parts = [
            at(input, usage.uncached_prompt_tokens()),
            at(cache_read, usage.cache_read_tokens),
            at(cache_write, usage.cache_write_tokens),
            at(output, usage.completion_tokens - reasoning_tokens),
            at(reasoning, reasoning_tokens),
            u128::from(
                price
                    .image
                    .map_or(0, |each| each.nanos().max(0).unsigned_abs()),
            ) * u128::from(images)
                * 1000,
        ];
        Cost {
            total: Usd::from_picos(parts.iter().sum()),
            input: Usd::from_picos(parts[0]),
            cache_read: Usd::from_picos(parts[1]),
            cache_write: Usd::from_picos(parts[2]),
            output: Usd::from_picos(parts[3]),
            reasoning: Usd::from_picos(parts[4]),
            images: Usd::from_picos(parts[5]),
            unpriced: !price.is_priced(),
        }
    }

    /// The most a call can cost: `prompt_tokens` of uncached input and `max_output_tokens`
    /// of output, at the tier the prompt falls in (what a budget reserves before the call).
    pub fn at_most(price: &Price, prompt_tokens: u64, max_output_tokens: u64, images: u64) -> Usd {
        let usage = Usage {
            prompt_tokens,
            completion_tokens: max_output_tokens,
            ..Usage::default()
        };
        let mut cost = Cost::of(price, &usage, images).total;
        // A cache write can cost more than plain input (Anthropic: 1.25×): reserve as if the
        // whole prompt were written to the cache when that is dearer.
        let write = Cost::of(
            price,
            &Usage {
                cache_write_tokens: prompt_tokens,
                ..usage
            },
            images,
        )
        .total;
        if write > cost {
            cost = write;
        }
        cost
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prices::{PriceTable, Tier};

    fn rate(text: &str) -> Option<Rate> {
        Rate::parse(text).ok()
    }

    fn usd(text: &str) -> Usd {
        Usd::parse(text).unwrap_or_default()
    }

    #[test]
    fn plain_input_and_output() {
        let price = PriceTable::shipped()
            .get("openai", "gpt-4o")
            .cloned()
            .unwrap_or_default();
        let usage = Usage {
            prompt_tokens: 1000,
            completion_tokens: 500,
            ..Usage::default()
        };
        let cost = Cost::of(&price, &usage, 0);
        // 1,000 × $2.50/M + 500 × $10/M = $0.0025 + $0.005.
        assert_eq!(cost.total, usd("0.0075"));
        assert_eq!((cost.input, cost.output), (usd("0.0025"), usd("0.005")));
        assert!(!cost.unpriced);
    }

    #[test]
    fn cache_reads_and_writes_at_their_own_rates() {
        let price = PriceTable::shipped()
            .get("anthropic", "claude-sonnet-4-5")
            .cloned()
            .unwrap_or_default();
        // 10,000 prompt tokens: 8,000 read from the cache, 1,000 written, 1,000 plain.
        let usage = Usage {
            prompt_tokens: 10_000,
            completion_tokens: 100,
            cache_read_tokens: 8_000,
            cache_write_tokens: 1_000,
            ..Usage::default()
        };
        let cost = Cost::of(&price, &usage, 0);
        assert_eq!(cost.input, usd("0.003")); // 1,000 × $3/M
        assert_eq!(cost.cache_read, usd("0.0024")); // 8,000 × $0.30/M
        assert_eq!(cost.cache_write, usd("0.00375")); // 1,000 × $3.75/M
        assert_eq!(cost.output, usd("0.0015")); // 100 × $15/M
        assert_eq!(cost.total, usd("0.01065"));
    }

    #[test]
    fn reasoning_at_its_rate_when_priced_apart_else_as_output() {
        let mut price = Price {
            input: rate("1"),
            output: rate("4"),
            ..Price::default()
        };
        let usage = Usage {
            prompt_tokens: 0,
            completion_tokens: 1000,
            reasoning_tokens: 600,
            ..Usage::default()
        };
        assert_eq!(Cost::of(&price, &usage, 0).total, usd("0.004"));
        price.reasoning = rate("10");
        let cost = Cost::of(&price, &usage, 0);
        assert_eq!((cost.output, cost.reasoning), (usd("0.0016"), usd("0.006")));
    }

    #[test]
    fn a_long_prompt_prices_the_whole_call_at_its_tier() {
        let price = Price {
            input: rate("1.25"),
            output: rate("10"),
            tiers: vec![Tier {
                above_input_tokens: 200_000,
                input: rate("2.5"),
                output: rate("15"),
                ..Tier::default()
            }],
            ..Price::default()
        };
        let at = |prompt| {
            Cost::of(
                &price,
                &Usage {
                    prompt_tokens: prompt,
                    completion_tokens: 1000,
                    ..Usage::default()
                },
                0,
            )
            .total
        };
        assert_eq!(at(200_000), usd("0.26")); // 0.25 + 0.01
        assert_eq!(at(200_001), usd("0.5150025")); // 200,001 × 2.5/M + 1,000 × 15/M
    }

    #[test]
    fn tiny_calls_are_not_rounded_away() {
        let price = Price {
            input: rate("0.02"),
            output: rate("0"),
            ..Price::default()
        };
        let usage = Usage {
            prompt_tokens: 7,
            ..Usage::default()
        };
        // 7 × 20,000 pico-dollars = 140 nano-dollars.
        assert_eq!(Cost::of(&price, &usage, 0).total.nanos(), 140);
    }

    #[test]
    fn an_unknown_price_is_zero_and_says_so() {
        let cost = Cost::of(
            &Price::default(),
            &Usage {
                prompt_tokens: 5,
                ..Usage::default()
            },
            0,
        );
        assert_eq!(cost.total, Usd::ZERO);
        assert!(cost.unpriced);
    }

    #[test]
    fn the_most_a_call_can_cost_covers_a_cache_write() {
        let price = Price {
            input: rate("3"),
            output: rate("15"),
            cache_write: rate("3.75"),
            ..Price::default()
        };
        // 1,000 prompt tokens written to the cache + 100 output.
        assert_eq!(Cost::at_most(&price, 1000, 100, 0), usd("0.00525"));
    }

    #[test]
    fn images_add_their_price() {
        let price = Price {
            input: rate("0"),
            output: rate("0"),
            image: Some(usd("0.001")),
            ..Price::default()
        };
        assert_eq!(Cost::of(&price, &Usage::default(), 3).total, usd("0.003"));
    }
}
