#include "unit.h"

#include "address.h"

#include <stdio.h>
#include <stdlib.h>

struct addr_case {
	const char *input;
	size_t len; /* 0: strlen(input) */
	int status;
	const char *local;  /* canonical */
	const char *domain; /* normalised */
};

static const struct addr_case addr_cases[] = {
    {"user@example.com", 0, 0, "user", "example.com"},
    {"User.Name@Example.COM", 0, 0, "User.Name", "example.com"},
    {"a@b", 0, 0, "a", "b"},
    {"!#$%&'*+-/=?^_`{|}~@x.org", 0, 0, "!#$%&'*+-/=?^_`{|}~", "x.org"},
    {"first.middle.last@sub.example.co.uk", 0, 0, "first.middle.last", "sub.example.co.uk"},
    {"\"john doe\"@example.com", 0, 0, "\"john doe\"", "example.com"},
    {"\"john\"@example.com", 0, 0, "john", "example.com"},
    {"\"j.o\"@example.com", 0, 0, "j.o", "example.com"},
    {"\"a\\\\b\"@x", 0, 0, "\"a\\\\b\"", "x"},
    {"\"a\\b\"@x", 0, 0, "ab", "x"},
    {"\"a\\\"b\"@x", 0, 0, "\"a\\\"b\"", "x"},
    {"\"a@b\"@x", 0, 0, "\"a@b\"", "x"},
    {"\"a..b\"@x", 0, 0, "\"a..b\"", "x"},
    {"\"\"@x", 0, 0, "\"\"", "x"},
    {"user@[192.0.2.1]", 0, 0, "user", "[192.0.2.1]"},
    {"user@[IPv6:2001:DB8::1]", 0, 0, "user", "[IPv6:2001:db8::1]"},
    {"user@[ipv6:::1]", 0, 0, "user", "[IPv6:::1]"},
    {"user@xn--bcher-kva.example", 0, 0, "user", "xn--bcher-kva.example"},
    {"user@1.2.3.4", 0, 0, "user", "1.2.3.4"},
    {"\xce\xb4\xce\xbf\xce\xba@\xcf\x80\xce\xb1.\xce\xb4\xce\xbf", 0, 0, "\xce\xb4\xce\xbf\xce\xba",
     "\xcf\x80\xce\xb1.\xce\xb4\xce\xbf"},
    {"\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.COM", 0, 0, "\xe7\x94\xa8\xe6\x88\xb7",
     "\xe4\xbe\x8b\xe5\xad\x90.com"},
    {"\"\xc3\xa9 t\"@x", 0, 0, "\"\xc3\xa9 t\"", "x"},
    {"\xf0\x9f\x98\x80@x", 0, 0, "\xf0\x9f\x98\x80", "x"},
    /* malformed */
    {"", 0, -1, NULL, NULL},
    {"userexample.com", 0, -1, NULL, NULL},
    {"a@b@c", 0, -1, NULL, NULL},
    {"@example.com", 0, -1, NULL, NULL},
    {"user@", 0, -1, NULL, NULL},
    {"@", 0, -1, NULL, NULL},
    {".user@x", 0, -1, NULL, NULL},
    {"user.@x", 0, -1, NULL, NULL},
    {"us..er@x", 0, -1, NULL, NULL},
    {"user@.x", 0, -1, NULL, NULL},
    {"user@x.", 0, -1, NULL, NULL},
    {"user@x..y", 0, -1, NULL, NULL},
    {"user@-x.com", 0, -1, NULL, NULL},
    {"user@x-.com", 0, -1, NULL, NULL},
    {"user@exa_mple.com", 0, -1, NULL, NULL},
    {"user@ex ample.com", 0, -1, NULL, NULL},
    {"us er@x", 0, -1, NULL, NULL},
    {" user@x", 0, -1, NULL, NULL},
    {"user@x ", 0, -1, NULL, NULL},
    {"user\x01@x", 0, -1, NULL, NULL},
    {"user\x7f@x", 0, -1, NULL, NULL},
    {"user@x\x01", 0, -1, NULL, NULL},
    {"\"us\x01er\"@x", 0, -1, NULL, NULL},
    {"\"us\ter\"@x", 0, -1, NULL, NULL},
    {"\"a\\\x01\"@x", 0, -1, NULL, NULL},
    {"\"user@x", 0, -1, NULL, NULL},
    {"user\"@x", 0, -1, NULL, NULL},
    {"\"a\"b@x", 0, -1, NULL, NULL},
    {"\"a\\\"@x", 0, -1, NULL, NULL},
    {"a(comment)@x", 0, -1, NULL, NULL},
    {"<user@x>", 0, -1, NULL, NULL},
    {"\xc3\x28@x", 0, -1, NULL, NULL},
    {"\xed\xa0\x80@x", 0, -1, NULL, NULL},
    {"\xc0\xaf@x", 0, -1, NULL, NULL},
    {"\xf4\x90\x80\x80@x", 0, -1, NULL, NULL},
    {"\xff@x", 0, -1, NULL, NULL},
    {"\xc3@x", 0, -1, NULL, NULL},
    {"user@\xc3\x28.com", 0, -1, NULL, NULL},
    {"\"\xc3\"@x", 0, -1, NULL, NULL},
    {"user@[1.2.3]", 0, -1, NULL, NULL},
    {"user@[1.2.3.4", 0, -1, NULL, NULL},
    {"user@[01.2.3.4]", 0, -1, NULL, NULL},
    {"user@[256.1.1.1]", 0, -1, NULL, NULL},
    {"user@[IPv6:zz]", 0, -1, NULL, NULL},
    {"user@[IPv6:1.2.3.4]", 0, -1, NULL, NULL},
    {"user@[tag:stuff]", 0, -1, NULL, NULL},
    {"user@[]", 0, -1, NULL, NULL},
    {"user@[1.2.3.4]x", 0, -1, NULL, NULL},
    {"user@x\0y", 8, -1, NULL, NULL},
    {"us\0er@x", 8, -1, NULL, NULL},
};

static char *exact_copy(const char *s, size_t len)
{
	/* No terminating NUL: ASan catches any read past len. */
	char *p = malloc(len == 0 ? 1 : len);
	memcpy(p, s, len);
	return p;
}

UNIT_TEST(address_parse_table)
{
	for (size_t i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]); i++) {
		const struct addr_case *c = &addr_cases[i];
		size_t len = c->len != 0 ? c->len : strlen(c->input);
		char *in = exact_copy(c->input, len);
		struct address a;
		const char *err = NULL;
		int ret = address_parse(in, len, &a, &err);
		if (ret != c->status)
			unit_fail(__FILE__, __LINE__,
			          "case %zu \"%s\": status %d, expected %d (%s)", i, c->input, ret,
			          c->status, ret < 0 ? err : "");
		if (ret == 0 && c->status == 0) {
			CHECK_STR(a.local, c->local);
			CHECK_STR(a.domain, c->domain);
			CHECK_INT(a.local_len, strlen(c->local));
			CHECK_INT(a.domain_len, strlen(c->domain));
		}
		if (ret < 0)
			CHECK(err != NULL && err[0] != '\0');
		free(in);
	}
}

/* Every prefix of every case, as an exact-length buffer: no crash, no read
 * past the end, and any success is self-consistent. */
UNIT_TEST(address_parse_prefixes)
{
	for (size_t i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]); i++) {
		const struct addr_case *c = &addr_cases[i];
		size_t len = c->len != 0 ? c->len : strlen(c->input);
		for (size_t n = 0; n <= len; n++) {
			char *in = exact_copy(c->input, n);
			struct address a;
			const char *err = NULL;
			if (address_parse(in, n, &a, &err) == 0) {
				char out[ADDRESS_BUF_SIZE];
				address_format(&a, out);
				CHECK(strlen(out) <= n);
				CHECK(a.local_len > 0 && a.domain_len > 0);
				/* The canonical form parses to itself. */
				struct address b;
				CHECK(address_parse(out, strlen(out), &b, &err) == 0);
				CHECK_STR(b.local, a.local);
				CHECK_STR(b.domain, a.domain);
			} else
				CHECK(err != NULL);
			free(in);
		}
	}
}

static void repeat(char *out, char c, size_t n)
{
	memset(out, c, n);
	out[n] = '\0';
}

UNIT_TEST(address_length_limits)
{
	char buf[600], local[100];
	struct address a;
	const char *err;

	repeat(local, 'a', 64);
	snprintf(buf, sizeof(buf), "%s@x", local);
	CHECK(address_parse(buf, strlen(buf), &a, &err) == 0);
	repeat(local, 'a', 65);
	snprintf(buf, sizeof(buf), "%s@x", local);
	CHECK(address_parse(buf, strlen(buf), &a, &err) == -1);
	CHECK_STR(err, "local part too long");
	/* A quoted local part counts with its quotes. */
	repeat(local, 'a', 63);
	snprintf(buf, sizeof(buf), "\"%s\"@x", local);
	CHECK(address_parse(buf, strlen(buf), &a, &err) == -1);

	/* Label of 63 octets is fine, 64 is not. */
	repeat(local, 'b', 63);
	snprintf(buf, sizeof(buf), "u@%s.com", local);
	CHECK(address_parse(buf, strlen(buf), &a, &err) == 0);
	repeat(local, 'b', 64);
	snprintf(buf, sizeof(buf), "u@%s.com", local);
	CHECK(address_parse(buf, strlen(buf), &a, &err) == -1);

	/* Total 254 octets: 64 + 1 + 189. */
	char dom[300];
	repeat(local, 'a', 64);
	snprintf(dom, sizeof(dom), "%.63s.%.63s.%.61s", buf + 2, buf + 2, buf + 2);
	for (size_t i = 0; dom[i] != '\0'; i++)
		if (dom[i] != '.')
			dom[i] = 'c';
	CHECK_INT(strlen(dom), 189);
	snprintf(buf, sizeof(buf), "%s@%s", local, dom);
	CHECK_INT(strlen(buf), 254);
	CHECK(address_parse(buf, strlen(buf), &a, &err) == 0);
	snprintf(buf, sizeof(buf), "%s@%sc", local, dom);
	CHECK(address_parse(buf, strlen(buf), &a, &err) == -1);
	CHECK_STR(err, "address too long");
}

UNIT_TEST(address_domain_validity)
{
	char name[400];
	CHECK(address_is_valid_domain("example.com"));
	CHECK(address_is_valid_domain("EXAMPLE.org"));
	CHECK(address_is_valid_domain("localhost"));
	CHECK(address_is_valid_domain("a-b.c1"));
	CHECK(address_is_valid_domain("\xe4\xbe\x8b\xe5\xad\x90.com"));
	CHECK(!address_is_valid_domain(""));
	CHECK(!address_is_valid_domain("a..b"));
	CHECK(!address_is_valid_domain(".a"));
	CHECK(!address_is_valid_domain("a."));
	CHECK(!address_is_valid_domain("-a.b"));
	CHECK(!address_is_valid_domain("a_b.c"));
	CHECK(!address_is_valid_domain("[1.2.3.4]"));
	CHECK(!address_is_valid_domain("a b"));
	CHECK(!address_is_valid_domain("\xc3\x28.com"));
	/* 255 octets in labels of 63: fine; 256: not. */
	snprintf(name, sizeof(name), "%063d.%063d.%063d.%063d", 0, 0, 0, 0);
	CHECK_INT(strlen(name), 255);
	CHECK(address_is_valid_domain(name));
	snprintf(name, sizeof(name), "%063d.%063d.%063d.%063d0", 0, 0, 0, 0);
	CHECK(!address_is_valid_domain(name));
	snprintf(name, sizeof(name), "%063d.%063d.%063d.%062d.a", 0, 0, 0, 0);
	CHECK(!address_is_valid_domain(name));

	char out[ADDRESS_DOMAIN_MAX + 1];
	CHECK(address_normalize_domain("Mail.EXAMPLE.Com", out, sizeof(out)) == 0);
	CHECK_STR(out, "mail.example.com");
	CHECK(address_normalize_domain("bad..name", out, sizeof(out)) == -1);
	CHECK(address_normalize_domain("example.com", out, 5) == -1);
}

struct path_case {
	const char *input;
	int status;
	bool null_path;
	const char *address; /* address_format() */
	size_t consumed;     /* for the prefix parser; 0: the whole input */
};

static const struct path_case path_cases[] = {
    {"<user@example.com>", 0, false, "user@example.com", 0},
    {"<>", 0, true, "", 0},
    {"<User@EXAMPLE.com>", 0, false, "User@example.com", 0},
    {"<@a.example,@b.example:user@x>", 0, false, "user@x", 0},
    {"<@a.example:user@x>", 0, false, "user@x", 0},
    {"<\"a>b\"@x>", 0, false, "\"a>b\"@x", 0},
    {"<\"a b\"@x>", 0, false, "\"a b\"@x", 0},
    {"<user@[127.0.0.1]>", 0, false, "user@[127.0.0.1]", 0},
    {"user@x", -1, false, NULL, 0},
    {"<user@x", -1, false, NULL, 0},
    {"<", -1, false, NULL, 0},
    {"", -1, false, NULL, 0},
    {"<@:user@x>", -1, false, NULL, 0},
    {"<@a,user@x>", -1, false, NULL, 0},
    {"<@a.example,@:user@x>", -1, false, NULL, 0},
    {"<@a_b:user@x>", -1, false, NULL, 0},
    {"< user@x>", -1, false, NULL, 0},
    {"<user@x >", -1, false, NULL, 0},
    {"<\"user@x>", -1, false, NULL, 0},
    {"<<user@x>>", -1, false, NULL, 0},
    {"<a@b@c>", -1, false, NULL, 0},
};

UNIT_TEST(address_path_table)
{
	for (size_t i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++) {
		const struct path_case *c = &path_cases[i];
		size_t len = strlen(c->input);
		char *in = exact_copy(c->input, len);
		struct address a;
		const char *err = NULL;
		int ret = address_parse_path(in, len, &a, &err);
		if (ret != c->status)
			unit_fail(__FILE__, __LINE__, "path %zu \"%s\": %d (%s)", i, c->input, ret,
			          ret < 0 ? err : "");
		if (ret == 0 && c->status == 0) {
			char out[ADDRESS_BUF_SIZE];
			address_format(&a, out);
			CHECK_STR(out, c->address);
			CHECK(a.null_path == c->null_path);
		}
		/* The prefix parser followed by ESMTP parameters. */
		char with[300];
		snprintf(with, sizeof(with), "%s SIZE=100", c->input);
		size_t consumed = 0;
		ret = address_parse_path_prefix(with, strlen(with), &a, &consumed, &err);
		if (c->status == 0) {
			CHECK_INT(ret, 0);
			CHECK_INT(consumed, len);
		}
		/* Every prefix of the input: never reads past it. */
		for (size_t n = 0; n < len; n++) {
			char *p = exact_copy(c->input, n);
			ret = address_parse_path(p, n, &a, &err);
			if (c->status == 0 && n + 1 == len)
				CHECK_INT(ret, -1);
			free(p);
		}
		free(in);
	}
	struct address a;
	const char *err;
	CHECK(address_parse_path("<a@b> ", 6, &a, &err) == -1);
	CHECK_STR(err, "unexpected text after the path");
}

struct detail_case {
	const char *input;
	int ret;
	const char *base;
	const char *detail;
};

static const struct detail_case detail_cases[] = {
    {"user+tag@x", 1, "user@x", "tag"},
    {"user@x", 0, NULL, NULL},
    {"+tag@x", 0, NULL, NULL},
    {"user+@x", 1, "user@x", ""},
    {"a+b+c@x", 1, "a@x", "b+c"},
    {"\"a+b c\"@x", 0, NULL, NULL},
    {"a.+b@x", 0, NULL, NULL},
    {"First.Last+News@Example.com", 1, "First.Last@example.com", "News"},
    {"\xc3\xa9+t@x", 1, "\xc3\xa9@x", "t"},
};

UNIT_TEST(address_detail_split)
{
	for (size_t i = 0; i < sizeof(detail_cases) / sizeof(detail_cases[0]); i++) {
		const struct detail_case *c = &detail_cases[i];
		struct address a, base;
		const char *err;
		char detail[ADDRESS_LOCAL_MAX + 1];
		CHECK(address_parse(c->input, strlen(c->input), &a, &err) == 0);
		int ret = address_split_detail(&a, '+', &base, detail);
		if (ret != c->ret)
			unit_fail(__FILE__, __LINE__, "detail %zu \"%s\": %d", i, c->input, ret);
		if (ret == 1 && c->ret == 1) {
			char out[ADDRESS_BUF_SIZE];
			address_format(&base, out);
			CHECK_STR(out, c->base);
			CHECK_STR(detail, c->detail);
		}
	}
	struct address a, base;
	const char *err;
	CHECK(address_parse("a-b@x", 5, &a, &err) == 0);
	CHECK_INT(address_split_detail(&a, '-', &base, NULL), 1);
	CHECK_INT(address_split_detail(&a, '+', &base, NULL), 0);
	CHECK_INT(address_split_detail(&a, '\0', &base, NULL), 0);
	CHECK(address_parse("u+t@\xc3\xa9.x", 8, &a, &err) == 0);
	CHECK_INT(address_split_detail(&a, '+', &base, NULL), 1);
	CHECK(base.utf8);
	CHECK(address_parse("\xc3\xa9+t@x", 6, &a, &err) == 0);
	CHECK(a.utf8);
}

UNIT_TEST(address_lookup_keys)
{
	struct address a;
	const char *err;
	char key[ADDRESS_BUF_SIZE], out[ADDRESS_BUF_SIZE];

	CHECK(address_parse("User.Name@Example.COM", 21, &a, &err) == 0);
	address_lookup_key(&a, key);
	address_format(&a, out);
	CHECK_STR(key, "user.name@example.com");
	CHECK_STR(out, "User.Name@example.com");
	CHECK(!a.utf8);
	/* Only ASCII letters fold; UTF-8 stays as written. */
	CHECK(address_parse("AB\xc3\x87@X", 6, &a, &err) == 0);
	address_lookup_key(&a, key);
	CHECK_STR(key, "ab\xc3\x87@x");
	CHECK(a.utf8);
	CHECK(address_parse("\"A B\"@x", 7, &a, &err) == 0);
	address_lookup_key(&a, key);
	CHECK_STR(key, "\"a b\"@x");
	CHECK(a.quoted);
	CHECK(address_parse("u@[IPv6:::1]", 12, &a, &err) == 0);
	CHECK(a.domain_literal);
}

UNIT_TEST(address_utf8_validation)
{
	CHECK(address_utf8_is_valid("", 0));
	CHECK(address_utf8_is_valid("abc", 3));
	CHECK(address_utf8_is_valid("\xc3\xa9", 2));
	CHECK(address_utf8_is_valid("\xf4\x8f\xbf\xbf", 4));
	CHECK(!address_utf8_is_valid("\xc3", 1));
	CHECK(!address_utf8_is_valid("\xe0\x80\x80", 3));
	CHECK(!address_utf8_is_valid("\xed\xbf\xbf", 3));
	CHECK(!address_utf8_is_valid("\xf8\x88\x80\x80\x80", 5));
	CHECK(!address_utf8_is_valid("\x80", 1));
}
