/* test-imap-search.c - SEARCH parsing and SQL translation, FETCH attribute
 * parsing, sections, header fields, the BINARY decoder, base subjects and
 * the THREAD algorithms (imap/imap-search.h, imap/imap-fetch.h). */
#include "unit.h"

#include "arena.h"
#include "imap-fetch.h"
#include "imap-search.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Splits a test program into tokens: atoms, "quoted" strings, parens. */
static size_t tokenize(struct arena *a, const char *in, struct imap_stok *t, size_t max)
{
	size_t n = 0;
	while (*in != '\0' && n < max) {
		if (*in == ' ') {
			in++;
			continue;
		}
		if (*in == '(' || *in == ')') {
			t[n++] =
			    (struct imap_stok){*in == '(' ? IMAP_STOK_LPAREN : IMAP_STOK_RPAREN,
			                       *in == '(' ? "(" : ")", 1};
			in++;
			continue;
		}
		const char *start = in;
		enum imap_stok_type type = IMAP_STOK_ATOM;
		if (*in == '"') {
			start = ++in;
			while (*in != '\0' && *in != '"')
				in++;
			type = IMAP_STOK_STRING;
		} else {
			while (*in != '\0' && *in != ' ' && *in != '(' && *in != ')')
				in++;
		}
		size_t len = (size_t)(in - start);
		t[n++] = (struct imap_stok){type, arena_memdup0(a, start, len), len};
		if (type == IMAP_STOK_STRING && *in == '"')
			in++;
	}
	return n;
}

static int fake_uids(void *ctx, enum imap_skey_type kind, const char *set, struct buf *out)
{
	(void)ctx;
	if (kind == SKEY_RECENT) {
		buf_append_str(out, "{}");
		return 0;
	}
	if (kind == SKEY_SAVED) {
		buf_append_str(out, "{[7,7]}");
		return 0;
	}
	buf_printf(out, "{%s}", set);
	return 0;
}

/* Parses and translates; returns the condition or "ERR: message". */
/* The condition prog_text translates to; *params_r (may be NULL): its
 * parameters joined by "|". */
static const char *translate_params(struct arena *a, const char *prog_text, int *nparams,
                                    const char **params_r)
{
	struct imap_stok toks[256];
	size_t n = tokenize(a, prog_text, toks, 256), pos = 0;
	struct imap_search_prog prog;
	const char *err = NULL;
	if (imap_search_parse(a, toks, n, &pos, &prog, &err) < 0)
		return arena_printf(a, "ERR: %s", err);
	struct imap_search_sql s;
	imap_search_sql_init(&s, a);
	struct imap_search_resolver r = {NULL, fake_uids};
	const char *out;
	if (imap_search_sql_build(&prog, &r, 3, &s, &err) < 0)
		out = arena_printf(a, "ERR: %s", err);
	else
		out = arena_strdup(a, buf_cstr(&s.where));
	if (nparams != NULL)
		*nparams = s.nparams;
	if (params_r != NULL) {
		const char *joined = "";
		for (int i = 0; i < s.nparams; i++)
			joined = arena_printf(a, "%s%s%s", joined, i > 0 ? "|" : "", s.params[i]);
		*params_r = joined;
	}
	imap_search_sql_free(&s);
	return out;
}

static const char *translate(struct arena *a, const char *prog_text, int *nparams)
{
	return translate_params(a, prog_text, nparams, NULL);
}

UNIT_TEST(search_translate_table)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"ALL", "(true)"},
	    {"SEEN", "((e.flags & 1) <> 0)"},
	    {"unseen", "((e.flags & 1) = 0)"},
	    {"DELETED FLAGGED", "((e.flags & 8) <> 0 AND (e.flags & 4) <> 0)"},
	    {"OR SEEN DRAFT", "(((e.flags & 1) <> 0 OR (e.flags & 16) <> 0))"},
	    {"NOT ANSWERED", "(NOT ((e.flags & 2) <> 0))"},
	    {"(SEEN (DRAFT))", "(((e.flags & 1) <> 0 AND ((e.flags & 16) <> 0)))"},
	    {"LARGER 100", "(e.size > $3::bigint)"},
	    {"SMALLER 5", "(e.size < $3::bigint)"},
	    {"UID 1:5", "(e.uid <@ $3::int8multirange)"},
	    {"1,3:*", "(e.uid <@ $3::int8multirange)"},
	    {"$", "(e.uid <@ $3::int8multirange)"},
	    {"UID $", "(e.uid <@ $3::int8multirange)"},
	    {"MODSEQ 5", "(e.modseq >= $3::bigint)"},
	    {"MODSEQ \"/flags/\\\\seen\" all 5", "(e.modseq >= $3::bigint)"},
	    {"BEFORE 1-Feb-1994", "((e.internaldate AT TIME ZONE 'UTC')::date < $3::date)"},
	    {"SUBJECT hello", "(strpos(lower(m.subject), lower($3::text)) > 0)"},
	    {"FROM \"a b\"", "(strpos(lower(m.from_addr), lower($3::text)) > 0)"},
	    {"KEYWORD $Junk",
	     "(EXISTS (SELECT 1 FROM unnest(e.keywords) AS kw WHERE lower(kw) = lower($3::text)))"},
	    {"NEW", "((e.uid <@ $3::int8multirange AND (e.flags & 1) = 0))"},
	    {"OLD", "(NOT (e.uid <@ $3::int8multirange))"},
	};
	struct arena *a = arena_new(4096);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = translate(a, cases[i].in, NULL);
		if (strcmp(got, cases[i].out) != 0)
			unit_fail(__FILE__, __LINE__, "%s: got %s", cases[i].in, got);
	}
	arena_destroy(&a);
}

/* BODY and TEXT: a LIKE of the string, lowered in C, in the lower-case
 * text. COND tests the text: its distinct words alone for a string without
 * ASCII separators; else the text, after up to two of the string's runs
 * (parameters from $4) in the words. */
#define SQL_BODY_IF(cond)                                                                          \
	"(EXISTS (SELECT 1 FROM message_search s WHERE s.message_id = e.message_id AND (" cond ")" \
	")"                                                                                        \
	")"
#define SQL_TEXT_IF(cond)                                                                          \
	"(EXISTS (SELECT 1 FROM message_search s WHERE s.message_id = e.message_id AND (" cond     \
	" OR s.headers LIKE $3::text)))"
#define WORD  "s.words LIKE $3::text"
#define TEXT0 "(s.body LIKE $3::text)"
#define TEXT1 "(s.words LIKE $4::text AND s.body LIKE $3::text)"
#define TEXT2 "(s.words LIKE $4::text AND s.words LIKE $5::text AND s.body LIKE $3::text)"
UNIT_TEST(search_text_is_substring)
{
	static const struct {
		const char *in, *out, *params;
	} cases[] = {
	    {"BODY ell", SQL_BODY_IF(WORD), "%ell%"},
	    {"TEXT Ell0", SQL_TEXT_IF(WORD), "%ell0%"},
	    {"BODY \"\"", SQL_BODY_IF(WORD), "%%"},
	    {"BODY K\xc3\x96ln", SQL_BODY_IF(WORD), "%k\xc3\xb6ln%"},
	    {"BODY \"\xc2\xabK\xc3\xb6ln\xc2\xbb\"", SQL_BODY_IF(WORD),
	     "%\xc2\xabk\xc3\xb6ln\xc2\xbb%"},
	    /* runs: a word's end ("%lo %"), beginning ("% wor%") or whole
	     * ("% a %"); the two giving the most trigrams, none if none */
	    {"TEXT \"lo wor\"", SQL_TEXT_IF(TEXT2), "%lo wor%|%lo %|% wor%"},
	    {"BODY \"50%_a\\\\b\"", SQL_BODY_IF(TEXT2),
	     /* the test tokenizer keeps the quoted string's backslashes */
	     "%50\\%\\_a\\\\\\\\b%|%50 %|% a %"},
	    {"BODY \"--\"", SQL_BODY_IF(TEXT0), "%--%"},
	    {"BODY a.b", SQL_BODY_IF(TEXT1), "%a.b%|% b%"},
	    {"BODY \"a\x7f\"", SQL_BODY_IF(TEXT0), "%a\x7f%"},
	    {"BODY \"K\xc3\xb6l-n\"", SQL_BODY_IF(TEXT2), "%k\xc3\xb6l-n%|%k\xc3\xb6l %|% n%"},
	    {"BODY \"ab cde fghi jklmn\"", SQL_BODY_IF(TEXT2),
	     "%ab cde fghi jklmn%|% fghi %|% jklmn%"},
	    {"TEXT \"foo.bar\"", SQL_TEXT_IF(TEXT2), "%foo.bar%|%foo %|% bar%"},
	    /* lowered before it is split: the capital sigma is lowered alone */
	    {"BODY \"\xce\x9f\xce\x94\xce\x9f\xce\xa3.\xce\x91\xce\x92\xce\x93\"",
	     SQL_BODY_IF(TEXT2),
	     "%\xce\xbf\xce\xb4\xce\xbf\xcf\x83.\xce\xb1\xce\xb2\xce\xb3%|%"
	     "\xce\xbf\xce\xb4\xce\xbf\xcf\x83 %|% "
	     "\xce\xb1\xce\xb2\xce\xb3%"},
	};
	struct arena *a = arena_new(4096);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *params = NULL;
		const char *got = translate_params(a, cases[i].in, NULL, &params);
		if (strcmp(got, cases[i].out) != 0)
			unit_fail(__FILE__, __LINE__, "%s: got %s", cases[i].in, got);
		if (strcmp(params, cases[i].params) != 0)
			unit_fail(__FILE__, __LINE__, "%s: params %s", cases[i].in, params);
	}
	int np = 0;
	const char *w = translate(a, "HEADER X-Spam yes", &np);
	CHECK(strstr(w, "regexp_split_to_table") != NULL);
	CHECK_INT(np, 2);
	arena_destroy(&a);
}

UNIT_TEST(search_malformed)
{
	static const char *const bad[] = {
	    "",
	    "FOO",
	    "SUBJECT",
	    "BEFORE",
	    "BEFORE 32-Jan-2000",
	    "ON 1-Foo-2000",
	    "SINCE 1-Jan-0",
	    "LARGER -1",
	    "LARGER x",
	    "LARGER 99999999999999999999",
	    "UID",
	    "UID x",
	    "UID 0",
	    "UID 1:",
	    "0:4",
	    "1,,2",
	    "OR SEEN",
	    "NOT",
	    "(SEEN",
	    "()",
	    "SEEN )",
	    "HEADER",
	    "HEADER X",
	    "HEADER \"A:B\" c",
	    "KEYWORD",
	    "MODSEQ",
	    "MODSEQ \"/flags/x\" bogus 4",
	    "ON 30-Feb-2000",
	    "4294967296",
	    "(SEEN) )",
	};
	struct arena *a = arena_new(4096);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *got = translate(a, bad[i], NULL);
		if (strncmp(got, "ERR: ", 5) != 0)
			unit_fail(__FILE__, __LINE__, "'%s' accepted: %s", bad[i], got);
	}
	arena_destroy(&a);
}

UNIT_TEST(search_depth_and_count_limits)
{
	struct arena *a = arena_new(65536);
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	for (int i = 0; i < 100; i++)
		buf_append_str(&b, "NOT ");
	buf_append_str(&b, "SEEN");
	CHECK(strncmp(translate(a, buf_cstr(&b), NULL), "ERR: ", 5) == 0);
	buf_reset(&b);
	for (int i = 0; i < 100; i++)
		buf_append_str(&b, "(");
	buf_append_str(&b, "SEEN");
	for (int i = 0; i < 100; i++)
		buf_append_str(&b, ")");
	CHECK(strncmp(translate(a, buf_cstr(&b), NULL), "ERR: ", 5) == 0);
	buf_reset(&b);
	for (int i = 0; i < 210; i++)
		buf_append_str(&b, "SEEN ");
	CHECK(strncmp(translate(a, buf_cstr(&b), NULL), "ERR: ", 5) == 0);
	buf_reset(&b);
	for (int i = 0; i < 30; i++)
		buf_append_str(&b, "NOT ");
	buf_append_str(&b, "SEEN");
	CHECK(strncmp(translate(a, buf_cstr(&b), NULL), "ERR: ", 5) != 0);
	buf_free(&b);
	arena_destroy(&a);
}

UNIT_TEST(search_dates_and_sets)
{
	char d[11];
	CHECK(imap_search_date("1-Feb-1994", d) == 0);
	CHECK_STR(d, "1994-02-01");
	CHECK(imap_search_date("29-feb-2000", d) == 0);
	CHECK_STR(d, "2000-02-29");
	CHECK(imap_search_date("001-Feb-1994", d) < 0);
	CHECK(imap_search_date("1-Feb-94", d) < 0);
	CHECK(imap_search_date("1-Febr-1994", d) < 0);
	CHECK(imap_search_date("", d) < 0);
	CHECK(imap_search_seqset_valid("1"));
	CHECK(imap_search_seqset_valid("1:*,5,7:9"));
	CHECK(imap_search_seqset_valid("*"));
	CHECK(!imap_search_seqset_valid("1:"));
	CHECK(!imap_search_seqset_valid(",1"));
	CHECK(!imap_search_seqset_valid("01"));
	CHECK(!imap_search_seqset_valid("4294967296"));
}

UNIT_TEST(base_subject_table)
{
	static const struct {
		const char *in, *out;
		bool reply;
	} cases[] = {
	    {"Hello", "Hello", false},
	    {"Re: Hello", "Hello", true},
	    {"RE: re: Fwd: Hello", "Hello", true},
	    {"Re[2]: Hello", "Hello", true},
	    {"Re [foo]: Hello", "Hello", true},
	    {"[list] Re: Hello", "Hello", true},
	    {"[list] Hello", "Hello", false},
	    {"[list]", "[list]", false},
	    {"Hello (fwd)", "Hello", false},
	    {"Hello (fwd) (FWD)  ", "Hello", false},
	    {"[fwd: Hello]", "Hello", true},
	    {"[Fwd: Re: Hello (fwd)]", "Hello", true},
	    {"  Hello\t  world ", "Hello world", false},
	    {"", "", false},
	    {"Re:", "", true},
	    {"Fw: Hi", "Hi", true},
	    {"Rex: Hi", "Rex: Hi", false},
	};
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool reply;
		imap_base_subject(cases[i].in, &b, &reply);
		if (strcmp(buf_cstr(&b), cases[i].out) != 0 || reply != cases[i].reply)
			unit_fail(__FILE__, __LINE__, "'%s' -> '%s' (reply %d)", cases[i].in,
			          buf_cstr(&b), reply);
	}
	imap_first_mailbox("\"Doe, John\" <john@example.com>, x@y", &b);
	CHECK_STR(buf_cstr(&b), "john");
	imap_first_mailbox("alice@example.org", &b);
	CHECK_STR(buf_cstr(&b), "alice");
	imap_first_mailbox("team: bob@b.org, c@d;", &b);
	CHECK_STR(buf_cstr(&b), "bob");
	imap_first_mailbox("", &b);
	CHECK_STR(buf_cstr(&b), "");
	buf_free(&b);
}

static struct imap_thread_msg tmsg(uint32_t id, time_t date, const char *mid, const char *irt,
                                   const char *refs, const char *subject, struct buf *bases)
{
	struct imap_thread_msg m = {id, date, mid, irt, refs, NULL, false};
	imap_base_subject(subject, &bases[id], &m.reply);
	m.base_subject = buf_cstr(&bases[id]);
	return m;
}

UNIT_TEST(thread_references)
{
	struct buf bases[10];
	for (int i = 0; i < 10; i++)
		buf_init(&bases[i], BUF_NO_LIMIT);
	struct imap_thread_msg m[] = {
	    tmsg(1, 100, "<a@x>", "", "", "Topic", bases),
	    tmsg(2, 200, "<b@x>", "<a@x>", "<a@x>", "Re: Topic", bases),
	    tmsg(3, 150, "<c@x>", "", "", "Other", bases),
	    tmsg(4, 300, "<d@x>", "<a@x>", "<a@x>", "Re: Topic", bases),
	    tmsg(5, 400, "<e@x>", "<b@x>", "<a@x> <b@x>", "Re: Topic", bases),
	    tmsg(6, 500, "<f@x>", "", "<zz@x>", "Re: Other", bases), /* parent unknown */
	    tmsg(7, 50, "", "", "", "Lonely", bases),
	};
	struct buf out;
	buf_init(&out, BUF_NO_LIMIT);
	imap_thread_references(m, 7, &out);
	CHECK_STR(buf_cstr(&out), "(7)(1 (2 5)(4))(3 6)");
	buf_reset(&out);
	imap_thread_orderedsubject(m, 7, &out);
	CHECK_STR(buf_cstr(&out), "(7)(1 (2)(4)(5))(3 6)");
	buf_reset(&out);
	imap_thread_references(m, 0, &out);
	CHECK_STR(buf_cstr(&out), "");
	/* A reference loop and a duplicate Message-ID must not hang or crash. */
	struct imap_thread_msg loop[] = {
	    tmsg(1, 1, "<a@x>", "", "<b@x>", "x", bases),
	    tmsg(2, 2, "<b@x>", "", "<a@x>", "y", bases),
	    tmsg(3, 3, "<a@x>", "", "", "z", bases),
	};
	buf_reset(&out);
	imap_thread_references(loop, 3, &out);
	CHECK(out.len > 0);
	buf_free(&out);
	for (int i = 0; i < 10; i++)
		buf_free(&bases[i]);
}

static const char *fetch_name(struct arena *a, const char *att)
{
	struct fetch_request req;
	memset(&req, 0, sizeof(req));
	const char *err = NULL;
	if (imap_fetch_parse_att(a, att, &req, &err) < 0)
		return arena_printf(a, "ERR: %s", err);
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	for (size_t i = 0; i < req.n; i++)
		buf_printf(&b, "%s%s%s", i ? " " : "", req.items[i].name,
		           req.items[i].peek ? "*" : "");
	const char *r = arena_strdup(a, buf_cstr(&b));
	buf_free(&b);
	return r;
}

UNIT_TEST(fetch_att_table)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"FLAGS", "FLAGS"},
	    {"fast", "FLAGS INTERNALDATE RFC822.SIZE"},
	    {"ALL", "FLAGS INTERNALDATE RFC822.SIZE ENVELOPE"},
	    {"FULL", "FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY"},
	    {"RFC822", "RFC822"},
	    {"RFC822.HEADER", "RFC822.HEADER*"},
	    {"BODY[]", "BODY[]"},
	    {"BODY.PEEK[]", "BODY[]*"},
	    {"body.peek[header]", "BODY[HEADER]*"},
	    {"BODY[1.2.MIME]", "BODY[1.2.MIME]"},
	    {"BODY[2.HEADER]", "BODY[2.HEADER]"},
	    {"BODY[TEXT]<0.100>", "BODY[TEXT]<0>"},
	    {"BODY[]<50.10>", "BODY[]<50>"},
	    {"BODY[HEADER.FIELDS (From To)]", "BODY[HEADER.FIELDS (From To)]"},
	    {"BODY.PEEK[HEADER.FIELDS.NOT (Received)]", "BODY[HEADER.FIELDS.NOT (Received)]*"},
	    {"BINARY[1]", "BINARY[1]"},
	    {"BINARY.PEEK[1.2]<0.5>", "BINARY[1.2]<0>*"},
	    {"BINARY.SIZE[2]", "BINARY.SIZE[2]*"},
	    {"PREVIEW", "PREVIEW"},
	    {"MODSEQ", "MODSEQ"},
	};
	struct arena *a = arena_new(4096);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = fetch_name(a, cases[i].in);
		if (strcmp(got, cases[i].out) != 0)
			unit_fail(__FILE__, __LINE__, "%s: got %s", cases[i].in, got);
	}
	static const char *const bad[] = {
	    "",
	    "BODY[",
	    "BODY[MIME]",
	    "BODY[0]",
	    "BODY[01]",
	    "BODY[1.0]",
	    "BODY[HEADER.FIELDS]",
	    "BODY[HEADER.FIELDS ()]",
	    "BODY[TEXT]<0.0>",
	    "BODY[TEXT]<1>",
	    "BODY[TEXT]<a.b>",
	    "BODY[TEXT]x",
	    "BINARY[HEADER]",
	    "BINARY.SIZE[1]<0.1>",
	    "BODY[FOO]",
	    "FLAGZ",
	    "BODY[HEADER.FIELDS (A:B)]",
	    "BODY[4294967296]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *got = fetch_name(a, bad[i]);
		if (strncmp(got, "ERR: ", 5) != 0)
			unit_fail(__FILE__, __LINE__, "'%s' accepted: %s", bad[i], got);
	}
	arena_destroy(&a);
}

UNIT_TEST(fetch_header_fields_filter)
{
	const char hdr[] = "From: a@b\r\nTo: c@d,\r\n e@f\r\nSubject: hi\r\nX-A: 1\r\n\r\n";
	const char *const want[] = {"to", "SUBJECT", NULL};
	struct buf out;
	buf_init(&out, BUF_NO_LIMIT);
	imap_fetch_header_fields(hdr, strlen(hdr), want, false, &out);
	CHECK_STR(buf_cstr(&out), "To: c@d,\r\n e@f\r\nSubject: hi\r\n\r\n");
	buf_reset(&out);
	imap_fetch_header_fields(hdr, strlen(hdr), want, true, &out);
	CHECK_STR(buf_cstr(&out), "From: a@b\r\nX-A: 1\r\n\r\n");
	buf_reset(&out);
	const char *const none[] = {"Nope", NULL};
	imap_fetch_header_fields(hdr, strlen(hdr), none, false, &out);
	CHECK_STR(buf_cstr(&out), "\r\n");
	buf_free(&out);
}

/* The decoder gives the same bytes however the input is cut. */
UNIT_TEST(fetch_decoder_chunking)
{
	static const struct {
		enum mime_encoding enc;
		const char *in, *out;
	} cases[] = {
	    {MIME_ENC_BASE64, "SGVsbG8s\r\nIHdvcmxk\r\nIQ==\r\n", "Hello, world!"},
	    {MIME_ENC_QP, "caf=C3=A9 =\r\nsoft\r\nline two\r\n",
	     "caf\xc3\xa9 soft\r\nline two\r\n"},
	    {MIME_ENC_7BIT, "plain\r\n", "plain\r\n"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].in);
		for (size_t step = 1; step <= len; step++) {
			struct fetch_decoder d;
			struct buf out;
			buf_init(&out, BUF_NO_LIMIT);
			imap_fetch_decoder_init(&d, cases[i].enc);
			for (size_t off = 0; off < len; off += step)
				imap_fetch_decoder_feed(&d, cases[i].in + off,
				                        len - off < step ? len - off : step, &out);
			imap_fetch_decoder_finish(&d, &out);
			if (strcmp(buf_cstr(&out), cases[i].out) != 0)
				unit_fail(__FILE__, __LINE__, "case %zu step %zu: '%s'", i, step,
				          buf_cstr(&out));
			buf_free(&out);
		}
	}
}

UNIT_TEST(fetch_sections_from_part_table)
{
	const char msg[] = "Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
	                   "--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
	                   "--b\r\nContent-Type: message/rfc822\r\n\r\n"
	                   "Subject: inner\r\n\r\ninner body\r\n--b--\r\n";
	struct mime_limits lim;
	mime_limits_default(&lim);
	struct mime_message *m = mime_parse(msg, strlen(msg), &lim);
	struct fetch_item it = {.type = FI_SECTION, .part = ""};
	uint64_t start, len;
	CHECK(imap_fetch_section_range(m->parts, m->nparts, &it, &start, &len) == 0);
	CHECK_INT(start, 0);
	CHECK_INT(len, strlen(msg));
	it.part = "1";
	CHECK(imap_fetch_section_range(m->parts, m->nparts, &it, &start, &len) == 0);
	CHECK(len >= 5 && memcmp(msg + start, "hello", 5) == 0);
	it.part = "2";
	it.spec = FS_HEADER;
	CHECK(imap_fetch_section_range(m->parts, m->nparts, &it, &start, &len) == 0);
	CHECK(len > 0 && memcmp(msg + start, "Subject: inner\r\n\r\n", len) == 0);
	it.spec = FS_TEXT;
	CHECK(imap_fetch_section_range(m->parts, m->nparts, &it, &start, &len) == 0);
	CHECK(len >= 10 && memcmp(msg + start, "inner body", 10) == 0);
	it.spec = FS_MIME;
	CHECK(imap_fetch_section_range(m->parts, m->nparts, &it, &start, &len) == 0);
	CHECK(len > 0 && memcmp(msg + start, "Content-Type: message/rfc822\r\n\r\n", len) == 0);
	it.part = "1";
	it.spec = FS_HEADER; /* not a message: no header section */
	CHECK(imap_fetch_section_range(m->parts, m->nparts, &it, &start, &len) < 0);
	it.part = "9";
	it.spec = FS_NONE;
	CHECK(imap_fetch_section_range(m->parts, m->nparts, &it, &start, &len) < 0);
	mime_message_free(&m);
	char date[32];
	imap_fetch_format_date(837571465, date);
	CHECK_STR(date, "17-Jul-1996 02:44:25 +0000");
	imap_fetch_format_date(0, date);
	CHECK_STR(date, " 1-Jan-1970 00:00:00 +0000");
}
