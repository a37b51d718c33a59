/* POP3 command parser, argument parsers and the RETR/TOP encoder. */
#include "unit.h"

#include "arena.h"
#include "buf.h"
#include "pop3-private.h"

#include <stdio.h>
#include <stdlib.h>

#define N_ELEM(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
	const char *line;
	int status;
	const char *verb;
	size_t nargs;
	const char *arg0, *arg1, *rest;
} parse_cases[] = {
    {"STAT", 0, "STAT", 0, NULL, NULL, ""},
    {"stat", 0, "STAT", 0, NULL, NULL, ""},
    {"LIST 1", 0, "LIST", 1, "1", NULL, "1"},
    {"TOP 1 10", 0, "TOP", 2, "1", "10", "1 10"},
    {"TOP  1   10  ", 0, "TOP", 2, "1", "10", " 1   10  "},
    {"USER a@example.org", 0, "USER", 1, "a@example.org", NULL, "a@example.org"},
    {"PASS pass with spaces", 0, "PASS", 3, "pass", "with", "pass with spaces"},
    {"PASS a b c d e f", 0, "PASS", 6, "a", "b", "a b c d e f"},
    {"PASS s\xc3\xa9same", 0, "PASS", 1, "s\xc3\xa9same", NULL, "s\xc3\xa9same"},
    {"AUTH PLAIN AGEAYg==", 0, "AUTH", 2, "PLAIN", "AGEAYg==", "PLAIN AGEAYg=="},
    {"LIST ", 0, "LIST", 0, NULL, NULL, ""},
    {"XTNDXMIT", 0, "XTNDXMIT", 0, NULL, NULL, ""},
    {"", -1, NULL, 0, NULL, NULL, NULL},
    {" STAT", -1, NULL, 0, NULL, NULL, NULL},
    {"STAT\t1", -1, NULL, 0, NULL, NULL, NULL},
    {"ST4T", -1, NULL, 0, NULL, NULL, NULL},
    {"TOOLONGVERB", -1, NULL, 0, NULL, NULL, NULL},
    {"LIST 1\r", -1, NULL, 0, NULL, NULL, NULL},
    {"PASS a\x7f", -1, NULL, 0, NULL, NULL, NULL},
    {"Subject: hello", -1, NULL, 0, NULL, NULL, NULL},
    {"\xc3\xa9TAT", -1, NULL, 0, NULL, NULL, NULL},
};

UNIT_TEST(pop3_command_parse_table)
{
	struct arena *a = arena_new(1024);
	for (size_t i = 0; i < N_ELEM(parse_cases); i++) {
		struct pop3_command cmd;
		const char *err = NULL;
		int r = pop3_command_parse(parse_cases[i].line, strlen(parse_cases[i].line), a,
		                           &cmd, &err);
		if (r != parse_cases[i].status) {
			unit_fail(__FILE__, __LINE__, "case %zu \"%s\": status %d", i,
			          parse_cases[i].line, r);
			continue;
		}
		if (r < 0) {
			CHECK(err != NULL && err[0] != '\0');
			continue;
		}
		CHECK_STR(cmd.verb, parse_cases[i].verb);
		CHECK_INT(cmd.nargs, parse_cases[i].nargs);
		if (parse_cases[i].arg0 != NULL)
			CHECK_STR(cmd.args[0], parse_cases[i].arg0);
		if (parse_cases[i].arg1 != NULL)
			CHECK_STR(cmd.args[1], parse_cases[i].arg1);
		CHECK_STR(cmd.rest, parse_cases[i].rest);
		arena_reset(a);
	}
	arena_destroy(&a);
}

/* A NUL inside the line is a control byte too (the length says where the
 * line ends, not the NUL). */
UNIT_TEST(pop3_command_parse_nul)
{
	struct arena *a = arena_new(1024);
	struct pop3_command cmd;
	const char *err;
	CHECK_INT(pop3_command_parse("LIST\0 1", 7, a, &cmd, &err), -1);
	CHECK_INT(pop3_command_parse("PASS a\0b", 8, a, &cmd, &err), -1);
	arena_destroy(&a);
}

UNIT_TEST(pop3_command_wipe_block)
{
	struct arena *a = arena_new(1024);
	struct pop3_command cmd;
	const char *err;
	CHECK_INT(pop3_command_parse("PASS secret word", 16, a, &cmd, &err), 0);
	CHECK(cmd.copy != NULL);
	CHECK(cmd.rest >= cmd.copy && cmd.rest < cmd.copy + cmd.copy_len);
	CHECK(cmd.args[1] >= cmd.copy && cmd.args[1] + 5 <= cmd.copy + cmd.copy_len);
	explicit_bzero(cmd.copy, cmd.copy_len);
	CHECK_STR(cmd.rest, "");
	CHECK_STR(cmd.args[0], "");
	CHECK_STR(cmd.args[1], "");
	arena_destroy(&a);
}

static const struct {
	const char *s;
	size_t nmsgs;
	int status;
	size_t index;
} msgnum_cases[] = {
    {"1", 3, 0, 0},
    {"3", 3, 0, 2},
    {"4", 3, -1, 0},
    {"0", 3, -1, 0},
    {"", 3, -1, 0},
    {"-1", 3, -1, 0},
    {"+1", 3, -1, 0},
    {"1a", 3, -1, 0},
    {" 1", 3, -1, 0},
    {"01", 3, 0, 0},
    {"1", 0, -1, 0},
    {"99999999999999999999999", 3, -1, 0},
    {"18446744073709551616", 3, -1, 0},
};

UNIT_TEST(pop3_msgnum_table)
{
	for (size_t i = 0; i < N_ELEM(msgnum_cases); i++) {
		size_t idx = 99;
		int r = pop3_parse_msgnum(msgnum_cases[i].s, msgnum_cases[i].nmsgs, &idx);
		CHECK_INT(r, msgnum_cases[i].status);
		if (r == 0)
			CHECK_INT(idx, msgnum_cases[i].index);
	}
}

UNIT_TEST(pop3_lines_and_expire)
{
	uint64_t n;
	CHECK(pop3_parse_lines("0", &n) == 0 && n == 0);
	CHECK(pop3_parse_lines("25", &n) == 0 && n == 25);
	CHECK(pop3_parse_lines("99999999999999999999999", &n) == 0 && n == UINT64_MAX);
	CHECK_INT(pop3_parse_lines("", &n), -1);
	CHECK_INT(pop3_parse_lines("-1", &n), -1);
	CHECK_INT(pop3_parse_lines("1x", &n), -1);
	int64_t d;
	CHECK(pop3_parse_expire("NEVER", &d) == 0 && d == -1);
	CHECK(pop3_parse_expire("never", &d) == 0 && d == -1);
	CHECK(pop3_parse_expire("0", &d) == 0 && d == 0);
	CHECK(pop3_parse_expire("30", &d) == 0 && d == 30);
	CHECK_INT(pop3_parse_expire("36501", &d), -1);
	CHECK_INT(pop3_parse_expire("30d", &d), -1);
	CHECK_INT(pop3_parse_expire("", &d), -1);
	CHECK_INT(pop3_parse_expire(" 3", &d), -1);
}

static const struct {
	const char *in;
	bool top;
	uint64_t lines;
	const char *out;
} enc_cases[] = {
    {"A: b\r\n\r\nbody\r\n", false, 0, "A: b\r\n\r\nbody\r\n.\r\n"},
    {"A: b\n\nbody\n", false, 0, "A: b\r\n\r\nbody\r\n.\r\n"},
    {"A: b\n\nno end", false, 0, "A: b\r\n\r\nno end\r\n.\r\n"},
    {"A: b\n\n.dot\n..two\n.\n", false, 0, "A: b\r\n\r\n..dot\r\n...two\r\n..\r\n.\r\n"},
    {".A: b\r\n\r\nx.y\r\n", false, 0, "..A: b\r\n\r\nx.y\r\n.\r\n"},
    {"A: b\r\n\r\nx\rend", false, 0, "A: b\r\n\r\nx\rend\r\n.\r\n"},
    {"A: b\r\n\r\nx\r", false, 0, "A: b\r\n\r\nx\r\r\n.\r\n"},
    {"A: b\r\n\r\n1\r\n2\r\n3\r\n", true, 0, "A: b\r\n\r\n.\r\n"},
    {"A: b\r\n\r\n1\r\n2\r\n3\r\n", true, 2, "A: b\r\n\r\n1\r\n2\r\n.\r\n"},
    {"A: b\r\n\r\n1\r\n2\r\n3\r\n", true, 100, "A: b\r\n\r\n1\r\n2\r\n3\r\n.\r\n"},
    {"A: b\n\n1\n.2\n3", true, 2, "A: b\r\n\r\n1\r\n..2\r\n.\r\n"},
    {"A: b\n\n1\n2\n3", true, 5, "A: b\r\n\r\n1\r\n2\r\n3\r\n.\r\n"},
    {"A: b\r\nC: d\r\n", true, 0, "A: b\r\nC: d\r\n.\r\n"},
    {"A: b\r\n\r\n\r\n\r\nx\r\n", true, 1, "A: b\r\n\r\n\r\n.\r\n"},
};

static void encode_in_slices(size_t i, size_t slice, struct buf *out)
{
	struct pop3_encoder e;
	pop3_encoder_init(&e, enc_cases[i].top, enc_cases[i].lines);
	const char *in = enc_cases[i].in;
	size_t len = strlen(in);
	for (size_t off = 0; off < len; off += slice)
		CHECK(pop3_encode(&e, in + off, off + slice <= len ? slice : len - off, out) == 0);
	CHECK(pop3_encode_finish(&e, out) == 0);
}

/* Whole, byte by byte, and in slices of 2 and 3: the same output. */
UNIT_TEST(pop3_encoder_table)
{
	static const size_t slices[] = {1000, 1, 2, 3};
	for (size_t i = 0; i < N_ELEM(enc_cases); i++) {
		for (size_t k = 0; k < N_ELEM(slices); k++) {
			struct buf out;
			buf_init(&out, BUF_NO_LIMIT);
			encode_in_slices(i, slices[k], &out);
			if (strcmp(buf_cstr(&out), enc_cases[i].out) != 0)
				unit_fail(__FILE__, __LINE__, "case %zu slice %zu: got \"%s\"", i,
				          slices[k], buf_cstr(&out));
			buf_free(&out);
		}
	}
}

/* The size LIST announces equals RETR's octets less the stuffing and the
 * final ".\r\n" (what a client counts after un-stuffing). */
UNIT_TEST(pop3_wire_size_matches_encoder)
{
	for (size_t i = 0; i < N_ELEM(enc_cases); i++) {
		if (enc_cases[i].top)
			continue;
		struct buf out;
		buf_init(&out, BUF_NO_LIMIT);
		encode_in_slices(i, 7, &out);
		size_t stuffed = 0;
		bool bol = true;
		for (size_t j = 0; j + 3 < out.len; j++) {
			if (bol && out.data[j] == '.')
				stuffed++, j++;
			bol = out.data[j] == '\n';
		}
		const char *in = enc_cases[i].in;
		CHECK_INT(pop3_wire_size(in, strlen(in)), out.len - 3 - stuffed);
		buf_free(&out);
	}
}
