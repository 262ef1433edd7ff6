//! The injection guard's transformer tier: each user or tool message read by a sentence
//! encoder of the MiniLM class (the semantic cache's, `cache/semantic/minilm.rs`) in windows of
//! the tokens it reads, each window's vector scored by a classifier trained on the injection
//! corpus (`switchyard_guard::head`); the message's score is its highest window's. Off by
//! default, and only in builds with the `semantic-cache` feature (the encoder); it runs on the
//! blocking pool, under the guards' time limit.

use std::path::Path;
use std::sync::Arc;

use switchyard_guard::head::Head;

/// The encoder and the classifier.
#[cfg(feature = "semantic-cache")]
pub struct Transformer {
    encoder: Arc<crate::cache::semantic::minilm::MiniLm>,
    head: Head,
    max_windows: usize,
}

/// The encoder and the classifier (none without the `semantic-cache` feature).
#[cfg(not(feature = "semantic-cache"))]
pub enum Transformer {}

impl std::fmt::Debug for Transformer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Transformer")
    }
}

impl Transformer {
    /// Loads the encoder in `model_dir` (once per process for the same folder: every policy
    /// and reload shares it) and the classifier in `head` (else the shipped one).
    pub fn load(
        model_dir: &Path,
        head: Option<&Path>,
        max_windows: usize,
    ) -> Result<Arc<Transformer>, String> {
        let head = match head {
            Some(path) => {
                let bytes =
                    std::fs::read(path).map_err(|error| format!("{}: {error}", path.display()))?;
                Head::from_bytes(&bytes).map_err(|error| format!("{}: {error}", path.display()))?
            }
            None => Head::shipped().map_err(|error| error.to_string())?,
        };
        Transformer::with_head(model_dir, head, max_windows)
    }

    #[cfg(feature = "semantic-cache")]
    fn with_head(
        model_dir: &Path,
        head: Head,
        max_windows: usize,
    ) -> Result<Arc<Transformer>, String> {
        let encoder = encoder(model_dir)?;
        if encoder.dimensions() != head.dimensions() {
            return Err(format!(
                "the classifier reads vectors of {} dimensions; the encoder in {} makes {}",
                head.dimensions(),
                model_dir.display(),
                encoder.dimensions()
            ));
        }
        Ok(Arc::new(Transformer {
            encoder,
            head,
            max_windows: max_windows.max(1),
        }))
    }

    #[cfg(not(feature = "semantic-cache"))]
    fn with_head(_: &Path, _: Head, _: usize) -> Result<Arc<Transformer>, String> {
        Err(
            "this build has no local encoder: build the gateway with the semantic-cache feature"
                .to_owned(),
        )
    }

    /// How likely `text` is an injection (its highest window's score).
    pub fn score(&self, text: &str) -> Result<f32, String> {
        #[cfg(feature = "semantic-cache")]
        {
            let vectors = self
                .encoder
                .embed_windows(text, self.max_windows)
                .map_err(|error| error.to_string())?;
            Ok(vectors
                .iter()
                .map(|vector| self.head.score(vector))
                .fold(0.0, f32::max))
        }
        #[cfg(not(feature = "semantic-cache"))]
        {
            let _ = text;
            match *self {}
        }
    }
}

/// The encoder in `folder`, loaded once per process.
#[cfg(feature = "semantic-cache")]
fn encoder(folder: &Path) -> Result<Arc<crate::cache::semantic::minilm::MiniLm>, String> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    type Loaded = Mutex<HashMap<std::path::PathBuf, Arc<crate::cache::semantic::minilm::MiniLm>>>;
    static LOADED: OnceLock<Loaded> = OnceLock::new();
    let loaded = LOADED.get_or_init(Loaded::default);
    let mut loaded = loaded
        .lock()
        .map_err(|_| "the encoder cache is poisoned".to_owned())?;
    if let Some(encoder) = loaded.get(folder) {
        return Ok(Arc::clone(encoder));
    }
    let encoder = Arc::new(
        crate::cache::semantic::minilm::MiniLm::load(folder)
            .map_err(|error| format!("{}: {error}", folder.display()))?,
    );
    loaded.insert(folder.to_path_buf(), Arc::clone(&encoder));
    Ok(encoder)
}
