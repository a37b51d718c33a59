/* imap-commands.c - the command table and the capability list, which names
 * only commands that are built in. */
#include "imap-private.h"

#include <string.h>
#include <strings.h>

#define ANY    IMAP_CMD_ANY
#define AUTHED (IMAP_CMD_AUTH | IMAP_CMD_SELECTED)
#define SEL    IMAP_CMD_SELECTED
#define UID    (IMAP_CMD_SELECTED | IMAP_CMD_UID)
#define NOEXP  IMAP_CMD_NOEXPUNGE

static const struct imap_cmd_def imap_commands[] = {
    {"CAPABILITY", imap_cmd_capability, ANY},
    {"NOOP", imap_cmd_noop, ANY},
    {"LOGOUT", imap_cmd_logout, ANY},
    {"ID", imap_cmd_id, ANY},
    {"ENABLE", imap_cmd_enable, AUTHED},
    {"STARTTLS", imap_cmd_starttls, IMAP_CMD_NOTAUTH},
    {"AUTHENTICATE", imap_cmd_authenticate, IMAP_CMD_NOTAUTH},
    {"LOGIN", imap_cmd_login, IMAP_CMD_NOTAUTH},
    {"NAMESPACE", imap_cmd_namespace, AUTHED},
    {"SELECT", imap_cmd_select, AUTHED},
    {"EXAMINE", imap_cmd_select, AUTHED},
    {"CREATE", imap_cmd_create, AUTHED},
    {"DELETE", imap_cmd_delete, AUTHED},
    {"RENAME", imap_cmd_rename, AUTHED},
    {"SUBSCRIBE", imap_cmd_subscribe, AUTHED},
    {"UNSUBSCRIBE", imap_cmd_subscribe, AUTHED},
    {"LIST", imap_cmd_list, AUTHED},
    {"LSUB", imap_cmd_list, AUTHED},
    {"STATUS", imap_cmd_status, AUTHED},
    {"APPEND", imap_cmd_append, AUTHED},
    {"IDLE", imap_cmd_idle, AUTHED},
    {"GETQUOTA", imap_cmd_quota, AUTHED},
    {"GETQUOTAROOT", imap_cmd_quota, AUTHED},
    {"SETQUOTA", imap_cmd_quota, AUTHED},
    {"CHECK", imap_cmd_noop, SEL},
    {"CLOSE", imap_cmd_close, SEL},
    {"UNSELECT", imap_cmd_close, SEL},
    {"EXPUNGE", imap_cmd_expunge, SEL},
    {"UID EXPUNGE", imap_cmd_expunge, UID},
    {"STORE", imap_cmd_store, SEL | NOEXP},
    {"UID STORE", imap_cmd_store, UID},
    {"COPY", imap_cmd_copy, SEL},
    {"UID COPY", imap_cmd_copy, UID},
    {"MOVE", imap_cmd_copy, SEL},
    {"UID MOVE", imap_cmd_copy, UID},
    {"FETCH", imap_cmd_fetch, SEL | NOEXP},
    {"UID FETCH", imap_cmd_fetch, UID},
    {"SEARCH", imap_cmd_search, SEL | NOEXP},
    {"UID SEARCH", imap_cmd_search, UID},
    {"SORT", imap_cmd_sort, SEL | NOEXP},
    {"UID SORT", imap_cmd_sort, UID},
    {"THREAD", imap_cmd_thread, SEL | NOEXP},
    {"UID THREAD", imap_cmd_thread, UID},
    {"COMPRESS", imap_cmd_compress, AUTHED},
};

const struct imap_cmd_def *imap_cmd_find(const char *name)
{
	for (size_t i = 0; i < sizeof(imap_commands) / sizeof(imap_commands[0]); i++) {
		if (strcasecmp(imap_commands[i].name, name) == 0)
			return imap_commands[i].fn != NULL ? &imap_commands[i] : NULL;
	}
	return NULL;
}

static bool have(const char *name)
{
	return imap_cmd_find(name) != NULL;
}

static void caps_preauth(const struct imap_session *s, struct buf *out)
{
	if (!conn_is_tls(s->c))
		buf_append_str(out, " STARTTLS");
	if (imap_secure(s))
		buf_append_str(out, " AUTH=PLAIN AUTH=LOGIN");
	else
		buf_append_str(out, " LOGINDISABLED");
}

/* Extensions that need the second engineer's commands. */
static void caps_optional(struct buf *out)
{
	if (have("FETCH"))
		buf_append_str(out, " CONDSTORE QRESYNC BINARY PREVIEW");
	if (have("SEARCH"))
		buf_append_str(out, " ESEARCH SEARCHRES");
	if (have("SORT"))
		buf_append_str(out, " SORT");
	if (have("THREAD"))
		buf_append_str(out, " THREAD=REFERENCES THREAD=ORDEREDSUBJECT");
}

void imap_capabilities(const struct imap_session *s, struct buf *out)
{
	buf_append_str(out, " IMAP4rev1");
	if (have("FETCH") && have("SEARCH"))
		buf_append_str(out, " IMAP4rev2");
	buf_append_str(out, " SASL-IR LITERAL+ ID ENABLE IDLE");
	if (s->state == IMAP_STATE_NOTAUTH) {
		caps_preauth(s, out);
		return;
	}
	buf_append_str(out, " NAMESPACE UNSELECT UIDPLUS MOVE CHILDREN SPECIAL-USE"
	                    " LIST-EXTENDED LIST-STATUS STATUS=SIZE QUOTA QUOTA=RES-STORAGE"
	                    " MULTIAPPEND");
	buf_printf(out, " APPENDLIMIT=%llu",
	           (unsigned long long)config_uint(imap_cfg(s), CFG_LIMITS_MESSAGE_SIZE));
	caps_optional(out);
	if (have("COMPRESS") && s->filter == NULL)
		buf_append_str(out, " COMPRESS=DEFLATE");
}
