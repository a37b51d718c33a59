/* pgmanaged.h - the managed local PostgreSQL cluster (DESIGN.md "Embedded
 * default").
 *
 * With no DSN configured, roost keeps a private cluster under its data
 * directory:
 *
 *   <data_dir>/pgdata/              the cluster (initdb on first use), with
 *       roost.conf                  roost's settings, rewritten at every start
 *                                   (override them with ALTER SYSTEM)
 *       startup.log, log/           server logs
 *   <data_dir>/run/                 Unix socket directory (mode 0700); no TCP
 *       pg-start.lock               held while checking / starting / stopping
 *       pg-users.lock               held shared by every process using it
 *
 * Several processes share the cluster (`roost serve` and CLI subcommands such
 * as `roost user add`): each pgmanaged_start() starts the cluster if it is
 * not running and registers as a user; pgmanaged_stop() stops it only when no
 * other process still uses it. A process that dies releases its use (the
 * locks are flock(2) locks), and a stale postmaster.pid left by a crash is
 * recovered from on the next start.
 *
 * PostgreSQL refuses to run as root: when the effective uid is 0, the
 * directories are given to opts->run_as and initdb/pg_ctl run as that user
 * in a child process. Otherwise everything runs as the current user.
 *
 * The programs run in child processes that are waited for: the caller must
 * not set SIGCHLD to SIG_IGN.
 *
 * The superuser and the database are both named "roost"; local connections
 * are trusted, which is safe because only the socket directory's owner (and
 * root) can reach the socket. */
#ifndef ROOST_DB_PGMANAGED_H
#define ROOST_DB_PGMANAGED_H

#include <stdbool.h>

struct pgmanaged_opts {
	/* Absolute path of roost's data directory; created if missing. It must
	 * not contain quotes, backslashes or control characters, and be short
	 * enough for a Unix socket path (about 80 bytes). */
	const char *data_dir;
	/* Directory holding initdb, pg_ctl and postgres. NULL or "": the
	 * version that made the existing cluster, else the newest
	 * /usr/lib/postgresql/<version>/bin. */
	const char *bindir;
	/* System user that runs PostgreSQL when roost runs as root. NULL or
	 * "": "roost". Ignored when not root. */
	const char *run_as;
	/* Log only warnings and errors (no start/stop/initdb lines). */
	bool quiet;
};

struct pgmanaged;

/* Creates the cluster if needed, starts it if it is not running, makes sure
 * the database "roost" exists, and registers this handle as a user. Blocks
 * while another process starts or stops the cluster. Returns 0, or -1 with a
 * malloc'd message for the administrator in *error_r (free with free()). */
int pgmanaged_start(const struct pgmanaged_opts *opts, struct pgmanaged **pg_r, char **error_r);
/* libpq conninfo of the database "roost", e.g.
 * "host='/var/lib/roost/run' port=5432 dbname=roost user=roost".
 * Valid until pgmanaged_stop(). */
const char *pgmanaged_conninfo(const struct pgmanaged *pg);
/* Unregisters this handle and stops the cluster (fast shutdown: sessions
 * are disconnected) if no other handle, in this or another process, uses
 * it. Close every connection first. Frees the handle, sets *pg to NULL. */
void pgmanaged_stop(struct pgmanaged **pg);

#endif
