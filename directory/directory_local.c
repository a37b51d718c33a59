/* directory_local.c - the directory backend over the PostgreSQL store
 * (tables domains, accounts, aliases, alias_targets of 001_initial.sql).
 * directory.c has already validated and normalised every argument.
 *
 * The lookups of every SMTP RCPT are prepared statements (prepared once per
 * pooled connection, remembered with the PGconn by a libpq event procedure
 * that also hears when PQreset() loses them), and resolving an address
 * asks everything its first level needs in one round trip: whether the
 * domain is ours, and the account or alias rows of the address, of its
 * address without the sub-address tag and of the domain's catch-all. Only
 * alias targets cost further queries. */
#include "directory-private.h"

#include "log.h"
#include "password.h"
#include "prepared.h"
#include "store.h"
#include "strnum.h"
#include "xalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACCOUNT_COLS                                                                               \
	"id, address, display_name, is_admin, disabled, source, quota_bytes, used_bytes"

static PGconn *local_borrow(struct directory *dir, char *error_r)
{
	PGconn *conn = db_pool_borrow(dir->pool, DIR_BORROW_TIMEOUT_MS);
	if (conn == NULL)
		directory_error(error_r, DIR_ETEMP, "database unavailable");
	return conn;
}

static void local_return(struct directory *dir, PGconn **conn)
{
	db_pool_return(dir->pool, conn);
}

/* Maps the last failed statement to the enum (details are in the log). */
static enum directory_err local_db_error(char *error_r, const char *what)
{
	const char *state = db_last_sqlstate();
	enum directory_err e = DIR_ETEMP;
	if (strcmp(state, "23505") == 0)
		e = DIR_EEXISTS;
	else if (strncmp(state, "23", 2) == 0 || strncmp(state, "22", 2) == 0)
		e = DIR_EINVALID;
	return directory_error(error_r, e, "database error while %s (SQLSTATE %s)", what,
	                       state[0] != '\0' ? state : "none");
}

/* Runs one statement; NULL (message set) on failure. */
static PGresult *local_exec(PGconn *conn, const char *sql, int n, const char *const *params,
                            const char *what, char *error_r)
{
	PGresult *res = db_exec(conn, sql, n, params);
	if (res == NULL)
		local_db_error(error_r, what);
	return res;
}

/* ---- prepared statements (the RCPT path) ---- */

enum local_stmt {
	LSTMT_RESOLVE,
	LSTMT_KEY,
	LSTMT_DOMAIN,
	LSTMT_ACCOUNT,
	LSTMT_ACCOUNT_ID,
	LSTMT_COUNT
};

static const struct db_stmt local_stmts[LSTMT_COUNT] = {
    /* $1 domain; $2 address key, $3 its key without the tag (or NULL),
     * $4 the catch-all "@domain". Rows (kind, key, value, disabled): 'd' if
     * the domain is ours, 'a' an account (value: id), 't' an alias target. */
    [LSTMT_RESOLVE] = {"roost_dir_resolve",
                       "SELECT 'd', $1::text, '', false FROM domains WHERE name = $1::text "
                       "UNION ALL "
                       "SELECT 'a', address, id::text, disabled FROM accounts "
                       "WHERE address IN ($2::text, $3::text, $4::text) "
                       "UNION ALL "
                       "SELECT 't', a.address, t.target, false FROM aliases a "
                       "JOIN alias_targets t ON t.alias_id = a.id "
                       "WHERE a.address IN ($2::text, $3::text, $4::text) "
                       "ORDER BY 1, 2, 3",
                       4},
    /* An account row ('a', id, disabled) or the alias's targets ('t', target). */
    [LSTMT_KEY] = {"roost_dir_key",
                   "SELECT 'a', id::text, disabled FROM accounts WHERE address = $1::text "
                   "UNION ALL "
                   "SELECT 't', t.target, false FROM aliases a "
                   "JOIN alias_targets t ON t.alias_id = a.id WHERE a.address = $1::text "
                   "ORDER BY 1, 2",
                   1},
    [LSTMT_DOMAIN] = {"roost_dir_domain", "SELECT 1 FROM domains WHERE name = $1::text", 1},
    [LSTMT_ACCOUNT] = {"roost_dir_account",
                       "SELECT " ACCOUNT_COLS " FROM accounts WHERE address = $1::text", 1},
    [LSTMT_ACCOUNT_ID] = {"roost_dir_account_id",
                          "SELECT " ACCOUNT_COLS " FROM accounts WHERE id = $1::bigint", 1},
};

/* Runs statement i, prepared (db_exec_prepared()); a failure is noted for
 * local_db_error(). */
static PGresult *local_exec_stmt(PGconn *conn, enum local_stmt i, const char *const *params,
                                 const char *what, char *error_r)
{
	PGresult *res = db_exec_prepared(conn, DB_PREPARED_DIRECTORY, i, &local_stmts[i], params);
	if (res == NULL)
		local_db_error(error_r, what);
	return res;
}

static uint64_t col_u64(const PGresult *res, int row, int col)
{
	uint64_t v = 0;
	const char *s = PQgetvalue(res, row, col);
	if (str_to_u64(s, UINT64_MAX, &v) < 0)
		v = 0;
	return v;
}

static bool col_bool(const PGresult *res, int row, int col)
{
	return PQgetvalue(res, row, col)[0] == 't';
}

/* One row of ACCOUNT_COLS. */
static void row_account(const PGresult *res, int row, struct directory_account *a)
{
	memset(a, 0, sizeof(*a));
	a->id = (int64_t)col_u64(res, row, 0);
	const char *addr = PQgetvalue(res, row, 1);
	size_t n = strnlen(addr, ADDRESS_MAX);
	memcpy(a->address, addr, n);
	a->address[n] = '\0';
	directory_copy_name(a->display_name, PQgetvalue(res, row, 2));
	a->is_admin = col_bool(res, row, 3);
	a->disabled = col_bool(res, row, 4);
	a->ldap = strcmp(PQgetvalue(res, row, 5), "ldap") == 0;
	a->quota_bytes = col_u64(res, row, 6);
	a->used_bytes = col_u64(res, row, 7);
}

/* Runs a statement returning ACCOUNT_COLS (at most one row expected). */
static enum directory_err local_account_query(struct directory *dir, enum local_stmt stmt,
                                              const char *param, const char *label,
                                              struct directory_account *account_r, char *error_r)
{
	PGconn *conn = local_borrow(dir, error_r);
	if (conn == NULL)
		return DIR_ETEMP;
	PGresult *res = local_exec_stmt(conn, stmt, &param, "looking up an account", error_r);
	enum directory_err e = DIR_ETEMP;
	if (res != NULL && PQntuples(res) == 0)
		e = directory_error(error_r, DIR_ENOTFOUND, "no account %s", label);
	else if (res != NULL) {
		row_account(res, 0, account_r);
		e = DIR_OK;
	}
	PQclear(res);
	local_return(dir, &conn);
	return e;
}

static enum directory_err local_account_get(struct directory *dir, const char *key,
                                            struct directory_account *account_r, char *error_r)
{
	return local_account_query(dir, LSTMT_ACCOUNT, key, key, account_r, error_r);
}

static enum directory_err local_account_get_by_id(struct directory *dir, int64_t id,
                                                  struct directory_account *account_r,
                                                  char *error_r)
{
	char ids[24];
	snprintf(ids, sizeof(ids), "%" PRId64, id);
	return local_account_query(dir, LSTMT_ACCOUNT_ID, ids, ids, account_r, error_r);
}

/* ---- authentication ---- */

/* Reads the account and its hash; the connection goes back before the slow
 * password check so a burst of logins does not hold the pool. */
static enum directory_err local_auth_fetch(struct directory *dir, const char *key,
                                           struct directory_account *a, char **hash_r)
{
	char err[DIR_ERROR_SIZE];
	const char *params[] = {key};
	PGconn *conn = local_borrow(dir, err);
	if (conn == NULL)
		return DIR_ETEMP;
	PGresult *res = local_exec(conn,
	                           "SELECT " ACCOUNT_COLS ", password_hash FROM accounts "
	                           "WHERE address = $1",
	                           1, params, "authenticating", err);
	enum directory_err e = res == NULL ? DIR_ETEMP : DIR_OK;
	*hash_r = NULL;
	if (res != NULL && PQntuples(res) == 1) {
		row_account(res, 0, a);
		if (!PQgetisnull(res, 0, 8))
			*hash_r = xstrdup(PQgetvalue(res, 0, 8));
	}
	PQclear(res);
	local_return(dir, &conn);
	return e;
}

static enum directory_auth local_authenticate(struct directory *dir, const char *key,
                                              const char *password, size_t password_len,
                                              struct directory_account *account_r)
{
	struct directory_account a;
	char *hash = NULL;
	enum directory_auth result = DIR_AUTH_FAILED;

	if (local_auth_fetch(dir, key, &a, &hash) != DIR_OK)
		return DIR_AUTH_TEMPFAIL;
	if (hash == NULL) {
		/* Unknown user, or one that cannot log in locally: same cost. */
		password_verify_dummy(password, password_len);
		return DIR_AUTH_FAILED;
	}
	enum password_result pr = password_verify(password, password_len, hash);
	if (pr == PASSWORD_MALFORMED)
		log_warn("event=password_hash_unusable account_id=%" PRId64, a.id);
	if (pr == PASSWORD_MATCH)
		result = a.disabled ? DIR_AUTH_DISABLED : DIR_AUTH_OK;
	if (result == DIR_AUTH_OK)
		*account_r = a;
	password_wipe(hash, strlen(hash));
	free(hash);
	return result;
}

/* ---- resolution ---- */

/* What directory_expand()'s callbacks work with: the connection, and the
 * answers of the first round trip (LSTMT_RESOLVE) for the address's domain
 * and its keys; other names (alias targets) are asked one by one. */
struct local_resolve {
	PGconn *conn;
	const char *domain; /* NULL: nothing prefetched */
	bool domain_local;
	const char *keys[3]; /* the keys pre answers for (NULL: unused) */
	PGresult *pre;
};

static enum directory_err lookup_domain_conn(PGconn *conn, const char *domain, bool *local_r)
{
	char err[DIR_ERROR_SIZE];
	const char *params[] = {domain};
	PGresult *res = local_exec_stmt(conn, LSTMT_DOMAIN, params, "looking up a domain", err);
	if (res == NULL)
		return DIR_ETEMP;
	*local_r = PQntuples(res) > 0;
	PQclear(res);
	return DIR_OK;
}

static enum directory_err lookup_domain(void *ctx, const char *domain, bool *local_r)
{
	struct local_resolve *lr = ctx;
	if (lr->domain != NULL && strcmp(domain, lr->domain) == 0) {
		*local_r = lr->domain_local;
		return DIR_OK;
	}
	return lookup_domain_conn(lr->conn, domain, local_r);
}

/* Fills r from the rows of res: kind in column 0, value and disabled in
 * columns col and col + 1; with key, only rows whose column col - 1 is key.
 * Rows are sorted: an account row comes before alias targets. */
static void lookup_fill(const PGresult *res, int col, const char *key, struct directory_lookup *r)
{
	int n = PQntuples(res);
	memset(r, 0, sizeof(*r));
	for (int i = 0; i < n; i++) {
		if (key != NULL && strcmp(PQgetvalue(res, i, col - 1), key) != 0)
			continue;
		char kind = PQgetvalue(res, i, 0)[0];
		if (kind == 'a' && r->kind == DIR_LOOKUP_NONE) {
			r->kind = DIR_LOOKUP_ACCOUNT;
			r->account_id = (int64_t)col_u64(res, i, col);
			r->disabled = col_bool(res, i, col + 1);
		} else if (kind == 't' && r->kind != DIR_LOOKUP_ACCOUNT) {
			r->kind = DIR_LOOKUP_ALIAS;
			r->targets =
			    xreallocarray(r->targets, r->ntargets + 1, sizeof(*r->targets));
			r->targets[r->ntargets++] = xstrdup(PQgetvalue(res, i, col));
		}
	}
}

/* An account ('a', id, disabled) or the alias's targets ('t', target). */
static enum directory_err lookup_key(void *ctx, const char *key, struct directory_lookup *r)
{
	struct local_resolve *lr = ctx;
	for (size_t i = 0; lr->pre != NULL && i < 3; i++) {
		if (lr->keys[i] != NULL && strcmp(lr->keys[i], key) == 0) {
			lookup_fill(lr->pre, 2, key, r);
			return DIR_OK;
		}
	}
	char err[DIR_ERROR_SIZE];
	const char *params[] = {key};
	PGresult *res = local_exec_stmt(lr->conn, LSTMT_KEY, params, "resolving an address", err);
	if (res == NULL)
		return DIR_ETEMP;
	lookup_fill(res, 1, NULL, r);
	PQclear(res);
	return DIR_OK;
}

static const struct directory_lookup_fns local_lookup_fns = {
    .lookup = lookup_key,
    .is_local_domain = lookup_domain,
};

/* The first round trip: the domain, the address, its base and catch-all.
 * keys holds their text (3 x ADDRESS_BUF_SIZE). */
static enum directory_err local_prefetch(struct directory *dir, const struct address *a,
                                         struct local_resolve *lr, char keys[3][ADDRESS_BUF_SIZE],
                                         char *error_r)
{
	struct address base;
	address_lookup_key(a, keys[0]);
	lr->keys[0] = keys[0];
	if (address_split_detail(a, dir->detail_separator, &base, NULL) == 1) {
		address_lookup_key(&base, keys[1]);
		lr->keys[1] = keys[1];
	}
	keys[2][0] = '@'; /* "@dom" fits: the domain is shorter than an address */
	memcpy(&keys[2][1], a->domain, a->domain_len + 1);
	lr->keys[2] = keys[2];
	const char *params[] = {a->domain, lr->keys[0], lr->keys[1], lr->keys[2]};
	lr->pre = local_exec_stmt(lr->conn, LSTMT_RESOLVE, params, "resolving an address", error_r);
	if (lr->pre == NULL)
		return DIR_ETEMP;
	lr->domain = a->domain;
	lr->domain_local = false;
	for (int i = 0; i < PQntuples(lr->pre); i++)
		if (PQgetvalue(lr->pre, i, 0)[0] == 'd')
			lr->domain_local = true;
	return DIR_OK;
}

static enum directory_err local_resolve(struct directory *dir, const struct address *a,
                                        struct directory_resolution *r, char *error_r)
{
	struct local_resolve lr = {.conn = local_borrow(dir, error_r)};
	char keys[3][ADDRESS_BUF_SIZE];
	if (lr.conn == NULL)
		return DIR_ETEMP;
	enum directory_err e = local_prefetch(dir, a, &lr, keys, error_r);
	if (e == DIR_OK)
		e = directory_expand(dir, &local_lookup_fns, &lr, a, r, error_r);
	PQclear(lr.pre);
	local_return(dir, &lr.conn);
	return e;
}

static enum directory_err local_is_local_domain(struct directory *dir, const char *domain,
                                                bool *local_r, char *error_r)
{
	PGconn *conn = local_borrow(dir, error_r);
	if (conn == NULL)
		return DIR_ETEMP;
	enum directory_err e = lookup_domain_conn(conn, domain, local_r);
	if (e != DIR_OK)
		directory_error(error_r, e, "database error while looking up a domain");
	local_return(dir, &conn);
	return e;
}

/* ---- management: domains ---- */

static enum directory_err local_domain_add(struct directory *dir, const char *domain, char *error_r)
{
	const char *params[] = {domain};
	PGconn *conn = local_borrow(dir, error_r);
	if (conn == NULL)
		return DIR_ETEMP;
	PGresult *res = local_exec(conn,
	                           "INSERT INTO domains (name) VALUES ($1) "
	                           "ON CONFLICT (name) DO NOTHING",
	                           1, params, "adding a domain", error_r);
	enum directory_err e = DIR_ETEMP;
	if (res != NULL)
		e = strcmp(PQcmdTuples(res), "0") == 0
		        ? directory_error(error_r, DIR_EEXISTS, "domain %s already exists", domain)
		        : DIR_OK;
	PQclear(res);
	local_return(dir, &conn);
	return e;
}

static enum directory_err local_domain_list(struct directory *dir,
                                            struct directory_domain **domains_r, size_t *n_r,
                                            char *error_r)
{
	PGconn *conn = local_borrow(dir, error_r);
	if (conn == NULL)
		return DIR_ETEMP;
	PGresult *res = local_exec(conn,
	                           "SELECT d.id, d.name, "
	                           "(SELECT count(*) FROM accounts a WHERE a.domain_id = d.id), "
	                           "(SELECT count(*) FROM aliases l WHERE l.domain_id = d.id) "
	                           "FROM domains d ORDER BY d.name",
	                           0, NULL, "listing domains", error_r);
	local_return(dir, &conn);
	if (res == NULL)
		return DIR_ETEMP;
	size_t n = (size_t)PQntuples(res);
	struct directory_domain *d = n == 0 ? NULL : xcalloc(n, sizeof(*d));
	for (size_t i = 0; i < n; i++) {
		d[i].id = (int64_t)col_u64(res, (int)i, 0);
		const char *name = PQgetvalue(res, (int)i, 1);
		size_t len = strnlen(name, ADDRESS_DOMAIN_MAX);
		memcpy(d[i].name, name, len);
		d[i].name[len] = '\0';
		d[i].accounts = col_u64(res, (int)i, 2);
		d[i].aliases = col_u64(res, (int)i, 3);
	}
	PQclear(res);
	*domains_r = d;
	*n_r = n;
	return DIR_OK;
}

/* Deletes the domain's accounts (mailboxes follow by cascade) and the
 * domain (aliases follow by cascade), inside the caller's transaction. */
static enum directory_err domain_delete(PGconn *conn, const char *id, char *error_r)
{
	const char *params[] = {id};
	PGresult *res = local_exec(conn, "DELETE FROM accounts WHERE domain_id = $1::bigint", 1,
	                           params, "removing the domain's accounts", error_r);
	if (res == NULL)
		return DIR_ETEMP;
	PQclear(res);
	res = local_exec(conn, "DELETE FROM domains WHERE id = $1::bigint", 1, params,
	                 "removing a domain", error_r);
	if (res == NULL)
		return DIR_ETEMP;
	PQclear(res);
	return DIR_OK;
}

static enum directory_err domain_remove_tx(PGconn *conn, const char *domain, bool force,
                                           char *error_r)
{
	const char *params[] = {domain};
	PGresult *res = local_exec(conn,
	                           "SELECT d.id, "
	                           "(SELECT count(*) FROM accounts a WHERE a.domain_id = d.id), "
	                           "(SELECT count(*) FROM aliases l WHERE l.domain_id = d.id) "
	                           "FROM domains d WHERE d.name = $1 FOR UPDATE",
	                           1, params, "removing a domain", error_r);
	if (res == NULL)
		return DIR_ETEMP;
	enum directory_err e;
	if (PQntuples(res) == 0)
		e = directory_error(error_r, DIR_ENOTFOUND, "unknown domain %s", domain);
	else if (!force && (col_u64(res, 0, 1) > 0 || col_u64(res, 0, 2) > 0)) {
		uint64_t na = col_u64(res, 0, 1), nl = col_u64(res, 0, 2);
		e = directory_error(error_r, DIR_EEXISTS,
		                    "domain %s still has %" PRIu64 " account%s and %" PRIu64
		                    " alias%s (remove them first, or force)",
		                    domain, na, na == 1 ? "" : "s", nl, nl == 1 ? "" : "es");
	} else
		e = domain_delete(conn, PQgetvalue(res, 0, 0), error_r);
	PQclear(res);
	return e;
}

/* Ends a transaction: COMMIT if e is DIR_OK, else ROLLBACK. */
static enum directory_err local_tx_end(PGconn *conn, enum directory_err e, char *error_r)
{
	if (e != DIR_OK) {
		db_rollback(conn);
		return e;
	}
	if (db_commit(conn) < 0)
		return local_db_error(error_r, "committing");
	return DIR_OK;
}

static enum directory_err local_domain_remove(struct directory *dir, const char *domain, bool force,
                                              char *error_r)
{
	PGconn *conn = local_borrow(dir, error_r);
	if (conn == NULL)
		return DIR_ETEMP;
	enum directory_err e = DIR_ETEMP;
	if (db_begin(conn) < 0)
		local_db_error(error_r, "starting a transaction");
	else
		e = local_tx_end(conn, domain_remove_tx(conn, domain, force, error_r), error_r);
	local_return(dir, &conn);
	return e;
}

/* ---- management: accounts ---- */

/* The id of a local domain as text, or DIR_ENOTFOUND "unknown domain x". */
static enum directory_err domain_id(PGconn *conn, const char *domain, char id_r[24], char *error_r)
{
	const char *params[] = {domain};
	PGresult *res = local_exec(conn, "SELECT id FROM domains WHERE name = $1", 1, params,
	                           "looking up a domain", error_r);
	if (res == NULL)
		return DIR_ETEMP;
	enum directory_err e = DIR_OK;
	if (PQntuples(res) == 0)
		e = directory_error(error_r, DIR_ENOTFOUND, "unknown domain %s", domain);
	else
		snprintf(id_r, 24, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return e;
}

/* DIR_EEXISTS if key is already in table ("aliases" or "accounts"). */
static enum directory_err check_free(PGconn *conn, const char *key, const char *table,
                                     char *error_r)
{
	const char *params[] = {key};
	const char *sql = strcmp(table, "aliases") == 0
	                      ? "SELECT 1 FROM aliases WHERE address = $1"
	                      : "SELECT 1 FROM accounts WHERE address = $1";
	PGresult *res = local_exec(conn, sql, 1, params, "checking an address", error_r);
	if (res == NULL)
		return DIR_ETEMP;
	enum directory_err e = DIR_OK;
	if (PQntuples(res) > 0)
		e = directory_error(error_r, DIR_EEXISTS, "%s is already %s", key,
		                    strcmp(table, "aliases") == 0 ? "an alias" : "an account");
	PQclear(res);
	return e;
}

static enum directory_err map_store_err(enum store_err se, char *error_r)
{
	static const enum directory_err map[] = {
	    [STORE_OK] = DIR_OK,
	    [STORE_ETEMP] = DIR_ETEMP,
	    [STORE_EPERM] = DIR_EPERM,
	    [STORE_EQUOTA] = DIR_EQUOTA,
	    [STORE_ENOTFOUND] = DIR_ENOTFOUND,
	    [STORE_EINVALID] = DIR_EINVALID,
	    [STORE_EEXISTS] = DIR_EEXISTS,
	};
	enum directory_err e = (unsigned)se < sizeof(map) / sizeof(map[0]) ? map[se] : DIR_ETEMP;
	return directory_error(error_r, e, "cannot create the default mailboxes: %s",
	                       store_err_str(se));
}

static enum directory_err account_add_tx(PGconn *conn, const struct address *a, const char *key,
                                         const char *hash, const char *name, int64_t *id_r,
                                         char *error_r)
{
	char did[24], local[ADDRESS_LOCAL_MAX + 1];
	enum directory_err e = domain_id(conn, a->domain, did, error_r);
	if (e == DIR_OK)
		e = check_free(conn, key, "aliases", error_r);
	if (e != DIR_OK)
		return e;
	/* The stored local part is the folded one, like the address. */
	memcpy(local, key, a->local_len);
	local[a->local_len] = '\0';
	const char *params[] = {did, local, key, name, hash};
	PGresult *res =
	    local_exec(conn,
	               "INSERT INTO accounts (domain_id, localpart, address, display_name, "
	               "password_hash) VALUES ($1::bigint, $2, $3, $4, $5) "
	               "ON CONFLICT DO NOTHING RETURNING id",
	               5, params, "adding an account", error_r);
	if (res == NULL)
		return DIR_ETEMP;
	if (PQntuples(res) == 0)
		e = directory_error(error_r, DIR_EEXISTS, "account %s already exists", key);
	else
		*id_r = (int64_t)col_u64(res, 0, 0);
	PQclear(res);
	if (e != DIR_OK)
		return e;
	enum store_err se = store_mailboxes_create_defaults(conn, *id_r);
	return se == STORE_OK ? DIR_OK : map_store_err(se, error_r);
}

static enum directory_err local_account_add(struct directory *dir, const struct address *a,
                                            const char *key, const char *hash, const char *name,
                                            int64_t *id_r, char *error_r)
{
	PGconn *conn = local_borrow(dir, error_r);
	if (conn == NULL)
		return DIR_ETEMP;
	enum directory_err e = DIR_ETEMP;
	if (db_begin(conn) < 0)
		local_db_error(error_r, "starting a transaction");
	else
		e = local_tx_end(conn, account_add_tx(conn, a, key, hash, name, id_r, error_r),
		                 error_r);
	local_return(dir, &conn);
	if (e == DIR_OK)
		log_info("event=account_added account_id=%" PRId64, *id_r);
	return e;
}

/* One fixed statement per field: column names never come from input. */
static const char *const update_sql[] = {
    [DIR_FIELD_PASSWORD_HASH] = "UPDATE accounts SET password_hash = $2, updated_at = now() "
                                "WHERE address = $1",
    [DIR_FIELD_DISPLAY_NAME] = "UPDATE accounts SET display_name = $2, updated_at = now() "
                               "WHERE address = $1",
    [DIR_FIELD_QUOTA] = "UPDATE accounts SET quota_bytes = $2::bigint, updated_at = now() "
                        "WHERE address = $1",
    [DIR_FIELD_ADMIN] = "UPDATE accounts SET is_admin = $2::boolean, updated_at = now() "
                        "WHERE address = $1",
    [DIR_FIELD_DISABLED] = "UPDATE accounts SET disabled = $2::boolean, updated_at = now() "
                           "WHERE address = $1",
};

static enum directory_err local_account_update(struct directory *dir, const char *key,
                                               const struct directory_change *c, char *error_r)
{
	char num[24];
	const char *value = c->text;
	if (c->field == DIR_FIELD_QUOTA) {
		snprintf(num, sizeof(num), "%" PRIu64, c->number);
		value = num;
	} else if (c->field == DIR_FIELD_ADMIN || c->field == DIR_FIELD_DISABLED)
		value = c->flag ? "true" : "false";
	const char *params[] = {key, value};
	PGconn *conn = local_borrow(dir, error_r);
	if (conn == NULL)
		return DIR_ETEMP;
	PGresult *res =
	    local_exec(conn, update_sql[c->field], 2, params, "updating an account", error_r);
	enum directory_err e = DIR_ETEMP;
	if (res != NULL)
		e = strcmp(PQcmdTuples(res), "0") == 0
		        ? directory_error(error_r, DIR_ENOTFOUND, "no account %s", key)
		        : DIR_OK;
	PQclear(res);
	local_return(dir, &conn);
	return e;
}

static enum directory_err local_account_list(struct directory *dir, const char *domain,
                                             struct directory_account **accounts_r, size_t *n_r,
                                             char *error_r)
{
	char did[24];
	const char *params[] = {did};
	PGconn *conn = local_borrow(dir, error_r);
	if (conn == NULL)
		return DIR_ETEMP;
	enum directory_err e = domain == NULL ? DIR_OK : domain_id(conn, domain, did, error_r);
	PGresult *res = NULL;
	if (e == DIR_OK && domain == NULL)
		res = local_exec(conn, "SELECT " ACCOUNT_COLS " FROM accounts ORDER BY address", 0,
		                 NULL, "listing accounts", error_r);
	else if (e == DIR_OK)
		res = local_exec(conn,
		                 "SELECT " ACCOUNT_COLS " FROM accounts "
		                 "WHERE domain_id = $1::bigint ORDER BY address",
		                 1, params, "listing accounts", error_r);
	local_return(dir, &conn);
	if (e != DIR_OK || res == NULL)
		return e != DIR_OK ? e : DIR_ETEMP;
	size_t n = (size_t)PQntuples(res);
	struct directory_account *list = n == 0 ? NULL : xcalloc(n, sizeof(*list));
	for (size_t i = 0; i < n; i++)
		row_account(res, (int)i, &list[i]);
	PQclear(res);
	*accounts_r = list;
	*n_r = n;
	return DIR_OK;
}

static enum directory_err local_account_remove(struct directory *dir, const char *key,
                                               char *error_r)
{
	const char *params[] = {key};
	PGconn *conn = local_borrow(dir, error_r);
	if (conn == NULL)
		return DIR_ETEMP;
	/* Mailboxes and tombstones go by ON DELETE CASCADE, entries with
	 * their mailboxes (migration 015's trigger); store_gc() then frees
	 * the messages no one else holds. */
	PGresult *res = local_exec(conn, "DELETE FROM accounts WHERE address = $1 RETURNING id", 1,
	                           params, "removing an account", error_r);
	enum directory_err e = DIR_ETEMP;
	if (res != NULL && PQntuples(res) == 0)
		e = directory_error(error_r, DIR_ENOTFOUND, "no account %s", key);
	else if (res != NULL) {
		log_info("event=account_removed account_id=%s", PQgetvalue(res, 0, 0));
		e = DIR_OK;
	}
	PQclear(res);
	local_return(dir, &conn);
	return e;
}

/* ---- management: aliases ---- */

static enum directory_err alias_add_tx(PGconn *conn, const char *domain, const char *key,
                                       const char *const *targets, size_t n, char *error_r)
{
	char did[24];
	enum directory_err e = domain_id(conn, domain, did, error_r);
	if (e == DIR_OK && key[0] != '@')
		e = check_free(conn, key, "accounts", error_r);
	if (e != DIR_OK)
		return e;
	const char *local = key[0] == '@' ? "" : key;
	char lp[ADDRESS_LOCAL_MAX + 1];
	if (key[0] != '@') {
		size_t len = strlen(key) - strlen(domain) - 1;
		memcpy(lp, key, len);
		lp[len] = '\0';
		local = lp;
	}
	const char *p1[] = {did, local, key};
	PGresult *res = local_exec(conn,
	                           "INSERT INTO aliases (domain_id, localpart, address) "
	                           "VALUES ($1::bigint, $2, $3) ON CONFLICT (address) "
	                           "DO UPDATE SET address = EXCLUDED.address RETURNING id",
	                           3, p1, "adding an alias", error_r);
	if (res == NULL)
		return DIR_ETEMP;
	char aid[24];
	snprintf(aid, sizeof(aid), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	for (size_t i = 0; i < n; i++) {
		const char *p2[] = {aid, targets[i]};
		res = local_exec(conn,
		                 "INSERT INTO alias_targets (alias_id, target) "
		                 "VALUES ($1::bigint, $2) ON CONFLICT DO NOTHING",
		                 2, p2, "adding an alias target", error_r);
		if (res == NULL)
			return DIR_ETEMP;
		PQclear(res);
	}
	return DIR_OK;
}

static enum directory_err local_alias_add(struct directory *dir, const char *domain,
                                          const char *key, const char *const *targets, size_t n,
                                          char *error_r)
{
	PGconn *conn = local_borrow(dir, error_r);
	if (conn == NULL)
		return DIR_ETEMP;
	enum directory_err e = DIR_ETEMP;
	if (db_begin(conn) < 0)
		local_db_error(error_r, "starting a transaction");
	else
		e = local_tx_end(conn, alias_add_tx(conn, domain, key, targets, n, error_r),
		                 error_r);
	local_return(dir, &conn);
	return e;
}

/* Groups (address, target) rows, sorted by address, into aliases. */
static struct directory_alias *group_aliases(const PGresult *res, size_t *n_r)
{
	int rows = PQntuples(res);
	struct directory_alias *list = rows == 0 ? NULL : xcalloc((size_t)rows, sizeof(*list));
	size_t n = 0;
	for (int i = 0; i < rows; i++) {
		const char *addr = PQgetvalue(res, i, 0);
		if (n == 0 || strcmp(list[n - 1].address, addr) != 0) {
			size_t len = strnlen(addr, ADDRESS_MAX);
			memcpy(list[n].address, addr, len);
			list[n].address[len] = '\0';
			int run = 1; /* rows of this alias, so its array is sized once */
			while (i + run < rows && strcmp(PQgetvalue(res, i + run, 0), addr) == 0)
				run++;
			list[n].targets = xcalloc((size_t)run + 1, sizeof(char *));
			n++;
		}
		struct directory_alias *al = &list[n - 1];
		al->targets[al->ntargets++] = xstrdup(PQgetvalue(res, i, 1));
	}
	*n_r = n;
	return list;
}

static enum directory_err local_alias_list(struct directory *dir, const char *domain,
                                           struct directory_alias **aliases_r, size_t *n_r,
                                           char *error_r)
{
	char did[24];
	const char *params[] = {did};
	PGconn *conn = local_borrow(dir, error_r);
	if (conn == NULL)
		return DIR_ETEMP;
	enum directory_err e = domain == NULL ? DIR_OK : domain_id(conn, domain, did, error_r);
	PGresult *res = NULL;
	if (e == DIR_OK)
		res = local_exec(
		    conn,
		    domain == NULL
		        ? "SELECT a.address, t.target FROM aliases a JOIN alias_targets t "
		          "ON t.alias_id = a.id ORDER BY a.address, t.target"
		        : "SELECT a.address, t.target FROM aliases a JOIN alias_targets t "
		          "ON t.alias_id = a.id WHERE a.domain_id = $1::bigint "
		          "ORDER BY a.address, t.target",
		    domain == NULL ? 0 : 1, domain == NULL ? NULL : params, "listing aliases",
		    error_r);
	local_return(dir, &conn);
	if (e != DIR_OK || res == NULL)
		return e != DIR_OK ? e : DIR_ETEMP;
	*aliases_r = group_aliases(res, n_r);
	PQclear(res);
	return DIR_OK;
}

static enum directory_err alias_remove_targets(PGconn *conn, const char *aid, const char *key,
                                               const char *const *targets, size_t n, char *error_r)
{
	for (size_t i = 0; i < n; i++) {
		const char *p[] = {aid, targets[i]};
		PGresult *res = local_exec(conn,
		                           "DELETE FROM alias_targets WHERE alias_id = $1::bigint "
		                           "AND target = $2",
		                           2, p, "removing an alias target", error_r);
		if (res == NULL)
			return DIR_ETEMP;
		bool none = strcmp(PQcmdTuples(res), "0") == 0;
		PQclear(res);
		if (none)
			return directory_error(error_r, DIR_ENOTFOUND, "%s is not a target of %s",
			                       targets[i], key);
	}
	/* An alias without targets would silently swallow mail: remove it. */
	const char *p[] = {aid};
	PGresult *res = local_exec(conn,
	                           "DELETE FROM aliases WHERE id = $1::bigint AND NOT EXISTS "
	                           "(SELECT 1 FROM alias_targets WHERE alias_id = $1::bigint)",
	                           1, p, "removing an alias", error_r);
	if (res == NULL)
		return DIR_ETEMP;
	PQclear(res);
	return DIR_OK;
}

static enum directory_err alias_remove_tx(PGconn *conn, const char *key, const char *const *targets,
                                          size_t n, char *error_r)
{
	const char *params[] = {key};
	PGresult *res = local_exec(conn, "SELECT id FROM aliases WHERE address = $1 FOR UPDATE", 1,
	                           params, "removing an alias", error_r);
	if (res == NULL)
		return DIR_ETEMP;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return directory_error(error_r, DIR_ENOTFOUND, "no alias %s", key);
	}
	char aid[24];
	snprintf(aid, sizeof(aid), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (n > 0)
		return alias_remove_targets(conn, aid, key, targets, n, error_r);
	const char *p[] = {aid};
	res = local_exec(conn, "DELETE FROM aliases WHERE id = $1::bigint", 1, p,
	                 "removing an alias", error_r);
	if (res == NULL)
		return DIR_ETEMP;
	PQclear(res);
	return DIR_OK;
}

static enum directory_err local_alias_remove(struct directory *dir, const char *key,
                                             const char *const *targets, size_t n, char *error_r)
{
	PGconn *conn = local_borrow(dir, error_r);
	if (conn == NULL)
		return DIR_ETEMP;
	enum directory_err e = DIR_ETEMP;
	if (db_begin(conn) < 0)
		local_db_error(error_r, "starting a transaction");
	else
		e = local_tx_end(conn, alias_remove_tx(conn, key, targets, n, error_r), error_r);
	local_return(dir, &conn);
	return e;
}

const struct directory_ops directory_local_ops = {
    .name = "local",
    .authenticate = local_authenticate,
    .resolve = local_resolve,
    .is_local_domain = local_is_local_domain,
    .account_get = local_account_get,
    .account_get_by_id = local_account_get_by_id,
    .domain_add = local_domain_add,
    .domain_list = local_domain_list,
    .domain_remove = local_domain_remove,
    .account_add = local_account_add,
    .account_update = local_account_update,
    .account_list = local_account_list,
    .account_remove = local_account_remove,
    .alias_add = local_alias_add,
    .alias_list = local_alias_list,
    .alias_remove = local_alias_remove,
};
