-- 010_recent: IMAP4rev1 \Recent (RFC 3501 section 2.3.2). A message is
-- recent in exactly one session: the first to SELECT its mailbox (or to be
-- told of it while the mailbox is selected) after it arrived. recent_uid is
-- the highest UID already claimed; a session claims with one atomic UPDATE
-- that returns the old value (imap/imap-recent.c). Existing messages start
-- as claimed, so an upgrade does not make every old message recent.
ALTER TABLE mailboxes ADD COLUMN recent_uid bigint NOT NULL DEFAULT 0;
UPDATE mailboxes SET recent_uid = uidnext - 1 WHERE uidnext > 1;

-- IMAP SEARCH BODY/TEXT mean a substring (RFC 3501 6.4.4), tested with
-- LIKE and a literal case-insensitive regular expression on the decoded
-- text and the header fields (imap/search-sql.c). Trigram indexes (pg_trgm)
-- give both tests their candidates without reading every message, and the
-- executor rechecks each, so answers stay exact. CREATE EXTENSION needs a
-- privileged role (the managed cluster's is superuser) and the contrib
-- files: without either, nothing is created and SEARCH reads every message
-- of the mailbox, still correctly.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE INDEX messages_search_text_trgm_idx ON messages
        USING gin (search_text gin_trgm_ops);
    CREATE INDEX messages_headers_trgm_idx ON messages
        USING gin (headers gin_trgm_ops);
EXCEPTION WHEN insufficient_privilege OR undefined_file OR feature_not_supported THEN
    RAISE NOTICE 'pg_trgm not available (%): SEARCH BODY/TEXT without trigram indexes', SQLERRM;
END
$$;
