/* smtp-reply.c - the SMTP reply writer. */
#include "smtp-reply.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>

static void reply_append_text(struct buf *out, const char *text)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++, n++) {
		if (n >= SMTP_REPLY_TEXT_MAX) {
			buf_append_str(out, "...");
			return;
		}
		if (*p >= 0x20 && *p < 0x7f) {
			buf_append_char(out, (char)*p);
			continue;
		}
		char esc[5] = { '\\', 'x', hex[*p >> 4], hex[*p & 0xf], '\0' };
		buf_append_str(out, esc);
	}
}

void smtp_reply_format(struct buf *out, unsigned code, const char *esc, bool last,
                       const char *text)
{
	assert(code >= 200 && code <= 599);
	buf_printf(out, "%u%c", code, last ? ' ' : '-');
	if (esc != NULL && esc[0] != '\0') {
		buf_append_str(out, esc);
		if (text[0] != '\0')
			buf_append_char(out, ' ');
	}
	reply_append_text(out, text);
	buf_append_str(out, "\r\n");
}

enum conn_status smtp_reply_lines(struct conn *c, unsigned code, const char *esc,
                                  const char *const *lines, size_t n)
{
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	for (size_t i = 0; i < n; i++)
		smtp_reply_format(&b, code, esc, i + 1 == n, lines[i]);
	enum conn_status st = conn_write(c, b.data, b.len);
	buf_free(&b);
	return st;
}

enum conn_status smtp_reply(struct conn *c, unsigned code, const char *esc, const char *fmt, ...)
{
	char text[SMTP_REPLY_TEXT_MAX + 64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	const char *line = text;
	return smtp_reply_lines(c, code, esc, &line, 1);
}
