//! An embedder that is one of the gateway's own embeddings groups: each text goes to
//! `/v1/embeddings` on the gateway itself (with the master key when keys are required), so
//! any provider's embeddings model it routes to (OpenAI, Gemini, Bedrock, a local server)
//! can place questions, with the group's routing, fallbacks and records.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};

use super::{EmbedError, Embedder};

/// How long one embedding may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The gateway's own embeddings group.
pub struct Through {
    listening: Arc<OnceLock<SocketAddr>>,
    model: String,
    key: Option<String>,
    client: OnceLock<reqwest::blocking::Client>,
}

impl std::fmt::Debug for Through {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Through")
            .field("listening", &self.listening.get())
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl Through {
    /// The group `model` of the gateway that listens on what `listening` holds once it does
    /// (an unspecified address is reached on loopback), called with `key`.
    pub fn new(listening: Arc<OnceLock<SocketAddr>>, model: &str, key: Option<String>) -> Through {
        Through {
            listening,
            model: model.to_owned(),
            key,
            client: OnceLock::new(),
        }
    }
}

impl Embedder for Through {
    fn name(&self) -> &str {
        &self.model
    }

    fn embed(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        // Made on first use, on the blocking pool (a blocking client may not be made or
        // dropped on an async worker).
        let Some(mut address) = self.listening.get().copied() else {
            return Err(EmbedError("the gateway is not listening yet".into()));
        };
        if address.ip().is_unspecified() {
            address.set_ip(if address.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        let url = format!("http://{address}/v1/embeddings");
        let client = self.client.get_or_init(|| {
            reqwest::blocking::Client::builder()
                .timeout(TIMEOUT)
                .no_proxy()
                .build()
                .unwrap_or_default()
        });
        let mut request = client
            .post(&url)
            .json(&json!({"model": self.model, "input": text}));
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        let response = request
            .send()
            .map_err(|error| EmbedError(format!("{url}: {error}")))?;
        let status = response.status();
        let body: Value = response
            .json()
            .map_err(|error| EmbedError(format!("{url}: {error}")))?;
        if !status.is_success() {
            return Err(EmbedError(format!("{url}: {status}")));
        }
        let vector: Vec<f32> = body["data"][0]["embedding"]
            .as_array()
            .ok_or_else(|| EmbedError("no embedding in the answer".into()))?
            .iter()
            .filter_map(Value::as_f64)
            .map(|value| value as f32)
            .collect();
        let length = vector.iter().map(|value| value * value).sum::<f32>().sqrt();
        if vector.is_empty() || !length.is_normal() {
            return Err(EmbedError("an empty or zero embedding".into()));
        }
        Ok(vector.into_iter().map(|value| value / length).collect())
    }
}
