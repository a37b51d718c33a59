/* imap-reply.c - the reply writers: untagged and tagged responses, IMAP
 * atoms, quoted strings and literals, mailbox names, flag lists, and the
 * one mapping from store errors to NO responses. */
#include "imap-private.h"

#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define IMAP_QUOTED_MAX 1024

void imap_write(struct imap_session *s, const void *p, size_t n)
{
	imap_io_write(s, p, n);
}

void imap_write_str(struct imap_session *s, const char *str)
{
	imap_io_write(s, str, strlen(str));
}

__attribute__((format(printf, 2, 0))) static void imap_vprintf(struct imap_session *s,
                                                               const char *fmt, va_list ap)
{
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	buf_vprintf(&b, fmt, ap);
	imap_io_write(s, buf_cstr(&b), b.len);
	buf_free(&b);
}

void imap_printf(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	imap_vprintf(s, fmt, ap);
	va_end(ap);
}

void imap_untagged(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;
	imap_io_write(s, "* ", 2);
	va_start(ap, fmt);
	imap_vprintf(s, fmt, ap);
	va_end(ap);
	imap_io_write(s, "\r\n", 2);
}

__attribute__((format(printf, 3, 0))) static void tagged(struct imap_cmd *cmd, const char *result,
                                                         const char *fmt, va_list ap)
{
	struct imap_session *s = cmd->s;
	cmd->replied = true;
	cmd->result = result;
	imap_write_str(s, cmd->tag != NULL ? cmd->tag : "*");
	imap_io_write(s, " ", 1);
	imap_write_str(s, result);
	imap_io_write(s, " ", 1);
	imap_vprintf(s, fmt, ap);
	imap_io_write(s, "\r\n", 2);
}

/* Pending changes go out before the tagged reply (RFC 3501 7.4.1). */
static void before_tagged(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	if (s->state != IMAP_STATE_SELECTED)
		return;
	bool no_expunge = cmd->def != NULL && (cmd->def->flags & IMAP_CMD_NOEXPUNGE) != 0;
	imap_view_sync(s, no_expunge, false);
}

void imap_reply_ok(struct imap_cmd *cmd, const char *fmt, ...)
{
	va_list ap;
	before_tagged(cmd);
	va_start(ap, fmt);
	tagged(cmd, "OK", fmt, ap);
	va_end(ap);
}

void imap_reply_no(struct imap_cmd *cmd, const char *fmt, ...)
{
	va_list ap;
	before_tagged(cmd);
	va_start(ap, fmt);
	tagged(cmd, "NO", fmt, ap);
	va_end(ap);
}

void imap_reply_bad(struct imap_cmd *cmd, const char *fmt, ...)
{
	va_list ap;
	cmd->s->bad_commands++;
	va_start(ap, fmt);
	tagged(cmd, "BAD", fmt, ap);
	va_end(ap);
}

void imap_reply_internal(struct imap_cmd *cmd, const char *what)
{
	char id[24];
	log_new_id("err", id, sizeof(id));
	log_error("event=imap_internal_error id=%s cmd=%s what=%s", id,
	          cmd->name != NULL ? cmd->name : "-", what);
	imap_reply_no(cmd, "[SERVERBUG] Internal error, try again later (%s)", id);
}

void imap_reply_store_err(struct imap_cmd *cmd, enum store_err e, const char *what)
{
	switch (e) {
	case STORE_OK:
		imap_reply_ok(cmd, "%s completed", cmd->name);
		return;
	case STORE_ENOTFOUND:
		imap_reply_no(cmd, "[NONEXISTENT] Mailbox does not exist");
		return;
	case STORE_EEXISTS:
		imap_reply_no(cmd, "[ALREADYEXISTS] Mailbox already exists");
		return;
	case STORE_EQUOTA:
		imap_reply_no(cmd, "[OVERQUOTA] Quota exceeded");
		return;
	case STORE_EPERM:
		imap_reply_no(cmd, "[CANNOT] Operation not permitted");
		return;
	case STORE_EINVALID:
		imap_reply_no(cmd, "[CANNOT] Invalid mailbox name or argument");
		return;
	case STORE_ETEMP:
		break;
	}
	char id[24];
	log_new_id("err", id, sizeof(id));
	log_warn("event=imap_store_error id=%s cmd=%s what=%s err=%s", id, cmd->name, what,
	         store_err_str(e));
	imap_reply_no(cmd, "[UNAVAILABLE] Temporary failure, try again later (%s)", id);
}

/* ---- strings ---- */

static bool utf8_enabled(const struct imap_session *s)
{
	return (s->enabled & (IMAP_EXT_UTF8 | IMAP_EXT_REV2)) != 0;
}

static bool quotable(const struct imap_session *s, const char *p, size_t len)
{
	if (len > IMAP_QUOTED_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == 0 || c == '\r' || c == '\n')
			return false;
		if (c >= 0x80 && !utf8_enabled(s))
			return false;
	}
	return !utf8_enabled(s) || imap_utf8_valid(p, len);
}

void imap_write_literal(struct imap_session *s, const void *p, size_t len)
{
	imap_printf(s, "{%zu}\r\n", len);
	imap_io_write(s, p, len);
}

void imap_write_string(struct imap_session *s, const char *p, size_t len)
{
	if (!quotable(s, p, len)) {
		imap_write_literal(s, p, len);
		return;
	}
	imap_io_write(s, "\"", 1);
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] != '"' && p[i] != '\\')
			continue;
		imap_io_write(s, p + start, i - start);
		imap_io_write(s, "\\", 1);
		start = i;
	}
	imap_io_write(s, p + start, len - start);
	imap_io_write(s, "\"", 1);
}

void imap_write_nstring(struct imap_session *s, const char *p, size_t len)
{
	if (p == NULL)
		imap_io_write(s, "NIL", 3);
	else
		imap_write_string(s, p, len);
}

static bool is_atom(const char *p, size_t len)
{
	if (len == 0 || len > 256 || (len == 3 && strncasecmp(p, "NIL", 3) == 0))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}

void imap_write_astring(struct imap_session *s, const char *p, size_t len)
{
	if (is_atom(p, len))
		imap_io_write(s, p, len);
	else
		imap_write_string(s, p, len);
}

void imap_write_mailbox(struct imap_session *s, const char *name)
{
	size_t len = strlen(name);
	if (utf8_enabled(s)) {
		imap_write_string(s, name, len);
		return;
	}
	struct buf out;
	buf_init(&out, BUF_NO_LIMIT);
	if (imap_utf8_to_utf7(name, len, &out) < 0)
		imap_write_string(s, name, len); /* not UTF-8: cannot happen for stored names */
	else
		imap_write_string(s, buf_cstr(&out), out.len);
	buf_free(&out);
}

void imap_flags_format(unsigned flags, char *const *keywords, struct buf *out)
{
	static const struct {
		unsigned flag;
		const char *name;
	} names[] = {
	    {STORE_FLAG_SEEN, "\\Seen"},       {STORE_FLAG_ANSWERED, "\\Answered"},
	    {STORE_FLAG_FLAGGED, "\\Flagged"}, {STORE_FLAG_DELETED, "\\Deleted"},
	    {STORE_FLAG_DRAFT, "\\Draft"},
	};
	size_t start = out->len;
	buf_append_char(out, '(');
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if ((flags & names[i].flag) == 0)
			continue;
		if (out->len > start + 1)
			buf_append_char(out, ' ');
		buf_append_str(out, names[i].name);
	}
	for (size_t i = 0; keywords != NULL && keywords[i] != NULL; i++) {
		if (out->len > start + 1)
			buf_append_char(out, ' ');
		buf_append_str(out, keywords[i]);
	}
	buf_append_char(out, ')');
}

void imap_append_number(struct buf *out, uint64_t n)
{
	char digits[20]; /* UINT64_MAX has 20 */
	size_t i = sizeof(digits);
	do {
		digits[--i] = (char)('0' + n % 10);
		n /= 10;
	} while (n > 0);
	buf_append(out, &digits[i], sizeof(digits) - i);
}
