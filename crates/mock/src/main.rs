//! The `switchyard-mock` binary: serves the mock upstream on `--listen`, prints
//! `switchyard-mock listening on http://ADDR` once bound, and exits on SIGINT or SIGTERM.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use switchyard_mock::MockServer;
use tracing_subscriber::EnvFilter;

/// A test upstream speaking the OpenAI, Anthropic and Gemini wire formats.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "SWITCHYARD_MOCK_LISTEN", default_value = "127.0.0.1:4010")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();

    let server = match MockServer::start(cli.listen).await {
        Ok(server) => server,
        Err(error) => {
            tracing::error!(%error, listen = %cli.listen, "Could not bind the listen address");
            return ExitCode::FAILURE;
        }
    };
    // Scripts read this line to learn the port.
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = writeln!(stdout, "switchyard-mock listening on {}", server.base_url())
        .and_then(|()| stdout.flush())
    {
        tracing::warn!(%error, "Could not print the listen address");
    }
    drop(stdout);

    shutdown_signal().await;
    tracing::info!("Shutting down");
    server.shutdown().await;
    ExitCode::SUCCESS
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "Could not listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    () = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "Could not listen for SIGTERM");
                interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    interrupt.await;
}
