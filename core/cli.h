/* cli.h - the `roost` command line. Part of the roost executable only (not
 * of roost_core), because its subcommands reach every layer. */
#ifndef ROOST_CLI_H
#define ROOST_CLI_H

#include "config.h"

#include <libpq-fe.h>
#include <stdbool.h>

struct db_pool;
struct pgmanaged;

/* What every subcommand gets: its arguments with the common options
 * (-c FILE, --help) already taken out. */
#define CLI_MAX_OPTS 8

struct cli_args {
	const char *command; /* "user add" */
	int argc;            /* positional arguments only */
	char **argv;
	const char *config_file; /* NULL: the default search */
	/* Options the command's table row allows ("--name VALUE", "--force"). */
	const char *opt_names[CLI_MAX_OPTS];
	const char *opt_values[CLI_MAX_OPTS]; /* "" for flags */
	int nopts;
};

/* The value of option name ("name" for --name), or NULL if not given. */
const char *cli_opt(const struct cli_args *args, const char *name);

/* The database a subcommand works on: the managed cluster (started for the
 * duration when the server is not running) or the configured DSN. */
struct cli_db {
	struct config *cfg;
	struct pgmanaged *pg;
	struct db_pool *pool;
	char *data_dir; /* absolute */
};

int cli_main(int argc, char **argv);

/* Loads the config named by args (or the default search) and applies
 * log_level. On failure prints the error and returns -1. */
int cli_load_config(const struct cli_args *args, struct config **cfg_r);
/* Loads config, starts/attaches the database, migrates. 0, or with the
 * reason printed the exit status: 1 (bad config, the managed cluster would
 * not start, a migration failed) or EX_TEMPFAIL (75: the database could
 * not be reached; try again). */
int cli_db_open(const struct cli_args *args, struct cli_db *db);
void cli_db_close(struct cli_db *db);
/* Prints "roost: <msg>" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Reads one line (the password) from standard input, without echo on a
 * terminal. The caller wipes and frees it. NULL on error (printed). */
char *cli_read_password(const char *prompt);

/* Subcommands (cli-*.c). Each returns the process exit status. */
int cli_serve(const struct cli_args *args);
int cli_migrate(const struct cli_args *args);
int cli_domain(const struct cli_args *args, const char *verb);
int cli_user(const struct cli_args *args, const char *verb);
int cli_alias(const struct cli_args *args, const char *verb);
int cli_admin(const struct cli_args *args, const char *verb);
int cli_config(const struct cli_args *args, const char *verb);
int cli_deliver(const struct cli_args *args);
int cli_queue(const struct cli_args *args, const char *verb);
int cli_domain_dns(const struct cli_args *args, const char *verb);
int cli_ldap(const struct cli_args *args, const char *verb);

#endif
