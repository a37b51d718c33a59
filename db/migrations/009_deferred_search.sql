-- 009_deferred_search: the tsvector of a message is built by the indexer
-- (db/indexer.c) from messages.search_text shortly after delivery, not inside
-- the delivery transaction, so delivery commits at close to the raw commit
-- rate. A message not indexed yet has search NULL; IMAP SEARCH treats it as
-- a candidate and checks the substring on search_text.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS search_text text;
ALTER TABLE messages ALTER COLUMN search DROP NOT NULL;
UPDATE messages SET search_text = '' WHERE search_text IS NULL;
ALTER TABLE messages ALTER COLUMN search_text SET DEFAULT '';
ALTER TABLE messages ALTER COLUMN search_text SET NOT NULL;
CREATE INDEX messages_unindexed_idx ON messages (id) WHERE search IS NULL;
-- Decoded text compresses well and is written once: lz4 (PostgreSQL 14 and
-- later, when built with it) costs a fraction of pglz's CPU at delivery.
DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 140000 THEN
        ALTER TABLE messages ALTER COLUMN search_text SET COMPRESSION lz4;
        ALTER TABLE messages ALTER COLUMN headers SET COMPRESSION lz4;
    END IF;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    NULL;  -- no lz4 in this build: keep the default
END
$$;
