//! `switchyard audit`: export the audit log through a running gateway, check an export offline
//! with nothing but the log's public keys, sign the log now, show its keys, make a key.

use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use switchyard_audit::{Signer, Verifier, export};
use switchyard_providers::http::{Client, Target};

use crate::cli::{self, Remote};

/// How long an export may go without a byte before it is given up.
const EXPORT_IDLE: Duration = Duration::from_secs(120);

/// The audit log's commands.
#[derive(Debug, Subcommand)]
pub enum Audit {
    /// Writes the log (all of it, or what the filters keep) with its checkpoints and proofs,
    /// as JSON lines, after the gateway signs what it holds; `audit verify` checks it.
    Export {
        /// Records from this time: Unix milliseconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC).
        #[arg(long)]
        since: Option<String>,
        /// Records before this time (same forms).
        #[arg(long)]
        until: Option<String>,
        /// Only this team's records (a team id).
        #[arg(long)]
        team: Option<String>,
        /// Only this key's records (a key id).
        #[arg(long)]
        key_id: Option<String>,
        /// Only `call` or `admin` records.
        #[arg(long)]
        event: Option<String>,
        /// Where to write it (default: stdout).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Checks an export offline: every checkpoint's signature, their consistency, every
    /// record's inclusion and place, and (unfiltered) that none is missing. Exits 1 naming
    /// each problem.
    Verify {
        /// The export (`-` for stdin).
        file: PathBuf,
        /// A public key of the log (`name+id+key`, as `audit keys` prints it); repeat for keys
        /// that signed before a rotation.
        #[arg(long = "public-key", required_unless_present = "public_key_file")]
        public_keys: Vec<String>,
        /// A file of public keys, one per line.
        #[arg(long)]
        public_key_file: Option<PathBuf>,
    },
    /// Writes what the gateway holds and signs the log now; prints the checkpoint.
    Checkpoint,
    /// Prints the log's public keys (the current one first).
    Keys,
    /// Makes a new signing key: the private key (for `audit.signing_key`) on stdout, the
    /// public key on stderr.
    NewKey {
        /// The key's name (the log's origin, `audit.origin`).
        #[arg(long)]
        name: String,
    },
}

/// Runs an audit command.
pub fn run(remote: &Remote, command: Audit) -> ExitCode {
    match command {
        Audit::Checkpoint => cli::run(
            remote,
            cli::Admin::Call(http::Method::POST, "/admin/audit/checkpoint".into()),
        ),
        Audit::Keys => cli::run(
            remote,
            cli::Admin::Call(http::Method::GET, "/admin/audit/keys".into()),
        ),
        Audit::NewKey { name } => match Signer::generate(&name) {
            Ok(signer) => {
                let _ = writeln!(std::io::stdout(), "{}", signer.to_private_string());
                eprintln!("public key: {}", signer.verifier());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("{error}");
                ExitCode::FAILURE
            }
        },
        Audit::Verify {
            file,
            public_keys,
            public_key_file,
        } => verify(&file, public_keys, public_key_file.as_ref()),
        Audit::Export {
            since,
            until,
            team,
            key_id,
            event,
            out,
        } => {
            let query = [
                ("since", since),
                ("until", until),
                ("team", team),
                ("key", key_id),
                ("event", event),
            ];
            match export_to(remote, &query, out.as_ref()) {
                Ok(bytes) => {
                    eprintln!("exported {bytes} bytes");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("{error}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn verify(file: &PathBuf, mut keys: Vec<String>, key_file: Option<&PathBuf>) -> ExitCode {
    if let Some(path) = key_file {
        match std::fs::read_to_string(path) {
            Ok(text) => keys.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|line| !line.is_empty() && !line.starts_with('#'))
                    .map(str::to_owned),
            ),
            Err(error) => {
                eprintln!("{}: {error}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    let mut verifiers = Vec::new();
    for key in &keys {
        match Verifier::parse(key) {
            Ok(verifier) => verifiers.push(verifier),
            Err(error) => {
                eprintln!("public key {key:?}: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    let report = if file.as_os_str() == "-" {
        export::verify(BufReader::new(std::io::stdin().lock()), &verifiers)
    } else {
        match std::fs::File::open(file) {
            Ok(opened) => export::verify(BufReader::new(opened), &verifiers),
            Err(error) => {
                eprintln!("{}: {error}", file.display());
                return ExitCode::FAILURE;
            }
        }
    };
    if report.ok()
        && let Some(header) = &report.header
    {
        let span = report
            .span
            .map_or("no records".to_owned(), |(first, last)| {
                format!("{} records {first} to {last}", report.records)
            });
        let scope = if header.complete {
            "complete: none missing"
        } else {
            "filtered: completeness not checked"
        };
        let _ = writeln!(
            std::io::stdout(),
            "OK: {span} of {} proven under checkpoint {}; {} checkpoint(s) signed and consistent; {scope}",
            header.origin,
            header.anchor,
            report.checkpoints,
        );
        return ExitCode::SUCCESS;
    }
    for problem in &report.problems {
        eprintln!("{problem}");
    }
    eprintln!(
        "FAILED: {} problem(s) in {} record(s)",
        report.problems.len(),
        report.records
    );
    ExitCode::FAILURE
}

/// Streams the export to `out` (stdout when `None`); the bytes written.
fn export_to(
    remote: &Remote,
    query: &[(&str, Option<String>)],
    out: Option<&PathBuf>,
) -> Result<u64, String> {
    let key = remote.admin_key().ok_or("no admin key")?;
    let url = format!(
        "{}{}",
        remote.url(),
        cli::with_query("/admin/audit/export", query)
    );
    let target = Target::parse(&url).map_err(|error| format!("invalid --url: {error}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start: {error}"))?;
    let mut writer: Box<dyn Write> = match out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|error| format!("{}: {error}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let written = runtime.block_on(async {
        let client = Client::new(Duration::from_secs(10))
            .map_err(|error| format!("cannot make a client: {error}"))?;
        let headers = cli::bearer(&key)?;
        let mut response = tokio::time::timeout(
            EXPORT_IDLE,
            client.send(http::Method::GET, &target, headers, bytes::Bytes::new()),
        )
        .await
        .map_err(|_| format!("{url}: no answer"))?
        .map_err(|error| format!("{url}: {error}"))?;
        let status = response.status().as_u16();
        if status != 200 {
            let body = response.bytes(1024 * 1024).await.unwrap_or_default();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let message = body["error"]["message"].as_str().unwrap_or("(no message)");
            return Err(format!("{status}: {message}"));
        }
        let mut written = 0u64;
        loop {
            let chunk = tokio::time::timeout(EXPORT_IDLE, response.chunk())
                .await
                .map_err(|_| format!("{url}: the export stalled"))?
                .map_err(|error| format!("{url}: the export broke off: {error}"))?;
            let Some(chunk) = chunk else {
                return Ok(written);
            };
            writer
                .write_all(&chunk)
                .map_err(|error| format!("cannot write the export: {error}"))?;
            written += chunk.len() as u64;
        }
    })?;
    writer
        .flush()
        .map_err(|error| format!("cannot write the export: {error}"))?;
    Ok(written)
}
