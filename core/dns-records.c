/* dns-records.c - the records a local domain publishes (dns-records.h).
 *
 * SPF lets the domain's MX hosts send for it and nobody else ("-all"):
 * Roost sends the domain's mail from the host its MX names. DMARC starts
 * at p=none with aggregate reports to postmaster@: a business that also
 * sends through others (a web shop, a newsletter service) sees from the
 * reports what would fail before it tightens the policy to quarantine or
 * reject, instead of losing that mail on the first day. */
#include "dns-records.h"

#include "dkim-key.h"

static void dns_record_init(struct dns_record *r, enum dns_record_kind kind, const char *type,
                            const char *purpose)
{
	r->kind = kind;
	buf_init(&r->name, BUF_NO_LIMIT);
	buf_init(&r->value, BUF_NO_LIMIT);
	r->type = type;
	r->purpose = purpose;
}

size_t dns_records(const char *domain, const char *hostname, const struct dns_dkim *dkim,
                   struct dns_record out[DNS_RECORDS_MAX])
{
	size_t n = 0;
	struct dns_record *r = &out[n++];
	dns_record_init(r, DNS_RECORD_MX, "MX", "mail for the domain comes here");
	buf_printf(&r->name, "%s.", domain);
	buf_printf(&r->value, "10 %s.", hostname);

	r = &out[n++];
	dns_record_init(r, DNS_RECORD_SPF, "TXT", "SPF: only the domain's MX sends its mail");
	buf_printf(&r->name, "%s.", domain);
	buf_append_str(&r->value, "v=spf1 mx -all");

	if (dkim != NULL && dkim->selector != NULL) {
		r = &out[n++];
		dns_record_init(r, DNS_RECORD_DKIM, "TXT",
		                "DKIM: the public key that verifies the domain's signatures");
		buf_printf(&r->name, "%s._domainkey.%s.", dkim->selector, domain);
		dkim_key_txt(dkim->algorithm, dkim->public_b64, &r->value);
	}

	r = &out[n++];
	dns_record_init(r, DNS_RECORD_DMARC, "TXT", "DMARC: report, do not reject yet");
	buf_printf(&r->name, "_dmarc.%s.", domain);
	buf_printf(&r->value, "v=DMARC1; p=none; rua=mailto:postmaster@%s", domain);
	return n;
}

void dns_records_free(struct dns_record *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		buf_free(&r[i].name);
		buf_free(&r[i].value);
	}
}
