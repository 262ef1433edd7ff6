//! The guards on a chat call. Before the model: personal data and secrets in the request's
//! messages (every role, tool results included) and tool-call arguments are found and dealt
//! with as `guards` says: a secret refuses the call or is replaced by its kind; personal data
//! is redacted, masked, labelled, hashed or tokenized, or only counted. A request with nothing
//! to change is left as the client wrote it (its bytes still go upstream as they came). After:
//! placeholders in the answer get their values back, in a whole answer here and in a stream by
//! the tap this puts on the call. The output guards read the model's own text (whole, or a
//! stream held back by a short tail) for secrets, personal data, image links, banned terms and
//! copies of the system prompt or its canary (which the input side adds to the system prompt
//! when asked). What was found goes on the call's records as counts per entity, never the
//! values.

use std::collections::HashMap;
use std::sync::Arc;

use switchyard_guard::leak::Leaks;
use switchyard_guard::{Category, Finding, Operator, Restorer, Scanner, Vault};
use switchyard_types::{
    ApiError, ContentPart, Delta, ErrorKind, Origin, ResponseFormat, Role, StreamEvent,
};

mod inspect;
mod relayed;
mod structured;

use super::hooks::{RelayTap, Step, Tap};
use super::{Answer, Ctx, Whole};
use crate::guards::{Guards, OutputAction};
use crate::runtime::Runtime;

/// What a guard found in a call and what it did: an entity, how many times, which action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The entity (`EMAIL`, `OPENAI_KEY`).
    pub entity: Arc<str>,
    /// How many were found.
    pub count: u32,
    /// What was done (`tokenize`, `redact`, `block`, `flag`, …).
    pub action: &'static str,
    /// What else the guard reports, never a value: the injection score and the tier that
    /// fired (`score 0.93, tier model`).
    pub detail: Option<Arc<str>>,
}

/// The guards a call runs under: the policy its key (else its team) names, else its group's,
/// else the default. A policy name nothing defines falls back to the default (and says so).
fn select(runtime: &Runtime, ctx: &Ctx) -> Option<Arc<Guards>> {
    let name = ctx
        .principal
        .as_deref()
        .and_then(|principal| principal.guard_policy.as_deref())
        .or_else(|| {
            ctx.group
                .as_deref()
                .and_then(|group| group.guard_policy.as_deref())
        });
    match name.map(|name| (name, runtime.guard_policies.get(name))) {
        Some((_, Some(policy))) => policy.clone(),
        Some((name, None)) => {
            tracing::warn!(
                policy = %switchyard_types::clip(name, 64),
                request_id = %ctx.request_id,
                "No such guard policy; the default guards apply"
            );
            runtime.guards.clone()
        }
        None => runtime.guards.clone(),
    }
}

/// Runs the input guards on `ctx`'s chat request.
pub(super) async fn input(runtime: &Runtime, ctx: &mut Ctx) -> Result<(), ApiError> {
    if ctx.guards_off {
        // Only for keys an admin granted it; without keys, nobody has.
        let granted = ctx
            .principal
            .as_deref()
            .is_some_and(|principal| principal.guards_opt_out);
        if !granted {
            return Err(ApiError::new(
                ErrorKind::PermissionDenied,
                Origin::Client,
                "This key may not turn the guards off (x-switchyard-guards: off needs an \
                 admin's guards_opt_out grant)",
            )
            .with_code("guards_opt_out_not_granted"));
        }
        ctx.verdicts.push(Verdict {
            detail: None,
            entity: Arc::from("guards"),
            count: 1,
            action: "off_by_request",
        });
        return Ok(());
    }
    let Some(guards) = select(runtime, ctx) else {
        return Ok(());
    };
    ctx.guards = Some(Arc::clone(&guards));
    if ctx.chat().is_none() {
        return Ok(());
    }
    // The output guards' tap goes first among taps: it reads the model's own text, before any
    // placeholder gets its value back.
    if let Some((_, actions)) = &guards.output {
        if actions.contains_key(&Category::Leak) {
            ctx.leaks = leaks(&guards, ctx).map(Arc::new);
        }
        ctx.taps.push(Box::new(OutputTap {
            guards: Arc::clone(&guards),
            leaks: ctx.leaks.clone(),
            json: asked_json(ctx),
            held: HashMap::new(),
            format: ctx.client_format,
        }));
    }
    inspect::run(&guards, ctx).await
}

/// What answers must not copy: the system and developer messages' word runs, and the canary
/// added to the last of them when the guards ask for one (`None`: no system prompt).
fn leaks(guards: &Guards, ctx: &mut Ctx) -> Option<Leaks> {
    let request = ctx.chat()?;
    let is_system = |role: &Role| matches!(role, Role::System | Role::Developer);
    let system: Vec<String> = request
        .messages
        .iter()
        .filter(|message| is_system(&message.role))
        .map(|message| message.text())
        .filter(|text| !text.trim().is_empty())
        .collect();
    if system.is_empty() {
        return None;
    }
    let canary = guards
        .canary
        .then(|| switchyard_guard::leak::canary(&guards.hash_key, &system.join("\n")));
    if let Some(canary) = &canary
        && let Some(request) = ctx.chat_mut()
        && let Some(message) = request
            .messages
            .iter_mut()
            .rev()
            .find(|message| is_system(&message.role))
    {
        let line = switchyard_guard::leak::canary_line(canary);
        match message
            .content
            .iter_mut()
            .rev()
            .find_map(|part| match part {
                ContentPart::Text { text, .. } => Some(text),
                _ => None,
            }) {
            Some(text) => text.push_str(&line),
            None => message.content.push(ContentPart::text(line.trim_start())),
        }
    }
    Some(Leaks::new(system.iter().map(String::as_str), canary))
}

/// What the output guards find in `text`: the scanner's findings and the leaks'.
fn find(scanner: &Scanner, leaks: Option<&Leaks>, text: &str) -> Vec<Finding> {
    let found = scanner.scan(text);
    match leaks {
        Some(leaks) => switchyard_guard::leak::merge(found, leaks.find(text)),
        None => found,
    }
}

/// The output guards on a whole answer (on the model's own text), then its placeholders get
/// their values back. A relayed answer (the upstream's body as written) is read for them and
/// goes out as written unless they change it.
pub(super) fn output(ctx: &mut Ctx, answer: &mut Answer) -> Result<(), ApiError> {
    if let Some(guards) = ctx.guards.clone()
        && let Some((scanner, actions)) = &guards.output
    {
        let leaks = ctx.leaks.clone();
        let check = Check {
            guards: &guards,
            scanner,
            actions,
            leaks: leaks.as_deref(),
        };
        match &mut *answer {
            Answer::Whole(Whole::Chat(response)) => {
                check.response(response, &mut ctx.verdicts);
            }
            Answer::Whole(Whole::Raw { body, .. }) => {
                let decoded = ctx.chat().map(|request| match ctx.client_format {
                    switchyard_types::WireFormat::OpenAi => {
                        switchyard_providers::openai::response::decode(body, request)
                    }
                    switchyard_types::WireFormat::Anthropic => {
                        switchyard_providers::anthropic::response::decode(body, request)
                    }
                });
                match decoded {
                    Some(Ok(mut response)) => {
                        // Kept decoded when changed, or when its JSON is checked next.
                        let structured = asked_json(ctx).is_some();
                        if check.response(&mut response, &mut ctx.verdicts) || structured {
                            *answer = Answer::Whole(Whole::Chat(response));
                        }
                    }
                    // An answer the guards cannot read does not go out unread (as when it is
                    // decoded on the way, the upstream's answer is refused).
                    Some(Err(error)) => return Err(error),
                    None => {}
                }
            }
            _ => {}
        }
    }
    let (Some(vault), Answer::Whole(Whole::Chat(response))) = (ctx.vault.as_deref(), answer) else {
        return Ok(());
    };
    for choice in &mut response.choices {
        for part in &mut choice.content {
            if let ContentPart::Text { text, .. } = part {
                *text = vault.restore(text, false).into_owned();
            }
        }
        for call in &mut choice.tool_calls {
            call.arguments = vault.restore(&call.arguments, true).into_owned();
        }
        if let Some(refusal) = &mut choice.refusal {
            *refusal = vault.restore(refusal, false).into_owned();
        }
    }
    Ok(())
}

/// The output guards' reading of a whole answer.
struct Check<'a> {
    guards: &'a Guards,
    scanner: &'a Scanner,
    actions: &'a HashMap<Category, OutputAction>,
    leaks: Option<&'a Leaks>,
}

impl Check<'_> {
    /// Redacts what the guards redact in each choice's text, tool-call arguments and refusal,
    /// and empties a choice they block (`content_filter`); whether anything changed.
    fn response(
        &self,
        response: &mut switchyard_types::ChatResponse,
        verdicts: &mut Vec<Verdict>,
    ) -> bool {
        let mut changed = false;
        for choice in &mut response.choices {
            let mut blocked = false;
            let mut check = |text: &mut String, verdicts: &mut Vec<Verdict>| {
                let found = find(self.scanner, self.leaks, text);
                if found.is_empty() {
                    return;
                }
                let mut redact = Vec::new();
                for finding in found {
                    let action = self.actions.get(&finding.category).copied();
                    note_output(verdicts, &finding, action);
                    match action {
                        Some(OutputAction::Block) => blocked = true,
                        Some(OutputAction::Redact) => redact.push(finding),
                        None => {}
                    }
                }
                if !redact.is_empty() {
                    changed = true;
                    *text = switchyard_guard::vault::apply(
                        text,
                        &redact,
                        Operator::Label,
                        &mut Vault::default(),
                        &self.guards.hash_key,
                    );
                }
            };
            for part in &mut choice.content {
                if let ContentPart::Text { text, .. } = part {
                    check(text, verdicts);
                }
            }
            for call in &mut choice.tool_calls {
                check(&mut call.arguments, verdicts);
            }
            if let Some(refusal) = &mut choice.refusal {
                check(refusal, verdicts);
            }
            if blocked {
                changed = true;
                choice.content.clear();
                choice.tool_calls.clear();
                choice.refusal = None;
                choice.finish_reason = switchyard_types::FinishReason::ContentFilter;
            }
        }
        changed
    }
}

/// The JSON an answer was asked to be in, when the guards check it: the format and whether
/// a failure blocks.
fn asked_json(ctx: &Ctx) -> Option<(ResponseFormat, bool)> {
    let blocks = ctx.guards.as_ref()?.json_schema?;
    let format = ctx.chat()?.response_format.clone()?;
    (format != ResponseFormat::Text).then_some((format, blocks))
}

/// Notes a structured answer that is not what was asked, and says whether it blocks.
fn note_structured(verdicts: &mut Vec<Verdict>, blocks: bool) {
    verdicts.push(Verdict {
        detail: None,
        entity: Arc::from("JSON_SCHEMA"),
        count: 1,
        action: if blocks {
            "output_block"
        } else {
            "output_flag"
        },
    });
}

/// A whole answer to a request that asked for JSON, checked against what it asked: counted,
/// or refused (502 `invalid_structured_output`, saying where the answer fails and never what
/// it holds). Choices that called tools, refused, or were filtered are not checked.
pub(super) fn structured(ctx: &mut Ctx, answer: &Answer) -> Result<(), ApiError> {
    let (Some((format, blocks)), Answer::Whole(Whole::Chat(response))) = (asked_json(ctx), answer)
    else {
        return Ok(());
    };
    for choice in &response.choices {
        if !choice.tool_calls.is_empty()
            || choice.refusal.is_some()
            || choice.finish_reason == switchyard_types::FinishReason::ContentFilter
        {
            continue;
        }
        let text: String = choice
            .content
            .iter()
            .filter_map(|part| match part {
                ContentPart::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        let Some(violation) = structured::violation(&format, &text) else {
            continue;
        };
        note_structured(&mut ctx.verdicts, blocks);
        if blocks {
            return Err(ApiError::new(
                ErrorKind::BadGateway,
                Origin::Upstream,
                format!(
                    "The model's answer does not follow the requested response_format: {}",
                    switchyard_types::clip(&violation, 300)
                ),
            )
            .with_code("invalid_structured_output"));
        }
    }
    Ok(())
}

/// A streamed answer's text asked to be JSON is held whole: `Some(Continue)` to keep holding
/// it, `Some(Stop)` when, complete, it misses its schema and that blocks; `None` to go on to
/// the other output guards.
fn held_json(
    json: Option<&(ResponseFormat, bool)>,
    verdicts: &mut Vec<Verdict>,
    text: &str,
    last: bool,
) -> Option<Step> {
    let (format, blocks) = json?;
    if !last {
        return Some(Step::Continue);
    }
    if structured::violation(format, text).is_some() {
        note_structured(verdicts, *blocks);
        if *blocks {
            return Some(Step::Stop);
        }
    }
    None
}

/// Counts a finding in an answer on the call's verdicts.
fn note_output(verdicts: &mut Vec<Verdict>, finding: &Finding, action: Option<OutputAction>) {
    let action = match action {
        Some(OutputAction::Block) => "output_block",
        Some(OutputAction::Redact) => "output_redact",
        None => "output_flag",
    };
    match verdicts
        .iter_mut()
        .find(|verdict| verdict.entity == finding.entity && verdict.action == action)
    {
        Some(verdict) => verdict.count += 1,
        None => verdicts.push(Verdict {
            detail: None,
            entity: Arc::clone(&finding.entity),
            count: 1,
            action,
        }),
    }
}

/// The output guards on a stream: each part of each choice is held back by a short tail,
/// scanned, and let out redacted; a finding to block ends the stream (`content_filter`)
/// before any of it goes out.
#[derive(Debug)]
struct OutputTap {
    guards: Arc<Guards>,
    leaks: Option<Arc<Leaks>>,
    /// The JSON the answer was asked to be in: its text is held whole until it can be
    /// checked (and whether a failure ends it).
    json: Option<(ResponseFormat, bool)>,
    held: HashMap<(u32, Part), String>,
    /// The client's dialect (for the same guards on a relayed stream).
    format: switchyard_types::WireFormat,
}

impl OutputTap {
    /// Lets out what may go of one part (all of it when `last`); `Stop` to end the stream.
    fn release(
        &mut self,
        ctx: &mut Ctx,
        key: (u32, Part),
        last: bool,
        out: &mut Vec<StreamEvent>,
    ) -> Step {
        let Some((scanner, actions)) = &self.guards.output else {
            return Step::Continue;
        };
        let Some(held) = self.held.get_mut(&key) else {
            return Step::Continue;
        };
        if key.1 == Part::Text
            && let Some(step) = held_json(self.json.as_ref(), &mut ctx.verdicts, held, last)
        {
            if step == Step::Stop {
                self.held.clear();
            }
            return step;
        }
        let leaks = self.leaks.as_deref();
        let released = switchyard_guard::stream::release(
            held,
            |text| find(scanner, leaks, text),
            |category| actions.get(&category).copied(),
            last,
        );
        for (finding, action) in &released.findings {
            note_output(&mut ctx.verdicts, finding, *action);
        }
        if released.blocked {
            self.held.clear();
            return Step::Stop;
        }
        if !released.text.is_empty() {
            out.push(delta(key.0, key.1, released.text));
        }
        Step::Continue
    }

    /// Lets out everything held for `choice`.
    fn finish_choice(&mut self, ctx: &mut Ctx, choice: u32, out: &mut Vec<StreamEvent>) -> Step {
        self.finish(ctx, out, |(c, _)| *c == choice)
    }

    /// Lets out all of each held part `which` picks, and forgets it.
    fn finish(
        &mut self,
        ctx: &mut Ctx,
        out: &mut Vec<StreamEvent>,
        which: impl Fn(&(u32, Part)) -> bool,
    ) -> Step {
        let keys: Vec<(u32, Part)> = self.held.keys().filter(|key| which(key)).copied().collect();
        for key in keys {
            if self.release(ctx, key, true, out) == Step::Stop {
                return Step::Stop;
            }
            self.held.remove(&key);
        }
        Step::Continue
    }
}

impl Tap for OutputTap {
    fn event(&mut self, ctx: &mut Ctx, event: StreamEvent, out: &mut Vec<StreamEvent>) -> Step {
        let (choice, part, text) = match split(event) {
            Ok(held) => held,
            Err(other) => {
                // Anything else of a choice (a tool call starting, its finish) lets out what
                // is held for it first.
                if let Some(choice) = choice_of(&other)
                    && self.finish_choice(ctx, choice, out) == Step::Stop
                {
                    return Step::Stop;
                }
                out.push(other);
                return Step::Continue;
            }
        };
        // Another part of the same choice starting lets the held ones out first.
        if self.finish(ctx, out, |(c, p)| *c == choice && *p != part) == Step::Stop {
            return Step::Stop;
        }
        self.held.entry((choice, part)).or_default().push_str(&text);
        self.release(ctx, (choice, part), false, out)
    }

    fn reads_relayed(&self) -> bool {
        true
    }

    fn relayed(&self) -> Option<Box<dyn RelayTap>> {
        Some(Box::new(relayed::RelayedOutput::new(
            Arc::clone(&self.guards),
            self.leaks.clone(),
            self.json.clone(),
            self.format,
        )))
    }

    fn end(&mut self, ctx: &mut Ctx, out: &mut Vec<StreamEvent>) {
        let choices: Vec<u32> = self.held.keys().map(|(choice, _)| *choice).collect();
        for choice in choices {
            if self.finish_choice(ctx, choice, out) == Step::Stop {
                return;
            }
        }
    }
}

/// A delta of text (answer, refusal, tool-call arguments) as its choice, part and text; any
/// other event as it is.
fn split(event: StreamEvent) -> Result<(u32, Part, String), StreamEvent> {
    match event {
        StreamEvent::Delta {
            choice,
            delta: Delta::Text(text),
        } => Ok((choice, Part::Text, text)),
        StreamEvent::Delta {
            choice,
            delta: Delta::Refusal(text),
        } => Ok((choice, Part::Refusal, text)),
        StreamEvent::Delta {
            choice,
            delta: Delta::ToolCallArgs { index, arguments },
        } => Ok((choice, Part::Arguments(index), arguments)),
        other => Err(other),
    }
}

/// The choice an event belongs to, if it belongs to one.
fn choice_of(event: &StreamEvent) -> Option<u32> {
    match event {
        StreamEvent::Delta { choice, .. } | StreamEvent::Finish { choice, .. } => Some(*choice),
        _ => None,
    }
}

/// Which part of a choice a held tail belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Part {
    Text,
    Refusal,
    Arguments(u32),
}

/// Restores placeholders in a stream, per choice and part, holding back only a tail that may
/// be the start of one; a held tail goes out before anything else of its choice does.
#[derive(Debug, Default)]
struct RestoreTap {
    held: HashMap<(u32, Part), Restorer>,
}

impl RestoreTap {
    /// Pushes what is held for `choice` in parts other than `except`.
    fn flush(
        &mut self,
        vault: &Vault,
        choice: u32,
        except: Option<Part>,
        out: &mut Vec<StreamEvent>,
    ) {
        let parts: Vec<(u32, Part)> = self
            .held
            .keys()
            .filter(|(c, part)| *c == choice && Some(*part) != except)
            .copied()
            .collect();
        for key in parts {
            if let Some(mut restorer) = self.held.remove(&key) {
                let json = matches!(key.1, Part::Arguments(_));
                let rest = restorer.finish(vault, json);
                if !rest.is_empty() {
                    out.push(delta(choice, key.1, rest));
                }
            }
        }
    }
}

fn delta(choice: u32, part: Part, text: String) -> StreamEvent {
    StreamEvent::Delta {
        choice,
        delta: match part {
            Part::Text => Delta::Text(text),
            Part::Refusal => Delta::Refusal(text),
            Part::Arguments(index) => Delta::ToolCallArgs {
                index,
                arguments: text,
            },
        },
    }
}

impl Tap for RestoreTap {
    fn event(&mut self, ctx: &mut Ctx, event: StreamEvent, out: &mut Vec<StreamEvent>) -> Step {
        let Some(vault) = ctx.vault.as_deref() else {
            out.push(event);
            return Step::Continue;
        };
        let (choice, part, text) = match split(event) {
            Ok(held) => held,
            Err(other) => {
                if let Some(choice) = choice_of(&other) {
                    self.flush(vault, choice, None, out);
                }
                out.push(other);
                return Step::Continue;
            }
        };
        self.flush(vault, choice, Some(part), out);
        let json = matches!(part, Part::Arguments(_));
        let restored = self
            .held
            .entry((choice, part))
            .or_default()
            .feed(vault, &text, json);
        if !restored.is_empty() {
            out.push(delta(choice, part, restored));
        }
        Step::Continue
    }

    fn end(&mut self, ctx: &mut Ctx, out: &mut Vec<StreamEvent>) {
        let Some(vault) = ctx.vault.as_deref() else {
            return;
        };
        let choices: Vec<u32> = self.held.keys().map(|(choice, _)| *choice).collect();
        for choice in choices {
            self.flush(vault, choice, None, out);
        }
    }
}
