/* imap-recent.c - the \Recent flag of IMAP4rev1 (RFC 3501 sections 2.3.2,
 * 6.3.1, 7.3.2). A message is recent in exactly one session: the first one
 * to SELECT its mailbox, or to be told of it (EXISTS) while the mailbox is
 * selected, after it arrived. mailboxes.recent_uid (migration 010) is the
 * highest UID already claimed; claiming is one UPDATE that locks the row
 * and returns the value it replaced, so of two racing sessions each gets a
 * disjoint range. The session keeps its ranges in the view. */
#include "imap-private.h"

#include "log.h"
#include "strnum.h"
#include "xalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool recent_kept(const struct imap_session *s)
{
	return (s->enabled & IMAP_EXT_REV2) == 0;
}

/* The old recent_uid when the row moved forward to upto; no row when
 * another session already claimed that far. */
#define SQL_CLAIM                                                                                  \
	"WITH old AS (SELECT id, recent_uid FROM mailboxes WHERE id = $1::bigint FOR UPDATE) "     \
	"UPDATE mailboxes m SET recent_uid = $2::bigint FROM old "                                 \
	"WHERE m.id = old.id AND old.recent_uid < $2::bigint RETURNING old.recent_uid"
#define SQL_PEEK                                                                                   \
	"SELECT recent_uid FROM mailboxes WHERE id = $1::bigint AND recent_uid < $2::bigint"

static void recent_add(struct imap_view *v, uint32_t lo, uint32_t hi)
{
	if (v->nrecent > 0 && v->recent[v->nrecent - 1].hi >= lo) {
		if (hi > v->recent[v->nrecent - 1].hi)
			v->recent[v->nrecent - 1].hi = hi;
		return;
	}
	v->recent = xreallocarray(v->recent, v->nrecent + 1, sizeof(*v->recent));
	v->recent[v->nrecent++] = (struct imap_recent_range){lo, hi};
}

int imap_recent_claim(struct imap_session *s, PGconn *conn, uint32_t upto)
{
	struct imap_view *v = &s->view;
	if (!recent_kept(s) || upto == 0)
		return 0;
	char id[24], to[16];
	snprintf(id, sizeof(id), "%" PRId64, v->mailbox_id);
	snprintf(to, sizeof(to), "%" PRIu32, upto);
	const char *params[] = {id, to};
	/* Look before locking: recent_uid only grows, so when it already
	 * reaches upto (every SELECT but the first after new mail) there is
	 * nothing to claim, and the SELECT neither locks the mailbox row
	 * against deliveries nor waits for a commit to reach the disk. */
	PGresult *r = db_exec(conn, SQL_PEEK, 2, params);
	if (r != NULL && PQntuples(r) == 1 && !v->readonly) {
		PQclear(r);
		r = db_exec(conn, SQL_CLAIM, 2, params);
	}
	if (r == NULL) {
		log_warn("event=imap_recent_claim_failed mailbox=%" PRId64, v->mailbox_id);
		return -1;
	}
	uint64_t old;
	if (PQntuples(r) == 1 && str_to_u64(PQgetvalue(r, 0, 0), UINT32_MAX, &old) == 0 &&
	    old < upto)
		recent_add(v, (uint32_t)old, upto);
	PQclear(r);
	return 0;
}

bool imap_recent_has(const struct imap_session *s, uint32_t uid)
{
	const struct imap_view *v = &s->view;
	if (!recent_kept(s))
		return false;
	for (size_t i = v->nrecent; i-- > 0;)
		if (uid > v->recent[i].lo && uid <= v->recent[i].hi)
			return true;
	return false;
}

size_t imap_recent_count(const struct imap_session *s)
{
	size_t n = 0;
	if (!recent_kept(s) || s->view.nrecent == 0)
		return 0;
	for (size_t i = 0; i < s->view.count; i++)
		n += imap_recent_has(s, s->view.entries[i].uid);
	return n;
}

void imap_view_flags_format(const struct imap_session *s, const struct store_entry *e,
                            struct buf *out)
{
	size_t start = out->len;
	imap_flags_format(e->flags, e->keywords, out);
	if (!imap_recent_has(s, e->uid))
		return;
	buf_truncate(out, out->len - 1); /* the closing parenthesis */
	buf_append_str(out, out->len > start + 1 ? " \\Recent)" : "\\Recent)");
}

int imap_recent_unclaimed(PGconn *conn, int64_t mailbox_id, uint64_t *n_r)
{
	char id[24];
	snprintf(id, sizeof(id), "%" PRId64, mailbox_id);
	const char *params[] = {id};
	PGresult *r = db_exec(conn,
	                      "SELECT count(*) FROM mailbox_entries e JOIN mailboxes b "
	                      "ON b.id = e.mailbox_id WHERE e.mailbox_id = $1::bigint "
	                      "AND e.uid > b.recent_uid",
	                      1, params);
	if (r == NULL || PQntuples(r) != 1) {
		PQclear(r);
		return -1;
	}
	int ret = str_to_u64(PQgetvalue(r, 0, 0), UINT64_MAX, n_r);
	PQclear(r);
	return ret;
}

void imap_recent_send(struct imap_session *s)
{
	if (recent_kept(s))
		imap_untagged(s, "%zu RECENT", imap_recent_count(s));
}
