/* dns.c - the stub resolver (dns.h): packets, transport, MX routing. */
#include "dns.h"

#include "clock.h"
#include "config.h"
#include "xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define DNS_HEADER   12
#define DNS_CLASS_IN 1

const char *dns_result_str(enum dns_result r)
{
	switch (r) {
	case DNS_OK:
		return "ok";
	case DNS_NXDOMAIN:
		return "no such domain";
	case DNS_NODATA:
		return "no such record";
	case DNS_ETEMP:
		return "temporary DNS failure";
	case DNS_EBADRESPONSE:
		return "malformed DNS response";
	}
	return "unknown";
}

void dns_answer_free(struct dns_answer *a)
{
	for (size_t i = 0; i < a->n; i++)
		buf_free(&a->rrs[i].text);
	free(a->rrs);
	a->rrs = NULL;
	a->n = 0;
}

/* ---- building ---- */

int dns_build_query(uint16_t id, const char *name, uint16_t type, unsigned char *out, size_t outmax,
                    size_t *len_r)
{
	size_t namelen = strlen(name);
	if (namelen > 0 && name[namelen - 1] == '.')
		namelen--;
	if (namelen == 0 || namelen > DNS_NAME_MAX || outmax < DNS_HEADER + namelen + 2 + 4)
		return -1;
	memset(out, 0, DNS_HEADER);
	out[0] = (unsigned char)(id >> 8);
	out[1] = (unsigned char)id;
	out[2] = 0x01; /* RD */
	out[5] = 1;    /* QDCOUNT */
	size_t o = DNS_HEADER, start = 0;
	for (size_t i = 0; i <= namelen; i++) {
		if (i < namelen && name[i] != '.')
			continue;
		size_t l = i - start;
		if (l == 0 || l > 63)
			return -1;
		out[o++] = (unsigned char)l;
		memcpy(out + o, name + start, l);
		o += l;
		start = i + 1;
	}
	out[o++] = 0;
	out[o++] = (unsigned char)(type >> 8);
	out[o++] = (unsigned char)type;
	out[o++] = 0;
	out[o++] = DNS_CLASS_IN;
	*len_r = o;
	return 0;
}

/* ---- parsing ---- */

static uint16_t dns_u16(const unsigned char *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

/* Appends one label to out (at *olen), lower-cased; rejects bytes that
 * have no place in a host name we would act on. */
static int dns_name_label(const unsigned char *l, size_t n, char *out, size_t *olen)
{
	if (*olen + (*olen > 0) + n > DNS_NAME_MAX)
		return -1;
	if (*olen > 0)
		out[(*olen)++] = '.';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = l[i];
		if (c <= 0x20 || c >= 0x7f || c == '.')
			return -1;
		out[(*olen)++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	out[*olen] = '\0';
	return 0;
}

int dns_read_name(const unsigned char *p, size_t len, size_t *off, char *out)
{
	size_t pos = *off, olen = 0, end = 0;
	unsigned jumps = 0;
	size_t limit = pos; /* a pointer must point before the name it is in */
	out[0] = '\0';
	for (;;) {
		if (pos >= len)
			return -1;
		unsigned char b = p[pos];
		if ((b & 0xc0) == 0xc0) {
			if (pos + 1 >= len || ++jumps > DNS_MAX_POINTERS)
				return -1;
			size_t target = (size_t)((b & 0x3f) << 8 | p[pos + 1]);
			if (end == 0)
				end = pos + 2;
			if (target >= limit)
				return -1;
			limit = target;
			pos = target;
			continue;
		}
		if ((b & 0xc0) != 0)
			return -1; /* 0x40 / 0x80: extended label types */
		if (b == 0) {
			*off = end != 0 ? end : pos + 1;
			return 0;
		}
		if (pos + 1 + b > len || dns_name_label(p + pos + 1, b, out, &olen) < 0)
			return -1;
		pos += 1 + b;
	}
}

static bool dns_name_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

static int dns_parse_txt(const unsigned char *p, size_t n, struct buf *text)
{
	size_t i = 0;
	while (i < n) {
		size_t l = p[i];
		if (i + 1 + l > n)
			return -1;
		buf_append(text, p + i + 1, l);
		i += 1 + l;
	}
	return 0;
}

/* One resource record's data, already bounds-checked to [rd, rd + rdlen). */
static int dns_parse_rdata(const unsigned char *p, size_t len, size_t rd, size_t rdlen,
                           struct dns_rr *rr)
{
	switch (rr->type) {
	case DNS_T_A:
	case DNS_T_AAAA: {
		size_t want = rr->type == DNS_T_A ? 4 : 16;
		if (rdlen != want)
			return -1;
		memcpy(rr->addr, p + rd, want);
		return 0;
	}
	case DNS_T_MX: {
		if (rdlen < 3)
			return -1;
		rr->pref = dns_u16(p + rd);
		size_t off = rd + 2;
		/* The name must end inside the rdata (pointers may go before it). */
		if (dns_read_name(p, rd + rdlen, &off, rr->name) < 0 || off != rd + rdlen)
			return -1;
		(void)len;
		return 0;
	}
	case DNS_T_TXT:
		return dns_parse_txt(p + rd, rdlen, &rr->text);
	}
	return -1;
}

static int dns_parse_header(const unsigned char *p, size_t len, uint16_t id, bool *truncated_r,
                            unsigned *rcode_r)
{
	if (len < DNS_HEADER || dns_u16(p) != id || (p[2] & 0x80) == 0 || (p[2] & 0x78) != 0)
		return -1;
	*truncated_r = (p[2] & 0x02) != 0;
	*rcode_r = p[3] & 0x0f;
	return 0;
}

static int dns_parse_question(const unsigned char *p, size_t len, size_t *off, const char *name,
                              uint16_t type)
{
	if (dns_u16(p + 4) != 1)
		return -1;
	char qname[DNS_NAME_MAX + 1];
	if (dns_read_name(p, len, off, qname) < 0 || *off + 4 > len)
		return -1;
	if (!dns_name_eq(qname, name) || dns_u16(p + *off) != type ||
	    dns_u16(p + *off + 2) != DNS_CLASS_IN)
		return -1;
	*off += 4;
	return 0;
}

/* One answer record at *off; appended to ans when of the wanted type. */
static int dns_parse_rr(const unsigned char *p, size_t len, size_t *off, uint16_t type,
                        struct dns_answer *ans)
{
	char owner[DNS_NAME_MAX + 1];
	if (dns_read_name(p, len, off, owner) < 0 || *off + 10 > len)
		return -1;
	uint16_t rtype = dns_u16(p + *off), rclass = dns_u16(p + *off + 2);
	size_t rdlen = dns_u16(p + *off + 8), rd = *off + 10;
	if (rd + rdlen > len)
		return -1;
	*off = rd + rdlen;
	if (rtype != type || rclass != DNS_CLASS_IN)
		return 0; /* CNAME chain links, DNSSEC records: not ours */
	ans->rrs = xreallocarray(ans->rrs, ans->n + 1, sizeof(*ans->rrs));
	struct dns_rr *rr = &ans->rrs[ans->n++];
	memset(rr, 0, sizeof(*rr));
	rr->type = rtype;
	buf_init(&rr->text, DNS_TCP_MAX);
	return dns_parse_rdata(p, len, rd, rdlen, rr);
}

enum dns_result dns_parse_response(const unsigned char *p, size_t len, uint16_t id,
                                   const char *name, uint16_t type, struct dns_answer *ans_r,
                                   bool *truncated_r)
{
	memset(ans_r, 0, sizeof(*ans_r));
	unsigned rcode;
	size_t off = DNS_HEADER;
	*truncated_r = false;
	if (dns_parse_header(p, len, id, truncated_r, &rcode) < 0)
		return DNS_EBADRESPONSE;
	if (*truncated_r)
		return DNS_ETEMP;
	if (dns_parse_question(p, len, &off, name, type) < 0)
		return DNS_EBADRESPONSE;
	if (rcode == 3)
		return DNS_NXDOMAIN;
	if (rcode != 0)
		return DNS_ETEMP;
	unsigned ancount = dns_u16(p + 6);
	for (unsigned i = 0; i < ancount; i++) {
		if (dns_parse_rr(p, len, &off, type, ans_r) < 0) {
			dns_answer_free(ans_r);
			return DNS_EBADRESPONSE;
		}
	}
	return ans_r->n > 0 ? DNS_OK : DNS_NODATA;
}

/* ---- resolver address ---- */

static int dns_set_addr(struct dns_resolver *r, const char *host, const char *port)
{
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
	                         .ai_socktype = SOCK_DGRAM};
	struct addrinfo *ai = NULL;
	if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL)
		return -1;
	memcpy(&r->addr, ai->ai_addr, ai->ai_addrlen);
	r->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static int dns_resolv_conf(struct dns_resolver *r, const char *path)
{
	FILE *f = fopen(path != NULL ? path : "/etc/resolv.conf", "r");
	if (f == NULL)
		return -1;
	char line[512], host[256];
	int ret = -1;
	while (ret < 0 && fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, " nameserver %255s", host) == 1)
			ret = dns_set_addr(r, host, "53");
	}
	fclose(f);
	return ret;
}

int dns_resolver_init(struct dns_resolver *r, const char *server, const char *resolv_conf,
                      unsigned timeout_ms, const char **error_r)
{
	memset(r, 0, sizeof(*r));
	r->timeout_ms = timeout_ms;
	r->tries = 2;
	r->stop_fd = -1;
	if (server == NULL || server[0] == '\0') {
		if (dns_resolv_conf(r, resolv_conf) < 0) {
			*error_r = "no usable nameserver in /etc/resolv.conf";
			return -1;
		}
		return 0;
	}
	struct config_listen_addr *a = NULL;
	size_t n = 0;
	const char *err;
	int ret = config_listen_parse(server, &a, &n, &err) == 0 && n == 1
	              ? dns_set_addr(r, a[0].host, a[0].port)
	              : dns_set_addr(r, server, "53");
	free(a);
	if (ret < 0)
		*error_r = "[dns] resolver must be a numeric address, host:port or [v6]:port";
	return ret;
}

/* ---- transport ---- */

/* Waits for events on fd until deadline; 0 ready, -1 timeout, error or
 * stop_fd readable. */
static int dns_wait(int fd, short events, uint64_t deadline, int stop_fd)
{
	for (;;) {
		uint64_t now = clock_monotonic_ms();
		if (now >= deadline)
			return -1;
		struct pollfd pfd[2] = {{.fd = fd, .events = events},
		                        {.fd = stop_fd, .events = POLLIN}};
		int n = poll(pfd, stop_fd >= 0 ? 2 : 1, (int)(deadline - now));
		if (n > 0)
			return pfd[1].revents != 0 && stop_fd >= 0 ? -1 : 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

/* One UDP exchange; *len_r 0 when nothing (valid) came back in time.
 * Datagrams with another id are ignored (late answers, spoofing tries). */
static int dns_udp(const struct dns_resolver *r, const unsigned char *q, size_t qlen,
                   unsigned char *resp, size_t *len_r)
{
	*len_r = 0;
	int fd = socket(r->addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	int ret = -1;
	if (connect(fd, (const struct sockaddr *)&r->addr, r->addrlen) == 0 &&
	    send(fd, q, qlen, 0) == (ssize_t)qlen) {
		ret = 0;
		uint64_t deadline = clock_monotonic_ms() + r->timeout_ms;
		while (dns_wait(fd, POLLIN, deadline, r->stop_fd) == 0) {
			ssize_t n = recv(fd, resp, DNS_UDP_MAX, 0);
			if (n >= 2 && resp[0] == q[0] && resp[1] == q[1]) {
				*len_r = (size_t)n;
				break;
			}
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				break;
		}
	}
	close(fd);
	return ret;
}

static int dns_tcp_io(int fd, unsigned char *p, size_t n, bool writing, uint64_t deadline,
                      int stop_fd)
{
	size_t done = 0;
	while (done < n) {
		if (dns_wait(fd, writing ? POLLOUT : POLLIN, deadline, stop_fd) < 0)
			return -1;
		ssize_t k = writing ? send(fd, p + done, n - done, MSG_NOSIGNAL)
		                    : recv(fd, p + done, n - done, 0);
		if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR))
			return -1;
		if (k > 0)
			done += (size_t)k;
	}
	return 0;
}

/* One TCP exchange (RFC 1035 4.2.2: two-byte length prefix). */
static int dns_tcp(const struct dns_resolver *r, const unsigned char *q, size_t qlen,
                   unsigned char *resp, size_t *len_r)
{
	int fd = socket(r->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	uint64_t deadline = clock_monotonic_ms() + r->timeout_ms;
	unsigned char out[2 + DNS_UDP_MAX], lenb[2];
	out[0] = (unsigned char)(qlen >> 8);
	out[1] = (unsigned char)qlen;
	memcpy(out + 2, q, qlen);
	int ret = -1;
	if ((connect(fd, (const struct sockaddr *)&r->addr, r->addrlen) == 0 ||
	     errno == EINPROGRESS) &&
	    dns_tcp_io(fd, out, qlen + 2, true, deadline, r->stop_fd) == 0 &&
	    dns_tcp_io(fd, lenb, 2, false, deadline, r->stop_fd) == 0) {
		*len_r = dns_u16(lenb);
		ret = dns_tcp_io(fd, resp, *len_r, false, deadline, r->stop_fd);
	}
	close(fd);
	return ret;
}

enum dns_result dns_query(const struct dns_resolver *r, const char *name, uint16_t type,
                          struct dns_answer *ans_r)
{
	memset(ans_r, 0, sizeof(*ans_r));
	unsigned char q[DNS_UDP_MAX], *resp = xmalloc(DNS_TCP_MAX);
	uint16_t id;
	size_t qlen, len = 0;
	if (getrandom(&id, sizeof(id), 0) != sizeof(id))
		id = (uint16_t)clock_monotonic_ms();
	enum dns_result res = DNS_EBADRESPONSE;
	if (dns_build_query(id, name, type, q, sizeof(q), &qlen) < 0)
		goto out;
	res = DNS_ETEMP;
	bool truncated = false;
	if (r->addrlen == 0)
		goto out;
	for (unsigned t = 0; t < r->tries && len == 0; t++) {
		if (dns_udp(r, q, qlen, resp, &len) < 0)
			goto out;
	}
	if (len == 0)
		goto out;
	res = dns_parse_response(resp, len, id, name, type, ans_r, &truncated);
	if (truncated) {
		if (dns_tcp(r, q, qlen, resp, &len) < 0)
			res = DNS_ETEMP;
		else
			res = dns_parse_response(resp, len, id, name, type, ans_r, &truncated);
		if (truncated)
			res = DNS_EBADRESPONSE;
	}
out:
	free(resp);
	return res;
}

/* ---- mail routing ---- */

static int dns_mx_cmp(const void *a, const void *b)
{
	const struct dns_mx *x = a, *y = b;
	return (int)x->pref - (int)y->pref;
}

/* Equal preferences are tried in random order (RFC 5321 5.1). */
static void dns_mx_shuffle(struct dns_mx *mx, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && mx[j].pref == mx[i].pref)
			j++;
		/* Fisher-Yates over mx[i..j), counted by the group's size
		 * (an index loop down to i made GCC -O2 warn falsely). */
		for (size_t left = j - i; left > 1; left--) {
			uint32_t rnd = 0;
			if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
				rnd = 0;
			size_t k = i + left - 1, s = i + rnd % left;
			struct dns_mx tmp = mx[k];
			mx[k] = mx[s];
			mx[s] = tmp;
		}
		i = j;
	}
}

enum dns_result dns_mx_lookup(const struct dns_resolver *r, const char *domain,
                              struct dns_mx **mx_r, size_t *n_r)
{
	struct dns_answer a;
	*mx_r = NULL;
	*n_r = 0;
	enum dns_result res = dns_query(r, domain, DNS_T_MX, &a);
	if (res == DNS_NODATA) {
		*mx_r = xcalloc(1, sizeof(**mx_r));
		snprintf((*mx_r)[0].host, sizeof((*mx_r)[0].host), "%s", domain);
		*n_r = 1;
		return DNS_OK;
	}
	if (res != DNS_OK)
		return res;
	/* A single MX "." of any preference: the domain takes no mail. */
	if (a.n == 1 && a.rrs[0].name[0] == '\0') {
		dns_answer_free(&a);
		return DNS_NODATA;
	}
	struct dns_mx *mx = xcalloc(a.n, sizeof(*mx));
	size_t n = 0;
	for (size_t i = 0; i < a.n; i++) {
		if (a.rrs[i].name[0] == '\0')
			continue;
		memcpy(mx[n].host, a.rrs[i].name, sizeof(mx[n].host));
		mx[n++].pref = a.rrs[i].pref;
	}
	dns_answer_free(&a);
	qsort(mx, n, sizeof(*mx), dns_mx_cmp);
	dns_mx_shuffle(mx, n);
	*mx_r = mx;
	*n_r = n;
	return n > 0 ? DNS_OK : DNS_NODATA;
}

static void dns_add_addrs(const struct dns_answer *a, uint16_t port,
                          struct sockaddr_storage **addrs, size_t *n)
{
	for (size_t i = 0; i < a->n; i++) {
		*addrs = xreallocarray(*addrs, *n + 1, sizeof(**addrs));
		struct sockaddr_storage *ss = &(*addrs)[(*n)++];
		memset(ss, 0, sizeof(*ss));
		if (a->rrs[i].type == DNS_T_A) {
			struct sockaddr_in *sin = (struct sockaddr_in *)ss;
			sin->sin_family = AF_INET;
			sin->sin_port = htons(port);
			memcpy(&sin->sin_addr, a->rrs[i].addr, 4);
		} else {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons(port);
			memcpy(&sin6->sin6_addr, a->rrs[i].addr, 16);
		}
	}
}

/* Which result to report when both lookups fail: a temporary failure
 * anywhere means "try later", not "no such host". */
static enum dns_result dns_worse(enum dns_result a, enum dns_result b)
{
	if (a == DNS_ETEMP || b == DNS_ETEMP || a == DNS_EBADRESPONSE || b == DNS_EBADRESPONSE)
		return DNS_ETEMP;
	return a == DNS_NXDOMAIN || b == DNS_NXDOMAIN ? DNS_NXDOMAIN : DNS_NODATA;
}

enum dns_result dns_host_addrs(const struct dns_resolver *r, const char *host, uint16_t port,
                               struct sockaddr_storage **addrs_r, size_t *n_r)
{
	*addrs_r = NULL;
	*n_r = 0;
	/* A literal address (relayhost, tests) needs no lookup. */
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai = NULL;
	if (getaddrinfo(host, NULL, &hints, &ai) == 0 && ai != NULL) {
		*addrs_r = xcalloc(1, sizeof(**addrs_r));
		memcpy(*addrs_r, ai->ai_addr, ai->ai_addrlen);
		((struct sockaddr_in *)*addrs_r)->sin_port = htons(port);
		freeaddrinfo(ai);
		*n_r = 1;
		return DNS_OK;
	}
	struct dns_answer a4, a6;
	enum dns_result r4 = dns_query(r, host, DNS_T_A, &a4);
	enum dns_result r6 = dns_query(r, host, DNS_T_AAAA, &a6);
	dns_add_addrs(&a4, port, addrs_r, n_r);
	dns_add_addrs(&a6, port, addrs_r, n_r);
	dns_answer_free(&a4);
	dns_answer_free(&a6);
	return *n_r > 0 ? DNS_OK : dns_worse(r4, r6);
}
