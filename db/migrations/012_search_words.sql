-- 012_search_words: SEARCH BODY/TEXT of a string that holds no ASCII
-- separator (a word, the common case) is tested on the message's distinct
-- words instead of its whole text. The trigram index gives candidates and
-- every candidate is rechecked; on a word that every message of a large
-- mailbox holds, detoasting and scanning each whole text took 600 ms per
-- 100,000 messages, while its words are a fraction of its size and often
-- stay inline. The trigram index moves from the text to the words: a
-- text's words hold the same trigrams, and any other string gets its
-- candidates from the words its runs must be in (imap/search-sql.c).
--
-- search_words(t): the distinct maximal runs of t without an ASCII byte
-- other than a letter or a digit, each with a space before it, and one
-- space after the last (so " run " is a whole word). Non-ASCII
-- characters never separate, so no locale decides what a word is. A string
-- s without such a byte occurs in t exactly when it occurs in
-- search_words(t): an occurrence in t cannot cross a separator, so it lies
-- inside one run; and one in the words cannot cross a space. A run of s
-- after a separator begins a word of t, one before a separator ends it.
-- imap/search-sql.c must use the same separators.
CREATE FUNCTION search_words(t text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT coalesce(' ' || string_agg(DISTINCT w, ' ') || ' ', '')
    FROM regexp_split_to_table(t, '[\x01-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]+') AS w
    WHERE w <> ''
$$;

-- The text's own trigram index goes: the words' serves every search.
DROP INDEX IF EXISTS message_search_body_trgm_idx;

-- The indexer (db/indexer.c) fills the column as it files each text, by
-- the same rule in C (core/search-words.h), which takes microseconds where
-- search_words() takes milliseconds; the SQL function stays for scripts
-- and tests that file texts themselves. lz4 as for the text (migration
-- 011) where this PostgreSQL has it; the statements are EXECUTEd so that
-- an older parser meets them only inside the handler.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE message_search ADD COLUMN words text COMPRESSION lz4 '
            'NOT NULL DEFAULT ''''';
EXCEPTION WHEN syntax_error OR feature_not_supported OR invalid_parameter_value THEN
    EXECUTE 'ALTER TABLE message_search ADD COLUMN words text NOT NULL DEFAULT ''''';
END
$$;

-- Texts filed before have no words yet: they go back to the indexer, and
-- SEARCH reads them from search_pending until it has filed them again, so
-- none is missed meanwhile.
INSERT INTO search_pending (message_id, body)
    SELECT message_id, body FROM message_search ON CONFLICT (message_id) DO NOTHING;
DELETE FROM message_search;

DO $$
BEGIN
    CREATE INDEX message_search_words_trgm_idx ON message_search
        USING gin (words gin_trgm_ops);
EXCEPTION WHEN undefined_object THEN
    RAISE NOTICE 'pg_trgm not available (%): SEARCH BODY/TEXT without trigram indexes', SQLERRM;
END
$$;
