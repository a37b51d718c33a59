/* address.h - mail addresses: parse, validate, normalise.
 *
 * Grammar: RFC 5321 Mailbox (section 4.1.2) extended for SMTPUTF8 (RFC 6531):
 *   Mailbox    = Local-part "@" ( Domain / address-literal )
 *   Local-part = Dot-string / Quoted-string
 *   Domain     = sub-domain *("." sub-domain), each label 1..63 octets,
 *                letters/digits/hyphens (no hyphen first or last), or a
 *                U-label: any well-formed UTF-8 above U+007F is accepted as a
 *                letter (no IDNA conversion is done).
 *   address-literal = "[" IPv4 "]" / "[IPv6:" IPv6 "]"  (general literals
 *                with another tag are refused).
 * Non-ASCII bytes must be well-formed UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF). Control characters are never accepted, not even
 * inside quotes.
 *
 * Limits (RFC 5321 4.5.3.1): local part 64 octets, domain 255 octets, the
 * whole address 254 octets (as written, including quotes).
 *
 * Normal forms. struct address keeps:
 *   - local:  the canonical written form of the local part, case preserved:
 *             a dot-string as given, or, for a quoted string, the unquoted
 *             text if it is a valid dot-string ("abc"@x -> abc@x), else a
 *             quoted string with only '"' and '\\' escaped.
 *   - domain: lower-cased (ASCII letters only; U-labels kept as given), and
 *             for literals the form "[1.2.3.4]" / "[IPv6:...]" with hex digits
 *             lower-cased.
 * The canonical form is never longer than the input, so it always fits.
 * Lookups (accounts, aliases) use address_lookup_key(): the local part with
 * ASCII letters folded to lower case, '@', the domain.
 *
 * All functions are pure and thread-safe; nothing is allocated. */
#ifndef ROOST_ADDRESS_H
#define ROOST_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

#define ADDRESS_LOCAL_MAX  64
#define ADDRESS_DOMAIN_MAX 255
#define ADDRESS_MAX        254
/* Size of a buffer that holds any formatted address plus its NUL. */
#define ADDRESS_BUF_SIZE (ADDRESS_MAX + 1)
/* The default sub-addressing separator (user+tag@domain). */
#define ADDRESS_DETAIL_SEPARATOR '+'

struct address {
	char local[ADDRESS_LOCAL_MAX + 1];   /* canonical local part, NUL-terminated */
	char domain[ADDRESS_DOMAIN_MAX + 1]; /* normalised domain, NUL-terminated */
	size_t local_len, domain_len;
	bool quoted;         /* the canonical local part is a quoted string */
	bool domain_literal; /* domain is "[...]" */
	bool utf8;           /* contains non-ASCII bytes: needs SMTPUTF8 */
	bool null_path;      /* only from address_parse_path: "<>"; local and domain are "" */
};

/* Parses exactly len bytes of s as a Mailbox (no angle brackets, no spaces
 * around it). s need not be NUL-terminated and may contain NULs (which are
 * refused). Returns 0 and fills *r, or -1 with a static English message in
 * *error_r (e.g. "missing '@'", "local part too long"). */
int address_parse(const char *s, size_t len, struct address *r, const char **error_r);

/* Parses an RFC 5321 Path at the start of s (len bytes):
 *   "<" [ A-d-l ":" ] Mailbox ">"  or the null path "<>".
 * A source route ("@relay1,@relay2:") is accepted and ignored. On success
 * *consumed_r (may be NULL) is the number of bytes up to and including '>',
 * so the caller can go on with ESMTP parameters; r->null_path tells "<>"
 * apart. The SMTP layer decides whether the null path is allowed. */
int address_parse_path_prefix(const char *s, size_t len, struct address *r, size_t *consumed_r,
                              const char **error_r);
/* The same, but the path must be all of the len bytes. */
int address_parse_path(const char *s, size_t len, struct address *r, const char **error_r);

/* A NUL-terminated domain name (no address literal): the Domain rule above,
 * at most 255 octets, ASCII case ignored. */
bool address_is_valid_domain(const char *name);
/* Lower-cases the ASCII letters of a domain name into out (outlen >=
 * strlen(name) + 1). -1 if the name is not valid or does not fit. */
int address_normalize_domain(const char *name, char *out, size_t outlen);

/* Writes "local@domain" (canonical, case preserved) into out; "" for the
 * null path. out must have room for ADDRESS_BUF_SIZE bytes. */
void address_format(const struct address *a, char out[ADDRESS_BUF_SIZE]);
/* Writes the lookup key: like address_format() but with the local part's
 * ASCII letters folded to lower case. */
void address_lookup_key(const struct address *a, char out[ADDRESS_BUF_SIZE]);

/* Sub-addressing: splits "user<sep>detail" at the FIRST separator in an
 * unquoted local part. Returns 1 and writes the address without the detail
 * into *base_r (and the detail, without separator, into detail_r when not
 * NULL; room for ADDRESS_LOCAL_MAX + 1 bytes); returns 0 (base_r untouched)
 * when there is no separator, the local part is quoted, or the user part
 * would be empty ("+tag@x" is an ordinary local part). */
int address_split_detail(const struct address *a, char separator, struct address *base_r,
                         char *detail_r);

/* 1 if len bytes of s are well-formed UTF-8 (ASCII included), else 0. */
bool address_utf8_is_valid(const char *s, size_t len);

#endif
