-- 011_search_index: IMAP SEARCH BODY/TEXT is an exact substring test over
-- trigram indexes (migration 010), so the tsvector is unused; and keeping
-- trigram indexes on messages made every delivery pay for them (extracting
-- and inserting thousands of trigrams inside the delivery transaction).
--
-- Now delivery writes the decoded text to search_pending, a table with
-- no index but its key, and the indexer (db/indexer.c) moves it within
-- moments into message_search, where the trigram indexes live, together
-- with a copy of the header fields. SEARCH tests both tables
-- (imap/search-sql.c): pending rows are few, read whole, so no answer
-- is ever missing.
CREATE TABLE search_pending (
    message_id  bigint PRIMARY KEY,   -- no foreign key: the indexer skips vanished messages
    body        text NOT NULL
);

CREATE TABLE message_search (
    message_id  bigint PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    headers     text NOT NULL,
    body        text NOT NULL
);

-- Decoded text compresses well and is written once: lz4 (PostgreSQL 14 and
-- later, when built with it) costs a fraction of pglz's CPU.
DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 140000 THEN
        ALTER TABLE search_pending ALTER COLUMN body SET COMPRESSION lz4;
        ALTER TABLE message_search ALTER COLUMN body SET COMPRESSION lz4;
        ALTER TABLE message_search ALTER COLUMN headers SET COMPRESSION lz4;
    END IF;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    NULL;  -- no lz4 in this build: keep the default
END
$$;

-- What is already stored is indexed by the indexer after the upgrade.
INSERT INTO search_pending (message_id, body) SELECT id, search_text FROM messages;

DROP INDEX IF EXISTS messages_search_text_trgm_idx;
DROP INDEX IF EXISTS messages_headers_trgm_idx;
DROP INDEX IF EXISTS messages_unindexed_idx;
DROP INDEX IF EXISTS messages_search_idx;
ALTER TABLE messages DROP COLUMN search;
ALTER TABLE messages DROP COLUMN search_text;

-- Every delivery updates accounts.used_bytes: with no index on it the
-- update can stay on the row's page (HOT) instead of adding an entry to
-- every index of accounts. The admin list sorts thousands of accounts by
-- usage in memory just as fast.
DROP INDEX IF EXISTS accounts_used_idx;

DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE INDEX message_search_body_trgm_idx ON message_search
        USING gin (body gin_trgm_ops);
    CREATE INDEX message_search_headers_trgm_idx ON message_search
        USING gin (headers gin_trgm_ops);
EXCEPTION WHEN insufficient_privilege OR undefined_file OR feature_not_supported THEN
    RAISE NOTICE 'pg_trgm not available (%): SEARCH BODY/TEXT without trigram indexes', SQLERRM;
END
$$;
