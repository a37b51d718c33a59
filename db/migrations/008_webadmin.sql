-- 008_webadmin: what browser administration (webadmin/) keeps in the store.
-- In the database rather than in memory so that several `roost serve` nodes
-- behind one name share sign-ins and throttling.

-- Signed-in browser sessions. The cookie carries a random token; only its
-- SHA-256 is stored, so a copy of the database does not hand out sessions.
CREATE TABLE web_sessions (
    token_sha256  bytea PRIMARY KEY CHECK (length(token_sha256) = 32),
    account_id    bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    csrf_token    text NOT NULL,                 -- sent back in X-CSRF-Token
    peer_ip       text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen     timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL           -- idle expiry, capped by an absolute one
);
CREATE INDEX web_sessions_expires_idx ON web_sessions (expires_at);
CREATE INDEX web_sessions_account_idx ON web_sessions (account_id);

-- Failed sign-ins per key ('ip:192.0.2.1', 'account:a@example.org') within
-- the current window; a key over the limit is refused until the window ends.
CREATE TABLE web_login_failures (
    key           text PRIMARY KEY,
    failures      integer NOT NULL DEFAULT 0,
    window_start  timestamptz NOT NULL DEFAULT now()
);

-- One-time setup token printed by `roost serve` while no administrator
-- exists (SHA-256 only); deleted when used or when an administrator exists.
CREATE TABLE web_setup_tokens (
    token_sha256  bytea PRIMARY KEY CHECK (length(token_sha256) = 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);

-- The status page and the hourly chart count recent mail.
CREATE INDEX messages_created_idx ON messages (created_at);
CREATE INDEX queue_recipients_status_idx ON queue_recipients (status, updated_at);
CREATE INDEX accounts_display_name_idx ON accounts (lower(display_name));
CREATE INDEX accounts_used_idx ON accounts (used_bytes DESC, address);
