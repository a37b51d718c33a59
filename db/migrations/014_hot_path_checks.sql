-- 014_hot_path_checks: the CHECK constraints a delivery paid for without
-- touching their columns.
--
-- PostgreSQL evaluates every CHECK constraint of a table on every UPDATE,
-- whatever columns it sets, and prepares each one's expression afresh in
-- every statement. Each delivery updates its account (used_bytes) and its
-- mailbox (UIDNEXT, counters) and inserts an entry: five checks per
-- delivery, none of whose columns it changes but the entry's UID. Measured
-- with pgbench on the delivery's statements, they were 7% of its database
-- CPU.
--
-- The account's and the mailbox's checks become triggers that run only
-- when those columns are written (INSERT, or UPDATE OF them), with the
-- same SQLSTATE (23514) and constraint names. The entry's UID range moves
-- to the mailbox's UIDNEXT, which every entry's UID is taken from (as
-- UIDNEXT - 1 after the increment, store-deliver.c and store-copy.c): one
-- check on a row the delivery updates anyway instead of one more table.

-- Raises what a failed CHECK constraint would.
CREATE FUNCTION roost_check_failed(tbl text, con text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'new row for relation "%" violates check constraint "%"', tbl, con
        USING ERRCODE = 'check_violation', TABLE = tbl, CONSTRAINT = con;
END
$$;

CREATE FUNCTION roost_accounts_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.localpart = '' THEN
        PERFORM roost_check_failed('accounts', 'accounts_localpart_check');
    END IF;
    IF NEW.source NOT IN ('local', 'ldap') THEN
        PERFORM roost_check_failed('accounts', 'accounts_source_check');
    END IF;
    IF NEW.quota_bytes < 0 THEN
        PERFORM roost_check_failed('accounts', 'accounts_quota_bytes_check');
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER accounts_check
    BEFORE INSERT OR UPDATE OF localpart, source, quota_bytes ON accounts
    FOR EACH ROW EXECUTE FUNCTION roost_accounts_check();

ALTER TABLE accounts
    DROP CONSTRAINT IF EXISTS accounts_localpart_check,
    DROP CONSTRAINT IF EXISTS accounts_source_check,
    DROP CONSTRAINT IF EXISTS accounts_quota_bytes_check;

CREATE FUNCTION roost_mailboxes_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.special_use NOT IN ('\All', '\Archive', '\Drafts', '\Flagged', '\Junk', '\Sent',
                               '\Trash') THEN
        PERFORM roost_check_failed('mailboxes', 'mailboxes_special_use_check');
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER mailboxes_check
    BEFORE INSERT OR UPDATE OF special_use ON mailboxes
    FOR EACH ROW EXECUTE FUNCTION roost_mailboxes_check();

ALTER TABLE mailboxes DROP CONSTRAINT IF EXISTS mailboxes_special_use_check;

-- UIDs are 1 .. 2^32 - 1 (RFC 3501 2.3.1.1), so UIDNEXT is 1 .. 2^32.
ALTER TABLE mailboxes
    ADD CONSTRAINT mailboxes_uidnext_check CHECK (uidnext BETWEEN 1 AND 4294967296);
ALTER TABLE mailbox_entries DROP CONSTRAINT IF EXISTS mailbox_entries_uid_check;
