/* cmd-quota.c - GETQUOTA, GETQUOTAROOT and SETQUOTA (RFC 9208): one quota
 * root "" per account with the STORAGE resource, in KiB. */
#include "imap-private.h"

#include <string.h>

static void send_quota(struct imap_session *s, const struct directory_account *acc)
{
	if (acc->quota_bytes == 0) {
		imap_untagged(s, "QUOTA \"\" ()");
		return;
	}
	imap_untagged(s, "QUOTA \"\" (STORAGE %llu %llu)",
	              (unsigned long long)((acc->used_bytes + 1023) / 1024),
	              (unsigned long long)(acc->quota_bytes / 1024));
}

static int quota_account(struct imap_cmd *cmd, struct directory_account *acc)
{
	enum directory_err e =
	    directory_account_get_by_id(cmd->s->srv->dir, cmd->s->account.id, acc, NULL);
	if (e == DIR_OK)
		return 0;
	imap_reply_no(cmd, "[UNAVAILABLE] Quota information unavailable, try again later");
	return -1;
}

static int getquotaroot(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const char *name;
	struct directory_account acc;
	if (imap_arg_sp(cmd) < 0 || imap_arg_mailbox(cmd, &name) < 0 || imap_arg_end(cmd) < 0)
		return -1;
	struct store_mailbox mb = {0};
	enum store_err e = imap_mailbox_get(s, name, &mb);
	store_mailbox_free_fields(&mb);
	if (e != STORE_OK) {
		imap_reply_store_err(cmd, e, "getquotaroot");
		return 0;
	}
	if (quota_account(cmd, &acc) < 0)
		return 0;
	imap_write_str(s, "* QUOTAROOT ");
	imap_write_mailbox(s, name);
	imap_write_str(s, " \"\"\r\n");
	send_quota(s, &acc);
	imap_reply_ok(cmd, "GETQUOTAROOT completed");
	return 0;
}

static int getquota(struct imap_cmd *cmd)
{
	const char *root;
	struct directory_account acc;
	if (imap_arg_sp(cmd) < 0 || imap_arg_astring(cmd, &root, NULL) < 0 || imap_arg_end(cmd) < 0)
		return -1;
	if (root[0] != '\0') {
		imap_reply_no(cmd, "[NONEXISTENT] No such quota root");
		return 0;
	}
	if (quota_account(cmd, &acc) < 0)
		return 0;
	send_quota(cmd->s, &acc);
	imap_reply_ok(cmd, "GETQUOTA completed");
	return 0;
}

int imap_cmd_quota(struct imap_cmd *cmd)
{
	if (strcmp(cmd->name, "GETQUOTAROOT") == 0)
		return getquotaroot(cmd);
	if (strcmp(cmd->name, "GETQUOTA") == 0)
		return getquota(cmd);
	/* Quotas are set by the administrator (roost CLI, admin API). */
	imap_arg_skip_rest(cmd);
	imap_reply_no(cmd, "[NOPERM] Quotas are set by the administrator");
	return 0;
}
