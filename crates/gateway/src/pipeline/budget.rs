//! The budget stage: before the call, the most it can cost is reserved against every budget
//! of its caller (key, team, user); a budget without room refuses it with a 402 that names the
//! budget and when it starts again. The reservation is settled with the real cost in
//! [`super::account`] when the request ends.

use switchyard_ledger::{Cost, Usd};
use switchyard_types::{ApiError, ErrorKind, Origin};
use tracing::warn;

use super::{Call, Ctx};
use crate::ledger::{self, budget::Exceeded};
use crate::router::ModelGroup;
use crate::runtime::Runtime;
use crate::tokens;

/// Reserves the call's most possible cost on its caller's budgets.
pub async fn reserve(runtime: &Runtime, ctx: &mut Ctx) -> Result<(), ApiError> {
    let (Some(ledger), Some(principal), Some(group)) =
        (&ctx.shared.ledger, &ctx.principal, &ctx.group)
    else {
        return Ok(());
    };
    let applying = ledger::applying(principal);
    if applying.is_empty() {
        return Ok(());
    }
    let amount = most_cost(runtime, ctx, group, ledger.reserve_output_tokens);
    match ledger.reserve(&applying, amount).await {
        Ok(Ok(reservation)) => {
            ctx.reservation = Some(reservation);
            Ok(())
        }
        Ok(Err(exceeded)) => Err(exceeded_error(&exceeded, amount)),
        Err(error) => {
            warn!(%error, "Budget spend could not be read");
            Err(ApiError::new(
                ErrorKind::Unavailable,
                Origin::Internal,
                "The gateway cannot check this key's budget right now; try again shortly",
            )
            .with_code("budget_unavailable"))
        }
    }
}

/// The most the call can cost on any deployment it may reach (its group's and its fallback
/// groups'): every prompt token (counted, or bounded by the prompt's bytes) at input or
/// cache-write prices, and the most output it may ask for (`max_tokens`, else the model's
/// output limit, else `ledger.reserve_output_tokens`).
fn most_cost(runtime: &Runtime, ctx: &Ctx, group: &ModelGroup, default_output: u64) -> Usd {
    let (prompt, asked_output, images) = match &ctx.call {
        Call::Chat(request) => (
            ctx.prompt_tokens
                .unwrap_or_else(|| tokens::upper_bound(request)),
            request.max_tokens.map(u64::from),
            request.image_count(),
        ),
        Call::Embed(_) | Call::Unread => (ctx.body.raw.len() as u64, Some(0), 0),
    };
    let groups = std::iter::once(group).chain(
        group
            .fallbacks
            .iter()
            .chain(&group.context_window_fallbacks)
            .chain(&group.content_policy_fallbacks)
            .filter_map(|name| runtime.group(name).map(|group| &**group)),
    );
    groups
        .flat_map(|group| &group.deployments)
        .map(|deployment| {
            let price = &deployment.price;
            let output = asked_output
                .or(price.max_output_tokens)
                .unwrap_or(default_output);
            Cost::at_most(price, prompt, output, images)
        })
        .max()
        .unwrap_or(Usd::ZERO)
}

/// The refusal: which budget, how much is spent and held, and when it starts again.
fn exceeded_error(exceeded: &Exceeded, amount: Usd) -> ApiError {
    let resets = match exceeded.resets {
        Some(day) => format!("it starts again at {day}T00:00:00Z"),
        None => "it does not reset".to_owned(),
    };
    let period = match exceeded.budget.period {
        switchyard_ledger::Period::None => String::new(),
        period => format!("{} ", period.as_str()),
    };
    ApiError::new(
        ErrorKind::BudgetExceeded,
        Origin::Client,
        format!(
            "Budget exceeded: the {period}budget of {} is ${}, ${} of it is spent or held by \
             calls in flight, and this call may cost up to ${amount}; {resets}",
            exceeded.scope.describe(),
            exceeded.budget.max_usd,
            exceeded.spent,
        ),
    )
    .with_code("budget_exceeded")
}
