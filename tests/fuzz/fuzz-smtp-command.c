/* libFuzzer target for the SMTP command parsers (smtp/smtp-parse.h) and the
 * reply writer: any line must parse or fail cleanly, and whatever we echo in
 * a reply must stay one line. */
#include "buf.h"
#include "smtp-parse.h"
#include "smtp-reply.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_addr(void *ctx, const char *addr, size_t len)
{
	(void)ctx;
	struct address a;
	const char *err;
	(void)address_parse(addr, len, &a, &err);
	return 0;
}

static void fuzz_reply(const char *s, size_t len)
{
	char text[600];
	size_t n = len < sizeof(text) - 1 ? len : sizeof(text) - 1;
	memcpy(text, s, n);
	text[n] = '\0';
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	smtp_reply_format(&b, 550, "5.1.1", true, text);
	/* Exactly one CRLF, at the end. */
	if (b.len < 2 || memchr(b.data, '\n', b.len - 1) != NULL || memchr(b.data, '\r', b.len - 2))
		__builtin_trap();
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	char verb[SMTP_VERB_MAX + 1];
	size_t off = 0;
	if (smtp_parse_verb(s, size, verb, &off) == 0 && off > size)
		__builtin_trap();
	struct address a;
	const char *err;
	struct smtp_mail_params mp;
	struct smtp_rcpt_params rp;
	if (smtp_parse_mail(s, size, &a, &mp, &err) == SMTP_PARSE_OK && strlen(mp.envid) > SMTP_ENVID_MAX)
		__builtin_trap();
	(void)smtp_parse_rcpt(s, size, &a, &rp, &err);
	uint64_t n;
	bool last;
	(void)smtp_parse_bdat(s, size, &n, &last);
	(void)smtp_parse_address_list(s, size, fuzz_addr, NULL);
	struct smtp_header_scan h;
	memset(&h, 0, sizeof(h));
	smtp_header_scan_feed(&h, s, size);
	if (h.from_len > SMTP_FROM_FIELD_MAX)
		__builtin_trap();
	fuzz_reply(s, size);
	return 0;
}
