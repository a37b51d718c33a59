/* store-private.h - helpers shared by the store-*.c files (not an API).
 *
 * Every statement goes through store_exec(): parameters in a store_params
 * (numbers and text as text, bytea as binary), results always in binary
 * format so bytea slices travel as raw bytes. Failures are logged once and
 * mapped to enum store_err in one place (store_err_from_pg). */
#ifndef ROOST_DB_STORE_PRIVATE_H
#define ROOST_DB_STORE_PRIVATE_H

#include "store.h"

#include <libpq-fe.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>

/* The most parameters any store statement takes. */
#define STORE_MAX_PARAMS 24

/* Longest mailbox name in bytes (store.h). */
#define STORE_MAILBOX_NAME_MAX 1000

/* Channel of the change notifications (store.h, notifier.h). */
#define STORE_NOTIFY_CHANNEL "roost_mailbox"

/* The reference fence (migration 015). Blobs and message rows are deleted
 * only by store_gc(), once nothing refers to them. A transaction that may
 * refer anew to one it did not create (a delivery or a queued message of
 * bytes stored before) holds the shared side of the fence of those bytes
 * from its blob statement to its end; store_gc() deletes a row only after
 * taking the exclusive side of its fence, without waiting (what is being
 * delivered is left for the next run). One fence per digest (its first
 * four bytes; rare collisions only make a delivery wait for a gc batch),
 * so gc never holds up the deliveries of other bytes. (A copy refers only
 * to messages that entries of its locked source mailbox hold.) The class
 * is "RFNC", so the keys meet no other user of the two-key advisory lock
 * space (pop3/lock.c). */
#define STORE_FENCE_CLASS "1380339267"
#define STORE_FENCE_KEY(digest)                                                                    \
	"('x' || encode(substring(" digest " FROM 1 FOR 4), 'hex'))::bit(32)::integer"
/* STORE_FENCE_KEY of a digest, computed here (the blob statement's $4). */
int32_t store_fence_key(const unsigned char digest[32]);

/* Stores a blob unless it is there already ($1 digest, $2 size, $3 data,
 * $4 store_fence_key() of the digest), taking the shared side of its fence
 * first, before the transaction refers to the blob (or to a message row of
 * the same bytes). */
#define STORE_SQL_BLOB                                                                             \
	"INSERT INTO blobs (sha256, size, data) SELECT $1::bytea, $2::bigint, $3::bytea "          \
	"FROM (SELECT pg_advisory_xact_lock_shared(" STORE_FENCE_CLASS                             \
	", $4::integer)) AS fence ON CONFLICT (sha256) DO NOTHING"

struct store_incoming {
	EVP_MD_CTX *sha;
	struct buf data; /* the raw message, bounded by max_size */
	struct mime_parser *parser;
	struct mime_message *parsed;
	uint64_t offered; /* every byte written, also past the limit */
	bool too_big;
	bool finished;
	unsigned char digest[32];
	char hex[65];
};

struct store_params {
	int n;
	const char *values[STORE_MAX_PARAMS];
	int lengths[STORE_MAX_PARAMS];
	int formats[STORE_MAX_PARAMS];
	char num[STORE_MAX_PARAMS][24];
};

void store_params_init(struct store_params *p);
void store_param_i64(struct store_params *p, int64_t v);
void store_param_u64(struct store_params *p, uint64_t v);
/* s is borrowed until the statement has run; NULL is SQL NULL. */
void store_param_text(struct store_params *p, const char *s);
void store_param_bytea(struct store_params *p, const void *data, size_t len);
void store_param_bool(struct store_params *p, bool v);

/* Maps a failed result (or a NULL one, or a broken connection) to the enum. */
enum store_err store_err_from_pg(PGconn *conn, const PGresult *res);
/* Logs a failed statement: event, SQLSTATE and the server's message. */
void store_log_failure(PGconn *conn, const PGresult *res, const char *what);

/* Runs sql with binary results. Returns the result (caller PQclears) when
 * the status is TUPLES_OK or COMMAND_OK; else NULL with *err_r set (logged
 * under the name what). */
PGresult *store_exec(PGconn *conn, const char *what, const char *sql, const struct store_params *p,
                     enum store_err *err_r);
/* store_exec for statements whose result is not needed. */
enum store_err store_exec_cmd(PGconn *conn, const char *what, const char *sql,
                              const struct store_params *p);

enum store_err store_tx_begin(PGconn *conn);
enum store_err store_tx_commit(PGconn *conn);
/* Rolls back whatever transaction is open; never fails (a broken
 * connection is the pool's to replace). */
void store_tx_rollback(PGconn *conn);

/* Readers for binary-format result fields; NULL reads as 0 / false / NULL. */
bool store_res_null(const PGresult *r, int row, int col);
int64_t store_res_i64(const PGresult *r, int row, int col);
bool store_res_bool(const PGresult *r, int row, int col);
/* A malloc'd NUL-terminated copy, NULL for SQL NULL. */
char *store_res_strdup(const PGresult *r, int row, int col);
/* A space-separated keyword list (array_to_string) as a NULL-terminated
 * malloc'd array. */
char **store_res_keywords(const PGresult *r, int row, int col);

/* Text helpers. */
bool store_utf8_valid(const char *s, size_t len);
/* s if it is valid UTF-8, else a copy in *tmp with each invalid byte
 * replaced by U+FFFD (PostgreSQL rejects invalid text). */
const char *store_utf8_clean(const char *s, struct buf *tmp);
/* IMAP keyword syntax (an atom that is not a system flag). */
bool store_keyword_valid(const char *kw);
/* Appends a PostgreSQL array literal of the keywords ("{}" for NULL). */
void store_keywords_literal(const char *const *kw, struct buf *out);
/* Appends "{1,2,3}" for the uids. */
void store_uids_literal(const uint32_t *uids, size_t n, struct buf *out);
void store_keywords_free(char **kw);

/* Mailbox name rules (store.h): validates and normalises ("inbox" ->
 * "INBOX", "inbox/x" -> "INBOX/x") into out. */
enum store_err store_mailbox_name_normalize(const char *name, struct buf *out);
bool store_mailbox_name_is_inbox(const char *normalized);

/* Reads a mailboxes row selected with STORE_MAILBOX_COLUMNS. */
#define STORE_MAILBOX_COLUMNS                                                                      \
	"id, account_id, name, special_use, subscribed, uidvalidity, uidnext, "                    \
	"highestmodseq, messages, unseen, size_bytes"
void store_mailbox_from_row(const PGresult *r, int row, struct store_mailbox *mb);

/* Inside an open transaction: copies (or moves) entries of src to dst, see
 * store_copy(). uids NULL means every entry. The mailboxes are locked here. */
enum store_err store_copy_tx(PGconn *conn, int64_t src, const uint32_t *uids, size_t nuids,
                             int64_t dst, bool move, uint32_t **src_uids_r, uint32_t **dst_uids_r,
                             size_t *n_r, uint32_t *dst_uidvalidity_r);

/* Inside an open transaction with mailbox locked: removes the entries with
 * the given uids, leaves tombstones at a new MODSEQ, updates the counters
 * (messages, unseen, size_bytes by the given amounts), releases `release`
 * bytes of the account's quota, and NOTIFYs. */
enum store_err store_remove_entries_tx(PGconn *conn, int64_t mailbox_id, int64_t account_id,
                                       const uint32_t *uids, size_t n, uint64_t unseen,
                                       uint64_t size, uint64_t release);

#endif
