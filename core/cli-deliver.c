/* cli-deliver.c - `roost deliver ADDRESS...`: a local delivery agent.
 *
 * Reads one message from standard input and stores it in the INBOX of every
 * local account the addresses resolve to (aliases, sub-addressing and
 * catch-alls included), in one transaction: the same path SMTP's local
 * delivery takes. For another MTA or fetch tool piping mail into Roost.
 * Exit status follows sysexits: 0 delivered, 67 unknown recipient,
 * 65 bad input, 73 over quota, 75 temporary failure. */
#include "cli.h"

#include "directory.h"
#include "log.h"
#include "mime.h"
#include "store.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EX_DATAERR   65
#define EX_NOUSER    67
#define EX_CANTCREAT 73
#define EX_TEMPFAIL  75

static int deliver_read_stdin(struct store_incoming *in)
{
	char chunk[65536];
	ssize_t n;
	while ((n = read(STDIN_FILENO, chunk, sizeof(chunk))) > 0)
		store_incoming_write(in, chunk, (size_t)n);
	if (n < 0) {
		cli_error("reading the message: %m");
		return EX_TEMPFAIL;
	}
	store_incoming_finish(in);
	if (store_incoming_too_big(in)) {
		cli_error("message larger than [limits] message_size");
		return EX_DATAERR;
	}
	if (store_incoming_size(in) == 0) {
		cli_error("empty message on standard input");
		return EX_DATAERR;
	}
	return 0;
}

/* Adds each distinct local account of every address to *targets. */
static int deliver_resolve(struct directory *dir, const struct cli_args *args,
                           struct store_target **targets, size_t *n)
{
	for (int i = 0; i < args->argc; i++) {
		struct directory_resolution r = {0};
		char err[DIR_ERROR_SIZE] = "";
		enum directory_err e = directory_resolve(dir, args->argv[i], &r, err);
		if (e == DIR_OK && r.naccounts == 0) {
			e = DIR_ENOTFOUND;
			snprintf(err, sizeof(err), "%s delivers only to remote addresses",
			         args->argv[i]);
		}
		if (e != DIR_OK) {
			cli_error("%s: %s", args->argv[i],
			          err[0] != '\0' ? err : directory_err_str(e));
			directory_resolution_free(&r);
			return e == DIR_ETEMP ? EX_TEMPFAIL : EX_NOUSER;
		}
		for (size_t j = 0; j < r.naccounts; j++) {
			bool seen = false;
			for (size_t k = 0; k < *n; k++)
				seen = seen || (*targets)[k].account_id == r.accounts[j];
			if (seen)
				continue;
			*targets = xreallocarray(*targets, *n + 1, sizeof(**targets));
			(*targets)[(*n)++] = (struct store_target){.account_id = r.accounts[j]};
		}
		directory_resolution_free(&r);
	}
	return 0;
}

static int deliver_status(enum store_err e)
{
	switch (e) {
	case STORE_OK:
		return 0;
	case STORE_EQUOTA:
		return EX_CANTCREAT;
	case STORE_ENOTFOUND:
		return EX_NOUSER;
	case STORE_EINVALID:
		return EX_DATAERR;
	default:
		return EX_TEMPFAIL;
	}
}

static int deliver_store(struct cli_db *db, struct store_incoming *in, struct store_target *targets,
                         size_t n)
{
	PGconn *conn = db_pool_borrow(db->pool, 10000);
	if (conn == NULL) {
		cli_error("database: no connection");
		return EX_TEMPFAIL;
	}
	enum store_err e = store_deliver(conn, in, targets, n, false);
	db_pool_return(db->pool, &conn);
	if (e != STORE_OK) {
		cli_error("delivery failed: %s", store_err_str(e));
		return deliver_status(e);
	}
	int status = 0;
	for (size_t i = 0; i < n; i++) {
		if (targets[i].result == STORE_OK) {
			printf("delivered account=%lld uid=%u uidvalidity=%u\n",
			       (long long)targets[i].account_id, targets[i].uid_r,
			       targets[i].uidvalidity_r);
		} else {
			cli_error("account %lld: %s", (long long)targets[i].account_id,
			          store_err_str(targets[i].result));
			if (status == 0)
				status = deliver_status(targets[i].result);
		}
	}
	return status;
}

int cli_deliver(const struct cli_args *args)
{
	struct cli_db db;
	if (cli_db_open(args, &db) != 0)
		return EX_TEMPFAIL;
	struct directory *dir = NULL;
	const char *derr;
	struct store_incoming *in = NULL;
	struct store_target *targets = NULL;
	size_t ntargets = 0;
	int status;
	if (directory_open(db.pool, "local", &dir, &derr) < 0) {
		cli_error("%s", derr);
		status = EX_TEMPFAIL;
		goto out;
	}
	status = deliver_resolve(dir, args, &targets, &ntargets);
	if (status != 0)
		goto out;
	struct mime_limits limits;
	config_mime_limits(db.cfg, &limits);
	in = store_incoming_new(config_uint(db.cfg, CFG_LIMITS_MESSAGE_SIZE), &limits);
	status = deliver_read_stdin(in);
	if (status == 0)
		status = deliver_store(&db, in, targets, ntargets);
out:
	store_incoming_free(&in);
	free(targets);
	directory_close(&dir);
	cli_db_close(&db);
	return status;
}
