/* migrate.h - schema migrations.
 *
 * db/migrations/NNN_name.sql are embedded into the binary at build time
 * (cmake/embed-migrations.cmake) and applied in order, each inside its own
 * transaction, under a PostgreSQL advisory lock so that two nodes starting
 * together do not collide. Applied versions are recorded in
 * schema_migrations(version, name, applied_at). */
#ifndef ROOST_DB_MIGRATE_H
#define ROOST_DB_MIGRATE_H

#include <libpq-fe.h>

struct db_migration {
	unsigned version;
	const char *name;
	const char *sql;
};

extern const struct db_migration db_migrations[];
extern const unsigned db_migrations_count;

/* Applies every migration not yet recorded. *applied_r: how many were
 * applied now. -1 on failure with a malloc'd message in *error_r. A database
 * whose schema is newer than this binary knows is an error. */
int db_migrate(PGconn *conn, unsigned *applied_r, char **error_r);
/* Highest applied version, 0 for an empty database, -1 on error. */
int db_schema_version(PGconn *conn);

#endif
