/* test-imap-thread.c - THREAD=REFERENCES and ORDEREDSUBJECT
 * (imap/search-thread.c) on threads as deep or as wide as a mailbox:
 * chains of 100,000 replies in and out of mailbox order, References that
 * name the last ten ancestors, deeply nested branches, one subject shared
 * by every message, reference loops and self-references. Each expects the
 * exact output, and none may overflow the stack (no recursion). */
#include "unit.h"

#include "arena.h"
#include "buf.h"
#include "imap-search.h"

#include <stdlib.h>

#define DEEP 100000

/* Messages 1..n (id = index + 1) with a subject of their own unless set. */
static struct imap_thread_msg *tmsgs(struct arena *a, size_t n)
{
	struct imap_thread_msg *m = calloc(n + 1, sizeof(*m));
	for (size_t i = 0; i < n; i++) {
		m[i] = (struct imap_thread_msg){
		    (uint32_t)i + 1, (time_t)i, "", "", "", arena_printf(a, "s%zu", i), false};
	}
	return m;
}

static char *tid(struct arena *a, size_t k)
{
	return arena_printf(a, "<c%zu@x>", k);
}

/* "(first ... last)" of a chain whose k-th reply is ids[k]. */
static void chain_expect(struct buf *b, const uint32_t *ids, size_t n)
{
	buf_reset(b);
	buf_append_char(b, '(');
	for (size_t k = 0; k < n; k++)
		buf_printf(b, k == 0 ? "%u" : " %u", ids[k]);
	buf_append_char(b, ')');
}

static void check_refs(struct imap_thread_msg *m, size_t n, const char *want)
{
	struct buf out;
	buf_init(&out, BUF_NO_LIMIT);
	imap_thread_references(m, n, &out);
	CHECK_STR(buf_cstr(&out), want);
	buf_free(&out);
}

UNIT_TEST(thread_deep_chain_in_order)
{
	struct arena *a = arena_new(1 << 20);
	struct imap_thread_msg *m = tmsgs(a, DEEP);
	uint32_t *ids = calloc(DEEP, sizeof(*ids));
	for (size_t i = 0; i < DEEP; i++) {
		m[i].message_id = tid(a, i);
		m[i].in_reply_to = i > 0 ? tid(a, i - 1) : "";
		ids[i] = (uint32_t)i + 1;
	}
	struct buf want;
	buf_init(&want, BUF_NO_LIMIT);
	chain_expect(&want, ids, DEEP);
	check_refs(m, DEEP, buf_cstr(&want));
	buf_free(&want);
	free(ids);
	free(m);
	arena_destroy(&a);
}

/* Newest first in the mailbox; References name up to ten ancestors, as
 * mail clients trim them. */
UNIT_TEST(thread_deep_chain_reversed_with_references)
{
	struct arena *a = arena_new(1 << 20);
	struct imap_thread_msg *m = tmsgs(a, DEEP);
	uint32_t *ids = calloc(DEEP, sizeof(*ids));
	struct buf refs;
	buf_init(&refs, BUF_NO_LIMIT);
	for (size_t i = 0; i < DEEP; i++) {
		size_t k = DEEP - 1 - i; /* depth in the chain */
		m[i].message_id = tid(a, k);
		m[i].date = (time_t)k;
		buf_reset(&refs);
		for (size_t j = k > 10 ? k - 10 : 0; j < k; j++)
			buf_printf(&refs, "<c%zu@x> ", j);
		m[i].references = arena_strdup(a, buf_cstr(&refs));
		ids[k] = (uint32_t)i + 1;
	}
	struct buf want;
	buf_init(&want, BUF_NO_LIMIT);
	chain_expect(&want, ids, DEEP);
	check_refs(m, DEEP, buf_cstr(&want));
	buf_free(&want);
	buf_free(&refs);
	free(ids);
	free(m);
	arena_destroy(&a);
}

/* A_k has two replies: B_k (earlier) and A_k+1, so the branches nest as
 * deep as the thread: (1 (2)(3 (4)(5 ... (n-1 n)...))). */
UNIT_TEST(thread_deep_nesting)
{
	size_t n = 2 * 25000;
	struct arena *a = arena_new(1 << 20);
	struct imap_thread_msg *m = tmsgs(a, n);
	struct buf want;
	buf_init(&want, BUF_NO_LIMIT);
	buf_append_char(&want, '(');
	for (size_t i = 0; i < n; i += 2) {
		m[i].message_id = tid(a, i);
		m[i].in_reply_to = i > 0 ? tid(a, i - 2) : "";
		m[i + 1].message_id = tid(a, i + 1);
		m[i + 1].in_reply_to = tid(a, i);
		if (i + 2 < n)
			buf_printf(&want, "%zu (%zu)(", i + 1, i + 2);
		else
			buf_printf(&want, "%zu %zu", i + 1, i + 2);
	}
	for (size_t i = 0; i < n / 2; i++)
		buf_append_char(&want, ')');
	check_refs(m, n, buf_cstr(&want));
	buf_free(&want);
	free(m);
	arena_destroy(&a);
}

/* Every message a root with one subject: one dummy with n children. */
UNIT_TEST(thread_wide_subject)
{
	size_t n = DEEP;
	struct arena *a = arena_new(1 << 20);
	struct imap_thread_msg *m = tmsgs(a, n);
	struct buf want;
	buf_init(&want, BUF_NO_LIMIT);
	buf_append_char(&want, '(');
	for (size_t i = 0; i < n; i++) {
		m[i].base_subject = "hello";
		buf_printf(&want, "(%zu)", i + 1);
	}
	buf_append_char(&want, ')');
	check_refs(m, n, buf_cstr(&want));
	buf_reset(&want);
	imap_thread_orderedsubject(m, n, &want);
	CHECK(want.len > 0 && strncmp(buf_cstr(&want), "(1 (2)(3)", 9) == 0);
	buf_free(&want);
	free(m);
	arena_destroy(&a);
}

/* One message whose References name 100,000 unknown ids: a chain of
 * dummies, all pruned. */
UNIT_TEST(thread_long_references)
{
	struct arena *a = arena_new(1 << 20);
	struct imap_thread_msg *m = tmsgs(a, 2);
	struct buf refs;
	buf_init(&refs, BUF_NO_LIMIT);
	for (size_t j = 0; j < DEEP; j++)
		buf_printf(&refs, "<c%zu@x>", j);
	m[0].message_id = "<me@x>";
	m[0].references = buf_cstr(&refs);
	m[1].message_id = "<c50000@x>"; /* in the middle of the chain */
	check_refs(m, 2, "(2 1)");
	buf_free(&refs);
	free(m);
	arena_destroy(&a);
}

UNIT_TEST(thread_loops_and_self_references)
{
	struct arena *a = arena_new(1 << 16);
	struct imap_thread_msg *m = tmsgs(a, 6);
	/* 1 and 2 refer to each other; 2 came second and keeps 1 below it. */
	m[0].message_id = "<a@x>";
	m[0].references = "<b@x>";
	m[1].message_id = "<b@x>";
	m[1].references = "<a@x>";
	/* 3 refers to itself, 4 names one id three times and itself. */
	m[2].message_id = "<s@x>";
	m[2].references = "<s@x>";
	m[2].in_reply_to = "<s@x>";
	m[3].message_id = "<t@x>";
	m[3].references = "<u@x> <u@x> <t@x> <u@x>";
	/* 5 -> 6 -> 5 through In-Reply-To only. */
	m[4].message_id = "<p@x>";
	m[4].in_reply_to = "<q@x>";
	m[5].message_id = "<q@x>";
	m[5].in_reply_to = "<p@x>";
	check_refs(m, 6, "(2 1)(3)(4)(6 5)");
	/* Broken brackets name nothing. */
	m[0].references = "<b@x";
	m[1].references = "<<>> <";
	check_refs(m, 2, "(1)(2)");
	free(m);
	arena_destroy(&a);
}
