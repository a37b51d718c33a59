/* imap-search.h - SEARCH, SORT and THREAD internals shared by
 * cmd-search.c, cmd-sort.c, cmd-thread.c and the search-*.c files, and
 * tested by tests/unit/test-imap-search.c.
 *
 * A search program is parsed into a tree of struct imap_search_key (from
 * the command's arguments), then translated into one parameterised SQL
 * condition over mailbox_entries e JOIN messages m (search-sql.c). */
#ifndef ROOST_IMAP_SEARCH_H
#define ROOST_IMAP_SEARCH_H

#include "buf.h"

#include <libpq-fe.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- RFC 5256 helpers (search-subject.c) ---- */

/* The base subject of section 2.1 of a decoded (UTF-8) subject, into out
 * (reset first). *reply_r (may be NULL): a Re:/Fwd: leader or [fwd: ...]
 * wrapper was removed (THREAD uses it). */
void imap_base_subject(const char *subject, struct buf *out, bool *reply_r);
/* The local part of the first address of a decoded address list
 * ("Name <a@b>, c@d" gives "a"), into out (reset first); SORT FROM/TO/CC. */
void imap_first_mailbox(const char *addrs, struct buf *out);

/* ---- THREAD (search-thread.c) ---- */

struct imap_thread_msg {
	uint32_t id;            /* what is printed: MSN or UID */
	time_t date;            /* sent date, else INTERNALDATE */
	const char *message_id; /* raw header values ("" if none) */
	const char *in_reply_to;
	const char *references;
	const char *base_subject; /* imap_base_subject() */
	bool reply;               /* its subject had a Re:/Fwd: leader */
};

/* Append the THREAD response data (without "* THREAD") for msgs, which are
 * in mailbox order. */
void imap_thread_references(const struct imap_thread_msg *msgs, size_t n, struct buf *out);
void imap_thread_orderedsubject(const struct imap_thread_msg *msgs, size_t n, struct buf *out);

/* ---- search programs (search-parse.c) ---- */

struct arena;

/* The command's arguments as a flat token stream: the adapter in
 * cmd-search.c flattens the parsed command, tests write tables. */
enum imap_stok_type {
	IMAP_STOK_ATOM,   /* atom, number, sequence set, "$" */
	IMAP_STOK_STRING, /* quoted string or literal (may hold any byte but NUL) */
	IMAP_STOK_LPAREN,
	IMAP_STOK_RPAREN,
};

struct imap_stok {
	enum imap_stok_type type;
	const char *s; /* NUL-terminated */
	size_t len;
};

enum imap_skey_type {
	SKEY_ALL,
	SKEY_AND,       /* children: every one */
	SKEY_OR,        /* children: two */
	SKEY_NOT,       /* children: one */
	SKEY_SEQSET,    /* str: a sequence set of MSNs */
	SKEY_UIDSET,    /* str: a UID set */
	SKEY_SAVED,     /* "$" (SEARCHRES) */
	SKEY_FLAG,      /* num: STORE_FLAG_* bit that must be set */
	SKEY_UNFLAG,    /* num: STORE_FLAG_* bit that must be clear */
	SKEY_KEYWORD,   /* str */
	SKEY_UNKEYWORD, /* str */
	SKEY_RECENT,
	SKEY_BEFORE, /* str: "YYYY-MM-DD"; INTERNALDATE */
	SKEY_ON,
	SKEY_SINCE,
	SKEY_SENTBEFORE, /* Date: header (INTERNALDATE when absent) */
	SKEY_SENTON,
	SKEY_SENTSINCE,
	SKEY_LARGER, /* num */
	SKEY_SMALLER,
	SKEY_FROM, /* str: substring of the decoded field */
	SKEY_TO,
	SKEY_CC,
	SKEY_BCC,
	SKEY_SUBJECT,
	SKEY_HEADER, /* field + str */
	SKEY_BODY,   /* str */
	SKEY_TEXT,   /* str */
	SKEY_MODSEQ, /* num (CONDSTORE) */
};

struct imap_skey {
	enum imap_skey_type type;
	struct imap_skey *child; /* AND, OR, NOT */
	struct imap_skey *next;  /* sibling */
	const char *str;
	const char *field;
	uint64_t num;
};

/* Deepest nesting of parentheses, NOT and OR accepted. */
#define IMAP_SEARCH_MAX_DEPTH 32
/* Most keys in one program (each may become an SQL parameter). */
#define IMAP_SEARCH_MAX_KEYS 200

struct imap_search_prog {
	struct imap_skey *root; /* an SKEY_AND of the top-level keys */
	bool uses_modseq;       /* a MODSEQ key: answer with (MODSEQ n) */
	bool uses_saved;        /* "$" */
	unsigned nkeys;
};

/* Parses search keys from toks[*pos] to the end. Allocates from a. Returns
 * 0, or -1 with a static client-facing message in *error_r. A CHARSET is
 * not handled here (cmd-search.c does it). */
int imap_search_parse(struct arena *a, const struct imap_stok *toks, size_t ntoks, size_t *pos,
                      struct imap_search_prog *prog, const char **error_r);
/* "1-Feb-1994" (RFC 3501 date) to "1994-02-01" in out[11]. 0 or -1. */
int imap_search_date(const char *s, char out[11]);
/* Whether s is a valid sequence set (nz-number or "*", ranges, commas). */
bool imap_search_seqset_valid(const char *s);

/* ---- translation to SQL (search-sql.c) ---- */

/* Most parameters one translated program uses (3 per key at most, plus
 * the caller's own). */
#define IMAP_SEARCH_MAX_PARAMS (3 * IMAP_SEARCH_MAX_KEYS + 8)

struct imap_search_sql {
	struct buf where; /* the condition, over "e" (mailbox_entries) and "m" (messages) */
	const char *params[IMAP_SEARCH_MAX_PARAMS];
	int nparams;
	bool needs_messages; /* the condition refers to m */
	bool substring;      /* BODY or TEXT: best run with the trigram indexes */
	struct arena *arena; /* parameter strings */
};

/* Resolves a set key into a multirange of UIDs ("{[1,4],[9,9]}", "{}" when
 * empty), given by the caller who knows the mailbox view. */
struct imap_search_resolver {
	void *ctx;
	/* kind: SKEY_SEQSET, SKEY_UIDSET, SKEY_SAVED or SKEY_RECENT. -1 if
	 * the set cannot be resolved (then the search fails with BAD). */
	int (*uids)(void *ctx, enum imap_skey_type kind, const char *set, struct buf *out);
};

/* Translates prog into s->where with parameters numbered from first_param
 * (the caller's own come first). -1 with *error_r on a set that does not
 * resolve. */
int imap_search_sql_build(const struct imap_search_prog *prog,
                          const struct imap_search_resolver *res, int first_param,
                          struct imap_search_sql *s, const char **error_r);
void imap_search_sql_init(struct imap_search_sql *s, struct arena *a);
void imap_search_sql_free(struct imap_search_sql *s);

/* ---- running a program against the selected mailbox (cmd-search.c) ---- */

struct imap_cmd;

/* Reads the rest of the command line(s) as tokens (in cmd->arena). -1 on
 * a syntax error (cmd->error set). */
int imap_search_read_tokens(struct imap_cmd *cmd, struct imap_stok **toks_r, size_t *n_r);
/* CHARSET names SEARCH accepts: UTF-8 and US-ASCII. */
bool imap_search_charset_ok(const char *charset);
/* SORT and THREAD: a mandatory charset at toks[pos], then the search
 * program, run with imap_search_run(cols, join). 0 with *res_r; 1 when the
 * command has been answered (NO [BADCHARSET], database unavailable or
 * failed: what names it in the log); -1 on a client error (cmd->error). */
int imap_search_select(struct imap_cmd *cmd, const struct imap_stok *toks, size_t n, size_t pos,
                       const char *cols, const char *what, PGresult **res_r);
/* Runs prog over the messages of the view: "SELECT cols FROM
 * mailbox_entries e [JOIN messages m] WHERE ... ORDER BY e.uid" (the join
 * when join or when the program needs it); the first column of cols must
 * be e.uid. Rows of messages the view does not hold yet are left out by
 * the query. 0 with *res_r (PQclear it); -1: a client error (cmd->error
 * set); -2: a database failure (logged). */
int imap_search_run(struct imap_cmd *cmd, PGconn *conn, const struct imap_search_prog *prog,
                    const char *cols, bool join, PGresult **res_r);

#endif
