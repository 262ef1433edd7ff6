-- Raw records kept compact: what reports filter, page, prune and sum by stays in columns (time,
-- key, team, user, model, cost); the rest of a record is one JSON object, `detail`, with the
-- fields of the API's record (`request_id`, `deployment`, `kind`, `tags`, the token counts,
-- `estimated`, `unpriced`, `cache_hit`, `stream`, `status`, `attempts`, `latency_ms`,
-- `ttft_ms`, `guards`; the gateway leaves out a field that is false, zero, empty or missing).
-- A record binds 7 values where it bound 24; reports still read only the daily aggregates.
-- Text, not jsonb: written as it comes, never parsed on insert (`detail::jsonb` reads it).
ALTER TABLE spend ADD COLUMN detail TEXT NOT NULL DEFAULT '{}';
UPDATE spend SET detail = json_strip_nulls(json_build_object(
    'request_id', request_id,
    'deployment', deployment,
    'kind', kind,
    'tags', tags::json,
    'prompt_tokens', prompt_tokens,
    'completion_tokens', completion_tokens,
    'cache_read_tokens', cache_read_tokens,
    'cache_write_tokens', cache_write_tokens,
    'reasoning_tokens', reasoning_tokens,
    'estimated', estimated,
    'unpriced', unpriced,
    'cache_hit', cache_hit,
    'stream', stream,
    'status', status,
    'attempts', attempts,
    'latency_ms', latency_ms,
    'ttft_ms', ttft_ms,
    'guards', CASE WHEN guards = '' THEN '[]'::json ELSE guards::json END))::text;
ALTER TABLE spend ALTER COLUMN detail DROP DEFAULT;
ALTER TABLE spend
    DROP COLUMN request_id,
    DROP COLUMN deployment,
    DROP COLUMN kind,
    DROP COLUMN tags,
    DROP COLUMN prompt_tokens,
    DROP COLUMN completion_tokens,
    DROP COLUMN cache_read_tokens,
    DROP COLUMN cache_write_tokens,
    DROP COLUMN reasoning_tokens,
    DROP COLUMN estimated,
    DROP COLUMN unpriced,
    DROP COLUMN cache_hit,
    DROP COLUMN stream,
    DROP COLUMN status,
    DROP COLUMN attempts,
    DROP COLUMN latency_ms,
    DROP COLUMN ttft_ms,
    DROP COLUMN guards;
