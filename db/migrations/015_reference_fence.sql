-- 015_reference_fence: the foreign keys a delivery checked row by row
-- give way to one lock per transaction.
--
-- Each delivery inserted a message row (checked against blobs) and an
-- entry (checked against its mailbox and its message). Each check is a
-- query of its own that also locks the row it finds; together they were
-- about a tenth of a delivery's database CPU (bench/store-deliver, 16
-- threads: 0.52 -> 0.47 ms a message).
--
-- What they guarded: blobs and message rows are deleted only by
-- store_gc() (db/store-entry.c), when nothing refers to them any more,
-- and a delivery may refer anew to a row gc has just found unreferenced
-- (the same bytes delivered or queued again). Now every transaction that
-- stores bytes holds the shared side of a transaction advisory lock keyed
-- by their digest (the "reference fence", STORE_FENCE_* in
-- db/store-private.h) from its blob statement on, and gc deletes a row
-- only after taking the exclusive side of its fence, without waiting: it
-- then sees every reference that was being made to it as committed, and
-- none is made while it deletes; bytes being delivered are left for the
-- next run. A copy refers only to message rows that entries of its source
-- mailbox hold, and those stay while it holds that mailbox's lock (every
-- writer of entries locks their mailbox row first); for the same reason a
-- mailbox cannot vanish under a new entry.
--
-- The entries of a deleted mailbox went with it (ON DELETE CASCADE); a
-- trigger on mailboxes does that now, also when an account or a domain
-- is removed (their rows cascade to the mailboxes).
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_sha256_fkey;
ALTER TABLE mailbox_entries
    DROP CONSTRAINT IF EXISTS mailbox_entries_mailbox_id_fkey,
    DROP CONSTRAINT IF EXISTS mailbox_entries_message_id_fkey;

CREATE FUNCTION roost_mailboxes_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM mailbox_entries WHERE mailbox_id IN (SELECT id FROM gone);
    RETURN NULL;
END
$$;

CREATE TRIGGER mailboxes_deleted
    AFTER DELETE ON mailboxes REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION roost_mailboxes_deleted();
