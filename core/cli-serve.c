/* cli-serve.c - `roost serve`, `roost migrate`, and the database set-up
 * every subcommand shares. */
#include "cli.h"

#include "buf.h"
#include "directory.h"
#include "http.h"
#include "cleanup.h"
#include "indexer.h"
#include "notify-batch.h"
#include "log.h"
#include "migrate.h"
#include "notifier.h"
#include "pgmanaged.h"
#include "pool.h"
#include "privdrop.h"
#include "server.h"
#include "store.h"
#include "tls.h"
#include "xalloc.h"

/* Protocol modules join the server as their folders gain sources (each
 * folder is a library whose header is then on the include path). */
#if __has_include("smtp.h")
#include "smtp.h"
#define ROOST_HAVE_SMTP 1
#endif
#if __has_include("imap.h")
#include "imap.h"
#define ROOST_HAVE_IMAP 1
#endif
/* Browser administration shares the https listener when webadmin/ is built. */
#if __has_include("webadmin.h")
#include "webadmin.h"
#define ROOST_HAVE_WEBADMIN 1
#endif
#if __has_include("ldap-admin.h")
#include "ldap-admin.h"
#define ROOST_HAVE_LDAP_SYNC 1
#endif
#if __has_include("pop3.h")
#include "pop3.h"
#define ROOST_HAVE_POP3 1
#endif

#include <assert.h>
#include <errno.h>
#include <malloc.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <sysexits.h>
#include <unistd.h>

#define CLI_POOL_SIZE 2
#define CLI_BORROW_MS 10000

/* 0, or the exit status: 1 the managed cluster would not start (its
 * message says why), EX_TEMPFAIL the database could not be reached. */
static int cli_db_connect(struct cli_db *db, unsigned pool_size)
{
	const char *dsn = config_str(db->cfg, CFG_DATABASE_DSN);
	char *err = NULL;
	if (dsn[0] == '\0') {
		char *bindir = config_file_path(db->cfg, CFG_DATABASE_PG_BINDIR);
		struct pgmanaged_opts opts = {
		    .data_dir = db->data_dir,
		    .bindir = bindir,
		    .run_as = config_str(db->cfg, CFG_SERVER_USER),
		    .quiet = pool_size == CLI_POOL_SIZE,
		};
		int started = pgmanaged_start(&opts, &db->pg, &err);
		free(bindir);
		if (started < 0) {
			cli_error("managed PostgreSQL: %s", err);
			free(err);
			return 1;
		}
		dsn = pgmanaged_conninfo(db->pg);
	}
	if (db_pool_create(dsn, pool_size, &db->pool, &err) < 0) {
		cli_error("database: %s", err);
		free(err);
		return EX_TEMPFAIL;
	}
	return 0;
}

/* 0, or the exit status: 1 a migration failed, EX_TEMPFAIL no connection. */
static int cli_db_migrate(struct cli_db *db, bool verbose)
{
	PGconn *conn = db_pool_borrow(db->pool, CLI_BORROW_MS);
	if (conn == NULL) {
		cli_error("database: no connection");
		return EX_TEMPFAIL;
	}
	unsigned applied = 0;
	char *err = NULL;
	int r = db_migrate(conn, &applied, &err) < 0 ? 1 : 0;
	if (r != 0) {
		cli_error("migration failed: %s", err);
		free(err);
	} else if (verbose) {
		printf("schema version %d (%u migration%s applied now)\n", db_schema_version(conn),
		       applied, applied == 1 ? "" : "s");
	} else if (applied > 0) {
		log_info("event=migrate applied=%u version=%d", applied, db_schema_version(conn));
	}
	db_pool_return(db->pool, &conn);
	return r;
}

static int cli_db_open_sized(const struct cli_args *args, struct cli_db *db, unsigned pool_size,
                             bool verbose_migrate)
{
	memset(db, 0, sizeof(*db));
	if (cli_load_config(args, &db->cfg) < 0)
		return 1;
	if (pool_size == 0)
		pool_size = (unsigned)config_uint(db->cfg, CFG_DATABASE_POOL_SIZE);
	db->data_dir = config_data_dir(db->cfg);
	int status = cli_db_connect(db, pool_size);
	if (status == 0)
		status = cli_db_migrate(db, verbose_migrate);
	if (status != 0)
		cli_db_close(db);
	return status;
}

int cli_db_open(const struct cli_args *args, struct cli_db *db)
{
	return cli_db_open_sized(args, db, CLI_POOL_SIZE, false);
}

void cli_db_close(struct cli_db *db)
{
	db_pool_destroy(&db->pool);
	pgmanaged_stop(&db->pg);
	config_free(&db->cfg);
	free(db->data_dir);
	db->data_dir = NULL;
}

int cli_migrate(const struct cli_args *args)
{
	struct cli_db db;
	int status = cli_db_open_sized(args, &db, CLI_POOL_SIZE, true);
	if (status == 0)
		cli_db_close(&db);
	return status;
}

/* ---- serve ---- */

struct webadmin;

struct serve_ctx {
	struct cli_db db;
	struct directory *dir;
	struct notifier *notifier;
	struct indexer *indexer;
	struct store_cleanup *cleanup;
	struct http_server *https;
	struct http_server *http_redirect;
	struct webadmin *wa; /* when webadmin/ is built */
#ifdef ROOST_HAVE_SMTP
	struct smtp_server *smtp;
#endif
#ifdef ROOST_HAVE_IMAP
	struct imap_server *imap;
#endif
#ifdef ROOST_HAVE_POP3
	struct pop3_server *pop3;
#endif
	struct server_protocol protos[16];
	size_t nprotos;
	const char *config_file;
	time_t started;
	bool cfg_published;
};

static int serve_modules_start(struct serve_ctx *s);
static void serve_modules_teardown(struct serve_ctx *s);

static int serve_after_bind(void *arg)
{
	struct serve_ctx *s = arg;
	const char *err;
	if (privdrop_to_user(config_str(s->db.cfg, CFG_SERVER_USER), &err) < 0) {
		log_error("event=privdrop error=\"%s\"", err);
		return -1;
	}
	if (serve_modules_start(s) < 0)
		return -1;
	log_info("event=ready version=%s hostname=%s data_dir=%s uid=%u", ROOST_VERSION,
	         config_str(s->db.cfg, CFG_SERVER_HOSTNAME), s->db.data_dir, (unsigned)geteuid());
	return 0;
}

static void serve_reload(void *arg)
{
	(void)arg;
	char *err = NULL;
	struct config *cfg;
	const char *path = config_path(config_current());
	if (path[0] == '\0') {
		log_info("event=reload config=defaults");
		return;
	}
	if (config_load(path, false, &cfg, &err) < 0) {
		char q[LOG_QUOTE_MAX];
		log_error("event=reload status=failed error=%s", log_quote(q, sizeof(q), err));
		free(err);
		return;
	}
	enum log_level level = LOG_INFO;
	log_parse_level(config_str(cfg, CFG_SERVER_LOG_LEVEL), &level);
	log_set_level(level);
	config_set_current(cfg);
	log_info("event=reload status=ok config=%s", path);
}

static int serve_healthz(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct serve_ctx *s = ctx;
	(void)req;
	PGconn *conn = db_pool_borrow(s->db.pool, 2000);
	bool ok = false;
	if (conn != NULL) {
		PGresult *res = db_exec(conn, "SELECT 1", 0, NULL);
		ok = res != NULL;
		PQclear(res);
		db_pool_return(s->db.pool, &conn);
	}
	char json[256];
	snprintf(json, sizeof(json), "{\"status\":\"%s\",\"version\":\"%s\",\"uptime_s\":%lld}\n",
	         ok ? "ok" : "database unavailable", ROOST_VERSION,
	         (long long)(time(NULL) - s->started));
	http_response_json(resp, ok ? 200 : 503, json);
	return 0;
}

/* With a DSN nothing else creates data_dir, which still holds the generated
 * certificate; it belongs to the user the server runs as. */
static int serve_ensure_data_dir(const struct serve_ctx *s)
{
	const char *dir = s->db.data_dir;
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		cli_error("cannot create data directory %s: %s", dir, strerror(errno));
		return -1;
	}
	uid_t uid;
	gid_t gid;
	const char *err;
	if (geteuid() == 0 &&
	    privdrop_lookup(config_str(s->db.cfg, CFG_SERVER_USER), &uid, &gid, &err) == 0 &&
	    chown(dir, uid, gid) < 0)
		log_warn("event=chown path=%s error=\"%s\"", dir, strerror(errno));
	return 0;
}

static int serve_setup(struct serve_ctx *s, const struct cli_args *args)
{
	if (cli_db_open_sized(args, &s->db, 0, false) != 0)
		return -1;
	/* From here on the config is the process-wide current one (reloads
	 * replace it); it is never freed while the server runs. */
	config_set_current(s->db.cfg);
	s->cfg_published = true;
	const char *err;
	char *merr = NULL;
	if (serve_ensure_data_dir(s) < 0)
		return -1;
	if (tls_server_setup(s->db.cfg, &err) < 0) {
		cli_error("TLS: %s", err);
		return -1;
	}
	if (directory_open(s->db.pool, "local", &s->dir, &err) < 0) {
		cli_error("directory: %s", err);
		return -1;
	}
#ifdef ROOST_HAVE_LDAP_SYNC
	/* Periodic LDAP sync (idle until LDAP is configured). */
	if (directory_sync_start(s->dir, &err) < 0) {
		cli_error("directory: %s", err);
		return -1;
	}
#endif
	const char *conninfo = db_pool_conninfo(s->db.pool);
	s->notifier = notifier_start(conninfo, &merr);
	if (s->notifier == NULL) {
		cli_error("notifier: %s", merr);
		free(merr);
		return -1;
	}
	struct mime_limits limits;
	config_mime_limits(s->db.cfg, &limits);
	s->indexer = indexer_start(s->db.pool, 0, &limits, &merr);
	if (s->indexer == NULL) {
		cli_error("indexer: %s", merr);
		free(merr);
		return -1;
	}
	s->cleanup = store_cleanup_start(
	    s->db.pool, (unsigned)config_uint(s->db.cfg, CFG_DATABASE_CLEANUP_INTERVAL), &merr);
	if (s->cleanup == NULL) {
		cli_error("cleanup: %s", merr);
		free(merr);
		return -1;
	}
	store_deliver_set_lanes((unsigned)config_uint(s->db.cfg, CFG_DATABASE_DELIVERY_LANES));
	if (notify_batch_start(s->db.pool, &merr) < 0) {
		cli_error("notifications: %s", merr);
		free(merr);
		return -1;
	}
	return 0;
}

static void serve_teardown(struct serve_ctx *s)
{
	serve_modules_teardown(s);
	http_server_free(&s->https);
	http_server_free(&s->http_redirect);
#ifdef ROOST_HAVE_WEBADMIN
	webadmin_free(&s->wa);
#endif
	notify_batch_stop();
	store_cleanup_stop(&s->cleanup);
	indexer_stop(&s->indexer);
	notifier_stop(&s->notifier);
	directory_close(&s->dir);
	tls_server_cleanup();
	/* s->db.cfg is (or was) the current config: keep it alive. */
	if (s->cfg_published)
		s->db.cfg = NULL;
	cli_db_close(&s->db);
}

static const struct http_route serve_routes[] = {
    {"GET", "/healthz", serve_healthz, HTTP_ROUTE_NO_BODY},
};

static int serve_http_setup(struct serve_ctx *s)
{
	struct http_options opts;
	const char *err = NULL;
	const struct http_route *routes = serve_routes;
	size_t nroutes = sizeof(serve_routes) / sizeof(serve_routes[0]);
	http_options_from_config(s->db.cfg, &opts);
	opts.name = "https";
	opts.ctx = s;
#ifdef ROOST_HAVE_WEBADMIN
	if (webadmin_new(s->db.cfg, s->db.pool, s->dir, &s->wa, &err) < 0) {
		cli_error("webadmin: %s", err);
		return -1;
	}
	routes = webadmin_mount(s->wa, serve_routes, nroutes, s, &nroutes);
	opts.guard = webadmin_guard;
	opts.ctx = s->wa;
#endif
	s->https = http_server_new(routes, nroutes, &opts, &err);
	if (s->https == NULL) {
		cli_error("https: %s", err);
		return -1;
	}
	if (config_str(s->db.cfg, CFG_LISTEN_HTTP)[0] == '\0')
		return 0;
	http_options_from_config(s->db.cfg, &opts);
	opts.name = "http";
	opts.redirect_only = true;
	s->http_redirect = http_server_new(NULL, 0, &opts, &err);
	if (s->http_redirect == NULL) {
		cli_error("http: %s", err);
		return -1;
	}
	return 0;
}

#define SERVE_HTTP_BUSY                                                                            \
	"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 5\r\nConnection: "  \
	"close\r\n\r\n"

static void serve_add(struct serve_ctx *s, const char *name, enum config_key key, bool implicit_tls,
                      void (*session)(struct conn *, void *), const char *busy, void *ctx)
{
	if (config_str(s->db.cfg, key)[0] == '\0')
		return;
	assert(s->nprotos < sizeof(s->protos) / sizeof(s->protos[0]));
	s->protos[s->nprotos++] =
	    (struct server_protocol){name, key, implicit_tls, session, busy, ctx};
}

/* A configured listener whose protocol this build does not serve is not
 * bound: say so instead of accepting connections nobody answers. */
__attribute__((unused)) static void serve_not_served(const struct config *cfg, enum config_key key,
                                                     const char *name)
{
	if (config_str(cfg, key)[0] != '\0')
		log_info(
		    "event=listener_not_bound proto=%s reason=\"protocol not in this version\"",
		    name);
}

static int serve_modules_setup(struct serve_ctx *s)
{
	const char *err = NULL;
	const struct config *cfg = s->db.cfg;
#ifdef ROOST_HAVE_SMTP
	if (smtp_server_new(cfg, s->db.pool, s->dir, &s->smtp, &err) < 0) {
		cli_error("smtp: %s", err);
		return -1;
	}
	serve_add(s, "smtp", CFG_LISTEN_SMTP, false, smtp_session, SMTP_BUSY_REPLY,
	          smtp_server_listener_ctx(s->smtp, SMTP_LISTENER_MX));
	serve_add(s, "submission", CFG_LISTEN_SUBMISSION, false, smtp_session, SMTP_BUSY_REPLY,
	          smtp_server_listener_ctx(s->smtp, SMTP_LISTENER_SUBMISSION));
	serve_add(s, "submissions", CFG_LISTEN_SUBMISSIONS, true, smtp_session, SMTP_BUSY_REPLY,
	          smtp_server_listener_ctx(s->smtp, SMTP_LISTENER_SUBMISSIONS));
#else
	serve_not_served(cfg, CFG_LISTEN_SMTP, "smtp");
	serve_not_served(cfg, CFG_LISTEN_SUBMISSION, "submission");
	serve_not_served(cfg, CFG_LISTEN_SUBMISSIONS, "submissions");
#endif
#ifdef ROOST_HAVE_IMAP
	if (imap_server_new(cfg, s->db.pool, s->dir, s->notifier, &s->imap, &err) < 0) {
		cli_error("imap: %s", err);
		return -1;
	}
	serve_add(s, "imap", CFG_LISTEN_IMAP, false, imap_session, IMAP_BUSY_REPLY, s->imap);
	serve_add(s, "imaps", CFG_LISTEN_IMAPS, true, imap_session, IMAP_BUSY_REPLY, s->imap);
#else
	serve_not_served(cfg, CFG_LISTEN_IMAP, "imap");
	serve_not_served(cfg, CFG_LISTEN_IMAPS, "imaps");
#endif
#ifdef ROOST_HAVE_POP3
	if (pop3_server_new(cfg, s->db.pool, s->dir, &s->pop3, &err) < 0) {
		cli_error("pop3: %s", err);
		return -1;
	}
	serve_add(s, "pop3", CFG_LISTEN_POP3, false, pop3_session, POP3_BUSY_REPLY, s->pop3);
	serve_add(s, "pop3s", CFG_LISTEN_POP3S, true, pop3_session, POP3_BUSY_REPLY, s->pop3);
#else
	serve_not_served(cfg, CFG_LISTEN_POP3, "pop3");
	serve_not_served(cfg, CFG_LISTEN_POP3S, "pop3s");
#endif
	(void)err;
	return 0;
}

/* Background work that starts once privileges are dropped (queue runners). */
static int serve_modules_start(struct serve_ctx *s)
{
#ifdef ROOST_HAVE_SMTP
	const char *err = NULL;
	if (smtp_server_start_queue(s->smtp, &err) < 0) {
		log_error("event=queue_start error=\"%s\"", err);
		return -1;
	}
#endif
	(void)s;
	return 0;
}

static void serve_modules_teardown(struct serve_ctx *s)
{
#ifdef ROOST_HAVE_SMTP
	smtp_server_free(&s->smtp);
#endif
#ifdef ROOST_HAVE_IMAP
	imap_server_free(&s->imap);
#endif
#ifdef ROOST_HAVE_POP3
	pop3_server_free(&s->pop3);
#endif
	(void)s;
}

static int serve_run(struct serve_ctx *s)
{
	if (serve_http_setup(s) < 0 || serve_modules_setup(s) < 0)
		return -1;
	serve_add(s, "https", CFG_LISTEN_HTTPS, true, http_session, SERVE_HTTP_BUSY, s->https);
	if (s->http_redirect != NULL)
		serve_add(s, "http", CFG_LISTEN_HTTP, false, http_session, SERVE_HTTP_BUSY,
		          s->http_redirect);
	struct server_hooks hooks = {
	    .after_bind = serve_after_bind, .reload = serve_reload, .arg = s};
	const char *err = NULL;
	if (server_run(s->db.cfg, s->protos, s->nprotos, &hooks, &err) < 0) {
		cli_error("%s", err);
		return -1;
	}
	return 0;
}

/* Every connection holds a socket and an IDLE session an eventfd too: use
 * the hard limit on open files, not the small default soft one. */
static void serve_raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("event=setrlimit error=\"%s\"", strerror(errno));
	}
}

int cli_serve(const struct cli_args *args)
{
	serve_raise_nofile();
	/* Large short-lived buffers (argon2's 19 MiB per login, big literals)
	 * go back to the system at once instead of lingering in the per-thread
	 * malloc arenas of thousands of session threads. */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	struct serve_ctx s;
	memset(&s, 0, sizeof(s));
	s.config_file = args->config_file;
	s.started = time(NULL);
	int status = 1;
	if (serve_setup(&s, args) == 0 && serve_run(&s) == 0)
		status = 0;
	serve_teardown(&s);
	return status;
}
