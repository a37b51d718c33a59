/* test-imap-recent.c - the session's \Recent messages (imap/imap-recent.c):
 * which UIDs are recent for the claimed ranges, how many, and how the flag
 * is added to a FLAGS list; nothing for an IMAP4rev2 session. The claim
 * itself is one SQL statement, tested in tests/integration/test_imap_recent.py. */
#include "unit.h"

#include "imap-private.h"

#include <string.h>

static struct store_entry entries[] = {
    {.uid = 1, .flags = STORE_FLAG_SEEN},
    {.uid = 3, .flags = 0},
    {.uid = 4, .flags = STORE_FLAG_SEEN | STORE_FLAG_FLAGGED},
    {.uid = 9, .flags = 0},
};

static void session_with(struct imap_session *s, struct imap_recent_range *r, size_t n)
{
	memset(s, 0, sizeof(*s));
	s->view.entries = entries;
	s->view.count = sizeof(entries) / sizeof(entries[0]);
	s->view.recent = r;
	s->view.nrecent = n;
}

UNIT_TEST(recent_ranges_table)
{
	/* (1, 3] and (8, 20]: UIDs 2, 3 and 9 to 20. */
	struct imap_recent_range r[] = {{1, 3}, {8, 20}};
	static const struct {
		uint32_t uid;
		bool recent;
	} cases[] = {{1, false}, {2, true},  {3, true},   {4, false}, {8, false},
	             {9, true},  {20, true}, {21, false}, {0, false}};
	struct imap_session s;
	session_with(&s, r, 2);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (imap_recent_has(&s, cases[i].uid) != cases[i].recent)
			unit_fail(__FILE__, __LINE__, "uid %u", cases[i].uid);
	CHECK(imap_recent_count(&s) == 2); /* UIDs 3 and 9 are in the view */
	s.enabled = IMAP_EXT_REV2;
	CHECK(!imap_recent_has(&s, 3));
	CHECK(imap_recent_count(&s) == 0);
}

UNIT_TEST(recent_flags_format)
{
	struct imap_recent_range r[] = {{0, 9}};
	static const char *const want[] = {"(\\Seen \\Recent)", "(\\Recent)",
	                                   "(\\Seen \\Flagged \\Recent)", "(\\Recent)"};
	struct imap_session s;
	session_with(&s, r, 1);
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	for (size_t i = 0; i < 4; i++) {
		buf_reset(&b);
		imap_view_flags_format(&s, &entries[i], &b);
		CHECK_STR(buf_cstr(&b), want[i]);
	}
	session_with(&s, NULL, 0);
	buf_reset(&b);
	imap_view_flags_format(&s, &entries[1], &b);
	CHECK_STR(buf_cstr(&b), "()");
	buf_free(&b);
}
