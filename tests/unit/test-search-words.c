/* The distinct words of a text (core/search-words.h). */
#include "unit.h"

#include "buf.h"
#include "search-words.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *text;
	const char *words;
} words_cases[] = {
    {"", ""},
    {"   ,,, !!", ""},
    {"hello", " hello "},
    {"hello world hello", " hello world "},
    {"a-b_c.d@e", " a b c d e "},
    {"Quarterly report, quarterly REPORT", " Quarterly report quarterly REPORT "},
    {"x\r\ny\tx\0y", " x y "}, /* NUL separates (cut at the NUL by strlen here) */
    {"Zürich Kraków Zürich", " Zürich Kraków "},
    {"\xc3\xa9t\xc3\xa9 caf\xc3\xa9", " \xc3\xa9t\xc3\xa9 caf\xc3\xa9 "},
    {"naïve—dash", " naïve—dash "}, /* an em dash is not ASCII: inside the word */
    {"\x80\xff broken \x80\xff", " \x80\xff broken "},
    {"tab\x7f"
     "del",
     " tab del "},
    {"rare7 rare77 rare7", " rare7 rare77 "},
};

UNIT_TEST(search_words_table)
{
	for (size_t i = 0; i < sizeof(words_cases) / sizeof(words_cases[0]); i++) {
		struct buf b;
		buf_init(&b, BUF_NO_LIMIT);
		CHECK_INT(search_words(words_cases[i].text, strlen(words_cases[i].text), &b), 0);
		CHECK_STR(buf_cstr(&b), words_cases[i].words);
		buf_free(&b);
	}
}

/* Every separator byte, and the 62 ASCII letters and digits that are not. */
UNIT_TEST(search_words_separators)
{
	int words = 0;
	for (int c = 0; c < 256; c++) {
		bool alnum =
		    (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
		CHECK(search_word_separator((unsigned char)c) == (c < 0x80 && !alnum));
		words += !search_word_separator((unsigned char)c);
	}
	CHECK_INT(words, 62 + 128);
}

/* Many distinct words (the table grows), each once, in order; a limit on
 * the output is reported. */
UNIT_TEST(search_words_many_and_limit)
{
	struct buf text, want, got;
	buf_init(&text, BUF_NO_LIMIT);
	buf_init(&want, BUF_NO_LIMIT);
	for (int i = 0; i < 20000; i++) {
		buf_printf(&text, "w%d, w%d; ", i, i / 2);
		buf_printf(&want, " w%d", i);
	}
	buf_append_char(&want, ' ');
	buf_init(&got, BUF_NO_LIMIT);
	CHECK_INT(search_words(text.data, text.len, &got), 0);
	CHECK(got.len == want.len && memcmp(got.data, want.data, got.len) == 0);
	buf_free(&got);
	buf_init(&got, 100);
	CHECK_INT(search_words(text.data, text.len, &got), -1);
	CHECK(got.len <= 100);
	buf_free(&got);
	buf_free(&text);
	buf_free(&want);
}

/* A string without separators is in a text exactly when it is in the
 * text's words: checked on random texts over a small alphabet. */
UNIT_TEST(search_words_keep_substrings)
{
	static const char alphabet[] = "ab .\xc3\xa9";
	unsigned seed = 12345;
	for (int round = 0; round < 2000; round++) {
		char text[40], needle[5];
		size_t n = 1 + (size_t)(rand_r(&seed) % 39), m = 1 + (size_t)(rand_r(&seed) % 4);
		for (size_t i = 0; i < n; i++)
			text[i] = alphabet[rand_r(&seed) % 6];
		text[n] = '\0';
		size_t k = 0;
		while (k < m) {
			char c = alphabet[rand_r(&seed) % 6];
			if (!search_word_separator((unsigned char)c))
				needle[k++] = c;
		}
		needle[m] = '\0';
		struct buf w;
		buf_init(&w, BUF_NO_LIMIT);
		search_words(text, n, &w);
		CHECK((strstr(text, needle) != NULL) == (strstr(buf_cstr(&w), needle) != NULL));
		buf_free(&w);
	}
}

static const struct {
	const char *in, *out;
} lower_cases[] = {
    {"", ""},
    {"Quarterly REPORT 2024, Q3!", "quarterly report 2024, q3!"},
    {"\xc3\x80\xc3\x89\xc3\x8e \xc3\xa0", "\xc3\xa0\xc3\xa9\xc3\xae \xc3\xa0"}, /* ÀÉÎ à */
    {"\xce\xa3\xce\x9f\xce\xa6\xce\x99\xce\x91",
     "\xcf\x83\xce\xbf\xcf\x86\xce\xb9\xce\xb1"}, /* ΣΟΦΙΑ */
    {"\xd0\x96\xd0\x97", "\xd0\xb6\xd0\xb7"},     /* ЖЗ */
    {"\xc4\xb0stanbul", "istanbul"},              /* İ: one byte shorter */
    {"\xe2\x84\xaa"
     "elvin",
     "kelvin"},                                               /* KELVIN SIGN */
    {"\xf0\x90\x90\x80", "\xf0\x90\x90\xa8"},                 /* DESERET CAPITAL LONG I */
    {"\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac"}, /* no case */
    {"A\x80Z\xff", "a\x80z\xff"},                             /* broken bytes stay */
    {"\xc3", "\xc3"},                                         /* a sequence cut short */
};

UNIT_TEST(search_lower_table)
{
	for (size_t i = 0; i < sizeof(lower_cases) / sizeof(lower_cases[0]); i++) {
		struct buf out;
		buf_init(&out, BUF_NO_LIMIT);
		CHECK_INT(search_lower(lower_cases[i].in, strlen(lower_cases[i].in), &out), 0);
		CHECK_STR(buf_cstr(&out), lower_cases[i].out);
		buf_free(&out);
	}
}

UNIT_TEST(search_lower_limit)
{
	struct buf out;
	buf_init(&out, 8);
	CHECK_INT(search_lower("ABCDEFGHIJKLMNOP", 16, &out), -1);
	buf_free(&out);
}
