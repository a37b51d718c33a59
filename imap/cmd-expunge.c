/* cmd-expunge.c - EXPUNGE and UID EXPUNGE (RFC 4315). */
#include "imap-private.h"

#include "xalloc.h"

#include <stdlib.h>

/* The \Deleted messages among idx (all of the view if idx is NULL). */
static uint32_t *deleted_uids(const struct imap_session *s, const size_t *idx, size_t n,
                              size_t *count_r)
{
	size_t total = idx != NULL ? n : s->view.count;
	uint32_t *uids = xcalloc(total + 1, sizeof(*uids));
	size_t k = 0;
	for (size_t i = 0; i < total; i++) {
		const struct store_entry *e = &s->view.entries[idx != NULL ? idx[i] : i];
		if (e->flags & STORE_FLAG_DELETED)
			uids[k++] = e->uid;
	}
	*count_r = k;
	return uids;
}

static int parse_expunge(struct imap_cmd *cmd, struct imap_seqset *set)
{
	if (!cmd->uid)
		return imap_arg_end(cmd);
	if (imap_arg_sp(cmd) < 0 || imap_arg_seqset(cmd, set) < 0)
		return -1;
	return imap_arg_end(cmd);
}

int imap_cmd_expunge(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	struct imap_seqset set = {0};
	size_t *idx = NULL, nidx = 0, n = 0;
	if (parse_expunge(cmd, &set) < 0)
		return -1;
	if (s->view.readonly) {
		imap_reply_no(cmd, "[READ-ONLY] Mailbox is read-only");
		return 0;
	}
	/* Flags set by other sessions count: look first. */
	imap_view_sync(s, false, true);
	if (cmd->uid && imap_view_resolve(cmd, &set, true, &idx, &nidx) < 0)
		return -1;
	uint32_t *uids = deleted_uids(s, cmd->uid ? idx : NULL, nidx, &n);
	free(idx);
	enum store_err e = STORE_OK;
	uint32_t *gone = NULL;
	size_t ngone = 0;
	if (n > 0) {
		PGconn *conn = imap_db_borrow(cmd);
		if (conn == NULL) {
			free(uids);
			return 0;
		}
		e = store_expunge(conn, s->view.mailbox_id, uids, n, &gone, &ngone);
		imap_db_return(s, &conn);
	}
	free(uids);
	if (e == STORE_OK) {
		imap_view_expunged(s, gone, ngone);
		s->view.dirty = true;
	}
	free(gone);
	imap_reply_store_err(cmd, e, "expunge");
	return 0;
}
