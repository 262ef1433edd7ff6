//! Active health checks: for groups that ask for them, every deployment gets a one-token
//! request at the configured interval. A passing check returns a cooling deployment to
//! rotation at once; a failing one counts like a failed call. Runs on one worker.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use switchyard_types::{ChatRequest, Message, Role};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::runtime::Runtime;

/// How often the loop looks for checks that are due.
const TICK: Duration = Duration::from_millis(250);

/// The longest a check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks deployments until `stop` turns true, always against the current runtime.
pub async fn run(current: Arc<ArcSwap<Runtime>>, mut stop: watch::Receiver<bool>) {
    let mut last: HashMap<String, Instant> = HashMap::new();
    loop {
        tokio::select! {
            () = tokio::time::sleep(TICK) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        let runtime = current.load_full();
        for group in &runtime.groups {
            let Some(interval) = group.health_check_interval else {
                continue;
            };
            for deployment in &group.deployments {
                let now = Instant::now();
                if last
                    .get(&deployment.key)
                    .is_some_and(|checked| now.duration_since(*checked) < interval)
                {
                    continue;
                }
                last.insert(deployment.key.clone(), now);
                let request = probe_request(&group.name);
                let limits = deployment.upstream.limits(now, Some(CHECK_TIMEOUT));
                let upstream = &deployment.upstream;
                let call = async {
                    let body = upstream.encode(&request)?;
                    upstream
                        .call(
                            deployment.client(&runtime.client),
                            &request,
                            body,
                            &[],
                            limits,
                        )
                        .await
                };
                let healthy = match call.await {
                    Ok(_) => true,
                    Err(error) => {
                        warn!(deployment = %deployment.label, error = %error.message, "Health check failed");
                        // A refusal of the request itself says nothing about the deployment.
                        !error.retryable()
                    }
                };
                debug!(deployment = %deployment.label, healthy, "Health check");
                if let Some(until) = deployment.health.record_check(healthy, Instant::now()) {
                    runtime.health.share_cooldown(&deployment.key, until);
                }
            }
        }
    }
}

/// The smallest useful request: one short user message, one token back.
fn probe_request(group: &str) -> ChatRequest {
    ChatRequest {
        model: group.to_owned(),
        messages: vec![Message::text_message(Role::User, "ping")],
        max_tokens: Some(1),
        ..ChatRequest::default()
    }
}
