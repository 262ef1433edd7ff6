//! The ledger: what each call cost, the budgets it counts against, and its spend record.
//!
//! A call's cost comes from the usage its provider reported, at its deployment's prices
//! ([`switchyard_ledger`]: the shipped table, with the config's own prices over it). Records go
//! to the store through a bounded background queue, in batches, each batch with its daily
//! aggregates in one transaction; what is queued at shutdown is written before the process
//! exits. Old raw records are deleted in small batches (`ledger.retention_days`); the daily
//! aggregates, which reports and budgets read, stay.
//!
//! # Layout
//! - [`budget`]: reservations before a call and settlement after it, per key, team and user.

pub mod budget;

use std::time::Duration;

use switchyard_ledger::{Budget, Day, Usd};
use switchyard_store::{Dimension, SpendRecord, Store, StoreError};
use tracing::{error, info, warn};

use crate::background::{Background, Queue};
use crate::config::ConfigFile;
use crate::governance::Principal;
use budget::{Budgets, Scope};

/// Records written per transaction, at most.
const BATCH: usize = 512;

/// Raw records deleted per statement by the retention task.
const PRUNE_BATCH: u32 = 1000;

/// How often the retention task looks for old records.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The ledger of a gateway with a store.
#[derive(Debug)]
pub struct Ledger {
    store: Store,
    queue: Queue<SpendRecord>,
    /// Budgets and their spend in this process.
    pub budgets: Budgets,
    background: Background,
    /// Output tokens reserved when neither the call nor the price table bounds them.
    pub reserve_output_tokens: u64,
    timeout: Duration,
}

impl Ledger {
    /// Starts the ledger on `store`: its writing queue and retention task run on
    /// `background`.
    pub fn start(store: Store, config: &ConfigFile, background: &Background) -> Ledger {
        let writer = store.clone();
        let queue = background.queue(
            "spend records",
            config.ledger.queue_capacity.max(1),
            BATCH,
            move |batch: Vec<SpendRecord>| {
                let store = writer.clone();
                async move { write(&store, batch).await }
            },
        );
        if config.ledger.retention_days > 0 {
            let keep = Duration::from_secs(u64::from(config.ledger.retention_days) * 86_400);
            background.spawn(retention(store.clone(), keep, background.clone()));
        }
        Ledger {
            store,
            queue,
            budgets: Budgets::default(),
            background: background.clone(),
            reserve_output_tokens: config.ledger.reserve_output_tokens,
            timeout: crate::governance::store_timeout(config),
        }
    }

    /// The store the records go to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Queues `record` to be written (never waits; a full queue drops it and counts it).
    pub fn record(&self, record: SpendRecord) {
        self.queue.push(record);
    }

    /// Records dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.queue.refused()
    }

    /// Reserves `amount` against `applying` today, within the store's time limit.
    pub async fn reserve(
        &self,
        applying: &[(Scope, Budget)],
        amount: Usd,
    ) -> Result<Result<budget::Reservation, budget::Exceeded>, StoreError> {
        let today = Day::of_ms(switchyard_store::now_ms());
        match tokio::time::timeout(
            self.timeout,
            self.budgets
                .reserve(applying, amount, today, &self.store, &self.background),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable("timed out")),
        }
    }

    /// Settles `reservation` with the call's real `cost`; a budget this takes past its soft
    /// limit is logged (once per period).
    pub fn settle(
        &self,
        reservation: budget::Reservation,
        cost: Usd,
        applying: &[(Scope, Budget)],
    ) {
        let today = Day::of_ms(switchyard_store::now_ms());
        for crossed in self.budgets.settle(reservation, cost, applying, today) {
            warn!(
                budget = %crossed.scope.describe(),
                spent_usd = %crossed.spent,
                soft_usd = %crossed.budget.soft_usd.unwrap_or_default(),
                max_usd = %crossed.budget.max_usd,
                period = crossed.budget.period.as_str(),
                "Budget passed its soft limit"
            );
        }
    }
}

/// The budgets that apply to `principal`'s calls: its key's, team's and user's.
pub fn applying(principal: &Principal) -> Vec<(Scope, Budget)> {
    let mut applying = Vec::new();
    let mut add = |dimension: Dimension, id: Option<&String>, budget: Option<&Budget>| {
        if let (Some(id), Some(budget)) = (id, budget) {
            applying.push((
                Scope {
                    dimension,
                    id: id.clone(),
                },
                budget.clone(),
            ));
        }
    };
    add(
        Dimension::Key,
        Some(&principal.key_id),
        principal.key_limits.budget.as_ref(),
    );
    add(
        Dimension::Team,
        principal.team_id.as_ref(),
        principal.team_limits.budget.as_ref(),
    );
    add(
        Dimension::User,
        principal.user_id.as_ref(),
        principal.user_limits.budget.as_ref(),
    );
    applying
}

/// Writes a batch, trying again while the store is unreachable (a few times, backing off);
/// a batch the store refuses outright is logged and dropped.
async fn write(store: &Store, batch: Vec<SpendRecord>) {
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=6 {
        match store.record_spend(&batch).await {
            Ok(()) => return,
            Err(failure) if attempt < 6 && !matches!(failure, StoreError::Invalid(_)) => {
                warn!(error = %failure, records = batch.len(), attempt, "Writing spend records failed; trying again");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(failure) => {
                error!(error = %failure, records = batch.len(), "Spend records could not be written; dropped");
                return;
            }
        }
    }
}

/// Deletes raw records older than `keep`, a thousand at a time, every hour (first a minute
/// after start), until shutdown.
async fn retention(store: Store, keep: Duration, background: Background) {
    let closing = background.closing();
    let mut wait = Duration::from_secs(60);
    loop {
        tokio::select! {
            () = closing.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = PRUNE_EVERY;
        let before =
            switchyard_store::now_ms() - i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        let mut deleted = 0u64;
        loop {
            if closing.is_cancelled() {
                return;
            }
            match store.prune_spend(before, PRUNE_BATCH).await {
                Ok(count) => {
                    deleted += count;
                    if count < u64::from(PRUNE_BATCH) {
                        break;
                    }
                    // Room for the writer between batches.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(failure) => {
                    warn!(error = %failure, "Deleting old spend records failed");
                    break;
                }
            }
        }
        if deleted > 0 {
            info!(deleted, "Deleted spend records past their retention");
        }
    }
}
