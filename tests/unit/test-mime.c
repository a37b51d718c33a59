/* test-mime.c - the MIME parser: tables of {input, expected}, the RFC 3501
 * examples, and the corpus in corpus/mime fed whole, byte by byte and in
 * random chunks. */
#include "unit.h"

#include "buf.h"
#include "mime.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---------------------------------------------------------- */

static struct mime_message *parse_str(const char *s)
{
	return mime_parse(s, strlen(s), NULL);
}

/* Feeds data in chunks of 1..maxchunk bytes (1: byte by byte). */
static struct mime_message *parse_chunked(const char *data, size_t len, size_t maxchunk,
                                          unsigned seed, const struct mime_limits *lim)
{
	struct mime_parser *p = mime_parser_new(lim);
	size_t i = 0;
	while (i < len) {
		seed = seed * 1103515245u + 12345u;
		size_t n = maxchunk <= 1 ? 1 : 1 + (seed >> 8) % maxchunk;
		if (n > len - i)
			n = len - i;
		mime_parser_feed(p, data + i, n);
		i += n;
	}
	return mime_parser_finish(&p);
}

static bool same_str(const char *what, const char *a, const char *b)
{
	if (strcmp(a, b) == 0)
		return true;
	fprintf(stderr, "  %s differs:\n    %.300s\n    %.300s\n", what, a, b);
	return false;
}

static bool same_message(const struct mime_message *a, const struct mime_message *b)
{
	bool ok = same_str("envelope", a->envelope, b->envelope) &&
	          same_str("body", a->body, b->body) &&
	          same_str("bodystructure", a->bodystructure, b->bodystructure) &&
	          same_str("subject", a->subject, b->subject) &&
	          same_str("from", a->from, b->from) && same_str("to", a->to, b->to) &&
	          same_str("cc", a->cc, b->cc) && same_str("headers", a->headers, b->headers) &&
	          same_str("search", a->search_text, b->search_text) &&
	          same_str("preview", a->preview, b->preview);
	ok = ok && a->nparts == b->nparts && a->size == b->size &&
	     a->header_size == b->header_size && a->has_date == b->has_date && a->date == b->date &&
	     a->truncated == b->truncated;
	for (size_t k = 0; ok && k < a->nparts; k++)
		ok = memcmp(&a->parts[k], &b->parts[k], sizeof(a->parts[k])) == 0;
	return ok;
}

/* Every structural promise of the part table. */
static bool parts_sane(const struct mime_message *m)
{
	if (m->nparts < 2 || m->parts[0].section[0] != '\0' || m->parts[0].parent != -1)
		return false;
	for (size_t k = 0; k < m->nparts; k++) {
		const struct mime_part *pt = &m->parts[k];
		if (pt->header_start + pt->header_len > m->size ||
		    pt->body_start + pt->body_len > m->size ||
		    pt->header_start + pt->header_len > pt->body_start ||
		    pt->inner_header_len > pt->body_len)
			return false;
		if (k > 0 && (pt->parent < 0 || (size_t)pt->parent >= k))
			return false;
		if (k > 0) {
			const struct mime_part *par = &m->parts[pt->parent];
			/* Children lie inside their parent's body (or, for the
			 * "1" of a non-multipart message, are that body). */
			if (pt->body_start < par->body_start ||
			    pt->body_start + pt->body_len > par->body_start + par->body_len)
				return false;
		}
		if (mime_part_find(m->parts, m->nparts, pt->section) != (int)k)
			return false;
	}
	return true;
}

static bool pack_roundtrip(const struct mime_message *m)
{
	struct buf b;
	struct mime_part *parts;
	size_t n;
	buf_init(&b, BUF_NO_LIMIT);
	mime_parts_pack(m->parts, m->nparts, &b);
	int r = mime_parts_unpack(b.data, b.len, m->size, &parts, &n);
	bool ok = r == 0 && n == m->nparts && memcmp(parts, m->parts, n * sizeof(*parts)) == 0;
	free(parts);
	buf_free(&b);
	return ok;
}

/* ---- RFC 3501 section 7.4.2 example -------------------------------------- */

static char *rfc3501_message(void)
{
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	buf_append_str(&b, "MIME-Version: 1.0\r\n"
	                   "Content-Type: MULTIPART/MIXED; BOUNDARY=\"x\"\r\n\r\n"
	                   "--x\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
	                   "Content-Transfer-Encoding: 7BIT\r\n\r\n");
	/* 1152 octets in 23 lines: the CRLF before the boundary is not body. */
	for (int i = 0; i < 22; i++)
		buf_printf(&b, "%048d\r\n", i);
	buf_printf(&b, "%052d\r\n", 22);
	buf_append_str(&b, "--x\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII; NAME=cc.diff\r\n"
	                   "Content-ID: <960723163407.20117h@cac.washington.edu>\r\n"
	                   "Content-Description: Compiler diff\r\n"
	                   "Content-Transfer-Encoding: BASE64\r\n\r\n");
	for (int i = 0; i < 72; i++)
		buf_append_str(&b,
		               "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\r\n");
	for (int i = 0; i < 90; i++)
		buf_append_char(&b, 'Q');
	buf_append_str(&b, "\r\n--x--\r\n");
	return buf_steal(&b, NULL);
}

UNIT_TEST(mime_rfc3501_body_example)
{
	char *msg = rfc3501_message();
	struct mime_message *m = parse_str(msg);
	CHECK_STR(
	    m->body,
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23)"
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc.diff\") "
	    "\"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"BASE64\" 4554 73) "
	    "\"MIXED\")");
	CHECK_STR(
	    m->bodystructure,
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23 NIL NIL NIL "
	    "NIL)"
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc.diff\") "
	    "\"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"BASE64\" 4554 73"
	    " NIL NIL NIL NIL) \"MIXED\" (\"BOUNDARY\" \"x\") NIL NIL NIL)");
	CHECK_INT(m->nparts, 3);
	mime_message_free(&m);
	free(msg);
}

/* RFC 9051 7.5.2: ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92) */
UNIT_TEST(mime_rfc9051_single_part_example)
{
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	buf_append_str(&b, "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
	                   "Content-Transfer-Encoding: 7BIT\r\n\r\n");
	for (int i = 0; i < 91; i++)
		buf_printf(&b, "%031d\r\n", i);
	buf_printf(&b, "%023d\r\n", 91);
	struct mime_message *m = mime_parse(b.data, b.len, NULL);
	CHECK_STR(m->body,
	          "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92)");
	CHECK_INT(m->parts[1].body_len, 3028);
	mime_message_free(&m);
	buf_free(&b);
}

/* RFC 3501 7.4.2 ENVELOPE example (the header it describes). */
UNIT_TEST(mime_rfc3501_envelope_example)
{
	struct mime_message *m =
	    parse_str("Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
	              "From: Terry Gray <gray@cac.washington.edu>\r\n"
	              "Subject: IMAP4rev1 WG mtg summary and minutes\r\n"
	              "To: imap@cac.washington.edu\r\n"
	              "cc: minutes@CNRI.Reston.VA.US,\r\n John Klensin <KLENSIN@MIT.EDU>\r\n"
	              "Message-Id: <B27397-0100000@cac.washington.edu>\r\n"
	              "MIME-Version: 1.0\r\n"
	              "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n"
	              "Hello\r\n");
	CHECK_STR(
	    m->envelope,
	    "(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary and minutes\" "
	    "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
	    "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
	    "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
	    "((NIL NIL \"imap\" \"cac.washington.edu\")) "
	    "((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")"
	    "(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL "
	    "\"<B27397-0100000@cac.washington.edu>\")");
	CHECK_STR(m->body, "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7bit\" 7 1)");
	CHECK(m->has_date);
	CHECK_INT(m->date, 837595405);
	mime_message_free(&m);
}

/* ---- BODY / BODYSTRUCTURE table -------------------------------------- */

static const struct {
	const char *in;
	const char *body;
	const char *bodystructure;
} bs_cases[] = {
    /* No Content-Type: text/plain; charset us-ascii. */
    {"Subject: x\r\n\r\nhello\r\n",
     "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 1)",
     "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 1 NIL NIL NIL NIL)"},
    /* Bare LF, a partial last line. */
    {"Content-Type: text/plain; format=flowed\n\na\nb",
     "(\"text\" \"plain\" (\"charset\" \"us-ascii\" \"format\" \"flowed\") NIL NIL \"7bit\" 3 2)",
     NULL},
    /* Non-text: no line count, params NIL. */
    {"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n",
     "(\"application\" \"octet-stream\" NIL NIL NIL \"base64\" 6)",
     "(\"application\" \"octet-stream\" NIL NIL NIL \"base64\" 6 NIL NIL NIL NIL)"},
    /* Disposition, language list, location, MD5. */
    {"Content-Type: text/plain; charset=utf-8\r\nContent-Disposition: attachment; filename=\"a "
     "b.txt\"\r\n"
     "Content-Language: en, fr\r\nContent-Location: http://x.test/\r\n a\r\nContent-MD5: "
     "abc=\r\n\r\nx\r\n",
     NULL,
     "(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 3 1 \"abc=\" (\"attachment\" "
     "(\"filename\" \"a b.txt\")) (\"en\" \"fr\") \"http://x.test/a\")"},
    /* Multipart with preamble and epilogue; the CRLF before each
     * boundary is not part of the body. */
    {"Content-Type: multipart/mixed; boundary=\"=_b\"\r\n\r\npre\r\n--=_b\r\n\r\none\r\n"
     "--=_b\r\nContent-Type: text/html\r\n\r\n<p>two</p>\r\n\r\n--=_b--\r\nepi\r\n",
     "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 1)"
     "(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 12 1) \"mixed\")",
     "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 1 NIL NIL NIL NIL)"
     "(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 12 1 NIL NIL NIL NIL) "
     "\"mixed\" "
     "(\"boundary\" \"=_b\") NIL NIL NIL)"},
    /* RFC 2231 continuations joined; non-ASCII sent as name*. */
    {"Content-Type: application/x-y; name*0=\"lo\"; name*1=\"ng\"; "
     "title*=iso-8859-1'en'%E9t%E9\r\n\r\n",
     "(\"application\" \"x-y\" (\"name\" \"long\" \"title*\" \"utf-8''%C3%A9t%C3%A9\") NIL NIL "
     "\"7bit\" 0)",
     NULL},
    /* Boundary never seen: an empty text/plain stands in. */
    {"Content-Type: multipart/mixed; boundary=zz\r\n\r\nnothing\r\n",
     "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) \"mixed\")", NULL},
    /* Multipart without a boundary: opaque text/plain. */
    {"Content-Type: multipart/mixed\r\n\r\n--a\r\n",
     "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 1)", NULL},
    /* message/rfc822 with envelope, body and lines. */
    {"Content-Type: message/rfc822\r\n\r\nSubject: in\r\nFrom: a@b.c\r\n\r\nbody\r\n",
     "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 34 (NIL \"in\" ((NIL NIL \"a\" \"b.c\")) "
     "((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) NIL NIL NIL NIL NIL) "
     "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1) 4)",
     NULL},
    /* 8-bit description: a literal. */
    {"Content-Description: caf\xc3\xa9\r\n\r\n",
     "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL {5}\r\ncaf\xc3\xa9 \"7bit\" 0 0)", NULL},
    /* Quotes and backslashes are escaped. */
    {"Content-Type: text/plain; name=\"a\\\"b\\\\c\"\r\n\r\n",
     "(\"text\" \"plain\" (\"charset\" \"us-ascii\" \"name\" \"a\\\"b\\\\c\") NIL NIL \"7bit\" 0 "
     "0)",
     NULL},
};

UNIT_TEST(mime_bodystructure_table)
{
	for (size_t k = 0; k < sizeof(bs_cases) / sizeof(bs_cases[0]); k++) {
		const char *in = bs_cases[k].in;
		struct mime_message *m = parse_str(in);
		if (bs_cases[k].body != NULL)
			CHECK_STR(m->body, bs_cases[k].body);
		if (bs_cases[k].bodystructure != NULL)
			CHECK_STR(m->bodystructure, bs_cases[k].bodystructure);
		struct mime_message *m1 = parse_chunked(in, strlen(in), 1, 0, NULL);
		CHECK(same_message(m, m1));
		CHECK(parts_sane(m));
		mime_message_free(&m);
		mime_message_free(&m1);
	}
}

/* ---- ENVELOPE table --------------------------------------------------- */

static const struct {
	const char *in;
	const char *envelope;
} env_cases[] = {
    {"", "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"},
    /* Sender and Reply-To given; a group; a comment as name. */
    {"From: a@x.test\r\nSender: s@x.test\r\nReply-To: r@x.test (Replies)\r\n"
     "To: Friends: b@x.test, \"C, D\" <c@x.test>;\r\nBcc: undisclosed-recipients:;\r\n\r\n",
     "(NIL NIL ((NIL NIL \"a\" \"x.test\")) ((NIL NIL \"s\" \"x.test\")) "
     "((\"Replies\" NIL \"r\" \"x.test\")) ((NIL NIL \"Friends\" NIL)(NIL NIL \"b\" \"x.test\")"
     "(\"C, D\" NIL \"c\" \"x.test\")(NIL NIL NIL NIL)) NIL ((NIL NIL \"undisclosed-recipients\" "
     "NIL)"
     "(NIL NIL NIL NIL)) NIL NIL)"},
    /* Route dropped; no domain; encoded name left as written. */
    {"From: =?utf-8?q?J=C3=B6?= <@relay.test:jo@x.test>, nodomain\r\nIn-Reply-To: <p@x>\r\n\r\n",
     "(NIL NIL ((\"=?utf-8?q?J=C3=B6?=\" NIL \"jo\" \"x.test\")(NIL NIL \"nodomain\" "
     "\"MISSING_DOMAIN\")) "
     "((\"=?utf-8?q?J=C3=B6?=\" NIL \"jo\" \"x.test\")(NIL NIL \"nodomain\" \"MISSING_DOMAIN\")) "
     "((\"=?utf-8?q?J=C3=B6?=\" NIL \"jo\" \"x.test\")(NIL NIL \"nodomain\" \"MISSING_DOMAIN\")) "
     "NIL NIL NIL \"<p@x>\" NIL)"},
    /* Folded subject, raw 8-bit subject as a literal, empty To. */
    {"Subject: one\r\n two\r\nTo:\r\n\r\n", "(NIL \"one two\" NIL NIL NIL NIL NIL NIL NIL NIL)"},
    {"Subject: \xc3\xa9t\xc3\xa9\r\n\r\n",
     "(NIL {5}\r\n\xc3\xa9t\xc3\xa9 NIL NIL NIL NIL NIL NIL NIL NIL)"},
};

UNIT_TEST(mime_envelope_table)
{
	for (size_t k = 0; k < sizeof(env_cases) / sizeof(env_cases[0]); k++) {
		struct mime_message *m = parse_str(env_cases[k].in);
		CHECK_STR(m->envelope, env_cases[k].envelope);
		mime_message_free(&m);
	}
}

UNIT_TEST(mime_decoded_fields)
{
	struct mime_message *m =
	    parse_str("From: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>\r\n"
	              "To: a@x.test, \"B B\" <b@x.test>\r\nCc: grp: c@x.test;\r\n"
	              "Subject: =?utf-8?B?w6k=?= =?utf-8?B?w6k=?= x\r\n"
	              "Message-ID: <id@x>\r\nReferences: <r1@x>\r\n <r2@x>\r\n\r\n");
	CHECK_STR(m->from, "Andr\xc3\xa9 Pirard <PIRARD@vm1.ulg.ac.be>");
	CHECK_STR(m->to, "a@x.test, B B <b@x.test>");
	CHECK_STR(m->cc, "c@x.test");
	CHECK_STR(m->subject, "\xc3\xa9\xc3\xa9 x");
	CHECK_STR(m->message_id, "<id@x>");
	CHECK_STR(m->references, "<r1@x> <r2@x>");
	CHECK_STR(m->bcc, "");
	CHECK(strstr(m->headers, "Subject: \xc3\xa9\xc3\xa9 x\n") != NULL);
	CHECK(strstr(m->headers, "References: <r1@x> <r2@x>\n") != NULL);
	CHECK(strncmp(m->search_text, "\xc3\xa9\xc3\xa9 x\n", 6) == 0);
	mime_message_free(&m);
}

/* ---- RFC 2047 --------------------------------------------------------- */

static const struct {
	const char *in;
	const char *out;
} hdr_cases[] = {
    {"plain text", "plain text"},
    {"=?ISO-8859-1?Q?a?=", "a"},
    {"=?ISO-8859-1?Q?a?= b", "a b"},
    {"=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=", "ab"},
    {"=?ISO-8859-1?Q?a?=  \r\n  =?ISO-8859-1?Q?b?=", "ab"},
    {"=?ISO-8859-1?Q?a_b?=", "a b"},
    {"=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=", "a b"},
    {"=?UTF-8?B?w6k=?=", "\xc3\xa9"},
    /* A character split across two words. */
    {"=?UTF-8?B?4oI=?= =?UTF-8?B?rA==?=", "\xe2\x82\xac"},
    {"=?utf-8*en?q?hi?=", "hi"},
    {"=?Shift_JIS?B?gqCCog==?=", "\xe3\x81\x82\xe3\x81\x84"},
    {"=?iso-2022-jp?B?GyRCJDIbKEI=?=", "\xe3\x81\x92"},
    {"Keld J=?ISO-8859-1?Q?=F8?=rn", "Keld J\xc3\xb8rn"},
    {"=?bogus?Q?x?=", "x"},
    {"=?broken", "=?broken"},
    {"caf\xe9", "caf\xc3\xa9"},     /* raw Latin-1 */
    {"caf\xc3\xa9", "caf\xc3\xa9"}, /* raw UTF-8 kept */
    {"=?UTF-8?Q?a=0Ab?=", "a b"},   /* no LF in a decoded header */
};

UNIT_TEST(mime_decode_header_table)
{
	for (size_t k = 0; k < sizeof(hdr_cases) / sizeof(hdr_cases[0]); k++) {
		struct buf b;
		buf_init(&b, BUF_NO_LIMIT);
		mime_decode_header(hdr_cases[k].in, strlen(hdr_cases[k].in), &b);
		CHECK_STR(buf_cstr(&b), hdr_cases[k].out);
		buf_free(&b);
	}
}

/* ---- dates ------------------------------------------------------------ */

static const struct {
	const char *in;
	long long t; /* -1: must fail */
} date_cases[] = {
    {"Tue, 1 Jul 2003 10:52:37 +0200", 1057049557},
    {"1 Jul 2003 10:52:37 +0200", 1057049557},
    {"Tue,  1 Jul 2003 08:52:37 GMT", 1057049557},
    {"Tue, 01 Jul 03 08:52:37 UT", 1057049557},
    {"Tue, 1 Jul 103 08:52:37 Z", 1057049557},
    {"Tue, 1 Jul 2003 04:52:37 EDT", 1057049557},
    {"Tue, 1 Jul 2003 01:52:37 PDT", 1057049557},
    {"Tue, 1 Jul 2003 08:52 +0000", 1057049520},
    {"Tue, 1 Jul 2003 08:52:37 -0000 (UTC)", 1057049557},
    {"Tue (day) , 1 (one) Jul 2003 08:52:37 +0000", 1057049557},
    {"Tue, 1 July 2003 08:52:37", 1057049557},
    {"Tue, 1 Jul 2003 08:52:37 A", 1057049557},
    {"Thu, 1 Jan 1970 00:00:00 +0000", 0},
    {"Sat, 29 Feb 2020 12:00:00 +0000", 1582977600},
    {"Tue Jul  1 08:52:37 2003", 1057049557},
    {"1-Jul-2003 08:52:37 +0000", 1057049557},
    {"Mon, 31 Dec 1999 23:59:60 +0000", 946684800},
    {"Tue, 1 Jul 2003 08:52:37 +01:00", 1057045957},
    {"Fri, 29 Feb 2019 12:00:00 +0000", -1},
    {"Tue, 32 Jul 2003 08:52:37 +0000", -1},
    {"Tue, 1 Foo 2003 08:52:37 +0000", -1},
    {"Tue, 1 Jul 2003 25:52:37 +0000", -1},
    {"", -1},
    {"garbage", -1},
};

UNIT_TEST(mime_parse_date_table)
{
	for (size_t k = 0; k < sizeof(date_cases) / sizeof(date_cases[0]); k++) {
		time_t t = 0;
		int r = mime_parse_date(date_cases[k].in, &t);
		if (date_cases[k].t < 0) {
			if (r != -1)
				unit_fail(__FILE__, __LINE__, "date \"%s\" should fail",
				          date_cases[k].in);
			continue;
		}
		if (r != 0 || (long long)t != date_cases[k].t)
			unit_fail(__FILE__, __LINE__, "date \"%s\": r=%d t=%lld expected %lld",
			          date_cases[k].in, r, (long long)t, date_cases[k].t);
	}
}

/* ---- transfer decoders and charsets ------------------------------------- */

static const struct {
	const char *in;
	const char *out;
	int r;
} b64_cases[] = {
    {"aGVsbG8=", "hello", 0},
    {"aGVs\r\nbG8=\r\n", "hello", 0},
    {"aGVsbA==", "hell", 0},
    {"", "", 0},
    {"aGVsbG8", "hello", -1},   /* missing padding */
    {"aGV*sbG8=", "hello", -1}, /* invalid byte skipped */
    {"a", "", -1},
};

static const struct {
	const char *in;
	const char *out;
	int r;
} qp_cases[] = {
    {"caf=C3=A9", "caf\xc3\xa9", 0},
    {"soft=\r\nbreak", "softbreak", 0},
    {"soft=\nbreak", "softbreak", 0},
    {"soft= \t\r\nbreak", "softbreak", 0},
    {"lower=c3=a9", "lower\xc3\xa9", 0},
    {"bad=ZZ", "bad=ZZ", -1},
    {"half=4", "half=4", -1},
    {"end=", "end", 0},
};

UNIT_TEST(mime_transfer_decoders)
{
	for (size_t k = 0; k < sizeof(b64_cases) / sizeof(b64_cases[0]); k++) {
		struct buf b;
		buf_init(&b, BUF_NO_LIMIT);
		int r = mime_decode_base64(b64_cases[k].in, strlen(b64_cases[k].in), &b);
		CHECK_INT(r, b64_cases[k].r);
		CHECK_STR(buf_cstr(&b), b64_cases[k].out);
		buf_free(&b);
	}
	for (size_t k = 0; k < sizeof(qp_cases) / sizeof(qp_cases[0]); k++) {
		struct buf b;
		buf_init(&b, BUF_NO_LIMIT);
		int r = mime_decode_qp(qp_cases[k].in, strlen(qp_cases[k].in), &b);
		CHECK_INT(r, qp_cases[k].r);
		CHECK_STR(buf_cstr(&b), qp_cases[k].out);
		buf_free(&b);
	}
}

UNIT_TEST(mime_to_utf8_charsets)
{
	static const struct {
		const char *cs, *in, *out;
	} c[] = {
	    {"iso-8859-1", "caf\xe9", "caf\xc3\xa9"},
	    {"windows-1252", "\x93q\x94", "\xe2\x80\x9cq\xe2\x80\x9d"},
	    {"ISO-8859-15", "\xa4", "\xe2\x82\xac"},
	    {"koi8-r", "\xd0\xd2\xc9", "\xd0\xbf\xd1\x80\xd0\xb8"},
	    {"utf-8", "ok\xff", "ok\xef\xbf\xbd"},
	    {"no-such-charset", "a\xc3\xa9\xfe", "a\xc3\xa9\xef\xbf\xbd"},
	    {"", "plain", "plain"},
	    {"shift_jis", "\x82\xa0\x82", "\xe3\x81\x82\xef\xbf\xbd"},
	};
	for (size_t k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
		struct buf b;
		buf_init(&b, BUF_NO_LIMIT);
		mime_to_utf8(c[k].cs, c[k].in, strlen(c[k].in), &b);
		CHECK_STR(buf_cstr(&b), c[k].out);
		buf_free(&b);
	}
}

/* ---- part table ------------------------------------------------------- */

static const char offsets_msg[] = "Subject: t\r\n"                                /*   0 */
                                  "Content-Type: multipart/mixed; boundary=b\r\n" /*  12 */
                                  "\r\n"                                          /*  55 */
                                  "--b\r\n"                                       /*  57 */
                                  "Content-Type: text/plain\r\n"                  /*  62 */
                                  "\r\n"                                          /*  88 */
                                  "one\r\n"                                       /*  90 */
                                  "--b\r\n"                                       /*  95 */
                                  "Content-Type: message/rfc822\r\n"              /* 100 */
                                  "\r\n"                                          /* 130 */
                                  "Subject: in\r\n"                               /* 132 */
                                  "\r\n"                                          /* 145 */
                                  "inner\r\n"                                     /* 147 */
                                  "--b--\r\n";                                    /* 154 */

UNIT_TEST(mime_part_offsets)
{
	static const struct {
		const char *section;
		int parent;
		unsigned flags;
		uint64_t hs, hl, bs, bl, lines, inner;
	} want[] = {
	    {"", -1, MIME_PART_MULTIPART, 0, 57, 57, 104, 11, 0},
	    {"1", 0, MIME_PART_TEXT, 62, 28, 90, 3, 1, 0},
	    {"2", 0, MIME_PART_MESSAGE, 100, 32, 132, 20, 3, 15},
	    {"2.1", 2, MIME_PART_TEXT, 132, 15, 147, 5, 1, 0},
	};
	struct mime_message *m = parse_str(offsets_msg);
	CHECK_INT(m->nparts, 4);
	CHECK_INT(m->size, sizeof(offsets_msg) - 1);
	CHECK_INT(m->header_size, 57);
	for (size_t k = 0; k < 4 && k < m->nparts; k++) {
		const struct mime_part *pt = &m->parts[k];
		CHECK_STR(pt->section, want[k].section);
		CHECK_INT(pt->parent, want[k].parent);
		CHECK_INT(pt->flags, want[k].flags);
		CHECK_INT(pt->header_start, want[k].hs);
		CHECK_INT(pt->header_len, want[k].hl);
		CHECK_INT(pt->body_start, want[k].bs);
		CHECK_INT(pt->body_len, want[k].bl);
		CHECK_INT(pt->body_lines, want[k].lines);
		CHECK_INT(pt->inner_header_len, want[k].inner);
	}
	CHECK_STR(m->parts[1].type, "text");
	CHECK_STR(m->parts[2].subtype, "rfc822");
	CHECK_INT(mime_part_find(m->parts, m->nparts, ""), 0);
	CHECK_INT(mime_part_find(m->parts, m->nparts, "2.1"), 3);
	CHECK_INT(mime_part_find(m->parts, m->nparts, "3"), -1);
	CHECK_INT(mime_part_find(m->parts, m->nparts, "02"), -1);
	CHECK_INT(mime_part_find(m->parts, m->nparts, "2."), -1);
	CHECK_INT(mime_part_find(m->parts, m->nparts, ".2"), -1);
	CHECK_INT(mime_part_find(m->parts, m->nparts, "0"), -1);
	mime_message_free(&m);
}

UNIT_TEST(mime_single_part_is_part_one)
{
	struct mime_message *m =
	    parse_str("Subject: x\r\nContent-Type: text/html\r\n\r\n<b>hi</b>\r\n");
	CHECK_INT(m->nparts, 2);
	CHECK_STR(m->parts[1].section, "1");
	CHECK_INT(m->parts[1].header_start, 0);
	CHECK_INT(m->parts[1].header_len, m->parts[0].header_len);
	CHECK_INT(m->parts[1].body_start, m->parts[0].body_start);
	CHECK_STR(m->parts[1].subtype, "html");
	CHECK_STR(m->preview, "hi");
	mime_message_free(&m);
}

UNIT_TEST(mime_pack_unpack)
{
	struct mime_message *m = parse_str(offsets_msg);
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	mime_parts_pack(m->parts, m->nparts, &b);
	CHECK(pack_roundtrip(m));
	struct mime_part *parts;
	size_t n;
	/* Any flipped byte, any truncation, a smaller message: refused. */
	for (size_t i = 0; i < b.len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			b.data[i] ^= (char)(1 << bit);
			if (mime_parts_unpack(b.data, b.len, m->size, &parts, &n) == 0) {
				unit_fail(__FILE__, __LINE__, "flip at %zu bit %d accepted", i,
				          bit);
				free(parts);
			}
			b.data[i] ^= (char)(1 << bit);
		}
	}
	for (size_t l = 0; l < b.len; l++)
		CHECK_INT(mime_parts_unpack(b.data, l, m->size, &parts, &n), -1);
	CHECK_INT(mime_parts_unpack(b.data, b.len, m->size - 1, &parts, &n), -1);
	CHECK_INT(mime_parts_unpack(b.data, b.len, m->size, &parts, &n), 0);
	free(parts);
	buf_free(&b);
	mime_message_free(&m);
}

/* ---- limits and broken input ---------------------------------------------- */

UNIT_TEST(mime_limits_depth_and_parts)
{
	struct mime_limits lim;
	mime_limits_default(&lim);
	lim.max_depth = 2;
	const char *deep =
	    "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n"
	    "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
	    "Content-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n\r\nx\r\n--c--\r\n"
	    "--b--\r\n--a--\r\n";
	struct mime_message *m = mime_parse(deep, strlen(deep), &lim);
	CHECK(m->truncated);
	CHECK_INT(m->nparts, 3); /* "", "1", "1.1" (opaque) */
	CHECK_STR(m->parts[2].type, "text");
	CHECK(parts_sane(m));
	mime_message_free(&m);

	lim.max_depth = 64;
	lim.max_parts = 3;
	const char *many =
	    "Content-Type: multipart/mixed; boundary=a\r\n\r\n"
	    "--a\r\n\r\n1\r\n--a\r\n\r\n2\r\n--a\r\n\r\n3\r\n--a\r\n\r\n4\r\n--a--\r\n";
	m = mime_parse(many, strlen(many), &lim);
	CHECK(m->truncated);
	CHECK_INT(m->nparts, 4);
	CHECK(parts_sane(m));
	mime_message_free(&m);
}

UNIT_TEST(mime_header_limit)
{
	struct mime_limits lim;
	mime_limits_default(&lim);
	lim.max_header_bytes = 40;
	const char *in =
	    "Subject: short\r\nX-Long: 0123456789012345678901234567890\r\n\r\nbody\r\n";
	struct mime_message *m = mime_parse(in, strlen(in), &lim);
	CHECK(m->truncated);
	CHECK_INT(m->header_size, 16);
	CHECK_STR(m->subject, "short");
	CHECK_INT(m->parts[0].body_start, 16);
	struct mime_message *m1 = parse_chunked(in, strlen(in), 1, 0, &lim);
	CHECK(same_message(m, m1));
	mime_message_free(&m);
	mime_message_free(&m1);
}

/* A 1 MiB header line (made here rather than kept in the corpus): the
 * header ends before it, the rest is body, whole or byte by byte. */
UNIT_TEST(mime_huge_header_line)
{
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	buf_append_str(&b, "Subject: huge\r\nX-Huge: ");
	for (int i = 0; i < 1024 * 1024 / 64 + 2; i++)
		buf_append_str(&b,
		               "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	buf_append_str(&b, "\r\nFrom: after@example.com\r\n\r\nbody\r\n");
	struct mime_message *m = mime_parse(b.data, b.len, NULL);
	struct mime_message *m1 = parse_chunked(b.data, b.len, 1, 0, NULL);
	CHECK(m->truncated);
	CHECK_STR(m->subject, "huge");
	CHECK_STR(m->from, "");
	CHECK_INT(m->header_size, 15);
	CHECK_INT(m->parts[1].body_len, b.len - 15);
	CHECK(same_message(m, m1));
	CHECK(parts_sane(m));
	mime_message_free(&m);
	mime_message_free(&m1);
	buf_free(&b);
}

UNIT_TEST(mime_preview_and_search)
{
	struct mime_limits lim;
	mime_limits_default(&lim);
	lim.preview_chars = 10;
	lim.max_search_text = 40;
	const char *in = "Subject: s\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
	                 "--b\r\nContent-Type: text/html; charset=iso-8859-1\r\n"
	                 "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	                 "<style>x{}</style><p>H=E9llo &amp;   <i>w</i>orld</p>\r\n"
	                 "--b\r\nContent-Type: text/plain; "
	                 "charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	                 "ICBQbGFpbiAgIHRleHQgaXMgcHJlZmVycmVkIGhlcmUK\r\n--b--\r\n";
	struct mime_message *m = mime_parse(in, strlen(in), &lim);
	CHECK_STR(m->preview, "Plain text");
	CHECK(strlen(m->search_text) <= 40);
	CHECK(strstr(m->search_text, "H\xc3\xa9llo &") != NULL);
	CHECK(strstr(m->search_text, "x{}") == NULL);
	mime_message_free(&m);
	/* Only HTML: its text is the preview. */
	const char *html = "Content-Type: text/html\r\n\r\n<p>Only&nbsp;<b>html</b></p>\r\n";
	m = mime_parse(html, strlen(html), NULL);
	CHECK_STR(m->preview, "Only html");
	mime_message_free(&m);
}

static const char *const broken_inputs[] = {
    "",
    "\r\n",
    "\n\n\n",
    "\r",
    "Subject: x",
    "Subject: x\r\n",
    "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b",
    "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b--",
    "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b\r\n--b\r\n",
    "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n",
    "Content-Type: message/rfc822\r\n\r\n",
    "Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\n",
    "Content-Type: text/plain; charset*0*=utf-8''%; charset*1*=%G\r\n\r\n",
    "Content-Type: text/plain; a*=''; b*0=x; b*2=y; c*99999999=z\r\n\r\n",
    "From: <<<>>>, @@@, \"unterminated\r\nTo: ((((\r\nCc: ;;;:::\r\n\r\n",
    "Subject: =?utf-8?B?\?\?\?=?= =?x?Q?=?=\r\n\r\n",
    "Content-Transfer-Encoding: base64\r\n\r\n====abc=\r\n",
    "Content-Transfer-Encoding: quoted-printable\r\n\r\n=\r",
    "Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n",
};

UNIT_TEST(mime_broken_inputs)
{
	for (size_t k = 0; k < sizeof(broken_inputs) / sizeof(broken_inputs[0]); k++) {
		const char *in = broken_inputs[k];
		struct mime_message *m = parse_str(in);
		struct mime_message *m1 = parse_chunked(in, strlen(in), 1, 0, NULL);
		CHECK(m->body[0] == '(' && m->bodystructure[0] == '(' && m->envelope[0] == '(');
		CHECK(same_message(m, m1));
		CHECK(parts_sane(m));
		CHECK(pack_roundtrip(m));
		mime_message_free(&m);
		mime_message_free(&m1);
	}
}

/* ---- the corpus --------------------------------------------------------- */

static void corpus_one(const char *path, const char *name)
{
	size_t len;
	char *data = unit_read_file(path, &len);
	CHECK(data != NULL);
	if (data == NULL)
		return;
	struct mime_message *m = mime_parse(data, len, NULL);
	struct mime_message *m1 = parse_chunked(data, len, 1, 0, NULL);
	struct mime_message *m7 = parse_chunked(data, len, 7, 1, NULL);
	struct mime_message *mr = parse_chunked(data, len, 4000, 2, NULL);
	if (!same_message(m, m1) || !same_message(m, m7) || !same_message(m, mr))
		unit_fail(__FILE__, __LINE__, "%s: chunked parse differs", name);
	if (!parts_sane(m))
		unit_fail(__FILE__, __LINE__, "%s: part table not sane", name);
	if (!pack_roundtrip(m))
		unit_fail(__FILE__, __LINE__, "%s: pack/unpack", name);
	CHECK_INT(m->size, len);
	CHECK(m->body[0] == '(' && m->bodystructure[0] == '(' && m->envelope[0] == '(');
	/* The well-formed ones parse within every limit. */
	if (strncmp(name, "ok-", 3) == 0 && m->truncated)
		unit_fail(__FILE__, __LINE__, "%s: truncated", name);
	mime_message_free(&m);
	mime_message_free(&m1);
	mime_message_free(&m7);
	mime_message_free(&mr);
	free(data);
}

UNIT_TEST(mime_corpus)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/corpus/mime", unit_data_dir());
	DIR *d = opendir(dir);
	CHECK(d != NULL);
	if (d == NULL)
		return;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		if (l < 5 || strcmp(de->d_name + l - 4, ".eml") != 0)
			continue;
		char path[8192];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		corpus_one(path, de->d_name);
		n++;
	}
	closedir(d);
	CHECK(n >= 30);
}

static struct mime_message *corpus_parse(const char *name)
{
	char path[4096];
	size_t len;
	snprintf(path, sizeof(path), "%s/corpus/mime/%s", unit_data_dir(), name);
	char *data = unit_read_file(path, &len);
	if (data == NULL)
		return parse_str("");
	struct mime_message *m = mime_parse(data, len, NULL);
	free(data);
	return m;
}

UNIT_TEST(mime_corpus_expectations)
{
	struct mime_message *m = corpus_parse("ok-10-shift-jis-subject.eml");
	CHECK_STR(m->subject, "\xe3\x81\x8a\xe7\x9f\xa5\xe3\x82\x89\xe3\x81\x9b\xef\xbc\x9a"
	                      "\xe4\xbc\x9a\xe8\xad\xb0\xe3\x81\xae\xe4\xbb\xb6");
	CHECK_STR(m->preview,
	          "\xe4\xbc\x9a\xe8\xad\xb0\xe3\x81\xaf"
	          "10"
	          "\xe6\x99\x82\xe3\x81\x8b\xe3\x82\x89\xe3\x81\xa7\xe3\x81\x99\xe3\x80\x82");
	mime_message_free(&m);
	m = corpus_parse("ok-09-iso-8859-1-subject.eml");
	CHECK_STR(m->subject, "R\xc3\xa9union de l'\xc3\xa9quipe \xc3\xa0 14h");
	CHECK_STR(m->from, "Fran\xc3\xa7ois Lef\xc3\xa8vre <francois@example.fr>");
	CHECK(strstr(m->search_text, "r\xc3\xa9union aura lieu") != NULL);
	mime_message_free(&m);
	m = corpus_parse("ok-16-latin1-raw-header.eml");
	CHECK_STR(m->subject, "Gr\xc3\xbc\xc3\x9f"
	                      "e aus M\xc3\xbcnchen");
	mime_message_free(&m);
	m = corpus_parse("ok-04-forwarded-rfc822.eml");
	CHECK_INT(m->nparts, 5);
	CHECK_STR(m->parts[4].section, "2.2");
	CHECK_INT(m->parts[2].flags, MIME_PART_MESSAGE);
	mime_message_free(&m);
	m = corpus_parse("ok-08-rfc2231-long-filename.eml");
	CHECK(strstr(m->bodystructure, "(\"filename\" \"a very long file name that needs "
	                               "continuations to fit.pdf\")") != NULL);
	mime_message_free(&m);
	m = corpus_parse("ok-12-html-only-newsletter.eml");
	CHECK_STR(m->preview, "Summer sale: 50% off & free shipping!");
	mime_message_free(&m);
	m = corpus_parse("bad-05-too-many-parts.eml");
	CHECK(m->truncated);
	CHECK_INT(m->nparts, 2001);
	mime_message_free(&m);
	/* "--q\rnot a boundary" is preamble; one part follows. */
	m = corpus_parse("bad-12-lone-cr.eml");
	CHECK_INT(m->nparts, 2);
	CHECK_INT(m->parts[1].body_len, 12);
	mime_message_free(&m);
}

/* Only the first alternative of a multipart/alternative is indexed: the
 * others say the same thing. */
UNIT_TEST(mime_search_text_first_alternative_only)
{
	static const char msg[] =
	    "From: a@b.example\r\nSubject: alt\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: multipart/alternative; boundary=XX\r\n\r\n"
	    "--XX\r\nContent-Type: text/plain\r\n\r\nplainword\r\n"
	    "--XX\r\nContent-Type: text/html\r\n\r\n<p>htmlword</p>\r\n"
	    "--XX--\r\n"
	    "";
	struct mime_limits lim;
	mime_limits_default(&lim);
	struct mime_message *m = mime_parse(msg, sizeof(msg) - 1, &lim);
	CHECK(m != NULL);
	if (m == NULL)
		return;
	CHECK(strstr(m->search_text, "plainword") != NULL);
	CHECK(strstr(m->search_text, "htmlword") == NULL);
	CHECK(strstr(m->preview, "plainword") != NULL);
	mime_message_free(&m);
	/* HTML only: indexed. */
	static const char html_only[] =
	    "Subject: h\r\nContent-Type: multipart/alternative; boundary=XX\r\n\r\n"
	    "--XX\r\nContent-Type: text/html\r\n\r\n<p>onlyhtml</p>\r\n--XX--\r\n";
	m = mime_parse(html_only, sizeof(html_only) - 1, &lim);
	CHECK(m != NULL && strstr(m->search_text, "onlyhtml") != NULL);
	mime_message_free(&m);
}
