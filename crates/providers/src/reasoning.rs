//! How much a model thinks, said the way each model takes it.
//!
//! Clients say it two ways: an OpenAI `reasoning_effort` (`none` … `xhigh`) or an Anthropic
//! thinking budget in tokens (`ChatRequest::reasoning`); an Anthropic client's adaptive thinking
//! arrives as an effort too. Models take it three ways, decided here from the model's id:
//!
//! - Claude before 4.6: `thinking: {type: enabled, budget_tokens}`, at least 1,024 tokens and
//!   below `max_tokens`.
//! - Claude 4.6: adaptive thinking (`thinking: {type: adaptive}` with `output_config.effort`),
//!   a budget still accepted. Claude 4.7 and later, Mythos and Fable: adaptive only (a budget
//!   is a 400). `xhigh` from 4.7 on, `max` from 4.6 on.
//!   <https://platform.claude.com/docs/en/build-with-claude/effort>
//! - Gemini 2.5: `thinkingBudget` within the model's range (Pro 128–32,768 and never off;
//!   Flash 0–24,576; Flash-Lite 512–24,576 or 0). Gemini 3 and later: `thinkingLevel`
//!   (`minimal`, `low`, `medium`, `high`; the first Pro takes only `low` and `high` and
//!   cannot stop thinking).

use serde_json::{Map, Value, json};
use switchyard_types::{ApiError, ChatRequest, ContentPart, Reasoning, Role};

/// Anthropic's smallest thinking budget.
pub(crate) const MIN_CLAUDE_BUDGET: u32 = 1024;

/// The efforts a client may name (OpenAI's, and Anthropic's `max`).
fn known_effort(effort: &str) -> bool {
    matches!(
        effort,
        "none" | "minimal" | "low" | "medium" | "high" | "xhigh" | "max"
    )
}

fn unknown_effort(effort: &str, family: &str) -> ApiError {
    ApiError::invalid_request(
        format!(
            "reasoning_effort `{}` has no {family} equivalent",
            switchyard_types::clip(effort, switchyard_types::MAX_QUOTED)
        ),
        Some("reasoning_effort".into()),
    )
}

/// The effort an Anthropic-style budget stands for (the inverse of [`claude_budget`]).
pub(crate) fn effort_for_budget(budget: u32) -> &'static str {
    match budget {
        0 => "none",
        1..=1024 => "low",
        1025..=2048 => "medium",
        _ => "high",
    }
}

/// The budget an effort stands for on Claude models that take budgets.
fn claude_budget(effort: &str) -> Option<u32> {
    match effort {
        "low" => Some(1024),
        "medium" => Some(2048),
        "high" | "xhigh" | "max" => Some(4096),
        _ => None,
    }
}

/// A model id's family and `major.minor` version, in any provider's spelling of it:
/// `claude-opus-4-7`, `claude-3-7-sonnet-20250219`, `us.anthropic.claude-opus-4-6-v1:0`,
/// `claude-sonnet-4-5@20250929`, `gemini-2.5-flash-lite`, `models/gemini-3-pro-preview`.
struct ModelId<'a> {
    /// The words after the vendor's prefix that are not numbers (`opus`, `flash`, `lite`).
    words: Vec<&'a str>,
    version: Option<(u32, u32)>,
}

impl<'a> ModelId<'a> {
    fn parse(model: &'a str, prefix: &str) -> Option<ModelId<'a>> {
        let start = model.find(prefix)? + prefix.len();
        let rest = &model[start..];
        let rest = rest.split(['@', ':', '/', '?']).next().unwrap_or(rest);
        let mut words = Vec::new();
        let mut numbers = Vec::new();
        for token in rest.split(['-', '.', '_']) {
            if token.is_empty() {
                continue;
            }
            if token.len() <= 2 && token.bytes().all(|b| b.is_ascii_digit()) {
                if numbers.len() < 2 {
                    numbers.push(token.parse::<u32>().ok()?);
                }
            } else if !token.bytes().all(|b| b.is_ascii_digit()) {
                words.push(token);
            }
        }
        let version = numbers
            .first()
            .map(|&major| (major, numbers.get(1).copied().unwrap_or(0)));
        Some(ModelId { words, version })
    }

    fn has(&self, word: &str) -> bool {
        self.words.iter().any(|w| w.eq_ignore_ascii_case(word))
    }

    fn at_least(&self, major: u32, minor: u32) -> bool {
        self.version
            .is_some_and(|version| version >= (major, minor))
    }
}

/// What a Claude model takes for thinking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct ClaudeCaps {
    adaptive: bool,
    /// A budget is refused (4.7 and later, Mythos, Fable).
    adaptive_only: bool,
    xhigh: bool,
    max: bool,
}

impl ClaudeCaps {
    fn of(model: &str) -> ClaudeCaps {
        let lower = model.to_ascii_lowercase();
        let Some(id) = ModelId::parse(&lower, "claude-") else {
            return ClaudeCaps::default();
        };
        let named_new = id.has("mythos") || id.has("fable");
        let adaptive_only = named_new || id.at_least(4, 7);
        ClaudeCaps {
            adaptive: adaptive_only || id.at_least(4, 6),
            adaptive_only,
            xhigh: id.at_least(4, 7),
            max: named_new || id.at_least(4, 6),
        }
    }

    /// Claude's effort for a client's effort (`none` is no thinking, decided before).
    fn effort(self, effort: &str) -> &'static str {
        match effort {
            "minimal" | "low" => "low",
            "medium" => "medium",
            "xhigh" if self.xhigh => "xhigh",
            "xhigh" | "max" if self.max => "max",
            _ => "high",
        }
    }
}

/// A Claude request's thinking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClaudeThinking {
    /// `{"type": "enabled", "budget_tokens": n}`.
    Budget(u32),
    /// `{"type": "adaptive"}` and `output_config.effort`.
    Adaptive(&'static str),
}

/// What a Claude request says about thinking, and the `max_tokens` that goes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClaudePlan {
    pub thinking: Option<ClaudeThinking>,
    pub max_tokens: Option<u32>,
    /// The thinking came from an OpenAI effort, a hint: it yields where it would turn a valid
    /// request into a refused one, and it drops the sampling parameters thinking refuses.
    pub hinted: bool,
}

/// `max_tokens` given with adaptive thinking when the client gave none: room to think and
/// answer.
const ADAPTIVE_MAX_TOKENS: u32 = 16_384;

/// Decides a Claude request's thinking for `model`. `default_max_tokens` is what the
/// encoder sends when the client gave no `max_tokens` (Anthropic requires one; Bedrock
/// does not); `forces_tool` says the request forces a tool call, which thinking refuses.
pub(crate) fn claude(
    request: &ChatRequest,
    model: &str,
    default_max_tokens: Option<u32>,
    forces_tool: bool,
) -> Result<ClaudePlan, ApiError> {
    let client_max = request.max_tokens;
    let plain = ClaudePlan {
        thinking: None,
        max_tokens: client_max.or(default_max_tokens),
        hinted: false,
    };
    let Some(reasoning) = &request.reasoning else {
        return Ok(plain);
    };
    let caps = ClaudeCaps::of(model);
    let (thinking, hinted) = match claude_wanted(reasoning, caps)? {
        Some(wanted) => wanted,
        None => return Ok(plain),
    };
    // Anthropic refuses thinking with a forced tool, and an OpenAI client cannot replay the
    // signed thinking a tool loop needs; an effort is a hint, so thinking yields. What an
    // Anthropic client asked for is sent as asked.
    if hinted && (forces_tool || !replays_thinking(request)) {
        return Ok(plain);
    }
    let mut plan = ClaudePlan {
        thinking: Some(thinking),
        max_tokens: plain.max_tokens,
        hinted,
    };
    match thinking {
        ClaudeThinking::Adaptive(_) => {
            if client_max.is_none() && default_max_tokens.is_some() {
                plan.max_tokens = Some(ADAPTIVE_MAX_TOKENS);
            }
        }
        ClaudeThinking::Budget(budget) if hinted => {
            // The budget must stay below max_tokens, which (as OpenAI's) covers both.
            match (client_max, plan.max_tokens) {
                (_, Some(max)) if budget < max => {}
                (None, Some(_)) => plan.max_tokens = Some(budget + default_max_tokens.unwrap_or(0)),
                (Some(max), _) if max / 2 >= MIN_CLAUDE_BUDGET => {
                    plan.thinking = Some(ClaudeThinking::Budget(max / 2));
                }
                (Some(_), _) => return Ok(plain),
                (None, None) => {}
            }
        }
        ClaudeThinking::Budget(_) => {}
    }
    Ok(plan)
}

/// The thinking a request asks of a Claude model with `caps`, and whether it came from an
/// effort (a hint); `None` for no thinking.
fn claude_wanted(
    reasoning: &Reasoning,
    caps: ClaudeCaps,
) -> Result<Option<(ClaudeThinking, bool)>, ApiError> {
    if let Some(budget) = reasoning.budget_tokens {
        let thinking = if caps.adaptive_only {
            ClaudeThinking::Adaptive(caps.effort(effort_for_budget(budget.max(1))))
        } else {
            ClaudeThinking::Budget(budget.max(MIN_CLAUDE_BUDGET))
        };
        return Ok(Some((thinking, false)));
    }
    let Some(effort) = reasoning.effort.as_deref() else {
        return Ok(None);
    };
    if !known_effort(effort) {
        return Err(unknown_effort(effort, "Anthropic"));
    }
    if effort == "none" {
        return Ok(None);
    }
    if caps.adaptive {
        return Ok(Some((ClaudeThinking::Adaptive(caps.effort(effort)), true)));
    }
    Ok(claude_budget(effort).map(|budget| (ClaudeThinking::Budget(budget), true)))
}

/// Puts a plan's thinking into `fields` (an Anthropic body, or Bedrock's
/// `additionalModelRequestFields`): `thinking`, and the effort merged into an `output_config`
/// the client may already have sent.
pub(crate) fn put_claude_thinking(fields: &mut Map<String, Value>, thinking: ClaudeThinking) {
    match thinking {
        ClaudeThinking::Budget(budget) => {
            fields.insert(
                "thinking".into(),
                json!({"type": "enabled", "budget_tokens": budget}),
            );
        }
        ClaudeThinking::Adaptive(effort) => {
            fields.insert("thinking".into(), json!({"type": "adaptive"}));
            let config = fields
                .entry("output_config")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(config) = config.as_object_mut() {
                config.insert("effort".into(), effort.into());
            }
        }
    }
}

/// Whether the last assistant turn, if it called tools, carries the signed thinking
/// Anthropic requires when thinking is on during a tool loop.
pub(crate) fn replays_thinking(request: &ChatRequest) -> bool {
    let Some(last) = request
        .messages
        .iter()
        .rev()
        .find(|message| message.role == Role::Assistant)
    else {
        return true;
    };
    last.tool_calls.is_empty()
        || last.content.iter().any(|part| match part {
            ContentPart::Thinking { signature, .. } => signature
                .as_deref()
                .is_some_and(|signature| !signature.is_empty()),
            ContentPart::RedactedThinking { .. } => true,
            ContentPart::Text { .. } | ContentPart::Image { .. } | ContentPart::Opaque { .. } => {
                false
            }
        })
}

/// What a Gemini model takes for thinking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GeminiCaps {
    /// Gemini 2.5 and earlier: a budget in `min..=max`, and 0 (off) if `can_stop`.
    Budget { min: u32, max: u32, can_stop: bool },
    /// Gemini 3 and later: a level; `minimal` and `medium` only where `all_levels`.
    Level { all_levels: bool },
}

impl GeminiCaps {
    fn of(model: &str) -> GeminiCaps {
        let lower = model.to_ascii_lowercase();
        let id = ModelId::parse(&lower, "gemini-");
        let id = id.as_ref();
        let has = |word: &str| id.is_some_and(|id| id.has(word));
        if id.is_some_and(|id| id.at_least(3, 0)) {
            // The first Pro took only `low` and `high`; Flash, Flash-Lite and later Pros all four.
            let first_pro = has("pro") && id.is_some_and(|id| id.version == Some((3, 0)));
            return GeminiCaps::Level {
                all_levels: !first_pro,
            };
        }
        if has("pro") {
            GeminiCaps::Budget {
                min: 128,
                max: 32_768,
                can_stop: false,
            }
        } else if has("lite") {
            GeminiCaps::Budget {
                min: 512,
                max: 24_576,
                can_stop: true,
            }
        } else {
            GeminiCaps::Budget {
                min: 0,
                max: 24_576,
                can_stop: true,
            }
        }
    }
}

/// `thinkingConfig` for `model` from a budget (Anthropic) or an effort (OpenAI), clamped to
/// what the model takes. Thoughts are asked for whenever the model thinks, so clients see its
/// reasoning.
pub(crate) fn gemini(reasoning: &Reasoning, model: &str) -> Result<Option<Value>, ApiError> {
    let effort = match (reasoning.budget_tokens, reasoning.effort.as_deref()) {
        (Some(budget), _) => Wanted::Budget(budget),
        (None, None) => return Ok(None),
        (None, Some(effort)) if known_effort(effort) => Wanted::Effort(effort),
        (None, Some(other)) => return Err(unknown_effort(other, "Gemini")),
    };
    let mut config = Map::new();
    let thinks = match GeminiCaps::of(model) {
        GeminiCaps::Budget { min, max, can_stop } => {
            let budget = match effort {
                Wanted::Budget(budget) => budget,
                Wanted::Effort("none" | "minimal") => 0,
                Wanted::Effort("low") => 1024,
                Wanted::Effort("medium") => 8192,
                Wanted::Effort(_) => max,
            };
            let budget = if budget == 0 && can_stop {
                0
            } else {
                budget.clamp(min.max(1), max)
            };
            config.insert("thinkingBudget".into(), budget.into());
            budget > 0
        }
        GeminiCaps::Level { all_levels } => {
            let effort = match effort {
                Wanted::Budget(budget) => effort_for_budget(budget),
                Wanted::Effort(effort) => effort,
            };
            let level = match effort {
                "none" | "minimal" if all_levels => "minimal",
                "none" | "minimal" | "low" => "low",
                "medium" if all_levels => "medium",
                _ => "high",
            };
            config.insert("thinkingLevel".into(), level.into());
            true
        }
    };
    if thinks {
        config.insert("includeThoughts".into(), true.into());
    }
    Ok(Some(Value::Object(config)))
}

enum Wanted<'a> {
    Budget(u32),
    Effort(&'a str),
}

#[cfg(test)]
mod tests;
