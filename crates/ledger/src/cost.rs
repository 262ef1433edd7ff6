//! What one call cost, by kind of token.

use serde::Serialize;
use switchyard_types::{ServiceTier, Usage};

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
        let cache_write_1h = price.cache_write_1h.or(cache_write);
        let reasoning = price.reasoning.or(output);
        // A service tier priced apart (priority, or batch for batches and OpenAI's flex)
        // scales every input-side rate by its input price over the standard one, and every
        // output-side rate by its output price over the standard one: the providers price a
        // tier's cache reads and writes at the same ratio as its input.
        let (tier_input, tier_output) = match usage.service_tier {
            ServiceTier::Standard => (None, None),
            ServiceTier::Priority => (price.priority_input, price.priority_output),
            ServiceTier::Flex | ServiceTier::Batch => (price.batch_input, price.batch_output),
        };
        let scaled = |rate: Option<Rate>, to: Option<Rate>, from: Option<Rate>| match (to, from) {
            (Some(to), Some(from)) if from.picos() > 0 => rate.map(|rate| {
                let picos =
                    u128::from(rate.picos()) * u128::from(to.picos()) / u128::from(from.picos());
                Rate::from_picos(u64::try_from(picos).unwrap_or(u64::MAX))
            }),
            _ => rate,
        };
        let input_side = |rate| scaled(rate, tier_input, price.input);
        let output_side = |rate| scaled(rate, tier_output, price.output);
        let (input, cache_read, cache_write, cache_write_1h) = (
            input_side(input),
            input_side(cache_read),
            input_side(cache_write),
            input_side(cache_write_1h),
        );
        let (output, reasoning) = (output_side(output), output_side(reasoning));
        let at = |rate: Option<Rate>, tokens: u64| rate.unwrap_or(Rate::ZERO).times(tokens);
        let reasoning_tokens = usage.reasoning_tokens.min(usage.completion_tokens);
        let write_1h = usage.cache_write_1h_tokens.min(usage.cache_write_tokens);
        let parts = [
            at(input, usage.uncached_prompt_tokens()),
            at(cache_read, usage.cache_read_tokens),
            at(cache_write, usage.cache_write_tokens - write_1h) + at(cache_write_1h, write_1h),
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

    /// The most a call can cost: `prompt_tokens` of input (uncached, or written to the cache
    /// for an hour if dearer) and `max_output_tokens` of output, at the tier the prompt falls
    /// in and the dearest service tier (what a budget reserves before the call).
    pub fn at_most(price: &Price, prompt_tokens: u64, max_output_tokens: u64, images: u64) -> Usd {
        let usage = Usage {
            prompt_tokens,
            completion_tokens: max_output_tokens,
            ..Usage::default()
        };
        let mut cost = Cost::of(price, &usage, images).total;
        // A cache write can cost more than plain input (Anthropic: 1.25× for five minutes, 2×
        // for an hour): reserve as if the whole prompt were written to the cache for an hour
        // when that is dearer.
        let write = Cost::of(
            price,
            &Usage {
                cache_write_tokens: prompt_tokens,
                cache_write_1h_tokens: prompt_tokens,
                ..usage
            },
            images,
        )
        .total;
        if write > cost {
            cost = write;
        }
        // The priority tier, where the provider serves it dearer, could answer the call.
        for cache_write in [0, prompt_tokens] {
            let priority = Cost::of(
                price,
                &Usage {
                    cache_write_tokens: cache_write,
                    cache_write_1h_tokens: cache_write,
                    service_tier: ServiceTier::Priority,
                    ..usage
                },
                images,
            )
            .total;
            if priority > cost {
                cost = priority;
            }
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

    fn shipped(provider: &str, model: &str) -> Price {
        PriceTable::shipped()
            .get(provider, model)
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn cache_writes_kept_an_hour_at_their_own_rate() {
        // Sonnet 4.5: writes $3.75/M for five minutes, $6/M for an hour.
        let usage = Usage {
            prompt_tokens: 1_000,
            cache_write_tokens: 1_000,
            cache_write_1h_tokens: 400,
            ..Usage::default()
        };
        let cost = Cost::of(&shipped("anthropic", "claude-sonnet-4-5"), &usage, 0);
        assert_eq!(cost.cache_write, usd("0.00465")); // 600 × $3.75/M + 400 × $6/M
        assert_eq!(cost.total, usd("0.00465"));
        // Without an hour's rate, an hour's writes cost what the others do.
        let price = Price {
            input: rate("3"),
            cache_write: rate("3.75"),
            ..Price::default()
        };
        assert_eq!(Cost::of(&price, &usage, 0).total, usd("0.00375"));
    }

    #[test]
    fn the_service_tier_that_answered_sets_the_prices() {
        let gpt5 = shipped("openai", "gpt-5");
        let usage = Usage {
            prompt_tokens: 1_000,
            completion_tokens: 100,
            cache_read_tokens: 200,
            ..Usage::default()
        };
        // Standard: 800 × $1.25/M + 200 × $0.125/M + 100 × $10/M.
        assert_eq!(Cost::of(&gpt5, &usage, 0).total, usd("0.002025"));
        // Priority: $2.50 and $20, cache reads at the input's ratio ($0.25).
        let priority = Usage {
            service_tier: ServiceTier::Priority,
            ..usage
        };
        let cost = Cost::of(&gpt5, &priority, 0);
        assert_eq!(
            (cost.input, cost.cache_read, cost.output),
            (usd("0.002"), usd("0.00005"), usd("0.002"))
        );
        // Flex is priced as the Batch API: half.
        let flex = Usage {
            service_tier: ServiceTier::Flex,
            ..usage
        };
        assert_eq!(Cost::of(&gpt5, &flex, 0).total, usd("0.0010125"));
        // An Anthropic batch: half of everything, cache reads included.
        let batch = Usage {
            prompt_tokens: 1_000,
            completion_tokens: 100,
            cache_read_tokens: 500,
            service_tier: ServiceTier::Batch,
            ..Usage::default()
        };
        let sonnet = shipped("anthropic", "claude-sonnet-4-5");
        // 500 × $1.50/M + 500 × $0.15/M + 100 × $7.50/M.
        assert_eq!(Cost::of(&sonnet, &batch, 0).total, usd("0.001575"));
        // A tier the price does not list costs the standard prices.
        let priority_sonnet = Usage {
            service_tier: ServiceTier::Priority,
            ..batch
        };
        let standard_sonnet = Usage {
            service_tier: ServiceTier::Standard,
            ..batch
        };
        assert_eq!(
            Cost::of(&sonnet, &priority_sonnet, 0),
            Cost::of(&sonnet, &standard_sonnet, 0)
        );
    }

    #[test]
    fn the_most_a_call_can_cost_covers_the_priority_tier_and_hour_long_writes() {
        // gpt-5, 1,000 prompt + 100 output: at priority 1,000 × $2.50/M + 100 × $20/M.
        assert_eq!(
            Cost::at_most(&shipped("openai", "gpt-5"), 1000, 100, 0),
            usd("0.0045")
        );
        // Sonnet 4.5: the whole prompt written for an hour ($6/M) + 100 × $15/M.
        assert_eq!(
            Cost::at_most(&shipped("anthropic", "claude-sonnet-4-5"), 1000, 100, 0),
            usd("0.0075")
        );
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
