/* queue.c - the outbound queue and DKIM key rows (queue.h). */
#include "queue.h"

#include "dkim-key.h"
#include "log.h"
#include "pool.h"
#include "store-private.h"
#include "strnum.h"
#include "xalloc.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Under the reference fence (store-private.h), as a delivery's. */
static const char sql_blob[] = STORE_SQL_BLOB;
static const char sql_queue[] =
    "INSERT INTO queue (sha256, sender, account_id, envid, dsn_ret, smtputf8) "
    "VALUES ($1::bytea, $2, NULLIF($3::bigint, 0), NULLIF($4, ''), $5, $6::boolean) RETURNING id";
static const char sql_rcpt[] =
    "INSERT INTO queue_recipients (queue_id, recipient, notify, orcpt) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT DO NOTHING";

static char *queue_i64_str(char *out, size_t n, int64_t v)
{
	snprintf(out, n, "%" PRId64, v);
	return out;
}

static int queue_insert_blob(PGconn *conn, const struct queue_new *q, unsigned char md[32])
{
	SHA256(q->data, q->len, md);
	char size[24];
	queue_i64_str(size, sizeof(size), (int64_t)q->len);
	char key[24];
	queue_i64_str(key, sizeof(key), store_fence_key(md));
	const char *vals[4] = {(const char *)md, size, q->len > 0 ? q->data : "", key};
	int lens[4] = {32, 0, (int)q->len, 0};
	int fmts[4] = {1, 0, 1, 0};
	PGresult *r = PQexecParams(conn, sql_blob, 4, NULL, vals, lens, fmts, 0);
	int ret = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
	if (ret < 0)
		log_error("event=db_error stmt=queue_blob error=\"%s\"", PQerrorMessage(conn));
	PQclear(r);
	return ret;
}

static int queue_insert_row(PGconn *conn, const struct queue_new *q, const unsigned char md[32],
                            int64_t *id_r)
{
	char acct[24];
	queue_i64_str(acct, sizeof(acct), q->account_id);
	const char *vals[6] = {(const char *)md,
	                       q->sender,
	                       acct,
	                       q->envid != NULL ? q->envid : "",
	                       q->dsn_ret,
	                       q->smtputf8 ? "true" : "false"};
	int lens[6] = {32, 0, 0, 0, 0, 0};
	int fmts[6] = {1, 0, 0, 0, 0, 0};
	PGresult *r = PQexecParams(conn, sql_queue, 6, NULL, vals, lens, fmts, 0);
	uint64_t id = 0;
	int ret = -1;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
	    str_to_u64(PQgetvalue(r, 0, 0), INT64_MAX, &id) == 0)
		ret = 0;
	else
		log_error("event=db_error stmt=queue_insert error=\"%s\"", PQerrorMessage(conn));
	PQclear(r);
	*id_r = (int64_t)id;
	return ret;
}

int queue_insert(PGconn *conn, const struct queue_new *q, int64_t *id_r)
{
	unsigned char md[32];
	int64_t id;
	if (queue_insert_blob(conn, q, md) < 0 || queue_insert_row(conn, q, md, &id) < 0)
		return -1;
	char ids[24];
	queue_i64_str(ids, sizeof(ids), id);
	for (size_t i = 0; i < q->nrcpts; i++) {
		const char *p[4] = {ids, q->rcpts[i].address, q->rcpts[i].notify,
		                    q->rcpts[i].orcpt};
		PGresult *r = db_exec(conn, sql_rcpt, 4, p);
		if (r == NULL)
			return -1;
		PQclear(r);
	}
	if (queue_notify(conn) < 0)
		return -1;
	*id_r = id;
	return 0;
}

int queue_notify(PGconn *conn)
{
	PGresult *r = db_exec(conn, "NOTIFY " QUEUE_NOTIFY_CHANNEL, 0, NULL);
	if (r == NULL)
		return -1;
	PQclear(r);
	return 0;
}

/* ---- claiming ---- */

static const char sql_claim[] =
    "SELECT q.id, q.sender, COALESCE(q.account_id, 0), q.envid, q.dsn_ret, q.smtputf8, "
    "(extract(epoch FROM q.created_at) * 1000)::bigint, q.attempts, q.delay_notified, b.data "
    "FROM queue q JOIN blobs b ON b.sha256 = q.sha256 "
    "WHERE q.id = (SELECT id FROM queue WHERE next_attempt_at <= now() "
    "ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED)";
static const char sql_claim_rcpts[] =
    "SELECT recipient, orcpt, notify, status, last_error, remote_mta, dsn_status "
    "FROM queue_recipients WHERE queue_id = $1 ORDER BY recipient";

static char *queue_opt_str(PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : xstrdup(PQgetvalue(r, row, col));
}

static int64_t queue_get_i64(PGresult *r, int row, int col)
{
	const char *s = PQgetvalue(r, row, col);
	uint64_t v = 0;
	if (s[0] == '-')
		return str_to_u64(s + 1, INT64_MAX, &v) == 0 ? -(int64_t)v : 0;
	return str_to_u64(s, INT64_MAX, &v) == 0 ? (int64_t)v : 0;
}

static enum queue_rcpt_status queue_status_parse(const char *s)
{
	if (strcmp(s, "sent") == 0)
		return QUEUE_RCPT_SENT;
	return strcmp(s, "failed") == 0 ? QUEUE_RCPT_FAILED : QUEUE_RCPT_PENDING;
}

static int queue_load_rcpts(PGconn *conn, struct queue_entry *e)
{
	char ids[24];
	const char *p[1] = {queue_i64_str(ids, sizeof(ids), e->id)};
	PGresult *r = db_exec(conn, sql_claim_rcpts, 1, p);
	if (r == NULL)
		return -1;
	int n = PQntuples(r);
	e->rcpts = xcalloc((size_t)n + 1, sizeof(*e->rcpts));
	for (int i = 0; i < n; i++) {
		struct queue_rcpt *rc = &e->rcpts[i];
		rc->address = xstrdup(PQgetvalue(r, i, 0));
		rc->orcpt = queue_opt_str(r, i, 1);
		rc->notify = queue_opt_str(r, i, 2);
		rc->status = queue_status_parse(PQgetvalue(r, i, 3));
		rc->last_error = queue_opt_str(r, i, 4);
		rc->remote_mta = queue_opt_str(r, i, 5);
		rc->dsn_status = queue_opt_str(r, i, 6);
	}
	e->nrcpts = (size_t)n;
	PQclear(r);
	return 0;
}

int queue_claim(PGconn *conn, struct queue_entry *e_r)
{
	memset(e_r, 0, sizeof(*e_r));
	buf_init(&e_r->data, BUF_NO_LIMIT);
	/* Text results: the blob arrives in bytea hex form and is unescaped. */
	PGresult *r = db_exec(conn, sql_claim, 0, NULL);
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return 0;
	}
	e_r->id = queue_get_i64(r, 0, 0);
	e_r->sender = xstrdup(PQgetvalue(r, 0, 1));
	e_r->account_id = queue_get_i64(r, 0, 2);
	e_r->envid = queue_opt_str(r, 0, 3);
	e_r->dsn_ret = queue_opt_str(r, 0, 4);
	e_r->smtputf8 = PQgetvalue(r, 0, 5)[0] == 't';
	e_r->created_ms = queue_get_i64(r, 0, 6);
	e_r->created_at = (time_t)(e_r->created_ms / 1000);
	e_r->attempts = (unsigned)queue_get_i64(r, 0, 7);
	e_r->delay_notified = PQgetvalue(r, 0, 8)[0] == 't';
	size_t n = 0;
	unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 9), &n);
	PQclear(r);
	if (raw == NULL)
		return -1;
	buf_append(&e_r->data, raw, n);
	PQfreemem(raw);
	return queue_load_rcpts(conn, e_r) < 0 ? -1 : 1;
}

void queue_entry_free(struct queue_entry *e)
{
	for (size_t i = 0; i < e->nrcpts; i++) {
		struct queue_rcpt *rc = &e->rcpts[i];
		free(rc->address);
		free(rc->orcpt);
		free(rc->notify);
		free(rc->last_error);
		free(rc->remote_mta);
		free(rc->dsn_status);
	}
	free(e->rcpts);
	free(e->sender);
	free(e->envid);
	free(e->dsn_ret);
	buf_free(&e->data);
	memset(e, 0, sizeof(*e));
}

/* ---- results ---- */

static int queue_exec_count(PGconn *conn, const char *sql, int n, const char *const *p)
{
	PGresult *r = db_exec(conn, sql, n, p);
	if (r == NULL)
		return -1;
	uint64_t rows = 0;
	(void)str_to_u64(PQcmdTuples(r), INT64_MAX, &rows);
	PQclear(r);
	return rows > 0 ? 1 : 0;
}

int queue_rcpt_set(PGconn *conn, int64_t queue_id, const char *address,
                   enum queue_rcpt_status status, const char *last_error, const char *remote_mta,
                   const char *dsn_status)
{
	static const char *const names[] = {"pending", "sent", "failed"};
	char ids[24];
	const char *p[6] = {queue_i64_str(ids, sizeof(ids), queue_id),
	                    address,
	                    names[status],
	                    last_error,
	                    remote_mta,
	                    dsn_status};
	return queue_exec_count(conn,
	                        "UPDATE queue_recipients SET status = $3, last_error = $4, "
	                        "remote_mta = COALESCE($5, remote_mta), dsn_status = $6, "
	                        "updated_at = now() WHERE queue_id = $1 AND recipient = $2",
	                        6, p);
}

int queue_reschedule(PGconn *conn, int64_t queue_id, uint64_t delay_s, bool delay_notified)
{
	char ids[24], delay[24];
	snprintf(delay, sizeof(delay), "%" PRIu64, delay_s);
	const char *p[3] = {queue_i64_str(ids, sizeof(ids), queue_id), delay,
	                    delay_notified ? "true" : "false"};
	return queue_exec_count(
	    conn,
	    "UPDATE queue SET attempts = attempts + 1, last_attempt_at = now(), "
	    "next_attempt_at = now() + make_interval(secs => $2::bigint), "
	    "delay_notified = $3::boolean WHERE id = $1",
	    3, p);
}

int queue_remove(PGconn *conn, int64_t queue_id)
{
	char ids[24];
	const char *p[1] = {queue_i64_str(ids, sizeof(ids), queue_id)};
	/* Recipients it sent stay counted for the dashboard (mail_hourly). */
	return queue_exec_count(
	    conn,
	    "WITH s AS (INSERT INTO mail_hourly (hour, sent) "
	    "  SELECT date_trunc('hour', updated_at), count(*) FROM queue_recipients "
	    "  WHERE queue_id = $1 AND status = 'sent' AND updated_at > now() - interval '2 days' "
	    "  GROUP BY 1 ON CONFLICT (hour) DO UPDATE SET sent = mail_hourly.sent + "
	    "EXCLUDED.sent) "
	    "DELETE FROM queue WHERE id = $1",
	    1, p);
}

int queue_retry_now(PGconn *conn, int64_t queue_id)
{
	char ids[24];
	const char *p[1] = {queue_i64_str(ids, sizeof(ids), queue_id)};
	int ret =
	    queue_exec_count(conn, "UPDATE queue SET next_attempt_at = now() WHERE id = $1", 1, p);
	if (ret == 1 && queue_notify(conn) < 0)
		return -1;
	return ret;
}

/* ---- listing ---- */

static const char sql_list[] =
    "SELECT q.id, extract(epoch FROM now() - q.created_at)::bigint, q.sender, "
    "(SELECT string_agg(r.recipient || ' (' || r.status || ')', ', ' ORDER BY r.recipient) "
    " FROM queue_recipients r WHERE r.queue_id = q.id), "
    "extract(epoch FROM q.next_attempt_at - now())::bigint, q.attempts, "
    "COALESCE((SELECT r.last_error FROM queue_recipients r WHERE r.queue_id = q.id "
    " AND r.last_error IS NOT NULL ORDER BY r.updated_at DESC LIMIT 1), '') "
    "FROM queue q ORDER BY q.id";

int queue_list(PGconn *conn, struct queue_summary **rows_r, size_t *n_r)
{
	PGresult *r = db_exec(conn, sql_list, 0, NULL);
	if (r == NULL)
		return -1;
	int n = PQntuples(r);
	struct queue_summary *rows = xcalloc((size_t)n + 1, sizeof(*rows));
	for (int i = 0; i < n; i++) {
		rows[i].id = queue_get_i64(r, i, 0);
		rows[i].age_s = queue_get_i64(r, i, 1);
		rows[i].sender = xstrdup(PQgetvalue(r, i, 2));
		rows[i].recipients = xstrdup(PQgetvalue(r, i, 3));
		rows[i].next_in_s = queue_get_i64(r, i, 4);
		rows[i].attempts = (unsigned)queue_get_i64(r, i, 5);
		rows[i].last_error = xstrdup(PQgetvalue(r, i, 6));
	}
	PQclear(r);
	*rows_r = rows;
	*n_r = (size_t)n;
	return 0;
}

void queue_summaries_free(struct queue_summary **rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((*rows)[i].sender);
		free((*rows)[i].recipients);
		free((*rows)[i].last_error);
	}
	free(*rows);
	*rows = NULL;
}

/* ---- DKIM keys ---- */

static const char sql_key_get[] =
    "SELECT d.name, k.selector, k.algorithm, k.private_pem, k.public_b64 "
    "FROM domains d JOIN dkim_keys k ON k.domain_id = d.id WHERE d.name = lower($1)";
static const char sql_key_put[] =
    "INSERT INTO dkim_keys (domain_id, selector, algorithm, private_pem, public_b64) "
    "SELECT id, 'roost' || to_char(now(), 'YYYYMM'), $2, $3, $4 FROM domains "
    "WHERE name = lower($1) ON CONFLICT (domain_id) DO %s";

void queue_dkim_key_free(struct queue_dkim_key *k)
{
	if (k->private_pem != NULL)
		OPENSSL_cleanse(k->private_pem, strlen(k->private_pem));
	free(k->private_pem);
	free(k->public_b64);
	k->private_pem = NULL;
	k->public_b64 = NULL;
}

static int queue_dkim_key_read(PGconn *conn, const char *domain, struct queue_dkim_key *k_r)
{
	const char *p[1] = {domain};
	PGresult *r = db_exec(conn, sql_key_get, 1, p);
	if (r == NULL)
		return -1;
	int ret = PQntuples(r) == 1 ? 1 : 0;
	if (ret == 1) {
		snprintf(k_r->domain, sizeof(k_r->domain), "%s", PQgetvalue(r, 0, 0));
		snprintf(k_r->selector, sizeof(k_r->selector), "%s", PQgetvalue(r, 0, 1));
		snprintf(k_r->algorithm, sizeof(k_r->algorithm), "%s", PQgetvalue(r, 0, 2));
		k_r->private_pem = xstrdup(PQgetvalue(r, 0, 3));
		k_r->public_b64 = xstrdup(PQgetvalue(r, 0, 4));
	}
	PQclear(r);
	return ret;
}

/* Generates a key and stores it; replace: overwrite an existing one. Two
 * nodes generating at once is harmless: the first insert wins. */
static int queue_dkim_key_store(PGconn *conn, const char *domain, const char *algorithm,
                                bool replace)
{
	char *pem = NULL, *pub = NULL, sql[sizeof(sql_key_put) + 512];
	const char *err;
	if (dkim_key_generate(algorithm, &pem, &pub, &err) < 0) {
		log_error("event=dkim_keygen domain=%s error=\"%s\"", domain, err);
		return -1;
	}
	snprintf(sql, sizeof(sql), sql_key_put,
	         replace ? "UPDATE SET selector = EXCLUDED.selector || 'r' || "
	                   "to_char(now(), 'DDHH24MISS'), algorithm = EXCLUDED.algorithm, "
	                   "private_pem = EXCLUDED.private_pem, public_b64 = EXCLUDED.public_b64, "
	                   "created_at = now()"
	                 : "NOTHING");
	const char *p[4] = {domain, algorithm, pem, pub};
	int ret = queue_exec_count(conn, sql, 4, p);
	OPENSSL_cleanse(pem, strlen(pem));
	free(pem);
	free(pub);
	return ret < 0 ? -1 : 0;
}

int queue_dkim_key_get(PGconn *conn, const char *domain, bool create, struct queue_dkim_key *k_r)
{
	memset(k_r, 0, sizeof(*k_r));
	int ret = queue_dkim_key_read(conn, domain, k_r);
	if (ret != 0 || !create)
		return ret;
	if (queue_dkim_key_store(conn, domain, DKIM_KEY_DEFAULT_ALGORITHM, false) < 0)
		return -1;
	return queue_dkim_key_read(conn, domain, k_r);
}

int queue_dkim_key_new(PGconn *conn, const char *domain, const char *algorithm,
                       struct queue_dkim_key *k_r)
{
	memset(k_r, 0, sizeof(*k_r));
	if (queue_dkim_key_store(conn, domain, algorithm, true) < 0)
		return -1;
	return queue_dkim_key_read(conn, domain, k_r);
}
