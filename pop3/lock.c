/* lock.c - one POP3 session per maildrop (RFC 1939 "exclusive-access
 * lock", RFC 2449 [IN-USE]).
 *
 * Why this design: the lock must vanish with a crashed process and must not
 * pin a pooled connection per session. Sessions of this process are kept
 * apart by an in-memory set of mailbox ids; sessions on other nodes by a
 * PostgreSQL session-level advisory lock per mailbox, all taken on ONE
 * dedicated connection of the process. PostgreSQL drops those locks when
 * that connection ends, so a process that dies (and with it every session
 * thread) leaves nothing behind, and a session that ends any way at all
 * releases its lock in pop3_session()'s single exit path. The advisory
 * locks of one backend stack, which is why the in-memory set decides
 * first. If the dedicated connection breaks, it is reopened and the held
 * locks are taken again. */
#include "pop3-private.h"

#include "log.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>

/* "POP3" as the advisory lock class, so ids never meet other users of the
 * two-key advisory lock space (the migration lock uses the one-key form). */
#define POP3_LOCK_CLASS "1347375155"

static const char sql_try_lock[] =
    "SELECT pg_try_advisory_lock(" POP3_LOCK_CLASS ", ($1::bigint % 2147483648)::integer)";
static const char sql_unlock[] =
    "SELECT pg_advisory_unlock(" POP3_LOCK_CLASS ", ($1::bigint % 2147483648)::integer)";

void pop3_locks_init(struct pop3_locks *l, const char *conninfo)
{
	*l = (struct pop3_locks){.conninfo = conninfo};
	pthread_mutex_init(&l->mu, NULL);
}

void pop3_locks_deinit(struct pop3_locks *l)
{
	if (l->conn != NULL)
		PQfinish(l->conn);
	l->conn = NULL;
	free(l->held);
	l->held = NULL;
	l->nheld = l->capheld = 0;
	pthread_mutex_destroy(&l->mu);
}

/* 1 locked, 0 taken elsewhere, -1 failure. Called with l->mu held. */
static int pop3_lock_db(struct pop3_locks *l, const char *sql, int64_t mailbox_id)
{
	char id[24];
	snprintf(id, sizeof(id), "%lld", (long long)mailbox_id);
	const char *params[] = {id};
	PGresult *r = db_exec(l->conn, sql, 1, params);
	if (r == NULL)
		return -1;
	int ok = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	return ok;
}

/* Opens (or reopens) the dedicated connection and takes every held lock
 * again. Called with l->mu held. */
static int pop3_locks_connect(struct pop3_locks *l)
{
	if (l->conn != NULL && PQstatus(l->conn) == CONNECTION_OK)
		return 0;
	if (l->conn != NULL)
		PQfinish(l->conn);
	l->conn = PQconnectdb(l->conninfo);
	if (PQstatus(l->conn) != CONNECTION_OK) {
		char msg[LOG_QUOTE_MAX];
		log_error("event=pop3_lock_connect error=%s",
		          log_quote(msg, sizeof(msg), PQerrorMessage(l->conn)));
		PQfinish(l->conn);
		l->conn = NULL;
		return -1;
	}
	for (size_t i = 0; i < l->nheld; i++) {
		if (pop3_lock_db(l, sql_try_lock, l->held[i]) != 1)
			log_warn("event=pop3_lock_lost mailbox=%lld", (long long)l->held[i]);
	}
	return 0;
}

static bool pop3_locks_held(const struct pop3_locks *l, int64_t mailbox_id, size_t *index_r)
{
	for (size_t i = 0; i < l->nheld; i++) {
		if (l->held[i] == mailbox_id) {
			*index_r = i;
			return true;
		}
	}
	return false;
}

int pop3_lock_acquire(struct pop3_locks *l, int64_t mailbox_id)
{
	size_t index;
	int ret = 0;
	pthread_mutex_lock(&l->mu);
	if (pop3_locks_held(l, mailbox_id, &index))
		goto out;
	ret = -1;
	if (pop3_locks_connect(l) < 0)
		goto out;
	ret = pop3_lock_db(l, sql_try_lock, mailbox_id);
	if (ret == -1 && PQstatus(l->conn) != CONNECTION_OK && pop3_locks_connect(l) == 0)
		ret = pop3_lock_db(l, sql_try_lock, mailbox_id);
	if (ret != 1)
		goto out;
	if (l->nheld == l->capheld) {
		l->capheld = l->capheld == 0 ? 16 : l->capheld * 2;
		l->held = xreallocarray(l->held, l->capheld, sizeof(*l->held));
	}
	l->held[l->nheld++] = mailbox_id;
out:
	pthread_mutex_unlock(&l->mu);
	return ret;
}

void pop3_lock_release(struct pop3_locks *l, int64_t mailbox_id)
{
	size_t index;
	pthread_mutex_lock(&l->mu);
	if (pop3_locks_held(l, mailbox_id, &index)) {
		l->held[index] = l->held[--l->nheld];
		/* A broken connection has released everything already. */
		if (l->conn != NULL && PQstatus(l->conn) == CONNECTION_OK &&
		    pop3_lock_db(l, sql_unlock, mailbox_id) != 1)
			log_warn("event=pop3_unlock_failed mailbox=%lld", (long long)mailbox_id);
	}
	pthread_mutex_unlock(&l->mu);
}
