//! Hot reload: on SIGHUP or when the config file changes, the file is validated and, if sound,
//! handed to the workers; an invalid file is rejected with every error logged and the running
//! config kept.

use std::path::{Path, PathBuf};
use std::time::Duration;

use switchyard_gateway::Shared;
use switchyard_gateway::config::{self, AuthMode, ProcessEnv, Secret};
use switchyard_gateway::workers::Workers;
use tracing::{error, info, warn};

#[cfg(test)]
mod tests;

/// How often the config file is looked at.
const POLL: Duration = Duration::from_millis(500);

/// A change must hold this long before it is read (editors write files in several steps).
const SETTLE: Duration = Duration::from_millis(200);

/// Watches the config file by reading it twice a second. The path is followed through
/// symlinks, so an edit in place, a file replaced by rename and a retargeted symlink
/// (Kubernetes ConfigMaps) are all seen, and a write that leaves the bytes as they were
/// (`touch`, the same file copied over) is not a change; nothing else in the directory (logs, databases
/// written on every request) costs anything, as it would with a directory watch.
#[derive(Debug)]
pub struct FileWatch {
    path: PathBuf,
    seen: Option<Fingerprint>,
    poll: Duration,
    settle: Duration,
}

/// One version of the file: a hash of its bytes. Bytes, not times: file times can be coarse
/// (whole seconds on some filesystems) and change without the contents changing; a config file
/// is small enough to read twice a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint(u64);

impl Fingerprint {
    /// The file as it is now; `None` while it is missing or unreadable.
    fn of(path: &Path) -> Option<Self> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        std::fs::read(path).ok()?.hash(&mut hasher);
        Some(Self(hasher.finish()))
    }
}

impl FileWatch {
    /// Starts from the file as it is now.
    pub fn new(path: &Path) -> Self {
        Self::with_timing(path, POLL, SETTLE)
    }

    fn with_timing(path: &Path, poll: Duration, settle: Duration) -> Self {
        Self {
            path: path.to_path_buf(),
            seen: Fingerprint::of(path),
            poll,
            settle,
        }
    }

    /// Resolves once the file differs from the version last seen and has held still for the
    /// settle time. Dropping the future loses nothing: the change is still there to be seen.
    pub async fn changed(&mut self) {
        loop {
            tokio::time::sleep(self.poll).await;
            let mut now = Fingerprint::of(&self.path);
            if now == self.seen {
                continue;
            }
            loop {
                tokio::time::sleep(self.settle).await;
                let later = Fingerprint::of(&self.path);
                if later == now {
                    break;
                }
                now = later;
            }
            // A file that went away is not a config to load; wait for it to come back.
            if now.is_some() {
                self.seen = now;
                return;
            }
        }
    }

    /// Takes the file as it is now as seen (after a reload for another reason, such as
    /// SIGHUP, so the same change does not reload twice).
    pub fn mark_seen(&mut self) {
        self.seen = Fingerprint::of(&self.path);
    }
}

/// Validates `path` and, if it is sound, reloads the workers with it.
/// What a reload cannot change: it needs a restart.
#[derive(Debug)]
pub struct Started {
    /// Whether model calls need keys.
    pub mode: AuthMode,
    /// The store.
    pub store_url: Secret,
    /// The ledger, metrics, traces and audit sections as they were at start.
    pub telemetry: (
        switchyard_gateway::config::file::LedgerConfig,
        switchyard_gateway::config::file::MetricsConfig,
        switchyard_gateway::config::file::OtelConfig,
        switchyard_gateway::config::file::AuditConfig,
    ),
    /// The hooks as they were at start.
    pub hooks: Vec<switchyard_gateway::config::file::WebhookConfig>,
}

/// Reads the file at `path` and, if it is sound, hands it to `workers` (and a new master key
/// to the key check in `shared`).
pub async fn reload(
    path: &Path,
    listen: &str,
    workers: &mut Workers,
    started: &Started,
    shared: &Shared,
) {
    let mut config = match config::load_file(path, &ProcessEnv) {
        Ok(config) => config,
        Err(errors) => {
            for problem in &errors {
                error!(%problem, "Config reload rejected");
            }
            warn!(
                problems = errors.len(),
                "Config reload rejected; the running config stays"
            );
            return;
        }
    };
    if config.server.listen != listen {
        warn!(
            from = listen,
            to = %config.server.listen,
            "server.listen changes need a restart; still listening on the old address"
        );
        config.server.listen = listen.to_owned();
    }
    match listen.parse().map(|addr| config.auth_mode(addr)) {
        Ok(Ok(mode)) if mode == started.mode => {
            if let Some(governance) = &shared.governance {
                governance.set_master(config.auth.master_key.as_ref());
            }
        }
        _ => warn!("auth.mode changes need a restart; the running mode and master key stay"),
    }
    if (&config.ledger, &config.metrics, &config.otel, &config.audit)
        != (
            &started.telemetry.0,
            &started.telemetry.1,
            &started.telemetry.2,
            &started.telemetry.3,
        )
    {
        warn!("ledger, metrics, otel and audit changes need a restart; they stay as they were");
    }
    if config.hooks != started.hooks {
        warn!("hooks changes need a restart; the hooks stay as they were");
    }
    if config.store.url != started.store_url {
        warn!("store.url changes need a restart; still using the old store");
    }
    let models = config.models.len();
    match workers.reload(config).await {
        Ok(()) => info!(models, "Config reloaded"),
        Err(errors) => {
            for problem in errors {
                error!(%problem, "Config reload failed in a worker");
            }
        }
    }
}
