-- The audit log: records are the leaves of an append-only Merkle tree (RFC 9162). A record's
-- body is canonical JSON (RFC 8785) holding its own seq, hashed as stored; the tree is kept as
-- its perfect subtrees (`audit_nodes`, never changed once written); signed checkpoints commit
-- to its size and root. Times are Unix milliseconds.

CREATE TABLE audit_log (
    seq      INTEGER PRIMARY KEY,
    at       BIGINT NOT NULL,
    event    TEXT NOT NULL,
    team_id  TEXT,
    key_id   TEXT,
    body     TEXT NOT NULL
);
CREATE INDEX audit_log_by_at ON audit_log (at);
CREATE INDEX audit_log_by_team ON audit_log (team_id, seq) WHERE team_id IS NOT NULL;
CREATE INDEX audit_log_by_key ON audit_log (key_id, seq) WHERE key_id IS NOT NULL;

-- A perfect subtree: node = level * 2^56 + index at that level (level 0: the leaves).
CREATE TABLE audit_nodes (
    node  INTEGER PRIMARY KEY,
    hash  BLOB NOT NULL
);

-- The tree's size, and the last admin change folded into it. One row.
CREATE TABLE audit_head (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    size         BIGINT NOT NULL,
    changes_seq  BIGINT NOT NULL
);
INSERT INTO audit_head (id, size, changes_seq) VALUES (1, 0, 0);

CREATE TABLE audit_checkpoints (
    size    BIGINT PRIMARY KEY,
    at      BIGINT NOT NULL,
    root    BLOB NOT NULL,
    key     TEXT NOT NULL,
    note    TEXT NOT NULL
);

CREATE INDEX audit_checkpoints_by_at ON audit_checkpoints (at);

-- Every key that signed a checkpoint here, so that old checkpoints stay checkable after a
-- rotation.
CREATE TABLE audit_keys (
    key         TEXT PRIMARY KEY,
    first_used  BIGINT NOT NULL
);

-- Retention deletes old records' bodies (never the tree) with the gate opened in its own
-- transaction; nothing else may change or delete what was written.
CREATE TABLE audit_prune_gate (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    open  BOOLEAN NOT NULL
);
INSERT INTO audit_prune_gate (id, open) VALUES (1, FALSE);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN NOT (SELECT open FROM audit_prune_gate WHERE id = 1)
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_nodes_no_update BEFORE UPDATE ON audit_nodes
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_nodes_no_delete BEFORE DELETE ON audit_nodes
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_head_no_shrink BEFORE UPDATE ON audit_head
WHEN NEW.size < OLD.size OR NEW.changes_seq < OLD.changes_seq
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
