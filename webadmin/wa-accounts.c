/* wa-accounts.c - /api/v1/accounts: search, sort and page thousands of
 * accounts; add, edit, disable, remove. Changes go through directory/; the
 * list reads the store's accounts table directly, because paging and
 * sorting belong in the database, not in a copy of every account. */
#include "webadmin-private.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Sort keys of the list: what the client names -> a fixed SQL expression. */
static const struct {
	const char *name;
	const char *sql;
} wa_account_sorts[] = {
    {"address", "a.address"},       {"display_name", "lower(a.display_name)"},
    {"used_bytes", "a.used_bytes"}, {"quota_bytes", "a.quota_bytes"},
    {"created_at", "a.created_at"},
};

#define WA_ACCOUNT_COLS                                                                            \
	"a.address, a.display_name, a.is_admin, a.disabled, a.quota_bytes, a.used_bytes, "         \
	"a.source, extract(epoch FROM a.created_at)::bigint"
#define WA_ACCOUNT_WHERE                                                                           \
	"FROM accounts a JOIN domains d ON d.id = a.domain_id "                                    \
	"WHERE ($1 = '' OR strpos(a.address, lower($1)) > 0 "                                      \
	"       OR strpos(lower(a.display_name), lower($1)) > 0) "                                 \
	"AND ($2 = '' OR d.name = lower($2)) "

static json_t *wa_account_row(const PGresult *res, int i)
{
	return json_pack(
	    "{s:s, s:s, s:b, s:b, s:I, s:I, s:s, s:I}", "address", PQgetvalue(res, i, 0),
	    "display_name", PQgetvalue(res, i, 1), "admin", PQgetvalue(res, i, 2)[0] == 't',
	    "disabled", PQgetvalue(res, i, 3)[0] == 't', "quota_bytes",
	    (json_int_t)wa_db_int(res, i, 4), "used_bytes", (json_int_t)wa_db_int(res, i, 5),
	    "source", PQgetvalue(res, i, 6), "created_at", (json_int_t)wa_db_int(res, i, 7));
}

/* The ORDER BY of the sort and order arguments; 1 after a 400. */
static int wa_account_order(const struct http_request *req, struct http_response *resp,
                            const char **col_r, const char **dir_r)
{
	const char *sort = http_request_query(req, "sort");
	const char *order = http_request_query(req, "order");
	*col_r = NULL;
	for (size_t i = 0; i < sizeof(wa_account_sorts) / sizeof(wa_account_sorts[0]); i++)
		if (sort == NULL || strcmp(sort, wa_account_sorts[i].name) == 0) {
			*col_r = wa_account_sorts[i].sql;
			break;
		}
	if (*col_r == NULL) {
		wa_error(
		    resp, 400, "sort",
		    "sort must be address, display_name, used_bytes, quota_bytes or created_at");
		return 1;
	}
	if (order != NULL && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0) {
		wa_error(resp, 400, "order", "order must be asc or desc");
		return 1;
	}
	*dir_r = order != NULL && strcmp(order, "desc") == 0 ? "DESC" : "ASC";
	return 0;
}

/* Count and page on one connection. */
static int wa_account_query(struct webadmin *wa, const char *const params[4], const char *sql,
                            int64_t *total_r, PGresult **page_r)
{
	PGconn *conn = db_pool_borrow(wa->pool, WA_BORROW_MS);
	if (conn == NULL)
		return -1;
	PGresult *count = db_exec(conn, "SELECT count(*) " WA_ACCOUNT_WHERE, 2, params);
	*page_r = count != NULL ? db_exec(conn, sql, 4, params) : NULL;
	db_pool_return(wa->pool, &conn);
	*total_r = wa_db_int(count, 0, 0);
	PQclear(count);
	return *page_r != NULL ? 0 : -1;
}

int wa_accounts_list(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	size_t offset, limit;
	const char *col, *dir;
	if (wa_paging(req, resp, &offset, &limit) != 0 ||
	    wa_account_order(req, resp, &col, &dir) != 0)
		return 0;
	const char *q = http_request_query(req, "q");
	const char *domain = http_request_query(req, "domain");
	char sql[1024], lim[24], off[24];
	/* Only fixed fragments are formatted in; values stay parameters. */
	snprintf(sql, sizeof(sql),
	         "SELECT " WA_ACCOUNT_COLS " " WA_ACCOUNT_WHERE
	         "ORDER BY %s %s, a.address LIMIT $3 OFFSET $4",
	         col, dir);
	snprintf(lim, sizeof(lim), "%zu", limit);
	snprintf(off, sizeof(off), "%zu", offset);
	const char *params[4] = {q != NULL ? q : "", domain != NULL ? domain : "", lim, off};
	int64_t total;
	PGresult *page;
	if (wa_account_query(wa, params, sql, &total, &page) < 0)
		return -1;
	json_t *items = json_array();
	for (int i = 0; i < PQntuples(page); i++)
		json_array_append_new(items, wa_account_row(page, i));
	PQclear(page);
	return wa_json(resp, 200,
	               json_pack("{s:o, s:I, s:I, s:I}", "items", items, "total", (json_int_t)total,
	                         "offset", (json_int_t)offset, "limit", (json_int_t)limit));
}

static json_t *wa_account_json(const struct directory_account *a)
{
	return json_pack("{s:s, s:s, s:b, s:b, s:I, s:I, s:s}", "address", a->address,
	                 "display_name", a->display_name, "admin", a->is_admin, "disabled",
	                 a->disabled, "quota_bytes", (json_int_t)a->quota_bytes, "used_bytes",
	                 (json_int_t)a->used_bytes, "source", a->ldap ? "ldap" : "local");
}

/* The field a directory message is about (it names it in words). */
static const char *wa_err_field(const char *err, const char *def)
{
	if (strcasestr(err, "password") != NULL)
		return "password";
	if (strcasestr(err, "name") != NULL && strcasestr(err, "address") == NULL)
		return "display_name";
	if (strcasestr(err, "quota") != NULL)
		return "quota_bytes";
	return def;
}

struct wa_account_form {
	const char *address, *password, *name;
	bool has_quota, has_admin, has_disabled;
	uint64_t quota;
	bool admin, disabled;
};

/* Reads the fields of an add (required: address, password) or an edit. */
static int wa_account_form_read(json_t *o, bool add, struct http_response *resp,
                                struct wa_account_form *f)
{
	memset(f, 0, sizeof(*f));
	if (add && wa_field_str(o, "address", true, ADDRESS_MAX, resp, &f->address) != 0)
		return 1;
	if (wa_field_str(o, "password", add, DIR_PASSWORD_MAX, resp, &f->password) != 0 ||
	    wa_field_str(o, "display_name", false, DIR_NAME_MAX, resp, &f->name) != 0 ||
	    wa_field_size(o, "quota_bytes", resp, &f->has_quota, &f->quota) != 0 ||
	    wa_field_bool(o, "admin", resp, &f->has_admin, &f->admin) != 0 ||
	    wa_field_bool(o, "disabled", resp, &f->has_disabled, &f->disabled) != 0)
		return 1;
	if (f->password != NULL && f->password[0] == '\0') {
		wa_error(resp, 400, "password", "password must not be empty");
		return 1;
	}
	return 0;
}

/* Applies the optional parts of a form to an existing account. */
static enum directory_err wa_account_apply(struct webadmin *wa, const char *address,
                                           const struct wa_account_form *f, bool add, char *err,
                                           const char **field_r)
{
	enum directory_err e = DIR_OK;
	if (!add && f->name != NULL &&
	    (e = directory_account_set_name(wa->dir, address, f->name, err)))
		*field_r = "display_name";
	else if (!add && f->password != NULL &&
	         (e = directory_account_set_password(wa->dir, address, f->password, err)))
		*field_r = "password";
	else if (f->has_quota && (e = directory_account_set_quota(wa->dir, address, f->quota, err)))
		*field_r = "quota_bytes";
	else if (f->has_admin && (e = directory_account_set_admin(wa->dir, address, f->admin, err)))
		*field_r = "admin";
	else if (f->has_disabled &&
	         (e = directory_account_set_disabled(wa->dir, address, f->disabled, err)))
		*field_r = "disabled";
	return e;
}

int wa_accounts_add(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	json_t *o;
	if (wa_body_object(req, resp, &o) != 0)
		return 0;
	struct wa_account_form f;
	struct directory_account acct;
	char err[DIR_ERROR_SIZE];
	const char *field = "address";
	int r = 0;
	if (wa_account_form_read(o, true, resp, &f) != 0)
		goto out;
	enum directory_err e =
	    directory_account_add(wa->dir, f.address, f.password, f.name, NULL, err);
	if (e != DIR_OK) {
		wa_dir_error(resp, e, err, wa_err_field(err, "address"));
		goto out;
	}
	if ((e = wa_account_apply(wa, f.address, &f, true, err, &field)) != DIR_OK ||
	    (e = directory_account_get(wa->dir, f.address, &acct, err)) != DIR_OK) {
		wa_dir_error(resp, e, err, field);
		goto out;
	}
	log_info("event=web_account_add user=%s by=%s", acct.address, wa_auth_of(req)->address);
	r = wa_json(resp, 201, wa_account_json(&acct));
out:
	json_decref(o);
	return r;
}

/* The account named by the path's {address}: 0, or 1 after a 404. */
static int wa_account_of_path(struct webadmin *wa, const struct http_request *req,
                              struct http_response *resp, struct directory_account *acct)
{
	char err[DIR_ERROR_SIZE];
	enum directory_err e =
	    directory_account_get(wa->dir, http_request_param(req, "address"), acct, err);
	if (e == DIR_OK)
		return 0;
	wa_dir_error(resp, e, err, "address");
	return 1;
}

int wa_accounts_get(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct directory_account acct;
	if (wa_account_of_path(ctx, req, resp, &acct) != 0)
		return 0;
	return wa_json(resp, 200, wa_account_json(&acct));
}

/* An administrator cannot lock themselves out from the browser. */
static bool wa_is_self(const struct http_request *req, const struct directory_account *acct)
{
	return wa_auth_of(req)->account_id == acct->id;
}

int wa_accounts_update(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	json_t *o;
	if (wa_body_object(req, resp, &o) != 0)
		return 0;
	struct wa_account_form f;
	struct directory_account acct;
	char err[DIR_ERROR_SIZE];
	const char *field = "address";
	int r = 0;
	enum directory_err e;
	if (wa_account_form_read(o, false, resp, &f) != 0 ||
	    wa_account_of_path(wa, req, resp, &acct) != 0)
		goto out;
	if (wa_is_self(req, &acct) &&
	    ((f.has_admin && !f.admin) || (f.has_disabled && f.disabled))) {
		wa_error(
		    resp, 400, f.has_admin && !f.admin ? "admin" : "disabled",
		    "you cannot take the administrator role from, or disable, your own account");
		goto out;
	}
	if ((e = wa_account_apply(wa, acct.address, &f, false, err, &field)) != DIR_OK) {
		wa_dir_error(resp, e, err, field);
		goto out;
	}
	/* A reset password or a disabled account ends its browser sessions. */
	if (f.password != NULL || (f.has_disabled && f.disabled))
		wa_sessions_end(wa, acct.id,
		                wa_is_self(req, &acct) ? wa_auth_of(req)->token_bytea : NULL);
	if ((e = directory_account_get(wa->dir, acct.address, &acct, err)) != DIR_OK) {
		wa_dir_error(resp, e, err, "address");
		goto out;
	}
	log_info("event=web_account_update user=%s by=%s", acct.address, wa_auth_of(req)->address);
	r = wa_json(resp, 200, wa_account_json(&acct));
out:
	json_decref(o);
	return r;
}

int wa_accounts_remove(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	struct directory_account acct;
	char err[DIR_ERROR_SIZE];
	enum directory_err e;
	if (wa_account_of_path(wa, req, resp, &acct) != 0 || !wa_confirmed(req, resp, acct.address))
		return 0;
	if (wa_is_self(req, &acct)) {
		wa_error(resp, 400, "address", "you cannot remove your own account");
		return 0;
	}
	if ((e = directory_account_remove(wa->dir, acct.address, err)) != DIR_OK) {
		wa_dir_error(resp, e, err, "address");
		return 0;
	}
	log_info("event=web_account_remove user=%s by=%s", acct.address, wa_auth_of(req)->address);
	return wa_json(resp, 200, json_pack("{s:s}", "removed", acct.address));
}
