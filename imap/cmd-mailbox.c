/* cmd-mailbox.c - CREATE, DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE. */
#include "imap-private.h"

#include <string.h>

/* Wildcards in a name would make LIST patterns ambiguous. The whole name,
 * every level of it, is checked before create_parents() makes the first
 * level: "a//b" must not leave "a" behind when the store refuses the rest. */
static bool name_acceptable(const char *name)
{
	return strpbrk(name, "%*") == NULL && store_mailbox_name_valid(name);
}

/* RFC 3501 6.3.3: superior names are created as needed; those that exist
 * already are fine. */
static enum store_err create_parents(PGconn *conn, int64_t account_id, const char *name,
                                     struct arena *a)
{
	for (const char *p = strchr(name, '/'); p != NULL; p = strchr(p + 1, '/')) {
		const char *parent = arena_memdup0(a, name, (size_t)(p - name));
		enum store_err e = store_mailbox_create(conn, account_id, parent, NULL, NULL);
		if (e != STORE_OK && e != STORE_EEXISTS)
			return e;
	}
	return STORE_OK;
}

int imap_cmd_create(struct imap_cmd *cmd)
{
	const char *name;
	if (imap_arg_sp(cmd) < 0 || imap_arg_mailbox(cmd, &name) < 0 || imap_arg_end(cmd) < 0)
		return -1;
	if (strcmp(name, "INBOX") == 0) {
		imap_reply_no(cmd, "[ALREADYEXISTS] INBOX always exists");
		return 0;
	}
	if (!name_acceptable(name)) {
		imap_reply_no(cmd, "[CANNOT] Invalid mailbox name");
		return 0;
	}
	PGconn *conn = imap_db_borrow(cmd);
	if (conn == NULL)
		return 0;
	enum store_err e = create_parents(conn, cmd->s->account.id, name, cmd->arena);
	if (e == STORE_OK)
		e = store_mailbox_create(conn, cmd->s->account.id, name, NULL, NULL);
	imap_db_return(cmd->s, &conn);
	imap_reply_store_err(cmd, e, "create");
	return 0;
}

int imap_cmd_delete(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const char *name;
	if (imap_arg_sp(cmd) < 0 || imap_arg_mailbox(cmd, &name) < 0 || imap_arg_end(cmd) < 0)
		return -1;
	if (strcmp(name, "INBOX") == 0) {
		imap_reply_no(cmd, "[CANNOT] INBOX cannot be deleted");
		return 0;
	}
	PGconn *conn = imap_db_borrow(cmd);
	if (conn == NULL)
		return 0;
	enum store_err e = store_mailbox_delete(conn, s->account.id, name);
	imap_db_return(s, &conn);
	/* Deleting the selected mailbox deselects it (RFC 9051 6.3.5). */
	if (e == STORE_OK && s->state == IMAP_STATE_SELECTED && strcmp(s->view.name, name) == 0)
		imap_view_close(s);
	imap_reply_store_err(cmd, e, "delete");
	return 0;
}

int imap_cmd_rename(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const char *from, *to;
	if (imap_arg_sp(cmd) < 0 || imap_arg_mailbox(cmd, &from) < 0 || imap_arg_sp(cmd) < 0 ||
	    imap_arg_mailbox(cmd, &to) < 0 || imap_arg_end(cmd) < 0)
		return -1;
	if (strcmp(to, "INBOX") == 0) {
		imap_reply_no(cmd, "[ALREADYEXISTS] INBOX always exists");
		return 0;
	}
	size_t flen = strlen(from);
	if (!name_acceptable(to) ||
	    (strncmp(to, from, flen) == 0 && (to[flen] == '/' || to[flen] == '\0'))) {
		imap_reply_no(cmd, "[CANNOT] Invalid new mailbox name");
		return 0;
	}
	PGconn *conn = imap_db_borrow(cmd);
	if (conn == NULL)
		return 0;
	struct store_mailbox mb = {0};
	enum store_err e = store_mailbox_get(conn, s->account.id, from, &mb);
	store_mailbox_free_fields(&mb);
	if (e == STORE_OK)
		e = create_parents(conn, s->account.id, to, cmd->arena);
	if (e == STORE_OK)
		e = store_mailbox_rename(conn, s->account.id, from, to);
	imap_db_return(s, &conn);
	imap_reply_store_err(cmd, e, "rename");
	return 0;
}

int imap_cmd_subscribe(struct imap_cmd *cmd)
{
	const char *name;
	if (imap_arg_sp(cmd) < 0 || imap_arg_mailbox(cmd, &name) < 0 || imap_arg_end(cmd) < 0)
		return -1;
	PGconn *conn = imap_db_borrow(cmd);
	if (conn == NULL)
		return 0;
	bool on = strcmp(cmd->name, "SUBSCRIBE") == 0;
	enum store_err e = store_mailbox_subscribe(conn, cmd->s->account.id, name, on);
	imap_db_return(cmd->s, &conn);
	imap_reply_store_err(cmd, e, "subscribe");
	return 0;
}
