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

/// What a vendor's Chat Completions refuses or needs that the canonical encoding would not
/// otherwise do. Only requests encoded by the gateway (translated from another dialect, or
/// changed by a stage) are concerned: a client's own body is forwarded as it wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quirks {
    /// Text parts may carry Anthropic's `cache_control` (OpenRouter passes it on to
    /// Anthropic models); elsewhere it is left out, as vendors that check fields refuse it.
    pub cache_control: bool,
    /// Tool-call ids must be exactly nine letters and digits (Mistral).
    pub nine_char_tool_ids: bool,
    /// The output limit goes in `max_completion_tokens` (OpenAI's current models refuse
    /// `max_tokens`).
    pub max_completion_tokens: bool,
}

impl Default for Quirks {
    fn default() -> Quirks {
        Quirks {
            cache_control: true,
            nine_char_tool_ids: false,
            max_completion_tokens: false,
        }
    }
}

/// The quirks of the provider called `name` in config (`openai_compatible` and unknown names:
/// none, as any server may be a proxy that understands everything).
pub fn quirks(name: &str) -> Quirks {
    match name {
        "openai_compatible" | "openrouter" | "mock" => Quirks::default(),
        "openai" | "azure" | "mock_azure" => Quirks {
            cache_control: false,
            nine_char_tool_ids: false,
            max_completion_tokens: true,
        },
        "mistral" => Quirks {
            cache_control: false,
            nine_char_tool_ids: true,
            max_completion_tokens: false,
        },
        _ if preset(name).is_some() => Quirks {
            cache_control: false,
            ..Quirks::default()
        },
        _ => Quirks::default(),
    }
}

/// A tool-call id as Mistral takes it: nine letters and digits, the same for the same id (a
/// call and its result must still match).
pub fn nine_char_id(id: &str) -> String {
    if id.len() == 9 && id.bytes().all(|byte| byte.is_ascii_alphanumeric()) {
        return id.to_owned();
    }
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    // FNV-1a, 64 bits: stable across processes and versions (unlike the standard hasher).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (0..9)
        .map(|_| {
            let digit = (hash % 62) as usize;
            hash /= 62;
            char::from(ALPHABET[digit])
        })
        .collect()
}

/// The preset called `name`.
pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|preset| preset.name == name)
}
