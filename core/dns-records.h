/* dns-records.h - the DNS records a local domain publishes so that mail
 * for it reaches this server and mail from it is trusted: MX, SPF, DMARC
 * and, with its key, DKIM. One list for `roost domain dns` (zone-file
 * lines) and the admin API (JSON). */
#ifndef ROOST_DNS_RECORDS_H
#define ROOST_DNS_RECORDS_H

#include "buf.h"

#include <stddef.h>

#define DNS_RECORDS_MAX 4

enum dns_record_kind { DNS_RECORD_MX, DNS_RECORD_SPF, DNS_RECORD_DKIM, DNS_RECORD_DMARC };

struct dns_record {
	enum dns_record_kind kind;
	struct buf name;     /* fully qualified, with the final dot */
	const char *type;    /* "MX" or "TXT" */
	struct buf value;    /* as published; a TXT record's text unquoted */
	const char *purpose; /* one line for the administrator */
};

/* The domain's DKIM key as published (NULL selector: none). */
struct dns_dkim {
	const char *selector;
	const char *algorithm; /* "rsa-sha256" or "ed25519-sha256" */
	const char *public_b64;
};

/* Fills out[] with the records of domain (lower case, no final dot) for
 * a server named hostname, in the order MX, SPF, DKIM (if dkim is not
 * NULL), DMARC; returns how many. Free them with dns_records_free(). */
size_t dns_records(const char *domain, const char *hostname, const struct dns_dkim *dkim,
                   struct dns_record out[DNS_RECORDS_MAX]);
void dns_records_free(struct dns_record *r, size_t n);

#endif
