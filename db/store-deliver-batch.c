/* store-deliver-batch.c - concurrent deliveries share one transaction.
 *
 * Under load most of a delivery's time went to waiting: on the mailbox row
 * a concurrent delivery to the same recipient had locked until its commit
 * was flushed, and on the commit itself. So deliveries that arrive while
 * others are under way queue up, and one of them, the leader, runs the
 * whole queue as one transaction on its own connection: one pipeline, one
 * commit, no lock waits among them. Nobody waits for a batch to fill:
 * with nothing under way a delivery leads a batch of one at once (and
 * takes the plain path), so a quiet server answers as fast as before and a
 * busy one commits many deliveries per flush. At most DELIVER_LANES
 * batches run at a time, each on the connection of its leader; when a
 * leader is done it hands the queue to the delivery that waited longest.
 *
 * Every delivery still returns only after its own data has committed. A
 * batch that fails in any way before its COMMIT is rolled back, and each
 * of its deliveries runs again alone (deliver_solo()), so one bad delivery
 * fails alone. An all-or-nothing delivery with a target that failed in the
 * batch sends everyone back the same way: its answer may depend on its
 * batch-mates (a quota they used), and alone it gets its own.
 *
 * Lock order across batches: the blob and message rows are written in
 * digest order, and only then the targets of all the batch's deliveries,
 * in the same (account, mailbox) order as a single delivery's, so two
 * batches never wait on each other in a circle. */
#include "store-deliver-private.h"

#include "log.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Batches running at once ([database] delivery_lanes; 0: none). Several
 * keep the database busy on both sides of a commit (some execute while
 * others' flushes complete) without splitting the queue into batches too
 * small to share a flush. Four rather than two: with four delivering
 * threads bench/store-deliver stored 55-59% of the raw commit rate instead
 * of 41-51%, and the same at one and sixteen threads and in SMTP. */
static _Atomic unsigned batch_lanes = 4;

static _Atomic uint64_t stat_batches, stat_batched, stat_alone;

/* A batch holds at most this many deliveries, and this many bytes of
 * messages past its first: the whole pipeline sits in libpq's buffer. */
#define DELIVER_BATCH_MAX   64
#define DELIVER_BATCH_BYTES ((size_t)16 << 20)

enum req_state { REQ_WAITING, REQ_LEAD, REQ_DONE, REQ_SOLO };

struct deliver_req {
	struct deliver_ctx *c;
	enum req_state state;
	enum store_err err; /* with REQ_DONE */
	bool solo;          /* the batch's verdict: run again alone */
	pthread_cond_t cond;
	struct deliver_req *next;
};

static pthread_mutex_t batch_mu = PTHREAD_MUTEX_INITIALIZER;
static struct deliver_req *batch_head, *batch_tail; /* waiting, oldest first */
static unsigned batch_running;                      /* leaders at work */

/* One target of a batch: whose, and which of its targets. */
struct batch_target {
	struct deliver_ctx *c;
	size_t i;
};

struct batch {
	struct deliver_req *req[DELIVER_BATCH_MAX];
	size_t n;
	PGconn *conn;
	unsigned *state;
	struct deliver_ctx *msgs[DELIVER_BATCH_MAX]; /* one per distinct digest */
	size_t nmsgs;
	struct batch_target *targets;
	size_t ntargets;
	bool aon;       /* some delivery is all-or-nothing */
	bool committed; /* its COMMIT succeeded (batch_read()) */
};

/* ---- the queue (batch_mu held) ---- */

static void queue_push(struct deliver_req *r)
{
	r->next = NULL;
	if (batch_tail != NULL)
		batch_tail->next = r;
	else
		batch_head = r;
	batch_tail = r;
}

static struct deliver_req *queue_pop(void)
{
	struct deliver_req *r = batch_head;
	if (r != NULL) {
		batch_head = r->next;
		if (batch_head == NULL)
			batch_tail = NULL;
	}
	return r;
}

/* The leader first, then the oldest waiting, within the bounds. */
static void batch_take(struct batch *b, struct deliver_req *leader)
{
	size_t bytes = 0;
	b->req[b->n++] = leader;
	while (b->n < DELIVER_BATCH_MAX && batch_head != NULL) {
		size_t len = batch_head->c->in->data.len;
		if (len > DELIVER_BATCH_BYTES - bytes)
			break;
		bytes += len;
		b->req[b->n++] = queue_pop();
	}
}

/* ---- the pipeline ---- */

static int digest_cmp(const void *x, const void *y)
{
	const struct deliver_ctx *const *a = x, *const *b = y;
	return memcmp((*a)->in->digest, (*b)->in->digest, 32);
}

static int target_cmp(const void *x, const void *y)
{
	const struct batch_target *a = x, *b = y;
	const struct store_target *ta = &a->c->targets[a->i], *tb = &b->c->targets[b->i];
	if (deliver_target_before(ta, tb))
		return -1;
	if (deliver_target_before(tb, ta))
		return 1;
	/* Same mailbox: in arrival order (the req array's), then the
	 * delivery's own order. */
	if (a->c != b->c)
		return a->c < b->c ? -1 : 1;
	return a->i < b->i ? -1 : a->i > b->i;
}

/* Each distinct message once, in digest order; every target, in lock
 * order. Points the deliveries at the leader's connection. */
static void batch_plan(struct batch *b)
{
	size_t total = 0;
	for (size_t k = 0; k < b->n; k++) {
		struct deliver_ctx *c = b->req[k]->c;
		c->conn = b->conn;
		c->state = b->state;
		b->msgs[k] = c;
		total += c->norder;
		b->aon |= c->all_or_nothing;
		for (size_t j = 0; j < c->norder; j++)
			c->targets[c->order[j]].result = STORE_ETEMP;
	}
	qsort(b->msgs, b->n, sizeof(b->msgs[0]), digest_cmp);
	b->nmsgs = 0;
	for (size_t k = 0; k < b->n; k++)
		if (b->nmsgs == 0 || digest_cmp(&b->msgs[b->nmsgs - 1], &b->msgs[k]) != 0)
			b->msgs[b->nmsgs++] = b->msgs[k];
	b->targets = xcalloc(total, sizeof(*b->targets));
	for (size_t k = 0; k < b->n; k++) {
		struct deliver_ctx *c = b->req[k]->c;
		for (size_t j = 0; j < c->norder; j++)
			b->targets[b->ntargets++] = (struct batch_target){c, c->order[j]};
	}
	qsort(b->targets, b->ntargets, sizeof(b->targets[0]), target_cmp);
}

/* BEGIN, the messages, the targets, and the COMMIT unless an
 * all-or-nothing delivery must be checked first. */
static int batch_send(struct batch *b, struct deliver_ctx *lead)
{
	if (deliver_send_prepares(lead) < 0 || deliver_send_simple(b->conn, "BEGIN") < 0)
		return -1;
	for (size_t k = 0; k < b->nmsgs; k++)
		if (deliver_send_blob(b->msgs[k]) < 0 || deliver_send_message(b->msgs[k]) < 0)
			return -1;
	for (size_t k = 0; k < b->ntargets; k++)
		if (deliver_send_target(b->targets[k].c, b->targets[k].i) < 0)
			return -1;
	if (!b->aon && deliver_send_simple(b->conn, "COMMIT") < 0)
		return -1;
	return 0;
}

/* Every answer; the first failure (caller clears it) or NULL. */
static PGresult *batch_read(struct batch *b, struct deliver_ctx *lead)
{
	PGresult *fail = NULL;
	deliver_take_prepares(lead, &fail);
	PQclear(deliver_take(lead, &fail, "deliver_batch_begin"));
	for (size_t k = 0; k < b->nmsgs; k++) {
		PQclear(deliver_take(lead, &fail, "deliver_batch_blob"));
		PQclear(deliver_take(lead, &fail, "deliver_batch_message"));
	}
	for (size_t k = 0; k < b->ntargets; k++) {
		PGresult *r = deliver_take(lead, &fail, "deliver_batch_target");
		if (r != NULL)
			deliver_target_result(&b->targets[k].c->targets[b->targets[k].i], r);
		PQclear(r);
	}
	if (!b->aon) {
		PGresult *commit = deliver_take(lead, &fail, "deliver_batch_commit");
		b->committed = commit != NULL;
		PQclear(commit);
	}
	deliver_pipeline_take_sync(b->conn, &fail);
	return fail;
}

static bool batch_aon_failed(const struct batch *b)
{
	for (size_t k = 0; k < b->n; k++) {
		const struct deliver_ctx *c = b->req[k]->c;
		for (size_t j = 0; c->all_or_nothing && j < c->norder; j++)
			if (c->targets[c->order[j]].result != STORE_OK)
				return true;
	}
	return false;
}

/* Runs the pipeline; the batch's outcome for every delivery: STORE_OK
 * (committed), REQ_SOLO through *solo_r (nothing committed, each again
 * alone) or an error when the commit's fate is unknown. */
static enum store_err batch_exec(struct batch *b, struct deliver_ctx *lead, bool *solo_r)
{
	*solo_r = true;
	if (PQenterPipelineMode(b->conn) != 1)
		return STORE_ETEMP;
	int sent = batch_send(b, lead);
	if (PQpipelineSync(b->conn) != 1 || sent < 0) {
		store_log_failure(b->conn, NULL, "deliver_batch_send");
		deliver_pipeline_abandon(b->conn);
		return STORE_ETEMP;
	}
	PGresult *fail = batch_read(b, lead);
	PQexitPipelineMode(b->conn);
	if (fail != NULL && b->committed) {
		/* What failed came after the COMMIT (the connection was cut before
		 * the pipeline's end): the deliveries are stored, and running them
		 * again alone would store each one twice. */
		log_info("event=deliver_batch_failed_after_commit deliveries=%zu", b->n);
		PQclear(fail);
		*solo_r = false;
		return STORE_OK;
	}
	if (fail != NULL) {
		(void)deliver_retryable(lead, fail); /* notes lost prepared statements */
		PQclear(fail);
		/* A broken connection may have lost a COMMIT that was applied. */
		*solo_r = b->aon || PQstatus(b->conn) == CONNECTION_OK;
		store_tx_rollback(b->conn);
		return STORE_ETEMP;
	}
	if (!b->aon)
		return STORE_OK;
	if (batch_aon_failed(b)) {
		store_tx_rollback(b->conn);
		return STORE_ETEMP;
	}
	*solo_r = false;
	PGresult *r = PQexec(b->conn, "COMMIT");
	enum store_err err = PQresultStatus(r) == PGRES_COMMAND_OK ? STORE_OK : STORE_ETEMP;
	if (err != STORE_OK)
		store_log_failure(b->conn, r, "deliver_batch_commit");
	PQclear(r);
	return err;
}

/* Runs a batch of more than one on the leader's connection and notes each
 * delivery's outcome (the caller tells them). */
static void batch_run(struct batch *b, struct deliver_ctx *lead)
{
	b->conn = lead->conn;
	b->state = lead->state;
	unsigned *own_state[DELIVER_BATCH_MAX];
	PGconn *own_conn[DELIVER_BATCH_MAX];
	for (size_t k = 0; k < b->n; k++) {
		own_conn[k] = b->req[k]->c->conn;
		own_state[k] = b->req[k]->c->state;
	}
	batch_plan(b);
	bool solo = true;
	enum store_err err = batch_exec(b, lead, &solo);
	for (size_t k = 0; k < b->n; k++) {
		struct deliver_req *r = b->req[k];
		r->c->conn = own_conn[k];
		r->c->state = own_state[k];
		r->err = err;
		r->solo = err != STORE_OK && solo;
	}
	atomic_fetch_add(&stat_batches, 1);
	atomic_fetch_add(&stat_batched, b->n);
	if (err != STORE_OK && solo)
		atomic_fetch_add(&stat_alone, b->n);
	if (err != STORE_OK)
		log_info("event=deliver_batch_failed deliveries=%zu retry=%s", b->n,
		         solo ? "alone" : "no");
	free(b->targets);
}

/* ---- leaders and followers ---- */

/* Called by a leader with batch_mu held; returns with it held, every
 * delivery of its batch (its own too) told its outcome, and the queue
 * handed on. */
static void batch_lead(struct deliver_req *me)
{
	struct batch b = {0};
	batch_take(&b, me);
	pthread_mutex_unlock(&batch_mu);
	if (b.n == 1)
		me->err = deliver_solo(me->c); /* nobody to share with */
	else
		batch_run(&b, me->c);
	pthread_mutex_lock(&batch_mu);
	for (size_t k = 0; k < b.n; k++) {
		b.req[k]->state = b.req[k]->solo ? REQ_SOLO : REQ_DONE;
		if (k > 0)
			pthread_cond_signal(&b.req[k]->cond);
	}
	struct deliver_req *next = queue_pop();
	if (next != NULL) {
		next->state = REQ_LEAD;
		pthread_cond_signal(&next->cond);
	} else {
		batch_running--;
	}
}

enum store_err deliver_batched(struct deliver_ctx *c)
{
	if (PQtransactionStatus(c->conn) != PQTRANS_IDLE)
		return deliver_solo(c);
	struct deliver_req me = {.c = c, .state = REQ_WAITING};
	pthread_cond_init(&me.cond, NULL);
	unsigned lanes = atomic_load(&batch_lanes);
	if (lanes == 0)
		return deliver_solo(c);
	pthread_mutex_lock(&batch_mu);
	if (batch_running < lanes) {
		batch_running++;
		me.state = REQ_LEAD;
	} else {
		queue_push(&me);
	}
	while (me.state == REQ_WAITING)
		pthread_cond_wait(&me.cond, &batch_mu);
	if (me.state == REQ_LEAD)
		batch_lead(&me);
	pthread_mutex_unlock(&batch_mu);
	pthread_cond_destroy(&me.cond);
	return me.state == REQ_SOLO ? deliver_solo(c) : me.err;
}

void store_deliver_set_lanes(unsigned lanes)
{
	atomic_store(&batch_lanes, lanes);
}

void store_deliver_stats_get(struct store_deliver_stats *st)
{
	st->batches = atomic_load(&stat_batches);
	st->batched = atomic_load(&stat_batched);
	st->retried_alone = atomic_load(&stat_alone);
}
