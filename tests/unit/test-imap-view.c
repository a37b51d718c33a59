/* test-imap-view.c - the binary rows a SELECT loads its view from
 * (imap_view_entry_parse in imap/imap-view.c): good rows, every kind of
 * malformed row, keyword splitting and the INTERNALDATE rounding; the
 * decimal writer of big FETCH responses (imap_append_number); and removing
 * expunged messages from a view (EXPUNGE numbers, VANISHED, what is left).
 * Loading from a real database is covered by tests/integration. */
#include "unit.h"

#include "imap-private.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* One row in the wire form: big-endian integers of the column widths. */
struct row {
	char cols[6][8];
	const char *values[7];
	int lengths[7];
};

static void put_be(char *out, uint64_t v, int len)
{
	for (int i = len - 1; i >= 0; i--) {
		out[i] = (char)(v & 0xff);
		v >>= 8;
	}
}

/* uid, flags, modseq, internaldate (microseconds from 2000), size,
 * message_id, keywords (NULL: SQL NULL). */
static void row_make(struct row *r, uint64_t uid, uint32_t flags, uint64_t modseq, int64_t us,
                     uint64_t size, uint64_t msg, const char *kw)
{
	static const int width[6] = {8, 4, 8, 8, 8, 8};
	uint64_t v[6] = {uid, flags, modseq, (uint64_t)us, size, msg};
	for (int c = 0; c < 6; c++) {
		put_be(r->cols[c], v[c], width[c]);
		r->values[c] = r->cols[c];
		r->lengths[c] = width[c];
	}
	r->values[6] = kw;
	r->lengths[6] = kw != NULL ? (int)strlen(kw) : 0;
}

static void entry_clear(struct store_entry *e)
{
	for (size_t i = 0; e->keywords != NULL && e->keywords[i] != NULL; i++)
		free(e->keywords[i]);
	free(e->keywords);
	e->keywords = NULL;
}

UNIT_TEST(view_entry_good_row)
{
	struct row r;
	struct store_entry e;
	/* 2024-01-01T10:00:00Z is 757418400 s after 2000-01-01. */
	row_make(&r, 7, STORE_FLAG_SEEN | STORE_FLAG_DRAFT, 42, 757418400LL * 1000000, 4096,
	         123456789012LL, NULL);
	CHECK_INT(imap_view_entry_parse(r.values, r.lengths, 7, 6, &e), 0);
	CHECK_INT(e.uid, 7);
	CHECK_INT(e.flags, STORE_FLAG_SEEN | STORE_FLAG_DRAFT);
	CHECK_INT(e.modseq, 42);
	CHECK_INT(e.internaldate, 1704103200);
	CHECK_INT(e.size, 4096);
	CHECK_INT(e.message_id, 123456789012LL);
	CHECK(e.keywords == NULL);
	/* The largest UID there is. */
	row_make(&r, UINT32_MAX, 0, 1, 0, 0, 1, NULL);
	CHECK_INT(imap_view_entry_parse(r.values, r.lengths, 7, UINT32_MAX - 1, &e), 0);
	CHECK_INT(e.uid, UINT32_MAX);
	CHECK_INT(e.internaldate, 946684800);
}

UNIT_TEST(view_entry_keywords)
{
	static const struct {
		const char *in;
		const char *want[4];
	} cases[] = {
	    {"$Junk", {"$Junk", NULL}},
	    {"a b c", {"a", "b", "c", NULL}},
	    {" a  b ", {"a", "b", NULL}},
	    {"", {NULL}},
	    {"   ", {NULL}},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct row r;
		struct store_entry e;
		row_make(&r, 1, 0, 1, 0, 0, 1, cases[i].in);
		CHECK_INT(imap_view_entry_parse(r.values, r.lengths, 7, 0, &e), 0);
		CHECK(e.keywords != NULL);
		size_t k = 0;
		for (; cases[i].want[k] != NULL; k++) {
			if (e.keywords == NULL || e.keywords[k] == NULL) {
				unit_fail(__FILE__, __LINE__, "case %zu: keyword %zu missing", i,
				          k);
				break;
			}
			CHECK_STR(e.keywords[k], cases[i].want[k]);
		}
		CHECK(e.keywords == NULL || e.keywords[k] == NULL);
		entry_clear(&e);
	}
}

/* Half a second rounds away from zero, as extract(epoch ...)::bigint. */
UNIT_TEST(view_entry_internaldate_rounding)
{
	static const struct {
		int64_t us;
		int64_t want;
	} cases[] = {
	    {0, 946684800},        {499999, 946684800},     {500000, 946684801},
	    {1999999, 946684802},  {-499999, 946684800},    {-500000, 946684799},
	    {-1500001, 946684798}, {-946684800000000LL, 0}, {1000000, 946684801},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct row r;
		struct store_entry e;
		row_make(&r, 1, 0, 1, cases[i].us, 0, 1, NULL);
		CHECK_INT(imap_view_entry_parse(r.values, r.lengths, 7, 0, &e), 0);
		if ((int64_t)e.internaldate != cases[i].want)
			unit_fail(__FILE__, __LINE__, "us %lld: %lld, expected %lld",
			          (long long)cases[i].us, (long long)e.internaldate,
			          (long long)cases[i].want);
	}
}

enum bad_kind {
	BAD_NCOLS_LOW,
	BAD_NCOLS_HIGH,
	BAD_NULL_FIXED,
	BAD_WIDTH_SHORT,
	BAD_WIDTH_LONG,
	BAD_FLAGS_WIDTH,
	BAD_UID_ZERO,
	BAD_UID_EQUAL,
	BAD_UID_BELOW,
	BAD_UID_PAST_32,
	BAD_KW_LENGTH,
};

UNIT_TEST(view_entry_malformed)
{
	static const struct {
		enum bad_kind kind;
		int col;
	} cases[] = {
	    {BAD_NCOLS_LOW, 0},   {BAD_NCOLS_HIGH, 0},  {BAD_NULL_FIXED, 0}, {BAD_NULL_FIXED, 1},
	    {BAD_NULL_FIXED, 2},  {BAD_NULL_FIXED, 3},  {BAD_NULL_FIXED, 4}, {BAD_NULL_FIXED, 5},
	    {BAD_WIDTH_SHORT, 0}, {BAD_WIDTH_SHORT, 3}, {BAD_WIDTH_LONG, 2}, {BAD_WIDTH_LONG, 5},
	    {BAD_FLAGS_WIDTH, 1}, {BAD_UID_ZERO, 0},    {BAD_UID_EQUAL, 0},  {BAD_UID_BELOW, 0},
	    {BAD_UID_PAST_32, 0}, {BAD_KW_LENGTH, 6},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct row r;
		struct store_entry e = {0};
		int ncols = 7, col = cases[i].col;
		uint32_t prev = 9;
		row_make(&r, 10, 0, 1, 0, 0, 1, "kw");
		switch (cases[i].kind) {
		case BAD_NCOLS_LOW:
			ncols = 6;
			break;
		case BAD_NCOLS_HIGH:
			ncols = 8;
			break;
		case BAD_NULL_FIXED:
			r.values[col] = NULL;
			break;
		case BAD_WIDTH_SHORT:
			r.lengths[col] = 4;
			break;
		case BAD_WIDTH_LONG:
			r.lengths[col] = 9;
			break;
		case BAD_FLAGS_WIDTH:
			r.lengths[col] = 8;
			break;
		case BAD_UID_ZERO:
			row_make(&r, 0, 0, 1, 0, 0, 1, NULL);
			prev = 0;
			break;
		case BAD_UID_EQUAL:
			prev = 10;
			break;
		case BAD_UID_BELOW:
			prev = 11;
			break;
		case BAD_UID_PAST_32:
			row_make(&r, (uint64_t)UINT32_MAX + 1, 0, 1, 0, 0, 1, NULL);
			prev = 0;
			break;
		case BAD_KW_LENGTH:
			r.lengths[col] = -1;
			break;
		}
		if (imap_view_entry_parse(r.values, r.lengths, ncols, prev, &e) != -1)
			unit_fail(__FILE__, __LINE__, "case %zu accepted", i);
		CHECK(e.keywords == NULL); /* nothing allocated on a refusal */
	}
}

UNIT_TEST(append_number_table)
{
	static const struct {
		uint64_t n;
		const char *want;
	} cases[] = {
	    {0, "0"},
	    {7, "7"},
	    {10, "10"},
	    {100000, "100000"},
	    {UINT32_MAX, "4294967295"},
	    {UINT64_MAX, "18446744073709551615"},
	};
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&b);
		buf_append_str(&b, "x");
		imap_append_number(&b, cases[i].n);
		CHECK_STR(&buf_cstr(&b)[1], cases[i].want);
		CHECK_INT(b.len, 1 + strlen(cases[i].want));
	}
	buf_free(&b);
}

/* A session whose output goes to a socketpair; the view holds UIDs
 * uids[0..n) (keywords on the odd ones, to be freed with them). */
static void expunge_session(struct imap_session *s, int *peer_r, const uint32_t *uids, size_t n)
{
	int sv[2];
	memset(s, 0, sizeof(*s));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	*peer_r = sv[1];
	s->c = conn_new(sv[0], "test");
	s->state = IMAP_STATE_SELECTED;
	s->view.entries = calloc(n, sizeof(*s->view.entries));
	for (size_t i = 0; i < n; i++) {
		s->view.entries[i].uid = uids[i];
		if (i % 2 == 1) {
			s->view.entries[i].keywords = calloc(2, sizeof(char *));
			s->view.entries[i].keywords[0] = strdup("kw");
		}
	}
	s->view.count = s->view.cap = n;
}

/* What the session wrote, and the UIDs left in its view, as text. */
static void expunge_result(struct imap_session *s, int peer, char *out, size_t outlen, char *left,
                           size_t leftlen)
{
	conn_flush(s->c); /* on a socketpair the bytes are there when it returns */
	ssize_t r = recv(peer, out, outlen - 1, MSG_DONTWAIT);
	out[r > 0 ? r : 0] = '\0';
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	for (size_t i = 0; i < s->view.count; i++)
		buf_printf(&b, i == 0 ? "%u" : ",%u", s->view.entries[i].uid);
	snprintf(left, leftlen, "%s", buf_cstr(&b));
	buf_free(&b);
	close(peer);
	imap_view_close(s);
	conn_free(&s->c);
}

UNIT_TEST(view_expunged_numbers)
{
	static const uint32_t view[] = {2, 4, 5, 9, 10, 12};
	static const struct {
		uint32_t gone[6];
		size_t n;
		bool qresync;
		const char *out, *left;
	} cases[] = {
	    /* Highest first: each number is the message's when it is sent. */
	    {{4, 9, 12}, 3, false, "* 6 EXPUNGE\r\n* 4 EXPUNGE\r\n* 2 EXPUNGE\r\n", "2,5,10"},
	    {{2}, 1, false, "* 1 EXPUNGE\r\n", "4,5,9,10,12"},
	    /* Unknown UIDs and repeats are ignored. */
	    {{1, 3, 5, 5, 13}, 5, false, "* 3 EXPUNGE\r\n", "2,4,9,10,12"},
	    {{2, 4, 5, 9, 10, 12},
	     6,
	     false,
	     "* 6 EXPUNGE\r\n* 5 EXPUNGE\r\n* 4 EXPUNGE\r\n* 3 EXPUNGE\r\n* 2 EXPUNGE\r\n"
	     "* 1 EXPUNGE\r\n",
	     ""},
	    {{4, 5, 9, 12}, 4, true, "* VANISHED 4:5,9,12\r\n", "2,10"},
	    {{7}, 1, true, "", "2,4,5,9,10,12"},
	    {{0}, 0, false, "", "2,4,5,9,10,12"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct imap_session s;
		int peer;
		char out[512], left[128];
		expunge_session(&s, &peer, view, sizeof(view) / sizeof(view[0]));
		if (cases[i].qresync)
			s.enabled = IMAP_EXT_QRESYNC | IMAP_EXT_CONDSTORE;
		imap_view_expunged(&s, cases[i].gone, cases[i].n);
		expunge_result(&s, peer, out, sizeof(out), left, sizeof(left));
		CHECK_STR(out, cases[i].out);
		CHECK_STR(left, cases[i].left);
	}
}
