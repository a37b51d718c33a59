/* cmd-store.c - STORE and UID STORE with .SILENT and CONDSTORE's
 * UNCHANGEDSINCE and [MODIFIED] (RFC 7162 3.1.3). */
#include "imap-private.h"

#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

struct store_args {
	struct imap_seqset set;
	uint64_t unchangedsince; /* 0: none */
	bool has_unchangedsince;
	enum store_flag_mode mode;
	bool silent;
	unsigned flags;
	const char **keywords;
};

static int parse_modifiers(struct imap_cmd *cmd, struct store_args *a)
{
	const char *name;
	if (imap_arg_list_begin(cmd) < 0 || imap_arg_atom(cmd, &name) < 0)
		return -1;
	if (strcasecmp(name, "UNCHANGEDSINCE") != 0) {
		cmd->error = "Unknown STORE modifier";
		return -1;
	}
	if (imap_arg_sp(cmd) < 0 || imap_arg_number64(cmd, &a->unchangedsince) < 0 ||
	    imap_arg_list_end(cmd) < 0 || imap_arg_sp(cmd) < 0)
		return -1;
	a->has_unchangedsince = true;
	return 0;
}

static int parse_store(struct imap_cmd *cmd, struct store_args *a)
{
	const char *item;
	if (imap_arg_sp(cmd) < 0 || imap_arg_seqset(cmd, &a->set) < 0 || imap_arg_sp(cmd) < 0)
		return -1;
	if (imap_arg_peek(cmd, '(') && parse_modifiers(cmd, a) < 0)
		return -1;
	if (imap_arg_atom(cmd, &item) < 0)
		return -1;
	a->mode = item[0] == '+'   ? STORE_FLAGS_ADD
	          : item[0] == '-' ? STORE_FLAGS_REMOVE
	                           : STORE_FLAGS_SET;
	if (a->mode != STORE_FLAGS_SET)
		item++;
	if (strcasecmp(item, "FLAGS.SILENT") == 0)
		a->silent = true;
	else if (strcasecmp(item, "FLAGS") != 0) {
		cmd->error = "Expected FLAGS, +FLAGS or -FLAGS";
		return -1;
	}
	if (imap_arg_sp(cmd) < 0 || imap_arg_flags(cmd, true, &a->flags, &a->keywords) < 0)
		return -1;
	return imap_arg_end(cmd);
}

static bool uid_in(const uint32_t *uids, size_t n, uint32_t uid)
{
	for (size_t i = 0; i < n; i++)
		if (uids[i] == uid)
			return true;
	return false;
}

/* FETCH responses for the messages that were asked for and still exist;
 * those that failed UNCHANGEDSINCE are only named in [MODIFIED]. */
static void store_report(struct imap_cmd *cmd, const struct store_args *a,
                         const struct store_flag_change *ch, size_t n, const uint32_t *failed,
                         size_t nfailed)
{
	if (a->silent)
		return;
	for (size_t i = 0; i < n; i++) {
		if (nfailed > 0 && uid_in(failed, nfailed, ch[i].uid))
			continue;
		ssize_t k = imap_view_find_uid(cmd->s, ch[i].uid);
		if (k >= 0)
			imap_send_fetch_flags(cmd->s, (size_t)k, cmd->uid);
	}
}

/* [MODIFIED set]: MSNs for STORE, UIDs for UID STORE. */
static void store_reply(struct imap_cmd *cmd, const uint32_t *failed, size_t nfailed)
{
	if (nfailed == 0) {
		imap_reply_ok(cmd, "%s completed", cmd->name);
		return;
	}
	uint32_t *ids = xcalloc(nfailed, sizeof(*ids));
	size_t k = 0;
	for (size_t i = 0; i < nfailed; i++) {
		ssize_t idx = imap_view_find_uid(cmd->s, failed[i]);
		if (cmd->uid)
			ids[k++] = failed[i];
		else if (idx >= 0)
			ids[k++] = (uint32_t)idx + 1;
	}
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	imap_uidset_format(ids, k, &b);
	imap_reply_ok(cmd, "[MODIFIED %s] Conditional STORE failed for some messages",
	              buf_cstr(&b));
	buf_free(&b);
	free(ids);
}

static void store_run(struct imap_cmd *cmd, const struct store_args *a, const uint32_t *uids,
                      size_t n)
{
	struct imap_session *s = cmd->s;
	struct store_flag_change *ch = NULL;
	uint32_t *failed = NULL;
	size_t nch = 0, nfailed = 0;
	PGconn *conn = imap_db_borrow(cmd);
	if (conn == NULL)
		return;
	enum store_err e =
	    store_flags_change(conn, s->view.mailbox_id, uids, n, a->mode, a->flags, a->keywords,
	                       a->unchangedsince, &ch, &nch, &failed, &nfailed);
	imap_db_return(s, &conn);
	if (e == STORE_OK) {
		imap_view_apply_changes(s, ch, nch);
		store_report(cmd, a, ch, nch, failed, nfailed);
		s->view.dirty = true;
		store_reply(cmd, failed, nfailed);
	} else if (e == STORE_EINVALID) {
		imap_reply_bad(cmd, "Invalid keyword");
	} else {
		imap_reply_store_err(cmd, e, "store");
	}
	store_flag_changes_free(&ch, nch);
	free(failed);
}

int imap_cmd_store(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	struct store_args a = {0};
	size_t *idx = NULL, n = 0;
	if (parse_store(cmd, &a) < 0)
		return -1;
	if (s->view.readonly) {
		imap_reply_no(cmd, "[READ-ONLY] Mailbox is read-only");
		return 0;
	}
	if (a.has_unchangedsince)
		s->enabled |= IMAP_EXT_CONDSTORE;
	if (imap_view_resolve(cmd, &a.set, cmd->uid, &idx, &n) < 0)
		return -1;
	if (n == 0) {
		imap_reply_ok(cmd, "%s completed (no messages)", cmd->name);
		return 0;
	}
	uint32_t *uids = imap_view_uids(s, idx, n);
	free(idx);
	/* UNCHANGEDSINCE 0 fails for every message (RFC 7162 3.1.3). */
	if (a.has_unchangedsince && a.unchangedsince == 0)
		store_reply(cmd, uids, n);
	else
		store_run(cmd, &a, uids, n);
	free(uids);
	return 0;
}
