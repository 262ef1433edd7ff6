//! The `switchyard` binary: `serve` runs the gateway, `check-config` validates a config file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use switchyard_gateway::config::{self, ConfigFile, ProcessEnv, defaults::DEFAULT_CONFIG};
use switchyard_gateway::workers;
use tracing::info;
use tracing_subscriber::EnvFilter;

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
            init_logs(log_format);
            match run_serve(config, listen, workers) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("switchyard: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::CheckConfig { file } => match config::load_file(&file, &ProcessEnv) {
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
        },
        Command::PrintDefaults => {
            use std::io::Write;
            let _ = std::io::stdout().write_all(DEFAULT_CONFIG.as_bytes());
            ExitCode::SUCCESS
        }
    }
}

fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
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

fn run_serve(
    path: Option<PathBuf>,
    listen: Option<String>,
    workers: Option<usize>,
) -> anyhow::Result<()> {
    let mut config = load(path.as_ref())?;
    if let Some(listen) = listen {
        config.server.listen = listen;
    }
    let addr: std::net::SocketAddr = config
        .server
        .listen
        .parse()
        .with_context(|| format!("invalid listen address `{}`", config.server.listen))?;
    let workers = workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    info!(
        address = %addr,
        config = path.as_ref().map_or("(embedded defaults)".to_owned(), |p| p.display().to_string()),
        models = config.models.len(),
        "Switchyard starting"
    );
    workers::run(&config, addr, workers, shutdown_signal())
        .with_context(|| format!("cannot serve on {addr}"))?;
    info!("Stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
