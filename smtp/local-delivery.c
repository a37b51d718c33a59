/* local-delivery.c - the local recipients of a transaction into the store.
 *
 * One store_deliver() call for all of them: the blob is stored once and
 * every (account, folder) pair gets one entry. Sub-addresses go to the
 * folder named by their tag when the account has one, else to INBOX.
 *
 * All or nothing: SMTP has one reply to DATA for all recipients (RFC 5321
 * has no per-recipient DATA replies; only LMTP does), so if any target
 * fails (a quota filled since RCPT, the database gone) the whole
 * transaction is rolled back and refused (451/452, or 552 when the message
 * can never fit a quota), and the client retries the whole message later.
 * Quotas are checked at RCPT already, so this is rare. */
#include "smtp-private.h"

#include "clock.h"
#include "log.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SMTP_BORROW_MS 10000

static bool smtp_unlimited_known(struct smtp_unlimited *u, int64_t id)
{
	size_t i = (size_t)((uint64_t)id % SMTP_UNLIMITED_SLOTS);
	pthread_mutex_lock(&u->lock);
	bool known = u->slot[i].id == id && u->slot[i].until_ms > clock_monotonic_ms();
	pthread_mutex_unlock(&u->lock);
	return known;
}

/* Remembers (unlimited) or forgets (it has a quota) the account. */
static void smtp_unlimited_note(struct smtp_unlimited *u, int64_t id, bool unlimited)
{
	size_t i = (size_t)((uint64_t)id % SMTP_UNLIMITED_SLOTS);
	pthread_mutex_lock(&u->lock);
	if (unlimited) {
		u->slot[i].id = id;
		u->slot[i].until_ms = clock_monotonic_ms() + SMTP_UNLIMITED_TTL_MS;
	} else if (u->slot[i].id == id) {
		u->slot[i].id = 0;
	}
	pthread_mutex_unlock(&u->lock);
}

/* smtp_quota_check() from the account's current row. */
static int smtp_quota_lookup(struct smtp_session *s, int64_t account_id, uint64_t size)
{
	struct directory_account a;
	enum directory_err e = directory_account_get_by_id(s->srv->dir, account_id, &a, NULL);
	if (e == DIR_ETEMP)
		return -1;
	if (e == DIR_OK)
		smtp_unlimited_note(&s->srv->unlimited, account_id, a.quota_bytes == 0);
	if (e != DIR_OK || a.quota_bytes == 0)
		return 0;
	if (size > a.quota_bytes)
		return 2;
	if (a.used_bytes >= a.quota_bytes || a.quota_bytes - a.used_bytes < size)
		return 1;
	return 0;
}

int smtp_quota_check(struct smtp_session *s, int64_t account_id, uint64_t size)
{
	if (smtp_unlimited_known(&s->srv->unlimited, account_id))
		return 0;
	return smtp_quota_lookup(s, account_id, size);
}

/* Adds (account, mailbox) unless present. */
static void smtp_target_add(struct store_target **t, size_t *n, int64_t account, int64_t mailbox)
{
	for (size_t i = 0; i < *n; i++)
		if ((*t)[i].account_id == account && (*t)[i].mailbox_id == mailbox)
			return;
	*t = xreallocarray(*t, *n + 1, sizeof(**t));
	(*t)[(*n)++] = (struct store_target){.account_id = account, .mailbox_id = mailbox};
}

/* The folder of a sub-address: its id, 0 for INBOX, -1 on a store failure. */
static int64_t smtp_detail_mailbox(PGconn *conn, int64_t account, const char *detail)
{
	if (detail[0] == '\0')
		return 0;
	struct store_mailbox mb;
	enum store_err e = store_mailbox_get(conn, account, detail, &mb);
	if (e == STORE_ENOTFOUND)
		return 0;
	if (e != STORE_OK)
		return -1;
	int64_t id = mb.id;
	store_mailbox_free_fields(&mb);
	return id;
}

static int smtp_targets_build(struct smtp_session *s, PGconn *conn, struct store_target **t,
                              size_t *n)
{
	for (size_t i = 0; i < s->tx.nrcpts; i++) {
		const struct smtp_rcpt *r = &s->tx.rcpts[i];
		for (size_t j = 0; j < r->naccounts; j++) {
			int64_t mb = smtp_detail_mailbox(conn, r->accounts[j], r->detail);
			if (mb < 0)
				return -1;
			smtp_target_add(t, n, r->accounts[j], mb);
		}
	}
	return 0;
}

/* After a quota failure: can the message never fit one of the accounts?
 * (Asked afresh: the no-quota cache may be behind a new quota.) */
static bool smtp_never_fits(struct smtp_session *s, const struct store_target *t, size_t n,
                            uint64_t size)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].result == STORE_EQUOTA && smtp_quota_lookup(s, t[i].account_id, size) == 2)
			return true;
	return false;
}

static void smtp_local_result(struct smtp_session *s, enum store_err e, struct store_target *t,
                              size_t n, uint64_t size, struct smtp_result *r)
{
	if (e == STORE_OK) {
		*r = (struct smtp_result){250, "2.0.0", "Ok"};
	} else if (e == STORE_EQUOTA && smtp_never_fits(s, t, n, size)) {
		*r = (struct smtp_result){552, "5.2.2",
		                          "Message too large for a recipient's mailbox quota"};
	} else if (e == STORE_EQUOTA) {
		*r = (struct smtp_result){452, "4.2.2",
		                          "A recipient's mailbox is full, try again later"};
	} else {
		*r = (struct smtp_result){451, "4.3.0",
		                          "Temporary failure storing the message, try again later"};
	}
	log_info("event=local_delivery status=%s targets=%zu size=%llu", store_err_str(e), n,
	         (unsigned long long)size);
}

void smtp_deliver_local(struct smtp_session *s, struct store_incoming *in, struct smtp_result *r)
{
	struct store_target *t = NULL;
	size_t n = 0;
	enum store_err e = STORE_ETEMP;
	PGconn *conn = db_pool_borrow(s->srv->pool, SMTP_BORROW_MS);
	if (conn != NULL && smtp_targets_build(s, conn, &t, &n) == 0 && n > 0) {
		/* One target: all or nothing anyway, and without the flag the
		 * COMMIT rides in the same pipeline (one round trip less); a
		 * failed target then leaves at most an unreferenced blob for
		 * store_gc(). */
		e = store_deliver(conn, in, t, n, n > 1);
		if (e == STORE_OK && t[0].result != STORE_OK)
			e = t[0].result;
	}
	if (conn != NULL)
		db_pool_return(s->srv->pool, &conn);
	smtp_local_result(s, e, t, n, store_incoming_size(in), r);
	free(t);
}
