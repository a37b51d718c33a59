/* config.h - the bootstrap configuration file (roost.conf, INI format).
 *
 * Every setting, and every limit (STYLE.md), is declared once in the table in
 * config.c with its type, default, minimum, maximum and documentation. The
 * table is the source of docs/configuration.md (`roost config reference`),
 * and a test checks the two agree. An unknown section or key, a value out of
 * range or an unreadable file is an error naming the file, line and key.
 *
 * Protocol issues add their keys by adding an enum constant here and a row to
 * the table in config.c, in the same order. */
#ifndef ROOST_CONFIG_H
#define ROOST_CONFIG_H

#include "buf.h"

#include <stdbool.h>
#include <stdint.h>

enum config_key {
	CFG_SERVER_HOSTNAME,
	CFG_SERVER_DATA_DIR,
	CFG_SERVER_USER,
	CFG_SERVER_LOG_LEVEL,
	CFG_SERVER_ALLOW_PLAINTEXT_LOOPBACK,
	CFG_DATABASE_DSN,
	CFG_DATABASE_POOL_SIZE,
	CFG_DATABASE_DELIVERY_LANES,
	CFG_DATABASE_CLEANUP_INTERVAL,
	CFG_DATABASE_PG_BINDIR,
	CFG_TLS_CERT,
	CFG_TLS_KEY,
	CFG_LISTEN_SMTP,
	CFG_LISTEN_SUBMISSION,
	CFG_LISTEN_SUBMISSIONS,
	CFG_LISTEN_IMAP,
	CFG_LISTEN_IMAPS,
	CFG_LISTEN_POP3,
	CFG_LISTEN_POP3S,
	CFG_LISTEN_HTTPS,
	CFG_LISTEN_HTTP,
	CFG_LIMITS_CONNECTIONS,
	CFG_LIMITS_CONNECTIONS_PER_IP,
	CFG_LIMITS_LINE_LENGTH,
	CFG_LIMITS_LINE_LENGTH_PREAUTH,
	CFG_LIMITS_LITERAL_SIZE,
	CFG_LIMITS_LITERAL_SIZE_PREAUTH,
	CFG_LIMITS_MESSAGE_SIZE,
	CFG_LIMITS_RECIPIENTS,
	CFG_LIMITS_PIPELINED_COMMANDS,
	CFG_LIMITS_BAD_COMMANDS,
	CFG_LIMITS_BAD_COMMANDS_PREAUTH,
	CFG_LIMITS_IDLE_TIMEOUT,
	CFG_LIMITS_PREAUTH_TIMEOUT,
	CFG_LIMITS_REQUEST_DEADLINE,
	CFG_LIMITS_MIN_DATA_RATE,
	CFG_LIMITS_AUTH_FAILURE_DELAY_MS,
	CFG_LIMITS_MIME_DEPTH,
	CFG_LIMITS_MIME_PARTS,
	CFG_LIMITS_HTTP_BODY_SIZE,
	CFG_DNS_RESOLVER,
	CFG_DNS_TIMEOUT,
	CFG_SMTP_RELAYHOST,
	CFG_SMTP_RELAYHOST_USER,
	CFG_SMTP_RELAYHOST_PASSWORD,
	CFG_SMTP_RELAYHOST_TLS,
	CFG_SMTP_RELAYHOST_VERIFY,
	CFG_SMTP_RELAYHOST_CA,
	CFG_QUEUE_RUNNERS,
	CFG_QUEUE_MAX_AGE,
	CFG_QUEUE_DELAY_NOTICE,
	CFG_QUEUE_RETRY_MIN,
	CFG_QUEUE_RETRY_MAX,
	CFG_QUEUE_CONNECT_TIMEOUT,
	CFG_POP3_EXPIRE,
	CFG_POP3_LOGIN_DELAY,
	/* SMTP server (smtp/server.c, smtp/cmd-data.c) */
	CFG_SMTP_MAX_HOPS,
	CFG_SMTP_CHECK_HEADER_FROM,
	/* outbound queue (smtp/queue-runner.c) */
	CFG_QUEUE_SMTP_PORT,
	/* browser administration sign-in (webadmin/wa-session.c) */
	CFG_HTTP_SESSION_IDLE_TIMEOUT,
	CFG_HTTP_SESSION_MAX_AGE,
	CFG_HTTP_SIGNIN_WINDOW,
	CFG_HTTP_SIGNIN_FAILURES_PER_IP,
	CFG_HTTP_SIGNIN_FAILURES_PER_ACCOUNT,
	CFG_HTTP_SETUP_LINK_LIFETIME,
	CFG__COUNT
};

enum config_type {
	CONFIG_STR,     /* any text */
	CONFIG_UINT,    /* decimal integer within [min, max] */
	CONFIG_SIZE,    /* bytes with optional K/M/G/T suffix, within [min, max] */
	CONFIG_SECONDS, /* seconds with optional s/m/h/d suffix, within [min, max] */
	CONFIG_BOOL,    /* yes/no, true/false, on/off, 1/0 */
	CONFIG_LISTEN,  /* host:port, [v6]:port, comma-separated; empty disables */
	CONFIG_ENUM,    /* one of the words in `choices` (space-separated) */
};

struct config_setting {
	const char *section;
	const char *key;
	enum config_type type;
	const char *def;     /* default as it would be written in the file */
	uint64_t min, max;   /* for UINT/SIZE/SECONDS */
	const char *choices; /* for ENUM */
	const char *doc;     /* one sentence for the reference */
};

struct config;

/* One host:port of a CONFIG_LISTEN value. */
struct config_listen_addr {
	char host[256]; /* without brackets; "" never happens */
	char port[8];
};

/* The table, CFG__COUNT rows, in enum order. */
const struct config_setting *config_settings(void);

/* Loads path. A missing file is an error unless missing_ok (then defaults).
 * On error returns -1 with *error_r set to a malloc'd message
 * "FILE:LINE: [section] key: what is wrong" that the caller frees. */
int config_load(const char *path, bool missing_ok, struct config **cfg_r, char **error_r);
/* Defaults only (for tests and tools). */
struct config *config_defaults(void);
void config_free(struct config **cfg);
/* Override one value as if it were in the file (used by tests and the CLI). */
int config_set(struct config *cfg, const char *section, const char *key, const char *value,
               char **error_r);

/* A file or directory setting (data_dir, pg_bindir, cert, key,
 * relayhost_ca) as an absolute path without a trailing '/': a relative one
 * is taken relative to the config file's directory (or the working
 * directory for defaults); empty stays empty. Caller frees. */
char *config_file_path(const struct config *cfg, enum config_key key);
/* config_file_path() of [server] data_dir. */
char *config_data_dir(const struct config *cfg);
/* The file the config came from ("" for defaults). */
const char *config_path(const struct config *cfg);
const char *config_str(const struct config *cfg, enum config_key key);
uint64_t config_uint(const struct config *cfg, enum config_key key);

struct mime_limits;
/* The MIME parser's defaults with [limits] mime_depth and mime_parts. */
void config_mime_limits(const struct config *cfg, struct mime_limits *limits_r);
bool config_bool(const struct config *cfg, enum config_key key);
/* Parses a CONFIG_LISTEN value; *n_r addresses into a malloc'd array. */
int config_listen(const struct config *cfg, enum config_key key,
                  struct config_listen_addr **addrs_r, size_t *n_r);
int config_listen_parse(const char *value, struct config_listen_addr **addrs_r, size_t *n_r,
                        const char **error_r);

/* The process-wide current config: set once at start-up, swapped on reload.
 * Old configs are kept alive until exit so readers never see freed memory. */
void config_set_current(struct config *cfg);
const struct config *config_current(void);

/* Writes the Markdown reference of every setting (docs/configuration.md's table). */
void config_write_reference(struct buf *out);

#endif
