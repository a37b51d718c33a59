/* migrate.c - applies the embedded schema migrations (migrate.h). */
#include "migrate.h"

#include "buf.h"
#include "log.h"
#include "strnum.h"
#include "xalloc.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The session-level advisory lock that serialises migrations across every
 * process and node on one database: "RoostMig" in ASCII. */
#define MIGRATE_LOCK_KEY "5939414046367279463"

#define MIGRATE_TABLE_SQL                                                                          \
	"CREATE TABLE schema_migrations ("                                                         \
	" version integer PRIMARY KEY,"                                                            \
	" name text NOT NULL,"                                                                     \
	" applied_at timestamptz NOT NULL DEFAULT now())"

static char *migrate_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *migrate_error(const char *fmt, ...)
{
	struct buf b;
	buf_init(&b, 8192);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == ' '))
		buf_truncate(&b, b.len - 1);
	return buf_steal(&b, NULL);
}

/* Runs sql (one or several statements); -1 with *error_r on failure. */
static int migrate_exec(PGconn *conn, const char *what, const char *sql, PGresult **res_r,
                        char **error_r)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);
	if (res != NULL && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)) {
		if (res_r != NULL)
			*res_r = res;
		else
			PQclear(res);
		return 0;
	}
	const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	*error_r = migrate_error("%s failed (SQLSTATE %s): %s", what,
	                         state != NULL ? state : "none", PQerrorMessage(conn));
	PQclear(res);
	return -1;
}

static int migrate_ensure_table(PGconn *conn, char **error_r)
{
	PGresult *res;
	if (migrate_exec(conn, "looking for schema_migrations",
	                 "SELECT to_regclass('schema_migrations') IS NULL", &res, error_r) < 0)
		return -1;
	bool missing = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!missing)
		return 0;
	return migrate_exec(conn, "creating schema_migrations", MIGRATE_TABLE_SQL, NULL, error_r);
}

/* The versions already applied, as a sorted malloc'd array. */
static int migrate_applied(PGconn *conn, unsigned **versions_r, int *n_r, char **error_r)
{
	PGresult *res;
	if (migrate_exec(conn, "reading schema_migrations",
	                 "SELECT version FROM schema_migrations ORDER BY version", &res,
	                 error_r) < 0)
		return -1;
	int n = PQntuples(res);
	unsigned *versions = xcalloc((size_t)n + 1, sizeof(*versions));
	for (int i = 0; i < n; i++) {
		uint32_t v;
		if (str_to_u32(PQgetvalue(res, i, 0), &v) < 0) {
			*error_r = migrate_error("schema_migrations holds a bad version '%s'",
			                         PQgetvalue(res, i, 0));
			free(versions);
			PQclear(res);
			return -1;
		}
		versions[i] = v;
	}
	PQclear(res);
	*versions_r = versions;
	*n_r = n;
	return 0;
}

static bool migrate_is_applied(const unsigned *versions, int n, unsigned version)
{
	for (int i = 0; i < n; i++)
		if (versions[i] == version)
			return true;
	return false;
}

static unsigned migrate_newest_known(void)
{
	unsigned newest = 0;
	for (unsigned i = 0; i < db_migrations_count; i++)
		if (db_migrations[i].version > newest)
			newest = db_migrations[i].version;
	return newest;
}

/* One migration and its record, in one transaction. */
static int migrate_apply_one(PGconn *conn, const struct db_migration *m, char **error_r)
{
	char what[128];
	snprintf(what, sizeof(what), "migration %s", m->name);
	if (migrate_exec(conn, "BEGIN", "BEGIN", NULL, error_r) < 0)
		return -1;
	if (migrate_exec(conn, what, m->sql, NULL, error_r) < 0)
		goto fail;
	char version[16];
	snprintf(version, sizeof(version), "%u", m->version);
	const char *params[] = {version, m->name};
	PGresult *res =
	    PQexecParams(conn, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2,
	                 NULL, params, NULL, NULL, 0);
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	PQclear(res);
	if (!ok) {
		*error_r = migrate_error("recording %s failed: %s", m->name, PQerrorMessage(conn));
		goto fail;
	}
	if (migrate_exec(conn, "COMMIT", "COMMIT", NULL, error_r) < 0)
		goto fail;
	if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
		*error_r = migrate_error("%s: transaction still open after COMMIT", what);
		goto fail;
	}
	log_info("event=db_migration_applied version=%u name=%s", m->version, m->name);
	return 0;
fail:
	PQclear(PQexec(conn, "ROLLBACK"));
	return -1;
}

/* The work done while holding the advisory lock. */
static int migrate_locked(PGconn *conn, unsigned *applied_r, char **error_r)
{
	unsigned *versions;
	int n;
	if (migrate_ensure_table(conn, error_r) < 0 ||
	    migrate_applied(conn, &versions, &n, error_r) < 0)
		return -1;
	unsigned newest = migrate_newest_known();
	if (n > 0 && versions[n - 1] > newest) {
		*error_r = migrate_error("the database schema is at version %u but this roost "
		                         "knows only up to %u: upgrade roost",
		                         versions[n - 1], newest);
		free(versions);
		return -1;
	}
	int ret = 0;
	for (unsigned i = 0; i < db_migrations_count && ret == 0; i++) {
		if (migrate_is_applied(versions, n, db_migrations[i].version))
			continue;
		ret = migrate_apply_one(conn, &db_migrations[i], error_r);
		if (ret == 0)
			(*applied_r)++;
	}
	free(versions);
	return ret;
}

int db_migrate(PGconn *conn, unsigned *applied_r, char **error_r)
{
	*applied_r = 0;
	if (PQstatus(conn) != CONNECTION_OK || PQtransactionStatus(conn) != PQTRANS_IDLE) {
		*error_r = migrate_error("db_migrate needs an idle, healthy connection");
		return -1;
	}
	if (migrate_exec(conn, "taking the migration lock",
	                 "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", NULL, error_r) < 0)
		return -1;
	int ret = migrate_locked(conn, applied_r, error_r);

	char *unlock_error = NULL;
	if (migrate_exec(conn, "releasing the migration lock",
	                 "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", NULL,
	                 &unlock_error) < 0) {
		if (ret == 0) {
			*error_r = unlock_error;
			return -1;
		}
		free(unlock_error);
	}
	return ret;
}

int db_schema_version(PGconn *conn)
{
	/* Two statements: a query naming a missing table fails to parse. */
	PGresult *res = PQexec(conn, "SELECT to_regclass('schema_migrations') IS NULL");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		PQclear(res);
		return -1;
	}
	bool missing = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (missing)
		return 0;
	res = PQexec(conn, "SELECT coalesce(max(version), 0) FROM schema_migrations");
	int version = -1;
	uint32_t v;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
	    str_to_u32(PQgetvalue(res, 0, 0), &v) == 0 && v <= (uint32_t)INT32_MAX)
		version = (int)v;
	PQclear(res);
	return version;
}
