/* cmd-auth.c - commands of any state and of the not-authenticated state:
 * CAPABILITY, NOOP/CHECK, LOGOUT, ID, STARTTLS, LOGIN, AUTHENTICATE (with
 * SASL-IR, RFC 4959), and ENABLE (RFC 5161) and NAMESPACE (RFC 2342). */
#include "imap-private.h"

#include "log.h"
#include "sasl-conn.h"
#include "sasl.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IMAP_ID_PAIRS_MAX 30

int imap_cmd_capability(struct imap_cmd *cmd)
{
	if (imap_arg_end(cmd) < 0)
		return -1;
	struct buf caps;
	buf_init(&caps, BUF_NO_LIMIT);
	imap_capabilities(cmd->s, &caps);
	imap_untagged(cmd->s, "CAPABILITY%s", buf_cstr(&caps));
	buf_free(&caps);
	imap_reply_ok(cmd, "CAPABILITY completed");
	return 0;
}

int imap_cmd_noop(struct imap_cmd *cmd)
{
	if (imap_arg_end(cmd) < 0)
		return -1;
	/* The client polls: look even if no notification arrived yet. */
	imap_view_sync(cmd->s, false, true);
	imap_reply_ok(cmd, "%s completed", cmd->name);
	return 0;
}

int imap_cmd_logout(struct imap_cmd *cmd)
{
	if (imap_arg_end(cmd) < 0)
		return -1;
	imap_untagged(cmd->s, "BYE Logging out");
	cmd->s->state = IMAP_STATE_LOGOUT;
	imap_reply_ok(cmd, "LOGOUT completed");
	cmd->s->logout = true;
	return 0;
}

/* id-params-list: ( string SP nstring ... ) into one line for the log. */
static int id_params(struct imap_cmd *cmd, struct buf *log)
{
	const char *k, *v;
	unsigned pairs = 0;
	if (imap_arg_list_begin(cmd) < 0)
		return -1;
	while (!imap_arg_peek(cmd, ')')) {
		if (pairs > 0 && imap_arg_sp(cmd) < 0)
			return -1;
		if (imap_arg_string(cmd, &k, NULL) < 0 || imap_arg_sp(cmd) < 0 ||
		    imap_arg_nstring(cmd, &v, NULL) < 0)
			return -1;
		if (++pairs > IMAP_ID_PAIRS_MAX) {
			cmd->error = "Too many ID fields";
			return -1;
		}
		buf_printf(log, "%s%s=%s", pairs > 1 ? ", " : "", k, v != NULL ? v : "NIL");
	}
	return imap_arg_list_end(cmd);
}

int imap_cmd_id(struct imap_cmd *cmd)
{
	const char *v;
	struct buf log;
	buf_init(&log, 4096);
	int r = imap_arg_sp(cmd);
	if (r == 0 && imap_arg_peek(cmd, '('))
		r = id_params(cmd, &log);
	else if (r == 0 && (imap_arg_nstring(cmd, &v, NULL) < 0 || v != NULL))
		r = -1;
	if (r == 0)
		r = imap_arg_end(cmd);
	if (r == 0) {
		char q[LOG_QUOTE_MAX];
		log_info("event=imap_id client=%s", log_quote(q, sizeof(q), buf_cstr(&log)));
		imap_untagged(cmd->s, "ID (\"name\" \"Roost\" \"version\" \"%s\")", ROOST_VERSION);
		imap_reply_ok(cmd, "ID completed");
	}
	buf_free(&log);
	return r;
}

int imap_cmd_starttls(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	if (imap_arg_end(cmd) < 0)
		return -1;
	if (conn_is_tls(s->c)) {
		imap_reply_bad(cmd, "TLS is already active");
		return 0;
	}
	imap_reply_ok(cmd, "Begin TLS negotiation now");
	size_t discarded = 0;
	enum conn_status st = conn_starttls(s->c, NULL, &discarded);
	if (st != CONN_OK) {
		log_info("event=starttls result=%s", conn_status_str(st));
		s->logout = true;
		return 0;
	}
	log_info("event=starttls tls=\"%s\" discarded=%zu", conn_tls_description(s->c), discarded);
	return 0;
}

static void auth_failure_pause_session(struct imap_session *s)
{
	imap_io_flush(s);
	auth_failure_pause(imap_cfg(s));
}

static void login_ok(struct imap_cmd *cmd, const char *method)
{
	struct imap_session *s = cmd->s;
	struct conn_limits limits;
	char user[LOG_QUOTE_MAX];
	s->state = IMAP_STATE_AUTH;
	s->bad_commands = 0;
	conn_limits_from_config(imap_cfg(s), false, &limits);
	conn_set_limits(s->c, &limits);
	log_info("event=login user=%s method=%s tls=%s",
	         log_quote(user, sizeof(user), s->account.address), method,
	         conn_is_tls(s->c) ? "yes" : "no");
	struct buf caps;
	buf_init(&caps, BUF_NO_LIMIT);
	imap_capabilities(s, &caps);
	imap_reply_ok(cmd, "[CAPABILITY%s] Logged in", buf_cstr(&caps));
	buf_free(&caps);
}

/* Checks the credentials; answers either way. */
static void login(struct imap_cmd *cmd, const char *user, const char *password, const char *method)
{
	struct imap_session *s = cmd->s;
	char quser[LOG_QUOTE_MAX];
	enum directory_auth a = directory_authenticate(s->srv->dir, user, password, &s->account);
	if (a == DIR_AUTH_OK) {
		login_ok(cmd, method);
		return;
	}
	static const char *const reasons[] = {"ok", "failed", "disabled", "tempfail"};
	log_info("event=login_failed user=%s method=%s reason=%s",
	         log_quote(quser, sizeof(quser), user), method, reasons[a]);
	memset(&s->account, 0, sizeof(s->account));
	if (a == DIR_AUTH_TEMPFAIL) {
		imap_reply_no(cmd, "[UNAVAILABLE] Authentication unavailable, try again later");
		return;
	}
	s->bad_commands++;
	auth_failure_pause_session(s);
	if (a == DIR_AUTH_DISABLED)
		imap_reply_no(cmd, "[CONTACTADMIN] Account disabled");
	else
		imap_reply_no(cmd, "[AUTHENTICATIONFAILED] Authentication failed");
}

int imap_cmd_login(struct imap_cmd *cmd)
{
	const char *user, *password;
	size_t ulen, plen;
	if (imap_arg_sp(cmd) < 0 || imap_arg_astring(cmd, &user, &ulen) < 0 ||
	    imap_arg_sp(cmd) < 0 || imap_arg_astring(cmd, &password, &plen) < 0 ||
	    imap_arg_end(cmd) < 0)
		return -1;
	if (!imap_secure(cmd->s)) {
		cmd->s->bad_commands++;
		imap_reply_no(cmd, "[PRIVACYREQUIRED] Use STARTTLS before LOGIN");
	} else if (ulen != strlen(user) || plen != strlen(password) || plen == 0 ||
	           plen > DIR_PASSWORD_MAX) {
		cmd->s->bad_commands++;
		imap_reply_no(cmd, "[AUTHENTICATIONFAILED] Authentication failed");
	} else {
		login(cmd, user, password, "LOGIN");
	}
	explicit_bzero((char *)password, plen);
	return 0;
}

static enum conn_status auth_io_write(void *ctx, const void *p, size_t n)
{
	return imap_io_write(ctx, p, n);
}

static enum conn_status auth_io_read_line(void *ctx, struct buf *line, size_t max_len)
{
	return imap_io_read_line(ctx, line, max_len, 0, NULL);
}

/* Runs the exchange until it ends; "+ challenge" lines and responses. */
static enum sasl_status sasl_exchange(struct imap_cmd *cmd, struct sasl *sasl, enum sasl_status st,
                                      const char **err)
{
	const struct sasl_io io = {auth_io_write, auth_io_read_line, cmd->s};
	enum conn_status cs;
	st = sasl_io_exchange(sasl, st, &io, "+ ", &cs, err);
	if (cs != CONN_OK)
		cmd->s->logout = true;
	return st;
}

int imap_cmd_authenticate(struct imap_cmd *cmd)
{
	const char *mech_name, *initial = NULL;
	enum sasl_mech mech;
	if (imap_arg_sp(cmd) < 0 || imap_arg_atom(cmd, &mech_name) < 0)
		return -1;
	if (imap_arg_skip(cmd, ' ') && imap_arg_atom(cmd, &initial) < 0)
		return -1;
	if (imap_arg_end(cmd) < 0)
		return -1;
	if (!imap_secure(cmd->s)) {
		cmd->s->bad_commands++;
		imap_reply_no(cmd, "[PRIVACYREQUIRED] Use STARTTLS before AUTHENTICATE");
		return 0;
	}
	if (sasl_mech_parse(mech_name, &mech) < 0) {
		imap_reply_no(cmd, "[CANNOT] Unsupported authentication mechanism");
		cmd->s->bad_commands++;
		return 0;
	}
	struct sasl sasl;
	const char *err = NULL;
	enum sasl_status st = sasl_start(&sasl, mech, initial, &err);
	st = sasl_exchange(cmd, &sasl, st, &err);
	if (st == SASL_DONE)
		login(cmd, sasl.authcid, sasl.password, sasl_mech_name(mech));
	else if (st == SASL_CANCELLED)
		imap_reply_bad(cmd, "Authentication cancelled");
	else if (!cmd->s->logout)
		imap_reply_bad(cmd, "%s", err != NULL ? err : "Malformed authentication exchange");
	sasl_wipe(&sasl);
	if (initial != NULL)
		explicit_bzero((char *)initial, strlen(initial));
	return 0;
}

/* ENABLE: what each name turns on, and only if it is advertised. */
static unsigned enable_one(const struct imap_session *s, const char *name)
{
	struct buf caps;
	buf_init(&caps, BUF_NO_LIMIT);
	imap_capabilities(s, &caps);
	buf_append_char(&caps, ' ');
	struct buf needle;
	buf_init(&needle, BUF_NO_LIMIT);
	buf_printf(&needle, " %s ", name);
	bool advertised = strcasestr(buf_cstr(&caps), buf_cstr(&needle)) != NULL;
	buf_free(&needle);
	buf_free(&caps);
	if (!advertised)
		return 0;
	if (strcasecmp(name, "CONDSTORE") == 0)
		return IMAP_EXT_CONDSTORE;
	if (strcasecmp(name, "QRESYNC") == 0)
		return IMAP_EXT_QRESYNC | IMAP_EXT_CONDSTORE;
	if (strcasecmp(name, "IMAP4rev2") == 0)
		return IMAP_EXT_REV2;
	if (strcasecmp(name, "UTF8=ACCEPT") == 0)
		return IMAP_EXT_UTF8;
	return 0;
}

int imap_cmd_enable(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	struct buf enabled;
	const char *name;
	if (imap_arg_sp(cmd) < 0)
		return -1;
	buf_init(&enabled, BUF_NO_LIMIT);
	do {
		if (imap_arg_atom(cmd, &name) < 0) {
			buf_free(&enabled);
			return -1;
		}
		unsigned ext = enable_one(s, name);
		if (ext != 0 && (s->enabled & ext) != ext) {
			s->enabled |= ext;
			buf_printf(&enabled, " %s", name);
		}
	} while (imap_arg_skip(cmd, ' '));
	if (imap_arg_end(cmd) < 0) {
		buf_free(&enabled);
		return -1;
	}
	imap_untagged(s, "ENABLED%s", buf_cstr(&enabled));
	buf_free(&enabled);
	imap_reply_ok(cmd, "ENABLE completed");
	return 0;
}

int imap_cmd_namespace(struct imap_cmd *cmd)
{
	if (imap_arg_end(cmd) < 0)
		return -1;
	imap_untagged(cmd->s, "NAMESPACE ((\"\" \"/\")) NIL NIL");
	imap_reply_ok(cmd, "NAMESPACE completed");
	return 0;
}
