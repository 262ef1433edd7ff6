//! The `switchyard` binary: `serve` runs the gateway, `check-config` validates a config file,
//! `keys`, `teams`, `users` and `whoami` call a running gateway's admin API.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use switchyard_gateway::Shared;
use switchyard_gateway::audit::{self as audit_log, Audit};
use switchyard_gateway::background::Background;
use switchyard_gateway::cache::Cache;
use switchyard_gateway::config::{
    self, AuthMode, ConfigFile, ProcessEnv, defaults::DEFAULT_CONFIG,
};
use switchyard_gateway::governance::{Governance, open_store};
use switchyard_gateway::ledger::Ledger;
use switchyard_gateway::telemetry::{Metrics, Traces};
use switchyard_gateway::workers::Workers;
use switchyard_ledger::PriceTable;
use tracing::{info, warn};

mod audit;
mod cli;
mod eval;
mod logs;
mod reload;

/// Switchyard: a fast, self-hosted gateway in front of every LLM provider.
#[derive(Debug, Parser)]
#[command(name = "switchyard", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the gateway (on the embedded defaults when no config is given).
    Serve {
        /// The YAML config file.
        #[arg(long, short, env = "SWITCHYARD_CONFIG")]
        config: Option<PathBuf>,
        /// Overrides `server.listen`.
        #[arg(long, env = "SWITCHYARD_LISTEN")]
        listen: Option<String>,
        /// Log format.
        #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "SWITCHYARD_LOG_FORMAT")]
        log_format: LogFormat,
        /// Worker threads, each with its own runtime and listener (default: one per core).
        #[arg(long, env = "SWITCHYARD_WORKERS")]
        workers: Option<usize>,
    },
    /// Reports every problem in a config file, each with its path; exits 1 if there are any.
    CheckConfig {
        /// The YAML config file.
        file: PathBuf,
    },
    /// Prints the embedded default config.
    PrintDefaults,
    /// Manages virtual keys through a running gateway's admin API.
    Keys {
        #[command(subcommand)]
        command: cli::Keys,
        #[command(flatten)]
        remote: cli::Remote,
    },
    /// Manages teams through a running gateway's admin API.
    Teams {
        #[command(subcommand)]
        command: cli::Teams,
        #[command(flatten)]
        remote: cli::Remote,
    },
    /// Manages users through a running gateway's admin API.
    Users {
        #[command(subcommand)]
        command: cli::Users,
        #[command(flatten)]
        remote: cli::Remote,
    },
    /// Shows the key the admin commands use: its role, team, models and limits.
    Whoami {
        #[command(flatten)]
        remote: cli::Remote,
    },
    /// The audit log: export it, check an export offline, sign it now, show or make keys.
    Audit {
        #[command(subcommand)]
        command: audit::Audit,
        #[command(flatten)]
        remote: cli::Remote,
    },
    /// Measures the guards on a labelled set: scores per entity and scan time.
    Eval {
        #[command(subcommand)]
        command: eval::Eval,
    },
    /// Reports spend and tokens, day by day, through a running gateway's admin API.
    Spend {
        #[command(flatten)]
        report: cli::SpendArgs,
        #[command(flatten)]
        remote: cli::Remote,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            config,
            listen,
            log_format,
            workers,
        } => {
            let mut logs = logs::init(match log_format {
                LogFormat::Text => logs::Style::Text,
                LogFormat::Json => logs::Style::Json,
            });
            let result = run_serve(config, listen, workers, &mut logs);
            // Written out before the error below, so the two keep their order.
            logs.finish();
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("switchyard: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::CheckConfig { file } => {
            match config::load_file(&file, &ProcessEnv).and_then(|config| {
                let listen = config.server.listen.parse().map_err(|_| Vec::new())?;
                config.auth_mode(listen).map_err(|error| vec![error])?;
                Ok(config)
            }) {
                Ok(config) => {
                    eprintln!(
                        "{}: ok ({} model groups)",
                        file.display(),
                        config.models.len()
                    );
                    ExitCode::SUCCESS
                }
                Err(errors) => {
                    for error in &errors {
                        eprintln!("{error}");
                    }
                    eprintln!("{}: {} problem(s)", file.display(), errors.len());
                    ExitCode::FAILURE
                }
            }
        }
        Command::Keys { command, remote } => cli::run(&remote, cli::Admin::Keys(command)),
        Command::Teams { command, remote } => cli::run(&remote, cli::Admin::Teams(command)),
        Command::Users { command, remote } => cli::run(&remote, cli::Admin::Users(command)),
        Command::Whoami { remote } => cli::run(&remote, cli::Admin::Whoami),
        Command::Spend { report, remote } => cli::run(&remote, cli::Admin::Spend(report)),
        Command::Audit { command, remote } => audit::run(&remote, command),
        Command::Eval { command } => eval::run(command),
        Command::PrintDefaults => {
            use std::io::Write;
            let _ = std::io::stdout().write_all(DEFAULT_CONFIG.as_bytes());
            ExitCode::SUCCESS
        }
    }
}

fn load(path: Option<&PathBuf>) -> anyhow::Result<ConfigFile> {
    let result = match path {
        Some(path) => config::load_file(path, &ProcessEnv),
        None => config::validate(DEFAULT_CONFIG, &ProcessEnv),
    };
    result.map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("invalid config:\n  {}", lines.join("\n  "))
    })
}

/// How often dropped log lines (a log sink that does not keep up) are reported.
const LOG_DROPS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

fn run_serve(
    path: Option<PathBuf>,
    listen: Option<String>,
    workers: Option<usize>,
    logs: &mut logs::Logs,
) -> anyhow::Result<()> {
    // Before the file is read, so an edit made while the gateway starts is a change to load.
    let mut watch = path.as_deref().map(reload::FileWatch::new);
    let mut config = load(path.as_ref())?;
    if let Some(listen) = listen {
        config.server.listen = listen;
    }
    let listen = config.server.listen.clone();
    let addr: std::net::SocketAddr = listen
        .parse()
        .with_context(|| format!("invalid listen address `{listen}`"))?;
    let count = workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let models = config.models.len();
    let control = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the control runtime")?;
    // Signal handlers first: a SIGHUP or SIGTERM arriving once the workers answer must find
    // them in place rather than the default action (exit).
    let (shutdown, mut hangups) = {
        let _entered = control.enter();
        (shutdown_signal(), hangup_signal())
    };
    let mode = config
        .auth_mode(addr)
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    // Built once for every worker; its background work runs on the control runtime, which
    // outlives the workers and flushes it after they drained.
    let background = Background::on(control.handle().clone());
    let mut shared = Shared::new(background.clone());
    let (mut store, mut redis) = (None, None);
    match mode {
        AuthMode::Keys => {
            let governance = control
                .block_on(Governance::open(&config, background.clone()))
                .context("cannot open the store (store.url)")?;
            info!(store = ?governance.store().kind(), "Model calls need a key");
            store = Some(governance.store().clone());
            redis = governance.redis();
            shared = shared.with_governance(Arc::new(governance));
        }
        AuthMode::None if addr.ip().is_loopback() => info!(
            "Serving without keys: only this machine can reach the gateway (set a master key, \
             auth.master_key or SWITCHYARD_MASTER_KEY, to require keys)"
        ),
        AuthMode::None => warn!(
            address = %addr,
            "Serving without keys (auth.mode: none): anyone who reaches this address can call \
             every model"
        ),
    }
    if store.is_none() && (config.ledger.enabled || config.audit.enabled) {
        store = Some(
            control
                .block_on(open_store(&config, &background))
                .context("cannot open the store for the ledger and the audit log (store.url; ledger.enabled: false and audit.enabled: false turn them off)")?,
        );
    }
    if let (true, Some(store)) = (config.ledger.enabled, &store) {
        info!(
            store = ?store.kind(),
            retention_days = config.ledger.retention_days,
            prices = %PriceTable::shipped().date,
            "Recording spend"
        );
        shared = shared.with_ledger(Arc::new(Ledger::start(
            store.clone(),
            &config,
            &background,
            redis.clone(),
        )));
    }
    if let (true, Some(store)) = (config.audit.enabled, &store) {
        let (signer, source) = audit_log::signing_key(&config)
            .map_err(|error| anyhow::anyhow!("cannot load the audit signing key: {error}"))?;
        let public_key = signer.verifier().to_string();
        match &source {
            audit_log::KeySource::Made(path) => warn!(
                file = %path.display(),
                %public_key,
                "Made a new audit signing key; keep the file, and the public key to check the log with"
            ),
            audit_log::KeySource::Ephemeral => warn!(
                %public_key,
                "Audit checkpoints are signed with a key made for this process (in-memory store)"
            ),
            audit_log::KeySource::File(_) | audit_log::KeySource::Config => {}
        }
        if store.kind() == switchyard_store::Kind::Postgres
            && matches!(source, audit_log::KeySource::Made(_))
        {
            warn!(
                "Instances sharing this PostgreSQL store should sign with one key: set \
                 audit.signing_key (or SWITCHYARD_AUDIT_SIGNING_KEY) on each"
            );
        }
        info!(
            origin = %config.audit.origin,
            %public_key,
            checkpoint_interval_secs = config.audit.checkpoint_interval_secs,
            retention_days = config.audit.retention_days,
            "Keeping the audit log"
        );
        shared = shared.with_audit(Arc::new(Audit::start(
            store.clone(),
            &config,
            &background,
            signer,
        )));
    }
    for hook in &config.hooks {
        let webhook = switchyard_gateway::webhook::Webhook::new(hook)
            .map_err(|error| anyhow::anyhow!(error))?;
        info!(hook = %hook.name, url = %hook.url, points = ?hook.points, "Calling a hook");
        shared = shared.with_hook(Arc::new(webhook));
    }
    if config.metrics.enabled {
        shared = shared.with_metrics(Arc::new(Metrics::new()));
    }
    if let Some(endpoint) = &config.otel.endpoint {
        let traces = Traces::start(&config.otel, &background).map_err(|error| {
            anyhow::anyhow!("cannot start the OTLP exporter (otel.endpoint): {error}")
        })?;
        info!(endpoint = %endpoint, "Exporting traces over OTLP/HTTP");
        shared = shared.with_traces(Arc::new(traces));
    }
    if Cache::wanted(&config) {
        let cache = Cache::start(&config, &shared)
            .map_err(|error| anyhow::anyhow!("cannot start the cache: {error}"))?;
        info!(
            backend = cache.backend_name(),
            ttl_secs = config.cache.ttl_secs,
            "Caching answers"
        );
        shared = shared.with_cache(Arc::new(cache));
    }
    let shared = Arc::new(shared);
    let started = reload::Started {
        mode,
        store_url: config.store.url.clone(),
        telemetry: (
            config.ledger.clone(),
            config.metrics.clone(),
            config.otel.clone(),
            config.audit.clone(),
        ),
        hooks: config.hooks.clone(),
    };
    let grace = std::time::Duration::try_from_secs_f64(config.server.shutdown_grace_secs)
        .unwrap_or(std::time::Duration::from_secs(30));
    if let Some(url) = config.redis.url.as_ref().map(|url| url.expose().to_owned()) {
        let prefix = config.redis.prefix.clone();
        // A Redis outage must not stop the gateway: it then keeps cooldowns to itself.
        match control.block_on(shared.connect_redis(&url, &prefix)) {
            Ok(()) => info!("Sharing cooldowns through Redis"),
            Err(error) => {
                warn!(%error, "Cannot reach Redis: cooldowns stay local to this instance")
            }
        }
    }
    let mut workers = Workers::start(config, addr, count, Arc::clone(&shared))
        .with_context(|| format!("cannot serve on {addr}"))?;
    info!(
        address = %workers.addr(),
        workers = count,
        config = path.as_ref().map_or("(embedded defaults)".to_owned(), |p| p.display().to_string()),
        models,
        "Switchyard listening"
    );
    control.block_on(async {
        tokio::pin!(shutdown);
        let mut drops = tokio::time::interval(LOG_DROPS_EVERY);
        loop {
            let changed = async {
                match watch.as_mut() {
                    Some(watch) => watch.changed().await,
                    None => std::future::pending::<()>().await,
                }
            };
            let hangup = async {
                match hangups.as_mut() {
                    Some(hangups) => {
                        hangups.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                () = changed => info!("Config file changed"),
                () = hangup => info!("SIGHUP received"),
                _ = drops.tick() => {
                    logs.report_dropped();
                    continue;
                }
            }
            match path.as_deref() {
                Some(path) => {
                    // Whatever the cause, the file as read now is the one in force.
                    if let Some(watch) = watch.as_mut() {
                        watch.mark_seen();
                    }
                    reload::reload(path, &listen, &mut workers, &started, &shared).await;
                }
                None => warn!("Running on the embedded defaults: nothing to reload"),
            }
        }
    });
    // Workers first: the requests they drain may still queue background work.
    let stopped = workers.stop_and_join();
    control.block_on(shared.background.shutdown(grace));
    stopped.context("a worker failed")?;
    info!("Stopped");
    Ok(())
}

/// SIGHUP, where there is such a thing.
#[cfg(unix)]
fn hangup_signal() -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called (inside a
/// runtime), not when the future is first polled, so no signal slips through before.
#[cfg(unix)]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt()).ok();
    let terminate = signal(SignalKind::terminate()).ok();
    async move {
        let wait = |signal: Option<tokio::signal::unix::Signal>| async move {
            match signal {
                Some(mut signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(interrupt) => {},
            () = wait(terminate) => {},
        }
    }
}

#[cfg(not(unix))]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
