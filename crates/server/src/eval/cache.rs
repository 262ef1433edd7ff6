//! `switchyard eval cache`: what the exact cache costs and whether a lookup can tell tenants
//! apart by its time. Fills a cache (in memory, or in Redis with `--redis`) with N answers of
//! a realistic size under one tenant, then times, per size: the key of a typical request; a
//! lookup that hits; a lookup of a prompt another tenant holds (a miss, since the tenant is
//! part of the key); a lookup of a prompt nobody asked (a miss).

use std::collections::HashMap;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::json;
use switchyard_gateway::background::Background;
use switchyard_gateway::cache::entry::{Entry, FORMAT, Stored};
use switchyard_gateway::cache::key::{self, Key, Scope};
use switchyard_gateway::cache::{Cache, Kept};
use switchyard_gateway::config::validate;
use switchyard_providers::openai;
use switchyard_types::{ChatRequest, ChatResponse, Choice, ContentPart, Usage};

/// A conversation as agents send them: a system prompt, a few turns, the question last.
fn request(index: usize) -> ChatRequest {
    let body = json!({
        "model": "gpt",
        "temperature": 0.2,
        "messages": [
            {"role": "system", "content": "You are a careful assistant for the support team of a bank. Answer briefly and cite the policy section you rely on."},
            {"role": "user", "content": "A customer asks about the fee for an international transfer."},
            {"role": "assistant", "content": "International transfers cost 0.5% with a minimum of 3 EUR (policy 4.2)."},
            {"role": "user", "content": format!("And for transfer number {index} of 2500 EUR to account {index:08} in Norway, what is the fee and when does it arrive?")}
        ]
    });
    #[expect(clippy::expect_used, reason = "a fixed, valid request")]
    openai::request::decode(body.to_string().as_bytes()).expect("a valid request")
}

/// An answer of about 800 bytes.
fn answer(index: usize) -> ChatResponse {
    let mut choice = Choice::new(0);
    choice.content = vec![ContentPart::text(format!(
        "Transfer {index}: the fee is 12.50 EUR (0.5% of 2500 EUR, above the 3 EUR minimum, policy 4.2). {}",
        "It arrives within one to two business days for SEPA-zone destinations such as Norway; the customer sees the debit at once and the credit when the receiving bank books it. ".repeat(4)
    ))];
    ChatResponse {
        id: format!("chatcmpl-{index}"),
        model: "gpt-test".into(),
        created: 1_700_000_000,
        choices: vec![choice],
        usage: Usage {
            prompt_tokens: 120,
            completion_tokens: 160,
            ..Usage::default()
        },
        system_fingerprint: None,
        service_tier: None,
    }
}

fn key_of(tenant: &str, request: &ChatRequest) -> Key {
    key::of(
        &Scope {
            tenant,
            group: "gpt",
            namespace: None,
            policy: "",
            placeholders: &[],
            raw: None,
        },
        request,
    )
}

/// The 50th and 99th percentiles.
fn percentiles(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort_unstable();
    let at = |share: f64| {
        let index = ((times.len() as f64 - 1.0) * share).round() as usize;
        times.get(index).copied().unwrap_or_default()
    };
    (at(0.50), at(0.99))
}

fn us(time: Duration) -> f64 {
    time.as_secs_f64() * 1e6
}

/// Runs the evaluation for each of `sizes`, timing `lookups` lookups of each kind.
pub fn run(sizes: &[usize], lookups: usize, redis: Option<&str>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start a runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let mut out = std::io::stdout().lock();
        let yaml = match redis {
            Some(url) => format!(
                "cache:\n  enabled: true\n  backend: redis\n  redis_timeout_ms: 1000\nredis:\n  url: \"{url}\"\n  prefix: \"sy-eval-{}\"\n",
                std::process::id()
            ),
            None => "cache:\n  enabled: true\n  max_bytes: 4294967296\n".to_owned(),
        };
        let config = match validate(&yaml, &HashMap::<String, String>::new()) {
            Ok(config) => config,
            Err(errors) => {
                eprintln!("invalid config: {errors:?}");
                return ExitCode::FAILURE;
            }
        };
        let background = Background::on(tokio::runtime::Handle::current());
        let backend = if redis.is_some() { "redis" } else { "memory" };
        let _ = writeln!(out, "exact cache, {backend} backend, answers of ~800 bytes, {lookups} lookups of each kind");
        let requests: Vec<ChatRequest> = (0..lookups).map(request).collect();
        let started = Instant::now();
        for request in &requests {
            std::hint::black_box(key_of("team:a", request));
        }
        let _ = writeln!(
            out,
            "key of a 4-message request (~600 bytes): {:.2} us each",
            us(started.elapsed()) / lookups as f64
        );
        for &size in sizes {
            let cache = match Cache::start(
                &config,
                &switchyard_gateway::Shared::new(background.clone()),
            ) {
                Ok(cache) => cache,
                Err(error) => {
                    eprintln!("cannot start the cache: {error}");
                    return ExitCode::FAILURE;
                }
            };
            if redis.is_some() {
                // The connection is made in the background.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let started = Instant::now();
            for index in 0..size {
                let entry = Entry {
                    format: FORMAT,
                    stored_at: 0,
                    expires_at: 0,
                    tenant: "team:a".into(),
                    team: Some("a".into()),
                    group: "gpt".into(),
                    namespace: None,
                    tags: Vec::new(),
                    cost_nanos: 2_000_000,
                    answer: Stored::of(&answer(index)),
                    relayed: None,
                };
                let key = key_of("team:a", &request(index));
                if cache.insert(key, entry, Duration::from_secs(3600)).await != Kept::Stored {
                    eprintln!("a write failed");
                    return ExitCode::FAILURE;
                }
            }
            let filled = started.elapsed();
            let held = cache.stats().await.ok();
            let mut timings: Vec<(&str, Vec<Duration>, usize)> = Vec::new();
            for (name, tenant, offset) in [
                ("hit (own tenant's prompt)", "team:a", 0),
                ("miss (another tenant's prompt)", "team:b", 0),
                ("miss (a prompt nobody asked)", "team:a", size),
            ] {
                let keys: Vec<Key> = (0..lookups)
                    .map(|index| {
                        let index = (index * 7919) % size + offset;
                        key_of(tenant, &request(index))
                    })
                    .collect();
                let mut times = Vec::with_capacity(lookups);
                let mut found = 0;
                for key in &keys {
                    let started = Instant::now();
                    let entry = cache.get(key, None).await;
                    times.push(started.elapsed());
                    found += usize::from(entry.is_some());
                }
                timings.push((name, times, found));
            }
            let _ = writeln!(
            out,
                "\n{size} entries (filled in {:.1} s{})",
                filled.as_secs_f64(),
                held.and_then(|held| held.bytes)
                    .map(|bytes| format!(", {:.1} MiB held", bytes as f64 / 1048576.0))
                    .unwrap_or_default()
            );
            for (name, times, found) in timings {
                let (p50, p99) = percentiles(times);
                let _ = writeln!(
            out,
                    "  {name:<32} p50 {:>7.2} us  p99 {:>7.2} us  found {found}/{lookups}",
                    us(p50),
                    us(p99)
                );
            }
            if let Err(error) = cache
                .invalidate(&switchyard_gateway::cache::Selector {
                    team: None,
                    what: switchyard_gateway::cache::What::All,
                })
                .await
            {
                eprintln!("cannot empty the cache: {error}");
            }
        }
        ExitCode::SUCCESS
    })
}
