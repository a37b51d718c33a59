/* wa-queue.c - /api/v1/queue (list, retry, delete) over db/queue.h, and a
 * domain's new DKIM key. */
#include "webadmin-private.h"

#include "../db/queue.h"
#include "dkim-key.h"
#include "log.h"
#include "strnum.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *wa_queue_row(const struct queue_summary *q)
{
	return json_pack("{s:I, s:I, s:s, s:s, s:I, s:I, s:s}", "id", (json_int_t)q->id, "age_s",
	                 (json_int_t)q->age_s, "sender", q->sender, "recipients", q->recipients,
	                 "next_attempt_in_s", (json_int_t)q->next_in_s, "attempts",
	                 (json_int_t)q->attempts, "last_error", q->last_error);
}

int wa_queue_list(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	size_t offset, limit;
	if (wa_paging(req, resp, &offset, &limit) != 0)
		return 0;
	PGconn *conn = db_pool_borrow(wa->pool, WA_BORROW_MS);
	if (conn == NULL)
		return -1;
	struct queue_summary *rows = NULL;
	size_t n = 0;
	int r = queue_list(conn, &rows, &n);
	db_pool_return(wa->pool, &conn);
	if (r < 0)
		return -1;
	json_t *items = json_array();
	for (size_t i = offset; i < n && i - offset < limit; i++)
		json_array_append_new(items, wa_queue_row(&rows[i]));
	queue_summaries_free(&rows, n);
	return wa_json(resp, 200,
	               json_pack("{s:o, s:I, s:I, s:I}", "items", items, "total", (json_int_t)n,
	                         "offset", (json_int_t)offset, "limit", (json_int_t)limit));
}

/* The {id} of the path; 1 after a 400. */
static int wa_queue_id(const struct http_request *req, struct http_response *resp, int64_t *id_r)
{
	uint64_t v;
	if (str_to_u64(http_request_param(req, "id"), INT64_MAX, &v) < 0) {
		wa_error(resp, 400, "id", "id must be a queue entry number");
		return 1;
	}
	*id_r = (int64_t)v;
	return 0;
}

/* Runs queue_retry_now or queue_remove on the {id}. */
static int wa_queue_act(struct http_request *req, struct http_response *resp, void *ctx,
                        int (*act)(PGconn *, int64_t), const char *what)
{
	struct webadmin *wa = ctx;
	int64_t id;
	if (wa_queue_id(req, resp, &id) != 0)
		return 0;
	PGconn *conn = db_pool_borrow(wa->pool, WA_BORROW_MS);
	if (conn == NULL)
		return -1;
	int r = act(conn, id);
	db_pool_return(wa->pool, &conn);
	if (r < 0)
		return -1;
	if (r == 0) {
		wa_error(resp, 404, "id", "no such queue entry (already delivered or removed?)");
		return 0;
	}
	log_info("event=web_queue_%s queue_id=%lld by=%s", what, (long long)id,
	         wa_auth_of(req)->address);
	return wa_json(resp, 200, json_pack("{s:I, s:s}", "id", (json_int_t)id, "done", what));
}

int wa_queue_retry(struct http_request *req, struct http_response *resp, void *ctx)
{
	return wa_queue_act(req, resp, ctx, queue_retry_now, "retry");
}

int wa_queue_delete(struct http_request *req, struct http_response *resp, void *ctx)
{
	if (!wa_confirmed(req, resp, http_request_param(req, "id")))
		return 0;
	return wa_queue_act(req, resp, ctx, queue_remove, "delete");
}

int wa_domains_dkim_new(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	json_t *o;
	if (wa_body_object(req, resp, &o) != 0)
		return 0;
	const char *alg, *domain = http_request_param(req, "name");
	int r = 0;
	if (wa_field_str(o, "algorithm", false, 32, resp, &alg) != 0)
		goto out;
	if (alg == NULL)
		alg = DKIM_KEY_DEFAULT_ALGORITHM;
	if (!dkim_key_algorithm_valid(alg)) {
		wa_error(resp, 400, "algorithm", "algorithm must be rsa-sha256 or ed25519-sha256");
		goto out;
	}
	PGconn *conn = db_pool_borrow(wa->pool, WA_BORROW_MS);
	if (conn == NULL) {
		r = -1;
		goto out;
	}
	struct queue_dkim_key k;
	memset(&k, 0, sizeof(k));
	int got = queue_dkim_key_new(conn, domain, alg, &k);
	db_pool_return(wa->pool, &conn);
	if (got <= 0) {
		if (got == 0)
			wa_error(resp, 404, "name", "not a local domain");
		r = got;
		goto out;
	}
	log_info("event=web_dkim_new domain=%s selector=%s algorithm=%s by=%s", k.domain,
	         k.selector, k.algorithm, wa_auth_of(req)->address);
	r = wa_json(resp, 201,
	            json_pack("{s:s, s:s, s:s}", "domain", k.domain, "selector", k.selector,
	                      "algorithm", k.algorithm));
	queue_dkim_key_free(&k);
out:
	json_decref(o);
	return r;
}
