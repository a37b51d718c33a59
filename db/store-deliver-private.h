/* store-deliver-private.h - what store-deliver.c shares with the batching
 * of concurrent deliveries (store-deliver-batch.c). Not for other modules. */
#ifndef ROOST_DB_STORE_DELIVER_PRIVATE_H
#define ROOST_DB_STORE_DELIVER_PRIVATE_H

#include "buf.h"
#include "store-private.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

/* Texts of the parse, made safe for PostgreSQL text parameters. */
enum {
	DT_SUBJECT,
	DT_FROM,
	DT_TO,
	DT_CC,
	DT_BCC,
	DT_MSGID,
	DT_INREPLYTO,
	DT_REFS,
	DT_ENVELOPE,
	DT_BODY,
	DT_BODYSTRUCTURE,
	DT_HEADERS,
	DT_PREVIEW,
	DT_COUNT
};

struct deliver_texts {
	struct buf tmp[DT_COUNT];
	const char *v[DT_COUNT];
};

/* One call of store_deliver(): its message, its targets and what is sent
 * for them. conn and state are those of the connection the statements go
 * to, which a batch sets to its leader's for the time of the batch. */
struct deliver_ctx {
	PGconn *conn;
	unsigned *state;    /* prepared statements (prepared.h); NULL: none */
	unsigned preparing; /* statements queued for PREPARE this attempt */
	struct store_incoming *in;
	struct store_target *targets;
	size_t *order; /* valid target indices in lock order */
	size_t norder;
	bool all_or_nothing;
	struct buf parts;
	struct deliver_texts texts;
	struct buf *keywords; /* per target, array literals */
	struct buf notify_ids, notify_accounts;
	bool batched; /* notifications go to the sender (notify-batch.h) */
};

/* Queue statements on c->conn in pipeline mode; 0, or -1 if libpq could
 * not queue (the caller drains the pipeline). */
int deliver_send_simple(PGconn *conn, const char *sql);
int deliver_send_prepares(struct deliver_ctx *c);
int deliver_send_blob(struct deliver_ctx *c);
int deliver_send_message(struct deliver_ctx *c);
int deliver_send_target(struct deliver_ctx *c, size_t i);

/* The next answer of the pipeline if it succeeded (caller clears it);
 * otherwise NULL, with the first failure kept in *fail_r (logged as
 * what). */
PGresult *deliver_take(struct deliver_ctx *c, PGresult **fail_r, const char *what);
void deliver_take_prepares(struct deliver_ctx *c, PGresult **fail_r);
void deliver_pipeline_take_sync(PGconn *conn, PGresult **fail_r);
void deliver_pipeline_abandon(PGconn *conn);

/* Fills t's result and outputs from its statement's answer. */
void deliver_target_result(struct store_target *t, const PGresult *r);

/* Whether fail is worth another attempt; also notes on c->state that
 * prepared statements were lost or already there. */
bool deliver_retryable(struct deliver_ctx *c, const PGresult *fail);

/* The lock order of targets: by account, then mailbox. */
bool deliver_target_before(const struct store_target *x, const struct store_target *y);

/* The whole delivery on c->conn alone, with its retries. */
enum store_err deliver_solo(struct deliver_ctx *c);

/* The delivery in a transaction shared with concurrent ones when that is
 * possible (store-deliver-batch.c), else deliver_solo(). */
enum store_err deliver_batched(struct deliver_ctx *c);

#endif
