/* outbound.c - handing a message to the queue: DKIM signature, blob, rows,
 * wake-up (outbound.h). */
#include "outbound-private.h"

#include "dkim.h"
#include "log.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OUTBOUND_BORROW_TIMEOUT_MS 10000
#define OUTBOUND_DOMAIN_MAX        255

/* The domain of the first address in the From: field ("" if none): the
 * part after the last '@' up to '>', ',', ';', space or the line end. */
static void outbound_from_domain(const char *msg, size_t len, char *out, size_t outlen)
{
	out[0] = '\0';
	size_t i = 0;
	while (i < len) {
		const char *nl = memchr(msg + i, '\n', len - i);
		size_t n = nl != NULL ? (size_t)(nl - (msg + i)) : len - i;
		if (n == 0 || (n == 1 && msg[i] == '\r'))
			return; /* end of the header */
		if (n > 5 && strncasecmp(msg + i, "From:", 5) == 0) {
			const char *at = memrchr(msg + i, '@', n);
			if (at == NULL)
				return;
			size_t d = 0;
			for (const char *p = at + 1; p < msg + i + n && d + 1 < outlen; p++) {
				if (strchr(">,; \t\r\"", *p) != NULL)
					break;
				out[d++] = *p;
			}
			out[d] = '\0';
			return;
		}
		i += n + (nl != NULL);
	}
}

/* Signs with the key of the From: domain, else of the sender's domain,
 * when one of them is local. 0 unsigned or signed, -1 database error. */
static int outbound_dkim(PGconn *conn, const struct outbound_message *m, struct buf *sig)
{
	char domains[2][OUTBOUND_DOMAIN_MAX + 1];
	outbound_from_domain(m->data, m->len, domains[0], sizeof(domains[0]));
	const char *at = strrchr(m->sender, '@');
	snprintf(domains[1], sizeof(domains[1]), "%s", at != NULL ? at + 1 : "");
	for (int i = 0; i < 2; i++) {
		if (domains[i][0] == '\0')
			continue;
		struct queue_dkim_key k;
		int found = queue_dkim_key_get(conn, domains[i], true, &k);
		if (found < 0)
			return -1;
		if (found == 0)
			continue;
		struct dkim_signer s = {k.domain, k.selector, k.algorithm, k.private_pem,
		                        time(NULL)};
		const char *err;
		if (dkim_sign(&s, m->data, m->len, sig, &err) < 0)
			log_warn("event=dkim_sign domain=%s error=\"%s\"", k.domain, err);
		queue_dkim_key_free(&k);
		return 0;
	}
	return 0;
}

int outbound_enqueue_conn(PGconn *conn, const struct outbound_message *m, int64_t *queue_id_r,
                          const char **error_r)
{
	struct buf data;
	buf_init(&data, BUF_NO_LIMIT);
	int ret = -1;
	*error_r = "database failure";
	if (outbound_dkim(conn, m, &data) < 0)
		goto out;
	buf_append(&data, m->data, m->len);
	struct queue_new_rcpt *rc = xcalloc(m->nrecipients + 1, sizeof(*rc));
	for (size_t i = 0; i < m->nrecipients; i++) {
		rc[i].address = m->recipients[i];
		rc[i].notify = m->notify != NULL ? m->notify[i] : NULL;
		rc[i].orcpt = m->orcpt != NULL ? m->orcpt[i] : NULL;
	}
	struct queue_new q = {m->sender, m->account_id,  m->envid,  m->dsn_ret, m->smtputf8,
	                      rc,        m->nrecipients, data.data, data.len};
	int64_t id = 0;
	ret = queue_insert(conn, &q, &id);
	free(rc);
	if (ret == 0) {
		log_info("event=queued queue_id=%lld recipients=%zu size=%zu", (long long)id,
		         m->nrecipients, data.len);
		if (queue_id_r != NULL)
			*queue_id_r = id;
	}
out:
	buf_free(&data);
	return ret;
}

int outbound_enqueue(struct db_pool *pool, const struct outbound_message *m, int64_t *queue_id_r,
                     const char **error_r)
{
	PGconn *conn = db_pool_borrow(pool, OUTBOUND_BORROW_TIMEOUT_MS);
	if (conn == NULL) {
		*error_r = "database unavailable";
		return -1;
	}
	int ret = -1;
	if (db_begin(conn) == 0 && outbound_enqueue_conn(conn, m, queue_id_r, error_r) == 0 &&
	    db_commit(conn) == 0)
		ret = 0;
	else
		db_rollback(conn);
	if (ret < 0)
		*error_r = "database failure";
	db_pool_return(pool, &conn);
	return ret;
}
