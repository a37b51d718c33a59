/* Unit tests for smtp/smtp-parse.c and smtp/smtp-reply.c: tables of
 * {input, expected status, expected output}; the header scan is also fed
 * byte by byte. */
#include "unit.h"

#include "buf.h"
#include "smtp-parse.h"
#include "smtp-reply.h"

#include <stdio.h>
#include <stdlib.h>

struct verb_case {
	const char *line;
	int status;
	const char *verb;
	size_t args_off;
};

static const struct verb_case verb_cases[] = {
    {"EHLO client.example", 0, "EHLO", 5},
    {"ehlo x", 0, "EHLO", 5},
    {"QUIT", 0, "QUIT", 4},
    {"StartTLS", 0, "STARTTLS", 8},
    {"MAIL FROM:<a@b>", 0, "MAIL", 5},
    {"NOOP ", 0, "NOOP", 5},
    {"", -1, NULL, 0},
    {" EHLO x", -1, NULL, 0},
    {"EHLO\tx", -1, NULL, 0},
    {"MAIL:FROM", -1, NULL, 0},
    {"ABCDEFGHIJKLMNOPQ", -1, NULL, 0},
    {"\xc3\xa9HLO x", -1, NULL, 0},
    {"12 x", -1, NULL, 0},
};

UNIT_TEST(test_smtp_parse_verb)
{
	for (size_t i = 0; i < sizeof(verb_cases) / sizeof(verb_cases[0]); i++) {
		const struct verb_case *c = &verb_cases[i];
		char verb[SMTP_VERB_MAX + 1];
		size_t off = 99;
		int r = smtp_parse_verb(c->line, strlen(c->line), verb, &off);
		CHECK_INT(r, c->status);
		if (r == 0) {
			CHECK_STR(verb, c->verb);
			CHECK_INT(off, c->args_off);
		}
	}
}

struct mail_case {
	const char *args;
	enum smtp_parse_status status;
	const char *addr; /* formatted, "" for <> */
	uint64_t size;
	int body;
	bool smtputf8;
	int ret;
	const char *envid;
};

static const struct mail_case mail_cases[] = {
    {"FROM:<a@b.example>", SMTP_PARSE_OK, "a@b.example", 0, 0, false, 0, ""},
    {"from:<A@B.Example>", SMTP_PARSE_OK, "A@b.example", 0, 0, false, 0, ""},
    {"FROM: <a@b>", SMTP_PARSE_OK, "a@b", 0, 0, false, 0, ""},
    {"FROM:<>", SMTP_PARSE_OK, "", 0, 0, false, 0, ""},
    {"FROM:<a@b> SIZE=1000", SMTP_PARSE_OK, "a@b", 1000, 0, false, 0, ""},
    {"FROM:<a@b> size=0 body=8bitmime", SMTP_PARSE_OK, "a@b", 0, 1, false, 0, ""},
    {"FROM:<a@b> BODY=7BIT", SMTP_PARSE_OK, "a@b", 0, 0, false, 0, ""},
    {"FROM:<a@b>  SMTPUTF8", SMTP_PARSE_OK, "a@b", 0, 0, true, 0, ""},
    {"FROM:<\xc3\xa9@b> SMTPUTF8", SMTP_PARSE_OK, "\xc3\xa9@b", 0, 0, true, 0, ""},
    {"FROM:<a@b> RET=HDRS ENVID=QQ+2B+3Dx", SMTP_PARSE_OK, "a@b", 0, 0, false, 2, "QQ+=x"},
    {"FROM:<a@b> RET=full", SMTP_PARSE_OK, "a@b", 0, 0, false, 1, ""},
    {"FROM:<a@b> AUTH=<>", SMTP_PARSE_OK, "a@b", 0, 0, false, 0, ""},
    {"FROM:<@relay.example:a@b>", SMTP_PARSE_OK, "a@b", 0, 0, false, 0, ""},
    /* syntax */
    {"FROM:a@b", SMTP_PARSE_SYNTAX, NULL, 0, 0, false, 0, NULL},
    {"TO:<a@b>", SMTP_PARSE_SYNTAX, NULL, 0, 0, false, 0, NULL},
    {"FROM", SMTP_PARSE_SYNTAX, NULL, 0, 0, false, 0, NULL},
    {"FROM:<a@b>SIZE=1", SMTP_PARSE_SYNTAX, NULL, 0, 0, false, 0, NULL},
    {"FROM:<a@b> =1", SMTP_PARSE_SYNTAX, NULL, 0, 0, false, 0, NULL},
    {"FROM:<a@b> SIZE=", SMTP_PARSE_SYNTAX, NULL, 0, 0, false, 0, NULL},
    {"FROM:<a@b> SIZE=1=2", SMTP_PARSE_SYNTAX, NULL, 0, 0, false, 0, NULL},
    /* addresses */
    {"FROM:<a@b", SMTP_PARSE_BAD_ADDRESS, NULL, 0, 0, false, 0, NULL},
    {"FROM:<a@@b>", SMTP_PARSE_BAD_ADDRESS, NULL, 0, 0, false, 0, NULL},
    {"FROM:<a b@c>", SMTP_PARSE_BAD_ADDRESS, NULL, 0, 0, false, 0, NULL},
    /* parameters */
    {"FROM:<a@b> SIZE=abc", SMTP_PARSE_BAD_PARAM, NULL, 0, 0, false, 0, NULL},
    {"FROM:<a@b> SIZE=-1", SMTP_PARSE_BAD_PARAM, NULL, 0, 0, false, 0, NULL},
    {"FROM:<a@b> SIZE=99999999999999999999999", SMTP_PARSE_BAD_PARAM, NULL, 0, 0, false, 0, NULL},
    {"FROM:<a@b> SIZE=1 SIZE=2", SMTP_PARSE_BAD_PARAM, NULL, 0, 0, false, 0, NULL},
    {"FROM:<a@b> BODY=BINARYMIME", SMTP_PARSE_BAD_PARAM, NULL, 0, 0, false, 0, NULL},
    {"FROM:<a@b> SMTPUTF8=yes", SMTP_PARSE_BAD_PARAM, NULL, 0, 0, false, 0, NULL},
    {"FROM:<a@b> RET=ALL", SMTP_PARSE_BAD_PARAM, NULL, 0, 0, false, 0, NULL},
    {"FROM:<a@b> ENVID=a+2", SMTP_PARSE_BAD_PARAM, NULL, 0, 0, false, 0, NULL},
    {"FROM:<a@b> ENVID=a+zz", SMTP_PARSE_BAD_PARAM, NULL, 0, 0, false, 0, NULL},
    {"FROM:<a@b> ENVID=a+2b", SMTP_PARSE_BAD_PARAM, NULL, 0, 0, false, 0, NULL},
    {"FROM:<a@b> XFOO", SMTP_PARSE_UNKNOWN_PARAM, NULL, 0, 0, false, 0, NULL},
    {"FROM:<a@b> XFOO=1", SMTP_PARSE_UNKNOWN_PARAM, NULL, 0, 0, false, 0, NULL},
};

UNIT_TEST(test_smtp_parse_mail)
{
	for (size_t i = 0; i < sizeof(mail_cases) / sizeof(mail_cases[0]); i++) {
		const struct mail_case *c = &mail_cases[i];
		struct address a;
		struct smtp_mail_params p;
		const char *err = NULL;
		enum smtp_parse_status st = smtp_parse_mail(c->args, strlen(c->args), &a, &p, &err);
		if (st != c->status)
			fprintf(stderr, "case %zu: %s\n", i, c->args);
		CHECK_INT(st, c->status);
		if (st != SMTP_PARSE_OK) {
			CHECK(err != NULL && err[0] != '\0');
			continue;
		}
		char out[ADDRESS_BUF_SIZE];
		address_format(&a, out);
		CHECK_STR(out, c->addr);
		CHECK_INT(p.size, c->size);
		CHECK_INT(p.body, c->body);
		CHECK_INT(p.smtputf8, c->smtputf8);
		CHECK_INT(p.ret, c->ret);
		CHECK_STR(p.envid, c->envid);
	}
}

struct rcpt_case {
	const char *args;
	enum smtp_parse_status status;
	const char *addr;
	unsigned notify;
	const char *orcpt_addr;
};

static const struct rcpt_case rcpt_cases[] = {
    {"TO:<u@local.example>", SMTP_PARSE_OK, "u@local.example", 0, ""},
    {"to: <u@x>", SMTP_PARSE_OK, "u@x", 0, ""},
    {"TO:<u@x> NOTIFY=NEVER", SMTP_PARSE_OK, "u@x", SMTP_NOTIFY_NEVER, ""},
    {"TO:<u@x> NOTIFY=SUCCESS,FAILURE,DELAY", SMTP_PARSE_OK, "u@x",
     SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY, ""},
    {"TO:<u@x> notify=failure ORCPT=rfc822;u+40x", SMTP_PARSE_OK, "u@x", SMTP_NOTIFY_FAILURE,
     "u@x"},
    {"TO:<u@x> ORCPT=utf-8;\xc3\xa9@x", SMTP_PARSE_OK, "u@x", 0, "\xc3\xa9@x"},
    /* source routes are dropped: only the mailbox counts */
    {"TO:<@a.example,@b.example:u@c.example>", SMTP_PARSE_OK, "u@c.example", 0, ""},
    /* '%', '!' and quotes are plain local-part characters */
    {"TO:<b%c@a.example>", SMTP_PARSE_OK, "b%c@a.example", 0, ""},
    {"TO:<c!b@a.example>", SMTP_PARSE_OK, "c!b@a.example", 0, ""},
    {"TO:<\"b@c\"@a.example>", SMTP_PARSE_OK, "\"b@c\"@a.example", 0, ""},
    {"TO:<>", SMTP_PARSE_BAD_ADDRESS, NULL, 0, NULL},
    {"TO:<Postmaster>", SMTP_PARSE_BAD_ADDRESS, NULL, 0, NULL},
    {"TO:<u@x> <v@y>", SMTP_PARSE_SYNTAX, NULL, 0, NULL},
    {"TO:<u@x>,<v@y>", SMTP_PARSE_SYNTAX, NULL, 0, NULL},
    {"TO:<u@x> NOTIFY=NEVER,SUCCESS", SMTP_PARSE_BAD_PARAM, NULL, 0, NULL},
    {"TO:<u@x> NOTIFY=SUCCESS,SUCCESS", SMTP_PARSE_BAD_PARAM, NULL, 0, NULL},
    {"TO:<u@x> NOTIFY=", SMTP_PARSE_SYNTAX, NULL, 0, NULL},
    {"TO:<u@x> NOTIFY=SUCCESS,", SMTP_PARSE_BAD_PARAM, NULL, 0, NULL},
    {"TO:<u@x> NOTIFY=SOMETIMES", SMTP_PARSE_BAD_PARAM, NULL, 0, NULL},
    {"TO:<u@x> ORCPT=u@x", SMTP_PARSE_BAD_PARAM, NULL, 0, NULL},
    {"TO:<u@x> ORCPT=x400;u", SMTP_PARSE_BAD_PARAM, NULL, 0, NULL},
    {"TO:<u@x> ORCPT=rfc822;", SMTP_PARSE_BAD_PARAM, NULL, 0, NULL},
    {"TO:<u@x> ORCPT=rfc822;a+4", SMTP_PARSE_BAD_PARAM, NULL, 0, NULL},
    {"TO:<u@x> ORCPT=rfc822;a ORCPT=rfc822;b", SMTP_PARSE_BAD_PARAM, NULL, 0, NULL},
    {"TO:<u@x> SIZE=10", SMTP_PARSE_UNKNOWN_PARAM, NULL, 0, NULL},
};

UNIT_TEST(test_smtp_parse_rcpt)
{
	for (size_t i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++) {
		const struct rcpt_case *c = &rcpt_cases[i];
		struct address a;
		struct smtp_rcpt_params p;
		const char *err = NULL;
		enum smtp_parse_status st = smtp_parse_rcpt(c->args, strlen(c->args), &a, &p, &err);
		if (st != c->status)
			fprintf(stderr, "case %zu: %s\n", i, c->args);
		CHECK_INT(st, c->status);
		if (st != SMTP_PARSE_OK)
			continue;
		char out[ADDRESS_BUF_SIZE];
		address_format(&a, out);
		CHECK_STR(out, c->addr);
		CHECK_INT(p.notify, c->notify);
		CHECK_STR(p.orcpt_addr, c->orcpt_addr);
	}
}

UNIT_TEST(test_smtp_parse_nul_refused)
{
	struct address a;
	struct smtp_mail_params p;
	struct smtp_rcpt_params rp;
	const char *err;
	CHECK(smtp_parse_mail("FROM:<a\0@b>", 11, &a, &p, &err) != SMTP_PARSE_OK);
	CHECK(smtp_parse_rcpt("TO:<a@b> NOTIFY=NEVER\0", 22, &a, &rp, &err) != SMTP_PARSE_OK);
	char verb[SMTP_VERB_MAX + 1];
	size_t off;
	CHECK(smtp_parse_verb("EH\0LO x", 7, verb, &off) < 0);
}

struct xtext_case {
	const char *in;
	int status;
	const char *out;
};

static const struct xtext_case xtext_cases[] = {
    {"abc", 0, "abc"},  {"a+2Bb", 0, "a+b"}, {"+3D+20+7E", 0, "= ~"}, {"", 0, ""},
    {"a b", -1, NULL},  {"a=b", -1, NULL},   {"a+", -1, NULL},        {"a+2", -1, NULL},
    {"a+2g", -1, NULL}, {"a+2b", -1, NULL},  {"\xc3\xa9", -1, NULL},
};

UNIT_TEST(test_smtp_xtext)
{
	for (size_t i = 0; i < sizeof(xtext_cases) / sizeof(xtext_cases[0]); i++) {
		char out[32];
		int r = smtp_xtext_decode(xtext_cases[i].in, strlen(xtext_cases[i].in), out,
		                          sizeof(out));
		CHECK_INT(r, xtext_cases[i].status);
		if (r == 0)
			CHECK_STR(out, xtext_cases[i].out);
	}
	char small[3];
	CHECK(smtp_xtext_decode("abc", 3, small, sizeof(small)) < 0);
}

struct bdat_case {
	const char *in;
	int status;
	uint64_t size;
	bool last;
};

static const struct bdat_case bdat_cases[] = {
    {"0", 0, 0, false},
    {"1000", 0, 1000, false},
    {"86 LAST", 0, 86, true},
    {"0 last", 0, 0, true},
    {"18446744073709551615", 0, UINT64_MAX, false},
    {"18446744073709551616", -1, 0, false},
    {"", -1, 0, false},
    {"-1", -1, 0, false},
    {"10 LAST x", -1, 0, false},
    {"10  LAST", -1, 0, false},
    {"10 FIRST", -1, 0, false},
    {"0x10", -1, 0, false},
    {"10 ", -1, 0, false},
};

UNIT_TEST(test_smtp_parse_bdat)
{
	for (size_t i = 0; i < sizeof(bdat_cases) / sizeof(bdat_cases[0]); i++) {
		uint64_t size = 0;
		bool last = false;
		int r = smtp_parse_bdat(bdat_cases[i].in, strlen(bdat_cases[i].in), &size, &last);
		CHECK_INT(r, bdat_cases[i].status);
		if (r == 0) {
			CHECK(size == bdat_cases[i].size);
			CHECK_INT(last, bdat_cases[i].last);
		}
	}
}

struct header_case {
	const char *msg;
	unsigned received;
	unsigned from_fields;
	const char *from;
};

static const struct header_case header_cases[] = {
    {"Received: a\r\nReceived: b\r\nFrom: x@y\r\n\r\nReceived: body\r\n", 2, 1, " x@y"},
    {"received:a\nRECEIVED : b\nFrom: A <a@b>,\n\tc@d\n\nFrom: body\n", 2, 1, " A <a@b>,\tc@d"},
    /* Blanks before the colon (RFC 5322 obs-optional): still From, as the
     * MIME parser reads it; blanks inside the name are another name. */
    {"FROM : victim@x\r\nFrom: a@b\r\n\r\n", 0, 2, " victim@x"},
    {"From\t: v@x\r\n\r\n", 0, 1, " v@x"},
    {"Fr om: v@x\r\nX-Long-Header-Name : y\r\n\r\n", 0, 0, ""},
    /* The same with an earlier line's bytes where the blank is: "F om"
     * must not read as "from" through "Organization"'s 'r'. */
    {"Organization: o\r\nF om: v@x\r\nFrom: a@b\r\n\r\n", 0, 1, " a@b"},
    {"Subject: Received: x\r\nX-From: y\r\n\r\n", 0, 0, ""},
    {"From: one@x\r\nFrom: two@x\r\n\r\n", 0, 2, " one@x"},
    {"\r\nReceived: x\r\n", 0, 0, ""},
    {"Received-SPF: pass\r\nReceivedX: 1\r\n\r\n", 0, 0, ""},
};

static void header_check(const struct header_case *c, size_t step)
{
	struct smtp_header_scan h;
	memset(&h, 0, sizeof(h));
	size_t len = strlen(c->msg);
	for (size_t i = 0; i < len; i += step)
		smtp_header_scan_feed(&h, c->msg + i, i + step <= len ? step : len - i);
	CHECK_INT(h.received, c->received);
	CHECK_INT(h.from_fields, c->from_fields);
	CHECK_STR(h.from, c->from);
}

UNIT_TEST(test_smtp_header_scan)
{
	for (size_t i = 0; i < sizeof(header_cases) / sizeof(header_cases[0]); i++) {
		header_check(&header_cases[i], strlen(header_cases[i].msg));
		header_check(&header_cases[i], 1); /* byte by byte */
		header_check(&header_cases[i], 3);
	}
}

UNIT_TEST(test_smtp_header_scan_long_from)
{
	struct smtp_header_scan h;
	memset(&h, 0, sizeof(h));
	smtp_header_scan_feed(&h, "From: ", 6);
	for (int i = 0; i < 5000; i++)
		smtp_header_scan_feed(&h, "a", 1);
	CHECK(h.from_cut);
	CHECK_INT(h.from_len, SMTP_FROM_FIELD_MAX);
}

struct alist_case {
	const char *in;
	int count;
	const char *joined; /* addresses joined with '|' */
};

static const struct alist_case alist_cases[] = {
    {"a@b", 1, "a@b"},
    {" John Doe <john@x.example>", 1, "john@x.example"},
    {"\"Doe, John\" <john@x>, jane@y", 2, "john@x|jane@y"},
    {"a@b (comment, with comma), (c) c@d", 2, "a@b|c@d"},
    {"team: a@b, c@d;, e@f", 3, "a@b|c@d|e@f"},
    {"undisclosed-recipients:;", 0, ""},
    {"<@relay:u@v>", 1, "u@v"},
    {"\"a b\"@c", 1, "\"a b\"@c"},
    {"x <a@[1.2.3.4]>", 1, "a@[1.2.3.4]"},
    {"x <a@b", -1, NULL},
    {"x <a@b> <c@d>", -1, NULL},
    {"a@b (unterminated", -1, NULL},
    {"\"unterminated <a@b>", -1, NULL},
    {"a@b>", -1, NULL},
};

static int alist_collect(void *ctx, const char *addr, size_t len)
{
	struct buf *b = ctx;
	if (b->len > 0)
		buf_append_char(b, '|');
	buf_append(b, addr, len);
	return 0;
}

UNIT_TEST(test_smtp_address_list)
{
	for (size_t i = 0; i < sizeof(alist_cases) / sizeof(alist_cases[0]); i++) {
		struct buf b;
		buf_init(&b, 4096);
		int n = smtp_parse_address_list(alist_cases[i].in, strlen(alist_cases[i].in),
		                                alist_collect, &b);
		if (n != alist_cases[i].count)
			fprintf(stderr, "case %zu: %s\n", i, alist_cases[i].in);
		CHECK_INT(n, alist_cases[i].count);
		if (n >= 0)
			CHECK_STR(buf_cstr(&b), alist_cases[i].joined);
		buf_free(&b);
	}
}

UNIT_TEST(test_smtp_helo_sanitize)
{
	char out[64];
	smtp_helo_sanitize("mail.example.org", out, sizeof(out));
	CHECK_STR(out, "mail.example.org");
	smtp_helo_sanitize("[IPv6:::1]", out, sizeof(out));
	CHECK_STR(out, "[IPv6:::1]");
	smtp_helo_sanitize("a(b)\r\nX: y", out, sizeof(out));
	CHECK_STR(out, "a?b???X:?y");
	smtp_helo_sanitize("abcdefgh", out, 4);
	CHECK_STR(out, "abc");
}

struct reply_case {
	unsigned code;
	const char *esc;
	bool last;
	const char *text;
	const char *out;
};

static const struct reply_case reply_cases[] = {
    {250, "2.1.0", true, "Ok", "250 2.1.0 Ok\r\n"},
    {250, NULL, false, "PIPELINING", "250-PIPELINING\r\n"},
    {354, NULL, true, "Go", "354 Go\r\n"},
    {550, "5.1.1", true, "<a\r\n250 ok>", "550 5.1.1 <a\\x0D\\x0A250 ok>\r\n"},
    {501, "5.5.4", true, "\xc3\xa9\x01", "501 5.5.4 \\xC3\\xA9\\x01\r\n"},
    {221, "2.0.0", true, "", "221 2.0.0\r\n"},
};

UNIT_TEST(test_smtp_reply_format)
{
	for (size_t i = 0; i < sizeof(reply_cases) / sizeof(reply_cases[0]); i++) {
		const struct reply_case *c = &reply_cases[i];
		struct buf b;
		buf_init(&b, 4096);
		smtp_reply_format(&b, c->code, c->esc, c->last, c->text);
		CHECK_STR(buf_cstr(&b), c->out);
		buf_free(&b);
	}
	char longtext[2000];
	memset(longtext, 'x', sizeof(longtext) - 1);
	longtext[sizeof(longtext) - 1] = '\0';
	struct buf b;
	buf_init(&b, 8192);
	smtp_reply_format(&b, 250, "2.0.0", true, longtext);
	CHECK(b.len < 520);
	CHECK(strstr(b.data, "...\r\n") != NULL);
	buf_free(&b);
}
