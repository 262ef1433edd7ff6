//! The embedded default config: what `switchyard serve` runs with no config file. It answers
//! with the built-in mock provider, so the gateway works with no provider key.

/// The defaults as YAML, the same text `switchyard serve --print-defaults` shows.
pub const DEFAULT_CONFIG: &str = r#"# Switchyard's embedded defaults.
server:
  listen: 127.0.0.1:4000
  body_limit_bytes: 33554432   # 32 MiB
  shutdown_grace_secs: 30
  connect_timeout_secs: 10
  header_read_timeout_secs: 30  # also the idle keep-alive timeout
  body_read_timeout_secs: 60
  max_body_bytes_in_flight: 1073741824   # 1 GiB of request bodies held at once: then 503
  max_connections: 10000
  max_header_bytes: 65536
  http2_keep_alive_secs: 20
  upstream_body_limit_bytes: 67108864    # 64 MiB: a larger whole answer is a 502
  upstream_event_limit_bytes: 16777216   # 16 MiB: a larger stream event ends the stream
cache:
  enabled: true                # repeated calls answered from memory (x-switchyard-cache: hit)
  backend: memory
  ttl_secs: 3600
models:
  - name: mock/echo            # OpenAI dialect upstream: echoes the last user message
    aliases: [mock]
    deployments:
      - provider: mock
        model: echo
  - name: mock/claude-echo     # Anthropic dialect upstream, same behaviour
    deployments:
      - provider: mock_anthropic
        model: echo
"#;
