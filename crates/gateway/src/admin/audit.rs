//! The audit log's routes: its public keys, checkpoints, records, proofs and the export.
//!
//! Who reads what: admins and team-less viewers the whole log; team admins and team viewers
//! their team's records (an export limited to the team, which then cannot show that nothing
//! is missing); members nothing but the public keys. Only admins ask for a checkpoint now.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use switchyard_audit::export::{self, FORMAT, Header};
use switchyard_store::{AuditQuery, AuditRecord, Store, StoredCheckpoint};
use switchyard_types::{ApiError, ErrorKind, Origin, WireFormat};
use tokio::sync::mpsc;

use super::{Caller, Query, answer, forbidden, store_error};
use crate::app::AppState;
use crate::audit::{Audit, AuditError};
use crate::error::reply;

/// Records read per page of an export.
const PAGE: u32 = 500;

/// Checkpoints an export includes at most besides its anchor.
const EXPORT_CHECKPOINTS: u32 = 100;

fn audit_of(state: &AppState) -> Result<Arc<Audit>, ApiError> {
    state.shared.audit.clone().ok_or_else(|| {
        ApiError::new(
            ErrorKind::NotFound,
            Origin::Client,
            "The audit log is off (audit.enabled: false)",
        )
        .with_code("audit_disabled")
    })
}

fn audit_error(error: AuditError) -> ApiError {
    match error {
        AuditError::Store(error) => store_error(error),
        AuditError::Stopped | AuditError::Timeout => ApiError::new(
            ErrorKind::Unavailable,
            Origin::Internal,
            "The audit log is not answering; try again shortly",
        )
        .with_code("audit_unavailable"),
    }
}

/// Runs `task` on the background runtime, where the store's connections live.
async fn on_store<T, F>(state: &AppState, task: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, switchyard_store::StoreError>> + Send + 'static,
{
    match state.shared.background.run(task).await {
        Some(result) => result.map_err(store_error),
        None => Err(audit_error(AuditError::Stopped)),
    }
}

fn checkpoint_json(checkpoint: &StoredCheckpoint) -> Value {
    json!({
        "size": checkpoint.size,
        "root": export::encode_proof(&[checkpoint.root])[0],
        "at": checkpoint.at,
        "key": checkpoint.key,
        "note": checkpoint.note,
    })
}

/// The team a caller's reads are limited to (`None`: all), or a refusal.
fn scope(caller: &Caller) -> Result<Option<String>, ApiError> {
    caller.list_scope()
}

/// `GET /admin/audit/keys`: the public keys that check the log's checkpoints, the current one
/// first (every authenticated caller: they are public).
pub async fn keys(State(state): State<AppState>, headers: HeaderMap) -> Response {
    answer(state.clone(), headers, async |_caller| {
        let audit = audit_of(&state)?;
        let store = audit.store().clone();
        let stored = on_store(&state, async move { store.audit_keys().await }).await?;
        let current = audit.verifier().to_string();
        let mut keys = vec![current.clone()];
        keys.extend(
            stored
                .into_iter()
                .map(|(key, _)| key)
                .filter(|key| *key != current),
        );
        Ok((
            StatusCode::OK,
            json!({"origin": audit.origin(), "key": current, "keys": keys}),
        ))
    })
    .await
}

/// `GET /admin/audit/checkpoint`: the latest checkpoint (404 while the log is empty).
pub async fn latest(State(state): State<AppState>, headers: HeaderMap) -> Response {
    answer(state.clone(), headers, async |caller| {
        scope(&caller)?;
        let audit = audit_of(&state)?;
        let store = audit.store().clone();
        let latest = on_store(&state, async move { store.audit_latest_checkpoint().await }).await?;
        match latest {
            Some(checkpoint) => Ok((StatusCode::OK, checkpoint_json(&checkpoint))),
            None => Err(empty_log()),
        }
    })
    .await
}

fn empty_log() -> ApiError {
    ApiError::new(
        ErrorKind::NotFound,
        Origin::Client,
        "The audit log has no checkpoint yet",
    )
    .with_code("audit_empty")
}

/// `POST /admin/audit/checkpoint`: writes what is queued and signs the log now (admins).
pub async fn checkpoint(State(state): State<AppState>, headers: HeaderMap) -> Response {
    answer(state.clone(), headers, async |caller| {
        caller.admin_only()?;
        let audit = audit_of(&state)?;
        match audit.checkpoint_now().await.map_err(audit_error)? {
            Some(checkpoint) => Ok((StatusCode::OK, checkpoint_json(&checkpoint))),
            None => Err(empty_log()),
        }
    })
    .await
}

/// The filters of a records query or an export, limited to the caller's team.
struct Filters {
    since: Option<i64>,
    until: Option<i64>,
    team: Option<String>,
    key: Option<String>,
    event: Option<String>,
}

fn filters(query: &Query, scope: Option<String>) -> Result<Filters, ApiError> {
    let team = match (scope, query.text("team")) {
        (Some(own), Some(asked)) if own != asked => {
            return Err(forbidden("This key reads only its own team's records"));
        }
        (Some(own), _) => Some(own),
        (None, asked) => asked,
    };
    let event = query.text("event");
    if let Some(event) = &event
        && !matches!(event.as_str(), "call" | "admin")
    {
        return Err(ApiError::invalid_request(
            "Query parameter `event` must be `call` or `admin`",
            Some("event".to_owned()),
        ));
    }
    Ok(Filters {
        since: time_of(query, "since")?,
        until: time_of(query, "until")?,
        team,
        key: query.text("key"),
        event,
    })
}

/// A time given as Unix milliseconds, a day (`2026-12-07`, UTC midnight) or a UTC time
/// (`2026-12-07T10:30:00Z`).
fn time_of(query: &Query, name: &str) -> Result<Option<i64>, ApiError> {
    let Some(text) = query.text(name) else {
        return Ok(None);
    };
    parse_time(&text).map(Some).ok_or_else(|| {
        ApiError::invalid_request(
            format!(
                "Query parameter `{name}` must be Unix milliseconds, YYYY-MM-DD or \
                 YYYY-MM-DDTHH:MM:SSZ"
            ),
            Some(name.to_owned()),
        )
    })
}

/// See [`time_of`].
pub fn parse_time(text: &str) -> Option<i64> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let (day, time) = match text.split_once('T') {
        Some((day, time)) => (day, Some(time.strip_suffix('Z')?)),
        None => (text, None),
    };
    let start = switchyard_ledger::Day::parse(day)?.start_ms();
    let Some(time) = time else {
        return Some(start);
    };
    let mut parts = time.split(':');
    let hours: i64 = parts.next()?.parse().ok()?;
    let minutes: i64 = parts.next()?.parse().ok()?;
    let seconds: f64 = parts.next().map_or(Some(0.0), |s| s.parse().ok())?;
    if parts.next().is_some()
        || !(0..24).contains(&hours)
        || !(0..60).contains(&minutes)
        || !(0.0..61.0).contains(&seconds)
    {
        return None;
    }
    Some(start + (hours * 3600 + minutes * 60) * 1000 + (seconds * 1000.0) as i64)
}

fn record_json(record: &AuditRecord) -> Value {
    json!({
        "seq": record.seq,
        "at": record.at,
        "event": record.event,
        "team_id": record.team_id,
        "key_id": record.key_id,
        "record": serde_json::from_str::<Value>(&record.body).unwrap_or(Value::Null),
    })
}

/// `GET /admin/audit/records?after=&limit=&since=&until=&team=&key=&event=`: records in
/// order, a page at a time (`next_after` for the next page).
pub async fn records(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    answer(state.clone(), headers, async |caller| {
        let scope = scope(&caller)?;
        let audit = audit_of(&state)?;
        let query = Query::parse(
            query.as_deref(),
            &["after", "limit", "since", "until", "team", "key", "event"],
        )?;
        let filters = filters(&query, scope)?;
        let after = query
            .number("after")?
            .map(|after| u64::try_from(after).unwrap_or(0));
        let limit = query.number("limit")?.unwrap_or(100).clamp(1, 1000);
        let request = AuditQuery {
            after,
            before: None,
            since: filters.since,
            until: filters.until,
            team_id: filters.team,
            key_id: filters.key,
            event: filters.event,
            limit: u32::try_from(limit).unwrap_or(100),
        };
        let store = audit.store().clone();
        let page = on_store(&state, async move { store.audit_records(&request).await }).await?;
        let next = (page.len() as i64 == limit)
            .then(|| page.last().map(|r| r.seq))
            .flatten();
        let data: Vec<Value> = page.iter().map(record_json).collect();
        Ok((StatusCode::OK, json!({"data": data, "next_after": next})))
    })
    .await
}

/// `GET /admin/audit/proof?seq=&size=`: record `seq` and its inclusion proof under the
/// checkpoint of `size` (default: the latest).
pub async fn inclusion(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    answer(state.clone(), headers, async |caller| {
        let scope = scope(&caller)?;
        let audit = audit_of(&state)?;
        let query = Query::parse(query.as_deref(), &["seq", "size"])?;
        let seq = query
            .number("seq")?
            .and_then(|seq| u64::try_from(seq).ok())
            .ok_or_else(|| ApiError::invalid_request("`seq` is required", Some("seq".into())))?;
        let size = query
            .number("size")?
            .and_then(|size| u64::try_from(size).ok());
        let store = audit.store().clone();
        let found = on_store(&state, async move {
            let checkpoint = match size {
                Some(size) => store.audit_checkpoints(size, size, 1).await?.pop(),
                None => store.audit_latest_checkpoint().await?,
            };
            let Some(checkpoint) = checkpoint else {
                return Ok(None);
            };
            if seq >= checkpoint.size {
                return Ok(Some((checkpoint, None, Vec::new())));
            }
            let record = store
                .audit_records(&AuditQuery {
                    after: seq.checked_sub(1),
                    before: Some(seq + 1),
                    limit: 1,
                    ..AuditQuery::default()
                })
                .await?
                .pop();
            let proof = store
                .audit_inclusion_proofs(&[seq], checkpoint.size)
                .await?
                .pop()
                .unwrap_or_default();
            Ok(Some((checkpoint, record, proof)))
        })
        .await?;
        let Some((checkpoint, record, proof)) = found else {
            return Err(ApiError::new(
                ErrorKind::NotFound,
                Origin::Client,
                "No checkpoint of that size",
            )
            .with_code("not_found"));
        };
        if seq >= checkpoint.size {
            return Err(ApiError::invalid_request(
                format!(
                    "Record {seq} is not under the checkpoint of size {}",
                    checkpoint.size
                ),
                Some("seq".into()),
            ));
        }
        if let (Some(own), Some(record)) = (&scope, &record)
            && record.team_id.as_deref() != Some(own.as_str())
        {
            return Err(forbidden("This key reads only its own team's records"));
        }
        Ok((
            StatusCode::OK,
            json!({
                "seq": seq,
                "checkpoint": checkpoint_json(&checkpoint),
                "record": record.as_ref().map(|r| r.body.as_str()),
                "proof": export::encode_proof(&proof),
            }),
        ))
    })
    .await
}

/// `GET /admin/audit/consistency?from=&to=`: the proof that the log of `from` records is a
/// prefix of the log of `to` (both sizes of checkpoints, or any sizes up to the latest).
pub async fn consistency(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    answer(state.clone(), headers, async |caller| {
        scope(&caller)?;
        let audit = audit_of(&state)?;
        let query = Query::parse(query.as_deref(), &["from", "to"])?;
        let size = |name: &str| -> Result<u64, ApiError> {
            query
                .number(name)?
                .and_then(|value| u64::try_from(value).ok())
                .ok_or_else(|| {
                    ApiError::invalid_request(format!("`{name}` is required"), Some(name.into()))
                })
        };
        let (from, to) = (size("from")?, size("to")?);
        if from == 0 || from > to {
            return Err(ApiError::invalid_request(
                "A consistency proof needs 0 < from <= to",
                Some("from".into()),
            ));
        }
        let store = audit.store().clone();
        let proof = on_store(&state, async move {
            let head = store.audit_head().await?;
            if to > head.size {
                return Ok(None);
            }
            store.audit_consistency_proof(from, to).await.map(Some)
        })
        .await?
        .ok_or_else(|| {
            ApiError::invalid_request("`to` is past the log's size", Some("to".into()))
        })?;
        Ok((
            StatusCode::OK,
            json!({"from": from, "to": to, "proof": export::encode_proof(&proof)}),
        ))
    })
    .await
}

/// `GET /admin/audit/export?since=&until=&team=&key=&event=`: the log as JSON lines (see
/// `switchyard_audit::export`), after writing what is queued and signing it; streamed.
pub async fn export(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let started = async {
        let caller = Caller::of(&state, &headers).await?;
        let scope = scope(&caller)?;
        let audit = audit_of(&state)?;
        let query = Query::parse(
            query.as_deref(),
            &["since", "until", "team", "key", "event"],
        )?;
        let filters = filters(&query, scope)?;
        let anchor = audit
            .checkpoint_now()
            .await
            .map_err(audit_error)?
            .ok_or_else(empty_log)?;
        Ok::<_, ApiError>((audit, filters, anchor))
    }
    .await;
    let (audit, filters, anchor) = match started {
        Ok(started) => started,
        Err(error) => return reply(WireFormat::OpenAi, &error),
    };
    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let header = Header {
        kind: "header".into(),
        format: FORMAT.into(),
        origin: audit.origin().to_owned(),
        anchor: anchor.size,
        complete: filters.team.is_none() && filters.key.is_none() && filters.event.is_none(),
        from_seq: 0,
        to_seq: anchor.size,
        since: filters.since,
        until: filters.until,
        retained_from: 0,
        team: filters.team.clone(),
        key: filters.key.clone(),
        event: filters.event.clone(),
        exported_at: switchyard_store::now_ms(),
    };
    let store = audit.store().clone();
    state
        .shared
        .background
        .spawn(write_export(store, header, filters, anchor, sender));
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    let mut response = (StatusCode::OK, Body::from_stream(stream)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

/// Writes an export's lines to `sender`, a page at a time; stops when the client goes.
async fn write_export(
    store: Store,
    mut header: Header,
    filters: Filters,
    anchor: StoredCheckpoint,
    sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let result = async {
        // The range: from the first record written at or after `since` (else the first still
        // held) to the last written before `until` (else all the anchor covers), every record
        // between included whatever its time (instances' clocks and queues interleave times).
        header.retained_from = store.audit_retained_from().await?;
        let (first, last) = store
            .audit_seq_bounds(
                filters.since.unwrap_or(i64::MIN),
                filters.until.unwrap_or(i64::MAX),
            )
            .await?;
        let from = match filters.since {
            Some(_) => first.unwrap_or(anchor.size),
            None => 0,
        }
        .max(header.retained_from);
        let to = match filters.until {
            Some(_) => last.map_or(from, |last| last + 1),
            None => anchor.size,
        }
        .min(anchor.size)
        .max(from);
        (header.from_seq, header.to_seq) = (from, to);
        let mut out = serde_json::to_string(&header).unwrap_or_default();
        out.push('\n');
        // The checkpoints of the range (and the last one before it), then the anchor, each
        // consistent with the next.
        let (before, within) = store
            .audit_checkpoints_signed(filters.since, filters.until, EXPORT_CHECKPOINTS)
            .await?;
        let mut checkpoints: Vec<StoredCheckpoint> = before
            .into_iter()
            .chain(within)
            .filter(|checkpoint| checkpoint.size < anchor.size)
            .collect();
        checkpoints.push(anchor.clone());
        checkpoints.dedup_by_key(|checkpoint| checkpoint.size);
        for checkpoint in &checkpoints {
            out.push_str(&json!({"type": "checkpoint", "note": checkpoint.note}).to_string());
            out.push('\n');
        }
        for pair in checkpoints.windows(2) {
            let proof = store
                .audit_consistency_proof(pair[0].size, pair[1].size)
                .await?;
            out.push_str(
                &json!({"type": "consistency", "from": pair[0].size, "to": pair[1].size,
                    "proof": export::encode_proof(&proof)})
                .to_string(),
            );
            out.push('\n');
        }
        if sender
            .send(Ok(Bytes::from(std::mem::take(&mut out))))
            .await
            .is_err()
        {
            return Ok(());
        }
        let mut after = None;
        loop {
            let page = store
                .audit_records(&AuditQuery {
                    after: after.or(from.checked_sub(1)),
                    before: Some(to),
                    since: None,
                    until: None,
                    team_id: filters.team.clone(),
                    key_id: filters.key.clone(),
                    event: filters.event.clone(),
                    limit: PAGE,
                })
                .await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = Some(last.seq);
            let seqs: Vec<u64> = page.iter().map(|record| record.seq).collect();
            let proofs = store.audit_inclusion_proofs(&seqs, anchor.size).await?;
            for (record, proof) in page.iter().zip(proofs) {
                out.push_str(&format!(
                    "{{\"type\":\"record\",\"seq\":{},\"record\":{},\"proof\":{}}}\n",
                    record.seq,
                    record.body,
                    serde_json::to_string(&export::encode_proof(&proof)).unwrap_or_default()
                ));
            }
            if sender
                .send(Ok(Bytes::from(std::mem::take(&mut out))))
                .await
                .is_err()
            {
                return Ok(());
            }
        }
    }
    .await;
    if let Err(error) = result {
        tracing::error!(%error, "Audit export failed");
        // The stream ends with an error: the client sees a broken body, never a short export
        // that looks whole (and verifying one would say what is missing anyway).
        let error: switchyard_store::StoreError = error;
        let _ = sender
            .send(Err(std::io::Error::other(error.to_string())))
            .await;
    }
}
