-- 002_outbound.sql - outbound delivery: DKIM keys per domain, and what the
-- queue runner needs to remember between attempts for DSNs.

-- One signing key per domain (generated on first use: `roost domain dns` or
-- the first outbound message). private_pem never leaves the server.
CREATE TABLE dkim_keys (
    domain_id    bigint PRIMARY KEY REFERENCES domains(id) ON DELETE CASCADE,
    selector     text NOT NULL CHECK (selector ~ '^[a-z0-9][a-z0-9-]*$'),
    algorithm    text NOT NULL CHECK (algorithm IN ('rsa-sha256', 'ed25519-sha256')),
    private_pem  text NOT NULL,
    public_b64   text NOT NULL,              -- SubjectPublicKeyInfo (rsa) or raw key (ed25519), base64
    created_at   timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE queue ADD COLUMN smtputf8 boolean NOT NULL DEFAULT false;
ALTER TABLE queue ADD COLUMN last_attempt_at timestamptz;

-- Per recipient: the last remote host tried and the enhanced status of the
-- last result, for the Remote-MTA and Status fields of DSNs.
ALTER TABLE queue_recipients ADD COLUMN remote_mta text;
ALTER TABLE queue_recipients ADD COLUMN dsn_status text;
