/* tls.h - OpenSSL 3 contexts for the listeners and for outbound SMTP.
 *
 * The server context is process-wide and replaceable: tls_server_setup()
 * installs one at start-up, tls_server_reload() (SIGHUP) builds a new one
 * and swaps it in atomically. Each connection takes its own reference
 * (tls_server_ctx_ref(); an SSL object also holds one), so connections in
 * flight keep the context they started with; the old context is freed when
 * its last user is gone. A failed reload keeps the old context.
 *
 * Server settings: TLS 1.2 minimum, forward-secret AEAD ciphers only, no
 * compression, no renegotiation, server cipher preference, session tickets
 * allowed.
 *
 * Errors: functions return -1 with *error_r pointing to a message in a
 * thread-local buffer, valid until the next tls_* call in the same thread. */
#ifndef ROOST_TLS_H
#define ROOST_TLS_H

#include "config.h"

#include <stdbool.h>

struct ssl_ctx_st; /* SSL_CTX */

/* Loads [tls] cert and key (key empty: the key is in the cert file), or,
 * when cert is empty, the self-signed pair in
 * <data_dir>/tls/ (generated at first start for [server] hostname, or the
 * machine's host name), builds the server context and installs it as the
 * current one. Call before dropping privileges. */
int tls_server_setup(const struct config *cfg, const char **error_r);
/* The same from (possibly new) cfg; keeps the current context on failure. */
int tls_server_reload(const struct config *cfg, const char **error_r);
/* The current server context with a new reference, or NULL if none has been
 * set up. Release with tls_ctx_unref(). */
struct ssl_ctx_st *tls_server_ctx_ref(void);
void tls_ctx_unref(struct ssl_ctx_st **ctx);
/* Drops the current context (at exit; for leak checkers). */
void tls_server_cleanup(void);

/* A new server context from PEM files (chain and key), not installed. */
struct ssl_ctx_st *tls_server_ctx_new(const char *cert_file, const char *key_file,
                                      const char **error_r);
/* Makes sure dir/cert.pem and dir/key.pem exist: creates dir (0700) and a
 * self-signed P-256 certificate for hostname (CN and DNS SAN, valid 825
 * days) with key mode 0600 when either file is missing; otherwise leaves
 * them alone. *cert_r and *key_r get malloc'd paths (caller frees). */
int tls_selfsigned_ensure(const char *dir, const char *hostname, char **cert_r, char **key_r,
                          const char **error_r);

/* A client context for outbound SMTP: TLS 1.2 minimum; with verify, the
 * system trust store and peer verification (the caller sets the expected
 * host name on the SSL with SSL_set1_host); without, anything is accepted
 * (opportunistic STARTTLS). */
struct ssl_ctx_st *tls_client_ctx_new(bool verify, const char **error_r);

#endif
