-- Raw records kept compact: what reports filter, page, prune and sum by stays in columns (time,
-- key, team, user, model, cost); the rest of a record is one JSON object, `detail`, with the
-- fields of the API's record (`request_id`, `deployment`, `kind`, `tags`, the token counts,
-- `estimated`, `unpriced`, `cache_hit`, `stream`, `status`, `attempts`, `latency_ms`,
-- `ttft_ms`, `guards`; the gateway leaves out a field that is false, zero, empty or missing).
-- A record binds 7 values where it bound 24; reports still read only the daily aggregates.
-- SQLite cannot drop many columns in one step: the records move to a new table, which takes
-- the old one's name, sequence and indexes.
CREATE TABLE spend_compact (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          BIGINT NOT NULL,
    key_id      TEXT,
    team_id     TEXT,
    user_id     TEXT,
    model       TEXT NOT NULL,
    cost_nanos  BIGINT NOT NULL,
    detail      TEXT NOT NULL
);
INSERT INTO spend_compact (seq, at, key_id, team_id, user_id, model, cost_nanos, detail)
SELECT seq, at, key_id, team_id, user_id, model, cost_nanos, json_object(
    'request_id', request_id,
    'deployment', deployment,
    'kind', kind,
    'tags', json(tags),
    'prompt_tokens', prompt_tokens,
    'completion_tokens', completion_tokens,
    'cache_read_tokens', cache_read_tokens,
    'cache_write_tokens', cache_write_tokens,
    'reasoning_tokens', reasoning_tokens,
    'estimated', json(CASE WHEN estimated THEN 'true' ELSE 'false' END),
    'unpriced', json(CASE WHEN unpriced THEN 'true' ELSE 'false' END),
    'cache_hit', json(CASE WHEN cache_hit THEN 'true' ELSE 'false' END),
    'stream', json(CASE WHEN stream THEN 'true' ELSE 'false' END),
    'status', status,
    'attempts', attempts,
    'latency_ms', latency_ms,
    'ttft_ms', ttft_ms,
    'guards', json(CASE WHEN guards = '' THEN '[]' ELSE guards END))
FROM spend ORDER BY seq;
DROP TABLE spend;
ALTER TABLE spend_compact RENAME TO spend;
CREATE INDEX spend_by_time ON spend (at, seq);
CREATE INDEX spend_by_key ON spend (key_id, seq) WHERE key_id IS NOT NULL;
CREATE INDEX spend_by_team ON spend (team_id, seq) WHERE team_id IS NOT NULL;
CREATE INDEX spend_by_user ON spend (user_id, seq) WHERE user_id IS NOT NULL;
