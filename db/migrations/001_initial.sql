-- 001_initial: the whole store of DESIGN.md.
-- Applied by db/migrate.c inside one transaction under an advisory lock.
-- Addresses and domain names are stored lower-case (ASCII folding only;
-- UTF-8 local parts are kept as given).

CREATE TABLE settings (
    key         text PRIMARY KEY,
    value       text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE domains (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name = lower(name) AND name <> ''),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE accounts (
    id             bigserial PRIMARY KEY,
    domain_id      bigint NOT NULL REFERENCES domains(id) ON DELETE RESTRICT,
    localpart      text NOT NULL CHECK (localpart <> ''),
    address        text NOT NULL UNIQUE,          -- localpart@domain, lower-case
    display_name   text NOT NULL DEFAULT '',
    password_hash  text,                           -- NULL: cannot log in locally
    source         text NOT NULL DEFAULT 'local' CHECK (source IN ('local', 'ldap')),
    external_id    text,                           -- LDAP DN or entryUUID
    is_admin       boolean NOT NULL DEFAULT false,
    disabled       boolean NOT NULL DEFAULT false,
    quota_bytes    bigint NOT NULL DEFAULT 0 CHECK (quota_bytes >= 0),   -- 0: unlimited
    used_bytes     bigint NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (domain_id, localpart)
);

-- Aliases and distribution lists: address -> one or more targets (local
-- addresses or remote ones). A catch-all has localpart '' and address '@domain'.
CREATE TABLE aliases (
    id          bigserial PRIMARY KEY,
    domain_id   bigint NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    localpart   text NOT NULL,
    address     text NOT NULL UNIQUE,
    source      text NOT NULL DEFAULT 'local' CHECK (source IN ('local', 'ldap')),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE alias_targets (
    alias_id    bigint NOT NULL REFERENCES aliases(id) ON DELETE CASCADE,
    target      text NOT NULL,
    PRIMARY KEY (alias_id, target)
);

-- UIDVALIDITY values come from one sequence so a mailbox deleted and created
-- again under the same name never reuses one. Starts near the epoch time of
-- installation, like most servers, and stays within 32 bits.
CREATE SEQUENCE uidvalidity_seq MINVALUE 1 MAXVALUE 4294967295 CYCLE;
SELECT setval('uidvalidity_seq', GREATEST(1, (extract(epoch FROM now())::bigint % 4000000000)));

CREATE TABLE mailboxes (
    id             bigserial PRIMARY KEY,
    account_id     bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name           text NOT NULL,                  -- UTF-8, hierarchy separator '/'
    special_use    text CHECK (special_use IN ('\All', '\Archive', '\Drafts', '\Flagged', '\Junk', '\Sent', '\Trash')),
    subscribed     boolean NOT NULL DEFAULT true,
    uidvalidity    bigint NOT NULL DEFAULT nextval('uidvalidity_seq'),
    uidnext        bigint NOT NULL DEFAULT 1,
    highestmodseq  bigint NOT NULL DEFAULT 1,
    -- Counters kept in the same transaction as every change to entries.
    messages       bigint NOT NULL DEFAULT 0,
    unseen         bigint NOT NULL DEFAULT 0,
    size_bytes     bigint NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, name)
);

-- Raw messages, stored once, content-addressed.
CREATE TABLE blobs (
    sha256      bytea PRIMARY KEY CHECK (length(sha256) = 32),
    size        bigint NOT NULL,
    data        bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL;  -- slices without decompressing

-- What the MIME parser found, once per distinct blob.
CREATE TABLE messages (
    id             bigserial PRIMARY KEY,
    sha256         bytea NOT NULL UNIQUE REFERENCES blobs(sha256),
    size           bigint NOT NULL,
    header_size    bigint NOT NULL,     -- octets of the top-level header incl. the blank line
    sent_date      timestamptz,         -- Date: header, NULL if absent/unparseable
    subject        text NOT NULL DEFAULT '',   -- decoded (RFC 2047) UTF-8
    from_addr      text NOT NULL DEFAULT '',   -- decoded display form, for SEARCH/SORT
    to_addr        text NOT NULL DEFAULT '',
    cc_addr        text NOT NULL DEFAULT '',
    bcc_addr       text NOT NULL DEFAULT '',
    message_id     text NOT NULL DEFAULT '',
    in_reply_to    text NOT NULL DEFAULT '',
    refs           text NOT NULL DEFAULT '',
    envelope       text NOT NULL,              -- IMAP ENVELOPE, rendered
    body           text NOT NULL,              -- IMAP BODY (non-extensible), rendered
    bodystructure  text NOT NULL,              -- IMAP BODYSTRUCTURE, rendered
    parts          bytea NOT NULL,             -- packed part table (core/mime.h)
    headers        text NOT NULL DEFAULT '',   -- top-level header fields, unfolded, for HEADER search
    preview        text NOT NULL DEFAULT '',
    search         tsvector NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_search_idx ON messages USING gin (search);

CREATE TABLE mailbox_entries (
    mailbox_id    bigint NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid           bigint NOT NULL CHECK (uid > 0 AND uid < 4294967296),
    message_id    bigint NOT NULL REFERENCES messages(id),
    flags         integer NOT NULL DEFAULT 0,   -- bits: STORE_FLAG_* in db/store.h
    keywords      text[] NOT NULL DEFAULT '{}',
    modseq        bigint NOT NULL,
    internaldate  timestamptz NOT NULL DEFAULT now(),
    size          bigint NOT NULL,              -- copy of messages.size, for fast STATUS/quota
    PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX mailbox_entries_modseq_idx ON mailbox_entries (mailbox_id, modseq);
CREATE INDEX mailbox_entries_message_idx ON mailbox_entries (message_id);

-- Expunged UIDs, for QRESYNC VANISHED (RFC 7162).
CREATE TABLE expunged (
    mailbox_id  bigint NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid         bigint NOT NULL,
    modseq      bigint NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX expunged_modseq_idx ON expunged (mailbox_id, modseq);

-- Outbound queue: one row per message, one per recipient.
CREATE TABLE queue (
    id               bigserial PRIMARY KEY,
    sha256           bytea NOT NULL REFERENCES blobs(sha256),
    sender           text NOT NULL,              -- '' is the null sender
    account_id       bigint REFERENCES accounts(id) ON DELETE SET NULL,
    envid            text,                       -- DSN ENVID (RFC 3461)
    dsn_ret          text CHECK (dsn_ret IN ('FULL', 'HDRS')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    attempts         integer NOT NULL DEFAULT 0,
    delay_notified   boolean NOT NULL DEFAULT false
);
CREATE INDEX queue_next_idx ON queue (next_attempt_at);

CREATE TABLE queue_recipients (
    queue_id     bigint NOT NULL REFERENCES queue(id) ON DELETE CASCADE,
    recipient    text NOT NULL,
    orcpt        text,                            -- DSN ORCPT
    notify       text,                            -- DSN NOTIFY
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    last_error   text,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (queue_id, recipient)
);
