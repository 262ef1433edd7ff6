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
//! - [`remote`]: the same in Redis, exact across instances.

pub mod budget;
mod packed;

pub mod remote;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::ConnectionManager;
use switchyard_ledger::{Budget, Day, Usd};
use switchyard_store::{Dimension, SpendRow, Store, StoreError};
use tracing::{error, info, warn};

use crate::background::{Background, Queue};
use crate::config::ConfigFile;
use crate::config::file::OutagePolicy;
use crate::governance::Principal;
use budget::{Budgets, Crossed, Scope};
use remote::{RemoteBudgets, RemoteError};

/// Records written per transaction, at most.
const BATCH: usize = 512;

/// How long the writer waits for more records once one arrives: a transaction per 100 ms at
/// most under steady traffic, rather than one per call.
const LINGER: Duration = Duration::from_millis(100);

/// Raw records deleted per statement by the retention task.
const PRUNE_BATCH: u32 = 1000;

/// How often the retention task looks for old records.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The ledger of a gateway with a store.
#[derive(Debug)]
pub struct Ledger {
    store: Store,
    /// Records packed on the worker that served the call ([`packed`]).
    queue: Queue<packed::Packed>,
    /// Budgets and their spend in this process.
    pub budgets: Budgets,
    background: Background,
    /// Output tokens reserved when neither the call nor the price table bounds them.
    pub reserve_output_tokens: u64,
    timeout: Duration,
    /// Budgets in Redis, when the gateway has Redis (else in this process).
    remote: Option<Arc<RemoteBudgets>>,
    /// What a reservation does when Redis does not answer (`limits.on_redis_error`).
    policy: OutagePolicy,
    /// Where soft limits passed are told (`ledger.budget_webhook_url`).
    webhook: Option<Arc<Webhook>>,
}

/// A URL told about budgets passing their soft limit.
#[derive(Debug)]
struct Webhook {
    client: switchyard_providers::http::Client,
    target: switchyard_providers::http::Target,
}

impl Ledger {
    /// Starts the ledger on `store`, with its budgets in the Redis behind `redis` when given:
    /// its writing queue and retention task run on `background`.
    pub fn start(
        store: Store,
        config: &ConfigFile,
        background: &Background,
        redis: Option<Arc<ArcSwapOption<ConnectionManager>>>,
    ) -> Ledger {
        let writer = store.clone();
        let queue = background.lingering_queue(
            "spend records",
            config.ledger.queue_capacity.max(1),
            BATCH,
            LINGER,
            move |batch: Vec<packed::Packed>| {
                let store = writer.clone();
                async move {
                    let rows: Vec<SpendRow<'_>> =
                        batch.iter().filter_map(packed::Packed::view).collect();
                    write(&store, &rows).await;
                }
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
            remote: redis.map(|connection| {
                // A budget waits on Redis as long as on the store (`store.timeout_secs`), not the
                // rate limits' `limits.redis_timeout_ms`: a reservation that times out falls back
                // to this instance's own count, which is not exact across instances.
                Arc::new(RemoteBudgets::new(
                    connection,
                    &config.redis.prefix,
                    crate::governance::store_timeout(config),
                ))
            }),
            policy: config.limits.on_redis_error,
            webhook: config.ledger.budget_webhook_url.as_deref().and_then(|url| {
                let target = switchyard_providers::http::Target::parse(url).ok()?;
                let client = switchyard_providers::http::client(Duration::from_secs(5))
                    .map_err(|error| warn!(%error, "No client for the budget webhook"))
                    .ok()?;
                Some(Arc::new(Webhook { client, target }))
            }),
        }
    }

    /// The store the records go to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Queues `record` to be written (never waits; a full queue drops it and counts it).
    pub fn record(&self, record: &SpendRow<'_>) {
        self.queue.push(packed::Packed::of(record));
    }

    /// Records waiting to be written.
    pub fn queued(&self) -> usize {
        self.queue.depth()
    }

    /// Records dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.queue.refused()
    }

    /// Reserves `amount` against `applying` today: in Redis when the gateway has it (on a
    /// Redis outage, in this process or refused, as `limits.on_redis_error` says), else in
    /// this process; within the store's time limit.
    pub async fn reserve(
        &self,
        applying: &[(Scope, Budget)],
        amount: Usd,
    ) -> Result<Result<budget::Reservation, budget::Exceeded>, StoreError> {
        let today = Day::of_ms(switchyard_store::now_ms());
        if let Some(remote) = &self.remote {
            let (remote, held, store) = (Arc::clone(remote), applying.to_vec(), self.store.clone());
            let decided = tokio::time::timeout(
                self.timeout,
                self.background
                    .run(async move { remote.reserve(&held, amount, today, &store).await }),
            )
            .await;
            match decided {
                Ok(Some(Ok(result))) => return Ok(result),
                Ok(Some(Err(RemoteError::Store(error)))) => return Err(error),
                Ok(None) => return Err(StoreError::Unavailable("shutting down")),
                Ok(Some(Err(RemoteError::Redis(error)))) => {
                    warn!(%error, "Redis did not answer a budget reservation");
                }
                Err(_) => warn!("Redis did not answer a budget reservation in time"),
            }
            if self.policy == OutagePolicy::Closed {
                return Err(StoreError::Unavailable("redis is not answering"));
            }
        }
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

    /// Settles `reservation` with the call's real `cost` (in Redis on the background runtime
    /// when it was held there); a budget this takes past its soft limit is logged, once per
    /// period.
    pub fn settle(
        &self,
        reservation: budget::Reservation,
        cost: Usd,
        applying: &[(Scope, Budget)],
    ) {
        let today = Day::of_ms(switchyard_store::now_ms());
        if let (Some(remote), true) = (&self.remote, reservation.lease.is_some()) {
            let (remote, applying) = (Arc::clone(remote), applying.to_vec());
            let webhook = self.webhook.clone();
            self.background.spawn(async move {
                match remote.settle(&reservation, cost, &applying, today).await {
                    Ok(crossed) => {
                        for crossed in crossed {
                            soft_limit_passed(&crossed);
                            if let Some(webhook) = &webhook {
                                webhook.tell(&crossed, today).await;
                            }
                        }
                    }
                    Err(error) => warn!(
                        %error,
                        cost_usd = %cost,
                        "A budget settlement did not reach Redis: the hold lapses with its lease"
                    ),
                }
            });
            return;
        }
        for crossed in self.budgets.settle(reservation, cost, applying, today) {
            soft_limit_passed(&crossed);
            if let Some(webhook) = &self.webhook {
                let webhook = Arc::clone(webhook);
                self.background
                    .spawn(async move { webhook.tell(&crossed, today).await });
            }
        }
    }
}

impl Webhook {
    /// POSTs what `crossed` says (a few tries; a webhook that never answers is logged).
    async fn tell(&self, crossed: &Crossed, today: Day) {
        let period = crossed.budget.period;
        let body = serde_json::json!({
            "event": "budget.soft_limit_passed",
            "scope": crossed.scope.dimension.as_str(),
            "id": crossed.scope.id,
            "period": period.as_str(),
            "period_start": period.start(today).to_string(),
            "resets": period.next_start(period.start(today)).map(|day| day.to_string()),
            "spent_usd": crossed.spent.to_string(),
            "soft_usd": crossed.budget.soft_usd.unwrap_or_default().to_string(),
            "max_usd": crossed.budget.max_usd.to_string(),
            "at": switchyard_store::now_ms(),
        });
        let body = bytes::Bytes::from(body.to_string());
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        for attempt in 1..=3u32 {
            let sent = tokio::time::timeout(
                Duration::from_secs(10),
                self.client.send(
                    http::Method::POST,
                    &self.target,
                    headers.clone(),
                    body.clone(),
                ),
            )
            .await;
            match sent {
                Ok(Ok(response)) if response.status().is_success() => return,
                Ok(Ok(response)) => {
                    warn!(
                        status = response.status().as_u16(),
                        attempt, "The budget webhook refused the notice"
                    );
                }
                Ok(Err(error)) => warn!(%error, attempt, "The budget webhook could not be reached"),
                Err(_) => warn!(attempt, "The budget webhook did not answer in time"),
            }
            tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
        }
    }
}

/// Tells the log a budget passed its soft limit.
fn soft_limit_passed(crossed: &Crossed) {
    warn!(
        budget = %crossed.scope.describe(),
        spent_usd = %crossed.spent,
        soft_usd = %crossed.budget.soft_usd.unwrap_or_default(),
        max_usd = %crossed.budget.max_usd,
        period = crossed.budget.period.as_str(),
        "Budget passed its soft limit"
    );
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
async fn write(store: &Store, batch: &[SpendRow<'_>]) {
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=6 {
        match store.record_spend_rows(batch).await {
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
