-- The audit log: records are the leaves of an append-only Merkle tree (RFC 9162). A record's
-- body is canonical JSON (RFC 8785) holding its own seq, hashed as stored; the tree is kept as
-- its perfect subtrees (`audit_nodes`, never changed once written); signed checkpoints commit
-- to its size and root. Times are Unix milliseconds.

CREATE TABLE audit_log (
    seq      BIGINT PRIMARY KEY,
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
    node  BIGINT PRIMARY KEY,
    hash  BYTEA NOT NULL
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
    root    BYTEA NOT NULL,
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

-- Append-only, by grants and by triggers (which bind the table's owner too). Retention
-- deletes old records' bodies, never the tree, in a transaction that sets
-- `switchyard.audit_prune`; nothing else may change or delete what was written.
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log, audit_nodes, audit_checkpoints, audit_keys FROM PUBLIC;

CREATE FUNCTION audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only (% on %)', TG_OP, TG_TABLE_NAME;
END;
$$;

CREATE FUNCTION audit_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('switchyard.audit_prune', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only (% on %)', TG_OP, TG_TABLE_NAME;
END;
$$;

CREATE FUNCTION audit_head_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.size < OLD.size OR NEW.changes_seq < OLD.changes_seq THEN
        RAISE EXCEPTION 'the audit log is append-only (the head may only grow)';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER audit_log_guard BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_guard();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse();
CREATE TRIGGER audit_nodes_guard BEFORE UPDATE OR DELETE ON audit_nodes
    FOR EACH ROW EXECUTE FUNCTION audit_refuse();
CREATE TRIGGER audit_nodes_no_truncate BEFORE TRUNCATE ON audit_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse();
CREATE TRIGGER audit_checkpoints_guard BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_refuse();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse();
CREATE TRIGGER audit_head_guard BEFORE UPDATE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_head_guard();
CREATE TRIGGER audit_head_no_delete BEFORE DELETE OR TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse();
