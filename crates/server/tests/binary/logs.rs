//! The `switchyard` binary's logs: written off the request path, whole, and all of them out
//! by the time the process exits.

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support;

async fn chat(
    client: &reqwest::Client,
    url: &str,
    request_id: &str,
    model: &str,
) -> Result<u16, String> {
    let response = client
        .post(format!("{url}/v1/chat/completions"))
        .header("x-request-id", request_id)
        .timeout(Duration::from_secs(5))
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .map_err(|error| error.to_string())?;
    Ok(response.status().as_u16())
}

/// A log sink that stops reading (a stuck pipe to a collector) must not stall requests or the
/// exit: a pipe holds 64 KiB, about 300 request lines, and these requests write several times
/// that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_sink_that_stops_reading_does_not_stall_requests() {
    // stderr is a pipe that nobody reads.
    let (_mock, mut gateway, client) =
        support::start("logs-stuck", &[("RUST_LOG", "info")], Stdio::piped()).await;
    let _unread = gateway.child.stderr.take().expect("piped stderr");
    for n in 0..1500 {
        let served = chat(&client, &gateway.url, &format!("req_{n}"), "m").await;
        // Blocking on the full pipe shows up as a timeout here.
        assert_eq!(served, Ok(200), "request {n} with the log pipe full");
    }
    // Nor does it keep the gateway from exiting.
    gateway.signal("TERM");
    let exited = gateway.wait_exit().await;
    assert!(exited.expect("exited after SIGTERM").success());
}

/// A model name a client made up to look like a second log line.
const FORGED: &str = "m\\n2026-11-27T21:12:59.637342Z  INFO forged";

/// `FORGED` as the client sends it (the escape turned into a real newline).
fn forged_model() -> String {
    serde_json::from_str(&format!("\"{FORGED}\"")).expect("JSON text")
}

/// Runs 200 requests and one with a forged model name through a gateway logging in `format`,
/// stops it with SIGTERM, and returns everything it wrote to stderr.
async fn logged(format: &str) -> String {
    let (_mock, mut gateway, client) = support::start(
        &format!("logs-{format}"),
        &[("RUST_LOG", "info"), ("SWITCHYARD_LOG_FORMAT", format)],
        Stdio::piped(),
    )
    .await;
    let mut stderr = gateway.child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).expect("stderr is text");
        text
    });
    for n in 0..200 {
        let served = chat(&client, &gateway.url, &format!("req_line_{n}"), "m").await;
        assert_eq!(served, Ok(200));
    }
    let forged = forged_model();
    assert_eq!(
        chat(&client, &gateway.url, "req_forged", &forged).await,
        Ok(404)
    );
    gateway.signal("TERM");
    let exited = gateway.wait_exit().await;
    assert!(exited.expect("exited after SIGTERM").success());
    let text = reader.join().expect("reader");
    assert!(!text.contains('\u{1b}'), "colour codes in a piped log");
    text
}

/// Every request line is written whole and once, a client cannot forge a line, and what was
/// queued is written out before the process exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_have_every_request_line_and_no_forged_one() {
    let text = logged("text").await;
    for line in text.lines() {
        assert!(
            line.starts_with("20") && line.as_bytes().get(26) == Some(&b'Z'),
            "a line that does not start with a timestamp: {line:?}"
        );
    }
    assert!(
        !text.lines().any(|line| line.starts_with(&FORGED[3..])),
        "a client forged a line: {text}"
    );
    let completed: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("Request completed"))
        .collect();
    assert_eq!(completed.len(), 200);
    for n in 0..200 {
        let id = format!("request_id=req_line_{n} ");
        assert_eq!(
            completed.iter().filter(|line| line.contains(&id)).count(),
            1,
            "request {n} logged other than once"
        );
    }
    let rejected: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("request_id=req_forged"))
        .collect();
    assert_eq!(rejected.len(), 1, "{text}");
    assert!(rejected[0].contains(FORGED), "{}", rejected[0]);
    assert!(
        text.lines()
            .last()
            .is_some_and(|line| line.ends_with("Stopped")),
        "the last line is not the exit line: {:?}",
        text.lines().last()
    );
}

/// In JSON every line is one object; the forged model name is a value like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line() {
    let text = logged("json").await;
    let lines: Vec<Value> = text
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|error| unreachable!("{error}: {line}"))
        })
        .collect();
    let completed: Vec<&Value> = lines
        .iter()
        .filter(|line| line["fields"]["message"] == "Request completed")
        .collect();
    assert_eq!(completed.len(), 200);
    assert_eq!(completed[0]["level"], "INFO");
    assert_eq!(
        completed[0]["target"],
        "switchyard_gateway::pipeline::finish"
    );
    assert!(completed[0]["fields"]["prompt_tokens"].is_u64());
    let rejected: Vec<&Value> = lines
        .iter()
        .filter(|line| line["fields"]["request_id"] == "req_forged")
        .collect();
    assert_eq!(rejected.len(), 1);
    let forged = forged_model();
    assert!(
        rejected[0]["fields"]["error"]
            .as_str()
            .is_some_and(|error| error.contains(&forged)),
        "{}",
        rejected[0]
    );
    assert_eq!(
        lines.last().map(|line| &line["fields"]["message"]),
        Some(&json!("Stopped"))
    );
}
