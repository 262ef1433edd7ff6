-- A call without a key, team or user needs no entry in that column's index; the indexes follow
-- `seq`, the order raw records are paged in.
DROP INDEX spend_by_key;
DROP INDEX spend_by_team;
DROP INDEX spend_by_user;
CREATE INDEX spend_by_key ON spend (key_id, seq) WHERE key_id IS NOT NULL;
CREATE INDEX spend_by_team ON spend (team_id, seq) WHERE team_id IS NOT NULL;
CREATE INDEX spend_by_user ON spend (user_id, seq) WHERE user_id IS NOT NULL;
-- A report of every value of a dimension reads a range of days of that dimension.
DROP INDEX spend_daily_by_day;
CREATE INDEX spend_daily_by_dimension_day ON spend_daily (dimension, day);
