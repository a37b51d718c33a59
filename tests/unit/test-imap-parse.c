/* Tests of the IMAP command argument parser (imap/imap-parse.c), sequence
 * sets, modified UTF-7 (imap/imap-utf7.c) and APPEND's date-time. Literals
 * go through a real conn over a socketpair, the client side written byte by
 * byte from a thread. */
#include "unit.h"

#include "imap-private.h"

#include "config.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- a session over a socketpair ---- */

struct tsess {
	struct imap_server srv;
	struct imap_session s;
	struct arena *arena;
	struct imap_cmd cmd;
	int peer;
};

static struct config *test_cfg;

static void tsess_open(struct tsess *t, enum imap_state state, const char *line)
{
	int sv[2];
	if (test_cfg == NULL) {
		test_cfg = config_defaults();
		config_set_current(test_cfg);
	}
	memset(t, 0, sizeof(*t));
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	t->srv.cfg = test_cfg;
	t->s.srv = &t->srv;
	t->s.c = conn_new(sv[0], "imap");
	t->s.state = state;
	t->peer = sv[1];
	buf_init(&t->s.line, BUF_NO_LIMIT);
	buf_append_str(&t->s.line, line);
	t->arena = arena_new(4096);
	t->cmd = (struct imap_cmd){.s = &t->s, .arena = t->arena, .total = strlen(line)};
}

static void tsess_close(struct tsess *t)
{
	conn_free(&t->s.c);
	close(t->peer);
	buf_free(&t->s.line);
	arena_destroy(&t->arena);
}

struct feeder {
	int fd;
	const char *data;
};

/* Writes the client's bytes one at a time. */
static void *feed(void *arg)
{
	struct feeder *f = arg;
	for (const char *p = f->data; *p != '\0'; p++)
		if (write(f->fd, p, 1) != 1)
			break;
	return NULL;
}

/* What the server wrote so far (continuations), without waiting. */
static void peer_read(struct tsess *t, char *out, size_t max)
{
	conn_flush(t->s.c);
	ssize_t n = recv(t->peer, out, max - 1, MSG_DONTWAIT);
	out[n > 0 ? n : 0] = '\0';
}

/* ---- sequence sets ---- */

UNIT_TEST(imap_seqset_table)
{
	static const struct {
		const char *in;
		int ok;
		const char *ranges; /* "lo-hi," each, '*' for star */
	} cases[] = {
	    {"1", 0, "1-1,"},
	    {"1:3,5", 0, "1-3,5-5,"},
	    {"3:1", 0, "1-3,"},
	    {"*", 0, "*-*,"},
	    {"2:*", 0, "2-*,"},
	    {"*:2", 0, "2-*,"},
	    {"4294967294", 0, "4294967294-4294967294,"},
	    {"$", 0, "$"},
	    {"", -1, NULL},
	    {"0", -1, NULL},
	    {"1:", -1, NULL},
	    {",1", -1, NULL},
	    {"1,", -1, NULL},
	    {"1,,2", -1, NULL},
	    {"a", -1, NULL},
	    {"1:*:2", -1, NULL},
	    {"4294967296", -1, NULL},
	    {"$,1", -1, NULL},
	    {"-1", -1, NULL},
	};
	struct arena *a = arena_new(1024);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct imap_seqset set;
		int r = imap_seqset_parse(cases[i].in, strlen(cases[i].in), a, &set);
		if (r != cases[i].ok)
			unit_fail(__FILE__, __LINE__, "seqset \"%s\": %d", cases[i].in, r);
		if (r < 0)
			continue;
		struct buf b;
		buf_init(&b, 1024);
		if (set.saved)
			buf_append_char(&b, '$');
		for (size_t k = 0; k < set.n; k++) {
			const struct imap_seq_range *rg = &set.ranges[k];
			if (rg->lo == IMAP_SEQ_STAR)
				buf_append_str(&b, "*-");
			else
				buf_printf(&b, "%u-", rg->lo);
			if (rg->hi == IMAP_SEQ_STAR)
				buf_append_str(&b, "*,");
			else
				buf_printf(&b, "%u,", rg->hi);
		}
		CHECK_STR(buf_cstr(&b), cases[i].ranges);
		buf_free(&b);
	}
	arena_destroy(&a);
}

UNIT_TEST(imap_seqset_contains_star)
{
	struct arena *a = arena_new(1024);
	struct imap_seqset set;
	CHECK(imap_seqset_parse("1:2,*", 5, a, &set) == 0);
	CHECK(imap_seqset_contains(&set, 2, 10));
	CHECK(!imap_seqset_contains(&set, 3, 10));
	CHECK(imap_seqset_contains(&set, 10, 10));
	CHECK(imap_seqset_parse("5:*", 3, a, &set) == 0);
	CHECK(imap_seqset_contains(&set, 4, 3)); /* 5:* with * = 3 is 3:5 */
	arena_destroy(&a);
}

/* ---- modified UTF-7 ---- */

UNIT_TEST(imap_utf7_round_trip)
{
	static const struct {
		const char *utf8, *utf7;
	} cases[] = {
	    {"INBOX", "INBOX"},
	    {"Entwürfe", "Entw&APw-rfe"},
	    {"&", "&-"},
	    {"a&b", "a&-b"},
	    {"日本語", "&ZeVnLIqe-"},
	    {"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
	    {"😀", "&2D3eAA-"},
	    {"Ä/ö", "&AMQ-/&APY-"},
	    {"", ""},
	};
	struct buf out;
	buf_init(&out, 4096);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK(imap_utf8_to_utf7(cases[i].utf8, strlen(cases[i].utf8), &out) == 0);
		CHECK_STR(buf_cstr(&out), cases[i].utf7);
		CHECK(imap_utf7_to_utf8(cases[i].utf7, strlen(cases[i].utf7), &out) == 0);
		CHECK_STR(buf_cstr(&out), cases[i].utf8);
	}
	buf_free(&out);
}

UNIT_TEST(imap_utf7_invalid)
{
	static const char *const bad[] = {
	    "&Jjo",        /* unterminated */
	    "&AGE-",       /* printable ASCII encoded */
	    "&2D3-",       /* lone high surrogate */
	    "&3gA-",       /* lone low surrogate */
	    "&AOkA6Q--",   /* stray '-' is fine, but... */
	    "caf\xc3\xa9", /* 8-bit */
	    "&A-",         /* too few bits */
	    "&AOl-",       /* non-zero padding bits */
	    "&!!-",        /* not base64 */
	    "a\tb",        /* control */
	};
	struct buf out;
	buf_init(&out, 4096);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = imap_utf7_to_utf8(bad[i], strlen(bad[i]), &out);
		/* "&AOkA6Q--" decodes to "éé-": valid, the one positive here. */
		if (i == 4) {
			CHECK(r == 0);
			CHECK_STR(buf_cstr(&out), "éé-");
		} else if (r != -1) {
			unit_fail(__FILE__, __LINE__, "accepted \"%s\"", bad[i]);
		}
	}
	CHECK(imap_utf8_to_utf7("\xc0\xaf", 2, &out) == -1);
	buf_free(&out);
}

UNIT_TEST(imap_utf8_validity)
{
	CHECK(imap_utf8_valid("Café 日本 😀", strlen("Café 日本 😀")));
	CHECK(!imap_utf8_valid("\xc0\xaf", 2));         /* overlong */
	CHECK(!imap_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
	CHECK(!imap_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	CHECK(!imap_utf8_valid("\xe6\x97", 2));         /* truncated */
}

/* ---- arguments on one line ---- */

UNIT_TEST(imap_args_strings)
{
	static const struct {
		const char *line;
		int ok;
		const char *value; /* NULL for NIL */
	} cases[] = {
	    {"atom", 0, "atom"},
	    {"\"quoted string\"", 0, "quoted string"},
	    {"\"with \\\"escapes\\\\\"", 0, "with \"escapes\\"},
	    {"\"\"", 0, ""},
	    {"a]b", 0, "a]b"},
	    {"NIL", 0, NULL},
	    {"\"bad \\x escape\"", -1, NULL},
	    {"\"unterminated", -1, NULL},
	    {"(paren", -1, NULL},
	    {"", -1, NULL},
	    {"{5", -1, NULL},
	    {"{5}x", -1, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tsess t;
		const char *v = "unset";
		tsess_open(&t, IMAP_STATE_AUTH, cases[i].line);
		int r = strcmp(cases[i].line, "NIL") == 0 ? imap_arg_nstring(&t.cmd, &v, NULL)
		                                          : imap_arg_astring(&t.cmd, &v, NULL);
		if (r != cases[i].ok)
			unit_fail(__FILE__, __LINE__, "\"%s\": %d", cases[i].line, r);
		if (r == 0 && cases[i].value != NULL)
			CHECK_STR(v, cases[i].value);
		if (r == 0 && cases[i].value == NULL)
			CHECK(v == NULL);
		if (r == 0)
			CHECK(imap_arg_at_end(&t.cmd));
		tsess_close(&t);
	}
}

UNIT_TEST(imap_args_numbers_flags_depth)
{
	struct tsess t;
	uint32_t n;
	uint64_t n64;
	tsess_open(&t, IMAP_STATE_AUTH, "4294967295 4294967296 0 9223372036854775807 x");
	CHECK(imap_arg_number(&t.cmd, &n) == 0 && n == 4294967295u);
	CHECK(imap_arg_sp(&t.cmd) == 0);
	CHECK(imap_arg_number(&t.cmd, &n) == -1);
	tsess_close(&t);
	tsess_open(&t, IMAP_STATE_AUTH, "0 9223372036854775807 9223372036854775808");
	CHECK(imap_arg_nznumber(&t.cmd, &n) == -1);
	t.cmd.pos = 2;
	CHECK(imap_arg_number64(&t.cmd, &n64) == 0 && n64 == INT64_MAX);
	CHECK(imap_arg_sp(&t.cmd) == 0);
	CHECK(imap_arg_number64(&t.cmd, &n64) == -1);
	tsess_close(&t);

	unsigned flags;
	const char **kw;
	tsess_open(&t, IMAP_STATE_AUTH, "(\\Seen \\deleted $Junk Work $junk)");
	CHECK(imap_arg_flags(&t.cmd, false, &flags, &kw) == 0);
	CHECK(flags == (STORE_FLAG_SEEN | STORE_FLAG_DELETED));
	CHECK_STR(kw[0], "$Junk");
	CHECK_STR(kw[1], "Work");
	CHECK(kw[2] == NULL);
	tsess_close(&t);
	tsess_open(&t, IMAP_STATE_AUTH, "(\\Recent)");
	CHECK(imap_arg_flags(&t.cmd, false, &flags, &kw) == -1);
	tsess_close(&t);
	tsess_open(&t, IMAP_STATE_AUTH, "\\Answered \\Draft");
	CHECK(imap_arg_flags(&t.cmd, true, &flags, &kw) == 0);
	CHECK(flags == (STORE_FLAG_ANSWERED | STORE_FLAG_DRAFT));
	tsess_close(&t);
	tsess_open(&t, IMAP_STATE_AUTH, "()");
	CHECK(imap_arg_flags(&t.cmd, false, &flags, &kw) == 0 && flags == 0 && kw[0] == NULL);
	tsess_close(&t);

	char deep[IMAP_PAREN_DEPTH + 2];
	memset(deep, '(', sizeof(deep) - 1);
	deep[sizeof(deep) - 1] = '\0';
	tsess_open(&t, IMAP_STATE_AUTH, deep);
	int r = 0;
	for (size_t i = 0; i < sizeof(deep) - 1 && r == 0; i++)
		r = imap_arg_list_begin(&t.cmd);
	CHECK(r == -1 && t.cmd.depth == IMAP_PAREN_DEPTH + 1);
	CHECK_STR(t.cmd.error, "Too deeply nested");
	tsess_close(&t);
}

UNIT_TEST(imap_args_mailbox_names)
{
	static const struct {
		const char *line;
		unsigned enabled;
		const char *name; /* NULL: error */
	} cases[] = {
	    {"inbox", 0, "INBOX"},
	    {"Inbox/Sub", 0, "INBOX/Sub"},
	    {"Entw&APw-rfe", 0, "Entwürfe"},
	    {"\"Caf\xc3\xa9\"", 0, "Café"},
	    {"Entw&APw-rfe", IMAP_EXT_UTF8, "Entw&APw-rfe"},
	    {"\"Caf\xc3\xa9\"", IMAP_EXT_REV2, "Café"},
	    {"Work/", 0, "Work"},
	    {"\"Caf\xc3\xa9/\"", 0, "Café"},
	    {"&Jjo", 0, NULL},
	    {"\"bad\xff\"", 0, NULL},
	    {"{3}", 0, NULL}, /* literal with nothing behind it */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tsess t;
		const char *name = NULL;
		tsess_open(&t, IMAP_STATE_AUTH, cases[i].line);
		t.s.enabled = cases[i].enabled;
		shutdown(t.peer, SHUT_WR);
		int r = imap_arg_mailbox(&t.cmd, &name);
		if (cases[i].name == NULL)
			CHECK(r == -1);
		else if (r != 0)
			unit_fail(__FILE__, __LINE__, "\"%s\" refused", cases[i].line);
		else
			CHECK_STR(name, cases[i].name);
		tsess_close(&t);
	}
}

/* ---- literals ---- */

UNIT_TEST(imap_literal_sync_byte_by_byte)
{
	struct tsess t;
	tsess_open(&t, IMAP_STATE_NOTAUTH, "{11}");
	struct feeder f = {.fd = t.peer, .data = "hello\r\nworl SP-after\r\n"};
	pthread_t th;
	pthread_create(&th, NULL, feed, &f);
	const char *v;
	size_t len;
	CHECK(imap_arg_astring(&t.cmd, &v, &len) == 0);
	CHECK(len == 11 && memcmp(v, "hello\r\nworl", 11) == 0);
	CHECK(imap_arg_sp(&t.cmd) == 0);
	CHECK(imap_arg_atom(&t.cmd, &v) == 0);
	CHECK_STR(v, "SP-after");
	CHECK(imap_arg_at_end(&t.cmd));
	pthread_join(th, NULL);
	char out[256];
	peer_read(&t, out, sizeof(out));
	CHECK_STR(out, "+ Ready for literal data\r\n");
	tsess_close(&t);
}

UNIT_TEST(imap_literal_nonsync_and_too_big)
{
	struct tsess t;
	char out[256];
	tsess_open(&t, IMAP_STATE_NOTAUTH, "{3+}");
	struct feeder f = {.fd = t.peer, .data = "abc\r\n"};
	pthread_t th;
	pthread_create(&th, NULL, feed, &f);
	const char *v;
	CHECK(imap_arg_string(&t.cmd, &v, NULL) == 0);
	CHECK_STR(v, "abc");
	CHECK(imap_arg_end(&t.cmd) == 0);
	pthread_join(th, NULL);
	peer_read(&t, out, sizeof(out));
	CHECK_STR(out, ""); /* no continuation for LITERAL+ */
	tsess_close(&t);

	/* Over literal_size_preauth (8K): refused before a byte is read. */
	tsess_open(&t, IMAP_STATE_NOTAUTH, "{9000}");
	CHECK(imap_arg_string(&t.cmd, &v, NULL) == -1);
	CHECK(t.cmd.aborted);
	CHECK_STR(t.cmd.error_code, "TOOBIG");
	peer_read(&t, out, sizeof(out));
	CHECK_STR(out, "");
	tsess_close(&t);

	tsess_open(&t, IMAP_STATE_NOTAUTH, "{4294967296+}");
	CHECK(imap_arg_string(&t.cmd, &v, NULL) == -1);
	CHECK(t.s.logout);
	tsess_close(&t);
}

static int count_sink(void *ctx, const void *p, size_t len)
{
	(void)p;
	*(size_t *)ctx += len;
	return 0;
}

UNIT_TEST(imap_literal_stream_and_skip_rest)
{
	struct tsess t;
	tsess_open(&t, IMAP_STATE_AUTH, "~{6}");
	struct feeder f = {.fd = t.peer, .data = "bin\0ry\r\n"};
	pthread_t th;
	pthread_create(&th, NULL, feed, &f);
	/* The feeder stops at the NUL: send the rest here. */
	pthread_join(th, NULL);
	CHECK(write(t.peer, "\0ry\r\n", 5) == 5);
	size_t got = 0;
	struct imap_literal_info info;
	CHECK(imap_arg_literal_stream(&t.cmd, 100, count_sink, &got, &info) == 0);
	CHECK(info.binary && info.size == 6 && got == 6 && !info.too_big);
	tsess_close(&t);

	tsess_open(&t, IMAP_STATE_AUTH, "{10+}");
	CHECK(write(t.peer, "0123456789 more {3+}\r\nabc\r\nnext\r\n", 33) == 33);
	CHECK(imap_arg_literal_stream(&t.cmd, 5, count_sink, &got, &info) == 0);
	CHECK(info.too_big);
	CHECK_STR(buf_cstr(&t.s.line), " more {3+}");
	imap_arg_skip_rest(&t.cmd);
	CHECK_STR(buf_cstr(&t.s.line), "");
	enum conn_status st = conn_read_line(t.s.c, &t.s.line, 100, 0, NULL);
	CHECK(st == CONN_OK);
	CHECK_STR(buf_cstr(&t.s.line), "next");
	tsess_close(&t);
}

/* ---- APPEND date-time ---- */

UNIT_TEST(imap_datetime_table)
{
	static const struct {
		const char *in;
		int ok;
		long long t;
	} cases[] = {
	    {" 7-Feb-1994 21:52:25 -0800", 0, 760686745},
	    {"07-Feb-1994 21:52:25 -0800", 0, 760686745},
	    {"7-Feb-1994 21:52:25 -0800", 0, 760686745},
	    {"01-Jan-1970 00:00:00 +0000", 0, 0},
	    {"01-jan-2030 01:00:00 +0100", 0, 1893456000},
	    {"32-Jan-2020 00:00:00 +0000", -1, 0},
	    {"01-Foo-2020 00:00:00 +0000", -1, 0},
	    {"01-Jan-2020 24:00:00 +0000", -1, 0},
	    {"01-Jan-2020 00:00:00 0000", -1, 0},
	    {"01-Jan-2020", -1, 0},
	    {"", -1, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		time_t t = 0;
		int r = imap_parse_datetime(cases[i].in, &t);
		if (r != cases[i].ok)
			unit_fail(__FILE__, __LINE__, "\"%s\": %d", cases[i].in, r);
		else if (r == 0)
			CHECK_INT(t, cases[i].t);
	}
}
