/* cmd-thread.c - THREAD and UID THREAD (RFC 5256): ORDEREDSUBJECT and
 * REFERENCES over the messages a search program selects, from the
 * Message-ID, In-Reply-To, References, Subject and Date stored at delivery
 * (the algorithms are in search-thread.c). */
#include "imap-private.h"
#include "imap-search.h"

#include "strnum.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char thread_cols[] =
    "e.uid, extract(epoch FROM COALESCE(m.sent_date, e.internaldate))::bigint, "
    "m.message_id, m.in_reply_to, m.refs, m.subject";

struct thread_rows {
	struct imap_thread_msg *msgs;
	char **subjects;
	size_t n;
};

static void thread_rows_load(struct imap_cmd *cmd, PGresult *res, struct thread_rows *t)
{
	size_t rows = (size_t)PQntuples(res);
	t->msgs = xcalloc(rows + 1, sizeof(*t->msgs));
	t->subjects = xcalloc(rows + 1, sizeof(*t->subjects));
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	for (int i = 0; i < (int)rows; i++) {
		uint32_t uid;
		uint64_t d;
		if (str_to_u32(PQgetvalue(res, i, 0), &uid) < 0)
			continue;
		ssize_t idx = imap_view_find_uid(cmd->s, uid);
		if (idx < 0)
			continue;
		struct imap_thread_msg *m = &t->msgs[t->n];
		m->id = cmd->uid ? uid : (uint32_t)idx + 1;
		m->date = str_to_u64(PQgetvalue(res, i, 1), INT64_MAX, &d) == 0 ? (time_t)d : 0;
		m->message_id = PQgetvalue(res, i, 2);
		m->in_reply_to = PQgetvalue(res, i, 3);
		m->references = PQgetvalue(res, i, 4);
		imap_base_subject(PQgetvalue(res, i, 5), &b, &m->reply);
		t->subjects[t->n] = xstrdup(buf_cstr(&b));
		m->base_subject = t->subjects[t->n];
		t->n++;
	}
	buf_free(&b);
}

static void thread_rows_free(struct thread_rows *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->subjects[i]);
	free(t->subjects);
	free(t->msgs);
}

int imap_cmd_thread(struct imap_cmd *cmd)
{
	struct imap_stok *toks;
	size_t n;
	if (imap_arg_sp(cmd) < 0 || imap_search_read_tokens(cmd, &toks, &n) < 0)
		return -1;
	bool refs;
	if (n > 0 && toks[0].type == IMAP_STOK_ATOM && strcasecmp(toks[0].s, "REFERENCES") == 0)
		refs = true;
	else if (n > 0 && toks[0].type == IMAP_STOK_ATOM &&
	         strcasecmp(toks[0].s, "ORDEREDSUBJECT") == 0)
		refs = false;
	else {
		cmd->error = "Unknown threading algorithm";
		return -1;
	}
	PGresult *res = NULL;
	int r = imap_search_select(cmd, toks, n, 1, thread_cols, "thread", &res);
	if (r != 0)
		return r < 0 ? -1 : 0;
	struct thread_rows t = {0};
	thread_rows_load(cmd, res, &t);
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	buf_append_str(&b, "* THREAD ");
	if (t.n == 0)
		buf_truncate(&b, b.len - 1);
	else if (refs)
		imap_thread_references(t.msgs, t.n, &b);
	else
		imap_thread_orderedsubject(t.msgs, t.n, &b);
	buf_append_str(&b, "\r\n");
	imap_write(cmd->s, b.data, b.len);
	buf_free(&b);
	thread_rows_free(&t);
	PQclear(res);
	imap_reply_ok(cmd, "%s completed", cmd->name);
	return 0;
}
