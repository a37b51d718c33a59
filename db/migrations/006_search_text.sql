-- 006_search_text: the decoded text the MIME parser extracts at delivery
-- (mime_message.search_text: subject and text bodies in UTF-8, cut like the
-- tsvector input), so IMAP SEARCH BODY/TEXT can check the RFC's substring
-- meaning on the candidates the GIN index on messages.search narrows to.
-- NULL for messages delivered before this migration: SEARCH then keeps the
-- index answer for them.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS search_text text;
