/* test-ldap-filter.c - RFC 4515 filter value and RFC 4514 DN value
 * escaping, and the login filter built from them: no input can change a
 * filter's shape. */
#include "unit.h"

#include "ldap-private.h"

#include <stdio.h>

struct esc_case {
	const char *in;
	size_t len; /* 0: strlen(in) */
	const char *filter;
	const char *dn;
};

static const struct esc_case esc_cases[] = {
    {"alice", 0, "alice", "alice"},
    {"*", 0, "\\2a", "*"},
    {"a*b*", 0, "a\\2ab\\2a", "a*b*"},
    {"(", 0, "\\28", "("},
    {")", 0, "\\29", ")"},
    {"*)(uid=*", 0, "\\2a\\29\\28uid=\\2a", "*)(uid\\=*"},
    {"alice)(|(uid=*)", 0, "alice\\29\\28|\\28uid=\\2a\\29", "alice)(|(uid\\=*)"},
    {"\\", 0, "\\5c", "\\\\"},
    {"a\\2a", 0, "a\\5c2a", "a\\\\2a"},
    {"nul\0after", 9, "nul\\00after", "nul\\00after"},
    {"\0", 1, "\\00", "\\00"},
    {"Jürgen", 0, "Jürgen", "Jürgen"},
    {"日本語@例え.テスト", 0, "日本語@例え.テスト", "日本語@例え.テスト"},
    {"\xc3\xa9*", 0, "\xc3\xa9\\2a", "\xc3\xa9*"},
    {"Smith, John", 0, "Smith, John", "Smith\\, John"},
    {" lead", 0, " lead", "\\ lead"},
    {"trail ", 0, "trail ", "trail\\ "},
    {"#hash", 0, "#hash", "\\#hash"},
    {"a+b;c<d>e\"f", 0, "a+b;c<d>e\"f", "a\\+b\\;c\\<d\\>e\\\"f"},
    {"", 0, "", ""},
};

UNIT_TEST(ldap_filter_escape_table)
{
	for (size_t i = 0; i < sizeof(esc_cases) / sizeof(esc_cases[0]); i++) {
		const struct esc_case *c = &esc_cases[i];
		size_t len = c->len != 0 ? c->len : strlen(c->in);
		struct buf b;
		buf_init(&b, 1024);
		CHECK_INT(ldapx_filter_escape(&b, c->in, len), 0);
		CHECK_STR(buf_cstr(&b), c->filter);
		buf_reset(&b);
		CHECK_INT(ldapx_dn_escape(&b, c->in, len), 0);
		CHECK_STR(buf_cstr(&b), c->dn);
		buf_free(&b);
	}
}

/* Byte by byte: escaping a string piecewise gives the same as at once. */
UNIT_TEST(ldap_filter_escape_bytewise)
{
	for (size_t i = 0; i < sizeof(esc_cases) / sizeof(esc_cases[0]); i++) {
		const struct esc_case *c = &esc_cases[i];
		size_t len = c->len != 0 ? c->len : strlen(c->in);
		struct buf b;
		buf_init(&b, 1024);
		for (size_t j = 0; j < len; j++)
			CHECK_INT(ldapx_filter_escape(&b, c->in + j, 1), 0);
		CHECK_STR(buf_cstr(&b), c->filter);
		buf_free(&b);
	}
}

/* Escaped output never holds an unescaped special: parentheses stay
 * balanced whatever the input. */
UNIT_TEST(ldap_filter_escape_all_bytes)
{
	char in[256];
	for (int i = 0; i < 256; i++)
		in[i] = (char)i;
	struct buf b;
	buf_init(&b, 4096);
	CHECK_INT(ldapx_filter_escape(&b, in, sizeof(in)), 0);
	for (size_t i = 0; i < b.len; i++) {
		CHECK(b.data[i] != '(' && b.data[i] != ')' && b.data[i] != '*' &&
		      b.data[i] != '\0');
		if (b.data[i] == '\\')
			CHECK(i + 2 < b.len);
	}
	CHECK_INT(b.len, 256 - 5 + 5 * 3);
	buf_free(&b);
}

struct any_case {
	const char *base, *attrs, *value;
	const char *filter;
};

static const struct any_case any_cases[] = {
    {"(objectClass=inetOrgPerson)", "uid mail", "alice",
     "(&(objectClass=inetOrgPerson)(|(uid=alice)(mail=alice)))"},
    {"", "uid", "*", "(&(|(uid=\\2a)))"},
    {"(objectClass=user)", "sAMAccountName, userPrincipalName", "x)(objectClass=*",
     "(&(objectClass=user)(|(sAMAccountName=x\\29\\28objectClass=\\2a)"
     "(userPrincipalName=x\\29\\28objectClass=\\2a)))"},
    {"(a=b)", "  uid  ", "\\", "(&(a=b)(|(uid=\\5c)))"},
};

UNIT_TEST(ldap_filter_any_table)
{
	for (size_t i = 0; i < sizeof(any_cases) / sizeof(any_cases[0]); i++) {
		const struct any_case *c = &any_cases[i];
		struct buf b;
		buf_init(&b, 1024);
		CHECK_INT(ldapx_filter_any(&b, c->base, c->attrs, c->value, strlen(c->value)), 0);
		CHECK_STR(buf_cstr(&b), c->filter);
		buf_free(&b);
	}
}

UNIT_TEST(ldap_filter_any_full_buffer)
{
	struct buf b;
	buf_init(&b, 16);
	CHECK_INT(ldapx_filter_any(&b, "(objectClass=inetOrgPerson)", "uid", "x", 1), -1);
	buf_free(&b);
	buf_init(&b, 4);
	CHECK_INT(ldapx_filter_escape(&b, "****", 4), -1);
	buf_free(&b);
}
