//! Loading a config file: YAML to a JSON tree, `${ENV_VAR}` interpolation, then typed parsing
//! section by section so that one bad entry does not hide the errors of the others, then the
//! semantic checks. Every error carries its path in the file.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::file::{
    AuditConfig, AuthConfig, AuthMode, CacheConfig, ConfigFile, DeploymentConfig, GuardsConfig,
    LedgerConfig, LimitsConfig, MetricsConfig, ModelConfig, OtelConfig, RedisConfig, RoutingConfig,
    Secret, ServerConfig, StoreConfig, WebhookConfig,
};

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where in the file, like `models[2].deployments[0].api_base` (empty for the whole file).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Where `${VAR}` values come from; tests pass a map.
pub trait Env {
    /// The variable's value, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Reads and validates the file at `path`.
pub fn load_file(path: &Path, env: &dyn Env) -> Result<ConfigFile, Vec<ConfigError>> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        vec![ConfigError {
            path: String::new(),
            message: format!("cannot read {}: {error}", path.display()),
        }]
    })?;
    validate(&text, env)
}

/// Parses and checks config text, reporting every problem found.
pub fn validate(text: &str, env: &dyn Env) -> Result<ConfigFile, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut tree: Value = match serde_saphyr::from_str(text) {
        Ok(Value::Null) => Value::Object(Default::default()),
        Ok(tree) => tree,
        Err(error) => {
            return Err(vec![ConfigError {
                path: String::new(),
                message: format!("invalid YAML: {error}"),
            }]);
        }
    };
    interpolate(&mut tree, &mut String::new(), env, &mut errors);
    let Value::Object(mut root) = tree else {
        return Err(vec![error_at("", "the file must be a mapping of sections")]);
    };
    for key in root.keys() {
        if !SECTIONS.contains(&key.as_str()) {
            errors.push(error_at(
                key,
                format!("unknown section (expected one of {})", SECTIONS.join(", ")),
            ));
        }
    }
    let server = match root.remove("server") {
        None | Some(Value::Null) => Some(ServerConfig::default()),
        Some(value) => parse_at::<ServerConfig>(value, "server", &mut errors),
    };
    let routing = match root.remove("routing") {
        None | Some(Value::Null) => Some(RoutingConfig::default()),
        Some(value) => parse_at::<RoutingConfig>(value, "routing", &mut errors),
    };
    let auth = section::<AuthConfig>(&mut root, "auth", &mut errors);
    let store = section::<StoreConfig>(&mut root, "store", &mut errors);
    let limits = section::<LimitsConfig>(&mut root, "limits", &mut errors);
    let redis = section::<RedisConfig>(&mut root, "redis", &mut errors);
    let ledger = section::<LedgerConfig>(&mut root, "ledger", &mut errors);
    let metrics = section::<MetricsConfig>(&mut root, "metrics", &mut errors);
    let otel = section::<OtelConfig>(&mut root, "otel", &mut errors)
        .map(|otel| telemetry::check_otel(otel, env, &mut errors));
    let audit = section::<AuditConfig>(&mut root, "audit", &mut errors)
        .map(|audit| control::check_audit(audit, env, &mut errors));
    let guards = section::<GuardsConfig>(&mut root, "guards", &mut errors);
    let cache = section::<CacheConfig>(&mut root, "cache", &mut errors);
    let hooks: Vec<WebhookConfig> = match root.remove("hooks") {
        None | Some(Value::Null) => Vec::new(),
        Some(value) => {
            parse_at::<Vec<WebhookConfig>>(value, "hooks", &mut errors).unwrap_or_default()
        }
    };
    control::check_hooks(&hooks, &mut errors);
    let mut models = Vec::new();
    match root.remove("models") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (index, item) in items.into_iter().enumerate() {
                if let Some((model, positions)) =
                    parse_model(item, &format!("models[{index}]"), &mut errors)
                {
                    models.push((index, model, positions));
                }
            }
        }
        Some(_) => errors.push(error_at("models", "must be a list of model groups")),
    }
    if let Some(server) = &server {
        check_server(server, &mut errors);
    }
    if let Some(routing) = &routing {
        check_routing(routing, &mut errors);
    }
    check_models(&models, &mut errors);
    let auth = auth.map(|mut auth| {
        if auth.master_key.is_none() {
            auth.master_key = env
                .var(MASTER_KEY_VAR)
                .filter(|key| !key.trim().is_empty())
                .map(|key| Secret::from(key.trim().to_owned()));
        }
        check_auth(&auth, &mut errors);
        auth
    });
    if let Some(store) = &store {
        check_store(store, &mut errors);
    }
    if let Some(limits) = &limits
        && limits.redis_timeout_ms == 0
    {
        errors.push(error_at("limits.redis_timeout_ms", "must be at least 1"));
    }
    if let Some(url) = redis.as_ref().and_then(|redis| redis.url.as_ref()) {
        let valid = url::Url::parse(url.expose())
            .map(|url| matches!(url.scheme(), "redis" | "rediss" | "unix" | "redis+unix"))
            .unwrap_or(false);
        if !valid {
            errors.push(error_at("redis.url", "not a redis:// URL"));
        }
    }
    if let Some(ledger) = &ledger
        && ledger.queue_capacity == 0
    {
        errors.push(error_at("ledger.queue_capacity", "must be at least 1"));
    }
    if let Some(url) = ledger
        .as_ref()
        .and_then(|ledger| ledger.budget_webhook_url.as_deref())
        && switchyard_providers::http::Target::parse(url).is_err()
    {
        errors.push(error_at(
            "ledger.budget_webhook_url",
            "not an http:// or https:// URL",
        ));
    }
    if let Some(guards) = &guards {
        control::check_guards(guards, &models, &mut errors);
    }
    if let Some(cache) = &cache {
        control::check_cache(cache, redis.as_ref(), &mut errors);
    }
    errors.sort_by_cached_key(|error| path_order(&error.path));
    match (
        server, routing, auth, store, limits, redis, ledger, metrics, otel, audit, guards, cache,
    ) {
        (
            Some(server),
            Some(routing),
            Some(auth),
            Some(store),
            Some(limits),
            Some(redis),
            Some(ledger),
            Some(metrics),
            Some(otel),
            Some(audit),
            Some(guards),
            Some(cache),
        ) if errors.is_empty() => Ok(ConfigFile {
            server,
            routing,
            models: models.into_iter().map(|(_, model, _)| model).collect(),
            auth,
            store,
            limits,
            redis,
            ledger,
            metrics,
            otel,
            audit,
            guards,
            hooks,
            cache,
        }),
        _ => Err(errors),
    }
}

/// The file's top-level sections.
const SECTIONS: [&str; 14] = [
    "server", "routing", "models", "auth", "store", "limits", "redis", "ledger", "metrics", "otel",
    "audit", "guards", "hooks", "cache",
];

/// The environment variable the audit log's signing key is read from when the file has none.
pub const AUDIT_KEY_VAR: &str = "SWITCHYARD_AUDIT_SIGNING_KEY";

/// The environment variable the master key is read from when the file has none.
pub const MASTER_KEY_VAR: &str = "SWITCHYARD_MASTER_KEY";

/// The section `name` of `root`, parsed (its defaults when absent).
fn section<T: DeserializeOwned + Default>(
    root: &mut serde_json::Map<String, Value>,
    name: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    match root.remove(name) {
        None | Some(Value::Null) => Some(T::default()),
        Some(value) => parse_at::<T>(value, name, errors),
    }
}

fn check_auth(auth: &AuthConfig, errors: &mut Vec<ConfigError>) {
    if let Some(key) = &auth.master_key
        && key.expose().chars().count() < 16
    {
        errors.push(error_at(
            "auth.master_key",
            "must be at least 16 characters (it holds every admin right)",
        ));
    }
    if auth.mode == Some(AuthMode::Keys) && auth.master_key.is_none() {
        errors.push(error_at(
            "auth.mode",
            format!("`keys` needs a master key (auth.master_key or {MASTER_KEY_VAR})"),
        ));
    }
    if let Some(seconds) = auth.key_cache_secs {
        check_seconds(seconds, "auth.key_cache_secs", false, errors);
    }
}

fn check_store(store: &StoreConfig, errors: &mut Vec<ConfigError>) {
    let url = store.url.expose();
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        errors.push(error_at(
            "store.url",
            "must start with sqlite: or postgres://",
        ));
    }
    if store.max_connections == 0 {
        errors.push(error_at("store.max_connections", "must be at least 1"));
    }
    check_seconds(store.timeout_secs, "store.timeout_secs", false, errors);
}

impl ConfigFile {
    /// Whether model calls need keys when serving on `listen`: `keys` with a master key;
    /// without one, `none` on a loopback address, and elsewhere only when the file says so.
    pub fn auth_mode(&self, listen: SocketAddr) -> Result<AuthMode, ConfigError> {
        match (self.auth.mode, &self.auth.master_key) {
            (Some(mode), _) => Ok(mode),
            (None, Some(_)) => Ok(AuthMode::Keys),
            (None, None) if listen.ip().is_loopback() => Ok(AuthMode::None),
            (None, None) => Err(error_at(
                "auth",
                format!(
                    "serving on {listen} without keys would let anyone who reaches it spend \
                     the provider keys: set a master key (auth.master_key or \
                     {MASTER_KEY_VAR}), or write `auth: {{mode: none}}` to serve without keys"
                ),
            )),
        }
    }
}

/// Orders error paths as the file usually reads: `server` first, then `models` by index.
fn path_order(path: &str) -> (u8, Vec<(String, usize)>) {
    let rank = if path.starts_with("server") {
        0
    } else if path.starts_with("models") {
        1
    } else {
        2
    };
    let parts = path
        .split(['.', '[', ']'])
        .filter(|part| !part.is_empty())
        .map(|part| match part.parse::<usize>() {
            Ok(index) => (String::new(), index),
            Err(_) => (part.to_owned(), 0),
        })
        .collect();
    (rank, parts)
}

fn error_at(path: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// Parses a model group; its deployments one by one, so each bad one is reported. Returns the
/// group and, for each deployment kept, its position in the file.
fn parse_model(
    mut item: Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<(ModelConfig, Vec<usize>)> {
    let deployments = match &mut item {
        Value::Object(object) => object.remove("deployments"),
        _ => None,
    };
    let model = parse_at::<ModelConfig>(item, path, errors);
    let mut parsed = Vec::new();
    let mut positions = Vec::new();
    match deployments {
        Some(Value::Array(items)) if !items.is_empty() => {
            for (index, item) in items.into_iter().enumerate() {
                let path = format!("{path}.deployments[{index}]");
                if let Some(deployment) = parse_at::<DeploymentConfig>(item, &path, errors) {
                    parsed.push(deployment);
                    positions.push(index);
                }
            }
        }
        None | Some(Value::Null) | Some(Value::Array(_)) => errors.push(error_at(
            &format!("{path}.deployments"),
            "a model group needs at least one deployment",
        )),
        Some(_) => errors.push(error_at(
            &format!("{path}.deployments"),
            "must be a list of deployments",
        )),
    }
    model.map(|mut model| {
        model.deployments = parsed;
        (model, positions)
    })
}

/// Parses `value` as `T`, reporting errors under `path`. A bad key is reported, removed and the
/// parse retried, so one section yields all of its errors and, where the rest is sound, a value
/// the semantic checks can still look at.
fn parse_at<T: DeserializeOwned>(
    mut value: Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    let mut reported = 0;
    loop {
        let error = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(parsed) => return Some(parsed),
            Err(error) => error,
        };
        let inner_path = error.path().to_string();
        // A struct-level error after a removed key is that key missing: already reported.
        if inner_path == "." && reported > 0 {
            return None;
        }
        let full = if inner_path == "." {
            path.to_owned()
        } else if path.is_empty() {
            inner_path.clone()
        } else {
            format!("{path}.{inner_path}")
        };
        errors.push(error_at(&full, error.into_inner().to_string()));
        reported += 1;
        let key = inner_path
            .split(['.', '['])
            .next()
            .unwrap_or_default()
            .to_owned();
        let removed = match &mut value {
            Value::Object(object) if reported < 32 => object.remove(&key).is_some(),
            _ => false,
        };
        if !removed {
            return None;
        }
    }
}

/// Replaces `${VAR}` and `${VAR:-default}` in every string of the tree.
fn interpolate(value: &mut Value, path: &mut String, env: &dyn Env, errors: &mut Vec<ConfigError>) {
    match value {
        Value::String(text) if text.contains("${") => match expand(text, env) {
            Ok(expanded) => *text = expanded,
            Err(message) => errors.push(error_at(path, message)),
        },
        Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{index}]"));
                interpolate(item, path, env, errors);
                path.truncate(len);
            }
        }
        Value::Object(object) => {
            for (key, item) in object.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                interpolate(item, path, env, errors);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

fn expand(text: &str, env: &dyn Env) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err("unclosed `${` in value".to_owned());
        };
        let spec = &after[..end];
        let (name, default) = match spec.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (spec, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "`${{{spec}}}` is not a valid environment variable reference"
            ));
        }
        match (env.var(name), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => return Err(format!("environment variable {name} is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn check_server(server: &ServerConfig, errors: &mut Vec<ConfigError>) {
    if server.listen.parse::<SocketAddr>().is_err() {
        errors.push(error_at(
            "server.listen",
            format!("`{}` is not an address like 127.0.0.1:4000", server.listen),
        ));
    }
    for (value, path) in [
        (server.body_limit_bytes, "server.body_limit_bytes"),
        (
            server.upstream_body_limit_bytes,
            "server.upstream_body_limit_bytes",
        ),
        (
            server.upstream_event_limit_bytes,
            "server.upstream_event_limit_bytes",
        ),
    ] {
        if value == 0 {
            errors.push(error_at(path, "must be greater than 0"));
        }
    }
    check_seconds(
        server.shutdown_grace_secs,
        "server.shutdown_grace_secs",
        true,
        errors,
    );
    for (value, path) in [
        (server.connect_timeout_secs, "server.connect_timeout_secs"),
        (
            server.header_read_timeout_secs,
            "server.header_read_timeout_secs",
        ),
        (
            server.body_read_timeout_secs,
            "server.body_read_timeout_secs",
        ),
        (server.http2_keep_alive_secs, "server.http2_keep_alive_secs"),
    ] {
        check_seconds(value, path, false, errors);
    }
    if server.max_body_bytes_in_flight < server.body_limit_bytes {
        errors.push(error_at(
            "server.max_body_bytes_in_flight",
            "must be at least server.body_limit_bytes",
        ));
    }
    if server.max_connections == 0 {
        errors.push(error_at("server.max_connections", "must be greater than 0"));
    }
    if server.max_header_bytes < 8192 {
        errors.push(error_at("server.max_header_bytes", "must be at least 8192"));
    }
}

fn check_seconds(value: f64, path: &str, zero_ok: bool, errors: &mut Vec<ConfigError>) {
    let valid = value.is_finite() && (value > 0.0 || (zero_ok && value == 0.0)) && value < 1e9;
    if !valid {
        let bound = if zero_ok { "0 or more" } else { "more than 0" };
        errors.push(error_at(
            path,
            format!("must be a number of seconds, {bound}"),
        ));
    }
}

fn check_routing(routing: &RoutingConfig, errors: &mut Vec<ConfigError>) {
    if routing.cooldown_failures == 0 {
        errors.push(error_at("routing.cooldown_failures", "must be at least 1"));
    }
    check_seconds(
        routing.cooldown_window_secs,
        "routing.cooldown_window_secs",
        false,
        errors,
    );
    check_seconds(routing.cooldown_secs, "routing.cooldown_secs", true, errors);
    check_seconds(
        routing.max_timeout_secs,
        "routing.max_timeout_secs",
        false,
        errors,
    );
    if routing.retry_backoff_ms > routing.retry_backoff_max_ms {
        errors.push(error_at(
            "routing.retry_backoff_ms",
            "must not exceed routing.retry_backoff_max_ms",
        ));
    }
}

/// Providers known to config, and whether each needs `api_base` and `api_key`.
pub(crate) fn provider_needs(provider: &str) -> Option<(bool, bool)> {
    match provider {
        "anthropic" | "gemini" => Some((false, true)),
        "azure" => Some((true, true)),
        "bedrock" | "vertex" => Some((false, false)),
        "openai_compatible" => Some((true, false)),
        "mock" | "mock_anthropic" | "mock_gemini" | "mock_azure" | "mock_bedrock"
        | "mock_vertex" => Some((false, false)),
        other => switchyard_providers::openai::compat::preset(other)
            .map(|preset| (false, preset.needs_key)),
    }
}

fn check_models(models: &[(usize, ModelConfig, Vec<usize>)], errors: &mut Vec<ConfigError>) {
    let mut seen: HashSet<&str> = HashSet::new();
    for (index, model, positions) in models {
        let path = format!("models[{index}]");
        if model.name.trim().is_empty() {
            errors.push(error_at(&format!("{path}.name"), "must not be empty"));
        }
        for (name, name_path) in std::iter::once((&model.name, format!("{path}.name"))).chain(
            model
                .aliases
                .iter()
                .enumerate()
                .map(|(i, alias)| (alias, format!("{path}.aliases[{i}]"))),
        ) {
            if !seen.insert(name.as_str()) {
                errors.push(error_at(
                    &name_path,
                    format!("`{name}` names more than one model group"),
                ));
            }
        }
        for (d, deployment) in positions.iter().zip(&model.deployments) {
            check_deployment(deployment, &format!("{path}.deployments[{d}]"), errors);
        }
        if let Some(interval) = model.health_check_interval_secs {
            check_seconds(
                interval,
                &format!("{path}.health_check_interval_secs"),
                false,
                errors,
            );
        }
    }
    for (index, model, _) in models {
        for (key, list) in [
            ("fallbacks", &model.fallbacks),
            ("context_window_fallbacks", &model.context_window_fallbacks),
            ("content_policy_fallbacks", &model.content_policy_fallbacks),
        ] {
            for (i, name) in list.iter().enumerate() {
                let path = format!("models[{index}].{key}[{i}]");
                if !seen.contains(name.as_str()) {
                    errors.push(error_at(
                        &path,
                        format!("no model group is called `{name}`"),
                    ));
                } else if *name == model.name || model.aliases.contains(name) {
                    errors.push(error_at(&path, "a group cannot fall back to itself"));
                }
            }
        }
    }
}

fn check_deployment(deployment: &DeploymentConfig, path: &str, errors: &mut Vec<ConfigError>) {
    let Some((needs_base, needs_key)) = provider_needs(&deployment.provider) else {
        let presets: Vec<&str> = switchyard_providers::openai::compat::PRESETS
            .iter()
            .map(|preset| preset.name)
            .collect();
        errors.push(error_at(
            &format!("{path}.provider"),
            format!(
                "unknown provider `{}` (known: anthropic, gemini, vertex, azure, bedrock, openai_compatible, {}, mock, mock_anthropic, mock_gemini, mock_vertex, mock_azure, mock_bedrock)",
                deployment.provider,
                presets.join(", ")
            ),
        ));
        return;
    };
    if deployment.model.trim().is_empty() {
        errors.push(error_at(&format!("{path}.model"), "must not be empty"));
    }
    match &deployment.api_base {
        Some(base) => {
            let valid = url::Url::parse(base)
                .map(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
                .unwrap_or(false);
            if !valid {
                errors.push(error_at(&format!("{path}.api_base"), "not a URL"));
            }
        }
        None if needs_base => errors.push(error_at(
            &format!("{path}.api_base"),
            format!("required for provider `{}`", deployment.provider),
        )),
        None => {}
    }
    if needs_key
        && deployment
            .api_key
            .as_ref()
            .is_none_or(|key| key.expose().is_empty())
    {
        errors.push(error_at(
            &format!("{path}.api_key"),
            format!(
                "required for provider `{}` (use `${{ENV_VAR}}` to read it from the environment)",
                deployment.provider
            ),
        ));
    }
    check_seconds(
        deployment.timeout_secs,
        &format!("{path}.timeout_secs"),
        false,
        errors,
    );
    for (value, key) in [
        (deployment.ttft_timeout_secs, "ttft_timeout_secs"),
        (deployment.connect_timeout_secs, "connect_timeout_secs"),
    ] {
        if let Some(value) = value {
            check_seconds(value, &format!("{path}.{key}"), false, errors);
        }
    }
    for (value, key) in [(deployment.weight, "weight")] {
        if !value.is_finite() || value < 0.0 {
            errors.push(error_at(
                &format!("{path}.{key}"),
                "must be a number, 0 or more",
            ));
        }
    }
    check_provider_keys(deployment, path, errors);
}

/// Whether a key is set, and its name.
type SetKey<'a> = (bool, &'a str);

/// Keys that belong to one provider: required where they must be, refused elsewhere.
fn check_provider_keys(deployment: &DeploymentConfig, path: &str, errors: &mut Vec<ConfigError>) {
    let provider = deployment.provider.as_str();
    let bedrock = matches!(provider, "bedrock" | "mock_bedrock");
    let vertex = matches!(provider, "vertex" | "mock_vertex");
    let azure = matches!(provider, "azure" | "mock_azure");
    if provider == "bedrock" && deployment.aws_region.is_none() {
        errors.push(error_at(
            &format!("{path}.aws_region"),
            "required for provider `bedrock` (use `${AWS_REGION}` to read it from the environment)",
        ));
    }
    if deployment.aws_access_key_id.is_some() != deployment.aws_secret_access_key.is_some() {
        errors.push(error_at(
            &format!("{path}.aws_secret_access_key"),
            "aws_access_key_id and aws_secret_access_key go together",
        ));
    }
    if vertex && deployment.credentials_file.is_none() {
        errors.push(error_at(
            &format!("{path}.credentials_file"),
            "required for provider `vertex` (a service-account key file)",
        ));
    }
    let owned: [(bool, &str, &[SetKey]); 3] = [
        (
            bedrock,
            "AWS Bedrock deployments (provider `bedrock`)",
            &[
                (deployment.aws_region.is_some(), "aws_region"),
                (deployment.aws_access_key_id.is_some(), "aws_access_key_id"),
                (deployment.aws_session_token.is_some(), "aws_session_token"),
            ],
        ),
        (
            vertex,
            "Google Vertex AI deployments (provider `vertex`)",
            &[
                (deployment.credentials_file.is_some(), "credentials_file"),
                (deployment.vertex_project.is_some(), "vertex_project"),
                (deployment.vertex_location.is_some(), "vertex_location"),
                (deployment.token_uri.is_some(), "token_uri"),
            ],
        ),
        (
            azure,
            "Azure OpenAI deployments (provider `azure`)",
            &[
                (deployment.api_version.is_some(), "api_version"),
                (deployment.auth.is_some(), "auth"),
            ],
        ),
    ];
    for (allowed, owner, keys) in owned {
        for &(set, key) in keys {
            if set && !allowed {
                errors.push(error_at(
                    &format!("{path}.{key}"),
                    format!("only {owner} take this"),
                ));
            }
        }
    }
}

mod control;
mod telemetry;
#[cfg(test)]
mod tests;
