/* queue.h - the outbound queue in the database (tables queue,
 * queue_recipients, blobs) and the DKIM keys of local domains (dkim_keys).
 *
 * The queue runner (smtp/queue-runner.c) claims due rows inside a
 * transaction it keeps open for the delivery (FOR UPDATE SKIP LOCKED: any
 * number of runners and nodes share one queue; a crash releases the lock at
 * once). Recipient results are recorded on another connection right after
 * the remote reply, so a later crash never repeats them.
 *
 * Every function takes a borrowed connection and returns -1 on a database
 * failure (logged); results are owned by the caller and freed with the
 * matching _free function. */
#ifndef ROOST_DB_QUEUE_H
#define ROOST_DB_QUEUE_H

#include "buf.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* The LISTEN/NOTIFY channel that wakes the runners. */
#define QUEUE_NOTIFY_CHANNEL "roost_queue"

enum queue_rcpt_status { QUEUE_RCPT_PENDING, QUEUE_RCPT_SENT, QUEUE_RCPT_FAILED };

struct queue_new_rcpt {
	const char *address;
	const char *notify; /* NULL: absent */
	const char *orcpt;  /* NULL: absent */
};

struct queue_new {
	const char *sender;  /* "" null sender */
	int64_t account_id;  /* 0: none */
	const char *envid;   /* NULL or "": none */
	const char *dsn_ret; /* "FULL", "HDRS" or NULL */
	bool smtputf8;
	const struct queue_new_rcpt *rcpts;
	size_t nrcpts;
	const void *data;
	size_t len;
};

/* Stores the blob (content-addressed, shared), the queue row and its
 * recipients, and queues a NOTIFY, inside the caller's transaction. */
int queue_insert(PGconn *conn, const struct queue_new *q, int64_t *id_r);
/* Wakes the runners (outside a transaction: at once). */
int queue_notify(PGconn *conn);

struct queue_rcpt {
	char *address;
	char *orcpt;  /* NULL: absent */
	char *notify; /* NULL: absent */
	enum queue_rcpt_status status;
	char *last_error; /* NULL: none */
	char *remote_mta; /* NULL: none */
	char *dsn_status; /* "5.1.1", NULL: none */
};

struct queue_entry {
	int64_t id;
	char *sender;
	int64_t account_id;
	char *envid;   /* NULL: absent */
	char *dsn_ret; /* NULL: absent */
	bool smtputf8;
	time_t created_at;
	int64_t created_ms; /* the same in milliseconds */
	unsigned attempts;
	bool delay_notified;
	struct buf data;          /* the message */
	struct queue_rcpt *rcpts; /* every recipient, any status */
	size_t nrcpts;
};
void queue_entry_free(struct queue_entry *e);

/* Inside the caller's transaction: locks one due row nobody else holds
 * (FOR UPDATE SKIP LOCKED) and loads it with its message and recipients.
 * 1 claimed, 0 nothing due, -1 error. */
int queue_claim(PGconn *conn, struct queue_entry *e_r);
/* Records one recipient's result at once (autocommit). */
int queue_rcpt_set(PGconn *conn, int64_t queue_id, const char *address,
                   enum queue_rcpt_status status, const char *last_error, const char *remote_mta,
                   const char *dsn_status);
/* After an attempt: attempts + 1, next attempt in delay_s seconds, the
 * delay-notice flag. */
int queue_reschedule(PGconn *conn, int64_t queue_id, uint64_t delay_s, bool delay_notified);
/* 1 removed, 0 no such id. */
int queue_remove(PGconn *conn, int64_t queue_id);
/* Next attempt now, and wake the runners. 1 done, 0 no such id. */
int queue_retry_now(PGconn *conn, int64_t queue_id);

/* One row of `roost queue list`. */
struct queue_summary {
	int64_t id;
	int64_t age_s;
	char *sender;
	char *recipients;  /* "a@x (pending), b@y (sent)" */
	int64_t next_in_s; /* seconds until the next attempt (<= 0: due) */
	unsigned attempts;
	char *last_error; /* "" if none */
};
int queue_list(PGconn *conn, struct queue_summary **rows_r, size_t *n_r);
void queue_summaries_free(struct queue_summary **rows, size_t n);

/* ---- DKIM keys ---- */

struct queue_dkim_key {
	char domain[256];
	char selector[64];
	char algorithm[32];
	char *private_pem; /* wipe and free with queue_dkim_key_free */
	char *public_b64;
};
void queue_dkim_key_free(struct queue_dkim_key *k);
/* The key of a local domain (any case). With create, a domain without one
 * gets a new key (DKIM_KEY_DEFAULT_ALGORITHM, selector "roostYYYYMM")
 * first. 1 found, 0 not a local domain (or no key and !create), -1 error. */
int queue_dkim_key_get(PGconn *conn, const char *domain, bool create, struct queue_dkim_key *k_r);
/* Replaces a domain's key by a new one of algorithm (rotation, or to choose
 * Ed25519). 1 done, 0 not a local domain, -1 error. */
int queue_dkim_key_new(PGconn *conn, const char *domain, const char *algorithm,
                       struct queue_dkim_key *k_r);

#endif
