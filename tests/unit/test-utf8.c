/* Well-formed UTF-8 (core/utf8.h), shared by MIME, addresses, IMAP and
 * the store. */
#include "unit.h"

#include "utf8.h"

#include <string.h>

static const struct {
	const char *s;
	size_t seq; /* utf8_seq_len of the first character, 0: malformed */
	uint32_t cp;
} seq_cases[] = {
    {"A", 1, 0x41},
    {"\x7f", 1, 0x7f},
    {"\xc2\x80", 2, 0x80},
    {"\xdf\xbf", 2, 0x7ff},
    {"\xe0\xa0\x80", 3, 0x800},
    {"\xef\xbf\xbf", 3, 0xffff},
    {"\xf0\x90\x80\x80", 4, 0x10000},
    {"\xf4\x8f\xbf\xbf", 4, 0x10ffff},
    {"\xc0\x80", 0, 0},         /* overlong NUL */
    {"\xc1\xbf", 0, 0},         /* overlong */
    {"\xe0\x80\x80", 0, 0},     /* overlong */
    {"\xf0\x80\x80\x80", 0, 0}, /* overlong */
    {"\xed\xa0\x80", 0, 0},     /* surrogate */
    {"\xed\xbf\xbf", 0, 0},     /* surrogate */
    {"\xf4\x90\x80\x80", 0, 0}, /* above U+10FFFF */
    {"\xf5\x80\x80\x80", 0, 0}, /* never a lead byte */
    {"\xff", 0, 0},
    {"\x80", 0, 0},         /* continuation alone */
    {"\xc3", 0, 0},         /* cut */
    {"\xe2\x82", 0, 0},     /* cut */
    {"\xe2\x28\xa1", 0, 0}, /* bad continuation */
};

UNIT_TEST(utf8_sequences)
{
	for (size_t i = 0; i < sizeof(seq_cases) / sizeof(seq_cases[0]); i++) {
		const unsigned char *s = (const unsigned char *)seq_cases[i].s;
		size_t len = strlen(seq_cases[i].s);
		uint32_t cp = 0;
		CHECK_INT(utf8_decode(s, len, &cp), seq_cases[i].seq);
		if (seq_cases[i].seq > 0)
			CHECK_INT(cp, seq_cases[i].cp);
		CHECK_INT(utf8_seq_len(s, len), seq_cases[i].seq);
		CHECK(utf8_valid(s, len) == (seq_cases[i].seq == len));
	}
}

/* A bad byte at every position of ASCII text of every length up to 40,
 * so each alignment of the eight-byte ASCII scan meets it. */
UNIT_TEST(utf8_valid_every_position)
{
	char buf[48];
	for (size_t len = 1; len <= 40; len++) {
		memset(buf, 'a', len);
		CHECK(utf8_valid(buf, len));
		CHECK_INT(utf8_ascii_span((const unsigned char *)buf, len), len);
		for (size_t at = 0; at < len; at++) {
			memset(buf, 'a', len);
			buf[at] = (char)0x80;
			CHECK(!utf8_valid(buf, len));
			CHECK_INT(utf8_ascii_span((const unsigned char *)buf, len), at);
			if (at + 2 <= len) {
				memcpy(buf + at, "\xc3\xa9", 2); /* é: well-formed */
				CHECK(utf8_valid(buf, len));
			}
		}
	}
	CHECK(utf8_valid("", 0));
	CHECK(utf8_valid("a\0b", 3)); /* NUL is a character here */
}

/* Every code point encodes to a sequence that decodes back to it. */
UNIT_TEST(utf8_encode_round_trip)
{
	static const struct {
		uint32_t cp;
		size_t len;
	} edges[] = {{0, 1},     {0x7f, 1},   {0x80, 2},    {0x7ff, 2},
	             {0x800, 3}, {0xffff, 3}, {0x10000, 4}, {0x10ffff, 4}};
	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
		char e[4];
		CHECK_INT(utf8_encode(edges[i].cp, e), edges[i].len);
	}
	for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		char e[4];
		uint32_t back = 0;
		size_t n = utf8_encode(cp, e);
		if (utf8_decode((const unsigned char *)e, n, &back) != n || back != cp) {
			unit_fail(__FILE__, __LINE__, "U+%04X does not round-trip", (unsigned)cp);
			break;
		}
	}
}
