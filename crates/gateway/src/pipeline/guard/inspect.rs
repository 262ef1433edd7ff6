//! The input guards' work on a request: injection detection, then secrets and personal data
//! found and counted, and the request rewritten when they say so. A request whose guarded
//! text is larger than `guards.offload_bytes` is inspected on the blocking pool (a copy of
//! it, under `guards.timeout_ms`) so that a megabyte of agent context does not stall every
//! other call on the worker; a guard that fails or runs out of time refuses the call (503
//! `guard_unavailable`) or, with `guards.on_error: open`, lets it go on unguarded and says so
//! on its records.

use std::collections::BTreeMap;
use std::sync::Arc;

use switchyard_guard::{Finding, Operator, Vault};
use switchyard_types::{ApiError, ChatRequest, ContentPart, ErrorKind, Origin, Role};

use super::{RestoreTap, Verdict};
use crate::guards::{Guards, PiiAction, SecretAction};
use crate::pipeline::Ctx;

/// What inspecting a request found.
#[derive(Debug, Default)]
struct Scan {
    verdicts: Vec<Verdict>,
    refusal: Option<ApiError>,
    rewrite_secrets: bool,
    rewrite_pii: bool,
    /// A guard could not decide (the transformer tier failed): the policy's failure.
    failed: Option<String>,
}

impl Scan {
    fn rewrites(&self) -> bool {
        self.refusal.is_none() && (self.rewrite_secrets || self.rewrite_pii)
    }
}

fn pii_action_name(action: PiiAction) -> &'static str {
    match action {
        PiiAction::Flag => "flag",
        PiiAction::Operate(Operator::Redact) => "redact",
        PiiAction::Operate(Operator::Mask) => "mask",
        PiiAction::Operate(Operator::Label) => "label",
        PiiAction::Operate(Operator::Hash) => "hash",
        PiiAction::Operate(Operator::Tokenize) => "tokenize",
    }
}

fn secret_action_name(action: SecretAction) -> &'static str {
    match action {
        SecretAction::Block => "block",
        SecretAction::Redact => "redact",
        SecretAction::Flag => "flag",
    }
}

/// Every text of the request the guards read: message text (thinking is left alone: its
/// signature covers it) and tool-call arguments (JSON).
fn for_each_text(request: &ChatRequest, mut visit: impl FnMut(&str)) {
    for message in &request.messages {
        for part in &message.content {
            if let ContentPart::Text { text, .. } = part {
                visit(text);
            }
        }
        for call in &message.tool_calls {
            visit(&call.arguments);
        }
    }
}

fn for_each_text_mut(request: &mut ChatRequest, mut visit: impl FnMut(&mut String)) {
    for message in &mut request.messages {
        for part in &mut message.content {
            if let ContentPart::Text { text, .. } = part {
                visit(text);
            }
        }
        for call in &mut message.tool_calls {
            visit(&mut call.arguments);
        }
    }
}

fn count(findings: &[Finding], counts: &mut BTreeMap<Arc<str>, u32>) {
    for finding in findings {
        *counts.entry(Arc::clone(&finding.entity)).or_insert(0) += 1;
    }
}

/// The bytes of text the guards read in `request`.
fn guarded_bytes(request: &ChatRequest) -> usize {
    let mut bytes = 0;
    for_each_text(request, |text| bytes += text.len());
    bytes
}

/// Injection detection on what users and tools wrote (the system prompt is the operator's):
/// the highest score over the messages, counted at the threshold, and refused when it blocks.
fn injection(guards: &Guards, request: &ChatRequest, scan: &mut Scan) {
    let Some((detector, blocks, threshold)) = &guards.injection else {
        return;
    };
    let texts: Vec<String> = request
        .messages
        .iter()
        .filter(|message| matches!(message.role, Role::User | Role::Tool))
        .map(|message| message.text())
        .collect();
    let mut best = texts
        .iter()
        .map(|text| detector.detect(text))
        .max_by(|a, b| a.score.total_cmp(&b.score));
    // The transformer tier last, and only when the cheaper tiers did not decide.
    if let Some(transformer) = &guards.transformer
        && best.as_ref().is_none_or(|best| best.score < *threshold)
    {
        for text in &texts {
            match transformer.score(text) {
                Ok(score) if best.as_ref().is_none_or(|best| score > best.score) => {
                    best = Some(switchyard_guard::injection::Detection {
                        score,
                        tier: "transformer",
                        families: vec!["learned"],
                    });
                }
                Ok(_) => {}
                Err(error) => {
                    scan.failed = Some(error);
                    return;
                }
            }
        }
    }
    let Some(detection) = best.filter(|detection| detection.score >= *threshold) else {
        return;
    };
    scan.verdicts.push(Verdict {
        detail: Some(Arc::from(format!(
            "score {:.2}, tier {}",
            detection.score, detection.tier
        ))),
        entity: Arc::from("PROMPT_INJECTION"),
        count: 1,
        action: if *blocks { "block" } else { "flag" },
    });
    if *blocks {
        scan.refusal = Some(
            ApiError::new(
                ErrorKind::InvalidRequest,
                Origin::Client,
                format!(
                    "The request looks like a prompt injection (score {:.2}, {} tier: {}); it \
                     was not sent to the model",
                    detection.score,
                    detection.tier,
                    detection.families.join(", ")
                ),
            )
            .with_code("prompt_injection_detected"),
        );
    }
}

/// Everything the input guards find in `request`, and what they decide, without changing it.
fn scan(guards: &Guards, request: &ChatRequest) -> Scan {
    let mut scan = Scan::default();
    injection(guards, request, &mut scan);
    if scan.refusal.is_some() || (guards.pii.is_none() && guards.secrets.is_none()) {
        return scan;
    }
    // Found first, on the request as it came: one with nothing to change stays untouched.
    let (mut secrets, mut pii) = (BTreeMap::new(), BTreeMap::new());
    for_each_text(request, |text| {
        if let Some((scanner, _)) = &guards.secrets {
            count(&scanner.scan(text), &mut secrets);
        }
        if let Some((scanner, _)) = &guards.pii {
            count(&scanner.scan(text), &mut pii);
        }
    });
    let secret_action = guards.secrets.as_ref().map(|(_, action)| *action);
    let pii_action = guards.pii.as_ref().map(|(_, action)| *action);
    for (entity, count) in &secrets {
        scan.verdicts.push(Verdict {
            detail: None,
            entity: Arc::clone(entity),
            count: *count,
            action: secret_action.map_or("flag", secret_action_name),
        });
    }
    for (entity, count) in &pii {
        scan.verdicts.push(Verdict {
            detail: None,
            entity: Arc::clone(entity),
            count: *count,
            action: pii_action.map_or("flag", pii_action_name),
        });
    }
    if !secrets.is_empty() && secret_action == Some(SecretAction::Block) {
        let kinds: Vec<&str> = secrets.keys().map(|kind| &**kind).collect();
        scan.refusal = Some(
            ApiError::new(
                ErrorKind::InvalidRequest,
                Origin::Client,
                format!(
                    "The request holds what looks like a secret ({}); it was not sent to the \
                     model. Remove it, or ask an admin about guards.secrets",
                    kinds.join(", ")
                ),
            )
            .with_code("secret_detected"),
        );
        return scan;
    }
    scan.rewrite_secrets = !secrets.is_empty() && secret_action == Some(SecretAction::Redact);
    scan.rewrite_pii = !pii.is_empty() && matches!(pii_action, Some(PiiAction::Operate(_)));
    scan
}

/// Rewrites one text: secrets replaced by their kind, then personal data by its operator.
fn rewrite(guards: &Guards, text: &mut String, secrets: bool, vault: &mut Vault) {
    if secrets && let Some((scanner, _)) = &guards.secrets {
        let found = scanner.scan(text);
        if !found.is_empty() {
            *text = switchyard_guard::vault::apply(
                text,
                &found,
                Operator::Label,
                vault,
                &guards.hash_key,
            );
        }
    }
    if let Some((scanner, PiiAction::Operate(operator))) = &guards.pii {
        let found = scanner.scan(text);
        if !found.is_empty() {
            *text =
                switchyard_guard::vault::apply(text, &found, *operator, vault, &guards.hash_key);
        }
    }
}

/// Rewrites every text of `request` as `scan` decided; the vault of its placeholders.
fn rewrite_all(guards: &Guards, request: &mut ChatRequest, scan: &Scan) -> Vault {
    let mut vault = Vault::default();
    for_each_text_mut(request, |text| {
        rewrite(guards, text, scan.rewrite_secrets, &mut vault)
    });
    vault
}

/// Runs the input guards on `ctx`'s chat request.
pub(super) async fn run(guards: &Arc<Guards>, ctx: &mut Ctx) -> Result<(), ApiError> {
    if guards.injection.is_none() && guards.pii.is_none() && guards.secrets.is_none() {
        return Ok(());
    }
    let Some(size) = ctx.chat().map(guarded_bytes) else {
        return Ok(());
    };
    // The transformer tier is heavy CPU work: never on the worker.
    let (scan, vault) = if size <= guards.offload_bytes && guards.transformer.is_none() {
        let Some(request) = ctx.chat() else {
            return Ok(());
        };
        let scan = scan(guards, request);
        let vault = match ctx.chat_mut() {
            Some(request) if scan.rewrites() => Some(rewrite_all(guards, request, &scan)),
            _ => None,
        };
        (scan, vault)
    } else {
        let Some(mut copy) = ctx.chat().cloned() else {
            return Ok(());
        };
        let shared = Arc::clone(guards);
        let task = tokio::task::spawn_blocking(move || {
            let scan = scan(&shared, &copy);
            let vault = scan
                .rewrites()
                .then(|| rewrite_all(&shared, &mut copy, &scan));
            (scan, vault, copy)
        });
        match tokio::time::timeout(guards.timeout, task).await {
            Ok(Ok((scan, vault, copy))) => {
                if vault.is_some()
                    && let Some(request) = ctx.chat_mut()
                {
                    *request = copy;
                }
                (scan, vault)
            }
            Ok(Err(_)) | Err(_) => return failed(guards, ctx),
        }
    };
    if let Some(error) = &scan.failed {
        tracing::warn!(request_id = %ctx.request_id, %error, "An input guard failed");
        return failed(guards, ctx);
    }
    ctx.verdicts.extend(scan.verdicts);
    if let Some(refusal) = scan.refusal {
        return Err(refusal);
    }
    if let Some(vault) = vault.filter(|vault| !vault.is_empty()) {
        ctx.vault = Some(Box::new(vault));
        ctx.taps.push(Box::new(RestoreTap::default()));
    }
    Ok(())
}

/// The input guards failed or ran out of time: the call is refused, or goes on unguarded when
/// the policy fails open (on its records either way).
fn failed(guards: &Guards, ctx: &mut Ctx) -> Result<(), ApiError> {
    ctx.verdicts.push(Verdict {
        detail: None,
        entity: Arc::from("guards"),
        count: 1,
        action: if guards.fail_open {
            "error_open"
        } else {
            "error_closed"
        },
    });
    if guards.fail_open {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorKind::Unavailable,
        Origin::Internal,
        format!(
            "The guards could not inspect the request within {} ms; it was not sent to the model",
            guards.timeout.as_millis()
        ),
    )
    .with_code("guard_unavailable"))
}
