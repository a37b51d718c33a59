/* store-util.c - parameters, execution, error mapping and result readers
 * shared by the store. */
#include "store-private.h"

#include "log.h"
#include "utf8.h"
#include "xalloc.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Type OIDs of the binary results we read (pg_type.h is server-side). */
#define OID_BOOL 16
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23

const char *store_err_str(enum store_err e)
{
	switch (e) {
	case STORE_OK:
		return "ok";
	case STORE_ETEMP:
		return "temporary failure";
	case STORE_EPERM:
		return "not permitted";
	case STORE_EQUOTA:
		return "over quota";
	case STORE_ENOTFOUND:
		return "not found";
	case STORE_EINVALID:
		return "invalid argument";
	case STORE_EEXISTS:
		return "already exists";
	}
	return "unknown error";
}

void store_params_init(struct store_params *p)
{
	p->n = 0;
}

static int store_param_next(struct store_params *p)
{
	assert(p->n < STORE_MAX_PARAMS);
	int i = p->n++;
	p->lengths[i] = 0;
	p->formats[i] = 0;
	return i;
}

void store_param_i64(struct store_params *p, int64_t v)
{
	int i = store_param_next(p);
	snprintf(p->num[i], sizeof(p->num[i]), "%" PRId64, v);
	p->values[i] = p->num[i];
}

void store_param_u64(struct store_params *p, uint64_t v)
{
	int i = store_param_next(p);
	snprintf(p->num[i], sizeof(p->num[i]), "%" PRIu64, v);
	p->values[i] = p->num[i];
}

void store_param_text(struct store_params *p, const char *s)
{
	int i = store_param_next(p);
	p->values[i] = s;
}

void store_param_bytea(struct store_params *p, const void *data, size_t len)
{
	assert(len <= INT32_MAX);
	int i = store_param_next(p);
	/* A zero-length binary value still needs a non-NULL pointer. */
	p->values[i] = len > 0 ? data : "";
	p->lengths[i] = (int)len;
	p->formats[i] = 1;
}

void store_param_bool(struct store_params *p, bool v)
{
	store_param_text(p, v ? "t" : "f");
}

static bool sqlstate_class(const char *state, const char *cls)
{
	return strncmp(state, cls, 2) == 0;
}

enum store_err store_err_from_pg(PGconn *conn, const PGresult *res)
{
	if (res == NULL || PQstatus(conn) != CONNECTION_OK)
		return STORE_ETEMP;
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (state == NULL)
		return STORE_ETEMP;
	if (strcmp(state, "23505") == 0)
		return STORE_EEXISTS;
	if (strcmp(state, "23503") == 0)
		return STORE_ENOTFOUND;
	if (strcmp(state, "42501") == 0)
		return STORE_EPERM;
	if (strcmp(state, "54000") == 0) /* e.g. a text too long for tsvector */
		return STORE_EINVALID;
	if (sqlstate_class(state, "22") || sqlstate_class(state, "23"))
		return STORE_EINVALID;
	/* 08 connection, 40 serialization/deadlock, 53 resources, 57 operator
	 * intervention (shutdown), 55P03 lock timeout, and anything we did not
	 * expect: the caller should try again later. */
	return STORE_ETEMP;
}

void store_log_failure(PGconn *conn, const PGresult *res, const char *what)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	if (msg == NULL)
		msg = PQerrorMessage(conn);
	char q[LOG_QUOTE_MAX];
	log_error("event=store_failure statement=%s sqlstate=%s error=%s", what,
	          state ? state : "none", log_quote(q, sizeof(q), msg ? msg : ""));
}

PGresult *store_exec(PGconn *conn, const char *what, const char *sql, const struct store_params *p,
                     enum store_err *err_r)
{
	PGresult *res = PQexecParams(conn, sql, p ? p->n : 0, NULL, p ? p->values : NULL,
	                             p ? p->lengths : NULL, p ? p->formats : NULL, 1);
	ExecStatusType st = PQresultStatus(res);
	if (res != NULL && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)) {
		*err_r = STORE_OK;
		return res;
	}
	*err_r = store_err_from_pg(conn, res);
	/* Constraint answers (exists, not found) are expected outcomes. */
	if (*err_r == STORE_ETEMP || *err_r == STORE_EINVALID)
		store_log_failure(conn, res, what);
	PQclear(res);
	return NULL;
}

enum store_err store_exec_cmd(PGconn *conn, const char *what, const char *sql,
                              const struct store_params *p)
{
	enum store_err err;
	PQclear(store_exec(conn, what, sql, p, &err));
	return err;
}

enum store_err store_tx_begin(PGconn *conn)
{
	return store_exec_cmd(conn, "begin", "BEGIN", NULL);
}

enum store_err store_tx_commit(PGconn *conn)
{
	enum store_err err = store_exec_cmd(conn, "commit", "COMMIT", NULL);
	if (err != STORE_OK)
		store_tx_rollback(conn);
	return err;
}

void store_tx_rollback(PGconn *conn)
{
	if (PQtransactionStatus(conn) == PQTRANS_IDLE)
		return;
	PQclear(PQexec(conn, "ROLLBACK"));
}

bool store_res_null(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) != 0;
}

static uint64_t be_read(const unsigned char *p, int len)
{
	uint64_t v = 0;
	for (int i = 0; i < len; i++)
		v = v << 8 | p[i];
	return v;
}

int64_t store_res_i64(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return 0;
	const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
	int len = PQgetlength(r, row, col);
	(void)len; /* only checked by the asserts */
	switch (PQftype(r, col)) {
	case OID_INT8:
		assert(len == 8);
		return (int64_t)be_read(p, 8);
	case OID_INT4:
		assert(len == 4);
		return (int32_t)(uint32_t)be_read(p, 4);
	case OID_INT2:
		assert(len == 2);
		return (int16_t)(uint16_t)be_read(p, 2);
	default:
		assert(!"integer column expected");
		return 0;
	}
}

bool store_res_bool(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return false;
	assert(PQftype(r, col) == OID_BOOL);
	return PQgetvalue(r, row, col)[0] != 0;
}

char *store_res_strdup(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return NULL;
	return xmemdup0(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

char **store_res_keywords(const PGresult *r, int row, int col)
{
	const char *s = PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col);
	size_t len = PQgetisnull(r, row, col) ? 0 : (size_t)PQgetlength(r, row, col);
	size_t n = 0;
	char **kw = xcalloc(1, sizeof(*kw));
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != ' ')
			continue;
		if (i > start) {
			kw = xreallocarray(kw, n + 2, sizeof(*kw));
			kw[n++] = xmemdup0(s + start, i - start);
			kw[n] = NULL;
		}
		start = i + 1;
	}
	return kw;
}

void store_keywords_free(char **kw)
{
	if (kw == NULL)
		return;
	for (size_t i = 0; kw[i] != NULL; i++)
		free(kw[i]);
	free(kw);
}

bool store_utf8_valid(const char *s, size_t len)
{
	return memchr(s, '\0', len) == NULL && utf8_valid(s, len);
}

const char *store_utf8_clean(const char *s, struct buf *tmp)
{
	if (s == NULL)
		return "";
	size_t len = strlen(s);
	if (store_utf8_valid(s, len))
		return s;
	const unsigned char *u = (const unsigned char *)s;
	buf_reset(tmp);
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq_len(u + i, len - i);
		if (n == 0) {
			buf_append_str(tmp, "\xef\xbf\xbd");
			i++;
		} else {
			buf_append(tmp, s + i, n);
			i += n;
		}
	}
	return buf_cstr(tmp);
}

bool store_keyword_valid(const char *kw)
{
	size_t len = strlen(kw);
	if (len == 0 || len > 255 || kw[0] == '\\')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)kw[i];
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}

void store_keywords_literal(const char *const *kw, struct buf *out)
{
	buf_append_char(out, '{');
	for (size_t i = 0; kw != NULL && kw[i] != NULL; i++) {
		/* Valid keywords hold no quote or backslash (store_keyword_valid),
		 * but may hold ',' and so are quoted. */
		buf_printf(out, "%s\"%s\"", i > 0 ? "," : "", kw[i]);
	}
	buf_append_char(out, '}');
}

void store_uids_literal(const uint32_t *uids, size_t n, struct buf *out)
{
	buf_append_char(out, '{');
	for (size_t i = 0; i < n; i++)
		buf_printf(out, "%s%" PRIu32, i > 0 ? "," : "", uids[i]);
	buf_append_char(out, '}');
}

static bool name_has_control(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < len; i++) {
		if (u[i] < 0x20 || u[i] == 0x7f)
			return true;
		/* C1 controls U+0080..U+009F are encoded as C2 80..C2 9F. */
		if (u[i] == 0xc2 && i + 1 < len && u[i + 1] >= 0x80 && u[i + 1] <= 0x9f)
			return true;
	}
	return false;
}

bool store_mailbox_name_valid(const char *name)
{
	size_t len = name != NULL ? strlen(name) : 0;
	return len > 0 && len <= STORE_MAILBOX_NAME_MAX && name[0] != '/' && name[len - 1] != '/' &&
	       strstr(name, "//") == NULL && store_utf8_valid(name, len) &&
	       !name_has_control(name, len);
}

enum store_err store_mailbox_name_normalize(const char *name, struct buf *out)
{
	buf_reset(out);
	if (!store_mailbox_name_valid(name))
		return STORE_EINVALID;
	size_t len = strlen(name);
	/* INBOX is case-insensitive, as a name and as the first level. */
	if (len >= 5 && mem_eq_ci(name, 5, "INBOX") && (len == 5 || name[5] == '/')) {
		buf_append_str(out, "INBOX");
		buf_append(out, name + 5, len - 5);
	} else {
		buf_append(out, name, len);
	}
	return STORE_OK;
}

bool store_mailbox_name_is_inbox(const char *normalized)
{
	return strcmp(normalized, "INBOX") == 0;
}

void store_mailbox_from_row(const PGresult *r, int row, struct store_mailbox *mb)
{
	mb->id = store_res_i64(r, row, 0);
	mb->account_id = store_res_i64(r, row, 1);
	mb->name = store_res_strdup(r, row, 2);
	mb->special_use = store_res_strdup(r, row, 3);
	mb->subscribed = store_res_bool(r, row, 4);
	mb->uidvalidity = (uint32_t)store_res_i64(r, row, 5);
	mb->uidnext = (uint32_t)store_res_i64(r, row, 6);
	mb->highestmodseq = (uint64_t)store_res_i64(r, row, 7);
	mb->messages = (uint64_t)store_res_i64(r, row, 8);
	mb->unseen = (uint64_t)store_res_i64(r, row, 9);
	mb->size_bytes = (uint64_t)store_res_i64(r, row, 10);
}

int32_t store_fence_key(const unsigned char digest[32])
{
	uint32_t k = (uint32_t)digest[0] << 24 | (uint32_t)digest[1] << 16 |
	             (uint32_t)digest[2] << 8 | digest[3];
	return (int32_t)k;
}
