//! The admin commands (`keys`, `teams`, `users`, `whoami`, `spend`, and `audit`'s calls): each one call to a running
//! gateway's admin API, its JSON answer printed to stdout. The gateway is `--url`
//! (`SWITCHYARD_URL`), the caller `--key` (`SWITCHYARD_ADMIN_KEY`, else
//! `SWITCHYARD_MASTER_KEY`).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};
use switchyard_providers::http::{Client, Target};

/// Where the admin API is, and the key to call it with.
#[derive(Debug, Args)]
pub struct Remote {
    /// The gateway's base URL.
    #[arg(
        long,
        env = "SWITCHYARD_URL",
        default_value = "http://127.0.0.1:4000",
        global = true
    )]
    url: String,
    /// The key to call the admin API with (default: `SWITCHYARD_MASTER_KEY`).
    #[arg(
        long,
        env = "SWITCHYARD_ADMIN_KEY",
        hide_env_values = true,
        global = true
    )]
    key: Option<String>,
}

/// Limits given on the command line.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Requests per minute.
    #[arg(long)]
    rpm: Option<u64>,
    /// Tokens per minute.
    #[arg(long)]
    tpm: Option<u64>,
    /// Requests in flight at once.
    #[arg(long)]
    max_parallel: Option<u64>,
    /// The most that may be spent per budget period, in US dollars (`25`, `0.50`).
    #[arg(long)]
    budget_usd: Option<String>,
    /// When the budget starts again: `daily`, `weekly`, `monthly` (default) or `none`.
    #[arg(long, requires = "budget_usd")]
    budget_period: Option<String>,
    /// Spend past which a warning is given, once per period, in US dollars.
    #[arg(long, requires = "budget_usd")]
    soft_budget_usd: Option<String>,
}

impl Remote {
    /// The gateway's base URL, without a trailing slash.
    pub fn url(&self) -> &str {
        self.url.trim_end_matches('/')
    }

    /// The key to call with (`--key`, else `SWITCHYARD_MASTER_KEY`); says so when there is none.
    pub fn admin_key(&self) -> Option<String> {
        let key = self
            .key
            .clone()
            .or_else(|| std::env::var("SWITCHYARD_MASTER_KEY").ok())
            .filter(|key| !key.is_empty());
        if key.is_none() {
            eprintln!(
                "No admin key: pass --key, or set SWITCHYARD_ADMIN_KEY or SWITCHYARD_MASTER_KEY"
            );
        }
        key
    }
}

impl LimitArgs {
    fn json(&self) -> Value {
        let mut limits = Map::new();
        for (name, value) in [
            ("rpm", self.rpm),
            ("tpm", self.tpm),
            ("max_parallel", self.max_parallel),
        ] {
            if let Some(value) = value {
                limits.insert(name.to_owned(), json!(value));
            }
        }
        if let Some(max) = &self.budget_usd {
            let mut budget = Map::new();
            budget.insert("max_usd".to_owned(), json!(max));
            if let Some(period) = &self.budget_period {
                budget.insert("period".to_owned(), json!(period));
            }
            if let Some(soft) = &self.soft_budget_usd {
                budget.insert("soft_usd".to_owned(), json!(soft));
            }
            limits.insert("budget".to_owned(), Value::Object(budget));
        }
        Value::Object(limits)
    }
}

/// `switchyard keys …`.
#[derive(Debug, Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once per process from the command line; its size does not matter"
)]
pub enum Keys {
    /// Creates a key and prints it, with its secret (shown this once).
    Create {
        /// A name for people.
        #[arg(long)]
        alias: Option<String>,
        /// The key's team (a team id).
        #[arg(long)]
        team: Option<String>,
        /// The key's user (a user id).
        #[arg(long)]
        user: Option<String>,
        /// `member` (default), `viewer`, `team_admin` or `admin`.
        #[arg(long)]
        role: Option<String>,
        /// Model groups the key may use (names, aliases, `*` wildcards), comma-separated.
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        /// Tags recorded with every call, comma-separated.
        #[arg(long, value_delimiter = ',')]
        tags: Vec<String>,
        /// Seconds until the key expires.
        #[arg(long)]
        expires_in_secs: Option<f64>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Lists keys (never their secrets).
    List {
        /// Only this team's.
        #[arg(long)]
        team: Option<String>,
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
        /// At most this many.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Shows one key.
    Show {
        /// The key's id (`key_…`).
        id: String,
    },
    /// Blocks a key: refused by every instance at once.
    Block {
        /// The key's id.
        id: String,
    },
    /// Unblocks a key.
    Unblock {
        /// The key's id.
        id: String,
    },
    /// Gives a key a new secret (printed); the old one works for the grace period.
    Rotate {
        /// The key's id.
        id: String,
        /// Seconds the old secret keeps working.
        #[arg(long, default_value_t = 0.0)]
        grace_secs: f64,
    },
    /// Deletes a key.
    Delete {
        /// The key's id.
        id: String,
    },
}

/// `switchyard teams …`.
#[derive(Debug, Subcommand)]
pub enum Teams {
    /// Creates a team.
    Create {
        /// Its unique name.
        #[arg(long)]
        name: String,
        /// Model groups its keys may use, comma-separated (default: all).
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Lists teams.
    List,
    /// Shows one team.
    Show {
        /// The team's id (`team_…`).
        id: String,
    },
    /// Blocks every key of a team.
    Block {
        /// The team's id.
        id: String,
    },
    /// Unblocks a team.
    Unblock {
        /// The team's id.
        id: String,
    },
    /// Deletes a team (it must have no users or keys left).
    Delete {
        /// The team's id.
        id: String,
    },
}

/// `switchyard users …`.
#[derive(Debug, Subcommand)]
pub enum Users {
    /// Creates a user.
    Create {
        /// Unique when set.
        #[arg(long)]
        email: Option<String>,
        /// The user's team (a team id).
        #[arg(long)]
        team: Option<String>,
        /// The highest role the user's keys may have.
        #[arg(long)]
        role: Option<String>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Lists users.
    List {
        /// Only this team's.
        #[arg(long)]
        team: Option<String>,
    },
    /// Shows one user.
    Show {
        /// The user's id (`user_…`).
        id: String,
    },
    /// Deletes a user (who must have no keys left).
    Delete {
        /// The user's id.
        id: String,
    },
}

/// One admin API call.
struct Call {
    method: http::Method,
    path: String,
    body: Option<Value>,
}

fn call(method: http::Method, path: impl Into<String>, body: Option<Value>) -> Call {
    Call {
        method,
        path: path.into(),
        body,
    }
}

/// A body of the fields given, leaving out the ones not given.
fn fields(pairs: &[(&str, Value)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .filter(|(_, value)| !value.is_null() && *value != json!([]) && *value != json!({}))
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect(),
    )
}

/// A path with its query of the parameters given.
pub(crate) fn with_query(path: &str, pairs: &[(&str, Option<String>)]) -> String {
    let query: Vec<String> = pairs
        .iter()
        .filter_map(|(name, value)| {
            value.as_ref().map(|value| {
                format!(
                    "{name}={}",
                    percent_encoding::utf8_percent_encode(
                        value,
                        percent_encoding::NON_ALPHANUMERIC
                    )
                )
            })
        })
        .collect();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

fn id_path(prefix: &str, id: &str) -> String {
    format!(
        "{prefix}/{}",
        percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
    )
}

impl Keys {
    fn call(self) -> Call {
        use http::Method;
        match self {
            Keys::Create {
                alias,
                team,
                user,
                role,
                models,
                tags,
                expires_in_secs,
                limits,
            } => call(
                Method::POST,
                "/admin/keys",
                Some(fields(&[
                    ("alias", json!(alias)),
                    ("team_id", json!(team)),
                    ("user_id", json!(user)),
                    ("role", json!(role)),
                    ("models", json!(models)),
                    ("tags", json!(tags)),
                    ("expires_in_secs", json!(expires_in_secs)),
                    ("limits", limits.json()),
                ])),
            ),
            Keys::List { team, user, limit } => call(
                Method::GET,
                with_query(
                    "/admin/keys",
                    &[
                        ("team_id", team),
                        ("user_id", user),
                        ("limit", limit.map(|limit| limit.to_string())),
                    ],
                ),
                None,
            ),
            Keys::Show { id } => call(Method::GET, id_path("/admin/keys", &id), None),
            Keys::Block { id } => call(
                Method::POST,
                format!("{}/block", id_path("/admin/keys", &id)),
                None,
            ),
            Keys::Unblock { id } => call(
                Method::POST,
                format!("{}/unblock", id_path("/admin/keys", &id)),
                None,
            ),
            Keys::Rotate { id, grace_secs } => call(
                Method::POST,
                format!("{}/rotate", id_path("/admin/keys", &id)),
                Some(json!({"grace_secs": grace_secs})),
            ),
            Keys::Delete { id } => call(Method::DELETE, id_path("/admin/keys", &id), None),
        }
    }
}

impl Teams {
    fn call(self) -> Call {
        use http::Method;
        match self {
            Teams::Create {
                name,
                models,
                limits,
            } => call(
                Method::POST,
                "/admin/teams",
                Some(fields(&[
                    ("name", json!(name)),
                    ("models", json!(models)),
                    ("limits", limits.json()),
                ])),
            ),
            Teams::List => call(Method::GET, "/admin/teams", None),
            Teams::Show { id } => call(Method::GET, id_path("/admin/teams", &id), None),
            Teams::Block { id } => call(
                Method::PATCH,
                id_path("/admin/teams", &id),
                Some(json!({"blocked": true})),
            ),
            Teams::Unblock { id } => call(
                Method::PATCH,
                id_path("/admin/teams", &id),
                Some(json!({"blocked": false})),
            ),
            Teams::Delete { id } => call(Method::DELETE, id_path("/admin/teams", &id), None),
        }
    }
}

impl Users {
    fn call(self) -> Call {
        use http::Method;
        match self {
            Users::Create {
                email,
                team,
                role,
                limits,
            } => call(
                Method::POST,
                "/admin/users",
                Some(fields(&[
                    ("email", json!(email)),
                    ("team_id", json!(team)),
                    ("role", json!(role)),
                    ("limits", limits.json()),
                ])),
            ),
            Users::List { team } => call(
                Method::GET,
                with_query("/admin/users", &[("team_id", team)]),
                None,
            ),
            Users::Show { id } => call(Method::GET, id_path("/admin/users", &id), None),
            Users::Delete { id } => call(Method::DELETE, id_path("/admin/users", &id), None),
        }
    }
}

/// What an admin command asks.
pub enum Admin {
    /// `keys …`.
    Keys(Keys),
    /// `teams …`.
    Teams(Teams),
    /// `users …`.
    Users(Users),
    /// `whoami`.
    Whoami,
    /// `spend`.
    Spend(SpendArgs),
    /// A call without a body (`audit checkpoint`, `audit keys`).
    Call(http::Method, String),
}

/// `switchyard spend`: what to report.
#[derive(Debug, Args)]
pub struct SpendArgs {
    /// `key`, `team`, `user`, `model`, `tag` or `all` (default).
    #[arg(long)]
    by: Option<String>,
    /// Only this key, team, user, model or tag.
    #[arg(long)]
    value: Option<String>,
    /// The first day, `YYYY-MM-DD` (default: 29 days before `--to`).
    #[arg(long)]
    from: Option<String>,
    /// The last day, `YYYY-MM-DD` (default: today, UTC).
    #[arg(long)]
    to: Option<String>,
}

/// Runs an admin command against the gateway `remote` names; prints the answer.
pub fn run(remote: &Remote, command: Admin) -> ExitCode {
    let call = match command {
        Admin::Keys(keys) => keys.call(),
        Admin::Teams(teams) => teams.call(),
        Admin::Users(users) => users.call(),
        Admin::Whoami => call(http::Method::GET, "/admin/whoami", None),
        Admin::Call(method, path) => call(method, path, None),
        Admin::Spend(report) => call(
            http::Method::GET,
            with_query(
                "/admin/spend",
                &[
                    ("by", report.by),
                    ("value", report.value),
                    ("from", report.from),
                    ("to", report.to),
                ],
            ),
            None,
        ),
    };
    let Some(key) = remote.admin_key() else {
        return ExitCode::FAILURE;
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(send(remote, &key, call)) {
        Ok((status, body)) => {
            let text = serde_json::to_string_pretty(&body).unwrap_or_default();
            if (200..300).contains(&status) {
                let _ = writeln!(std::io::stdout(), "{text}");
                ExitCode::SUCCESS
            } else {
                let message = body["error"]["message"].as_str().unwrap_or(&text);
                eprintln!("{status}: {message}");
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// Headers carrying `key` as a bearer token.
pub(crate) fn bearer(key: &str) -> Result<http::HeaderMap, String> {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        http::HeaderValue::try_from(format!("Bearer {key}"))
            .map_err(|_| "the key is not a valid header value")?,
    );
    Ok(headers)
}

async fn send(remote: &Remote, key: &str, call: Call) -> Result<(u16, Value), String> {
    let url = format!("{}{}", remote.url.trim_end_matches('/'), call.path);
    let target = Target::parse(&url).map_err(|error| format!("invalid --url: {error}"))?;
    let client = Client::new(Duration::from_secs(10))
        .map_err(|error| format!("cannot make a client: {error}"))?;
    let mut headers = bearer(key)?;
    let body = match &call.body {
        Some(body) => {
            headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            bytes::Bytes::from(body.to_string())
        }
        None => bytes::Bytes::new(),
    };
    let response = tokio::time::timeout(
        Duration::from_secs(30),
        client.send(call.method, &target, headers, body),
    )
    .await
    .map_err(|_| format!("{url}: no answer in 30 s"))?
    .map_err(|error| format!("{url}: {error}"))?;
    let status = response.status().as_u16();
    let bytes = response
        .bytes(16 * 1024 * 1024)
        .await
        .map_err(|error| format!("{url}: {error}"))?;
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Ok((status, body))
}
