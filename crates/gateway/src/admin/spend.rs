//! Usage reports: spend and tokens by key, team, user, model, tag or overall, day by day over
//! a date range (read from the daily aggregates, never the raw records), and the raw records a
//! page at a time; as JSON or CSV (`format=csv`).
//!
//! Who reads what: admins and team-less viewers everything; team admins and team viewers their
//! team's totals and its keys' and users'; members their own key's.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use switchyard_ledger::{Day, Usd};
use switchyard_store::{Daily, Dimension, Role, SpendQuery, SpendRecord};
use switchyard_types::{ApiError, WireFormat};

use super::{Caller, Query, forbidden, store_error};
use crate::app::AppState;
use crate::error::reply;

/// The longest range a daily report covers.
const MAX_DAYS: i64 = 366;

/// How a report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

/// A report: a JSON body, or CSV text.
enum Report {
    Json(Value),
    Csv(String),
}

/// Runs a report handler and writes its answer.
async fn report(
    state: AppState,
    headers: HeaderMap,
    handler: impl AsyncFnOnce(Caller) -> Result<Report, ApiError>,
) -> Response {
    let result = match Caller::of(&state, &headers).await {
        Ok(caller) if state.shared.ledger.is_none() => {
            drop(caller);
            Err(ApiError::new(
                switchyard_types::ErrorKind::NotFound,
                switchyard_types::Origin::Client,
                "Spend is not recorded: the ledger is off (ledger.enabled: false)",
            )
            .with_code("ledger_disabled"))
        }
        Ok(caller) => handler(caller).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(Report::Json(body)) => (StatusCode::OK, axum::Json(body)).into_response(),
        Ok(Report::Csv(text)) => {
            let mut response = (StatusCode::OK, text).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            response
        }
        Err(error) => reply(WireFormat::OpenAi, &error),
    }
}

fn format_of(query: &Query) -> Result<Format, ApiError> {
    match query.text("format").as_deref() {
        None | Some("json") => Ok(Format::Json),
        Some("csv") => Ok(Format::Csv),
        Some(_) => Err(ApiError::invalid_request(
            "Query parameter `format` must be `json` or `csv`",
            Some("format".to_owned()),
        )),
    }
}

/// The day named by parameter `name` (`YYYY-MM-DD`), or `default`.
fn day_of(query: &Query, name: &str, default: Day) -> Result<Day, ApiError> {
    match query.text(name) {
        None => Ok(default),
        Some(text) => Day::parse(&text).ok_or_else(|| {
            ApiError::invalid_request(
                format!("Query parameter `{name}` must be a date, YYYY-MM-DD"),
                Some(name.to_owned()),
            )
        }),
    }
}

/// `GET /admin/spend?by=&value=&from=&to=&format=`: one row per day and value of `by` (`key`,
/// `team`, `user`, `model`, `tag` or `all`; default `all`) from `from` to `to` (UTC days,
/// both included; default the last 30 days), with the totals.
pub async fn daily(State(state): State<AppState>, headers: HeaderMap, query: RawQuery) -> Response {
    report(state, headers, async |caller| {
        let query = Query::parse(query.0.as_deref(), &["by", "value", "from", "to", "format"])?;
        let format = format_of(&query)?;
        let by = match query.text("by") {
            None => Dimension::All,
            Some(name) => Dimension::parse(&name).ok_or_else(|| {
                ApiError::invalid_request(
                    "Query parameter `by` must be one of: key, team, user, model, tag, all",
                    Some("by".to_owned()),
                )
            })?,
        };
        let today = Day::of_ms(switchyard_store::now_ms());
        let to = day_of(&query, "to", today)?;
        let from = day_of(&query, "from", Day::from_days(day_number(to) - 29))?;
        if from > to || day_number(to) - day_number(from) >= MAX_DAYS {
            return Err(ApiError::invalid_request(
                format!("`from` must be on or before `to`, at most {MAX_DAYS} days apart"),
                Some("from".to_owned()),
            ));
        }
        let value = scope_daily(&caller, by, query.text("value")).await?;
        let rows = caller
            .governance
            .with_store(move |store| async move {
                store.daily_spend(by, value.as_deref(), from, to).await
            })
            .await
            .map_err(store_error)?;
        Ok(match format {
            Format::Csv => Report::Csv(daily_csv(&rows)),
            Format::Json => Report::Json(json!({
                "by": by,
                "from": from.to_string(),
                "to": to.to_string(),
                "data": rows.iter().map(daily_json).collect::<Vec<_>>(),
                "total": total(&rows),
            })),
        })
    })
    .await
}

/// `GET /admin/spend/records?from=&to=&key_id=&team_id=&user_id=&model=&after=&limit=&format=`:
/// raw records, oldest first; `after` is the last `seq` of the previous page.
pub async fn records(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: RawQuery,
) -> Response {
    report(state, headers, async |caller| {
        let query = Query::parse(
            query.0.as_deref(),
            &[
                "from", "to", "key_id", "team_id", "user_id", "model", "after", "limit", "format",
            ],
        )?;
        let format = format_of(&query)?;
        let mut wanted = SpendQuery {
            after: query.number("after")?.unwrap_or(0),
            key_id: query.text("key_id"),
            team_id: query.text("team_id"),
            user_id: query.text("user_id"),
            model: query.text("model"),
            limit: query.number("limit")?.map_or(1000, |limit| {
                u32::try_from(limit.clamp(1, 10_000)).unwrap_or(1000)
            }),
            ..SpendQuery::default()
        };
        if query.text("from").is_some() {
            wanted.from_ms = day_of(&query, "from", Day::from_days(0))?.start_ms();
        }
        if query.text("to").is_some() {
            wanted.to_ms = day_of(&query, "to", Day::from_days(0))?.next().start_ms();
        }
        scope_records(&caller, &mut wanted)?;
        let rows = caller
            .governance
            .with_store(move |store| async move { store.spend_records(&wanted).await })
            .await
            .map_err(store_error)?;
        Ok(match format {
            Format::Csv => Report::Csv(records_csv(&rows)),
            Format::Json => Report::Json(json!({
                "data": rows.iter().map(record_json).collect::<Vec<_>>(),
                "next_after": rows.last().map(|record| record.seq),
            })),
        })
    })
    .await
}

/// The value a daily report of `by` may cover for this caller: `asked`, checked, or the only
/// one it may read.
async fn scope_daily(
    caller: &Caller,
    by: Dimension,
    asked: Option<String>,
) -> Result<Option<String>, ApiError> {
    let principal = &caller.principal;
    if principal.role == Role::Member {
        return match (by, asked) {
            (Dimension::Key, None) => Ok(Some(principal.key_id.clone())),
            (Dimension::Key, Some(asked)) if asked == principal.key_id => Ok(Some(asked)),
            _ => Err(forbidden(
                "Members read only their own key's spend (by=key)",
            )),
        };
    }
    let Some(team) = caller.list_scope()? else {
        return Ok(asked);
    };
    match by {
        Dimension::Team => match asked {
            None => Ok(Some(team)),
            Some(asked) if asked == team => Ok(Some(asked)),
            Some(_) => Err(forbidden("You may read your own team's spend only")),
        },
        Dimension::Key | Dimension::User => {
            let Some(asked) = asked else {
                return Err(forbidden(
                    "Name the key or user (value=…): you may read your own team's only",
                ));
            };
            // A key or user outside the caller's team is a 404, as if it did not exist.
            if by == Dimension::Key {
                super::keys::read(caller, &asked).await?;
            } else {
                super::users::read(caller, &asked).await?;
            }
            Ok(Some(asked))
        }
        Dimension::Model | Dimension::Tag | Dimension::All => Err(forbidden(
            "Spend by model, tag or overall covers every team: admins only (by=team for yours)",
        )),
    }
}

/// Limits a records query to what the caller may read.
fn scope_records(caller: &Caller, wanted: &mut SpendQuery) -> Result<(), ApiError> {
    let principal = &caller.principal;
    if principal.role == Role::Member {
        if wanted
            .key_id
            .as_ref()
            .is_some_and(|key| *key != principal.key_id)
        {
            return Err(forbidden("Members read only their own key's records"));
        }
        wanted.key_id = Some(principal.key_id.clone());
        return Ok(());
    }
    if let Some(team) = caller.list_scope()? {
        if wanted.team_id.as_ref().is_some_and(|asked| *asked != team) {
            return Err(forbidden("You may read your own team's records only"));
        }
        wanted.team_id = Some(team);
    }
    Ok(())
}

fn day_number(day: Day) -> i64 {
    day.start_ms().div_euclid(86_400_000)
}

fn daily_json(row: &Daily) -> Value {
    json!({
        "day": row.day,
        "value": row.value,
        "requests": row.requests,
        "failures": row.failures,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "cache_read_tokens": row.cache_read_tokens,
        "cache_write_tokens": row.cache_write_tokens,
        "reasoning_tokens": row.reasoning_tokens,
        "cost_usd": Usd::from_nanos(row.cost_nanos).to_string(),
    })
}

fn total(rows: &[Daily]) -> Value {
    let sum = |field: fn(&Daily) -> u64| rows.iter().map(field).sum::<u64>();
    json!({
        "requests": sum(|row| row.requests),
        "failures": sum(|row| row.failures),
        "prompt_tokens": sum(|row| row.prompt_tokens),
        "completion_tokens": sum(|row| row.completion_tokens),
        "cache_read_tokens": sum(|row| row.cache_read_tokens),
        "cache_write_tokens": sum(|row| row.cache_write_tokens),
        "reasoning_tokens": sum(|row| row.reasoning_tokens),
        "cost_usd": Usd::from_nanos(rows.iter().map(|row| row.cost_nanos).sum()).to_string(),
    })
}

fn record_json(record: &SpendRecord) -> Value {
    let mut value = serde_json::to_value(record).unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.remove("cost_nanos");
        object.insert(
            "cost_usd".to_owned(),
            Value::String(Usd::from_nanos(record.cost_nanos).to_string()),
        );
    }
    value
}

fn daily_csv(rows: &[Daily]) -> String {
    let mut out = String::from(
        "day,value,requests,failures,prompt_tokens,completion_tokens,cache_read_tokens,\
         cache_write_tokens,reasoning_tokens,cost_usd\n",
    );
    for row in rows {
        let fields = [
            row.day.clone(),
            row.value.clone(),
            row.requests.to_string(),
            row.failures.to_string(),
            row.prompt_tokens.to_string(),
            row.completion_tokens.to_string(),
            row.cache_read_tokens.to_string(),
            row.cache_write_tokens.to_string(),
            row.reasoning_tokens.to_string(),
            Usd::from_nanos(row.cost_nanos).to_string(),
        ];
        csv_line(&mut out, &fields);
    }
    out
}

fn records_csv(rows: &[SpendRecord]) -> String {
    let mut out = String::from(
        "seq,request_id,at,key_id,team_id,user_id,model,deployment,kind,tags,prompt_tokens,\
         completion_tokens,cache_read_tokens,cache_write_tokens,reasoning_tokens,cost_usd,\
         estimated,unpriced,cache_hit,stream,status,attempts,latency_ms,ttft_ms\n",
    );
    for record in rows {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let fields = [
            record.seq.to_string(),
            record.request_id.clone(),
            record.at.to_string(),
            text(&record.key_id),
            text(&record.team_id),
            text(&record.user_id),
            record.model.clone(),
            text(&record.deployment),
            record.kind.clone(),
            record.tags.join(";"),
            record.prompt_tokens.to_string(),
            record.completion_tokens.to_string(),
            record.cache_read_tokens.to_string(),
            record.cache_write_tokens.to_string(),
            record.reasoning_tokens.to_string(),
            Usd::from_nanos(record.cost_nanos).to_string(),
            record.estimated.to_string(),
            record.unpriced.to_string(),
            record.cache_hit.to_string(),
            record.stream.to_string(),
            record.status.to_string(),
            record.attempts.to_string(),
            record.latency_ms.to_string(),
            record.ttft_ms.map(|ms| ms.to_string()).unwrap_or_default(),
        ];
        csv_line(&mut out, &fields);
    }
    out
}

/// One CSV line (RFC 4180 quoting). A text cell a spreadsheet would read as a formula (it
/// starts with `=`, `+`, `-`, `@`, a tab or a carriage return: tags and model names come from
/// clients) is prefixed with `'`.
fn csv_line(out: &mut String, fields: &[String]) {
    for (index, field) in fields.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        let numeric = !field.is_empty()
            && field
                .strip_prefix('-')
                .unwrap_or(field)
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.');
        let guarded = if !numeric && field.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{field}")
        } else {
            field.clone()
        };
        if guarded.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&guarded.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&guarded);
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let mut out = String::new();
        csv_line(
            &mut out,
            &[
                "plain".to_owned(),
                "a,b".to_owned(),
                "say \"hi\"".to_owned(),
                "=HYPERLINK(\"x\")".to_owned(),
                "-12.5".to_owned(),
                "@sum".to_owned(),
            ],
        );
        assert_eq!(
            out,
            "plain,\"a,b\",\"say \"\"hi\"\"\",\"'=HYPERLINK(\"\"x\"\")\",-12.5,'@sum\n"
        );
    }
}
