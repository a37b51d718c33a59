/* smtp-private.h - what the files of the SMTP server share: the server,
 * the session and its transaction, the command handlers (one per verb or
 * close family, all with one signature) and local delivery. */
#ifndef ROOST_SMTP_PRIVATE_H
#define ROOST_SMTP_PRIVATE_H

#include "smtp.h"

#include "address.h"
#include "buf.h"
#include "smtp-parse.h"
#include "store.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct queue_runner;

/* Accounts known to have no quota: slots, and how long an entry holds. */
#define SMTP_UNLIMITED_SLOTS  1024
#define SMTP_UNLIMITED_TTL_MS 5000

struct smtp_listener_ctx {
	struct smtp_server *srv;
	enum smtp_listener which;
};

/* Accounts seen without a quota in the last SMTP_UNLIMITED_TTL_MS, for all
 * sessions (direct-mapped by id): their RCPT needs no quota lookup. DATA
 * still counts quota in the store's transaction, so a quota set meanwhile
 * is enforced there, at most that much later at RCPT. */
struct smtp_unlimited {
	pthread_mutex_t lock;
	struct {
		int64_t id;
		uint64_t until_ms;
	} slot[SMTP_UNLIMITED_SLOTS];
};

struct smtp_server {
	const struct config *cfg;
	struct db_pool *pool;
	struct directory *dir;
	struct smtp_listener_ctx listeners[3];
	struct queue_runner *qr;
	char default_hostname[256]; /* gethostname(), when [server] hostname is empty */
	struct smtp_unlimited unlimited;
};

/* One accepted recipient. */
struct smtp_rcpt {
	char address[ADDRESS_BUF_SIZE];     /* canonical, case preserved */
	char detail[ADDRESS_LOCAL_MAX + 1]; /* "tag" of user+tag@ ("" none) */
	int64_t *accounts;                  /* local accounts it resolved to (malloc'd) */
	size_t naccounts;
	char **remote; /* remote addresses: itself when relayed, or forwards */
	size_t nremote;
	struct smtp_rcpt_params params;
};

/* The message as it streams in (DATA or BDAT). */
struct smtp_body {
	struct store_incoming *in; /* local copy: Return-Path... + Received + data */
	struct buf remote;         /* outbound copy: Received + data (if needed) */
	struct buf stage;          /* bytes gathered for in, handed over 64 KiB at a time */
	bool want_remote;
	struct smtp_header_scan hs;
	uint64_t size; /* client bytes so far */
	uint64_t max;  /* [limits] message_size */
	bool too_big, nul, long_line;
	bool bare_lf; /* a DATA line ended in a bare LF (normalised) */
};

struct smtp_tx {
	bool active; /* MAIL accepted */
	struct address from;
	char from_str[ADDRESS_BUF_SIZE]; /* "" for the null path */
	struct smtp_mail_params params;
	struct smtp_rcpt *rcpts;
	size_t nrcpts, cap;
	size_t nlocal, nremote; /* recipients with local accounts / remote addresses */
	/* BDAT: chunks received so far, and the error to answer until LAST. */
	bool bdat;
	struct smtp_body *body;
	unsigned bdat_fail_code;
	const char *bdat_fail_esc, *bdat_fail_text;
	char id[24];
};

struct smtp_session {
	struct conn *c;
	struct smtp_server *srv;
	enum smtp_listener which;
	const struct config *cfg;
	struct buf line;
	char helo[256];
	bool helo_done, esmtp;
	bool authenticated;
	int64_t account_id;
	char user[ADDRESS_BUF_SIZE];
	unsigned bad_commands;
	unsigned transactions;
	bool quit;
	struct smtp_tx tx;
};

/* What a handler tells the generic step. */
enum smtp_outcome {
	SMTP_DONE,  /* replied; go on */
	SMTP_BAD,   /* replied with a client error: counts towards bad_commands */
	SMTP_CLOSE, /* replied (or the conn broke): end the session */
};

typedef enum smtp_outcome smtp_cmd_fn(struct smtp_session *s, const char *args, size_t len);

smtp_cmd_fn smtp_cmd_ehlo, smtp_cmd_helo, smtp_cmd_mail, smtp_cmd_rcpt, smtp_cmd_data,
    smtp_cmd_bdat, smtp_cmd_auth, smtp_cmd_starttls, smtp_cmd_rset, smtp_cmd_noop, smtp_cmd_quit,
    smtp_cmd_help, smtp_cmd_vrfy, smtp_cmd_expn;

/* ---- session helpers (session.c) ---- */

/* Forgets the transaction (RSET, after DATA, EHLO). */
void smtp_tx_reset(struct smtp_session *s);
/* Forgets everything back to the greeting (after STARTTLS). */
void smtp_session_reset(struct smtp_session *s);
/* AUTH may be used now: submission listeners, over TLS or on loopback
 * with [server] allow_plaintext_loopback. */
bool smtp_auth_allowed(const struct smtp_session *s);
/* Our host name for greetings and Received:. */
const char *smtp_hostname(const struct smtp_session *s);
/* Replies for a failed directory lookup (temporary or not). */
enum smtp_outcome smtp_reply_dir_err(struct smtp_session *s, enum directory_err e,
                                     const char *what);
/* The reply for a MAIL/RCPT parse failure; addr_esc: 5.1.7 or 5.1.3. */
enum smtp_outcome smtp_reply_parse_err(struct smtp_session *s, enum smtp_parse_status st,
                                       const char *addr_esc, const char *err);
/* 421 and close for a conn status other than CONN_OK. */
enum smtp_outcome smtp_conn_failed(struct smtp_session *s, enum conn_status st);
/* Does the authenticated user own address (their account, an alias or list
 * resolving to them)? -1 on a temporary directory failure. */
int smtp_sender_owned(struct smtp_session *s, const char *address);

/* ---- the message body (cmd-data.c) ---- */

/* Begins the body of the current transaction: the prepended header fields
 * go in first. */
struct smtp_body *smtp_body_begin(struct smtp_session *s);
/* Client bytes of the message (after dot-unstuffing). */
void smtp_body_write(struct smtp_body *b, const void *p, size_t n);
void smtp_body_free(struct smtp_body **b);
/* Ends the message and delivers it (local, then the outbound queue);
 * writes the one final reply and resets the transaction. */
enum smtp_outcome smtp_body_finish(struct smtp_session *s);

/* ---- local delivery (local-delivery.c) ---- */

struct smtp_result {
	unsigned code;
	const char *esc;
	const char *text;
};

/* Stores the message once for every local target of the transaction
 * (sub-address folders, one entry per account and folder), all or nothing.
 * Fills *r with the reply to give (250 only after the commit). */
void smtp_deliver_local(struct smtp_session *s, struct store_incoming *in, struct smtp_result *r);
/* Quota check at RCPT time for one account and an expected size (0 when
 * unknown): 0 fits, 1 full now (452 4.2.2), 2 can never fit (552 5.2.2),
 * -1 temporary failure. Accounts in the server's no-quota cache fit
 * without a lookup. */
int smtp_quota_check(struct smtp_session *s, int64_t account_id, uint64_t size);

#endif
