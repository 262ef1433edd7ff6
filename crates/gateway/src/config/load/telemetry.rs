//! Checks of the traces' section: the collector, the sampling ratio and the export headers,
//! each taken from OpenTelemetry's environment variables when the file has none.

use std::collections::BTreeMap;

use super::{ConfigError, Env, error_at};
use crate::config::file::{OtelConfig, Secret};

/// The `otel` section, its endpoint and headers from the environment when the file has none.
pub(super) fn check_otel(
    mut otel: OtelConfig,
    env: &dyn Env,
    errors: &mut Vec<ConfigError>,
) -> OtelConfig {
    if otel.endpoint.is_none() {
        otel.endpoint = env
            .var("OTEL_EXPORTER_OTLP_ENDPOINT")
            .filter(|url| !url.trim().is_empty());
    }
    if let Some(url) = &otel.endpoint
        && switchyard_providers::http::Target::parse(url).is_err()
    {
        errors.push(error_at("otel.endpoint", "not an http:// or https:// URL"));
    }
    if !(0.0..=1.0).contains(&otel.sample_ratio) {
        errors.push(error_at("otel.sample_ratio", "must be between 0 and 1"));
    }
    if otel.headers.is_empty()
        && let Some(list) = env.var("OTEL_EXPORTER_OTLP_HEADERS")
    {
        otel.headers = otlp_headers(&list);
    }
    for (name, value) in &otel.headers {
        if http::HeaderName::from_bytes(name.trim().as_bytes()).is_err()
            || http::HeaderValue::from_str(value.expose().trim()).is_err()
        {
            errors.push(error_at(
                "otel.headers",
                format!("{name:?} is not a valid header name with a valid value"),
            ));
        }
    }
    otel
}

/// The headers of `OTEL_EXPORTER_OTLP_HEADERS`: `name=value` pairs separated by commas, each
/// value percent-decoded (as the OpenTelemetry specification writes them).
fn otlp_headers(list: &str) -> BTreeMap<String, Secret> {
    list.split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| {
            let value = percent_encoding::percent_decode_str(value.trim()).decode_utf8_lossy();
            (name.trim().to_owned(), Secret::from(value.into_owned()))
        })
        .filter(|(name, _)| !name.is_empty())
        .collect()
}
