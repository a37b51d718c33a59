/* bench-mime-parse - feeds a generated mix of realistic messages to the
 * MIME parser and prints MB/s and messages/s.
 *
 * The mix (sizes 2 KB to 200 KB): plain text mails, text+HTML
 * alternatives, mails with base64 attachments, and forwarded
 * message/rfc822 with an attachment inside. Messages are fed in 64 KiB
 * chunks, as they come off a socket. */
#include "buf.h"
#include "mime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned long long rng_state = 88172645463325252ULL;

static unsigned rnd(unsigned n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (unsigned)(rng_state % n);
}

static const char *const words[] = {
    "meeting",     "budget",
    "the",         "and",
    "project",     "schedule",
    "please",      "review",
    "attached",    "report",
    "quarterly",   "numbers",
    "customer",    "thanks",
    "regards",     "tomorrow",
    "deadline",    "update",
    "server",      "invoice",
    "caf\xc3\xa9", "r\xc3\xa9sum\xc3\xa9",
};

static void text_lines(struct buf *b, size_t bytes, bool html)
{
	size_t start = b->len;
	while (b->len - start < bytes) {
		if (html)
			buf_append_str(b, "<p>");
		size_t line = 0;
		while (line < 66) {
			const char *w = words[rnd(sizeof(words) / sizeof(words[0]))];
			buf_printf(b, "%s ", w);
			line += strlen(w) + 1;
		}
		buf_append_str(b, html ? "</p>\r\n" : "\r\n");
	}
}

static void base64_lines(struct buf *b, size_t bytes)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char line[78];
	for (size_t done = 0; done < bytes; done += 78) {
		for (int i = 0; i < 76; i++)
			line[i] = a[rnd(64)];
		line[76] = '\r';
		line[77] = '\n';
		buf_append(b, line, 78);
	}
}

static void headers(struct buf *b, unsigned n, const char *subject)
{
	buf_printf(b,
	           "Return-Path: <sender%u@example.org>\r\n"
	           "Received: from mx.example.org (mx.example.org [192.0.2.1])\r\n"
	           "\tby mail.example.com with ESMTPS id %u; Mon, 3 Jun 2024 09:15:22 +0200\r\n"
	           "Message-ID: <%u.bench@example.org>\r\nDate: Mon, 3 Jun 2024 09:15:22 +0200\r\n"
	           "From: =?UTF-8?Q?Ren=C3=A9e_Sender?= <sender%u@example.org>\r\n"
	           "To: Bob Example <bob@example.com>, team@example.com\r\n"
	           "Subject: %s %u\r\nMIME-Version: 1.0\r\n",
	           n, n, n, n, subject, n);
}

static void msg_plain(struct buf *b, unsigned n, size_t size)
{
	headers(b, n, "Plain");
	buf_append_str(b, "Content-Type: text/plain; charset=utf-8\r\n"
	                  "Content-Transfer-Encoding: 8bit\r\n\r\n");
	text_lines(b, size, false);
}

static void msg_alternative(struct buf *b, unsigned n, size_t size)
{
	headers(b, n, "Alternative");
	buf_append_str(b, "Content-Type: multipart/alternative; boundary=\"alt-b\"\r\n\r\n"
	                  "--alt-b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
	text_lines(b, size / 3, false);
	buf_append_str(b, "\r\n--alt-b\r\nContent-Type: text/html; charset=utf-8\r\n"
	                  "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	text_lines(b, size * 2 / 3, true);
	buf_append_str(b, "\r\n--alt-b--\r\n");
}

static void msg_attachment(struct buf *b, unsigned n, size_t size)
{
	headers(b, n, "Attachment");
	buf_append_str(b, "Content-Type: multipart/mixed; boundary=\"mix-b\"\r\n\r\n"
	                  "--mix-b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
	text_lines(b, 1500, false);
	buf_append_str(b, "\r\n--mix-b\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\n"
	                  "Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
	                  "Content-Transfer-Encoding: base64\r\n\r\n");
	base64_lines(b, size);
	buf_append_str(b, "\r\n--mix-b--\r\n");
}

static void msg_forward(struct buf *b, unsigned n, size_t size)
{
	headers(b, n, "Fwd:");
	buf_append_str(b, "Content-Type: multipart/mixed; boundary=\"fwd-b\"\r\n\r\n"
	                  "--fwd-b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee below.\r\n"
	                  "--fwd-b\r\nContent-Type: message/rfc822\r\n\r\n");
	msg_attachment(b, n + 1000000, size);
	buf_append_str(b, "\r\n--fwd-b--\r\n");
}

static size_t pick_size(size_t lo, size_t hi)
{
	return lo + rnd((unsigned)(hi - lo));
}

static struct buf *generate(unsigned count)
{
	struct buf *msgs = calloc(count, sizeof(*msgs));
	for (unsigned i = 0; i < count; i++) {
		buf_init(&msgs[i], BUF_NO_LIMIT);
		unsigned kind = rnd(100);
		if (kind < 40)
			msg_plain(&msgs[i], i, pick_size(1500, 10000));
		else if (kind < 65)
			msg_alternative(&msgs[i], i, pick_size(4000, 40000));
		else if (kind < 90)
			msg_attachment(&msgs[i], i, pick_size(15000, 195000));
		else
			msg_forward(&msgs[i], i, pick_size(8000, 100000));
	}
	return msgs;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	unsigned count = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 500;
	double seconds = argc > 2 ? strtod(argv[2], NULL) : 3.0;
	if (count == 0)
		count = 500;
	struct buf *msgs = generate(count);
	size_t total = 0, minsz = (size_t)-1, maxsz = 0;
	for (unsigned i = 0; i < count; i++) {
		total += msgs[i].len;
		minsz = msgs[i].len < minsz ? msgs[i].len : minsz;
		maxsz = msgs[i].len > maxsz ? msgs[i].len : maxsz;
	}
	printf("messages=%u total_bytes=%zu min=%zu max=%zu avg=%zu\n", count, total, minsz, maxsz,
	       total / count);
	double t0 = now(), t;
	unsigned long long bytes = 0, parsed = 0, parts = 0;
	do {
		for (unsigned i = 0; i < count; i++) {
			struct mime_parser *p = mime_parser_new(NULL);
			for (size_t off = 0; off < msgs[i].len; off += 65536) {
				size_t n = msgs[i].len - off < 65536 ? msgs[i].len - off : 65536;
				mime_parser_feed(p, msgs[i].data + off, n);
			}
			struct mime_message *m = mime_parser_finish(&p);
			parts += m->nparts;
			mime_message_free(&m);
			bytes += msgs[i].len;
			parsed++;
		}
		t = now() - t0;
	} while (t < seconds);
	printf("parsed=%llu parts=%llu seconds=%.3f MB/s=%.1f messages/s=%.0f\n", parsed, parts, t,
	       (double)bytes / t / 1e6, (double)parsed / t);
	for (unsigned i = 0; i < count; i++)
		buf_free(&msgs[i]);
	free(msgs);
	return 0;
}
