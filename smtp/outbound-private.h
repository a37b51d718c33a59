/* outbound-private.h - what the files of the outbound side share: the SMTP
 * client (smtp-client.c), delivery status notifications (dsn.c) and the
 * runner (queue-runner.c). */
#ifndef ROOST_SMTP_OUTBOUND_PRIVATE_H
#define ROOST_SMTP_OUTBOUND_PRIVATE_H

#include "outbound.h"

#include "buf.h"
#include "conn.h"
#include "dns.h"
#include "queue.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* ---- SMTP client (smtp-client.c) ---- */

enum smtpc_tls { SMTPC_TLS_OPPORTUNISTIC, SMTPC_TLS_REQUIRED, SMTPC_TLS_IMPLICIT, SMTPC_TLS_NONE };

/* A reply, or a local failure dressed as one (code 4xx/5xx). */
struct smtpc_reply {
	unsigned code;  /* 0: nothing yet */
	char esc[16];   /* enhanced status "5.1.1" (derived from code if absent) */
	char text[300]; /* "550 5.1.1 no such user", escaped, for logs and DSNs */
};

struct smtpc_options {
	const char *helo; /* our host name */
	const char *host; /* remote name (SNI, logs, Remote-MTA) */
	enum smtpc_tls tls;
	struct ssl_ctx_st *tls_ctx;
	const char *auth_user; /* NULL/"": no AUTH */
	const char *auth_password;
	uint32_t connect_timeout_ms;
	uint32_t command_timeout_ms;
	int stop_fd; /* readable when the runner stops: ends a connect at once */
};

struct smtpc_session;

/* Connects to addr and completes the greeting, EHLO, STARTTLS and AUTH.
 * NULL with *err_r filled when the host cannot be used (the caller tries
 * the next one). */
struct smtpc_session *smtpc_open(const struct sockaddr_storage *addr, const struct smtpc_options *o,
                                 struct smtpc_reply *err_r);

/* One transaction. rcpt_r: nrcpts replies; each recipient accepted at RCPT
 * and by the final reply gets code 250. Recipients refused at RCPT keep
 * their RCPT reply; a failure of MAIL or DATA is copied to every recipient
 * it concerns. smtputf8: the message needs SMTPUTF8 (refused with 5.6.7
 * when the server lacks it). */
void smtpc_send(struct smtpc_session *s, const char *sender, const char *const *rcpts,
                size_t nrcpts, const struct buf *data, bool smtputf8, struct smtpc_reply *rcpt_r);

/* QUIT (best effort) and free; sets *s to NULL. */
void smtpc_close(struct smtpc_session **s);
/* The conn, so another thread may force it shut at shutdown. */
struct conn *smtpc_conn(struct smtpc_session *s);

/* Fills a reply from a local failure ("4.4.1", "connection refused"). */
void smtpc_reply_set(struct smtpc_reply *r, unsigned code, const char *esc, const char *text);

/* ---- DSN (dsn.c) ---- */

enum dsn_action { DSN_FAILED, DSN_DELAYED, DSN_RELAYED };

struct dsn_rcpt {
	const struct queue_rcpt *rcpt; /* address, orcpt */
	const char *status;            /* "5.1.1" */
	const char *diagnostic;        /* remote reply text, or NULL */
	const char *remote_mta;        /* NULL: none */
};

/* Is a notice of this kind wanted for a recipient with this NOTIFY value?
 * Absent NOTIFY means FAILURE,DELAY (RFC 3461 4.1). */
bool dsn_wanted(const char *notify, enum dsn_action action);

/* Builds the RFC 3464 report about e's recipients into out. */
void dsn_build(const char *reporting_mta, const struct queue_entry *e, enum dsn_action action,
               const struct dsn_rcpt *r, size_t n, time_t now, struct buf *out);

/* Sends the report to e's sender: into the INBOX of a local sender through
 * the store, else queued with the null sender. Never for the null sender.
 * -1 on a temporary failure (logged). */
int dsn_send(struct db_pool *pool, struct directory *dir, const struct config *cfg,
             const struct queue_entry *e, enum dsn_action action, const struct dsn_rcpt *r,
             size_t n);

#endif
