//! Hot reload: on SIGHUP or when the config file changes, the file is validated and, if sound,
//! handed to the workers; an invalid file is rejected with every error logged and the running
//! config kept.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use switchyard_gateway::config::{self, ProcessEnv};
use switchyard_gateway::workers::Workers;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

/// Events closer together than this are one change (editors write files in several steps).
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Watches `path` (through its directory, so that a file replaced by rename, as Kubernetes
/// does with ConfigMaps, is still seen). The returned watcher must be kept alive.
pub fn watch_file(
    path: &Path,
) -> notify::Result<(notify::RecommendedWatcher, mpsc::UnboundedReceiver<()>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let name = path.file_name().map(ToOwned::to_owned);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && (event.kind.is_modify() || event.kind.is_create())
            && event
                .paths
                .iter()
                .any(|changed| changed.file_name().map(ToOwned::to_owned) == name)
        {
            let _ = tx.send(());
        }
    })?;
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    watcher.watch(&directory, RecursiveMode::NonRecursive)?;
    Ok((watcher, rx))
}

/// Waits out a burst of change events.
pub async fn debounce(changes: &mut mpsc::UnboundedReceiver<()>) {
    while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, changes.recv()).await {}
}

/// Validates `path` and, if it is sound, reloads the workers with it.
pub async fn reload(path: &Path, listen: &str, workers: &mut Workers) {
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
