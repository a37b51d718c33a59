#include "config.h"

#include "mime.h"
#include "strnum.h"
#include "xalloc.h"

#include <errno.h>
#include <limits.h>
#include <unistd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KB (1024ULL)
#define MB (1024ULL * 1024)
#define GB (1024ULL * 1024 * 1024)

/* In enum config_key order. */
static const struct config_setting config_table[CFG__COUNT] = {
    [CFG_SERVER_HOSTNAME] =
        {"server", "hostname", CONFIG_STR, "", 0, 0, NULL,
         "Fully qualified name of this server, used in greetings, Received: headers and the "
         "generated certificate. Empty: the machine's host name."},
    [CFG_SERVER_DATA_DIR] =
        {"server", "data_dir", CONFIG_STR, "/var/lib/roost", 0, 0, NULL,
         "Directory for the managed PostgreSQL cluster, the generated certificate and state."},
    [CFG_SERVER_USER] = {"server", "user", CONFIG_STR, "roost", 0, 0, NULL,
                         "System user the server runs as after binding its ports, when started as "
                         "root. Ignored when not started as root."},
    [CFG_SERVER_LOG_LEVEL] = {"server", "log_level", CONFIG_ENUM, "info", 0, 0,
                              "debug info warn error",
                              "Lowest level of log lines written to standard error."},
    [CFG_SERVER_ALLOW_PLAINTEXT_LOOPBACK] =
        {"server", "allow_plaintext_loopback", CONFIG_BOOL, "no", 0, 0, NULL,
         "Allow plain-text passwords on unencrypted connections from loopback addresses "
         "(127.0.0.0/8, ::1). Everywhere else they are always refused."},
    [CFG_DATABASE_DSN] = {"database", "dsn", CONFIG_STR, "", 0, 0, NULL,
                          "libpq connection string of an existing PostgreSQL 13 or later. Empty: a "
                          "managed local cluster under data_dir."},
    [CFG_DATABASE_POOL_SIZE] =
        {"database", "pool_size", CONFIG_UINT, "20", 1, 500, NULL,
         "Database connections shared by all sessions (each borrows one per unit of work)."},
    [CFG_DATABASE_DELIVERY_LANES] =
        {"database", "delivery_lanes", CONFIG_UINT, "4", 0, 64, NULL,
         "Deliveries that arrive while others are being stored share their transaction: at most "
         "this many such shared transactions run at once, each holding the deliveries that "
         "queued meanwhile (up to 64). 0: every delivery commits alone."},
    [CFG_DATABASE_CLEANUP_INTERVAL] =
        {"database", "cleanup_interval", CONFIG_SECONDS, "10m", 1, 86400, NULL,
         "How often the space of deleted mail is reclaimed: message texts that no mailbox and no "
         "queued message holds any more are deleted from the database."},
    [CFG_DATABASE_PG_BINDIR] =
        {"database", "pg_bindir", CONFIG_STR, "", 0, 0, NULL,
         "Directory of PostgreSQL's server programs (initdb, pg_ctl, postgres) for the managed "
         "cluster. Empty: the newest under /usr/lib/postgresql."},
    [CFG_TLS_CERT] = {"tls", "cert", CONFIG_STR, "", 0, 0, NULL,
                      "PEM certificate chain. Empty: a self-signed certificate for the hostname is "
                      "generated into data_dir at first start."},
    [CFG_TLS_KEY] =
        {"tls", "key", CONFIG_STR, "", 0, 0, NULL,
         "PEM private key of the certificate. Re-read, with the certificate, on SIGHUP."},
    [CFG_LISTEN_SMTP] = {"listen", "smtp", CONFIG_LISTEN, "0.0.0.0:25", 0, 0, NULL,
                         "Inbound SMTP (MX) with STARTTLS."},
    [CFG_LISTEN_SUBMISSION] = {"listen", "submission", CONFIG_LISTEN, "0.0.0.0:587", 0, 0, NULL,
                               "Message submission with STARTTLS."},
    [CFG_LISTEN_SUBMISSIONS] = {"listen", "submissions", CONFIG_LISTEN, "0.0.0.0:465", 0, 0, NULL,
                                "Message submission over implicit TLS."},
    [CFG_LISTEN_IMAP] = {"listen", "imap", CONFIG_LISTEN, "0.0.0.0:143", 0, 0, NULL,
                         "IMAP with STARTTLS."},
    [CFG_LISTEN_IMAPS] = {"listen", "imaps", CONFIG_LISTEN, "0.0.0.0:993", 0, 0, NULL,
                          "IMAP over implicit TLS."},
    [CFG_LISTEN_POP3] = {"listen", "pop3", CONFIG_LISTEN, "0.0.0.0:110", 0, 0, NULL,
                         "POP3 with STLS."},
    [CFG_LISTEN_POP3S] = {"listen", "pop3s", CONFIG_LISTEN, "0.0.0.0:995", 0, 0, NULL,
                          "POP3 over implicit TLS."},
    [CFG_LISTEN_HTTPS] = {"listen", "https", CONFIG_LISTEN, "0.0.0.0:8443", 0, 0, NULL,
                          "HTTPS: browser administration, admin API, /healthz and /metrics."},
    [CFG_LISTEN_HTTP] = {"listen", "http", CONFIG_LISTEN, "", 0, 0, NULL,
                         "Plain HTTP that only redirects to the https listener. Empty: disabled."},
    [CFG_LIMITS_CONNECTIONS] = {"limits", "connections", CONFIG_UINT, "2000", 1, 100000, NULL,
                                "Connections served at once over all listeners; past it a listener "
                                "answers its protocol's try-later reply and closes."},
    [CFG_LIMITS_CONNECTIONS_PER_IP] =
        {"limits", "connections_per_ip", CONFIG_UINT, "50", 1, 100000, NULL,
         "Connections served at once from one client IP address (IPv6: one /64)."},
    [CFG_LIMITS_LINE_LENGTH] = {"limits", "line_length", CONFIG_SIZE, "64K", 1 * KB, 16 * MB, NULL,
                                "Longest command line accepted after login; the rest of a longer "
                                "line is skipped and the command refused."},
    [CFG_LIMITS_LINE_LENGTH_PREAUTH] = {"limits", "line_length_preauth", CONFIG_SIZE, "2K", 512,
                                        1 * MB, NULL,
                                        "Longest command line accepted before login."},
    [CFG_LIMITS_LITERAL_SIZE] = {"limits", "literal_size", CONFIG_SIZE, "64M", 1 * KB, 4 * GB, NULL,
                                 "Largest literal (IMAP APPEND and the like) accepted after login; "
                                 "checked before any byte of it is read."},
    [CFG_LIMITS_LITERAL_SIZE_PREAUTH] =
        {"limits", "literal_size_preauth", CONFIG_SIZE, "8K", 256, 1 * MB, NULL,
         "Largest literal accepted before login (SASL responses, quoted credentials)."},
    [CFG_LIMITS_MESSAGE_SIZE] = {"limits", "message_size", CONFIG_SIZE, "50M", 1 * KB, 4 * GB, NULL,
                                 "Largest message accepted by SMTP, APPEND or the store."},
    [CFG_LIMITS_RECIPIENTS] = {"limits", "recipients", CONFIG_UINT, "1000", 1, 100000, NULL,
                               "Recipients accepted in one SMTP transaction."},
    [CFG_LIMITS_PIPELINED_COMMANDS] =
        {"limits", "pipelined_commands", CONFIG_UINT, "100", 1, 10000, NULL,
         "Commands a client may send ahead of the replies before the server stops reading."},
    [CFG_LIMITS_BAD_COMMANDS] =
        {"limits", "bad_commands", CONFIG_UINT, "20", 1, 10000, NULL,
         "Protocol errors tolerated in one session after login before it is disconnected."},
    [CFG_LIMITS_BAD_COMMANDS_PREAUTH] = {"limits", "bad_commands_preauth", CONFIG_UINT, "10", 1,
                                         10000, NULL,
                                         "Protocol errors and failed logins tolerated before login "
                                         "before the session is disconnected."},
    [CFG_LIMITS_IDLE_TIMEOUT] = {"limits", "idle_timeout", CONFIG_SECONDS, "30m", 10, 86400, NULL,
                                 "Time a logged-in client may stay silent between commands (IMAP "
                                 "requires at least 30 minutes)."},
    [CFG_LIMITS_PREAUTH_TIMEOUT] = {"limits", "preauth_timeout", CONFIG_SECONDS, "60s", 5, 3600,
                                    NULL, "Time a client that has not logged in may stay silent."},
    [CFG_LIMITS_REQUEST_DEADLINE] = {"limits", "request_deadline", CONFIG_SECONDS, "5m", 5, 86400,
                                     NULL,
                                     "Total time budget to receive one command or request, "
                                     "extended only while data arrives at min_data_rate."},
    [CFG_LIMITS_MIN_DATA_RATE] =
        {"limits", "min_data_rate", CONFIG_SIZE, "1K", 0, 100 * MB, NULL,
         "Bytes per second a client must keep sending for a long command, literal or message to "
         "extend its deadline; 0 disables the rule."},
    [CFG_LIMITS_AUTH_FAILURE_DELAY_MS] = {"limits", "auth_failure_delay_ms", CONFIG_UINT, "2000", 0,
                                          60000, NULL,
                                          "Largest random pause in milliseconds after a failed "
                                          "login (the pause is between half and all of it)."},
    [CFG_LIMITS_MIME_DEPTH] =
        {"limits", "mime_depth", CONFIG_UINT, "64", 2, 1000, NULL,
         "Deepest MIME nesting parsed into structure; deeper parts are kept as opaque leaves."},
    [CFG_LIMITS_MIME_PARTS] = {"limits", "mime_parts", CONFIG_UINT, "2000", 10, 100000, NULL,
                               "Most MIME parts parsed into structure per message; later parts are "
                               "kept inside their parent's body."},
    [CFG_LIMITS_HTTP_BODY_SIZE] =
        {"limits", "http_body_size", CONFIG_SIZE, "1M", 1 * KB, 1 * GB, NULL,
         "Largest request body accepted by ordinary HTTP routes (the admin API)."},
    [CFG_DNS_RESOLVER] = {"dns", "resolver", CONFIG_STR, "", 0, 0, NULL,
                          "host:port of a recursive DNS resolver for outbound mail. Empty: the "
                          "first nameserver in /etc/resolv.conf."},
    [CFG_DNS_TIMEOUT] = {"dns", "timeout", CONFIG_SECONDS, "5s", 1, 60, NULL,
                         "Time to wait for one DNS answer before retrying or giving up."},
    [CFG_SMTP_RELAYHOST] =
        {"smtp", "relayhost", CONFIG_STR, "", 0, 0, NULL,
         "host:port of a smarthost that relays all outbound mail (as residential links need). "
         "Empty: deliver to each domain's MX directly."},
    [CFG_SMTP_RELAYHOST_USER] =
        {"smtp", "relayhost_user", CONFIG_STR, "", 0, 0, NULL,
         "User name for SMTP AUTH at the smarthost. Empty: no authentication."},
    [CFG_SMTP_RELAYHOST_PASSWORD] = {"smtp", "relayhost_password", CONFIG_STR, "", 0, 0, NULL,
                                     "Password for SMTP AUTH at the smarthost (keep the config "
                                     "file readable by root and roost only)."},
    [CFG_SMTP_RELAYHOST_TLS] =
        {"smtp", "relayhost_tls", CONFIG_ENUM, "starttls", 0, 0, "starttls implicit none",
         "How to secure the smarthost connection: STARTTLS (required), implicit TLS (port 465 "
         "style), or none (only for a relay on a trusted network)."},
    [CFG_SMTP_RELAYHOST_VERIFY] =
        {"smtp", "relayhost_verify", CONFIG_BOOL, "yes", 0, 0, NULL,
         "Check the smarthost's certificate (chain to a trusted CA, and its name or IP address "
         "as written in relayhost) when relayhost_tls is starttls or implicit; a failure "
         "defers the mail (4.7.5). no: any certificate is accepted."},
    [CFG_SMTP_RELAYHOST_CA] =
        {"smtp", "relayhost_ca", CONFIG_STR, "", 0, 0, NULL,
         "PEM file of the certificate authorities trusted for the smarthost's certificate "
         "(only these). Empty: the system trust store."},
    [CFG_QUEUE_RUNNERS] =
        {"queue", "runners", CONFIG_UINT, "4", 1, 256, NULL,
         "Outbound delivery threads of this node (several nodes may share one queue)."},
    [CFG_QUEUE_MAX_AGE] = {"queue", "max_age", CONFIG_SECONDS, "5d", 60, 2592000, NULL,
                           "How long a message is retried before it bounces to its sender."},
    [CFG_QUEUE_DELAY_NOTICE] =
        {"queue", "delay_notice", CONFIG_SECONDS, "4h", 0, 2592000, NULL,
         "After this long undelivered, the sender gets a delay notice (once); 0 disables notices."},
    [CFG_QUEUE_RETRY_MIN] =
        {"queue", "retry_min", CONFIG_SECONDS, "5m", 1, 86400, NULL,
         "First retry interval after a temporary failure; it doubles up to retry_max."},
    [CFG_QUEUE_RETRY_MAX] = {"queue", "retry_max", CONFIG_SECONDS, "1h", 1, 86400, NULL,
                             "Longest interval between retries."},
    [CFG_QUEUE_CONNECT_TIMEOUT] = {"queue", "connect_timeout", CONFIG_SECONDS, "30s", 1, 600, NULL,
                                   "Time to establish a connection to a remote MX."},
    [CFG_POP3_EXPIRE] = {"pop3", "expire", CONFIG_STR, "NEVER", 0, 0, NULL,
                         "Value of the POP3 EXPIRE capability (RFC 2449): NEVER, or a number of "
                         "days after which Roost deletes retrieved messages."},
    [CFG_POP3_LOGIN_DELAY] = {"pop3", "login_delay", CONFIG_SECONDS, "0", 0, 86400, NULL,
                              "Minimum seconds between POP3 logins of one account, announced as "
                              "LOGIN-DELAY (RFC 2449) and enforced; 0 disables."},
    [CFG_SMTP_MAX_HOPS] = {"smtp", "max_hops", CONFIG_UINT, "50", 5, 1000, NULL,
                           "Loop detection: a message arriving with more Received: header fields "
                           "than this is refused with 554 5.4.6."},
    [CFG_SMTP_CHECK_HEADER_FROM] =
        {"smtp", "check_header_from", CONFIG_BOOL, "yes", 0, 0, NULL,
         "On submission, also require every address of the header From: to belong to the "
         "authenticated user (as MAIL FROM must); else 553 5.7.1."},
    [CFG_QUEUE_SMTP_PORT] = {"queue", "smtp_port", CONFIG_UINT, "25", 1, 65535, NULL,
                             "Port of remote MX hosts; change only for testing."},
    [CFG_HTTP_SESSION_IDLE_TIMEOUT] =
        {"http", "session_idle_timeout", CONFIG_SECONDS, "1h", 60, 86400, NULL,
         "A browser administration session unused this long ends; the user signs in again."},
    [CFG_HTTP_SESSION_MAX_AGE] = {"http", "session_max_age", CONFIG_SECONDS, "12h", 60, 2592000,
                                  NULL,
                                  "A browser administration session ends this long after sign-in, "
                                  "however busy (also the cookie's Max-Age)."},
    [CFG_HTTP_SIGNIN_WINDOW] = {"http", "signin_window", CONFIG_SECONDS, "15m", 60, 86400, NULL,
                                "Window over which failed browser sign-ins are counted; a refused "
                                "client is told to retry after it."},
    [CFG_HTTP_SIGNIN_FAILURES_PER_IP] =
        {"http", "signin_failures_per_ip", CONFIG_UINT, "20", 1, 100000, NULL,
         "Failed browser sign-ins from one IP address within signin_window before further attempts "
         "from it are refused with 429."},
    [CFG_HTTP_SIGNIN_FAILURES_PER_ACCOUNT] =
        {"http", "signin_failures_per_account", CONFIG_UINT, "10", 1, 100000, NULL,
         "Failed browser sign-ins for one account within signin_window before further attempts for "
         "it are refused with 429."},
    [CFG_HTTP_SETUP_LINK_LIFETIME] =
        {"http", "setup_link_lifetime", CONFIG_SECONDS, "24h", 300, 2592000, NULL,
         "How long the one-time set-up link (logged at start while there is no administrator) "
         "stays valid."},
};

struct config {
	char *path;
	char *values[CFG__COUNT];
	uint64_t nums[CFG__COUNT];
};

const struct config_setting *config_settings(void)
{
	return config_table;
}

static char *config_err(const char *path, unsigned line, const char *section, const char *key,
                        const char *what)
{
	char tmp[1024];
	if (key != NULL)
		snprintf(tmp, sizeof(tmp), "%s:%u: [%s] %s: %s", path, line, section, key, what);
	else
		snprintf(tmp, sizeof(tmp), "%s:%u: %s", path, line, what);
	return xstrdup(tmp);
}

static int config_find(const char *section, const char *key)
{
	for (int i = 0; i < CFG__COUNT; i++)
		if (strcmp(config_table[i].section, section) == 0 &&
		    strcmp(config_table[i].key, key) == 0)
			return i;
	return -1;
}

static bool config_section_known(const char *section)
{
	for (int i = 0; i < CFG__COUNT; i++)
		if (strcmp(config_table[i].section, section) == 0)
			return true;
	return false;
}

static int config_parse_bool(const char *v, bool *r)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*r = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*r = false;
			return 0;
		}
	}
	return -1;
}

static bool config_word_in(const char *word, const char *choices)
{
	size_t wl = strlen(word);
	const char *p = choices;
	while (*p != '\0') {
		const char *e = strchr(p, ' ');
		size_t l = e != NULL ? (size_t)(e - p) : strlen(p);
		if (l == wl && l > 0 && strncmp(p, word, l) == 0)
			return true;
		if (e == NULL)
			break;
		p = e + 1;
	}
	return false;
}

/* Validates value for row i; stores the parsed number. NULL or a static error. */
static const char *config_check(struct config *cfg, int i, const char *value)
{
	const struct config_setting *s = &config_table[i];
	uint64_t n = 0;
	bool b;
	switch (s->type) {
	case CONFIG_STR:
		break;
	case CONFIG_UINT:
		if (str_to_u64(value, UINT64_MAX, &n) < 0)
			return "not a whole number";
		break;
	case CONFIG_SIZE:
		if (str_to_size(value, &n) < 0)
			return "not a size (a number with an optional K, M, G or T)";
		break;
	case CONFIG_SECONDS:
		if (str_to_seconds(value, &n) < 0)
			return "not a duration (a number with an optional s, m, h or d)";
		break;
	case CONFIG_BOOL:
		if (config_parse_bool(value, &b) < 0)
			return "not yes or no";
		n = b;
		break;
	case CONFIG_ENUM:
		if (!config_word_in(value, s->choices))
			return "not one of the allowed values";
		break;
	case CONFIG_LISTEN: {
		struct config_listen_addr *a = NULL;
		size_t na;
		const char *err;
		int r = config_listen_parse(value, &a, &na, &err);
		free(a);
		if (r < 0)
			return err;
		break;
	}
	}
	if ((s->type == CONFIG_UINT || s->type == CONFIG_SIZE || s->type == CONFIG_SECONDS) &&
	    (n < s->min || n > s->max))
		return "out of range";
	cfg->nums[i] = n;
	return NULL;
}

static char *config_range_err(const char *path, unsigned line, int i)
{
	const struct config_setting *s = &config_table[i];
	char what[256];
	snprintf(what, sizeof(what), "out of range (minimum %llu, maximum %llu)",
	         (unsigned long long)s->min, (unsigned long long)s->max);
	return config_err(path, line, s->section, s->key, what);
}

static int config_assign(struct config *cfg, int i, const char *value, const char *path,
                         unsigned line, char **error_r)
{
	const char *err = config_check(cfg, i, value);
	if (err != NULL) {
		if (strcmp(err, "out of range") == 0)
			*error_r = config_range_err(path, line, i);
		else
			*error_r = config_err(path, line, config_table[i].section,
			                      config_table[i].key, err);
		return -1;
	}
	free(cfg->values[i]);
	cfg->values[i] = xstrdup(value);
	return 0;
}

struct config *config_defaults(void)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	cfg->path = xstrdup("");
	for (int i = 0; i < CFG__COUNT; i++) {
		char *err = NULL;
		if (config_assign(cfg, i, config_table[i].def, "(defaults)", 0, &err) < 0) {
			/* A broken default is a programming error. */
			fprintf(stderr, "%s\n", err);
			abort();
		}
	}
	return cfg;
}

static char *config_trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

/* Removes an inline comment: ';' or '#' preceded by white space, outside quotes. */
static void config_strip_comment(char *v)
{
	bool quoted = false;
	for (char *p = v; *p != '\0'; p++) {
		if (*p == '"')
			quoted = !quoted;
		else if (!quoted && (*p == ';' || *p == '#') &&
		         (p == v || p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			return;
		}
	}
}

static char *config_unquote(char *v)
{
	size_t n = strlen(v);
	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		v[n - 1] = '\0';
		return v + 1;
	}
	return v;
}

static int config_parse_line(struct config *cfg, char *line, unsigned lineno, char *section,
                             size_t seclen, char **error_r)
{
	const char *path = cfg->path;
	char *s = config_trim(line);
	if (*s == '\0' || *s == ';' || *s == '#')
		return 0;
	if (*s == '[') {
		char *end = strchr(s, ']');
		if (end == NULL) {
			*error_r =
			    config_err(path, lineno, NULL, NULL, "section header without ']'");
			return -1;
		}
		*end = '\0';
		char *rest = end + 1;
		config_strip_comment(rest);
		if (*config_trim(rest) != '\0') {
			*error_r =
			    config_err(path, lineno, NULL, NULL, "text after section header");
			return -1;
		}
		char *name = config_trim(s + 1);
		if (!config_section_known(name)) {
			char what[300];
			snprintf(what, sizeof(what), "unknown section [%.200s]", name);
			*error_r = config_err(path, lineno, NULL, NULL, what);
			return -1;
		}
		snprintf(section, seclen, "%s", name);
		return 0;
	}
	char *eq = strchr(s, '=');
	if (eq == NULL) {
		*error_r = config_err(path, lineno, NULL, NULL, "expected key = value");
		return -1;
	}
	*eq = '\0';
	char *key = config_trim(s);
	char *value = eq + 1;
	config_strip_comment(value);
	value = config_unquote(config_trim(value));
	if (section[0] == '\0') {
		*error_r = config_err(path, lineno, NULL, NULL, "key outside any [section]");
		return -1;
	}
	int i = config_find(section, key);
	if (i < 0) {
		*error_r = config_err(path, lineno, section, key, "unknown key");
		return -1;
	}
	return config_assign(cfg, i, value, path, lineno, error_r);
}

int config_load(const char *path, bool missing_ok, struct config **cfg_r, char **error_r)
{
	*cfg_r = NULL;
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		if (errno == ENOENT && missing_ok) {
			*cfg_r = config_defaults();
			return 0;
		}
		char what[512];
		snprintf(what, sizeof(what), "%s: cannot read: %s", path, strerror(errno));
		*error_r = xstrdup(what);
		return -1;
	}
	struct config *cfg = config_defaults();
	free(cfg->path);
	cfg->path = xstrdup(path);
	char section[64] = "";
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	int ret = 0;
	while (getline(&line, &cap, f) >= 0) {
		lineno++;
		size_t n = strlen(line);
		if (n > 0 && line[n - 1] == '\n')
			line[n - 1] = '\0';
		if (config_parse_line(cfg, line, lineno, section, sizeof(section), error_r) < 0) {
			ret = -1;
			break;
		}
	}
	if (ret == 0 && ferror(f)) {
		*error_r = config_err(path, lineno, NULL, NULL, "read error");
		ret = -1;
	}
	free(line);
	fclose(f);
	if (ret < 0) {
		config_free(&cfg);
		return -1;
	}
	*cfg_r = cfg;
	return 0;
}

int config_set(struct config *cfg, const char *section, const char *key, const char *value,
               char **error_r)
{
	int i = config_find(section, key);
	if (i < 0) {
		*error_r = config_err("(override)", 0, section, key, "unknown key");
		return -1;
	}
	return config_assign(cfg, i, value, "(override)", 0, error_r);
}

void config_free(struct config **cfgp)
{
	struct config *cfg = *cfgp;
	if (cfg == NULL)
		return;
	for (int i = 0; i < CFG__COUNT; i++)
		free(cfg->values[i]);
	free(cfg->path);
	free(cfg);
	*cfgp = NULL;
}

const char *config_path(const struct config *cfg)
{
	return cfg->path;
}

const char *config_str(const struct config *cfg, enum config_key key)
{
	return cfg->values[key];
}

uint64_t config_uint(const struct config *cfg, enum config_key key)
{
	return cfg->nums[key];
}

bool config_bool(const struct config *cfg, enum config_key key)
{
	return cfg->nums[key] != 0;
}

static int config_listen_one(const char *item, size_t len, struct config_listen_addr *a,
                             const char **error_r)
{
	const char *colon;
	size_t hostlen;
	const char *host = item;
	if (len > 0 && item[0] == '[') {
		const char *close = memchr(item, ']', len);
		if (close == NULL || close + 1 >= item + len || close[1] != ':') {
			*error_r = "expected [address]:port";
			return -1;
		}
		host = item + 1;
		hostlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = NULL;
		for (size_t i = 0; i < len; i++)
			if (item[i] == ':')
				colon = item + i;
		if (colon == NULL) {
			*error_r = "expected host:port";
			return -1;
		}
		hostlen = (size_t)(colon - item);
		if (memchr(item, ':', hostlen) != NULL) {
			*error_r = "IPv6 addresses go in brackets: [::1]:port";
			return -1;
		}
	}
	size_t portlen = (size_t)(item + len - colon - 1);
	uint64_t port;
	if (hostlen == 0 || hostlen >= sizeof(a->host)) {
		*error_r = "missing or over-long host";
		return -1;
	}
	if (mem_to_u64(colon + 1, portlen, 65535, &port) < 0 || port == 0) {
		*error_r = "port must be a number from 1 to 65535";
		return -1;
	}
	memcpy(a->host, host, hostlen);
	a->host[hostlen] = '\0';
	snprintf(a->port, sizeof(a->port), "%u", (unsigned)port);
	return 0;
}

int config_listen_parse(const char *value, struct config_listen_addr **addrs_r, size_t *n_r,
                        const char **error_r)
{
	struct config_listen_addr *addrs = NULL;
	size_t n = 0;
	const char *p = value;
	*addrs_r = NULL;
	*n_r = 0;
	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		const char *e = p;
		while (*e != '\0' && *e != ',' && *e != ' ' && *e != '\t')
			e++;
		addrs = xreallocarray(addrs, n + 1, sizeof(*addrs));
		if (config_listen_one(p, (size_t)(e - p), &addrs[n], error_r) < 0) {
			free(addrs);
			return -1;
		}
		n++;
		p = e;
	}
	*addrs_r = addrs;
	*n_r = n;
	return 0;
}

int config_listen(const struct config *cfg, enum config_key key,
                  struct config_listen_addr **addrs_r, size_t *n_r)
{
	const char *err;
	return config_listen_parse(cfg->values[key], addrs_r, n_r, &err);
}

char *config_file_path(const struct config *cfg, enum config_key key)
{
	const char *d = config_str(cfg, key);
	struct buf b;
	buf_init(&b, PATH_MAX);
	if (d[0] == '\0' || d[0] == '/') {
		buf_append_str(&b, d);
	} else {
		/* Relative to the config file's directory, or the working directory. */
		const char *path = config_path(cfg);
		const char *slash = strrchr(path, '/');
		if (slash != NULL && path[0] == '/') {
			buf_append(&b, path, (size_t)(slash - path));
		} else {
			char cwd[PATH_MAX];
			if (getcwd(cwd, sizeof(cwd)) == NULL)
				snprintf(cwd, sizeof(cwd), "/");
			buf_append_str(&b, cwd);
			if (slash != NULL) {
				buf_append_char(&b, '/');
				buf_append(&b, path, (size_t)(slash - path));
			}
		}
		if (strncmp(d, "./", 2) == 0)
			d += 2;
		buf_append_char(&b, '/');
		buf_append_str(&b, d);
	}
	while (b.len > 1 && b.data[b.len - 1] == '/')
		buf_truncate(&b, b.len - 1);
	return buf_steal(&b, NULL);
}

char *config_data_dir(const struct config *cfg)
{
	return config_file_path(cfg, CFG_SERVER_DATA_DIR);
}

static _Atomic(struct config *) config_cur;
static pthread_mutex_t config_old_lock = PTHREAD_MUTEX_INITIALIZER;
static struct config **config_old;
static size_t config_nold;

void config_set_current(struct config *cfg)
{
	struct config *old = atomic_exchange(&config_cur, cfg);
	if (old != NULL) {
		pthread_mutex_lock(&config_old_lock);
		config_old = xreallocarray(config_old, config_nold + 1, sizeof(*config_old));
		config_old[config_nold++] = old;
		pthread_mutex_unlock(&config_old_lock);
	}
}

const struct config *config_current(void)
{
	struct config *cfg = atomic_load(&config_cur);
	if (cfg == NULL) {
		struct config *def = config_defaults();
		struct config *expected = NULL;
		if (!atomic_compare_exchange_strong(&config_cur, &expected, def))
			config_free(&def);
		cfg = atomic_load(&config_cur);
	}
	return cfg;
}

static const char *config_type_name(enum config_type t)
{
	switch (t) {
	case CONFIG_STR:
		return "text";
	case CONFIG_UINT:
		return "number";
	case CONFIG_SIZE:
		return "size";
	case CONFIG_SECONDS:
		return "duration";
	case CONFIG_BOOL:
		return "yes/no";
	case CONFIG_LISTEN:
		return "addresses";
	case CONFIG_ENUM:
		return "word";
	}
	return "?";
}

static void config_write_bound(struct buf *out, const struct config_setting *s, uint64_t v)
{
	char tmp[32];
	if (s->type == CONFIG_SIZE)
		size_format(v, tmp, sizeof(tmp));
	else
		snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
	buf_append_str(out, tmp);
}

static void config_write_row(struct buf *out, const struct config_setting *s)
{
	if (s->def[0] != '\0')
		buf_printf(out, "| `%s` | %s | `%s` | ", s->key, config_type_name(s->type), s->def);
	else
		buf_printf(out, "| `%s` | %s | (empty) | ", s->key, config_type_name(s->type));
	if (s->type == CONFIG_UINT || s->type == CONFIG_SIZE || s->type == CONFIG_SECONDS) {
		config_write_bound(out, s, s->min);
		buf_append_str(out, " to ");
		config_write_bound(out, s, s->max);
	} else if (s->type == CONFIG_ENUM) {
		buf_printf(out, "%s", s->choices);
	}
	buf_printf(out, " | %s |\n", s->doc);
}

/* Sections in the order they first appear in the table, each with all of
 * its keys, wherever in the table they were added. */
void config_write_reference(struct buf *out)
{
	for (int i = 0; i < CFG__COUNT; i++) {
		const char *section = config_table[i].section;
		bool seen = false;
		for (int j = 0; j < i && !seen; j++)
			seen = strcmp(config_table[j].section, section) == 0;
		if (seen)
			continue;
		buf_printf(out, "\n### [%s]\n\n", section);
		buf_append_str(out, "| key | type | default | range | meaning |\n");
		buf_append_str(out, "| --- | --- | --- | --- | --- |\n");
		for (int j = i; j < CFG__COUNT; j++)
			if (strcmp(config_table[j].section, section) == 0)
				config_write_row(out, &config_table[j]);
	}
}

void config_mime_limits(const struct config *cfg, struct mime_limits *limits_r)
{
	mime_limits_default(limits_r);
	limits_r->max_depth = (unsigned)config_uint(cfg, CFG_LIMITS_MIME_DEPTH);
	limits_r->max_parts = (unsigned)config_uint(cfg, CFG_LIMITS_MIME_PARTS);
}
