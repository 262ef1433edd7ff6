//! The audit log: a record of every model call and every admin change, appended to a Merkle
//! tree in the store and signed as checkpoints (see [`switchyard_audit`]).
//!
//! Model calls are handed over when a request ends (never waiting) and written in batches by
//! one writer task on the background runtime; admin changes, which the store writes in the
//! change's own transaction, are folded in by the same writer every second, each once even
//! with several instances. Every `audit.checkpoint_interval_secs` the writer signs the tree as
//! committed, if it grew; `Audit::checkpoint_now` drains what is queued and signs at once.
//! At shutdown the writer writes out the queue, folds the last changes and signs a final
//! checkpoint. A write that fails is retried (the queue fills meanwhile, and a full queue
//! drops and counts); records are never written twice.
//!
//! # Layout
//! - [`record`]: what a record says, and what it leaves out.

pub mod record;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ring::hmac;
use switchyard_audit::{Checkpoint, Signer, Verifier};
use switchyard_store::{AdminBatch, AuditHead, Store, StoreError, StoredCheckpoint};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::background::Background;
use crate::config::ConfigFile;
use crate::config::file::AuditConfig;
pub use record::CallAudit;

/// Records written per transaction, at most.
const BATCH: usize = 1024;

/// How long the writer waits for more records once one arrives.
const LINGER: Duration = Duration::from_millis(100);

/// How often admin changes are folded in.
const FOLD_EVERY: Duration = Duration::from_secs(1);

/// Admin changes read per fold.
const FOLD_BATCH: u32 = 1000;

/// Records deleted per statement by retention, and how often it runs.
const PRUNE_BATCH: u32 = 1000;
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// How long a write that failed waits before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The purpose the pseudonym key is derived for.
const PSEUDONYM_PURPOSE: &str = "switchyard audit pseudonyms v1";

/// Why the audit log could not answer.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The writer is not running (shutting down).
    #[error("the audit writer is not running")]
    Stopped,
    /// The writer did not answer in time.
    #[error("the audit writer did not answer in time")]
    Timeout,
}

/// A request for a checkpoint now, and where its answer goes.
type Ask = oneshot::Sender<Result<Option<StoredCheckpoint>, StoreError>>;

/// The audit log of a gateway with a store.
#[derive(Debug)]
pub struct Audit {
    store: Store,
    calls: mpsc::Sender<CallAudit>,
    asks: mpsc::Sender<Ask>,
    refused: AtomicU64,
    verifier: Verifier,
    origin: String,
    timeout: Duration,
}

/// Where the signing key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `audit.signing_key` (or its environment variable).
    Config,
    /// A key file that was there.
    File(PathBuf),
    /// A key file made now.
    Made(PathBuf),
    /// Made for this process only (an in-memory store keeps nothing either).
    Ephemeral,
}

/// The key that signs checkpoints: from the config, else from its file (made at first start).
pub fn signing_key(config: &ConfigFile) -> Result<(Signer, KeySource), String> {
    let audit = &config.audit;
    if let Some(key) = &audit.signing_key {
        let signer = Signer::parse(key.expose()).map_err(|error| error.to_string())?;
        return Ok((signer, KeySource::Config));
    }
    let store_url = config.store.url.expose();
    let path = match (&audit.signing_key_file, store_url.strip_prefix("sqlite://")) {
        (Some(path), _) => PathBuf::from(path),
        (None, _) if store_url.contains(":memory:") || store_url.contains("mode=memory") => {
            let signer = Signer::generate(&key_name(audit)).map_err(|error| error.to_string())?;
            return Ok((signer, KeySource::Ephemeral));
        }
        (None, Some(file)) => {
            let file = file.split('?').next().unwrap_or(file);
            Path::new(file)
                .parent()
                .unwrap_or(Path::new("."))
                .join("audit-signing.key")
        }
        (None, None) => PathBuf::from("switchyard-data/audit-signing.key"),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let signer =
                Signer::parse(&text).map_err(|error| format!("{}: {error}", path.display()))?;
            Ok((signer, KeySource::File(path)))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let signer = Signer::generate(&key_name(audit)).map_err(|error| error.to_string())?;
            write_key(&path, &signer).map_err(|error| format!("{}: {error}", path.display()))?;
            Ok((signer, KeySource::Made(path)))
        }
        Err(error) => Err(format!("{}: {error}", path.display())),
    }
}

/// A key's name: the origin, which config checks has no space or '+'.
fn key_name(audit: &AuditConfig) -> String {
    audit.origin.clone()
}

/// Writes a new key file readable by its owner only; never over one that exists.
fn write_key(path: &Path, signer: &Signer) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(folder) = path.parent()
        && !folder.as_os_str().is_empty()
    {
        std::fs::create_dir_all(folder)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(format!("{}\n", signer.to_private_string()).as_bytes())?;
    file.sync_all()
}

impl Audit {
    /// Starts the audit log on `store`, signing with `signer`: its writer and retention task
    /// run on `background`.
    pub fn start(
        store: Store,
        config: &ConfigFile,
        background: &Background,
        signer: Signer,
    ) -> Audit {
        let audit = &config.audit;
        let (calls, calls_rx) = mpsc::channel(audit.queue_capacity.max(1));
        let (asks, asks_rx) = mpsc::channel(16);
        let pseudonyms =
            hmac::Key::new(hmac::HMAC_SHA256, &signer.derive_secret(PSEUDONYM_PURPOSE));
        let verifier = signer.verifier();
        let writer = Writer {
            store: store.clone(),
            signer,
            origin: audit.origin.clone(),
            pseudonyms,
            changes_seq: None,
            signed: None,
            interval: Duration::try_from_secs_f64(audit.checkpoint_interval_secs)
                .unwrap_or(Duration::from_secs(10)),
        };
        background.spawn(writer.run(calls_rx, asks_rx, background.closing()));
        if audit.retention_days > 0 {
            let keep = Duration::from_secs(u64::from(audit.retention_days) * 86_400);
            background.spawn(retention(store.clone(), keep, background.closing()));
        }
        Audit {
            store,
            calls,
            asks,
            refused: AtomicU64::new(0),
            verifier,
            origin: audit.origin.clone(),
            timeout: crate::governance::store_timeout(config),
        }
    }

    /// Queues a call's record (never waits; a full queue drops it and counts it).
    pub fn record(&self, call: CallAudit) {
        if self.calls.try_send(call).is_err() {
            let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
            if refused % 1000 == 1 {
                error!(refused, "Audit queue full: a record was dropped");
            }
        }
    }

    /// Records dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Records waiting to be written.
    pub fn queued(&self) -> usize {
        self.calls.max_capacity() - self.calls.capacity()
    }

    /// The store the log is in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The public key that checks this instance's checkpoints.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The log's name.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Writes what is queued and folds in admin changes, then signs the tree as it is (or
    /// gives the checkpoint that already signs it): the latest checkpoint, `None` while the
    /// log is empty. Waits up to the store's time limit and the batch's write.
    pub async fn checkpoint_now(&self) -> Result<Option<StoredCheckpoint>, AuditError> {
        let (reply, answer) = oneshot::channel();
        self.asks
            .send(reply)
            .await
            .map_err(|_| AuditError::Stopped)?;
        match tokio::time::timeout(self.timeout * 4, answer).await {
            Ok(Ok(result)) => Ok(result?),
            Ok(Err(_)) => Err(AuditError::Stopped),
            Err(_) => Err(AuditError::Timeout),
        }
    }
}

/// The writer task's state.
struct Writer {
    store: Store,
    signer: Signer,
    origin: String,
    pseudonyms: hmac::Key,
    /// The last admin change folded, as far as this writer knows (`None`: read the head).
    changes_seq: Option<i64>,
    /// When this writer last signed or found nothing to sign (`None`: not yet).
    signed: Option<Instant>,
    interval: Duration,
}

impl Writer {
    async fn run(
        mut self,
        mut calls: mpsc::Receiver<CallAudit>,
        mut asks: mpsc::Receiver<Ask>,
        closing: CancellationToken,
    ) {
        let mut fold = tokio::time::interval(FOLD_EVERY);
        fold.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut batch = Vec::with_capacity(BATCH);
            tokio::select! {
                biased;
                () = closing.cancelled() => break,
                Some(reply) = asks.recv() => {
                    loop {
                        take_queued(&mut calls, &mut batch);
                        if batch.is_empty() {
                            break;
                        }
                        self.write(std::mem::take(&mut batch), &closing).await;
                    }
                    let result = match self.fold().await {
                        Ok(()) => self.checkpoint(true).await,
                        Err(error) => Err(error),
                    };
                    let _ = reply.send(result);
                }
                received = calls.recv_many(&mut batch, BATCH) => {
                    if received == 0 {
                        break;
                    }
                    if batch.len() < BATCH {
                        tokio::select! {
                            biased;
                            () = closing.cancelled() => {}
                            () = tokio::time::sleep(LINGER) => {}
                        }
                        take_queued(&mut calls, &mut batch);
                    }
                    self.write(batch, &closing).await;
                }
                _ = fold.tick() => {
                    if let Err(error) = self.fold().await {
                        warn!(%error, "Could not fold admin changes into the audit log");
                    }
                    if self.due()
                        && let Err(error) = self.checkpoint(false).await
                    {
                        warn!(%error, "Could not sign an audit checkpoint");
                    }
                }
            }
        }
        // Shutting down: no request pushes any more; write out what is left, then sign.
        calls.close();
        loop {
            let mut batch = Vec::with_capacity(BATCH);
            if calls.recv_many(&mut batch, BATCH).await == 0 {
                break;
            }
            self.write(batch, &closing).await;
        }
        if let Err(error) = self.fold().await {
            warn!(%error, "Could not fold the last admin changes into the audit log");
        }
        match self.checkpoint(false).await {
            Ok(Some(checkpoint)) => info!(size = checkpoint.size, "Audit log checkpoint signed"),
            Ok(None) => {}
            Err(error) => error!(%error, "Could not sign the last audit checkpoint"),
        }
        asks.close();
        while let Ok(reply) = asks.try_recv() {
            let _ = reply.send(Err(StoreError::Unavailable("shutting down")));
        }
    }

    /// Appends `calls`, trying again while the store fails (a few times once shutting down).
    async fn write(&mut self, calls: Vec<CallAudit>, closing: &CancellationToken) {
        if calls.is_empty() {
            return;
        }
        let entries: Vec<_> = calls.into_iter().map(CallAudit::entry).collect();
        let mut tries = 0;
        loop {
            match self.store.audit_append(None, &entries).await {
                Ok(head) => {
                    self.changes_seq = Some(head.changes_seq);
                    return;
                }
                Err(error) => {
                    tries += 1;
                    if closing.is_cancelled() && tries >= 5 {
                        error!(%error, records = entries.len(), "Audit records lost: the store would not take them");
                        return;
                    }
                    warn!(%error, records = entries.len(), "Could not write audit records; trying again");
                    tokio::time::sleep(RETRY_AFTER).await;
                }
            }
        }
    }

    /// Folds the admin changes made since the last one in the log.
    async fn fold(&mut self) -> Result<(), StoreError> {
        loop {
            let after = match self.changes_seq {
                Some(seq) => seq,
                None => self.store.audit_head().await?.changes_seq,
            };
            let changes = self.store.changes(after, None, FOLD_BATCH).await?;
            let Some(through) = changes.last().map(|change| change.seq) else {
                self.changes_seq = Some(after);
                return Ok(());
            };
            let full = changes.len() == FOLD_BATCH as usize;
            let entries = changes
                .into_iter()
                .map(|change| record::admin_entry(change, &self.pseudonyms))
                .collect();
            let batch = AdminBatch {
                after,
                through,
                entries,
            };
            let head: AuditHead = self.store.audit_append(Some(batch), &[]).await?;
            // Another instance may have folded them first: go on from where the head is.
            self.changes_seq = Some(head.changes_seq);
            if !full && head.changes_seq == through {
                return Ok(());
            }
        }
    }

    /// Whether a checkpoint is due.
    fn due(&self) -> bool {
        self.signed.is_none_or(|at| at.elapsed() >= self.interval)
    }

    /// Signs the committed tree if it grew since the last checkpoint (or `force`: then the
    /// latest checkpoint is given even when nothing grew).
    async fn checkpoint(&mut self, force: bool) -> Result<Option<StoredCheckpoint>, StoreError> {
        let latest = self.store.audit_latest_checkpoint().await?;
        let signed = latest.as_ref().map_or(0, |checkpoint| checkpoint.size);
        let head = self.store.audit_head().await?;
        if head.size == 0 || head.size <= signed {
            self.signed = Some(Instant::now());
            return Ok(if force { latest } else { None });
        }
        let checkpoint = Checkpoint {
            origin: self.origin.clone(),
            size: head.size,
            root: head.root,
        };
        let note = checkpoint
            .sign(&self.signer)
            .map_err(|error| StoreError::Invalid(error.to_string()))?;
        let stored = StoredCheckpoint {
            size: head.size,
            at: switchyard_store::now_ms(),
            root: head.root,
            key: self.signer.verifier().to_string(),
            note,
        };
        self.store.audit_add_checkpoint(&stored).await?;
        self.signed = Some(Instant::now());
        Ok(Some(stored))
    }
}

/// Adds what is already queued to `batch`, up to a batch.
fn take_queued(calls: &mut mpsc::Receiver<CallAudit>, batch: &mut Vec<CallAudit>) {
    while batch.len() < BATCH {
        match calls.try_recv() {
            Ok(call) => batch.push(call),
            Err(_) => break,
        }
    }
}

/// Deletes records older than `keep`, a thousand at a time, every hour.
async fn retention(store: Store, keep: Duration, closing: CancellationToken) {
    loop {
        let before =
            switchyard_store::now_ms() - i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        loop {
            match store.audit_prune(before, PRUNE_BATCH).await {
                Ok(0) => break,
                Ok(_) if closing.is_cancelled() => return,
                Ok(_) => tokio::task::yield_now().await,
                Err(error) => {
                    warn!(%error, "Audit retention failed; trying again later");
                    break;
                }
            }
        }
        tokio::select! {
            () = closing.cancelled() => return,
            () = tokio::time::sleep(PRUNE_EVERY) => {}
        }
    }
}
