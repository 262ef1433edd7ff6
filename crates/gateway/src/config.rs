//! Configuration: the YAML file's shape ([`file`]), loading with `${ENV}` interpolation and
//! validation that reports every problem with its path ([`load`]), and the embedded defaults
//! ([`defaults`]).
//!
//! Two phases, as everywhere: [`load::validate`] is pure and turns text into a [`ConfigFile`]
//! or a list of [`ConfigError`]s; `Runtime::build` (in `runtime.rs`) opens clients from it.

pub mod defaults;
pub mod file;
pub mod load;

pub use file::{
    AuthConfig, AuthMode, CacheBackend, CacheConfig, CacheScope, ConfigFile, DeploymentConfig,
    LimitsConfig, ModelConfig, OutagePolicy, RedisConfig, RoutingConfig, Secret, ServerConfig,
    StoreConfig,
};
pub use load::{ConfigError, Env, ProcessEnv, load_file, validate};
