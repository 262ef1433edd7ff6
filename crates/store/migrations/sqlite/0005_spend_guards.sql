-- What the guards found and did on each call, as JSON ([{"entity", "action", "count"}]; empty
-- for a call they had nothing to say about): counts per entity, never the values.
ALTER TABLE spend ADD COLUMN guards TEXT NOT NULL DEFAULT '';
