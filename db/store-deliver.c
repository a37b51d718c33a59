/* store-deliver.c - store_deliver(): one message to many mailboxes.
 *
 * Delivery is one transaction sent as one libpq pipeline: BEGIN, the blob,
 * the parsed metadata, one statement per target, COMMIT, the NOTIFY, then a
 * single wait for all the answers. Each target's statement locks the
 * mailbox, counts the quota, takes the next UID and MODSEQ and inserts the
 * entry; a target over quota or without a mailbox simply matches no rows,
 * so it fails alone without an error (and without needing a SAVEPOINT) and
 * the others still deliver. The statements are prepared once per
 * connection.
 *
 * Why the NOTIFY follows the COMMIT instead of sitting inside it:
 * PostgreSQL takes a database-wide lock in the pre-commit of every
 * transaction that NOTIFYs and holds it until that commit is flushed to disk
 * (async.c, PreCommit_Notify), so NOTIFY inside the delivery transaction
 * makes every delivery's commit wait for the previous one's fsync: no group
 * commit, and throughput stuck at one commit per disk flush. The NOTIFY is
 * sent after the COMMIT, in a transaction of its own whose commit does not
 * wait for the disk: it carries no data, and after a crash there is no
 * listener left to tell. In `roost serve` one sender thread sends the
 * notifications of all deliveries in batches (notify-batch.h), because
 * even those short transactions waited on one another for that lock;
 * elsewhere the NOTIFY is queued in the same pipeline right behind the
 * COMMIT, and runs only if the delivery committed (an error skips the rest
 * of the pipeline). The delivery itself stays synchronous.
 *
 * In `roost serve`, deliveries that overlap share one such transaction
 * (store-deliver-batch.c); this file is a delivery on its own. */
#include "store-deliver-private.h"

#include "indexer.h"
#include "log.h"
#include "notify-batch.h"
#include "prepared.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

/* 9999-12-31T23:59:59Z: PostgreSQL timestamps go further, IMAP dates not. */
#define STORE_INTERNALDATE_MAX ((time_t)253402300799)

/* A deadlock, serialization failure or lost prepared statements: tries in
 * all. */
#define STORE_DELIVER_ATTEMPTS 3

/* The blob first, under the reference fence (store-private.h): the
 * message and entries may then refer to rows store_gc() had found
 * unreferenced. */
static const char sql_blob[] = STORE_SQL_BLOB;

/* A message row this delivery creates is noted in search_pending: the
 * indexer (db/indexer.h) files its text in the trigram-indexed
 * message_search shortly after the commit, off the delivery's critical
 * path. */
static const char sql_message[] =
    "WITH m AS (INSERT INTO messages (sha256, size, header_size, sent_date, subject, "
    "from_addr, to_addr, cc_addr, bcc_addr, message_id, in_reply_to, refs, envelope, body, "
    "bodystructure, parts, headers, preview) "
    "SELECT $1::bytea, $2::bigint, $3::bigint, to_timestamp($4::bigint), $5::text, "
    "$6::text, $7::text, $8::text, $9::text, $10::text, $11::text, $12::text, "
    "$13::text, $14::text, $15::text, $16::bytea, $17::text, $18::text "
    "WHERE NOT EXISTS (SELECT 1 FROM messages WHERE sha256 = $1::bytea) "
    "ON CONFLICT (sha256) DO NOTHING RETURNING id) "
    "INSERT INTO search_pending (message_id) SELECT id FROM m";

/* One target. mb locks the mailbox first (the order every store change
 * uses: mailbox rows, then the account row), q counts the quota, u takes
 * the UID and MODSEQ under that lock, e writes the entry. */
static const char sql_target[] =
    "WITH mb AS (SELECT id FROM mailboxes WHERE account_id = $1::bigint AND id = "
    "  (SELECT CASE WHEN $2::bigint <> 0 THEN $2::bigint ELSE (SELECT id FROM mailboxes "
    "   WHERE account_id = $1::bigint AND name = 'INBOX') END) FOR UPDATE), "
    "q AS (UPDATE accounts SET used_bytes = used_bytes + $3::bigint "
    "  WHERE id = $1::bigint AND EXISTS (SELECT 1 FROM mb) "
    "  AND (quota_bytes = 0 OR used_bytes + $3::bigint <= quota_bytes) RETURNING id), "
    "u AS (UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1, "
    "  messages = messages + 1, unseen = unseen + $4::bigint, "
    "  size_bytes = size_bytes + $3::bigint "
    "  WHERE id = (SELECT id FROM mb) AND EXISTS (SELECT 1 FROM q) "
    "  RETURNING id, uidnext - 1 AS uid, highestmodseq, uidvalidity), "
    "e AS (INSERT INTO mailbox_entries (mailbox_id, uid, message_id, flags, keywords, "
    "  modseq, internaldate, size) "
    "  SELECT u.id, u.uid, (SELECT id FROM messages WHERE sha256 = $5::bytea), "
    "  $6::integer, $7::text[], u.highestmodseq, "
    "  COALESCE(to_timestamp($8::bigint), now()), $3::bigint FROM u) "
    "SELECT (SELECT count(*) FROM mb), (SELECT count(*) FROM q), u.id, u.uid, "
    "  u.uidvalidity FROM (VALUES (1)) AS one LEFT JOIN u ON true";

/* The mailboxes of the targets ($1 by id, $2 the INBOXes of accounts); one
 * over quota gets a spurious wake-up, which costs its listeners a look. */
static const char sql_notify[] =
    "SELECT set_config('synchronous_commit', 'off', true), "
    "pg_notify('" STORE_NOTIFY_CHANNEL "', id::text) FROM mailboxes "
    "WHERE id = ANY($1::bigint[]) OR (account_id = ANY($2::bigint[]) AND name = 'INBOX')";

enum { STMT_BLOB, STMT_MESSAGE, STMT_TARGET, STMT_NOTIFY, STMT_COUNT };

static const struct {
	const char *name;
	const char *sql;
} deliver_stmts[STMT_COUNT] = {
    [STMT_BLOB] = {"roost_store_blob", sql_blob},
    [STMT_MESSAGE] = {"roost_store_message", sql_message},
    [STMT_TARGET] = {"roost_store_target", sql_target},
    [STMT_NOTIFY] = {"roost_store_notify", sql_notify},
};

#define STMT_ALL ((1u << STMT_COUNT) - 1)

static void deliver_texts_init(struct deliver_texts *t, const struct mime_message *m)
{
	const char *src[DT_COUNT] = {
	    m->subject,       m->from,        m->to,         m->cc,       m->bcc,
	    m->message_id,    m->in_reply_to, m->references, m->envelope, m->body,
	    m->bodystructure, m->headers,     m->preview,
	};
	for (int i = 0; i < DT_COUNT; i++) {
		buf_init(&t->tmp[i], BUF_NO_LIMIT);
		t->v[i] = store_utf8_clean(src[i], &t->tmp[i]);
	}
}

static void deliver_texts_free(struct deliver_texts *t)
{
	for (int i = 0; i < DT_COUNT; i++)
		buf_free(&t->tmp[i]);
}

static int deliver_send(struct deliver_ctx *c, int stmt, const struct store_params *p)
{
	int ok;
	if (c->state != NULL)
		ok = PQsendQueryPrepared(c->conn, deliver_stmts[stmt].name, p->n, p->values,
		                         p->lengths, p->formats, 1);
	else
		ok = PQsendQueryParams(c->conn, deliver_stmts[stmt].sql, p->n, NULL, p->values,
		                       p->lengths, p->formats, 1);
	return ok == 1 ? 0 : -1;
}

int deliver_send_simple(PGconn *conn, const char *sql)
{
	return PQsendQueryParams(conn, sql, 0, NULL, NULL, NULL, NULL, 1) == 1 ? 0 : -1;
}

int deliver_send_prepares(struct deliver_ctx *c)
{
	c->preparing = 0;
	if (c->state == NULL)
		return 0;
	for (int i = 0; i < STMT_COUNT; i++) {
		if (*c->state & (1u << i))
			continue;
		if (PQsendPrepare(c->conn, deliver_stmts[i].name, deliver_stmts[i].sql, 0, NULL) !=
		    1)
			return -1;
		c->preparing |= 1u << i;
	}
	return 0;
}

int deliver_send_blob(struct deliver_ctx *c)
{
	struct store_params p;
	store_params_init(&p);
	store_param_bytea(&p, c->in->digest, 32);
	store_param_u64(&p, c->in->data.len);
	store_param_bytea(&p, c->in->data.data, c->in->data.len);
	store_param_i64(&p, store_fence_key(c->in->digest));
	return deliver_send(c, STMT_BLOB, &p);
}

int deliver_send_message(struct deliver_ctx *c)
{
	const struct mime_message *m = c->in->parsed;
	const char *const *t = c->texts.v;
	struct store_params p;
	store_params_init(&p);
	store_param_bytea(&p, c->in->digest, 32);
	store_param_u64(&p, c->in->data.len);
	store_param_u64(&p, m->header_size);
	if (m->has_date)
		store_param_i64(&p, (int64_t)m->date);
	else
		store_param_text(&p, NULL);
	for (int i = DT_SUBJECT; i <= DT_BODYSTRUCTURE; i++)
		store_param_text(&p, t[i]);
	store_param_bytea(&p, c->parts.data, c->parts.len);
	store_param_text(&p, t[DT_HEADERS]);
	store_param_text(&p, t[DT_PREVIEW]);
	return deliver_send(c, STMT_MESSAGE, &p);
}

int deliver_send_target(struct deliver_ctx *c, size_t i)
{
	const struct store_target *t = &c->targets[i];
	struct store_params p;
	store_params_init(&p);
	store_param_i64(&p, t->account_id);
	store_param_i64(&p, t->mailbox_id);
	store_param_u64(&p, c->in->data.len);
	store_param_i64(&p, (t->flags & STORE_FLAG_SEEN) ? 0 : 1);
	store_param_bytea(&p, c->in->digest, 32);
	store_param_i64(&p, (int64_t)t->flags);
	store_param_text(&p, buf_cstr(&c->keywords[i]));
	if (t->internaldate != 0 || t->internaldate_set)
		store_param_i64(&p, (int64_t)t->internaldate);
	else
		store_param_text(&p, NULL);
	return deliver_send(c, STMT_TARGET, &p);
}

static int deliver_send_commit(struct deliver_ctx *c)
{
	struct store_params p;
	store_params_init(&p);
	store_param_text(&p, buf_cstr(&c->notify_ids));
	store_param_text(&p, buf_cstr(&c->notify_accounts));
	if (deliver_send_simple(c->conn, "COMMIT") < 0)
		return -1;
	return c->batched ? 0 : deliver_send(c, STMT_NOTIFY, &p);
}

/* Queues the whole transaction; the COMMIT only when no answer can undo it. */
static int deliver_send_all(struct deliver_ctx *c)
{
	if (deliver_send_prepares(c) < 0 || deliver_send_simple(c->conn, "BEGIN") < 0 ||
	    deliver_send_blob(c) < 0 || deliver_send_message(c) < 0)
		return -1;
	for (size_t k = 0; k < c->norder; k++)
		if (deliver_send_target(c, c->order[k]) < 0)
			return -1;
	if (!c->all_or_nothing && deliver_send_commit(c) < 0)
		return -1;
	return 0;
}

/* The result of the next queued statement (NULL if the connection broke). */
static PGresult *pipeline_take(PGconn *conn)
{
	PGresult *first = NULL, *r;
	while ((r = PQgetResult(conn)) != NULL) {
		if (first == NULL)
			first = r;
		else
			PQclear(r);
		if (PQstatus(conn) == CONNECTION_BAD)
			break;
	}
	return first;
}

/* After a failure to queue: discards the answers up to the sync, leaves
 * pipeline mode and rolls back, so the connection is idle again (or
 * broken, for the pool to replace). */
void deliver_pipeline_abandon(PGconn *conn)
{
	(void)db_pipeline_finish(conn, "deliver_abandoned");
	store_tx_rollback(conn);
}

static bool pipeline_ok(const PGresult *r)
{
	ExecStatusType st = PQresultStatus(r);
	return r != NULL && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);
}

/* Reads one answer; keeps the first failure in *fail_r. */
PGresult *deliver_take(struct deliver_ctx *c, PGresult **fail_r, const char *what)
{
	PGresult *r = pipeline_take(c->conn);
	if (pipeline_ok(r))
		return r;
	if (*fail_r == NULL && PQresultStatus(r) != PGRES_PIPELINE_ABORTED) {
		store_log_failure(c->conn, r, what);
		*fail_r = r;
		return NULL;
	}
	PQclear(r);
	return NULL;
}

void deliver_take_prepares(struct deliver_ctx *c, PGresult **fail_r)
{
	for (int i = 0; i < STMT_COUNT; i++) {
		if ((c->preparing & (1u << i)) == 0)
			continue;
		PGresult *r = deliver_take(c, fail_r, "deliver_prepare");
		if (r != NULL)
			*c->state |= 1u << i;
		PQclear(r);
	}
}

void deliver_target_result(struct store_target *t, const PGresult *r)
{
	if (PQntuples(r) != 1 || store_res_i64(r, 0, 0) == 0) {
		t->result = STORE_ENOTFOUND;
	} else if (store_res_i64(r, 0, 1) == 0) {
		t->result = STORE_EQUOTA;
	} else {
		t->result = STORE_OK;
		t->mailbox_id_r = store_res_i64(r, 0, 2);
		t->uid_r = (uint32_t)store_res_i64(r, 0, 3);
		t->uidvalidity_r = (uint32_t)store_res_i64(r, 0, 4);
	}
}

/* After PQpipelineSync: the sync's own result (absent if the connection
 * broke). */
void deliver_pipeline_take_sync(PGconn *conn, PGresult **fail_r)
{
	PGresult *sync = PQgetResult(conn);
	if (PQresultStatus(sync) != PGRES_PIPELINE_SYNC && *fail_r == NULL)
		*fail_r = sync;
	else
		PQclear(sync);
}

/* Reads every answer of the pipeline; returns the first failure (caller
 * clears it) or NULL. *committed_r: the COMMIT succeeded, whatever failed
 * after it (the connection cut before the pipeline's end). */
static PGresult *deliver_read_all(struct deliver_ctx *c, bool *committed_r)
{
	PGresult *fail = NULL;
	deliver_take_prepares(c, &fail);
	PQclear(deliver_take(c, &fail, "deliver_begin"));
	PQclear(deliver_take(c, &fail, "deliver_blob"));
	PQclear(deliver_take(c, &fail, "deliver_message"));
	for (size_t k = 0; k < c->norder; k++) {
		PGresult *r = deliver_take(c, &fail, "deliver_target");
		if (r != NULL)
			deliver_target_result(&c->targets[c->order[k]], r);
		PQclear(r);
	}
	*committed_r = false;
	if (!c->all_or_nothing) {
		PGresult *commit = deliver_take(c, &fail, "deliver_commit");
		*committed_r = commit != NULL;
		PQclear(commit);
		if (!c->batched)
			PQclear(deliver_take(c, &fail, "deliver_notify"));
	}
	deliver_pipeline_take_sync(c->conn, &fail);
	return fail;
}

/* Worth another attempt: serialization failure, deadlock, prepared
 * statements lost (26000) or found already there (42P05). */
bool deliver_retryable(struct deliver_ctx *c, const PGresult *fail)
{
	const char *s = fail ? PQresultErrorField(fail, PG_DIAG_SQLSTATE) : NULL;
	if (s == NULL || PQstatus(c->conn) != CONNECTION_OK)
		return false;
	if (c->state != NULL && strcmp(s, "26000") == 0)
		*c->state = 0;
	if (c->state != NULL && strcmp(s, "42P05") == 0)
		*c->state = STMT_ALL;
	static const char *const retry[] = {"40001", "40P01", "26000", "42P05"};
	for (size_t i = 0; i < sizeof(retry) / sizeof(retry[0]); i++)
		if (strcmp(s, retry[i]) == 0)
			return true;
	return false;
}

/* With all_or_nothing the COMMIT waits until every target succeeded. */
static enum store_err deliver_finish_aon(struct deliver_ctx *c)
{
	for (size_t k = 0; k < c->norder; k++) {
		enum store_err e = c->targets[c->order[k]].result;
		if (e != STORE_OK) {
			store_tx_rollback(c->conn);
			return e;
		}
	}
	if (PQenterPipelineMode(c->conn) != 1)
		return STORE_ETEMP;
	PGresult *fail = NULL;
	if (deliver_send_commit(c) < 0 || PQpipelineSync(c->conn) != 1) {
		deliver_pipeline_abandon(c->conn);
		return STORE_ETEMP;
	}
	PGresult *commit = deliver_take(c, &fail, "deliver_commit");
	bool committed = commit != NULL;
	PQclear(commit);
	if (!c->batched)
		PQclear(deliver_take(c, &fail, "deliver_notify"));
	deliver_pipeline_take_sync(c->conn, &fail);
	PQexitPipelineMode(c->conn);
	enum store_err err =
	    fail != NULL && !committed ? store_err_from_pg(c->conn, fail) : STORE_OK;
	PQclear(fail);
	if (err != STORE_OK)
		store_tx_rollback(c->conn);
	return err;
}

/* One attempt; *retry_r says whether another attempt may succeed. */
static enum store_err deliver_once(struct deliver_ctx *c, bool *retry_r)
{
	*retry_r = false;
	for (size_t k = 0; k < c->norder; k++)
		c->targets[c->order[k]].result = STORE_ETEMP;
	if (PQenterPipelineMode(c->conn) != 1) {
		store_log_failure(c->conn, NULL, "deliver_pipeline");
		return STORE_ETEMP;
	}
	int sent = deliver_send_all(c);
	if (PQpipelineSync(c->conn) != 1 || sent < 0) {
		store_log_failure(c->conn, NULL, "deliver_send");
		deliver_pipeline_abandon(c->conn);
		return STORE_ETEMP;
	}
	bool committed;
	PGresult *fail = deliver_read_all(c, &committed);
	PQexitPipelineMode(c->conn);
	if (fail != NULL && committed) {
		/* Stored: another attempt would store the message twice. */
		log_info("event=deliver_failed_after_commit");
		PQclear(fail);
		fail = NULL;
	}
	if (fail != NULL) {
		enum store_err err = store_err_from_pg(c->conn, fail);
		*retry_r = deliver_retryable(c, fail);
		PQclear(fail);
		store_tx_rollback(c->conn);
		return err == STORE_ENOTFOUND ? STORE_ETEMP : err;
	}
	return c->all_or_nothing ? deliver_finish_aon(c) : STORE_OK;
}

enum store_err deliver_solo(struct deliver_ctx *c)
{
	enum store_err err = STORE_ETEMP;
	bool retry = true;
	for (int a = 0; a < STORE_DELIVER_ATTEMPTS && retry; a++)
		err = deliver_once(c, &retry);
	return err;
}

static struct deliver_ctx *deliver_ctx_new(PGconn *conn, struct store_incoming *in,
                                           struct store_target *targets, size_t n, bool aon)
{
	struct deliver_ctx *c = xcalloc(1, sizeof(*c));
	c->conn = conn;
	c->state = db_prepared_bits(conn, DB_PREPARED_STORE);
	c->in = in;
	c->targets = targets;
	c->all_or_nothing = aon;
	c->order = xcalloc(n, sizeof(*c->order));
	c->keywords = xcalloc(n, sizeof(*c->keywords));
	buf_init(&c->parts, BUF_NO_LIMIT);
	mime_parts_pack(in->parsed->parts, in->parsed->nparts, &c->parts);
	deliver_texts_init(&c->texts, in->parsed);
	buf_init(&c->notify_ids, BUF_NO_LIMIT);
	buf_init(&c->notify_accounts, BUF_NO_LIMIT);
	c->batched = notify_batch_running();
	return c;
}

static void deliver_ctx_free(struct deliver_ctx *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf_free(&c->keywords[i]);
	free(c->keywords);
	free(c->order);
	buf_free(&c->parts);
	deliver_texts_free(&c->texts);
	buf_free(&c->notify_ids);
	buf_free(&c->notify_accounts);
	free(c);
}

static bool target_valid(const struct store_target *t)
{
	if (t->account_id <= 0 || t->mailbox_id < 0 || (t->flags & ~0x1fu) != 0 ||
	    t->internaldate < 0 || t->internaldate > STORE_INTERNALDATE_MAX)
		return false;
	for (size_t i = 0; t->keywords != NULL && t->keywords[i] != NULL; i++)
		if (!store_keyword_valid(t->keywords[i]))
			return false;
	return true;
}

/* Lock order: by account, then mailbox, so two deliveries to the same
 * recipients never wait on each other in a circle. */
bool deliver_target_before(const struct store_target *x, const struct store_target *y)
{
	if (x->account_id != y->account_id)
		return x->account_id < y->account_id;
	return x->mailbox_id < y->mailbox_id;
}

static void deliver_sort(struct deliver_ctx *c)
{
	/* Insertion sort: few targets, and qsort has no context argument. */
	for (size_t i = 1; i < c->norder; i++) {
		size_t v = c->order[i], j = i;
		while (j > 0 &&
		       deliver_target_before(&c->targets[v], &c->targets[c->order[j - 1]])) {
			c->order[j] = c->order[j - 1];
			j--;
		}
		c->order[j] = v;
	}
}

/* The arrays sql_notify takes: mailbox ids, and accounts whose INBOX. */
static void deliver_notify_lists(struct deliver_ctx *c)
{
	buf_append_char(&c->notify_ids, '{');
	buf_append_char(&c->notify_accounts, '{');
	for (size_t k = 0; k < c->norder; k++) {
		const struct store_target *t = &c->targets[c->order[k]];
		struct buf *b = t->mailbox_id != 0 ? &c->notify_ids : &c->notify_accounts;
		buf_printf(b, "%s%lld", b->len > 1 ? "," : "",
		           (long long)(t->mailbox_id != 0 ? t->mailbox_id : t->account_id));
	}
	buf_append_char(&c->notify_ids, '}');
	buf_append_char(&c->notify_accounts, '}');
}

/* Validates the targets; fills c->order with the valid ones, sorted.
 * Returns false if one is invalid and that must fail the call. */
static bool deliver_plan(struct deliver_ctx *c, size_t n)
{
	bool all_valid = true;
	for (size_t i = 0; i < n; i++) {
		struct store_target *t = &c->targets[i];
		t->mailbox_id_r = 0;
		t->uid_r = 0;
		t->uidvalidity_r = 0;
		t->result = STORE_ETEMP;
		buf_init(&c->keywords[i], BUF_NO_LIMIT);
		if (!target_valid(t)) {
			t->result = STORE_EINVALID;
			all_valid = false;
			continue;
		}
		store_keywords_literal(t->keywords, &c->keywords[i]);
		c->order[c->norder++] = i;
	}
	deliver_sort(c);
	deliver_notify_lists(c);
	return all_valid || !c->all_or_nothing;
}

/* After the commit: the sender tells the listeners, or, when it is gone or
 * full, this delivery does. */
static void deliver_notify_batched(struct deliver_ctx *c)
{
	int64_t *ids = xcalloc(c->norder, sizeof(*ids));
	size_t n = 0;
	for (size_t k = 0; k < c->norder; k++)
		if (c->targets[c->order[k]].result == STORE_OK)
			ids[n++] = c->targets[c->order[k]].mailbox_id_r;
	if (n > 0 && !notify_batch_add(ids, n))
		notify_now(c->conn, ids, n);
	free(ids);
}

enum store_err store_deliver(PGconn *conn, struct store_incoming *in, struct store_target *targets,
                             size_t ntargets, bool all_or_nothing)
{
	if (!in->finished || in->too_big || in->parsed == NULL || ntargets == 0)
		return STORE_EINVALID;
	struct deliver_ctx *c = deliver_ctx_new(conn, in, targets, ntargets, all_or_nothing);
	enum store_err err = STORE_EINVALID;
	if (deliver_plan(c, ntargets)) {
		err = c->batched ? deliver_batched(c) : deliver_solo(c);
		if (err == STORE_OK && c->batched)
			deliver_notify_batched(c);
	}
	/* Nothing committed: targets that had succeeded share the failure. */
	if (err != STORE_OK)
		for (size_t k = 0; k < c->norder; k++)
			if (c->targets[c->order[k]].result == STORE_OK ||
			    c->targets[c->order[k]].result == STORE_ETEMP)
				c->targets[c->order[k]].result = err;
	deliver_ctx_free(c, ntargets);
	indexer_note_delivery();
	return err;
}
