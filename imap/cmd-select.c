/* cmd-select.c - SELECT and EXAMINE (with the CONDSTORE and QRESYNC
 * parameters of RFC 7162, VANISHED (EARLIER)), CLOSE and UNSELECT
 * (RFC 3691). */
#include "imap-private.h"

#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

#define IMAP_SYSTEM_FLAGS "\\Answered \\Flagged \\Deleted \\Seen \\Draft"

struct qresync_param {
	bool given;
	uint32_t uidvalidity;
	uint64_t modseq;
	struct imap_seqset known; /* n == 0: all */
};

/* QRESYNC (uidvalidity modseq [known-uids] [(seqs uids)]) after "QRESYNC ". */
static int parse_qresync(struct imap_cmd *cmd, struct qresync_param *q)
{
	struct imap_seqset ignored;
	q->given = true;
	if (imap_arg_list_begin(cmd) < 0 || imap_arg_nznumber(cmd, &q->uidvalidity) < 0 ||
	    imap_arg_sp(cmd) < 0 || imap_arg_number64(cmd, &q->modseq) < 0)
		return -1;
	if (imap_arg_skip(cmd, ' ') && !imap_arg_peek(cmd, '(')) {
		if (imap_arg_seqset(cmd, &q->known) < 0 || q->known.saved)
			return -1;
		imap_arg_skip(cmd, ' ');
	}
	/* The sequence-match data only narrows what is reported; we report
	 * exactly, so it is parsed and not needed. */
	if (imap_arg_peek(cmd, '(')) {
		if (imap_arg_list_begin(cmd) < 0 || imap_arg_seqset(cmd, &ignored) < 0 ||
		    imap_arg_sp(cmd) < 0 || imap_arg_seqset(cmd, &ignored) < 0 ||
		    imap_arg_list_end(cmd) < 0)
			return -1;
	}
	return imap_arg_list_end(cmd);
}

static int parse_select(struct imap_cmd *cmd, const char **name, bool *condstore,
                        struct qresync_param *q)
{
	const char *param;
	if (imap_arg_sp(cmd) < 0 || imap_arg_mailbox(cmd, name) < 0)
		return -1;
	if (!imap_arg_skip(cmd, ' '))
		return imap_arg_end(cmd);
	if (imap_arg_list_begin(cmd) < 0)
		return -1;
	do {
		if (imap_arg_atom(cmd, &param) < 0)
			return -1;
		if (strcasecmp(param, "CONDSTORE") == 0) {
			*condstore = true;
		} else if (strcasecmp(param, "QRESYNC") == 0 &&
		           (cmd->s->enabled & IMAP_EXT_QRESYNC) != 0) {
			if (imap_arg_sp(cmd) < 0 || parse_qresync(cmd, q) < 0)
				return -1;
		} else {
			cmd->error = "Unknown SELECT parameter (QRESYNC must be enabled first)";
			return -1;
		}
	} while (imap_arg_skip(cmd, ' '));
	if (imap_arg_list_end(cmd) < 0)
		return -1;
	return imap_arg_end(cmd);
}

static void send_flags(struct imap_session *s, bool readonly)
{
	imap_view_send_flags(s);
	if (readonly)
		imap_untagged(s, "OK [PERMANENTFLAGS ()] Read-only mailbox");
	else
		imap_untagged(s, "OK [PERMANENTFLAGS (" IMAP_SYSTEM_FLAGS " \\*)] Flags permitted");
}

static void send_state(struct imap_session *s, const struct store_mailbox *mb)
{
	struct imap_view *v = &s->view;
	bool rev2 = (s->enabled & IMAP_EXT_REV2) != 0;
	send_flags(s, v->readonly);
	imap_untagged(s, "%zu EXISTS", v->count);
	if (!rev2) {
		imap_untagged(s, "%zu RECENT", imap_recent_count(s));
		for (size_t i = 0; i < v->count; i++) {
			if ((v->entries[i].flags & STORE_FLAG_SEEN) == 0) {
				imap_untagged(s, "OK [UNSEEN %zu] First unseen", i + 1);
				break;
			}
		}
	}
	imap_untagged(s, "OK [UIDVALIDITY %u] UIDs valid", v->uidvalidity);
	imap_untagged(s, "OK [UIDNEXT %u] Predicted next UID", v->uidnext);
	imap_untagged(s, "OK [HIGHESTMODSEQ %llu] Highest", (unsigned long long)v->highestmodseq);
	if (rev2) {
		imap_write_str(s, "* LIST () \"/\" ");
		imap_write_mailbox(s, mb->name);
		imap_write_str(s, "\r\n");
	}
}

/* VANISHED (EARLIER) and the changed messages' flags (RFC 7162 3.2.5). */
static int send_qresync(struct imap_session *s, PGconn *conn, const struct qresync_param *q)
{
	struct imap_view *v = &s->view;
	if (!q->given || q->uidvalidity != v->uidvalidity)
		return 0;
	uint32_t *gone = NULL;
	size_t ngone = 0, k = 0;
	if (store_expunged_since(conn, v->mailbox_id, q->modseq, &gone, &ngone) != STORE_OK)
		return -1;
	for (size_t i = 0; i < ngone; i++) {
		if (q->known.n == 0 || imap_seqset_contains(&q->known, gone[i], UINT32_MAX - 1))
			gone[k++] = gone[i];
	}
	if (k > 0) {
		struct buf b;
		buf_init(&b, BUF_NO_LIMIT);
		imap_uidset_format(gone, k, &b);
		imap_untagged(s, "VANISHED (EARLIER) %s", buf_cstr(&b));
		buf_free(&b);
	}
	free(gone);
	for (size_t i = 0; i < v->count; i++)
		if (v->entries[i].modseq > q->modseq)
			imap_send_fetch_flags(s, i, true);
	return 0;
}

/* Opens the view; the notifier subscription comes first so that no change
 * between the read and the subscription is missed. */
static enum store_err open_view(struct imap_session *s, PGconn *conn, const char *name,
                                struct store_mailbox *mb)
{
	struct store_entry *entries = NULL;
	size_t n = 0;
	enum store_err e = store_mailbox_get(conn, s->account.id, name, mb);
	if (e != STORE_OK)
		return e;
	if (s->srv->notifier != NULL)
		s->view.sub = notifier_subscribe(s->srv->notifier, mb->id);
	e = imap_view_load(conn, mb->id, 0, (size_t)mb->messages, &entries, &n);
	if (e != STORE_OK) {
		if (s->view.sub != NULL)
			notifier_unsubscribe(&s->view.sub);
		return e;
	}
	imap_view_take_entries(s, entries, n);
	s->view.mailbox_id = mb->id;
	s->view.name = xstrdup(mb->name);
	s->view.uidvalidity = mb->uidvalidity;
	s->view.uidnext = mb->uidnext;
	if (n > 0 && entries[n - 1].uid >= s->view.uidnext)
		s->view.uidnext = entries[n - 1].uid + 1;
	s->view.highestmodseq = mb->highestmodseq;
	for (size_t i = 0; i < n; i++)
		if (entries[i].modseq > s->view.highestmodseq)
			s->view.highestmodseq = entries[i].modseq;
	s->state = IMAP_STATE_SELECTED;
	return STORE_OK;
}

int imap_cmd_select(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const char *name;
	bool condstore = false;
	struct qresync_param q = {0};
	if (parse_select(cmd, &name, &condstore, &q) < 0)
		return -1;
	if (s->state == IMAP_STATE_SELECTED) {
		imap_view_close(s);
		imap_untagged(s, "OK [CLOSED] Previous mailbox closed");
	}
	if (condstore)
		s->enabled |= IMAP_EXT_CONDSTORE;
	PGconn *conn = imap_db_borrow(cmd);
	if (conn == NULL)
		return 0;
	struct store_mailbox mb = {0};
	enum store_err e = open_view(s, conn, name, &mb);
	if (e == STORE_OK) {
		s->view.readonly = strcmp(cmd->name, "EXAMINE") == 0;
		if (s->view.count > 0)
			imap_recent_claim(s, conn, s->view.entries[s->view.count - 1].uid);
		/* QRESYNC may send a FETCH for every message: not with the
		 * connection held while a slow client reads them. */
		imap_db_lend(s, &conn);
		send_state(s, &mb);
		PGconn *db = imap_db_again(s, &conn);
		if (db == NULL || send_qresync(s, db, &q) < 0)
			e = STORE_ETEMP;
	}
	imap_db_return(s, &conn);
	store_mailbox_free_fields(&mb);
	if (e != STORE_OK) {
		imap_view_close(s);
		imap_reply_store_err(cmd, e, "select");
		return 0;
	}
	imap_reply_ok(cmd, "[%s] %s completed", s->view.readonly ? "READ-ONLY" : "READ-WRITE",
	              cmd->name);
	return 0;
}

int imap_cmd_close(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	if (imap_arg_end(cmd) < 0)
		return -1;
	if (strcmp(cmd->name, "CLOSE") == 0 && !s->view.readonly) {
		PGconn *conn = imap_db_borrow(cmd);
		if (conn == NULL)
			return 0;
		uint32_t *gone = NULL;
		size_t n = 0;
		enum store_err e = store_expunge(conn, s->view.mailbox_id, NULL, 0, &gone, &n);
		imap_db_return(s, &conn);
		free(gone);
		if (e != STORE_OK) {
			imap_reply_store_err(cmd, e, "close_expunge");
			return 0;
		}
	}
	imap_view_close(s);
	imap_reply_ok(cmd, "%s completed", cmd->name);
	return 0;
}
