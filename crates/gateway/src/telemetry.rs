//! What the gateway tells its operators: Prometheus metrics (`/metrics`) and OpenTelemetry
//! traces (OTLP, when `otel.endpoint` is set).
//!
//! Every label value comes from the config or the admin API (model group names, deployment
//! labels, team ids, error kinds, statuses), never from a client: a client sending thousands
//! of model names grows no label set (an unknown model is `model="unknown"`).
//!
//! # Layout
//! - [`metrics`]: the metric families, recorded once per request when it ends.
//! - [`traces`]: a span per call and its stages and attempts, made when it ends.

pub mod metrics;
pub mod traces;

pub use metrics::Metrics;
pub use traces::Traces;
