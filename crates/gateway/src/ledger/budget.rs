//! Budgets that cannot be overshot: before a call, the most it can cost is reserved against
//! every budget that applies (its key's, team's and user's); when it ends, the reservation
//! is replaced by what it really cost. A call is refused when a reservation would take any of
//! them past its limit, so however many calls run at once, spend never passes a budget.
//!
//! Each budget's spend in its current period starts from the store's daily aggregates (read
//! once per budget, when a call first needs it: a restart keeps the spend), then moves with
//! this process's settlements. Several instances need their budgets in Redis to stay exact
//! together; without it each keeps its own count on top of the shared store's.

use std::collections::HashMap;
use std::sync::Mutex;

use switchyard_ledger::{Budget, Day, Usd};
use switchyard_store::{Dimension, Store, StoreError};

use crate::background::Background;

/// Whose budget.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    /// Key, team or user.
    pub dimension: Dimension,
    /// Its id.
    pub id: String,
}

impl Scope {
    /// How a message names it: `key key_…`.
    pub fn describe(&self) -> String {
        format!("{} {}", self.dimension.as_str(), self.id)
    }
}

/// One budget's state in its current period.
#[derive(Debug)]
struct State {
    /// The period's first day.
    period: Day,
    /// Spent in the period before this process first looked (from the store).
    base: Option<i64>,
    /// Settled by this process in the period since.
    settled: i64,
    /// Held by calls in flight.
    reserved: i64,
    /// The period whose soft limit was passed and told.
    warned: Option<Day>,
}

impl State {
    fn spent(&self) -> i64 {
        self.base.unwrap_or(0).saturating_add(self.settled)
    }
}

/// Every budget this process has seen.
#[derive(Debug, Default)]
pub struct Budgets {
    states: Mutex<HashMap<Scope, State>>,
}

/// A call's hold on its budgets, released when it ends.
#[derive(Debug)]
pub struct Reservation {
    /// The budgets held, with the first day of the period each was held in.
    pub(super) scopes: Vec<(Scope, Day)>,
    /// How much, nano-dollars.
    pub(super) amount: i64,
    /// The hold's name in Redis (`None`: held in this process).
    pub(super) lease: Option<String>,
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    /// Whose budget.
    pub scope: Scope,
    /// The budget.
    pub budget: Budget,
    /// Spent in the period, settled and held.
    pub spent: Usd,
    /// When the period starts again (`None`: never).
    pub resets: Option<Day>,
}

/// A budget passed its soft limit (told once per period).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crossed {
    /// Whose budget.
    pub scope: Scope,
    /// The budget.
    pub budget: Budget,
    /// Spent in the period.
    pub spent: Usd,
}

impl Budgets {
    /// Reserves `amount` on every budget of `applying` at day `today`, or says which one it
    /// would exceed. Spend the process has not read yet is read from `store` first.
    pub async fn reserve(
        &self,
        applying: &[(Scope, Budget)],
        amount: Usd,
        today: Day,
        store: &Store,
        background: &Background,
    ) -> Result<Result<Reservation, Exceeded>, StoreError> {
        let missing = self.missing(applying, today);
        for (scope, period) in missing {
            let (store, read) = (store.clone(), scope.clone());
            let spent = background
                .run(async move { store.spent_since(read.dimension, &read.id, period).await })
                .await
                .ok_or(StoreError::Unavailable("shutting down"))??;
            let mut states = self.lock();
            if let Some(state) = states.get_mut(&scope)
                && state.period == period
                && state.base.is_none()
            {
                state.base = Some(spent);
            }
        }
        let mut states = self.lock();
        let amount = amount.nanos().max(0);
        for (scope, budget) in applying {
            let state = current(&mut states, scope, budget, today);
            let held = state.spent().saturating_add(state.reserved);
            if held.saturating_add(amount) > budget.max_usd.nanos() {
                return Ok(Err(Exceeded {
                    scope: scope.clone(),
                    budget: budget.clone(),
                    spent: Usd::from_nanos(held),
                    resets: budget.period.next_start(state.period),
                }));
            }
        }
        for (scope, budget) in applying {
            let state = current(&mut states, scope, budget, today);
            state.reserved = state.reserved.saturating_add(amount);
        }
        Ok(Ok(Reservation {
            scopes: applying
                .iter()
                .map(|(scope, budget)| (scope.clone(), budget.period.start(today)))
                .collect(),
            amount,
            lease: None,
        }))
    }

    /// Replaces `reservation` by the call's real `cost` (at day `today`, which may be in a
    /// later period than the reservation's); returns the budgets whose soft limit this took
    /// them past.
    pub fn settle(
        &self,
        reservation: Reservation,
        cost: Usd,
        applying: &[(Scope, Budget)],
        today: Day,
    ) -> Vec<Crossed> {
        let mut states = self.lock();
        let mut crossed = Vec::new();
        for (scope, _) in &reservation.scopes {
            let Some((_, budget)) = applying.iter().find(|(applies, _)| applies == scope) else {
                // The budget was removed meanwhile: nothing to count against.
                if let Some(state) = states.get_mut(scope) {
                    state.reserved = (state.reserved - reservation.amount).max(0);
                }
                continue;
            };
            let state = current(&mut states, scope, budget, today);
            state.reserved = (state.reserved - reservation.amount).max(0);
            state.settled = state.settled.saturating_add(cost.nanos());
            if let Some(soft) = budget.soft_usd
                && state.spent() >= soft.nanos()
                && state.warned != Some(state.period)
            {
                state.warned = Some(state.period);
                crossed.push(Crossed {
                    scope: scope.clone(),
                    budget: budget.clone(),
                    spent: Usd::from_nanos(state.spent()),
                });
            }
        }
        crossed
    }

    /// What `scope` spent in its current period and holds now (for reports and headers).
    pub fn spent(&self, scope: &Scope) -> Option<(Usd, Usd)> {
        let states = self.lock();
        let state = states.get(scope)?;
        Some((
            Usd::from_nanos(state.spent()),
            Usd::from_nanos(state.reserved),
        ))
    }

    /// The budgets of `applying` whose period's spend before this process is not read yet,
    /// with their period's first day (creating or rolling their state).
    fn missing(&self, applying: &[(Scope, Budget)], today: Day) -> Vec<(Scope, Day)> {
        let mut states = self.lock();
        applying
            .iter()
            .filter_map(|(scope, budget)| {
                let state = current(&mut states, scope, budget, today);
                state.base.is_none().then(|| (scope.clone(), state.period))
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Scope, State>> {
        self.states
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `scope`'s state for the period `today` is in: created when new (its base to be read), and
/// started again when a new period began (this process saw all of the new period's spend, so
/// it starts from zero with the calls still in flight held).
fn current<'a>(
    states: &'a mut HashMap<Scope, State>,
    scope: &Scope,
    budget: &Budget,
    today: Day,
) -> &'a mut State {
    let period = budget.period.start(today);
    let state = states.entry(scope.clone()).or_insert_with(|| State {
        period,
        base: None,
        settled: 0,
        reserved: 0,
        warned: None,
    });
    if state.period < period {
        state.period = period;
        state.base = Some(0);
        state.settled = 0;
    } else if state.period != period {
        // The budget's period changed (monthly to weekly): read its spend again.
        state.period = period;
        state.base = None;
        state.settled = 0;
    }
    state
}

#[cfg(test)]
mod tests {
    use switchyard_ledger::Period;
    use switchyard_store::Options;

    use super::*;

    fn budget(max: &str, period: Period) -> Budget {
        Budget {
            max_usd: Usd::parse(max).unwrap_or_default(),
            period,
            soft_usd: None,
        }
    }

    fn scope(id: &str) -> Scope {
        Scope {
            dimension: Dimension::Key,
            id: id.to_owned(),
        }
    }

    fn usd(text: &str) -> Usd {
        Usd::parse(text).unwrap_or_default()
    }

    fn background() -> Background {
        Background::on(tokio::runtime::Handle::current())
    }

    async fn store() -> Store {
        Store::connect(&Options::new("sqlite::memory:"))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn reservations_never_let_spend_pass_the_budget() {
        let (budgets, store) = (Budgets::default(), store().await);
        let applying = vec![(scope("a"), budget("1", Period::Monthly))];
        let today = Day::parse("2026-12-06").unwrap_or(Day::from_days(0));
        let mut held = Vec::new();
        // Ten calls that may cost up to $0.10 each fit; the eleventh does not.
        for _ in 0..10 {
            let reservation = budgets
                .reserve(&applying, usd("0.1"), today, &store, &background())
                .await;
            held.push(
                reservation
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_else(|| panic!("fits")),
            );
        }
        let refused = budgets
            .reserve(&applying, usd("0.1"), today, &store, &background())
            .await;
        let Ok(Err(exceeded)) = refused else {
            panic!("the eleventh call must be refused: {refused:?}")
        };
        assert_eq!(exceeded.spent, usd("1"));
        assert_eq!(exceeded.resets, Day::parse("2027-01-01"));
        // Each really cost $0.02: $0.80 is free again.
        for reservation in held {
            budgets.settle(reservation, usd("0.02"), &applying, today);
        }
        assert_eq!(budgets.spent(&scope("a")), Some((usd("0.2"), Usd::ZERO)));
        for _ in 0..8 {
            let reservation = budgets
                .reserve(&applying, usd("0.1"), today, &store, &background())
                .await;
            assert!(matches!(reservation, Ok(Ok(_))));
        }
        assert!(matches!(
            budgets
                .reserve(&applying, usd("0.1"), today, &store, &background())
                .await,
            Ok(Err(_))
        ));
    }

    #[tokio::test]
    async fn a_refusal_holds_nothing_on_the_other_budgets() {
        let (budgets, store) = (Budgets::default(), store().await);
        let today = Day::from_days(20_000);
        let team = Scope {
            dimension: Dimension::Team,
            id: "t".to_owned(),
        };
        let applying = vec![
            (scope("k"), budget("10", Period::Daily)),
            (team.clone(), budget("0.05", Period::Daily)),
        ];
        let refused = budgets
            .reserve(&applying, usd("0.1"), today, &store, &background())
            .await;
        assert!(matches!(&refused, Ok(Err(exceeded)) if exceeded.scope == team));
        assert_eq!(budgets.spent(&scope("k")), Some((Usd::ZERO, Usd::ZERO)));
    }

    #[tokio::test]
    async fn a_new_period_starts_from_zero_and_soft_limits_warn_once_per_period() {
        let (budgets, store) = (Budgets::default(), store().await);
        let mut soft = budget("1", Period::Daily);
        soft.soft_usd = Some(usd("0.5"));
        let applying = vec![(scope("s"), soft)];
        let day = Day::from_days(20_000);
        let mut warnings = 0;
        for _ in 0..4 {
            let reservation = budgets
                .reserve(&applying, usd("0.25"), day, &store, &background())
                .await;
            let reservation = reservation
                .ok()
                .and_then(Result::ok)
                .unwrap_or_else(|| panic!());
            warnings += budgets
                .settle(reservation, usd("0.25"), &applying, day)
                .len();
        }
        assert_eq!(warnings, 1, "told once when passing $0.50");
        assert!(matches!(
            budgets
                .reserve(&applying, usd("0.25"), day, &store, &background())
                .await,
            Ok(Err(_))
        ));
        let tomorrow = day.next();
        let reservation = budgets
            .reserve(&applying, usd("0.25"), tomorrow, &store, &background())
            .await;
        assert!(matches!(reservation, Ok(Ok(_))), "a new day, a new budget");
        assert_eq!(budgets.spent(&scope("s")), Some((Usd::ZERO, usd("0.25"))));
    }
}
