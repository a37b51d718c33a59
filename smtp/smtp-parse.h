/* smtp-parse.h - SMTP command lines and ESMTP parameters (RFC 5321, 1870,
 * 3461, 3030, 6152, 6531), and the header scan of incoming messages.
 *
 * Pure functions, no I/O, thread-safe: the unit tests and the fuzz target
 * drive them directly. Input is a byte string of a given length (a command
 * line without its CRLF); nothing needs to be NUL-terminated and a NUL is
 * always a syntax error. */
#ifndef ROOST_SMTP_PARSE_H
#define ROOST_SMTP_PARSE_H

#include "address.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_VERB_MAX 15
/* RFC 3461: ENVID at most 100 characters (decoded). */
#define SMTP_ENVID_MAX 100
/* RFC 3461 4.2: ORCPT at most 500 characters (encoded). */
#define SMTP_ORCPT_MAX 500

/* What a parse failure means; each maps to one reply in cmd-mail/cmd-rcpt. */
enum smtp_parse_status {
	SMTP_PARSE_OK = 0,
	SMTP_PARSE_SYNTAX,        /* 501 5.5.4: no "FROM:"/"TO:", junk */
	SMTP_PARSE_BAD_ADDRESS,   /* 501 5.1.7 (sender) / 5.1.3 (recipient) */
	SMTP_PARSE_BAD_PARAM,     /* 501 5.5.4: a known parameter with a bad value or twice */
	SMTP_PARSE_UNKNOWN_PARAM, /* 555 5.5.4: a parameter we do not offer */
};

/* Splits a command line into its verb (ASCII letters, upper-cased into
 * verb, at most SMTP_VERB_MAX) and the arguments after one space.
 * *args_off_r: offset of the arguments in line (== len when none). -1 if
 * the line does not start with a verb followed by a space or its end. */
int smtp_parse_verb(const char *line, size_t len, char verb[SMTP_VERB_MAX + 1], size_t *args_off_r);

enum smtp_body_type { SMTP_BODY_7BIT = 0, SMTP_BODY_8BITMIME };
enum smtp_ret { SMTP_RET_NONE = 0, SMTP_RET_FULL, SMTP_RET_HDRS };

struct smtp_mail_params {
	bool has_size;
	uint64_t size;
	enum smtp_body_type body;
	bool smtputf8;
	enum smtp_ret ret;
	char envid[SMTP_ENVID_MAX + 1]; /* xtext-decoded; "" when absent */
	bool has_envid;
	bool has_auth; /* AUTH=<...> (RFC 4954): accepted and ignored */
};

/* DSN NOTIFY (RFC 3461); 0 when the parameter was absent. */
#define SMTP_NOTIFY_NEVER   0x1u
#define SMTP_NOTIFY_SUCCESS 0x2u
#define SMTP_NOTIFY_FAILURE 0x4u
#define SMTP_NOTIFY_DELAY   0x8u

struct smtp_rcpt_params {
	unsigned notify;
	/* ORCPT as given (addr-type ";" xtext), "" when absent; orcpt_addr is
	 * its decoded address. */
	char orcpt[SMTP_ORCPT_MAX + 1];
	char orcpt_addr[SMTP_ORCPT_MAX + 1];
};

/* "FROM:<path> [params]" (args of MAIL). The null path is allowed here
 * (the caller decides). A space after the colon is tolerated. */
enum smtp_parse_status smtp_parse_mail(const char *args, size_t len, struct address *from_r,
                                       struct smtp_mail_params *p_r, const char **error_r);
/* "TO:<path> [params]" (args of RCPT). The null path and "<Postmaster>"
 * without domain are refused (BAD_ADDRESS). */
enum smtp_parse_status smtp_parse_rcpt(const char *args, size_t len, struct address *to_r,
                                       struct smtp_rcpt_params *p_r, const char **error_r);

/* Strict xtext (RFC 3461 4): printable ASCII 33..126 except '+' and '=',
 * and "+HH" with upper-case hex. Decodes into out (outmax bytes with NUL).
 * -1 on bad syntax or overflow. */
int smtp_xtext_decode(const char *s, size_t len, char *out, size_t outmax);

/* "n" or "n LAST" (args of BDAT). */
int smtp_parse_bdat(const char *args, size_t len, uint64_t *size_r, bool *last_r);

/* ---- the header of an incoming message, scanned as it streams ---- */

#define SMTP_FROM_FIELD_MAX 2048

/* Feed the message in chunks of any size (lines may end in CRLF or LF).
 * Counts Received: fields and keeps the unfolded value of the first From:
 * field (cut at SMTP_FROM_FIELD_MAX bytes, from_cut then set). Stops
 * looking at the blank line that ends the header. Zero-initialise. */
struct smtp_header_scan {
	unsigned received;
	unsigned from_fields;
	char from[SMTP_FROM_FIELD_MAX + 1];
	size_t from_len;
	bool from_cut;
	bool done; /* the header has ended */
	/* private */
	unsigned line_pos; /* bytes of the current line seen so far */
	char name[12];     /* first bytes of the current line, lower-cased */
	unsigned name_len; /* the name's length up to its last non-blank byte */
	bool colon;        /* the current line's field name has ended */
	bool in_from;      /* the current line belongs to the first From: */
};
void smtp_header_scan_feed(struct smtp_header_scan *h, const void *data, size_t len);

/* Extracts the addr-specs of an RFC 5322 address list (a From: value):
 * display names, comments, quoted strings, angle brackets and groups.
 * Calls fn for each address (NUL-terminated, as written). Returns the
 * number of addresses, or -1 on a syntax error or when fn returns -1. */
int smtp_parse_address_list(const char *s, size_t len,
                            int (*fn)(void *ctx, const char *addr, size_t addr_len), void *ctx);

/* Writes name (a HELO/EHLO argument) into out (outmax bytes with NUL)
 * keeping only letters, digits and ".-:[]_", others replaced by '?', so it
 * may appear in a Received: header. */
void smtp_helo_sanitize(const char *name, char *out, size_t outmax);

#endif
