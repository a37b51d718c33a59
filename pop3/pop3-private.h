/* pop3-private.h - internals of pop3/ shared by its files (not an API for
 * other modules; the unit tests use the parser and the encoder). */
#ifndef ROOST_POP3_PRIVATE_H
#define ROOST_POP3_PRIVATE_H

#include "pop3.h"

#include "arena.h"
#include "buf.h"
#include "conn.h"
#include "store.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- command parser (parse.c) ---- */

#define POP3_VERB_MAX 8 /* longest verb accepted by the parser */
#define POP3_ARGS_MAX 4 /* arguments kept; more are only counted */

struct pop3_command {
	char verb[POP3_VERB_MAX + 1];    /* upper-cased */
	const char *args[POP3_ARGS_MAX]; /* NUL-terminated, in the arena */
	size_t nargs;                    /* all arguments, also those not kept */
	/* Everything after the verb and its single separating space, verbatim
	 * ("" if none): PASS takes it whole, as passwords may hold spaces. */
	const char *rest;
	/* The arena block holding rest and args (NULL if none), to wipe. */
	char *copy;
	size_t copy_len;
};

/* Splits one command line (without CRLF) into verb and arguments, which are
 * separated by runs of spaces (trailing spaces are tolerated). The strings
 * live in arena a. -1 with a static reason in *error_r for an empty line, a
 * verb that is not 1..POP3_VERB_MAX letters, or control bytes (NUL, CR, LF,
 * TAB, DEL...) anywhere. */
int pop3_command_parse(const char *line, size_t len, struct arena *a, struct pop3_command *cmd_r,
                       const char **error_r);
/* A message number: decimal digits only, 1..nmsgs. Writes the 0-based
 * index. -1 for anything else. */
int pop3_parse_msgnum(const char *s, size_t nmsgs, size_t *index_r);
/* TOP's line count: decimal digits only (any size; huge means "all"). */
int pop3_parse_lines(const char *s, uint64_t *lines_r);
/* [pop3] expire: "NEVER" (any case) gives *days_r = -1, else 0..36500. */
int pop3_parse_expire(const char *s, int64_t *days_r);

/* ---- message encoder (parse.c) ----
 * Turns a stored message into what RETR/TOP send: bare LF becomes CRLF, a
 * message not ending in LF gets a final CRLF, lines starting with "." get
 * one more. Bytes are fed in slices of any size; the output is the same
 * however the input is cut. Without stuffing, the output size is what
 * pop3_wire_size() (and the SQL in maildrop.c) computes. */
struct pop3_encoder {
	uint64_t body_lines_left; /* TOP: body lines still to send */
	bool top;                 /* stop after the header and body_lines_left lines */
	bool in_header;
	bool at_line_start;
	bool line_empty; /* only CRs seen on this line so far */
	bool prev_cr;
	bool done; /* TOP reached its end; ignore further input */
	bool any;  /* at least one byte seen */
};

/* top: false for RETR; true for TOP with lines body lines. */
void pop3_encoder_init(struct pop3_encoder *e, bool top, uint64_t lines);
/* Appends the encoded form of p[0..n) to out. -1 if out is full. */
int pop3_encode(struct pop3_encoder *e, const char *p, size_t n, struct buf *out);
/* Appends the final CRLF if the message did not end with a line end, and
 * the terminating ".\r\n". */
int pop3_encode_finish(struct pop3_encoder *e, struct buf *out);
/* Octets RETR sends for these bytes, without the stuffing and the final
 * ".\r\n" (RFC 1939 sizes). For tests; the server has it stored. */
uint64_t pop3_wire_size(const char *p, size_t n);

/* ---- the server and its locks (server.c, lock.c) ---- */

struct pop3_locks {
	pthread_mutex_t mu;
	PGconn *conn; /* dedicated, holds the advisory locks */
	const char *conninfo;
	int64_t *held; /* mailbox ids locked by sessions of this process */
	size_t nheld, capheld;
};

struct pop3_server {
	const struct config *cfg;
	struct db_pool *pool;
	struct directory *dir;
	int64_t expire_days;  /* -1: NEVER */
	uint64_t login_delay; /* seconds; 0: none */
	struct pop3_locks locks;
};

void pop3_locks_init(struct pop3_locks *l, const char *conninfo);
void pop3_locks_deinit(struct pop3_locks *l);
/* 1 locked, 0 held by another session (here or on another node), -1 the
 * database cannot be reached. */
int pop3_lock_acquire(struct pop3_locks *l, int64_t mailbox_id);
void pop3_lock_release(struct pop3_locks *l, int64_t mailbox_id);

/* ---- the maildrop (maildrop.c) ---- */

struct pop3_msg {
	uint32_t uid;
	int64_t message_id;
	uint64_t raw_size; /* bytes stored */
	uint64_t size;     /* octets RETR sends (without stuffing) */
	bool deleted;
	bool retrieved;
};

struct pop3_maildrop {
	int64_t mailbox_id;
	uint32_t uidvalidity;
	struct pop3_msg *msgs;
	size_t n;
};

/* Fills the sizes of messages seen for the first time, then lists the
 * INBOX entries ascending by UID. -1 on a database failure (logged). */
int pop3_maildrop_load(PGconn *conn, struct pop3_maildrop *md);
void pop3_maildrop_free(struct pop3_maildrop *md);
/* LOGIN-DELAY: records this login and returns 1 if the previous one is at
 * least delay seconds old, 0 if it is too recent, -1 on failure. */
int pop3_login_delay_pass(PGconn *conn, int64_t account_id, uint64_t delay);
/* The UPDATE state: records retrievals (if expire_days >= 0), expunges the
 * DELE'd messages and those retrieved expire_days ago or more, in one
 * store_expunge() transaction. *removed_r: how many went. -1 on failure
 * (then nothing was expunged). */
int pop3_maildrop_update(PGconn *conn, const struct pop3_maildrop *md, int64_t expire_days,
                         size_t *removed_r);

/* ---- sessions (session.c, auth.c, commands.c) ---- */

enum pop3_state { POP3_AUTHORIZATION, POP3_TRANSACTION };

struct pop3_session {
	struct pop3_server *srv;
	struct conn *c;
	enum pop3_state state;
	struct arena *cmd_arena; /* reset after every command */
	struct buf line;
	char user[DIR_PASSWORD_MAX + 1]; /* from USER, "" if none */
	bool have_user;
	struct directory_account account;
	struct pop3_maildrop md;
	bool locked;
	bool quit;
	unsigned bad_commands;
	size_t retrieved;
	size_t line_max;
};

/* Command flags (STYLE.md: checked by one generic step in session.c). */
#define POP3_CMD_AUTHZ  0x1u /* allowed in the AUTHORIZATION state */
#define POP3_CMD_TRANS  0x2u /* allowed in the TRANSACTION state */
#define POP3_CMD_SECURE 0x4u /* carries a password: TLS or allowed loopback */

typedef void pop3_cmd_fn(struct pop3_session *s, const struct pop3_command *cmd);

/* auth.c */
pop3_cmd_fn pop3_cmd_user, pop3_cmd_pass, pop3_cmd_auth, pop3_cmd_stls, pop3_cmd_capa;
/* commands.c */
pop3_cmd_fn pop3_cmd_stat, pop3_cmd_list, pop3_cmd_uidl, pop3_cmd_retr, pop3_cmd_top, pop3_cmd_dele,
    pop3_cmd_noop, pop3_cmd_rset, pop3_cmd_quit;

/* session.c: replies and shared steps. */
/* The config in force (config_current(), after a SIGHUP reload too). */
const struct config *pop3_cfg(const struct pop3_session *s);
void pop3_reply(struct pop3_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A client mistake: "-ERR <text>", counted towards bad_commands. */
void pop3_reply_bad(struct pop3_session *s, const char *text);
/* An internal failure: "-ERR [SYS/TEMP] ..." with an id also logged with what. */
void pop3_reply_internal(struct pop3_session *s, const char *what);
/* The one mapping of store errors to replies (STYLE.md). */
void pop3_reply_store_err(struct pop3_session *s, enum store_err e, const char *what);
/* Passwords may be sent now (TLS, or loopback when allowed). */
bool pop3_secure(const struct pop3_session *s);
/* A pooled connection for one unit of work, or NULL after answering
 * "-ERR [SYS/TEMP]" itself. */
PGconn *pop3_db_borrow(struct pop3_session *s);
void pop3_db_return(struct pop3_session *s, PGconn **conn);

#endif
