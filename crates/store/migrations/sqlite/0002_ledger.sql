-- The ledger: one record per model call, and daily aggregates that reports and budgets read
-- instead of the raw records. Money is integer nano-dollars (10^-9 USD); times are Unix
-- milliseconds; days are UTC, written YYYY-MM-DD.

CREATE TABLE spend (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id          TEXT NOT NULL,
    at                  BIGINT NOT NULL,
    key_id              TEXT,
    team_id             TEXT,
    user_id             TEXT,
    model               TEXT NOT NULL,
    deployment          TEXT,
    kind                TEXT NOT NULL,
    tags                TEXT NOT NULL,
    prompt_tokens       BIGINT NOT NULL,
    completion_tokens   BIGINT NOT NULL,
    cache_read_tokens   BIGINT NOT NULL,
    cache_write_tokens  BIGINT NOT NULL,
    reasoning_tokens    BIGINT NOT NULL,
    cost_nanos          BIGINT NOT NULL,
    estimated           BOOLEAN NOT NULL,
    unpriced            BOOLEAN NOT NULL,
    cache_hit           BOOLEAN NOT NULL,
    stream              BOOLEAN NOT NULL,
    status              INTEGER NOT NULL,
    attempts            INTEGER NOT NULL,
    latency_ms          BIGINT NOT NULL,
    ttft_ms             BIGINT
);
CREATE INDEX spend_by_time ON spend (at, seq);
CREATE INDEX spend_by_key ON spend (key_id, at);
CREATE INDEX spend_by_team ON spend (team_id, at);
CREATE INDEX spend_by_user ON spend (user_id, at);

-- `dimension` is key, team, user, model, tag or all (value ''); one row per value and day.
CREATE TABLE spend_daily (
    dimension           TEXT NOT NULL,
    value               TEXT NOT NULL,
    day                 TEXT NOT NULL,
    requests            BIGINT NOT NULL,
    failures            BIGINT NOT NULL,
    prompt_tokens       BIGINT NOT NULL,
    completion_tokens   BIGINT NOT NULL,
    cache_read_tokens   BIGINT NOT NULL,
    cache_write_tokens  BIGINT NOT NULL,
    reasoning_tokens    BIGINT NOT NULL,
    cost_nanos          BIGINT NOT NULL,
    PRIMARY KEY (dimension, value, day)
);
CREATE INDEX spend_daily_by_day ON spend_daily (day, dimension);
