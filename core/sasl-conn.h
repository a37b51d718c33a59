/* sasl-conn.h - the challenge/response rounds of SASL over a connection,
 * shared by SMTP, IMAP and POP3 (which differ only in how a challenge line
 * starts: "334 " for SMTP, "+ " for IMAP and POP3). */
#ifndef ROOST_SASL_CONN_H
#define ROOST_SASL_CONN_H

#include "config.h"
#include "conn.h"
#include "sasl.h"

/* While st is SASL_CONTINUE: writes prefix, the challenge and CRLF, reads
 * one response line (at most SASL_RESPONSE_MAX + 16 bytes; a longer one is
 * skipped and ends the exchange with SASL_ERROR and *error_r "response too
 * long") and steps the mechanism. Returns the final status. *conn_r is
 * CONN_OK, or the connection's failure (EOF, timeout, error: the session
 * should end; nothing more can be written). Response bytes are wiped. */
enum sasl_status sasl_conn_exchange(struct sasl *s, enum sasl_status st, struct conn *c,
                                    const char *prefix, enum conn_status *conn_r,
                                    const char **error_r);

/* The same over any line transport (IMAP after COMPRESS, for one): write
 * sends bytes, read_line reads one line as conn_read_line() does. */
struct sasl_io {
	enum conn_status (*write)(void *ctx, const void *p, size_t n);
	enum conn_status (*read_line)(void *ctx, struct buf *line, size_t max_len);
	void *ctx;
};
enum sasl_status sasl_io_exchange(struct sasl *s, enum sasl_status st, const struct sasl_io *io,
                                  const char *prefix, enum conn_status *conn_r,
                                  const char **error_r);

/* The random pause after a failed login (STYLE.md): between half and all of
 * [limits] auth_failure_delay_ms of cfg. Flush pending output first. */
void auth_failure_pause(const struct config *cfg);

#endif
