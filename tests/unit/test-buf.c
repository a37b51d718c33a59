/* The buffer, arena and log helpers of core/. */
#include "unit.h"

#include "arena.h"
#include "buf.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>

UNIT_TEST(buf_append_and_limit)
{
	struct buf b;
	buf_init(&b, 10);
	CHECK_STR(buf_cstr(&b), "");
	CHECK(buf_append(&b, "hello", 5) == 0);
	CHECK(buf_append_str(&b, "world") == 0);
	CHECK_INT(b.len, 10);
	CHECK(buf_append_char(&b, '!') == -1); /* past max: unchanged */
	CHECK_STR(buf_cstr(&b), "helloworld");
	CHECK(buf_printf(&b, "%d", 1) == -1);
	buf_consume(&b, 5);
	CHECK_STR(buf_cstr(&b), "world");
	buf_truncate(&b, 2);
	CHECK_STR(buf_cstr(&b), "wo");
	buf_reset(&b);
	CHECK_INT(b.len, 0);
	buf_free(&b);
}

UNIT_TEST(buf_binary_and_large_printf)
{
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	CHECK(buf_append(&b, "a\0b", 3) == 0);
	CHECK_INT(b.len, 3);
	CHECK(memcmp(b.data, "a\0b", 3) == 0);
	char big[1000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK(buf_printf(&b, "<%s>", big) == 0);
	CHECK_INT(b.len, 3 + 1001);
	CHECK(b.data[b.len] == '\0');
	size_t len;
	char *p = buf_steal(&b, &len);
	CHECK_INT(len, 1004);
	CHECK(b.data == NULL && b.len == 0);
	free(p);
}

UNIT_TEST(buf_escaped)
{
	struct buf b;
	buf_init(&b, 1000);
	buf_append_escaped(&b, "a\r\nb\"c\\\x01\x7f", 9, 100);
	CHECK_STR(buf_cstr(&b), "a\\r\\nb\\\"c\\\\\\x01\\x7f");
	buf_reset(&b);
	buf_append_escaped(&b, "abcdef", 6, 3);
	CHECK_STR(buf_cstr(&b), "abc...");
	buf_free(&b);
	CHECK(mem_eq_ci("InBoX", 5, "inbox"));
	CHECK(!mem_eq_ci("InBoX", 4, "inbox"));
	CHECK(str_starts_ci("STARTTLS", "start"));
}

UNIT_TEST(arena_lifetime)
{
	struct arena *a = arena_new(256);
	char *s = arena_strdup(a, "hello");
	CHECK_STR(s, "hello");
	void *big = arena_alloc(a, 100000); /* larger than a block */
	CHECK(big != NULL);
	CHECK(((uintptr_t)big & 15) == 0);
	memset(big, 1, 100000);
	char *f = arena_printf(a, "%s-%d", "x", 42);
	CHECK_STR(f, "x-42");
	CHECK(arena_used(a) >= 100000);
	for (int i = 0; i < 1000; i++)
		CHECK(arena_alloc(a, 24) != NULL);
	arena_reset(a);
	CHECK_INT(arena_used(a), 0);
	char *z = arena_alloc(a, 64);
	for (int i = 0; i < 64; i++)
		CHECK(z[i] == 0);
	arena_destroy(&a);
	CHECK(a == NULL);
	arena_destroy(&a); /* NULL is fine */
}

UNIT_TEST(log_quote_escapes)
{
	char q[LOG_QUOTE_MAX];
	CHECK_STR(log_quote(q, sizeof(q), "a\r\nb"), "\"a\\r\\nb\"");
	CHECK_STR(log_quote(q, sizeof(q), NULL), "\"\"");
	char longs[500];
	memset(longs, 'y', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = '\0';
	log_quote(q, sizeof(q), longs);
	CHECK_INT(strlen(q), 200 + 3 + 2);
	char id[24];
	log_new_id("imap", id, sizeof(id));
	CHECK(strncmp(id, "imap-", 5) == 0 && strlen(id) == 13);
	enum log_level l;
	CHECK(log_parse_level("WARN", &l) == 0 && l == LOG_WARN);
	CHECK(log_parse_level("loud", &l) == -1);
}
