//! Presets for OpenAI-compatible vendors: where they live and how they authenticate, so a
//! config can say `provider: groq` and nothing more.

/// A vendor that speaks Chat Completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// The name used in config.
    pub name: &'static str,
    /// The default API base, `/chat/completions` is appended.
    pub api_base: &'static str,
    /// Whether the vendor needs an API key (local servers do not).
    pub needs_key: bool,
}

/// Every known preset.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "openai",
        api_base: "https://api.openai.com/v1",
        needs_key: true,
    },
    Preset {
        name: "groq",
        api_base: "https://api.groq.com/openai/v1",
        needs_key: true,
    },
    Preset {
        name: "mistral",
        api_base: "https://api.mistral.ai/v1",
        needs_key: true,
    },
    Preset {
        name: "deepseek",
        api_base: "https://api.deepseek.com/v1",
        needs_key: true,
    },
    Preset {
        name: "together",
        api_base: "https://api.together.xyz/v1",
        needs_key: true,
    },
    Preset {
        name: "openrouter",
        api_base: "https://openrouter.ai/api/v1",
        needs_key: true,
    },
    Preset {
        name: "fireworks",
        api_base: "https://api.fireworks.ai/inference/v1",
        needs_key: true,
    },
    Preset {
        name: "xai",
        api_base: "https://api.x.ai/v1",
        needs_key: true,
    },
    Preset {
        name: "perplexity",
        api_base: "https://api.perplexity.ai",
        needs_key: true,
    },
    Preset {
        name: "cerebras",
        api_base: "https://api.cerebras.ai/v1",
        needs_key: true,
    },
    Preset {
        name: "vllm",
        api_base: "http://localhost:8000/v1",
        needs_key: false,
    },
    Preset {
        name: "ollama",
        api_base: "http://localhost:11434/v1",
        needs_key: false,
    },
    Preset {
        name: "lmstudio",
        api_base: "http://localhost:1234/v1",
        needs_key: false,
    },
];

/// The preset called `name`.
pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|preset| preset.name == name)
}
