/* cli-queue.c - `roost queue list|retry|delete` (the outbound queue) and
 * `roost domain dns` (the DNS records a domain should publish). */
#include "cli.h"

#include "buf.h"
#include "dkim-key.h"
#include "dns-records.h"
#include "pool.h"
#include "queue.h"
#include "strnum.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLI_QUEUE_BORROW_MS 10000
#define CLI_TXT_CHUNK       255

static void cli_queue_duration(int64_t s, char *out, size_t n)
{
	const char *sign = s < 0 ? "-" : "";
	uint64_t v = s < 0 ? (uint64_t)(-s) : (uint64_t)s;
	if (v >= 86400)
		snprintf(out, n, "%s%" PRIu64 "d%" PRIu64 "h", sign, v / 86400, v % 86400 / 3600);
	else if (v >= 3600)
		snprintf(out, n, "%s%" PRIu64 "h%" PRIu64 "m", sign, v / 3600, v % 3600 / 60);
	else if (v >= 60)
		snprintf(out, n, "%s%" PRIu64 "m%" PRIu64 "s", sign, v / 60, v % 60);
	else
		snprintf(out, n, "%s%" PRIu64 "s", sign, v);
}

static int cli_queue_list(PGconn *conn)
{
	struct queue_summary *rows = NULL;
	size_t n = 0;
	if (queue_list(conn, &rows, &n) < 0) {
		cli_error("cannot read the queue");
		return 75;
	}
	printf("ID\tAGE\tSENDER\tRECIPIENTS\tNEXT\tATTEMPTS\tLAST-ERROR\n");
	for (size_t i = 0; i < n; i++) {
		char age[32], next[32];
		cli_queue_duration(rows[i].age_s, age, sizeof(age));
		if (rows[i].next_in_s <= 0)
			snprintf(next, sizeof(next), "now");
		else
			cli_queue_duration(rows[i].next_in_s, next, sizeof(next));
		printf("%lld\t%s\t<%s>\t%s\t%s\t%u\t%s\n", (long long)rows[i].id, age,
		       rows[i].sender, rows[i].recipients, next, rows[i].attempts,
		       rows[i].last_error);
	}
	queue_summaries_free(&rows, n);
	return 0;
}

static int cli_queue_one(PGconn *conn, const char *verb, const char *arg)
{
	uint64_t id;
	if (str_to_u64(arg, INT64_MAX, &id) < 0) {
		cli_error("not a queue id: %s", arg);
		return 2;
	}
	int r = strcmp(verb, "retry") == 0 ? queue_retry_now(conn, (int64_t)id)
	                                   : queue_remove(conn, (int64_t)id);
	if (r < 0) {
		cli_error("database failure");
		return 75;
	}
	if (r == 0) {
		cli_error("no queue entry %s", arg);
		return 1;
	}
	printf("queue entry %s %s\n", arg,
	       strcmp(verb, "retry") == 0 ? "scheduled now" : "deleted");
	return 0;
}

int cli_queue(const struct cli_args *args, const char *verb)
{
	struct cli_db db;
	int open_status = cli_db_open(args, &db);
	if (open_status != 0)
		return open_status;
	PGconn *conn = db_pool_borrow(db.pool, CLI_QUEUE_BORROW_MS);
	int status = 75;
	if (conn == NULL)
		cli_error("database unavailable");
	else if (strcmp(verb, "list") == 0)
		status = cli_queue_list(conn);
	else
		status = cli_queue_one(conn, verb, args->argv[0]);
	if (conn != NULL)
		db_pool_return(db.pool, &conn);
	cli_db_close(&db);
	return status;
}

/* A TXT record's text as quoted strings of at most 255 bytes each. */
static void cli_txt_strings(const char *text, struct buf *out)
{
	size_t len = strlen(text);
	for (size_t i = 0; i < len; i += CLI_TXT_CHUNK) {
		size_t n = len - i < CLI_TXT_CHUNK ? len - i : CLI_TXT_CHUNK;
		buf_printf(out, "%s\"%.*s\"", i > 0 ? " " : "", (int)n, text + i);
	}
}

/* Zone-file lines, a TXT record's text in quoted strings of at most 255
 * bytes each. */
static void cli_domain_records(const struct config *cfg, const struct queue_dkim_key *k)
{
	struct dns_dkim dkim = {k->selector, k->algorithm, k->public_b64};
	struct dns_record recs[DNS_RECORDS_MAX];
	size_t n = dns_records(k->domain, config_str(cfg, CFG_SERVER_HOSTNAME), &dkim, recs);
	struct buf txt;
	buf_init(&txt, BUF_NO_LIMIT);
	printf("; DNS records to publish for %s\n", k->domain);
	for (size_t i = 0; i < n; i++) {
		buf_reset(&txt);
		if (recs[i].kind != DNS_RECORD_MX)
			cli_txt_strings(buf_cstr(&recs[i].value), &txt);
		else
			buf_append_str(&txt, buf_cstr(&recs[i].value));
		printf("%s\tIN\t%s\t%s\n", buf_cstr(&recs[i].name), recs[i].type, buf_cstr(&txt));
	}
	buf_free(&txt);
	dns_records_free(recs, n);
}

int cli_domain_dns(const struct cli_args *args, const char *verb)
{
	(void)verb;
	struct cli_db db;
	int open_status = cli_db_open(args, &db);
	if (open_status != 0)
		return open_status;
	const char *alg = cli_opt(args, "new-dkim-key");
	if (alg != NULL && !dkim_key_algorithm_valid(alg)) {
		cli_error("--new-dkim-key: rsa-sha256 or ed25519-sha256");
		cli_db_close(&db);
		return 2;
	}
	PGconn *conn = db_pool_borrow(db.pool, CLI_QUEUE_BORROW_MS);
	struct queue_dkim_key k;
	int status = 75, r = -1;
	if (conn != NULL)
		r = alg != NULL ? queue_dkim_key_new(conn, args->argv[0], alg, &k)
		                : queue_dkim_key_get(conn, args->argv[0], true, &k);
	if (r < 0) {
		cli_error("database failure");
	} else if (r == 0) {
		cli_error("unknown domain: %s", args->argv[0]);
		status = 1;
	} else {
		cli_domain_records(db.cfg, &k);
		queue_dkim_key_free(&k);
		status = 0;
	}
	if (conn != NULL)
		db_pool_return(db.pool, &conn);
	cli_db_close(&db);
	return status;
}
