/* test-dns.c - the DNS response parser (smtp/dns.h) with good and
 * malformed packets: every malformed one must be refused, none may read
 * outside the packet (run under ASan). */
#include "unit.h"

#include "dns.h"

#include <stdlib.h>

#define ID 0x1234

struct pkt {
	unsigned char b[1024];
	size_t len;
};

/* Header and question for name/type as a server would echo them. */
static void pkt_start(struct pkt *p, const char *name, uint16_t type, unsigned rcode,
                      unsigned ancount)
{
	CHECK(dns_build_query(ID, name, type, p->b, sizeof(p->b), &p->len) == 0);
	p->b[2] = 0x81; /* QR, RD */
	p->b[3] = (unsigned char)(0x80 | rcode);
	p->b[7] = (unsigned char)ancount;
}

static void pkt_bytes(struct pkt *p, const void *b, size_t n)
{
	memcpy(p->b + p->len, b, n);
	p->len += n;
}

/* An RR whose owner is a pointer to the question name (offset 12). */
static void pkt_rr(struct pkt *p, uint16_t type, const void *rdata, size_t rdlen)
{
	unsigned char h[12] = {
	    0xc0, 12,   (unsigned char)(type >> 8),  (unsigned char)type, 0, 1, 0, 0,
	    0x0e, 0x10, (unsigned char)(rdlen >> 8), (unsigned char)rdlen};
	pkt_bytes(p, h, sizeof(h));
	pkt_bytes(p, rdata, rdlen);
}

static enum dns_result parse(const struct pkt *p, const char *name, uint16_t type,
                             struct dns_answer *a)
{
	bool tc;
	return dns_parse_response(p->b, p->len, ID, name, type, a, &tc);
}

/* example.com MX: 20 mx2.example.com, 10 mx1 (compressed to the question). */
static void pkt_mx(struct pkt *p)
{
	pkt_start(p, "example.com", DNS_T_MX, 0, 2);
	const unsigned char mx2[] = {0, 20, 3, 'm', 'x', '2', 0xc0, 12};
	const unsigned char mx1[] = {0, 10, 3, 'M', 'X', '1', 0xc0, 12};
	pkt_rr(p, DNS_T_MX, mx2, sizeof(mx2));
	pkt_rr(p, DNS_T_MX, mx1, sizeof(mx1));
}

UNIT_TEST(test_dns_query_build)
{
	unsigned char b[512];
	size_t len;
	CHECK(dns_build_query(1, "a.example.", DNS_T_A, b, sizeof(b), &len) == 0);
	CHECK_INT(len, 12 + 11 + 4);
	CHECK(memcmp(b + 12, "\001a\007example\000", 11) == 0);
	CHECK(dns_build_query(1, "a..example", DNS_T_A, b, sizeof(b), &len) < 0);
	CHECK(dns_build_query(1, "", DNS_T_A, b, sizeof(b), &len) < 0);
	char label[80];
	memset(label, 'x', 64);
	memcpy(label + 64, ".com", 5);
	CHECK(dns_build_query(1, label, DNS_T_A, b, sizeof(b), &len) < 0);
}

UNIT_TEST(test_dns_mx_ok)
{
	struct pkt p;
	struct dns_answer a;
	pkt_mx(&p);
	CHECK_INT(parse(&p, "EXAMPLE.com.", DNS_T_MX, &a), DNS_OK);
	CHECK_INT(a.n, 2);
	if (a.n == 2) {
		CHECK_STR(a.rrs[0].name, "mx2.example.com");
		CHECK_INT(a.rrs[0].pref, 20);
		CHECK_STR(a.rrs[1].name, "mx1.example.com");
	}
	dns_answer_free(&a);
}

UNIT_TEST(test_dns_a_aaaa_txt_ok)
{
	struct pkt p;
	struct dns_answer a;
	pkt_start(&p, "h.example", DNS_T_A, 0, 1);
	pkt_rr(&p, DNS_T_A, "\x7f\x00\x00\x01", 4);
	CHECK_INT(parse(&p, "h.example", DNS_T_A, &a), DNS_OK);
	CHECK(a.n == 1 && memcmp(a.rrs[0].addr, "\x7f\0\0\1", 4) == 0);
	dns_answer_free(&a);
	pkt_start(&p, "h.example", DNS_T_AAAA, 0, 1);
	pkt_rr(&p, DNS_T_AAAA, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16);
	CHECK_INT(parse(&p, "h.example", DNS_T_AAAA, &a), DNS_OK);
	dns_answer_free(&a);
	pkt_start(&p, "s._domainkey.example", DNS_T_TXT, 0, 1);
	pkt_rr(&p, DNS_T_TXT, "\3v=D\4KIM1\0", 10);
	CHECK_INT(parse(&p, "s._domainkey.example", DNS_T_TXT, &a), DNS_OK);
	CHECK(a.n == 1 && strcmp(buf_cstr(&a.rrs[0].text), "v=DKIM1") == 0);
	dns_answer_free(&a);
}

UNIT_TEST(test_dns_rcodes)
{
	struct pkt p;
	struct dns_answer a;
	bool tc;
	pkt_start(&p, "nx.example", DNS_T_MX, 3, 0);
	CHECK_INT(parse(&p, "nx.example", DNS_T_MX, &a), DNS_NXDOMAIN);
	pkt_start(&p, "nx.example", DNS_T_MX, 2, 0);
	CHECK_INT(parse(&p, "nx.example", DNS_T_MX, &a), DNS_ETEMP);
	pkt_start(&p, "nx.example", DNS_T_MX, 0, 0);
	CHECK_INT(parse(&p, "nx.example", DNS_T_MX, &a), DNS_NODATA);
	/* A CNAME alone is no data of the type asked for. */
	pkt_start(&p, "c.example", DNS_T_A, 0, 1);
	pkt_rr(&p, DNS_T_CNAME, "\1x\xc0\x0c", 4);
	CHECK_INT(parse(&p, "c.example", DNS_T_A, &a), DNS_NODATA);
	pkt_start(&p, "t.example", DNS_T_TXT, 0, 0);
	p.b[2] |= 0x02;
	CHECK_INT(dns_parse_response(p.b, p.len, ID, "t.example", DNS_T_TXT, &a, &tc), DNS_ETEMP);
	CHECK(tc);
}

UNIT_TEST(test_dns_null_mx)
{
	struct pkt p;
	struct dns_answer a;
	pkt_start(&p, "null.example", DNS_T_MX, 0, 1);
	pkt_rr(&p, DNS_T_MX, "\0\0\0", 3);
	CHECK_INT(parse(&p, "null.example", DNS_T_MX, &a), DNS_OK);
	CHECK(a.n == 1 && a.rrs[0].name[0] == '\0');
	dns_answer_free(&a);
}

/* Malformed packets, each built from the good MX answer by one change. */
struct bad_case {
	const char *what;
	void (*make)(struct pkt *p);
};

static void bad_short(struct pkt *p)
{
	p->len = 11;
}
static void bad_id(struct pkt *p)
{
	p->b[1] ^= 1;
}
static void bad_not_response(struct pkt *p)
{
	p->b[2] &= 0x7f;
}
static void bad_opcode(struct pkt *p)
{
	p->b[2] |= 0x08;
}
static void bad_qdcount(struct pkt *p)
{
	p->b[5] = 2;
}
static void bad_question_name(struct pkt *p)
{
	p->b[13] = 'E' + 1;
}
static void bad_question_type(struct pkt *p)
{
	p->b[12 + 13 + 1] = DNS_T_A;
}
static void bad_ancount(struct pkt *p)
{
	p->b[7] = 3;
}
static void bad_rdlength(struct pkt *p)
{
	p->b[29 + 11] = 200;
}
static void bad_cut_rdata(struct pkt *p)
{
	p->len -= 1;
}
static void bad_self_pointer(struct pkt *p)
{
	/* First RR's owner points at itself. */
	p->b[29] = 0xc0;
	p->b[30] = 29;
}
static void bad_forward_pointer(struct pkt *p)
{
	p->b[30] = 60;
}
static void bad_pointer_loop(struct pkt *p)
{
	/* mx2's exchange: label, then a pointer back to its own label. */
	p->b[29 + 12 + 6] = 0xc0;
	p->b[29 + 12 + 7] = 29 + 12 + 2;
}
static void bad_label_type(struct pkt *p)
{
	p->b[29 + 12 + 2] = 0x43;
}
static void bad_label_past_end(struct pkt *p)
{
	p->b[p->len - 8 + 2] = 60;
}
static void bad_mx_name_past_rdata(struct pkt *p)
{
	p->b[29 + 11] = 5;
}
static void bad_control_char(struct pkt *p)
{
	p->b[29 + 12 + 3] = '\n';
}
static void bad_dot_in_label(struct pkt *p)
{
	p->b[29 + 12 + 3] = '.';
}
static void bad_a_length(struct pkt *p)
{
	pkt_start(p, "example.com", DNS_T_MX, 0, 1);
	p->b[12 + 13 + 1] = DNS_T_A; /* question says A */
	pkt_rr(p, DNS_T_A, "\1\2\3", 3);
}
static void bad_txt_overrun(struct pkt *p)
{
	pkt_start(p, "example.com", DNS_T_MX, 0, 1);
	p->b[12 + 13 + 1] = DNS_T_TXT;
	pkt_rr(p, DNS_T_TXT, "\x09short", 6);
}
static void bad_long_name(struct pkt *p)
{
	/* 5 labels of 63 bytes: 319 > 255. */
	pkt_start(p, "example.com", DNS_T_MX, 0, 1);
	unsigned char rd[2 + 5 * 64 + 1];
	rd[0] = 0;
	rd[1] = 1;
	for (int i = 0; i < 5; i++) {
		rd[2 + i * 64] = 63;
		memset(rd + 3 + i * 64, 'a', 63);
	}
	rd[sizeof(rd) - 1] = 0;
	pkt_rr(p, DNS_T_MX, rd, sizeof(rd));
}

static const struct bad_case bad_cases[] = {
    {"shorter than a header", bad_short},
    {"wrong id", bad_id},
    {"QR not set", bad_not_response},
    {"opcode not QUERY", bad_opcode},
    {"two questions", bad_qdcount},
    {"question name differs", bad_question_name},
    {"question type differs", bad_question_type},
    {"ANCOUNT past the records", bad_ancount},
    {"RDLENGTH past the end", bad_rdlength},
    {"rdata cut short", bad_cut_rdata},
    {"pointer to itself", bad_self_pointer},
    {"forward pointer", bad_forward_pointer},
    {"pointer loop inside a name", bad_pointer_loop},
    {"extended label type", bad_label_type},
    {"label past the end", bad_label_past_end},
    {"MX name past its rdata", bad_mx_name_past_rdata},
    {"control byte in a label", bad_control_char},
    {"dot in a label", bad_dot_in_label},
    {"A record of 3 bytes", bad_a_length},
    {"TXT string past its rdata", bad_txt_overrun},
    {"name longer than 255", bad_long_name},
};

UNIT_TEST(test_dns_malformed)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct pkt p;
		struct dns_answer a;
		pkt_mx(&p);
		bad_cases[i].make(&p);
		enum dns_result r = parse(&p, "example.com", DNS_T_MX, &a);
		if (r != DNS_EBADRESPONSE)
			unit_fail(__FILE__, __LINE__, "%s: got %s", bad_cases[i].what,
			          dns_result_str(r));
		CHECK(a.n == 0 && a.rrs == NULL);
	}
}

/* Every prefix of a good answer is refused (never read past its end), and
 * random corruption never crashes. */
UNIT_TEST(test_dns_prefixes_and_noise)
{
	struct pkt p;
	struct dns_answer a;
	pkt_mx(&p);
	size_t full = p.len;
	for (size_t n = 0; n < full; n++) {
		unsigned char *copy = malloc(n + 1);
		memcpy(copy, p.b, n);
		bool tc;
		CHECK(dns_parse_response(copy, n, ID, "example.com", DNS_T_MX, &a, &tc) != DNS_OK);
		dns_answer_free(&a);
		free(copy);
	}
	srand(7);
	for (int k = 0; k < 20000; k++) {
		struct pkt q = p;
		for (int j = 0; j < 3; j++)
			q.b[12 + (size_t)rand() % (full - 12)] = (unsigned char)rand();
		unsigned char *copy = malloc(full);
		memcpy(copy, q.b, full);
		bool tc;
		(void)dns_parse_response(copy, full, ID, "example.com", DNS_T_MX, &a, &tc);
		dns_answer_free(&a);
		free(copy);
	}
}

UNIT_TEST(test_dns_resolver_init)
{
	struct dns_resolver r;
	const char *err;
	CHECK(dns_resolver_init(&r, "127.0.0.1:5353", NULL, 1000, &err) == 0);
	CHECK(dns_resolver_init(&r, "[::1]:53", NULL, 1000, &err) == 0);
	CHECK(dns_resolver_init(&r, "192.0.2.1", NULL, 1000, &err) == 0);
	CHECK(dns_resolver_init(&r, "dns.example:53", NULL, 1000, &err) < 0);
	CHECK(dns_resolver_init(&r, "", "/nonexistent/resolv.conf", 1000, &err) < 0);
}
