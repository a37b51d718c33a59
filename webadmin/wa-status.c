/* wa-status.c - server status, the hourly mail chart, and /metrics. */
#include "webadmin-private.h"

#include "server.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The listeners cli-serve.c may run, by protocol name. */
static const char *const wa_protocols[] = {
    "smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s", "https", "http",
};
#define WA_NPROTOCOLS (sizeof(wa_protocols) / sizeof(wa_protocols[0]))

/* Received: messages stored in the last 24 h (each counted once however
 * many mailboxes hold it). Sent: outbound recipients accepted by the remote
 * side in the last 24 h. Both are the rows still there plus those deleted
 * since, which mail_hourly counts by hour (migration 016; the oldest hour
 * counts whole). Queue: messages with recipients still pending. */
#define WA_GONE_24H(col)                                                                           \
	"(SELECT coalesce(sum(" col "), 0) FROM mail_hourly "                                      \
	"  WHERE hour >= date_trunc('hour', now() - interval '24 hours'))"
static const char wa_figures_sql[] =
    "SELECT (SELECT count(*) FROM messages WHERE created_at > now() - interval '24 hours') "
    "  + " WA_GONE_24H("received") ", "
                                   "(SELECT count(*) FROM queue_recipients WHERE status = 'sent' "
                                   "  AND updated_at > now() - interval '24 hours') + " WA_GONE_24H(
                                       "sent") ", "
                                               "(SELECT count(DISTINCT queue_id) FROM "
                                               "queue_recipients WHERE status = 'pending'), "
                                               "a.used, a.n, (SELECT count(*) FROM domains) "
                                               "FROM (SELECT coalesce(sum(used_bytes), 0) AS used, "
                                               "count(*) AS n FROM accounts) AS a";

struct wa_figures {
	int64_t received_24h, sent_24h, queue, storage, accounts, domains;
};

static int wa_figures_get(struct webadmin *wa, struct wa_figures *f)
{
	PGresult *res = wa_db_exec(wa, wa_figures_sql, 0, NULL);
	if (res == NULL)
		return -1;
	*f = (struct wa_figures){wa_db_int(res, 0, 0), wa_db_int(res, 0, 1), wa_db_int(res, 0, 2),
	                         wa_db_int(res, 0, 3), wa_db_int(res, 0, 4), wa_db_int(res, 0, 5)};
	PQclear(res);
	return 0;
}

/* The accounts using most storage. */
static json_t *wa_top_accounts(struct webadmin *wa)
{
	PGresult *res = wa_db_exec(wa,
	                           "SELECT address, used_bytes, quota_bytes FROM accounts "
	                           "ORDER BY used_bytes DESC, address LIMIT 10",
	                           0, NULL);
	if (res == NULL)
		return NULL;
	json_t *a = json_array();
	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(a,
		                      json_pack("{s:s, s:I, s:I}", "address", PQgetvalue(res, i, 0),
		                                "used_bytes", (json_int_t)wa_db_int(res, i, 1),
		                                "quota_bytes", (json_int_t)wa_db_int(res, i, 2)));
	PQclear(res);
	return a;
}

static json_t *wa_connections(void)
{
	json_t *o = json_object();
	for (size_t i = 0; i < WA_NPROTOCOLS; i++)
		json_object_set_new(o, wa_protocols[i],
		                    json_integer((json_int_t)server_stats_open(wa_protocols[i])));
	return o;
}

int wa_status(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	(void)req;
	struct wa_figures f;
	if (wa_figures_get(wa, &f) < 0)
		return -1;
	json_t *top = wa_top_accounts(wa);
	if (top == NULL)
		return -1;
	struct server_stats st;
	server_stats_get(&st);
	return wa_json(
	    resp, 200,
	    json_pack(
	        "{s:s, s:s, s:I, s:o, s:I, s:I, s:{s:I, s:I}, s:I, s:b, s:{s:I, s:o}, s:I, s:I}",
	        "version", ROOST_VERSION, "hostname", wa->hostname, "uptime_s",
	        (json_int_t)(time(NULL) - wa->started), "connections", wa_connections(),
	        "connections_accepted", (json_int_t)st.accepted, "connections_open",
	        (json_int_t)st.open, "messages_24h", "received", (json_int_t)f.received_24h, "sent",
	        (json_int_t)f.sent_24h, "queue_length", (json_int_t)f.queue, "queue_available", 1,
	        "storage", "used_bytes", (json_int_t)f.storage, "top_accounts", top, "accounts",
	        (json_int_t)f.accounts, "domains", (json_int_t)f.domains));
}

int wa_stats_hourly(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	(void)req;
	PGresult *res = wa_db_exec(
	    wa,
	    "SELECT extract(epoch FROM h)::bigint, "
	    "(SELECT count(*) FROM messages WHERE created_at >= h AND created_at < h + interval '1 "
	    "hour') + coalesce(g.received, 0), "
	    "(SELECT count(*) FROM queue_recipients WHERE status = 'sent' "
	    "  AND updated_at >= h AND updated_at < h + interval '1 hour') + coalesce(g.sent, 0) "
	    "FROM generate_series(date_trunc('hour', now()) - interval '23 hours', "
	    "                     date_trunc('hour', now()), interval '1 hour') AS h "
	    "LEFT JOIN mail_hourly g ON g.hour = h ORDER BY h",
	    0, NULL);
	if (res == NULL)
		return -1;
	json_t *hours = json_array();
	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(hours, json_pack("{s:I, s:I, s:I}", "start",
		                                       (json_int_t)wa_db_int(res, i, 0), "received",
		                                       (json_int_t)wa_db_int(res, i, 1), "sent",
		                                       (json_int_t)wa_db_int(res, i, 2)));
	PQclear(res);
	return wa_json(resp, 200, json_pack("{s:o}", "hours", hours));
}

static void wa_metric(struct buf *b, const char *name, const char *type, const char *help,
                      uint64_t value)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
	           (unsigned long long)value);
}

int wa_metrics(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	(void)req;
	struct wa_figures f;
	if (wa_figures_get(wa, &f) < 0)
		return -1;
	struct server_stats st;
	server_stats_get(&st);
	struct buf *b = &resp->body;
	wa_metric(b, "roost_uptime_seconds", "gauge", "Seconds since roost serve started.",
	          (uint64_t)(time(NULL) - wa->started));
	buf_printf(b, "# HELP roost_connections_open Sessions running now, per listener.\n"
	              "# TYPE roost_connections_open gauge\n");
	for (size_t i = 0; i < WA_NPROTOCOLS; i++)
		buf_printf(b, "roost_connections_open{protocol=\"%s\"} %llu\n", wa_protocols[i],
		           (unsigned long long)server_stats_open(wa_protocols[i]));
	wa_metric(b, "roost_connections_accepted_total", "counter", "Connections accepted.",
	          st.accepted);
	wa_metric(b, "roost_connections_rejected_total", "counter",
	          "Connections turned away by the connection limits.", st.rejected_limits);
	wa_metric(b, "roost_messages_received_24h", "gauge",
	          "Messages stored in the last 24 hours.", (uint64_t)f.received_24h);
	wa_metric(b, "roost_messages_sent_24h", "gauge",
	          "Outbound recipients delivered in the last 24 hours.", (uint64_t)f.sent_24h);
	wa_metric(b, "roost_queue_messages", "gauge", "Outbound messages waiting for delivery.",
	          (uint64_t)f.queue);
	wa_metric(b, "roost_storage_used_bytes", "gauge", "Mail stored, all accounts.",
	          (uint64_t)f.storage);
	wa_metric(b, "roost_accounts", "gauge", "Accounts.", (uint64_t)f.accounts);
	wa_metric(b, "roost_http_auth_failures_total", "counter",
	          "Failed browser sign-ins since start.", atomic_load(&wa->auth_failures));
	wa_metric(b, "roost_http_signins_total", "counter", "Browser sign-ins since start.",
	          atomic_load(&wa->signins));
	struct store_deliver_stats ds;
	store_deliver_stats_get(&ds);
	wa_metric(b, "roost_delivery_batches_total", "counter",
	          "Transactions shared by concurrent deliveries.", ds.batches);
	wa_metric(b, "roost_delivery_batched_total", "counter",
	          "Deliveries stored in a shared transaction.", ds.batched);
	wa_metric(b, "roost_delivery_batch_retries_total", "counter",
	          "Deliveries of a shared transaction that failed, stored again alone.",
	          ds.retried_alone);
	http_response_set_type(resp, "text/plain; version=0.0.4; charset=utf-8");
	return 0;
}
