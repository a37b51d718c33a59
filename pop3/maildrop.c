/* maildrop.c - the POP3 view of an INBOX: listing with wire sizes, the
 * LOGIN-DELAY record and the UPDATE state.
 *
 * Sizes: LIST and STAT must give the octets RETR sends, and RETR turns bare
 * LF into CRLF and ends an unterminated last line with CRLF (parse.c). A
 * stored message's size may therefore differ from its wire size. Messages
 * never change (content-addressed), so the wire size is computed once per
 * message, inside PostgreSQL (no blob crosses the network), and kept in
 * pop3_message_sizes (migration 004). encode(data, 'escape') leaves CR and
 * LF as they are (it escapes only NUL, high-bit bytes and backslashes), so
 * counting LF and CRLF in its text gives the bare LFs. */
#include "pop3-private.h"

#include "log.h"
#include "store.h"
#include "strnum.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>

/* OFFSET 0 keeps encode() from being inlined (and run) once per use. */
static const char sql_fill_sizes[] =
    "INSERT INTO pop3_message_sizes (message_id, size) "
    "SELECT m.id, m.size + c.lf - c.crlf + "
    "  CASE WHEN m.size > 0 AND substring(b.data FROM m.size::integer FOR 1) <> '\\x0a'::bytea "
    "  THEN 2 ELSE 0 END "
    "FROM (SELECT DISTINCT message_id FROM mailbox_entries WHERE mailbox_id = $1::bigint) e "
    "JOIN messages m ON m.id = e.message_id JOIN blobs b ON b.sha256 = m.sha256 "
    "CROSS JOIN LATERAL (SELECT length(t) - length(replace(t, E'\\n', '')) AS lf, "
    "  (length(t) - length(replace(t, E'\\r\\n', ''))) / 2 AS crlf "
    "  FROM (SELECT encode(b.data, 'escape') AS t OFFSET 0) x) c "
    "WHERE NOT EXISTS (SELECT 1 FROM pop3_message_sizes s WHERE s.message_id = m.id) "
    "ON CONFLICT (message_id) DO NOTHING";

/* Entries delivered after the fill have no size yet and wait for the next
 * login, like anything delivered after the maildrop was opened. */
static const char sql_list[] = "SELECT e.uid, e.message_id, e.size, s.size FROM mailbox_entries e "
                               "JOIN pop3_message_sizes s ON s.message_id = e.message_id "
                               "WHERE e.mailbox_id = $1::bigint ORDER BY e.uid";

static const char sql_login_delay[] =
    "INSERT INTO pop3_logins (account_id, last_login) VALUES ($1::bigint, now()) "
    "ON CONFLICT (account_id) DO UPDATE SET last_login = now() "
    "WHERE pop3_logins.last_login <= now() - make_interval(secs => $2::bigint) "
    "RETURNING 1";

static const char sql_retrieved[] =
    "INSERT INTO pop3_retrieved (mailbox_id, uid) "
    "SELECT $1::bigint, unnest($2::bigint[]) ON CONFLICT DO NOTHING";

static const char sql_expired[] = "SELECT r.uid FROM pop3_retrieved r JOIN mailbox_entries e "
                                  "ON e.mailbox_id = r.mailbox_id AND e.uid = r.uid "
                                  "WHERE r.mailbox_id = $1::bigint AND r.retrieved_at <= now() - "
                                  "make_interval(days => $2::integer)";

static const char sql_retrieved_gc[] =
    "DELETE FROM pop3_retrieved r WHERE r.mailbox_id = $1::bigint AND NOT EXISTS "
    "(SELECT 1 FROM mailbox_entries e WHERE e.mailbox_id = r.mailbox_id AND e.uid = r.uid)";

static int pop3_exec_cmd(PGconn *conn, const char *sql, int n, const char *const *params)
{
	PGresult *r = db_exec(conn, sql, n, params);
	if (r == NULL)
		return -1;
	PQclear(r);
	return 0;
}

static uint64_t pop3_res_u64(const PGresult *r, int row, int col)
{
	uint64_t v = 0;
	if (str_to_u64(PQgetvalue(r, row, col), UINT64_MAX, &v) < 0)
		log_error("event=pop3_bad_number value=%.30s", PQgetvalue(r, row, col));
	return v;
}

int pop3_maildrop_load(PGconn *conn, struct pop3_maildrop *md)
{
	char id[24];
	snprintf(id, sizeof(id), "%lld", (long long)md->mailbox_id);
	const char *params[] = {id};
	if (pop3_exec_cmd(conn, sql_fill_sizes, 1, params) < 0)
		return -1;
	PGresult *r = db_exec(conn, sql_list, 1, params);
	if (r == NULL)
		return -1;
	int rows = PQntuples(r);
	md->msgs = xcalloc((size_t)rows + 1, sizeof(*md->msgs));
	md->n = (size_t)rows;
	for (int i = 0; i < rows; i++) {
		struct pop3_msg *m = &md->msgs[i];
		m->uid = (uint32_t)pop3_res_u64(r, i, 0);
		m->message_id = (int64_t)pop3_res_u64(r, i, 1);
		m->raw_size = pop3_res_u64(r, i, 2);
		m->size = pop3_res_u64(r, i, 3);
	}
	PQclear(r);
	return 0;
}

void pop3_maildrop_free(struct pop3_maildrop *md)
{
	free(md->msgs);
	md->msgs = NULL;
	md->n = 0;
}

int pop3_login_delay_pass(PGconn *conn, int64_t account_id, uint64_t delay)
{
	char id[24], secs[24];
	snprintf(id, sizeof(id), "%lld", (long long)account_id);
	snprintf(secs, sizeof(secs), "%llu", (unsigned long long)delay);
	const char *params[] = {id, secs};
	PGresult *r = db_exec(conn, sql_login_delay, 2, params);
	if (r == NULL)
		return -1;
	int pass = PQntuples(r) == 1;
	PQclear(r);
	return pass;
}

/* "{1,2,3}" of the UIDs whose flag (deleted or retrieved) is set. */
static size_t pop3_uid_array(const struct pop3_maildrop *md, bool retrieved, struct buf *out)
{
	size_t n = 0;
	buf_append_char(out, '{');
	for (size_t i = 0; i < md->n; i++) {
		if (retrieved ? md->msgs[i].retrieved : md->msgs[i].deleted)
			buf_printf(out, "%s%u", n++ > 0 ? "," : "", md->msgs[i].uid);
	}
	buf_append_char(out, '}');
	return n;
}

static int pop3_uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* The UIDs to expunge: DELE'd ones plus (with EXPIRE) the expired ones,
 * sorted and unique as store_expunge() wants them. */
static int pop3_update_uids(PGconn *conn, const struct pop3_maildrop *md, int64_t expire_days,
                            uint32_t **uids_r, size_t *n_r)
{
	PGresult *r = NULL;
	if (expire_days >= 0) {
		char id[24], days[24];
		snprintf(id, sizeof(id), "%lld", (long long)md->mailbox_id);
		snprintf(days, sizeof(days), "%lld", (long long)expire_days);
		const char *params[] = {id, days};
		if ((r = db_exec(conn, sql_expired, 2, params)) == NULL)
			return -1;
	}
	size_t max = md->n + (r != NULL ? (size_t)PQntuples(r) : 0), n = 0;
	uint32_t *uids = xcalloc(max + 1, sizeof(*uids));
	for (size_t i = 0; i < md->n; i++) {
		if (md->msgs[i].deleted)
			uids[n++] = md->msgs[i].uid;
	}
	for (int i = 0; r != NULL && i < PQntuples(r); i++)
		uids[n++] = (uint32_t)pop3_res_u64(r, i, 0);
	PQclear(r);
	qsort(uids, n, sizeof(*uids), pop3_uid_cmp);
	size_t u = 0;
	for (size_t i = 0; i < n; i++) {
		if (u == 0 || uids[u - 1] != uids[i])
			uids[u++] = uids[i];
	}
	*uids_r = uids;
	*n_r = u;
	return 0;
}

static int pop3_record_retrieved(PGconn *conn, const struct pop3_maildrop *md)
{
	struct buf arr;
	buf_init(&arr, BUF_NO_LIMIT);
	char id[24];
	snprintf(id, sizeof(id), "%lld", (long long)md->mailbox_id);
	int ret = 0;
	if (pop3_uid_array(md, true, &arr) > 0) {
		const char *params[] = {id, buf_cstr(&arr)};
		ret = pop3_exec_cmd(conn, sql_retrieved, 2, params);
	}
	buf_free(&arr);
	return ret;
}

int pop3_maildrop_update(PGconn *conn, const struct pop3_maildrop *md, int64_t expire_days,
                         size_t *removed_r)
{
	*removed_r = 0;
	if (expire_days >= 0 && pop3_record_retrieved(conn, md) < 0)
		return -1;
	uint32_t *uids, *gone = NULL;
	size_t n, ngone = 0;
	if (pop3_update_uids(conn, md, expire_days, &uids, &n) < 0)
		return -1;
	enum store_err e = STORE_OK;
	if (n > 0)
		e = store_expunge(conn, md->mailbox_id, uids, n, &gone, &ngone);
	free(uids);
	free(gone);
	if (e != STORE_OK) {
		log_error("event=pop3_update_failed error=\"%s\"", store_err_str(e));
		return -1;
	}
	*removed_r = ngone;
	if (expire_days >= 0 && ngone > 0) {
		char id[24];
		snprintf(id, sizeof(id), "%lld", (long long)md->mailbox_id);
		const char *params[] = {id};
		pop3_exec_cmd(conn, sql_retrieved_gc, 1, params); /* tidy-up only */
	}
	return 0;
}
