//! Thinking per model: which Claude and Gemini ids take what, and what an effort or a budget
//! becomes for each.

use serde_json::{Map, Value, json};
use switchyard_types::{ChatRequest, Message, Reasoning, Role};

use super::*;

fn effort(effort: &str) -> Reasoning {
    Reasoning {
        effort: Some(effort.into()),
        budget_tokens: None,
    }
}

fn budget(tokens: u32) -> Reasoning {
    Reasoning {
        effort: None,
        budget_tokens: Some(tokens),
    }
}

fn asking(reasoning: Reasoning, max_tokens: Option<u32>) -> ChatRequest {
    ChatRequest {
        messages: vec![Message::text_message(Role::User, "why is the sky blue?")],
        reasoning: Some(reasoning),
        max_tokens,
        ..ChatRequest::default()
    }
}

#[test]
fn claude_ids_in_every_spelling() {
    let caps = |model: &str| {
        let caps = ClaudeCaps::of(model);
        (caps.adaptive, caps.adaptive_only, caps.xhigh, caps.max)
    };
    // Before 4.6: budgets only.
    for model in [
        "claude-3-7-sonnet-20250219",
        "claude-sonnet-4-20250514",
        "claude-opus-4-5-20251101",
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        "claude-sonnet-4-5@20250929",
        "gpt-4o",
    ] {
        assert_eq!(caps(model), (false, false, false, false), "{model}");
    }
    // 4.6: adaptive, a budget still taken, `max` but not `xhigh`.
    for model in [
        "claude-opus-4-6",
        "us.anthropic.claude-opus-4-6-v1:0",
        "claude-sonnet-4-6",
    ] {
        assert_eq!(caps(model), (true, false, false, true), "{model}");
    }
    // 4.7 and later, and the named families: adaptive only.
    for model in [
        "claude-opus-4-7",
        "anthropic.claude-opus-4-7",
        "claude-opus-5",
        "claude-sonnet-5-5",
        "claude-fable-5-1",
    ] {
        assert_eq!(caps(model), (true, true, true, true), "{model}");
    }
    assert_eq!(caps("claude-mythos-preview"), (true, true, false, true));
}

#[test]
fn an_effort_becomes_adaptive_thinking_where_the_model_takes_it() {
    let plan = claude(
        &asking(effort("medium"), None),
        "claude-opus-4-7",
        Some(4096),
        false,
    )
    .expect("plans");
    assert_eq!(plan.thinking, Some(ClaudeThinking::Adaptive("medium")));
    assert!(plan.hinted);
    // Room to think when the client set no limit.
    assert_eq!(plan.max_tokens, Some(ADAPTIVE_MAX_TOKENS));

    // The client's own limit stands: adaptive thinking has no budget to fit under it.
    let plan = claude(
        &asking(effort("low"), Some(800)),
        "claude-sonnet-4-6",
        Some(4096),
        false,
    )
    .expect("plans");
    assert_eq!(plan.thinking, Some(ClaudeThinking::Adaptive("low")));
    assert_eq!(plan.max_tokens, Some(800));

    // `xhigh` where the model has it, else `max`, else `high`.
    let adaptive = |model: &str, wanted: &str| {
        claude(&asking(effort(wanted), None), model, Some(4096), false)
            .expect("plans")
            .thinking
    };
    assert_eq!(
        adaptive("claude-opus-4-7", "xhigh"),
        Some(ClaudeThinking::Adaptive("xhigh"))
    );
    assert_eq!(
        adaptive("claude-opus-4-6", "xhigh"),
        Some(ClaudeThinking::Adaptive("max"))
    );
    assert_eq!(
        adaptive("claude-mythos-preview", "xhigh"),
        Some(ClaudeThinking::Adaptive("max"))
    );
    assert_eq!(
        adaptive("claude-opus-4-7", "minimal"),
        Some(ClaudeThinking::Adaptive("low"))
    );
    assert_eq!(adaptive("claude-opus-4-7", "none"), None);
    // Older models: a budget.
    assert_eq!(
        adaptive("claude-sonnet-4-5", "high"),
        Some(ClaudeThinking::Budget(4096))
    );
    assert_eq!(adaptive("claude-sonnet-4-5", "minimal"), None);
}

#[test]
fn a_budget_goes_to_models_that_take_one_and_becomes_an_effort_where_none_is_taken() {
    let thinking = |model: &str, tokens: u32| {
        claude(
            &asking(budget(tokens), Some(32_000)),
            model,
            Some(4096),
            false,
        )
        .expect("plans")
        .thinking
    };
    assert_eq!(
        thinking("claude-sonnet-4-5", 10_000),
        Some(ClaudeThinking::Budget(10_000))
    );
    // Still taken by 4.6.
    assert_eq!(
        thinking("claude-opus-4-6", 10_000),
        Some(ClaudeThinking::Budget(10_000))
    );
    // Below Anthropic's smallest budget: raised to it.
    assert_eq!(
        thinking("anthropic.claude-3-7-sonnet-20250219-v1:0", 100),
        Some(ClaudeThinking::Budget(MIN_CLAUDE_BUDGET))
    );
    // Refused by 4.7: sent as the effort it stands for.
    assert_eq!(
        thinking("claude-opus-4-7", 1024),
        Some(ClaudeThinking::Adaptive("low"))
    );
    assert_eq!(
        thinking("claude-opus-4-7", 2000),
        Some(ClaudeThinking::Adaptive("medium"))
    );
    assert_eq!(
        thinking("claude-opus-4-7", 30_000),
        Some(ClaudeThinking::Adaptive("high"))
    );
    // What the client asked for is not a hint: it does not yield to a forced tool.
    let plan = claude(
        &asking(budget(2048), Some(8000)),
        "claude-opus-4-7",
        Some(4096),
        true,
    )
    .expect("plans");
    assert!(!plan.hinted && plan.thinking.is_some());
}

#[test]
fn an_effort_yields_to_a_forced_tool_and_fits_its_budget_under_max_tokens() {
    let plan = claude(
        &asking(effort("high"), None),
        "claude-opus-4-7",
        Some(4096),
        true,
    )
    .expect("plans");
    assert_eq!(plan.thinking, None);
    assert_eq!(plan.max_tokens, Some(4096));

    // A budget model without a client limit: the limit grows to hold budget and answer.
    let plan = claude(
        &asking(effort("high"), None),
        "claude-sonnet-4-5",
        Some(4096),
        false,
    )
    .expect("plans");
    assert_eq!(plan.thinking, Some(ClaudeThinking::Budget(4096)));
    assert_eq!(plan.max_tokens, Some(8192));
    // With one: the budget shrinks to half of it, or thinking is left off.
    let plan = claude(
        &asking(effort("high"), Some(3000)),
        "claude-sonnet-4-5",
        Some(4096),
        false,
    )
    .expect("plans");
    assert_eq!(plan.thinking, Some(ClaudeThinking::Budget(1500)));
    let plan = claude(
        &asking(effort("high"), Some(1500)),
        "claude-sonnet-4-5",
        Some(4096),
        false,
    )
    .expect("plans");
    assert_eq!(plan.thinking, None);
    // Bedrock sends no limit of its own: the model's default holds any budget.
    let plan = claude(
        &asking(effort("high"), None),
        "claude-sonnet-4-5",
        None,
        false,
    )
    .expect("plans");
    assert_eq!(plan.thinking, Some(ClaudeThinking::Budget(4096)));
    assert_eq!(plan.max_tokens, None);

    let error = claude(
        &asking(effort("extreme"), None),
        "claude-opus-4-7",
        None,
        false,
    )
    .expect_err("unknown effort");
    assert_eq!(error.param.as_deref(), Some("reasoning_effort"));
}

#[test]
fn adaptive_thinking_keeps_the_clients_output_config() {
    let mut fields = Map::new();
    fields.insert(
        "output_config".into(),
        json!({"format": {"type": "json_schema"}}),
    );
    put_claude_thinking(&mut fields, ClaudeThinking::Adaptive("medium"));
    assert_eq!(
        Value::Object(fields),
        json!({
            "thinking": {"type": "adaptive"},
            "output_config": {"format": {"type": "json_schema"}, "effort": "medium"},
        })
    );
    let mut fields = Map::new();
    put_claude_thinking(&mut fields, ClaudeThinking::Budget(2048));
    assert_eq!(
        Value::Object(fields),
        json!({"thinking": {"type": "enabled", "budget_tokens": 2048}})
    );
}

#[test]
fn gemini_budgets_are_clamped_to_the_models_range() {
    let config = |reasoning: Reasoning, model: &str| {
        gemini(&reasoning, model)
            .expect("config")
            .expect("thinking")
    };
    // 2.5 Pro cannot stop thinking and takes 128 to 32,768.
    assert_eq!(
        config(effort("none"), "gemini-2.5-pro"),
        json!({"thinkingBudget": 128, "includeThoughts": true})
    );
    assert_eq!(
        config(effort("high"), "gemini-2.5-pro"),
        json!({"thinkingBudget": 32_768, "includeThoughts": true})
    );
    assert_eq!(
        config(budget(64_000), "models/gemini-2.5-pro"),
        json!({"thinkingBudget": 32_768, "includeThoughts": true})
    );
    // Flash stops at 0 and takes up to 24,576.
    assert_eq!(
        config(effort("minimal"), "gemini-2.5-flash"),
        json!({"thinkingBudget": 0})
    );
    assert_eq!(
        config(budget(50_000), "gemini-2.5-flash"),
        json!({"thinkingBudget": 24_576, "includeThoughts": true})
    );
    // Flash-Lite: 0, or at least 512.
    assert_eq!(
        config(budget(100), "gemini-2.5-flash-lite"),
        json!({"thinkingBudget": 512, "includeThoughts": true})
    );
    assert_eq!(
        config(effort("none"), "gemini-2.5-flash-lite"),
        json!({"thinkingBudget": 0})
    );
}

#[test]
fn gemini_3_takes_a_level() {
    let level = |reasoning: Reasoning, model: &str| {
        gemini(&reasoning, model)
            .expect("config")
            .expect("thinking")["thinkingLevel"]
            .clone()
    };
    assert_eq!(
        level(effort("medium"), "gemini-3-flash-preview"),
        json!("medium")
    );
    assert_eq!(
        level(effort("minimal"), "gemini-3-flash-preview"),
        json!("minimal")
    );
    assert_eq!(
        level(effort("xhigh"), "gemini-3.1-pro-preview"),
        json!("high")
    );
    // The first Pro: `low` and `high` only, and never off.
    assert_eq!(level(effort("none"), "gemini-3-pro-preview"), json!("low"));
    assert_eq!(
        level(effort("medium"), "gemini-3-pro-preview"),
        json!("high")
    );
    // A budget as the level it stands for.
    assert_eq!(level(budget(1024), "gemini-3-flash"), json!("low"));
    assert_eq!(
        level(budget(20_000), "gemini-3.5-flash-lite"),
        json!("high")
    );
    assert!(gemini(&effort("extreme"), "gemini-3-flash").is_err());
}
