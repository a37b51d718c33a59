/* store.h - the store API that SMTP, IMAP and POP3 use.
 *
 * Every function takes a borrowed connection (pool.h) and does its work in
 * one transaction of its own unless it says otherwise; mailbox changes commit
 * a NOTIFY on channel "roost_mailbox" with payload "<mailbox_id>" in the same
 * transaction (the notifier wakes sessions, notifier.h). Results are owned by
 * the caller and freed with the matching _free function.
 *
 * Errors are the small enum below; each protocol maps it to its replies in
 * one function (STYLE.md). */
#ifndef ROOST_DB_STORE_H
#define ROOST_DB_STORE_H

#include "buf.h"
#include "mime.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum store_err {
	STORE_OK = 0,
	STORE_ETEMP,     /* database unreachable, serialization failure: try later */
	STORE_EPERM,     /* not allowed (e.g. deleting INBOX) */
	STORE_EQUOTA,    /* over quota */
	STORE_ENOTFOUND, /* no such account/mailbox/message */
	STORE_EINVALID,  /* bad name, bad argument */
	STORE_EEXISTS,   /* already exists */
};
const char *store_err_str(enum store_err e);

/* System flags as stored in mailbox_entries.flags. */
#define STORE_FLAG_SEEN     0x01
#define STORE_FLAG_ANSWERED 0x02
#define STORE_FLAG_FLAGGED  0x04
#define STORE_FLAG_DELETED  0x08
#define STORE_FLAG_DRAFT    0x10

/* ---- incoming messages: stream, hash and parse as bytes arrive ---- */

struct store_incoming;

/* max_size: the message size limit; writes past it fail. */
struct store_incoming *store_incoming_new(uint64_t max_size, const struct mime_limits *limits);
/* Appends bytes (hashing them with SHA-256 and feeding the MIME parser).
 * -1 once the total would pass max_size (the message is then unusable, but
 * the caller may keep calling to drain input; the call keeps failing). */
int store_incoming_write(struct store_incoming *in, const void *data, size_t len);
uint64_t store_incoming_size(const struct store_incoming *in);
bool store_incoming_too_big(const struct store_incoming *in);
/* Ends input: finishes the hash and the parse. Must be called once before
 * delivery. */
void store_incoming_finish(struct store_incoming *in);
/* Hex SHA-256 of the message (after finish), 64 chars + NUL. */
const char *store_incoming_sha256_hex(const struct store_incoming *in);
const struct mime_message *store_incoming_parsed(const struct store_incoming *in);
void store_incoming_free(struct store_incoming **in);

/* ---- delivery ---- */

struct store_target {
	int64_t account_id;
	int64_t mailbox_id;          /* 0: the account's INBOX */
	unsigned flags;              /* STORE_FLAG_* to set */
	const char *const *keywords; /* NULL-terminated or NULL */
	time_t internaldate;         /* 0: now, unless internaldate_set */
	bool internaldate_set;       /* internaldate is the date, even 0 */
	/* Filled in by store_deliver: */
	enum store_err result;
	int64_t mailbox_id_r;
	uint32_t uid_r;
	uint32_t uidvalidity_r;
};

/* Stores the blob once (deduplicated by SHA-256), its parsed metadata once,
 * and one mailbox entry per target, each with a new UID and MODSEQ, counting
 * each account's quota, all in one transaction with the NOTIFYs.
 * Targets that fail individually (quota, unknown mailbox) get their own
 * result and do not stop the others unless all_or_nothing is set, in which
 * case any failure rolls everything back. Returns STORE_OK if the
 * transaction committed (check each target's result), else the error. */
enum store_err store_deliver(PGconn *conn, struct store_incoming *in, struct store_target *targets,
                             size_t ntargets, bool all_or_nothing);

/* Where the notification sender runs (`roost serve`, notify-batch.h),
 * deliveries that arrive while others are being stored share their
 * transaction (store-deliver-batch.c): at most `lanes` such transactions
 * at once, each run on the connection of one of its callers; 0 stores each
 * delivery alone. Default 4. Each call still returns after its own data
 * committed, with the same results as alone. */
void store_deliver_set_lanes(unsigned lanes);

struct store_deliver_stats {
	uint64_t batches;       /* shared transactions (of two or more) */
	uint64_t batched;       /* deliveries in them */
	uint64_t retried_alone; /* of those, rolled back and stored alone */
};

/* Counters since start. */
void store_deliver_stats_get(struct store_deliver_stats *st);

/* ---- mailboxes ---- */

struct store_mailbox {
	int64_t id;
	int64_t account_id;
	char *name;        /* UTF-8, '/' separated */
	char *special_use; /* "\\Sent" etc., or NULL */
	bool subscribed;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint64_t messages, unseen, size_bytes;
};
void store_mailbox_free_fields(struct store_mailbox *mb);
void store_mailboxes_free(struct store_mailbox **mbs, size_t n);

/* All mailboxes of an account, sorted by name. */
enum store_err store_mailbox_list(PGconn *conn, int64_t account_id, struct store_mailbox **mbs_r,
                                  size_t *n_r);
/* By name; "INBOX" is matched case-insensitively. */
enum store_err store_mailbox_get(PGconn *conn, int64_t account_id, const char *name,
                                 struct store_mailbox *mb_r);
enum store_err store_mailbox_get_by_id(PGconn *conn, int64_t mailbox_id,
                                       struct store_mailbox *mb_r);
/* Whether the store takes name for a mailbox: not empty, no empty level,
 * at most 1000 bytes, UTF-8 without control characters. */
bool store_mailbox_name_valid(const char *name);
/* Creates a mailbox (parents are not created implicitly). EEXISTS, EINVALID
 * for a name store_mailbox_name_valid() refuses. */
enum store_err store_mailbox_create(PGconn *conn, int64_t account_id, const char *name,
                                    const char *special_use, int64_t *id_r);
/* Deletes a mailbox and its entries (expunged; blobs freed when unused).
 * EPERM for INBOX. */
enum store_err store_mailbox_delete(PGconn *conn, int64_t account_id, const char *name);
/* Renames a mailbox and its children ("a" -> "b" moves "a/x" to "b/x").
 * Renaming INBOX moves its messages into a new mailbox `to` and leaves INBOX
 * empty (RFC 3501 6.3.5). */
enum store_err store_mailbox_rename(PGconn *conn, int64_t account_id, const char *from,
                                    const char *to);
enum store_err store_mailbox_subscribe(PGconn *conn, int64_t account_id, const char *name,
                                       bool subscribed);
/* The six mailboxes every new account gets: INBOX, Sent, Drafts, Trash, Junk,
 * Archive with their special-use flags. Runs inside the caller's
 * transaction (does not BEGIN/COMMIT). */
enum store_err store_mailboxes_create_defaults(PGconn *conn, int64_t account_id);

/* ---- entries ---- */

struct store_entry {
	uint32_t uid;
	unsigned flags;
	char **keywords; /* NULL-terminated array */
	uint64_t modseq;
	time_t internaldate;
	uint64_t size;
	int64_t message_id;
};
void store_entries_free(struct store_entry **entries, size_t n);

/* Entries with uid_lo <= uid <= uid_hi, ascending by UID. With
 * changedsince > 0 only those with modseq > changedsince. */
enum store_err store_entries_list(PGconn *conn, int64_t mailbox_id, uint32_t uid_lo,
                                  uint32_t uid_hi, uint64_t changedsince,
                                  struct store_entry **entries_r, size_t *n_r);

/* Parsed metadata of a message (what FETCH needs). */
struct store_message {
	int64_t id;
	char sha256_hex[65];
	uint64_t size;
	uint64_t header_size;
	char *envelope;
	char *body;
	char *bodystructure;
	struct mime_part *parts;
	size_t nparts;
	char *preview;
	bool has_date;
	time_t date;
};
enum store_err store_message_get(PGconn *conn, int64_t message_id, struct store_message *m_r);
void store_message_free_fields(struct store_message *m);
/* Appends len bytes from offset of the raw message to out (a slice of the
 * blob read with substring(), never the whole blob unless asked). len is cut
 * to the message's end. */
enum store_err store_message_read(PGconn *conn, int64_t message_id, uint64_t offset, uint64_t len,
                                  struct buf *out);

/* ---- changes ---- */

enum store_flag_mode { STORE_FLAGS_SET, STORE_FLAGS_ADD, STORE_FLAGS_REMOVE };

struct store_flag_change {
	uint32_t uid;
	unsigned flags;  /* after the change */
	char **keywords; /* after the change, NULL-terminated */
	uint64_t modseq; /* after the change */
};
void store_flag_changes_free(struct store_flag_change **c, size_t n);

/* Changes flags/keywords of the given UIDs (sorted ascending). Entries whose
 * flags actually change get a new MODSEQ (one new value for the whole call).
 * unchangedsince > 0 (CONDSTORE): entries with modseq > unchangedsince are
 * left alone and reported in *failed_r. changed_r lists every entry
 * that exists after the call with its state (so a caller can answer FETCH). */
enum store_err store_flags_change(PGconn *conn, int64_t mailbox_id, const uint32_t *uids,
                                  size_t nuids, enum store_flag_mode mode, unsigned flags,
                                  const char *const *keywords, uint64_t unchangedsince,
                                  struct store_flag_change **changed_r, size_t *nchanged_r,
                                  uint32_t **failed_r, size_t *nfailed_r);

/* Copies (or moves) the given UIDs to another mailbox of the same account
 * without copying blobs; new UIDs in ascending order of the source UIDs.
 * *src_uids_r / *dst_uids_r: the pairs actually copied. Counts quota on
 * copy. Move expunges the sources (tombstones) in the same transaction. */
enum store_err store_copy(PGconn *conn, int64_t src_mailbox_id, const uint32_t *uids, size_t nuids,
                          int64_t dst_mailbox_id, bool move, uint32_t **src_uids_r,
                          uint32_t **dst_uids_r, size_t *n_r, uint32_t *dst_uidvalidity_r);

/* Expunges the given UIDs (or, with uids NULL, every entry flagged
 * \Deleted), leaving tombstones with a new MODSEQ and releasing quota.
 * *expunged_r: the UIDs actually removed, ascending. */
enum store_err store_expunge(PGconn *conn, int64_t mailbox_id, const uint32_t *uids, size_t nuids,
                             uint32_t **expunged_r, size_t *n_r);

/* UIDs expunged with modseq > since, ascending (QRESYNC VANISHED). */
enum store_err store_expunged_since(PGconn *conn, int64_t mailbox_id, uint64_t since,
                                    uint32_t **uids_r, size_t *n_r);

/* Deletes blobs and message rows no entry or queue row refers to any more
 * (a delivery of the same bytes in flight keeps them until the next run).
 * stop (may be NULL) is asked between batches whether to end early.
 * Returns the number of blobs removed, or -1. */
int64_t store_gc(PGconn *conn, bool (*stop)(void *arg), void *arg);

#endif
