/* imap-private.h - internals of imap/ shared by its files: the session, the
 * command table row and handler signature, the command argument parser,
 * the reply writers, the selected mailbox view and its synchronisation.
 * Not an API for other modules (tests/unit/test-imap-parse.c and the fuzz
 * target use the parser through it).
 *
 * Lifetimes: a session lives for one connection; s->arena lives as long as
 * the session, cmd->arena is reset after every command (so every string the
 * parser hands out is valid until the command ends). */
#ifndef ROOST_IMAP_PRIVATE_H
#define ROOST_IMAP_PRIVATE_H

#include "imap.h"

#include "arena.h"
#include "buf.h"
#include "conn.h"
#include "directory.h"
#include "notifier.h"
#include "pool.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* ---- the server (shared by every session of the process) ---- */

struct imap_server {
	const struct config *cfg; /* start-up config; imap_cfg() prefers the current one */
	struct db_pool *pool;
	struct directory *dir;
	struct notifier *notifier; /* may be NULL (then IDLE polls) */
};

/* ---- sessions ---- */

enum imap_state {
	IMAP_STATE_NOTAUTH = 0,
	IMAP_STATE_AUTH,
	IMAP_STATE_SELECTED,
	IMAP_STATE_LOGOUT,
};

/* Extensions a client turned on (ENABLE, or implicitly by using them). */
#define IMAP_EXT_CONDSTORE 0x01u /* FETCH responses carry MODSEQ */
#define IMAP_EXT_QRESYNC   0x02u /* VANISHED instead of EXPUNGE; implies CONDSTORE */
#define IMAP_EXT_REV2      0x04u /* IMAP4rev2 behaviour (RFC 9051) */
#define IMAP_EXT_UTF8      0x08u /* UTF8=ACCEPT: mailbox names in UTF-8 */

struct imap_recent_range {
	uint32_t lo, hi; /* UIDs lo + 1 to hi */
};

/* The session's picture of the selected mailbox (RFC 3501 section 2.3.1.2
 * and 7.4.1). entries[i] is message sequence number i + 1, ascending by
 * UID; it changes only in imap_view_sync() and in the commands that report
 * their own changes, so MSNs stay what the client was last told. */
struct imap_view {
	int64_t mailbox_id;
	char *name;    /* UTF-8, malloc'd */
	bool readonly; /* EXAMINE, or the mailbox cannot be written */
	uint32_t uidvalidity;
	uint32_t uidnext;            /* as last reported */
	uint64_t highestmodseq;      /* changes up to here are known to the client */
	struct store_entry *entries; /* malloc'd, store_entries_free() form */
	size_t count;
	size_t cap;
	struct notifier_sub *sub; /* NULL if there is no notifier */
	bool dirty;               /* our own session changed the mailbox: sync */
	/* Keywords announced in the last FLAGS response (malloc'd): a FETCH
	 * never shows one the client was not told of first. */
	char **keywords;
	size_t nkeywords;
	/* \Recent (imap-recent.c): the UID ranges (lo, hi] this session
	 * claimed, ascending (read-only: the ones it saw unclaimed). */
	struct imap_recent_range *recent;
	size_t nrecent;
};

/* COMPRESS=DEFLATE (cmd-compress.c) puts a filter between the session and
 * the conn: once s->filter is set, every read and write of the session goes
 * through it (imap_io_* below). Each function has the conn's contract. */
struct imap_io_filter {
	enum conn_status (*write)(void *ctx, struct conn *c, const void *p, size_t n);
	enum conn_status (*flush)(void *ctx, struct conn *c);
	enum conn_status (*read_line)(void *ctx, struct conn *c, struct buf *line, size_t max_len,
	                              unsigned flags, bool *bare_lf_r);
	enum conn_status (*read_stream)(void *ctx, struct conn *c, uint64_t n,
	                                int (*sink)(void *sctx, const void *p, size_t len),
	                                void *sctx);
	/* Decompressed bytes waiting (a read would not block). */
	size_t (*pending_input)(void *ctx, struct conn *c);
	/* The session waits on its client (IDLE), everything flushed: give
	 * back what the next read or write can set up again. */
	void (*idle)(void *ctx);
	void (*free)(void *ctx);
	void *ctx;
};

struct imap_session {
	struct imap_server *srv;
	struct conn *c;
	struct arena *arena; /* session lifetime */
	enum imap_state state;
	unsigned enabled;                 /* IMAP_EXT_* */
	struct directory_account account; /* valid from IMAP_STATE_AUTH on */
	struct imap_view view;            /* valid in IMAP_STATE_SELECTED */
	/* SEARCHRES (RFC 5182): UIDs of the last SEARCH ... SAVE, malloc'd. */
	uint32_t *searchres;
	size_t nsearchres;
	struct imap_io_filter *filter; /* NULL, or COMPRESS=DEFLATE's */
	struct buf line;               /* the command line being parsed */
	unsigned bad_commands;
	bool logout;      /* end the session after this command */
	PGconn **db_lent; /* imap_db_lend(): given back before output waits */
};

/* The config in force (the current one after a reload). */
const struct config *imap_cfg(const struct imap_session *s);
/* TLS, or loopback with [server] allow_plaintext_loopback. */
bool imap_secure(const struct imap_session *s);

/* Session I/O: through s->filter when set, else straight to the conn. */
enum conn_status imap_io_write(struct imap_session *s, const void *p, size_t n);
enum conn_status imap_io_flush(struct imap_session *s);
enum conn_status imap_io_read_line(struct imap_session *s, struct buf *line, size_t max_len,
                                   unsigned flags, bool *bare_lf_r);
enum conn_status imap_io_read_stream(struct imap_session *s, uint64_t n,
                                     int (*sink)(void *ctx, const void *p, size_t len), void *ctx);
size_t imap_io_pending_input(struct imap_session *s);
/* After imap_io_flush(), before a long wait on the client (IDLE). */
void imap_io_idle(struct imap_session *s);

/* ---- commands ---- */

struct imap_cmd;
typedef int imap_cmd_fn(struct imap_cmd *cmd);

/* Table flags: checked by the dispatcher before the handler runs. */
#define IMAP_CMD_NOTAUTH 0x001u /* allowed before login */
#define IMAP_CMD_AUTH    0x002u /* allowed when logged in */
#define IMAP_CMD_SELECTED                                                                          \
	0x004u              /* allowed (or, alone with AUTH absent, required) when selected        \
	                     */
#define IMAP_CMD_UID 0x008u /* the UID form: cmd->uid is set */
#define IMAP_CMD_NOEXPUNGE                                                                         \
	0x010u /* no untagged EXPUNGE/VANISHED may be sent (FETCH, STORE, SEARCH) */
#define IMAP_CMD_ANY (IMAP_CMD_NOTAUTH | IMAP_CMD_AUTH | IMAP_CMD_SELECTED)

struct imap_cmd_def {
	const char *name; /* upper case; "UID FETCH" for UID forms */
	imap_cmd_fn *fn;  /* NULL: the file is not built in, the command is unknown */
	unsigned flags;
};

/* One command being executed. The handler reads its arguments with the
 * imap_arg_* functions, writes untagged data, and ends with exactly one
 * tagged reply (imap_reply_ok/no/bad...), returning 0. A handler that finds
 * malformed arguments may instead return -1 without replying: the
 * dispatcher then answers "BAD <cmd->error>" (counted) and skips the rest of
 * the command (non-synchronising literals included). */
struct imap_cmd {
	struct imap_session *s;
	struct arena *arena; /* reset after the command */
	const struct imap_cmd_def *def;
	const char *tag;  /* in the arena */
	const char *name; /* def->name */
	bool uid;         /* UID form */
	/* Parser state over s->line (private to imap-parse.c). */
	size_t pos;             /* next unread byte of s->line */
	uint64_t total;         /* bytes of the command so far (lines and literals) */
	unsigned depth;         /* open parentheses */
	bool ended;             /* the final line was consumed to its end */
	bool aborted;           /* the client was told to give up (BAD/NO before a literal) */
	const char *error;      /* static text for the BAD reply */
	const char *error_code; /* response code for it ("TOOBIG", "LIMIT") or NULL */
	bool replied;
	/* Set by imap_reply_* when the tagged reply was NO or BAD (for logs). */
	const char *result;
};

/* Handlers (one file per command or close family, all in this header).
 * The UID forms share their handler; it reads cmd->uid. */
int imap_cmd_capability(struct imap_cmd *cmd);
int imap_cmd_noop(struct imap_cmd *cmd); /* NOOP and CHECK */
int imap_cmd_logout(struct imap_cmd *cmd);
int imap_cmd_starttls(struct imap_cmd *cmd);
int imap_cmd_authenticate(struct imap_cmd *cmd);
int imap_cmd_login(struct imap_cmd *cmd);
int imap_cmd_enable(struct imap_cmd *cmd);
int imap_cmd_id(struct imap_cmd *cmd);
int imap_cmd_namespace(struct imap_cmd *cmd);
int imap_cmd_select(struct imap_cmd *cmd); /* SELECT and EXAMINE (cmd->name) */
int imap_cmd_create(struct imap_cmd *cmd);
int imap_cmd_delete(struct imap_cmd *cmd);
int imap_cmd_rename(struct imap_cmd *cmd);
int imap_cmd_subscribe(struct imap_cmd *cmd); /* SUBSCRIBE and UNSUBSCRIBE */
int imap_cmd_list(struct imap_cmd *cmd);      /* LIST and LSUB */
int imap_cmd_status(struct imap_cmd *cmd);
int imap_cmd_append(struct imap_cmd *cmd);
int imap_cmd_idle(struct imap_cmd *cmd);
int imap_cmd_close(struct imap_cmd *cmd);   /* CLOSE and UNSELECT */
int imap_cmd_expunge(struct imap_cmd *cmd); /* EXPUNGE and UID EXPUNGE */
int imap_cmd_store(struct imap_cmd *cmd);
int imap_cmd_copy(struct imap_cmd *cmd);  /* COPY and MOVE (cmd->name) */
int imap_cmd_quota(struct imap_cmd *cmd); /* GETQUOTA, GETQUOTAROOT, SETQUOTA */
/* The second engineer's files: cmd-fetch.c, cmd-search.c, cmd-sort.c,
 * cmd-thread.c, cmd-compress.c. */
int imap_cmd_fetch(struct imap_cmd *cmd);
int imap_cmd_search(struct imap_cmd *cmd);
int imap_cmd_sort(struct imap_cmd *cmd);
int imap_cmd_thread(struct imap_cmd *cmd);
int imap_cmd_compress(struct imap_cmd *cmd);

/* The table (imap-commands.c); lookup is by name, case-insensitive. NULL
 * if unknown or not built in. */
const struct imap_cmd_def *imap_cmd_find(const char *name);
/* Appends the capabilities for the session's state (" IMAP4rev1 ...",
 * each with a leading space) to out. Only commands that exist are named. */
void imap_capabilities(const struct imap_session *s, struct buf *out);

/* ---- argument parser (imap-parse.c) ----
 * All functions return 0 on success and -1 on a syntax error or a failed
 * read (cmd->error set; the handler returns -1). They read from s->line,
 * reading the next line after a literal when needed. Strings are
 * NUL-terminated copies in cmd->arena; *len_r (may be NULL) is their length
 * (they may contain NUL bytes only when a literal did). Literals are checked
 * against the literal limits before a byte is read; a synchronising literal
 * gets its "+ " continuation only when it is accepted. */

/* Exactly one SP. */
int imap_arg_sp(struct imap_cmd *cmd);
/* True if the next byte is c (not consumed). */
bool imap_arg_peek(struct imap_cmd *cmd, char c);
/* Consumes c if it is next; returns whether it was. */
bool imap_arg_skip(struct imap_cmd *cmd, char c);
/* Consumes text (ASCII, any case) if the line goes on with it exactly;
 * returns whether it did. */
bool imap_arg_skip_text(struct imap_cmd *cmd, const char *text);
/* True at the end of the command (nothing left on the final line). */
bool imap_arg_at_end(struct imap_cmd *cmd);
/* Requires the end of the command. */
int imap_arg_end(struct imap_cmd *cmd);
/* atom: ATOM-CHARs (for flags, also "\" first; for fetch att "[" "]" are
 * not atom chars: use imap_arg_word for those). */
int imap_arg_atom(struct imap_cmd *cmd, const char **r);
/* A run of bytes up to SP, "(", ")" or the end of the line, excluding
 * control bytes: for FETCH attributes such as BODY.PEEK[1.2]<0.100> the
 * caller parses itself. Brackets are included and may contain SP and
 * parentheses (HEADER.FIELDS (A B)) as long as they balance. */
int imap_arg_word(struct imap_cmd *cmd, const char **r);
/* quoted / literal. */
int imap_arg_string(struct imap_cmd *cmd, const char **r, size_t *len_r);
/* atom / string (ASTRING-CHARs include "]"). */
int imap_arg_astring(struct imap_cmd *cmd, const char **r, size_t *len_r);
/* NIL gives *r = NULL. */
int imap_arg_nstring(struct imap_cmd *cmd, const char **r, size_t *len_r);
/* Mailbox name: astring, decoded from modified UTF-7 unless UTF8=ACCEPT or
 * IMAP4rev2 is enabled, "INBOX" in any case as "INBOX", a trailing "/"
 * removed; invalid encodings are an error. Result in UTF-8. */
int imap_arg_mailbox(struct imap_cmd *cmd, const char **r);
/* LIST's mailbox pattern: list-char (atom chars, "%", "*", "]") or a
 * string, raw (not decoded). */
int imap_arg_list_mailbox(struct imap_cmd *cmd, const char **r, size_t *len_r);
/* number (32-bit, strict), nz-number, 63-bit mod-sequence. */
int imap_arg_number(struct imap_cmd *cmd, uint32_t *r);
int imap_arg_nznumber(struct imap_cmd *cmd, uint32_t *r);
int imap_arg_number64(struct imap_cmd *cmd, uint64_t *r);
/* "(" and ")" with a nesting limit (IMAP_PAREN_DEPTH). */
int imap_arg_list_begin(struct imap_cmd *cmd);
int imap_arg_list_end(struct imap_cmd *cmd);
#define IMAP_PAREN_DEPTH 32

/* Sequence sets: "1:4,7,*", "$" (SEARCHRES). Ranges are normalised lo <=
 * hi; IMAP_SEQ_STAR stands for "*" until resolved against a view. */
#define IMAP_SEQ_STAR UINT32_MAX
struct imap_seq_range {
	uint32_t lo, hi;
};
struct imap_seqset {
	struct imap_seq_range *ranges; /* in cmd->arena */
	size_t n;
	bool saved; /* "$": the SEARCHRES result */
};
int imap_arg_seqset(struct imap_cmd *cmd, struct imap_seqset *r);
/* Parses a whole sequence set from text (unit tests, QRESYNC's known-uids).
 * -1 on a syntax error. */
int imap_seqset_parse(const char *p, size_t len, struct arena *a, struct imap_seqset *r);
/* One range with "*" replaced by star, as lo <= hi. */
void imap_seq_range_resolve(const struct imap_seq_range *rg, uint32_t star, uint32_t *lo_r,
                            uint32_t *hi_r);
/* Whether n (with * meaning star) is in the set. */
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t star);

/* A literal whose bytes go to sink instead of memory (APPEND): the next
 * token must be "{N}", "{N+}" or (allow_binary) "~{N}". N is checked against
 * max first: over it, *too_big_r is set and nothing is read (synchronising:
 * no continuation is sent, cmd->aborted; non-synchronising: the bytes are
 * skipped if they can be within [limits] literal_size, else -1 and the
 * session ends). sink returning -1 makes the rest be skipped; *sink_failed_r
 * then tells. */
struct imap_literal_info {
	uint64_t size;
	bool binary; /* ~{N} */
	bool too_big;
	bool sink_failed;
};
int imap_arg_literal_stream(struct imap_cmd *cmd, uint64_t max,
                            int (*sink)(void *ctx, const void *p, size_t len), void *ctx,
                            struct imap_literal_info *info_r);
/* Consumes the rest of a command that is refused or answered early:
 * non-synchronising literals are skipped so that their bytes are not taken
 * for commands; a synchronising literal was never sent (the client waits
 * for "+" and gives up at the tagged reply). */
void imap_arg_skip_rest(struct imap_cmd *cmd);
/* Largest literal held in memory (astrings and the like) for the state. */
uint64_t imap_literal_limit(const struct imap_session *s);

/* Flags: "\Seen" etc. to STORE_FLAG_*, keywords (atoms) collected into a
 * NULL-terminated array in the arena. A parenthesised list, or (bare_ok) a
 * single flag or space-separated flags without parentheses (STORE). */
int imap_arg_flags(struct imap_cmd *cmd, bool bare_ok, unsigned *flags_r, const char ***keywords_r);

/* date-time of APPEND without its quotes ("dd-Mon-yyyy hh:mm:ss +zzzz",
 * the day possibly space-padded) as a time_t (cmd-append.c). */
int imap_parse_datetime(const char *s, time_t *r);

/* ---- replies (imap-reply.c) ---- */

/* Raw output. */
void imap_write(struct imap_session *s, const void *p, size_t n);
void imap_write_str(struct imap_session *s, const char *str);
void imap_printf(struct imap_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "* " fmt CRLF. */
void imap_untagged(struct imap_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Tagged replies: "<tag> OK|NO|BAD [text]" CRLF. Before OK and NO in the
 * selected state, pending mailbox changes are reported first (EXISTS,
 * FETCH, and EXPUNGE/VANISHED unless the command is IMAP_CMD_NOEXPUNGE).
 * text may begin with a response code: "[TRYCREATE] No such mailbox". BAD
 * is counted against the bad command limit. */
void imap_reply_ok(struct imap_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void imap_reply_no(struct imap_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void imap_reply_bad(struct imap_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* NO for a store error ([TRYCREATE]/[NONEXISTENT], [OVERQUOTA],
 * [ALREADYEXISTS], [CANNOT], [UNAVAILABLE] with a log id...). what names
 * the operation for the log. */
void imap_reply_store_err(struct imap_cmd *cmd, enum store_err e, const char *what);
/* NO [SERVERBUG] with an id that is also logged. */
void imap_reply_internal(struct imap_cmd *cmd, const char *what);

/* IMAP strings: atom if it can be, else quoted if it can be (no CR, LF,
 * NUL, 8-bit only when UTF-8 is enabled, short), else a literal. */
void imap_write_astring(struct imap_session *s, const char *p, size_t len);
/* string (quoted or literal, never an atom); NULL writes NIL. */
void imap_write_nstring(struct imap_session *s, const char *p, size_t len);
void imap_write_string(struct imap_session *s, const char *p, size_t len);
/* "{len}" CRLF and the bytes. */
void imap_write_literal(struct imap_session *s, const void *p, size_t len);
/* A mailbox name (UTF-8) as the client expects it: modified UTF-7 unless
 * UTF-8 is enabled, as an astring. */
void imap_write_mailbox(struct imap_session *s, const char *name);
/* "(\Seen \Answered keyword ...)" into out. */
void imap_flags_format(unsigned flags, char *const *keywords, struct buf *out);
/* n in decimal into out: responses of 100,000 numbers are built without a
 * printf per number. */
void imap_append_number(struct buf *out, uint64_t n);

/* ---- modified UTF-7 (imap-utf7.c, RFC 3501 section 5.1.3) ---- */
/* -1 on invalid input (bad base64, unterminated shift, non-canonical
 * encodings, 8-bit bytes in the UTF-7 form, invalid UTF-8). out is reset. */
int imap_utf7_to_utf8(const char *in, size_t len, struct buf *out);
int imap_utf8_to_utf7(const char *in, size_t len, struct buf *out);
/* Valid UTF-8 (no overlongs, no surrogates). */
bool imap_utf8_valid(const char *p, size_t len);

/* ---- database ---- */

/* A pooled connection for this command, or NULL after replying NO
 * [UNAVAILABLE]. Return it with imap_db_return before the tagged reply
 * (which may borrow one to report mailbox changes). */
PGconn *imap_db_borrow(struct imap_cmd *cmd);
/* Its reply when the pool has no connection in time. */
#define IMAP_DB_UNAVAILABLE "[UNAVAILABLE] Database unavailable, try again later"
void imap_db_return(struct imap_session *s, PGconn **conn);
/* For a command that writes much while it holds *conn (FETCH, LIST): from
 * now on, output that would wait for the client first gives *conn back to
 * the pool and sets it to NULL, so a client that reads slowly never keeps
 * a connection from everyone else. Before each statement take it with
 * imap_db_again(): *conn, borrowed anew if it was given back, or NULL
 * (logged, no reply) if the pool has none in time. imap_db_return() ends
 * the loan. */
void imap_db_lend(struct imap_session *s, PGconn **conn);
PGconn *imap_db_again(struct imap_session *s, PGconn **conn);
/* One of the account's mailboxes by name in a unit of work of its own
 * (STORE_ETEMP, without a reply, if no connection is free). */
enum store_err imap_mailbox_get(struct imap_session *s, const char *name,
                                struct store_mailbox *mb_r);

/* ---- STATUS items (cmd-status.c), also for LIST-STATUS ---- */

#define IMAP_STATUS_MESSAGES      0x001u
#define IMAP_STATUS_RECENT        0x002u
#define IMAP_STATUS_UIDNEXT       0x004u
#define IMAP_STATUS_UIDVALIDITY   0x008u
#define IMAP_STATUS_UNSEEN        0x010u
#define IMAP_STATUS_HIGHESTMODSEQ 0x020u
#define IMAP_STATUS_SIZE          0x040u
#define IMAP_STATUS_DELETED       0x080u
#define IMAP_STATUS_APPENDLIMIT   0x100u
/* "(" item *(SP item) ")" into IMAP_STATUS_* bits. */
int imap_status_items_parse(struct imap_cmd *cmd, unsigned *items_r);
/* "* STATUS name (...)" for mb; conn is used for RECENT and DELETED only
 * (may be NULL without them). */
void imap_status_send(struct imap_session *s, PGconn *conn, const struct store_mailbox *mb,
                      unsigned items);
/* APPENDLIMIT: [limits] message_size, at most 2^32 - 1. */
uint32_t imap_append_limit(const struct imap_session *s);

/* ---- the selected mailbox (imap-view.c) ---- */

/* Resolves a sequence set against the view: indexes (0-based, MSN - 1)
 * of the messages it names, ascending and unique, into *idx_r (malloc'd,
 * NULL if none). uid: the set holds UIDs (UIDs not in the view are
 * ignored; "*" is the highest UID, or matches nothing in an empty
 * mailbox), else MSNs (an MSN past the end is an error: -1 with
 * cmd->error set). "$" uses s->searchres. */
int imap_view_resolve(struct imap_cmd *cmd, const struct imap_seqset *set, bool uid, size_t **idx_r,
                      size_t *n_r);
/* The UIDs of those indexes (malloc'd). */
uint32_t *imap_view_uids(const struct imap_session *s, const size_t *idx, size_t n);
/* Index of a UID in the view, or -1. */
ssize_t imap_view_find_uid(const struct imap_session *s, uint32_t uid);
/* Sends "* MSN FETCH (FLAGS (...) [UID n] [MODSEQ (m)])" for entry idx;
 * with_uid for UID commands; MODSEQ when CONDSTORE is enabled. */
void imap_send_fetch_flags(struct imap_session *s, size_t idx, bool with_uid);
/* Applies flag changes reported by store_flags_change to the view (for
 * STORE and FETCH's implicit \Seen); sets each entry's flags, keywords,
 * modseq. Entries not in the view are ignored. */
void imap_view_apply_changes(struct imap_session *s, const struct store_flag_change *ch, size_t n);
/* Brings the view up to date with the store and tells the client: EXISTS
 * for new messages, FETCH FLAGS for changed ones, and unless no_expunge,
 * EXPUNGE (or VANISHED with QRESYNC) for removed ones. Does nothing unless
 * a change may be pending (notifier, or view.dirty) or force. -1 on a
 * database failure (nothing sent). */
int imap_view_sync(struct imap_session *s, bool no_expunge, bool force);
/* "* FLAGS (...)": the system flags and every keyword announced so far.
 * With the entries loaded, imap_view_take_entries() has collected the
 * keywords in use; later ones are announced as they appear. */
void imap_view_send_flags(struct imap_session *s);
/* Installs entries (ascending by UID, malloc'd as store_entries_list
 * returns them) as the view's messages; the view owns them from now on. */
void imap_view_take_entries(struct imap_session *s, struct store_entry *entries, size_t n);
/* The entries of a mailbox with modseq > changedsince (0: all), ascending
 * by UID, in store_entries_list's form (free with store_entries_free) but
 * with keywords NULL where there are none. One query streamed row by row
 * in binary, so a mailbox of 100,000 messages loads without building a
 * 100,000-row result first; hint is the expected count (0: unknown). An
 * unknown mailbox gives no entries. STORE_ETEMP (logged) on a failure. */
enum store_err imap_view_load(PGconn *conn, int64_t mailbox_id, uint64_t changedsince, size_t hint,
                              struct store_entry **entries_r, size_t *n_r);
/* One row of that query as libpq hands it over in binary: values[c] NULL
 * for SQL NULL, lengths[c] its byte count. Columns: uid int8, flags int4,
 * modseq int8, internaldate timestamptz, size int8, message_id int8, then
 * the keywords as text ("a b") or NULL. The UID must be above prev_uid.
 * -1 on anything else (wrong count, width or NULL, UID out of order or past
 * 32 bits); 0 with *e_r filled (keywords malloc'd, or NULL). */
int imap_view_entry_parse(const char *const *values, const int *lengths, int ncols,
                          uint32_t prev_uid, struct store_entry *e_r);
/* Removes the given UIDs (ascending; those not in the view are ignored) and
 * reports them: EXPUNGE per message, or one VANISHED with QRESYNC. Only
 * where an EXPUNGE may be sent. */
void imap_view_expunged(struct imap_session *s, const uint32_t *uids, size_t n);
/* Ascending UIDs as a compact set ("1:3,7") appended to b. */
void imap_uidset_format(const uint32_t *uids, size_t n, struct buf *b);
/* Closes the view (unsubscribes); state goes back to IMAP_STATE_AUTH. */
void imap_view_close(struct imap_session *s);

/* ---- \Recent (imap-recent.c; IMAP4rev1 only, RFC 9051 dropped it) ---- */

/* Claims the messages of the selected mailbox up to UID upto that no
 * session has claimed (mailboxes.recent_uid, one atomic UPDATE): they are
 * \Recent in this session only. A read-only view claims nothing and shows
 * the unclaimed ones. Nothing for an IMAP4rev2 session. -1 on a database
 * failure (logged; the messages are then simply not recent here). */
int imap_recent_claim(struct imap_session *s, PGconn *conn, uint32_t upto);
/* Whether uid is \Recent in this session. */
bool imap_recent_has(const struct imap_session *s, uint32_t uid);
/* Messages of the view that are \Recent in this session. */
size_t imap_recent_count(const struct imap_session *s);
/* "(\Seen ... \Recent)": imap_flags_format() plus \Recent when due. */
void imap_view_flags_format(const struct imap_session *s, const struct store_entry *e,
                            struct buf *out);
/* STATUS RECENT: messages of the mailbox no session has claimed. -1 on a
 * database failure. */
int imap_recent_unclaimed(PGconn *conn, int64_t mailbox_id, uint64_t *n_r);
/* "* n RECENT" for an IMAP4rev1 session. */
void imap_recent_send(struct imap_session *s);

/* Saves a SEARCH result for "$" (takes ownership of uids). */
void imap_searchres_set(struct imap_session *s, uint32_t *uids, size_t n);

#endif
