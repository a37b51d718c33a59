-- 004_pop3: what the POP3 server (pop3/) keeps beside the store.

-- Octets of each message as RETR sends it: bare LF turned into CRLF and a
-- CRLF added after an unterminated last line (pop3/maildrop.c). Messages
-- never change, so this is computed once per message.
CREATE TABLE pop3_message_sizes (
    message_id  bigint PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    size        bigint NOT NULL
);

-- Last POP3 login of each account, for LOGIN-DELAY (RFC 2449).
CREATE TABLE pop3_logins (
    account_id  bigint PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    last_login  timestamptz NOT NULL
);

-- When a POP3 session that ended with QUIT first retrieved an entry, for
-- EXPIRE (RFC 2449); only written when [pop3] expire is not NEVER.
CREATE TABLE pop3_retrieved (
    mailbox_id    bigint NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid           bigint NOT NULL,
    retrieved_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mailbox_id, uid)
);
