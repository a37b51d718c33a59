-- 013_search_from_blob: delivery no longer writes the decoded text twice
-- (once into search_pending, again when the indexer filed it). It notes
-- only the message's id; the indexer (db/indexer.c) takes the text from
-- the stored blob with the MIME parser and files it once. Texts still
-- pending are taken from their blobs the same way.
ALTER TABLE search_pending DROP COLUMN body;

-- Texts and search strings are now lowered in C with the C.UTF-8 locale's
-- mappings (core/search-words.h), no longer by the database's lower().
-- The managed cluster's LC_CTYPE is C.UTF-8, and glibc's other UTF-8
-- locales map the same, except Turkish; there what was filed stays as it
-- is. Where lower() maps differently (an ICU or Turkish locale, or plain
-- C, which lowers ASCII only), texts filed before go back to the indexer.
DO $$
BEGIN
    IF lower(U&'AZ\00C9\0130\03A3\0416I') <> U&'az\00E9i\03C3\0436i' THEN
        INSERT INTO search_pending (message_id)
            SELECT message_id FROM message_search ON CONFLICT (message_id) DO NOTHING;
        DELETE FROM message_search;
    END IF;
END
$$;
