/* test-db.c - pool, migrations, managed PostgreSQL and notifier, against a
 * real throw-away PostgreSQL cluster in a temporary directory. */
#include "unit.h"

#include "log.h"
#include "migrate.h"
#include "notifier.h"
#include "pgmanaged.h"
#include "pool.h"

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char test_root[64];
static struct pgmanaged *test_pg; /* the cluster most tests share */
static bool test_pg_failed;

static int test_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	remove(path);
	return 0;
}

static void test_cleanup(void)
{
	pgmanaged_stop(&test_pg);
	if (test_root[0] != '\0')
		nftw(test_root, test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The temporary directory, made once. PostgreSQL runs as another user when
 * we are root, so it must be able to pass through. */
static const char *test_dir(void)
{
	if (test_root[0] == '\0') {
		snprintf(test_root, sizeof(test_root), "/tmp/roost-db-XXXXXX");
		if (mkdtemp(test_root) == NULL) {
			perror("mkdtemp");
			exit(1);
		}
		chmod(test_root, 0711);
		atexit(test_cleanup);
	}
	return test_root;
}

static void test_opts(const char *sub, char *path, size_t pathlen, struct pgmanaged_opts *o)
{
	snprintf(path, pathlen, "%s/%s", test_dir(), sub);
	*o = (struct pgmanaged_opts){.data_dir = path, .quiet = true};
	if (geteuid() == 0)
		o->run_as = "postgres";
}

static struct pgmanaged *test_start(const char *sub)
{
	char path[256];
	struct pgmanaged_opts o;
	test_opts(sub, path, sizeof(path), &o);
	struct pgmanaged *pg = NULL;
	char *error = NULL;
	if (pgmanaged_start(&o, &pg, &error) < 0) {
		unit_fail(__FILE__, __LINE__, "pgmanaged_start(%s): %s", sub, error);
		free(error);
		return NULL;
	}
	return pg;
}

/* The shared cluster's conninfo, or NULL (reported once) if it cannot start. */
static const char *test_conninfo(void)
{
	if (test_pg == NULL && !test_pg_failed) {
		test_pg = test_start("main");
		test_pg_failed = test_pg == NULL;
	}
	return test_pg != NULL ? pgmanaged_conninfo(test_pg) : NULL;
}

static void test_notice(void *arg, const char *message)
{
}

static PGconn *test_connect(const char *conninfo)
{
	PGconn *conn = PQconnectdb(conninfo);
	PQsetNoticeProcessor(conn, test_notice, NULL);
	if (PQstatus(conn) != CONNECTION_OK) {
		unit_fail(__FILE__, __LINE__, "connect: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

static bool test_sql(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
	if (!ok)
		unit_fail(__FILE__, __LINE__, "%s: %s", sql, PQerrorMessage(conn));
	PQclear(res);
	return ok;
}

/* First value of a one-row query, copied into out. */
static const char *test_value(PGconn *conn, const char *sql, char *out, size_t outlen)
{
	PGresult *res = PQexec(conn, sql);
	snprintf(out, outlen, "%s",
	         PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1
	             ? PQgetvalue(res, 0, 0)
	             : "(error)");
	PQclear(res);
	return out;
}

/* A fresh database on the shared cluster; its conninfo in out. */
static bool test_new_database(const char *name, char *out, size_t outlen)
{
	const char *ci = test_conninfo();
	if (ci == NULL)
		return false;
	PGconn *conn = test_connect(ci);
	if (conn == NULL)
		return false;
	char sql[128];
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", name);
	bool ok = test_sql(conn, sql);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
	ok = ok && test_sql(conn, sql);
	PQfinish(conn);
	snprintf(out, outlen, "%s dbname=%s", ci, name);
	return ok;
}

static long test_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static bool test_running(const struct pgmanaged *pg)
{
	return PQping(pgmanaged_conninfo(pg)) == PQPING_OK;
}

/* ---- pgmanaged -------------------------------------------------------- */

UNIT_TEST(pgmanaged_errors)
{
	char path[256], empty[256];
	struct pgmanaged_opts o;
	test_opts("nobin", path, sizeof(path), &o);
	snprintf(empty, sizeof(empty), "%s/emptybin", test_dir());
	mkdir(empty, 0755);
	o.bindir = empty;
	struct pgmanaged *pg = NULL;
	char *error = NULL;
	CHECK_INT(pgmanaged_start(&o, &pg, &error), -1);
	CHECK(pg == NULL);
	CHECK(error != NULL && strstr(error, "PostgreSQL server programs not found") != NULL);
	CHECK(error != NULL && strstr(error, empty) != NULL);
	free(error);

	o.bindir = NULL;
	o.data_dir = "relative/dir";
	error = NULL;
	CHECK_INT(pgmanaged_start(&o, &pg, &error), -1);
	CHECK(error != NULL && strstr(error, "absolute") != NULL);
	free(error);

	if (geteuid() == 0) {
		o.data_dir = path;
		o.run_as = "no-such-user-roost";
		error = NULL;
		CHECK_INT(pgmanaged_start(&o, &pg, &error), -1);
		CHECK(error != NULL &&
		      strstr(error, "does not exist; create it with: useradd") != NULL);
		free(error);
	}
}

UNIT_TEST(pgmanaged_start_connects)
{
	const char *ci = test_conninfo();
	CHECK(ci != NULL);
	if (ci == NULL)
		return;
	CHECK(strstr(ci, "dbname=roost") != NULL);
	PGconn *conn = test_connect(ci);
	if (conn == NULL)
		return;
	char v[256];
	CHECK_STR(test_value(conn, "SELECT current_user", v, sizeof(v)), "roost");
	CHECK_STR(test_value(conn, "SELECT current_database()", v, sizeof(v)), "roost");
	CHECK_STR(test_value(conn, "SHOW listen_addresses", v, sizeof(v)), "");
	CHECK_STR(test_value(conn, "SHOW server_encoding", v, sizeof(v)), "UTF8");
	CHECK_STR(test_value(conn, "SHOW lc_collate", v, sizeof(v)), "C");
	PQfinish(conn);

	char run[256];
	snprintf(run, sizeof(run), "%s/main/run", test_dir());
	struct stat st;
	CHECK(stat(run, &st) == 0 && (st.st_mode & 0777) == 0700);
}

/* Kills the postmaster outright, as a crash or OOM killer would, and checks
 * that the next start recovers from the stale postmaster.pid. */
UNIT_TEST(pgmanaged_stale_pid)
{
	struct pgmanaged *pg = test_start("stale");
	if (pg == NULL)
		return;
	char pidfile[256];
	snprintf(pidfile, sizeof(pidfile), "%s/stale/pgdata/postmaster.pid", test_dir());
	size_t len;
	char *text = unit_read_file(pidfile, &len);
	CHECK(text != NULL);
	long pid = text != NULL ? strtol(text, NULL, 10) : 0;
	free(text);
	CHECK(pid > 1);
	if (pid > 1) {
		CHECK(kill((pid_t)pid, SIGKILL) == 0);
		for (int i = 0; i < 100 && test_running(pg); i++)
			test_sleep_ms(50);
	}
	CHECK(!test_running(pg));
	CHECK(access(pidfile, F_OK) == 0); /* it really is stale */

	struct pgmanaged *again = test_start("stale");
	CHECK(again != NULL);
	if (again != NULL) {
		PGconn *conn = test_connect(pgmanaged_conninfo(again));
		CHECK(conn != NULL);
		PQfinish(conn);
	}
	pgmanaged_stop(&pg);
	CHECK(again == NULL || test_running(again));
	pgmanaged_stop(&again);
	CHECK(again == NULL);
}

/* Only the last user stops the cluster, whether the users are handles in
 * one process or other processes (a CLI command while the server runs). */
UNIT_TEST(pgmanaged_shared_use)
{
	struct pgmanaged *first = test_start("shared");
	struct pgmanaged *second = test_start("shared");
	if (first == NULL || second == NULL) {
		pgmanaged_stop(&first);
		pgmanaged_stop(&second);
		return;
	}
	CHECK(test_running(first));
	pgmanaged_stop(&first);
	CHECK(first == NULL);
	CHECK(test_running(second));

	pid_t child = fork();
	if (child == 0) {
		struct pgmanaged *cli = test_start("shared");
		bool ok = cli != NULL && test_running(cli);
		pgmanaged_stop(&cli);
		_exit(ok ? 0 : 1); /* no atexit: the parent owns the temp dir */
	}
	int status = -1;
	CHECK(child > 0 && waitpid(child, &status, 0) == child);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(test_running(second));

	char ci[512];
	snprintf(ci, sizeof(ci), "%s", pgmanaged_conninfo(second));
	pgmanaged_stop(&second);
	CHECK(PQping(ci) == PQPING_NO_RESPONSE);

	/* And it comes back for the next user. */
	struct pgmanaged *third = test_start("shared");
	CHECK(third != NULL && test_running(third));
	pgmanaged_stop(&third);
	CHECK(PQping(ci) == PQPING_NO_RESPONSE);

	/* A server that cannot start: the error shows why, from its log. */
	char conf[256];
	snprintf(conf, sizeof(conf), "%s/shared/pgdata/postgresql.auto.conf", test_dir());
	FILE *f = fopen(conf, "a");
	CHECK(f != NULL);
	if (f != NULL) {
		fputs("roost_no_such_setting_ = 1\n", f);
		fclose(f);
	}
	char path[256];
	struct pgmanaged_opts o;
	test_opts("shared", path, sizeof(path), &o);
	struct pgmanaged *bad = NULL;
	char *error = NULL;
	CHECK_INT(pgmanaged_start(&o, &bad, &error), -1);
	CHECK(error != NULL && strstr(error, "roost_no_such_setting_") != NULL);
	free(error);
	CHECK(PQping(ci) == PQPING_NO_RESPONSE);
}

static void test_script(const char *dir, const char *name, const char *body)
{
	char path[512];
	int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	CHECK(n > 0 && (size_t)n < sizeof(path));
	FILE *f = fopen(path, "w");
	if (f != NULL) {
		fputs(body, f);
		fclose(f);
	}
	chmod(path, 0755);
}

UNIT_TEST(pgmanaged_initdb_failure)
{
	char path[256], bin[256];
	struct pgmanaged_opts o;
	test_opts("badinit", path, sizeof(path), &o);
	snprintf(bin, sizeof(bin), "%s/fakebin", test_dir());
	mkdir(bin, 0755);
	test_script(bin, "initdb",
	            "#!/bin/sh\necho 'initdb: error: simulated failure' >&2\nexit 1\n");
	test_script(bin, "pg_ctl", "#!/bin/sh\nexit 1\n");
	test_script(bin, "postgres", "#!/bin/sh\nexit 1\n");
	o.bindir = bin;
	struct pgmanaged *pg = NULL;
	char *error = NULL;
	CHECK_INT(pgmanaged_start(&o, &pg, &error), -1);
	CHECK(error != NULL && strstr(error, "initdb failed (exit status 1)") != NULL);
	CHECK(error != NULL && strstr(error, "simulated failure") != NULL);
	free(error);
}

/* ---- migrations ------------------------------------------------------- */

UNIT_TEST(migrate_twice)
{
	char ci[512];
	if (!test_new_database("roost_mig1", ci, sizeof(ci)))
		return;
	PGconn *conn = test_connect(ci);
	if (conn == NULL)
		return;
	CHECK(db_migrations_count >= 1);
	CHECK_INT(db_schema_version(conn), 0);
	unsigned applied = 99;
	char *error = NULL;
	CHECK_INT(db_migrate(conn, &applied, &error), 0);
	CHECK_INT(applied, db_migrations_count);
	CHECK_INT(db_schema_version(conn), db_migrations[db_migrations_count - 1].version);
	CHECK_INT(db_migrate(conn, &applied, &error), 0);
	CHECK_INT(applied, 0);
	CHECK(PQtransactionStatus(conn) == PQTRANS_IDLE);
	char v[64];
	CHECK_STR(test_value(conn, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'", v,
	                     sizeof(v)),
	          "0");

	/* A schema from a newer roost is refused, and nothing is changed. */
	test_sql(conn,
	         "INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future')");
	CHECK_INT(db_migrate(conn, &applied, &error), -1);
	CHECK(error != NULL && strstr(error, "upgrade roost") != NULL);
	free(error);
	CHECK_INT(db_schema_version(conn), 9999);
	CHECK_STR(test_value(conn, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'", v,
	                     sizeof(v)),
	          "0");
	PQfinish(conn);
}

struct test_migrator {
	const char *conninfo;
	int ret;
	unsigned applied;
	char *error;
};

static void *test_migrate_thread(void *arg)
{
	struct test_migrator *m = arg;
	PGconn *conn = PQconnectdb(m->conninfo);
	m->ret = db_migrate(conn, &m->applied, &m->error);
	PQfinish(conn);
	return NULL;
}

UNIT_TEST(migrate_concurrent)
{
	char ci[512];
	if (!test_new_database("roost_mig2", ci, sizeof(ci)))
		return;
	struct test_migrator m[2] = {{.conninfo = ci}, {.conninfo = ci}};
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, test_migrate_thread, &m[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 2; i++) {
		CHECK_INT(m[i].ret, 0);
		if (m[i].error != NULL)
			unit_fail(__FILE__, __LINE__, "migrator %d: %s", i, m[i].error);
		free(m[i].error);
	}
	CHECK_INT(m[0].applied + m[1].applied, db_migrations_count);
	PGconn *conn = test_connect(ci);
	if (conn != NULL) {
		char v[64], want[64];
		snprintf(want, sizeof(want), "%u", db_migrations_count);
		CHECK_STR(test_value(conn, "SELECT count(*) FROM schema_migrations", v, sizeof(v)),
		          want);
		PQfinish(conn);
	}
}

/* ---- pool --------------------------------------------------------------- */

static struct db_pool *test_pool(unsigned size)
{
	const char *ci = test_conninfo();
	if (ci == NULL)
		return NULL;
	struct db_pool *pool = NULL;
	char *error = NULL;
	if (db_pool_create(ci, size, &pool, &error) < 0) {
		unit_fail(__FILE__, __LINE__, "db_pool_create: %s", error);
		free(error);
	}
	return pool;
}

UNIT_TEST(pool_borrow_timeout)
{
	struct db_pool *pool = test_pool(2);
	if (pool == NULL)
		return;
	PGconn *a = db_pool_borrow(pool, 1000);
	PGconn *b = db_pool_borrow(pool, 1000);
	CHECK(a != NULL && b != NULL && a != b);
	long t0 = test_now_ms();
	CHECK(db_pool_borrow(pool, 200) == NULL);
	long waited = test_now_ms() - t0;
	CHECK(waited >= 190 && waited < 2000);
	PGresult *res = db_exec(b, "SELECT current_setting('application_name')", 0, NULL);
	CHECK(res != NULL && strcmp(PQgetvalue(res, 0, 0), "roost") == 0);
	PQclear(res);
	db_pool_return(pool, &a);
	CHECK(a == NULL);
	PGconn *c = db_pool_borrow(pool, 200);
	CHECK(c != NULL);
	db_pool_return(pool, &c);
	db_pool_return(pool, &b);
	CHECK_STR(db_pool_conninfo(pool), test_conninfo());
	db_pool_destroy(&pool);
	CHECK(pool == NULL);
}

struct test_waiter {
	struct db_pool *pool;
	PGconn *got;
};

static void *test_waiter_thread(void *arg)
{
	struct test_waiter *w = arg;
	w->got = db_pool_borrow(w->pool, 5000);
	return NULL;
}

UNIT_TEST(pool_return_wakes_waiter)
{
	struct db_pool *pool = test_pool(1);
	if (pool == NULL)
		return;
	PGconn *a = db_pool_borrow(pool, 1000);
	CHECK(a != NULL);
	struct test_waiter w = {.pool = pool};
	pthread_t t;
	pthread_create(&t, NULL, test_waiter_thread, &w);
	test_sleep_ms(100);
	db_pool_return(pool, &a);
	pthread_join(t, NULL);
	CHECK(w.got != NULL);
	db_pool_return(pool, &w.got);
	db_pool_destroy(&pool);
}

/* Waiters are served in arrival order, and a borrower arriving while
 * others wait does not pass them. */
struct test_turn {
	struct db_pool *pool;
	_Atomic int *next_turn;
	int turn; /* the order in which this one was served */
	unsigned timeout_ms;
	bool got;
};

static void *test_turn_thread(void *arg)
{
	struct test_turn *t = arg;
	PGconn *c = db_pool_borrow(t->pool, t->timeout_ms);
	t->got = c != NULL;
	if (c != NULL) {
		t->turn = atomic_fetch_add(t->next_turn, 1);
		test_sleep_ms(30);
		db_pool_return(t->pool, &c);
	}
	return NULL;
}

UNIT_TEST(pool_waiters_served_in_order)
{
	struct db_pool *pool = test_pool(1);
	if (pool == NULL)
		return;
	PGconn *a = db_pool_borrow(pool, 1000);
	CHECK(a != NULL);
	_Atomic int next_turn = 0;
	struct test_turn t[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		t[i] =
		    (struct test_turn){.pool = pool, .next_turn = &next_turn, .timeout_ms = 5000};
		pthread_create(&th[i], NULL, test_turn_thread, &t[i]);
		test_sleep_ms(50); /* queued one after the other */
	}
	db_pool_return(pool, &a);
	/* Handed to the first waiter: a newcomer finds nothing free. */
	CHECK(db_pool_borrow(pool, 0) == NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 4; i++)
		CHECK(t[i].got && t[i].turn == i);
	db_pool_destroy(&pool);
}

/* A waiter that gave up leaves the queue; a slot freed by a connection
 * that could not be kept goes to the next waiter, who opens a new one. */
UNIT_TEST(pool_waiter_timeout_and_slot_handover)
{
	struct db_pool *pool = test_pool(1);
	if (pool == NULL)
		return;
	PGconn *a = db_pool_borrow(pool, 1000);
	CHECK(a != NULL);
	_Atomic int next_turn = 0;
	struct test_turn quick = {.pool = pool, .next_turn = &next_turn, .timeout_ms = 100};
	pthread_t th;
	pthread_create(&th, NULL, test_turn_thread, &quick);
	pthread_join(th, NULL);
	CHECK(!quick.got);
	struct test_turn patient = {.pool = pool, .next_turn = &next_turn, .timeout_ms = 5000};
	pthread_create(&th, NULL, test_turn_thread, &patient);
	test_sleep_ms(100);
	/* Busy with a query nobody reads: closed on return, its slot freed. */
	CHECK(PQsendQuery(a, "SELECT pg_sleep(0.2)") == 1);
	db_pool_return(pool, &a);
	pthread_join(th, NULL);
	CHECK(patient.got);
	PGconn *c = db_pool_borrow(pool, 1000);
	CHECK(c != NULL);
	db_pool_return(pool, &c);
	db_pool_destroy(&pool);
}

UNIT_TEST(pool_returned_dirty_comes_back_clean)
{
	struct db_pool *pool = test_pool(1);
	if (pool == NULL)
		return;
	/* Returned inside an open transaction: rolled back. */
	PGconn *c = db_pool_borrow(pool, 1000);
	CHECK_INT(db_begin(c), 0);
	PGresult *res = db_exec(c, "CREATE TABLE pool_dirty (x int)", 0, NULL);
	CHECK(res != NULL);
	PQclear(res);
	db_pool_return(pool, &c);
	c = db_pool_borrow(pool, 1000);
	CHECK(c != NULL && PQtransactionStatus(c) == PQTRANS_IDLE);
	res = db_exec(c, "SELECT to_regclass('pool_dirty') IS NULL", 0, NULL);
	CHECK(res != NULL && strcmp(PQgetvalue(res, 0, 0), "t") == 0);
	PQclear(res);

	/* Returned inside a failed transaction: the SQLSTATE survives the
	 * rollback, COMMIT reports the failure, and the connection is clean. */
	CHECK_INT(db_begin(c), 0);
	CHECK(db_exec(c, "SELECT * FROM no_such_table", 0, NULL) == NULL);
	CHECK_STR(db_last_sqlstate(), "42P01");
	CHECK_INT(db_commit(c), -1);
	CHECK_INT(db_begin(c), 0);
	const char *params[] = {"not a number"};
	CHECK(db_exec(c, "SELECT $1::int", 1, params) == NULL);
	CHECK_STR(db_last_sqlstate(), "22P02");
	db_rollback(c);
	CHECK_STR(db_last_sqlstate(), "22P02");
	CHECK_INT(db_begin(c), 0);
	CHECK(db_exec(c, "SELECT 1/0", 0, NULL) == NULL);
	db_pool_return(pool, &c);
	c = db_pool_borrow(pool, 1000);
	CHECK(c != NULL && PQtransactionStatus(c) == PQTRANS_IDLE);
	res = db_exec(c, "SELECT 1", 0, NULL);
	CHECK(res != NULL);
	CHECK_STR(db_last_sqlstate(), "");
	PQclear(res);
	db_pool_return(pool, &c);
	db_pool_destroy(&pool);
}

UNIT_TEST(pool_replaces_dead_connection)
{
	struct db_pool *pool = test_pool(1);
	PGconn *admin = test_connect(test_conninfo() != NULL ? test_conninfo() : "");
	if (pool == NULL || admin == NULL) {
		db_pool_destroy(&pool);
		PQfinish(admin);
		return;
	}
	PGconn *c = db_pool_borrow(pool, 1000);
	char sql[128], v[64];
	snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)", PQbackendPID(c));
	db_pool_return(pool, &c);
	CHECK_STR(test_value(admin, sql, v, sizeof(v)), "t");
	test_sleep_ms(200);
	c = db_pool_borrow(pool, 1000);
	CHECK(c != NULL);
	PGresult *res = c != NULL ? db_exec(c, "SELECT 1", 0, NULL) : NULL;
	CHECK(res != NULL);
	PQclear(res);
	db_pool_return(pool, &c);
	db_pool_destroy(&pool);
	PQfinish(admin);
}

/* ---- notifier ------------------------------------------------------------ */

UNIT_TEST(notifier_wakes_subscriber)
{
	const char *ci = test_conninfo();
	PGconn *conn = ci != NULL ? test_connect(ci) : NULL;
	if (conn == NULL)
		return;
	char *error = NULL;
	struct notifier *n = notifier_start(ci, &error);
	CHECK(n != NULL);
	if (n == NULL) {
		unit_fail(__FILE__, __LINE__, "notifier_start: %s", error);
		free(error);
		PQfinish(conn);
		return;
	}
	/* Many subscribers, so the map grows and chains get exercised. */
	enum { MANY = 600 };
	struct notifier_sub **many = calloc(MANY, sizeof(struct notifier_sub *));
	for (int i = 0; i < MANY; i++) {
		many[i] = notifier_subscribe(n, 1000 + i % 300);
		CHECK(many[i] != NULL);
	}
	struct notifier_sub *s41 = notifier_subscribe(n, 41);
	struct notifier_sub *s41b = notifier_subscribe(n, 41);
	struct notifier_sub *s42 = notifier_subscribe(n, 42);
	CHECK(notifier_sub_fd(s41) >= 0 && notifier_sub_fd(s41) != notifier_sub_fd(s42));
	CHECK(!notifier_sub_changed(s41));

	long t0 = test_now_ms();
	test_sql(conn, "NOTIFY " NOTIFIER_CHANNEL ", '41'");
	CHECK_INT(notifier_wait(s41, 1000), 1);
	CHECK(test_now_ms() - t0 < 1000);
	CHECK(notifier_sub_changed(s41b));
	CHECK(!notifier_sub_changed(s42));
	CHECK_INT(notifier_wait(s41, 50), 0);

	/* Inside a transaction: delivered at commit only. */
	test_sql(conn, "BEGIN");
	test_sql(conn, "SELECT pg_notify('" NOTIFIER_CHANNEL "', '1199')");
	CHECK_INT(notifier_wait(many[499], 200), 0);
	test_sql(conn, "COMMIT");
	CHECK_INT(notifier_wait(many[499], 1000), 1);
	CHECK(notifier_sub_changed(many[199])); /* the same mailbox, 1199 */
	CHECK(!notifier_sub_changed(many[500]));

	/* A dropped connection: reconnect, then wake everybody. */
	test_sql(conn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
	               "WHERE application_name = 'roost-notifier'");
	CHECK_INT(notifier_wait(s42, 5000), 1);
	CHECK_INT(notifier_reconnects(n), 1);
	/* The wake-up is still going round the other subscribers. */
	CHECK_INT(notifier_wait(many[7], 1000), 1);
	CHECK_INT(notifier_wait(s41, 1000), 1);
	CHECK_INT(notifier_wait(many[MANY - 1], 1000), 1);
	test_sql(conn, "NOTIFY " NOTIFIER_CHANNEL ", '42'");
	CHECK_INT(notifier_wait(s42, 1000), 1);
	CHECK(!notifier_sub_changed(s41));

	for (int i = 0; i < MANY; i++)
		notifier_unsubscribe(&many[i]);
	free(many);
	notifier_unsubscribe(&s41);
	notifier_unsubscribe(&s41b);
	CHECK(s41 == NULL);
	notifier_stop(&n);
	CHECK(n == NULL);
	/* A subscription that outlived its notifier can still be freed. */
	notifier_unsubscribe(&s42);
	PQfinish(conn);
}

UNIT_TEST(notifier_start_fails_cleanly)
{
	char ci[300];
	snprintf(ci, sizeof(ci), "host=%s/nowhere port=5432 dbname=roost user=roost", test_dir());
	char *error = NULL;
	struct notifier *n = notifier_start(ci, &error);
	CHECK(n == NULL);
	CHECK(error != NULL && error[0] != '\0');
	free(error);
	struct db_pool *pool = NULL;
	error = NULL;
	CHECK_INT(db_pool_create(ci, 4, &pool, &error), -1);
	CHECK(error != NULL && strstr(error, "cannot connect") != NULL);
	free(error);
}
