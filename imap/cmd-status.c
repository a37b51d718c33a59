/* cmd-status.c - STATUS (RFC 3501, RFC 9051 with SIZE and DELETED, RFC
 * 7162 HIGHESTMODSEQ, RFC 7889 APPENDLIMIT), also used by LIST-STATUS. */
#include "imap-private.h"

#include "log.h"

#include <string.h>

static const struct {
	const char *name;
	unsigned item;
} status_items[] = {
    {"MESSAGES", IMAP_STATUS_MESSAGES},
    {"RECENT", IMAP_STATUS_RECENT},
    {"UIDNEXT", IMAP_STATUS_UIDNEXT},
    {"UIDVALIDITY", IMAP_STATUS_UIDVALIDITY},
    {"UNSEEN", IMAP_STATUS_UNSEEN},
    {"HIGHESTMODSEQ", IMAP_STATUS_HIGHESTMODSEQ},
    {"SIZE", IMAP_STATUS_SIZE},
    {"DELETED", IMAP_STATUS_DELETED},
    {"APPENDLIMIT", IMAP_STATUS_APPENDLIMIT},
};

int imap_status_items_parse(struct imap_cmd *cmd, unsigned *items_r)
{
	const char *name;
	*items_r = 0;
	if (imap_arg_list_begin(cmd) < 0)
		return -1;
	do {
		if (imap_arg_atom(cmd, &name) < 0)
			return -1;
		size_t i = 0;
		while (i < sizeof(status_items) / sizeof(status_items[0]) &&
		       strcasecmp(name, status_items[i].name) != 0)
			i++;
		if (i == sizeof(status_items) / sizeof(status_items[0])) {
			cmd->error = "Unknown STATUS item";
			return -1;
		}
		*items_r |= status_items[i].item;
	} while (imap_arg_skip(cmd, ' '));
	if (*items_r & IMAP_STATUS_HIGHESTMODSEQ)
		cmd->s->enabled |= IMAP_EXT_CONDSTORE;
	return imap_arg_list_end(cmd);
}

uint32_t imap_append_limit(const struct imap_session *s)
{
	uint64_t max = config_uint(imap_cfg(s), CFG_LIMITS_MESSAGE_SIZE);
	return max > UINT32_MAX ? UINT32_MAX : (uint32_t)max;
}

/* \Deleted messages are not counted in the mailbox row: count them. */
static uint64_t count_deleted(PGconn *conn, int64_t mailbox_id)
{
	struct store_entry *entries = NULL;
	size_t n = 0;
	uint64_t deleted = 0;
	if (store_entries_list(conn, mailbox_id, 1, UINT32_MAX, 0, &entries, &n) != STORE_OK)
		return 0;
	for (size_t i = 0; i < n; i++)
		deleted += (entries[i].flags & STORE_FLAG_DELETED) != 0;
	store_entries_free(&entries, n);
	return deleted;
}

void imap_status_send(struct imap_session *s, PGconn *conn, const struct store_mailbox *mb,
                      unsigned items)
{
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	if (items & IMAP_STATUS_MESSAGES)
		buf_printf(&b, " MESSAGES %llu", (unsigned long long)mb->messages);
	uint64_t recent = 0;
	if ((items & IMAP_STATUS_RECENT) && imap_recent_unclaimed(conn, mb->id, &recent) < 0)
		log_warn("event=imap_status_recent_failed mailbox=%lld", (long long)mb->id);
	if (items & IMAP_STATUS_RECENT)
		buf_printf(&b, " RECENT %llu", (unsigned long long)recent);
	if (items & IMAP_STATUS_UIDNEXT)
		buf_printf(&b, " UIDNEXT %u", mb->uidnext);
	if (items & IMAP_STATUS_UIDVALIDITY)
		buf_printf(&b, " UIDVALIDITY %u", mb->uidvalidity);
	if (items & IMAP_STATUS_UNSEEN)
		buf_printf(&b, " UNSEEN %llu", (unsigned long long)mb->unseen);
	if (items & IMAP_STATUS_HIGHESTMODSEQ)
		buf_printf(&b, " HIGHESTMODSEQ %llu", (unsigned long long)mb->highestmodseq);
	if (items & IMAP_STATUS_SIZE)
		buf_printf(&b, " SIZE %llu", (unsigned long long)mb->size_bytes);
	if (items & IMAP_STATUS_DELETED)
		buf_printf(&b, " DELETED %llu", (unsigned long long)count_deleted(conn, mb->id));
	if (items & IMAP_STATUS_APPENDLIMIT)
		buf_printf(&b, " APPENDLIMIT %u", imap_append_limit(s));
	imap_write_str(s, "* STATUS ");
	imap_write_mailbox(s, mb->name);
	imap_printf(s, " (%s)\r\n", b.len > 0 ? b.data + 1 : "");
	buf_free(&b);
}

int imap_cmd_status(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const char *name;
	unsigned items;
	if (imap_arg_sp(cmd) < 0 || imap_arg_mailbox(cmd, &name) < 0 || imap_arg_sp(cmd) < 0 ||
	    imap_status_items_parse(cmd, &items) < 0 || imap_arg_end(cmd) < 0)
		return -1;
	PGconn *conn = imap_db_borrow(cmd);
	if (conn == NULL)
		return 0;
	struct store_mailbox mb = {0};
	enum store_err e = store_mailbox_get(conn, s->account.id, name, &mb);
	if (e == STORE_OK)
		imap_status_send(s, conn, &mb, items);
	imap_db_return(s, &conn);
	store_mailbox_free_fields(&mb);
	imap_reply_store_err(cmd, e, "status");
	return 0;
}
