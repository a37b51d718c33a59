/* dns.h - a small stub resolver for outbound mail: MX, A, AAAA and TXT
 * queries to one recursive resolver ([dns] resolver host:port, else the
 * first nameserver of /etc/resolv.conf), over UDP with a fallback to TCP
 * when the answer is truncated.
 *
 * Responses are parsed strictly: every length is checked against the
 * packet, names are at most 255 bytes with labels of at most 63 printable
 * bytes, compression pointers must point backwards (so they cannot loop)
 * and at most DNS_MAX_POINTERS are followed per name, the question must
 * echo ours. Anything else is DNS_EBADRESPONSE (treated as temporary). */
#ifndef ROOST_SMTP_DNS_H
#define ROOST_SMTP_DNS_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define DNS_T_A     1
#define DNS_T_CNAME 5
#define DNS_T_MX    15
#define DNS_T_TXT   16
#define DNS_T_AAAA  28

#define DNS_NAME_MAX     255 /* presentation form, without the final dot */
#define DNS_MAX_POINTERS 32
#define DNS_UDP_MAX      512
#define DNS_TCP_MAX      65535

enum dns_result {
	DNS_OK = 0,
	DNS_NXDOMAIN,     /* the name does not exist (permanent) */
	DNS_NODATA,       /* the name exists, no record of that type */
	DNS_ETEMP,        /* timeout, SERVFAIL, network error */
	DNS_EBADRESPONSE, /* malformed or mismatched response */
};
const char *dns_result_str(enum dns_result r);

/* One record of the requested type from the answer section. */
struct dns_rr {
	uint16_t type;
	uint16_t pref;               /* MX preference */
	char name[DNS_NAME_MAX + 1]; /* MX exchange ("" for the null MX ".") */
	unsigned char addr[16];      /* A (4 bytes) or AAAA (16) */
	struct buf text;             /* TXT: character-strings concatenated */
};

struct dns_answer {
	struct dns_rr *rrs;
	size_t n;
};
void dns_answer_free(struct dns_answer *a);

struct dns_resolver {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	unsigned timeout_ms; /* per try */
	unsigned tries;      /* UDP tries */
	int stop_fd;         /* readable: give up waiting at once (-1: none) */
};

/* server: "host:port", "[v6]:port" or "host" (port 53); "" reads
 * /etc/resolv.conf (resolv_conf, for tests; NULL the real one). Numeric
 * addresses only. -1 with a static message; the resolver is then still
 * usable and every query fails with DNS_ETEMP. stop_fd starts as -1. */
int dns_resolver_init(struct dns_resolver *r, const char *server, const char *resolv_conf,
                      unsigned timeout_ms, const char **error_r);

/* Asks one question; on DNS_OK *ans_r holds at least one record of type
 * (free it); otherwise it is empty. */
enum dns_result dns_query(const struct dns_resolver *r, const char *name, uint16_t type,
                          struct dns_answer *ans_r);

/* ---- wire format (exposed for the unit tests) ---- */

/* A query packet with recursion desired. -1 if name is not a valid name. */
int dns_build_query(uint16_t id, const char *name, uint16_t type, unsigned char *out, size_t outmax,
                    size_t *len_r);
/* Parses a response to the query (id, name, type). *truncated_r: TC set
 * (then nothing else is parsed). */
enum dns_result dns_parse_response(const unsigned char *p, size_t len, uint16_t id,
                                   const char *name, uint16_t type, struct dns_answer *ans_r,
                                   bool *truncated_r);
/* Reads a (possibly compressed) name at *off into out (>= DNS_NAME_MAX + 1
 * bytes, lower-cased, no final dot, "" for the root) and advances *off past
 * it. -1 if malformed. */
int dns_read_name(const unsigned char *p, size_t len, size_t *off, char *out);

/* ---- mail routing (RFC 5321 5.1, RFC 7505) ---- */

struct dns_mx {
	char host[DNS_NAME_MAX + 1];
	uint16_t pref;
};

/* The hosts to try for domain, best first (equal preferences in random
 * order). No MX record: the domain itself (implicit MX). DNS_NXDOMAIN, or
 * DNS_NODATA for a null MX (RFC 7505): permanent failures. */
enum dns_result dns_mx_lookup(const struct dns_resolver *r, const char *domain,
                              struct dns_mx **mx_r, size_t *n_r);
/* IPv4 then IPv6 addresses of host, as sockaddrs with port. DNS_OK with at
 * least one, else the worse of the two results. */
enum dns_result dns_host_addrs(const struct dns_resolver *r, const char *host, uint16_t port,
                               struct sockaddr_storage **addrs_r, size_t *n_r);

#endif
