-- Teams, users, virtual keys and the record of admin changes.
-- Times are Unix milliseconds; lists and maps are JSON text.

CREATE TABLE teams (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    models      TEXT NOT NULL,
    limits      TEXT NOT NULL,
    metadata    TEXT NOT NULL,
    blocked     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    email       TEXT UNIQUE,
    team_id     TEXT REFERENCES teams (id) ON DELETE RESTRICT,
    role        TEXT NOT NULL,
    limits      TEXT NOT NULL,
    metadata    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX users_by_team ON users (team_id, created_at, id);

-- `hash` is the SHA-256 of the secret (hex); the secret itself is never stored.
-- `previous_hash` stays valid until `previous_valid_until` after a rotation.
CREATE TABLE api_keys (
    id                    TEXT PRIMARY KEY,
    hash                  TEXT NOT NULL UNIQUE,
    hint                  TEXT NOT NULL,
    alias                 TEXT,
    team_id               TEXT REFERENCES teams (id) ON DELETE RESTRICT,
    user_id               TEXT REFERENCES users (id) ON DELETE RESTRICT,
    role                  TEXT NOT NULL,
    models                TEXT NOT NULL,
    limits                TEXT NOT NULL,
    tags                  TEXT NOT NULL,
    metadata              TEXT NOT NULL,
    blocked               BOOLEAN NOT NULL DEFAULT FALSE,
    expires_at            BIGINT,
    previous_hash         TEXT UNIQUE,
    previous_valid_until  BIGINT,
    created_by            TEXT NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX api_keys_by_team ON api_keys (team_id, created_at, id);
CREATE INDEX api_keys_by_user ON api_keys (user_id, created_at, id);
CREATE INDEX api_keys_by_time ON api_keys (created_at, id);

CREATE TABLE admin_changes (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           BIGINT NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    target_kind  TEXT NOT NULL,
    target_id    TEXT NOT NULL,
    before       TEXT,
    after        TEXT
);
CREATE INDEX admin_changes_by_target ON admin_changes (target_kind, target_id, seq);
