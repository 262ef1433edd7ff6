//! Keys, teams and who may call what: the pipeline's authenticate and authorize stages, and
//! the state the admin API changes.
//!
//! A call presents a key (`Authorization: Bearer`, or `x-api-key` as Anthropic's SDKs send it);
//! its SHA-256 is looked up in a bounded cache and, on a miss, in the store (on the background
//! runtime, within `store.timeout_secs`). The master key is compared through its digest. What
//! comes back is a [`Principal`]: the key with its team's and user's models and limits.
//!
//! # Layout
//! - [`secret`]: generating, hashing and showing key secrets.
//! - [`principal`]: the caller, its model access (names, aliases, wildcards).
//! - [`cache`]: recently used keys, dropped when they change.
//! - [`limits`]: requests, tokens and calls in flight per key, team, user and key-and-model.
//! - [`notify`]: Redis: the limits' connection, and key changes told to every instance.

pub mod cache;
pub mod limits;
pub mod notify;
pub mod principal;
pub mod secret;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use http::HeaderMap;
use switchyard_store::{Options, Store, StoreError};
use switchyard_types::{ApiError, ErrorKind, Origin, WireFormat};
use tracing::{debug, warn};

pub use cache::KeyCache;
pub use principal::Principal;

use crate::background::Background;
use crate::config::{ConfigFile, Secret};
use crate::router::ModelGroup;
use secret::Digest;

/// The PostgreSQL channel key changes are told on when there is no Redis.
const CHANNEL: &str = "switchyard_keys";

/// Keys held by the lookup cache.
const CACHE_KEYS: usize = 100_000;

/// How long a key is used before it is read again, unless `auth.key_cache_secs` says.
const DEFAULT_KEY_TTL: Duration = Duration::from_secs(60);

/// Opens the store `config` names (`store.url`), applying its migrations, on `background`'s
/// runtime (which then owns its connections).
pub async fn open_store(config: &ConfigFile, background: &Background) -> Result<Store, StoreError> {
    let options = Options {
        url: config.store.url.expose().to_owned(),
        max_connections: config.store.max_connections,
        acquire_timeout: store_timeout(config),
    };
    background
        .run(async move { Store::connect(&options).await })
        .await
        .ok_or(StoreError::Unavailable("shutting down"))?
}

/// How long a store call may take (`store.timeout_secs`).
pub fn store_timeout(config: &ConfigFile) -> Duration {
    Duration::try_from_secs_f64(config.store.timeout_secs).unwrap_or(Duration::from_secs(2))
}

/// Keys, the store behind them, and the master key.
#[derive(Debug)]
pub struct Governance {
    store: Store,
    master: ArcSwapOption<Digest>,
    cache: KeyCache,
    lookup_timeout: Duration,
    background: Background,
    /// The rate limiter.
    pub limiter: Arc<limits::Limiter>,
    /// Tells other instances about changes, when Redis is configured.
    notify: Option<notify::Notify>,
}

/// What an admin change touched: the cache entries to drop, here and on other instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// A key, by the digests (hex) of its secrets.
    Key(Vec<String>),
    /// Every key of a team.
    Team(String),
    /// Every key of a user.
    User(String),
}

impl Governance {
    /// Opens the store the config names (applying its migrations) and takes its master key;
    /// store work runs on `background`'s runtime.
    pub async fn open(
        config: &ConfigFile,
        background: Background,
    ) -> Result<Governance, StoreError> {
        let timeout = store_timeout(config);
        let store = open_store(config, &background).await?;
        let ttl = config
            .auth
            .key_cache_secs
            .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
            .unwrap_or(DEFAULT_KEY_TTL);
        let (limiter, notify) = match &config.redis.url {
            Some(url) => {
                let notify = notify::Notify::start(url.expose(), &config.redis.prefix, &background)
                    .map_err(|error| StoreError::Invalid(format!("redis.url: {error}")))?;
                let limiter = limits::Limiter::shared(
                    notify.connection(),
                    notify.client(),
                    &config.redis.prefix,
                    Duration::from_millis(config.limits.redis_timeout_ms),
                    config.limits.on_redis_error,
                );
                (limiter, Some(notify))
            }
            None => (limits::Limiter::local(), None),
        };
        let governance = Governance {
            store,
            master: ArcSwapOption::empty(),
            cache: KeyCache::new(CACHE_KEYS, ttl),
            lookup_timeout: timeout,
            background,
            limiter: Arc::new(limiter),
            notify,
        };
        governance.set_master(config.auth.master_key.as_ref());
        Ok(governance)
    }

    /// Takes a new master key (a reload).
    pub fn set_master(&self, key: Option<&Secret>) {
        self.master
            .store(key.map(|key| Arc::new(secret::digest(key.expose()))));
    }

    /// The connection to the Redis key changes travel through, when the gateway has Redis.
    pub fn redis(&self) -> Option<Arc<ArcSwapOption<redis::aio::ConnectionManager>>> {
        self.notify.as_ref().map(notify::Notify::connection)
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs a store operation on the background runtime, within the lookup time limit.
    pub async fn with_store<F, Fut, T>(&self, operation: F) -> Result<T, StoreError>
    where
        F: FnOnce(Store) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        let work = operation(self.store.clone());
        match tokio::time::timeout(self.lookup_timeout, self.background.run(work)).await {
            Ok(Some(result)) => result,
            Ok(None) => Err(StoreError::Unavailable("shutting down")),
            Err(_) => Err(StoreError::Unavailable("timed out")),
        }
    }

    /// The caller of a request with `headers`, answering in `format`'s error shape: 401 for a
    /// missing, unknown, blocked or expired key; 503 when the store cannot answer for a key
    /// not in the cache.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        format: WireFormat,
    ) -> Result<Arc<Principal>, ApiError> {
        let Some(presented) = presented_key(headers) else {
            return Err(unauthenticated(
                match format {
                    WireFormat::OpenAi => {
                        "Missing API key: send your Switchyard key as `Authorization: Bearer <key>`"
                    }
                    WireFormat::Anthropic => {
                        "Missing API key: send your Switchyard key in the `x-api-key` header"
                    }
                },
                "missing_api_key",
            ));
        };
        let digest = secret::digest(presented);
        if let Some(master) = &*self.master.load()
            && secret::same(master, &digest)
        {
            return Ok(master_principal());
        }
        let principal = match self.cache.get(&digest) {
            cache::Cached::Fresh(principal) => principal,
            cache::Cached::Unknown => return Err(invalid_key()),
            cache::Cached::Stale(stale) => match self.lookup(digest).await {
                Ok(found) => found.ok_or_else(invalid_key)?,
                Err(error) if error.is_unavailable() => {
                    warn!(%error, key = %stale.key_id, "Key store unavailable: using the cached key");
                    stale
                }
                Err(error) => return Err(store_error(&error)),
            },
            cache::Cached::Miss => self
                .lookup(digest)
                .await
                .map_err(|error| store_error(&error))?
                .ok_or_else(invalid_key)?,
        };
        if let Some(reason) = principal.refusal(switchyard_store::now_ms()) {
            return Err(unauthenticated(reason, "invalid_api_key"));
        }
        Ok(principal)
    }

    /// Reads the key with digest `digest` (and its team and user) from the store, and
    /// remembers the answer.
    async fn lookup(&self, digest: Digest) -> Result<Option<Arc<Principal>>, StoreError> {
        let hash = secret::hex(&digest);
        let found = self
            .with_store(|store| async move {
                let Some(key) = store.key_by_hash(&hash, switchyard_store::now_ms()).await? else {
                    return Ok(None);
                };
                let team = match &key.team_id {
                    Some(id) => Some(store.team(id).await?),
                    None => None,
                };
                let user = match &key.user_id {
                    Some(id) => Some(store.user(id).await?),
                    None => None,
                };
                Ok(Some(Principal::of(key, team, user)))
            })
            .await?;
        Ok(match found {
            Some(principal) => {
                let principal = Arc::new(principal);
                self.cache.insert(digest, Arc::clone(&principal));
                Some(principal)
            }
            None => {
                self.cache.insert_unknown(digest);
                None
            }
        })
    }

    /// An admin change touched `changed`: drops it from this instance's cache (and, next,
    /// from every other instance's).
    pub fn changed(&self, changed: Changed) {
        self.forget(&changed);
        if let Some(notify) = &self.notify {
            notify.publish(changed);
        } else if self.store.kind() == switchyard_store::Kind::Postgres {
            // No Redis: the instances sharing the database hear it from PostgreSQL.
            let (store, payload) = (self.store.clone(), notify::encode(&changed));
            self.background.spawn(async move {
                if let Err(error) = store.notify(CHANNEL, &payload).await {
                    warn!(%error, "Key change not told to other instances");
                }
            });
        }
    }

    /// Starts listening for other instances' changes (through Redis when configured, else
    /// through PostgreSQL); changes heard are dropped from this instance's cache.
    pub fn listen(self: &Arc<Self>) {
        if let Some(notify) = &self.notify {
            notify.listen(Arc::downgrade(self), &self.background);
            return;
        }
        if self.store.kind() != switchyard_store::Kind::Postgres {
            return;
        }
        let (store, governance, closing) = (
            self.store.clone(),
            Arc::downgrade(self),
            self.background.closing(),
        );
        self.background.spawn(async move {
            loop {
                match store.listen(CHANNEL).await {
                    Ok(Some(mut listener)) => loop {
                        // Changes made while not listening are unknown: start afresh.
                        match governance.upgrade() {
                            Some(governance) => governance.forget_all(),
                            None => return,
                        }
                        loop {
                            let heard = tokio::select! {
                                heard = listener.recv() => heard,
                                () = closing.cancelled() => return,
                            };
                            let Some(governance) = governance.upgrade() else {
                                return;
                            };
                            match heard {
                                Ok(Some(payload)) => {
                                    if let Some(changed) = notify::decode(&payload) {
                                        governance.forget(&changed);
                                    }
                                }
                                // The connection was lost; the next `recv` makes it again.
                                Ok(None) => break,
                                Err(error) => {
                                    debug!(%error, "PostgreSQL key-change listener failed");
                                    break;
                                }
                            }
                        }
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                            () = closing.cancelled() => return,
                        }
                    },
                    Ok(None) => return,
                    Err(error) => debug!(%error, "PostgreSQL unreachable for key changes"),
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = closing.cancelled() => return,
                }
            }
        });
    }

    /// Drops every cached key (changes may have been missed).
    pub fn forget_all(&self) {
        self.cache.clear();
    }

    /// Drops what `changed` touched from this instance's cache.
    pub fn forget(&self, changed: &Changed) {
        match changed {
            Changed::Key(hashes) => self
                .cache
                .forget(|principal| principal.hashes.iter().any(|hash| hashes.contains(hash))),
            Changed::Team(id) => self
                .cache
                .forget(|principal| principal.team_id.as_deref() == Some(id)),
            Changed::User(id) => self
                .cache
                .forget(|principal| principal.user_id.as_deref() == Some(id)),
        }
        self.cache.forget_unknown();
    }
}

/// The model-access check of the authorize stage: a 403 naming the model when the caller's
/// key (or its team) may not use `group`.
pub fn authorize(
    principal: &Principal,
    requested: &str,
    group: &ModelGroup,
) -> Result<(), ApiError> {
    if !principal.calls_models() {
        return Err(ApiError::new(
            ErrorKind::PermissionDenied,
            Origin::Client,
            "This key is a viewer key: it reads the admin API and cannot call models",
        )
        .with_code("role_cannot_call_models"));
    }
    if principal.may_use(group) {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorKind::PermissionDenied,
        Origin::Client,
        format!(
            "This key is not allowed to use model `{}`",
            switchyard_types::clip(requested, switchyard_types::MAX_QUOTED)
        ),
    )
    .with_code("model_not_allowed"))
}

/// The master key's principal (one for the process).
fn master_principal() -> Arc<Principal> {
    static MASTER: std::sync::OnceLock<Arc<Principal>> = std::sync::OnceLock::new();
    Arc::clone(MASTER.get_or_init(|| Arc::new(Principal::master())))
}

/// The key a request presents: `Authorization: Bearer <key>` (OpenAI's SDKs), `x-api-key`
/// (Anthropic's), or `api-key` (Azure OpenAI's).
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(http::header::AUTHORIZATION) {
        let value = value.to_str().ok()?.trim();
        let (scheme, key) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| key.trim())
            .filter(|key| !key.is_empty());
    }
    ["x-api-key", "api-key"].into_iter().find_map(|name| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|key| !key.is_empty())
    })
}

fn unauthenticated(message: &str, code: &str) -> ApiError {
    ApiError::new(ErrorKind::Authentication, Origin::Client, message).with_code(code)
}

fn invalid_key() -> ApiError {
    unauthenticated("Invalid API key", "invalid_api_key")
}

/// A store failure while looking up a key: the caller may retry.
fn store_error(error: &StoreError) -> ApiError {
    warn!(%error, "Key lookup failed");
    let mut error = ApiError::new(
        ErrorKind::Unavailable,
        Origin::Internal,
        "The key store is not answering; try again shortly",
    )
    .with_code("key_store_unavailable");
    error.retry_after = Some(Duration::from_secs(1));
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, http::HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn keys_are_read_as_each_sdk_sends_them() {
        assert_eq!(
            presented_key(&headers(&[("authorization", "Bearer sy-1")])),
            Some("sy-1")
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "bearer  sy-1 ")])),
            Some("sy-1")
        );
        assert_eq!(
            presented_key(&headers(&[("x-api-key", "sy-2")])),
            Some("sy-2")
        );
        assert_eq!(
            presented_key(&headers(&[("api-key", "sy-3")])),
            Some("sy-3")
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "Basic abc")])),
            None
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "Bearer ")])),
            None
        );
        assert_eq!(presented_key(&headers(&[])), None);
    }
}
