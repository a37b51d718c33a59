/* cmd-copy.c - COPY, MOVE (RFC 6851) and their UID forms, with COPYUID
 * (RFC 4315). The store copies entries without copying blobs. */
#include "imap-private.h"

#include <stdlib.h>
#include <string.h>

static void copyuid_format(uint32_t uidvalidity, const uint32_t *src, const uint32_t *dst, size_t n,
                           struct buf *b)
{
	buf_printf(b, "[COPYUID %u ", uidvalidity);
	imap_uidset_format(src, n, b);
	buf_append_char(b, ' ');
	imap_uidset_format(dst, n, b);
	buf_append_char(b, ']');
}

static void copy_done(struct imap_cmd *cmd, bool move, int64_t dst_id, uint32_t uidvalidity,
                      const uint32_t *src, const uint32_t *dst, size_t n)
{
	struct imap_session *s = cmd->s;
	struct buf code;
	buf_init(&code, BUF_NO_LIMIT);
	if (n > 0)
		copyuid_format(uidvalidity, src, dst, n, &code);
	if (dst_id == s->view.mailbox_id || move)
		s->view.dirty = true;
	if (move) {
		/* RFC 6851 3.3: COPYUID in an untagged OK before the expunges. */
		if (n > 0)
			imap_untagged(s, "OK %s Moved", buf_cstr(&code));
		imap_view_expunged(s, src, n);
		imap_reply_ok(cmd, "%s completed", cmd->name);
	} else {
		imap_reply_ok(cmd, "%s%s%s completed", buf_cstr(&code), n > 0 ? " " : "",
		              cmd->name);
	}
	buf_free(&code);
}

static void copy_run(struct imap_cmd *cmd, const char *dest, bool move, const uint32_t *uids,
                     size_t n)
{
	struct imap_session *s = cmd->s;
	uint32_t *src = NULL, *dst = NULL, uidvalidity = 0;
	size_t ncopied = 0;
	PGconn *conn = imap_db_borrow(cmd);
	if (conn == NULL)
		return;
	struct store_mailbox mb = {0};
	enum store_err e = store_mailbox_get(conn, s->account.id, dest, &mb);
	if (e == STORE_OK && n > 0)
		e = store_copy(conn, s->view.mailbox_id, uids, n, mb.id, move, &src, &dst, &ncopied,
		               &uidvalidity);
	imap_db_return(s, &conn);
	if (e == STORE_ENOTFOUND)
		imap_reply_no(cmd, "[TRYCREATE] Mailbox does not exist");
	else if (e != STORE_OK)
		imap_reply_store_err(cmd, e, "copy");
	else
		copy_done(cmd, move, mb.id, uidvalidity, src, dst, ncopied);
	store_mailbox_free_fields(&mb);
	free(src);
	free(dst);
}

int imap_cmd_copy(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	struct imap_seqset set;
	const char *dest;
	size_t *idx = NULL, n = 0;
	bool move = strstr(cmd->name, "MOVE") != NULL;
	if (imap_arg_sp(cmd) < 0 || imap_arg_seqset(cmd, &set) < 0 || imap_arg_sp(cmd) < 0 ||
	    imap_arg_mailbox(cmd, &dest) < 0 || imap_arg_end(cmd) < 0)
		return -1;
	if (move && s->view.readonly) {
		imap_reply_no(cmd, "[READ-ONLY] Mailbox is read-only");
		return 0;
	}
	if (imap_view_resolve(cmd, &set, cmd->uid, &idx, &n) < 0)
		return -1;
	uint32_t *uids = imap_view_uids(s, idx, n);
	free(idx);
	copy_run(cmd, dest, move, uids, n);
	free(uids);
	return 0;
}
