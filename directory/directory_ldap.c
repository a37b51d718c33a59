/* directory_ldap.c - the LDAP side of the directory: users are searched
 * with a pooled service connection, logins are checked by binding as the
 * user's DN on a separate connection (password hashes are never read),
 * addresses and groups are looked up with a short cache, and LDAP users get
 * an account in the store (source 'ldap') the first time they are seen. */
#include "ldap-private.h"

#include "ldap-admin.h"
#include "log.h"
#include "strnum.h"
#include "xalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* How often the settings are read again (changes by `roost ldap set` or
 * the admin API of another process reach a running server this fast). */
#define LDAPX_RELOAD_S  2
#define LDAPX_CACHE_MAX 4096
#define LDAPX_LOGIN_MAX 256

struct ldapx_cache_entry {
	char key[ADDRESS_BUF_SIZE];
	time_t expires;
	enum directory_err err; /* DIR_OK or a permanent answer */
	int64_t *ids;
	size_t nids;
	char **remote;
	size_t nremote;
};

/* ---- database helpers ---- */

PGresult *ldapx_query(struct db_pool *pool, const char *sql, int n, const char *const *params,
                      const char *what, char *error_r)
{
	PGconn *conn = db_pool_borrow(pool, DIR_BORROW_TIMEOUT_MS);
	PGresult *res = conn == NULL ? NULL : db_exec(conn, sql, n, params);
	db_pool_return(pool, &conn);
	if (res == NULL)
		directory_error(error_r, DIR_ETEMP, "database error while %s", what);
	return res;
}

enum directory_err ldapx_command(PGconn *conn, const char *sql, int n, const char *const *params,
                                 const char *what, char *error_r)
{
	PGresult *res = db_exec(conn, sql, n, params);
	if (res == NULL)
		return directory_error(error_r, DIR_ETEMP, "database error while %s", what);
	PQclear(res);
	return DIR_OK;
}

/* ---- backend state ---- */

static struct ldap_backend *backend(struct directory *dir)
{
	return dir->ldap;
}

struct ldap_config *ldapx_backend_config(struct directory *dir, char *error_r)
{
	struct ldap_backend *b = backend(dir);
	time_t now = time(NULL);
	pthread_mutex_lock(&b->lock);
	if (b->cfg == NULL || now - b->cfg_loaded >= LDAPX_RELOAD_S) {
		struct ldap_config *fresh = NULL;
		if (ldapx_config_load(dir->pool, &fresh, error_r) == DIR_OK) {
			ldapx_config_unref(&b->cfg);
			b->cfg = fresh;
			b->cfg_loaded = now;
		}
	}
	struct ldap_config *c = b->cfg;
	if (c != NULL && b->service == NULL) {
		/* Sized by the settings first read; a new size needs a restart. */
		b->service = ldapx_pool_create(c->pool_size, true);
		b->binders = ldapx_pool_create(c->pool_size, false);
	}
	if (c != NULL)
		atomic_fetch_add(&c->refs, 1);
	pthread_mutex_unlock(&b->lock);
	if (c == NULL)
		directory_error(error_r, DIR_ETEMP, "cannot read the LDAP settings");
	return c;
}

bool directory_ldap_enabled(struct directory *dir)
{
	char err[DIR_ERROR_SIZE];
	struct ldap_config *c = ldapx_backend_config(dir, err);
	bool on = c != NULL && c->enabled;
	ldapx_config_unref(&c);
	return on;
}

static void cache_entry_clear(struct ldapx_cache_entry *e)
{
	for (size_t i = 0; i < e->nremote; i++)
		free(e->remote[i]);
	free(e->remote);
	free(e->ids);
	memset(e, 0, sizeof(*e));
}

static void cache_clear(struct ldap_backend *b)
{
	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; i < b->ncache; i++)
		cache_entry_clear(&b->cache[i]);
	free(b->cache);
	b->cache = NULL;
	b->ncache = 0;
	pthread_mutex_unlock(&b->lock);
}

/* Forgets cached lookups and settings: after a settings change or a sync. */
void ldapx_backend_invalidate(struct directory *dir)
{
	struct ldap_backend *b = backend(dir);
	cache_clear(b);
	pthread_mutex_lock(&b->lock);
	b->cfg_loaded = 0;
	pthread_mutex_unlock(&b->lock);
}

int directory_ldap_attach(struct directory *dir, const char **error_r)
{
	(void)error_r;
	/* Settings and connection pools come at the first use. */
	struct ldap_backend *b = xcalloc(1, sizeof(*b));
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->sync_cond, NULL);
	dir->ldap = b;
	return 0;
}

void directory_ldap_detach(struct directory *dir)
{
	struct ldap_backend *b = backend(dir);
	if (b == NULL)
		return;
	directory_sync_stop(dir);
	cache_clear(b);
	ldapx_pool_destroy(&b->service);
	ldapx_pool_destroy(&b->binders);
	ldapx_config_unref(&b->cfg);
	pthread_cond_destroy(&b->sync_cond);
	pthread_mutex_destroy(&b->lock);
	free(b);
	dir->ldap = NULL;
}

/* ---- searching ---- */

/* Splits a space-separated attribute list into out (NULL-terminated). */
static size_t attrs_add(char **out, size_t n, size_t max, char *list)
{
	char *save = NULL;
	for (char *t = strtok_r(list, " ,", &save); t != NULL && n + 1 < max;
	     t = strtok_r(NULL, " ,", &save))
		out[n++] = t;
	out[n] = NULL;
	return n;
}

/* One search with a service connection; retried once on a fresh
 * connection when the pooled one turns out broken. *res_r is set on
 * DIR_OK (possibly with no entries). */
static enum directory_err ldapx_search(struct directory *dir, const struct ldap_config *cfg,
                                       const char *base, int scope, const char *filter,
                                       char **attrs, int sizelimit, LDAPMessage **res_r,
                                       char *error_r)
{
	struct timeval tv = {.tv_sec = (time_t)cfg->timeout_s};
	int rc = LDAP_SERVER_DOWN;
	*res_r = NULL;
	for (int attempt = 0; attempt < 2; attempt++) {
		LDAP *ld = ldapx_pool_get(backend(dir)->service, cfg, error_r);
		if (ld == NULL)
			return DIR_ETEMP;
		rc = ldap_search_ext_s(ld, base, scope, filter, attrs, 0, NULL, NULL, &tv,
		                       sizelimit, res_r);
		bool broken = ldapx_is_temporary(rc);
		ldapx_pool_put(backend(dir)->service, &ld, broken);
		if (rc == LDAP_SUCCESS || rc == LDAP_SIZELIMIT_EXCEEDED)
			return DIR_OK;
		if (*res_r != NULL)
			ldap_msgfree(*res_r);
		*res_r = NULL;
		if (rc == LDAP_NO_SUCH_OBJECT)
			return directory_error(error_r, DIR_ENOTFOUND, "no such LDAP entry");
		if (!broken)
			break;
	}
	log_warn("event=ldap_search_failed error=\"%s\"", ldap_err2string(rc));
	if (ldapx_is_temporary(rc))
		return directory_error(error_r, DIR_ETEMP, "LDAP: %s", ldap_err2string(rc));
	return directory_error(error_r, DIR_EINVALID, "LDAP search refused: %s",
	                       ldap_err2string(rc));
}

static const char *user_base(const struct ldap_config *cfg)
{
	return cfg->base_dn;
}

static const char *group_base(const struct ldap_config *cfg)
{
	return cfg->group_base[0] != '\0' ? cfg->group_base : cfg->base_dn;
}

/* The attributes read for a user; list_r holds the split strings. */
static void user_attrs(const struct ldap_config *cfg, char **attrs, size_t max, char **list_r)
{
	struct buf b;
	buf_init(&b, 4096);
	buf_printf(&b, "%s %s %s %s %s %s", cfg->mail_attr, cfg->alt_attrs, cfg->name_attr,
	           cfg->quota_attr, cfg->disabled_attr, cfg->member_of_attr);
	*list_r = buf_steal(&b, NULL);
	if (*list_r == NULL)
		*list_r = xstrdup("");
	attrs_add(attrs, 0, max, *list_r);
}

/* ---- reading entries ---- */

void ldapx_user_free(struct ldapx_user *u)
{
	for (size_t i = 0; i < u->nalt; i++)
		free(u->alt[i]);
	free(u->alt);
	ldap_memfree(u->dn);
	memset(u, 0, sizeof(*u));
}

/* The address in value (after the configured prefix, if any) as a lookup
 * key. false if the value is not an address (or lacks the prefix). */
static bool value_address(const struct ldap_config *cfg, const struct berval *v,
                          char key[ADDRESS_BUF_SIZE])
{
	struct address a;
	const char *why;
	size_t plen = strlen(cfg->alt_prefix);
	const char *s = v->bv_val;
	size_t n = v->bv_len;
	if (plen > 0 && n > plen && strncasecmp(s, cfg->alt_prefix, plen) == 0) {
		s += plen;
		n -= plen;
	} else if (plen > 0 && memchr(s, ':', n) != NULL)
		return false; /* another kind of address (x500:, sip:) */
	if (address_parse(s, n, &a, &why) < 0 || a.domain_literal)
		return false;
	address_lookup_key(&a, key);
	return true;
}

static struct berval **entry_values(LDAP *ld, LDAPMessage *e, const char *attr)
{
	return attr[0] == '\0' ? NULL : ldap_get_values_len(ld, e, attr);
}

static void entry_alternates(const struct ldap_config *cfg, LDAP *ld, LDAPMessage *e,
                             struct ldapx_user *u)
{
	char *list = xstrdup(cfg->alt_attrs), *attrs[LDAPX_MAX_ATTRS + 1];
	attrs_add(attrs, 0, LDAPX_MAX_ATTRS + 1, list);
	for (size_t i = 0; attrs[i] != NULL; i++) {
		struct berval **vals = ldap_get_values_len(ld, e, attrs[i]);
		for (size_t j = 0; vals != NULL && vals[j] != NULL; j++) {
			char key[ADDRESS_BUF_SIZE];
			if (!value_address(cfg, vals[j], key) || strcmp(key, u->address) == 0 ||
			    u->nalt >= DIR_RESOLVE_MAX_RESULTS)
				continue;
			u->alt = xreallocarray(u->alt, u->nalt + 1, sizeof(*u->alt));
			u->alt[u->nalt++] = xstrdup(key);
		}
		ldap_value_free_len(vals);
	}
	free(list);
}

static bool entry_disabled(const struct ldap_config *cfg, struct berval **vals)
{
	if (vals == NULL || vals[0] == NULL)
		return false;
	char v[32];
	snprintf(v, sizeof(v), "%.*s", (int)vals[0]->bv_len, vals[0]->bv_val);
	if (cfg->disabled_mask == 0)
		return strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 ||
		       strcmp(v, "1") == 0;
	/* AD writes userAccountControl as a signed 32-bit number. */
	char *end = NULL;
	long long n = strtoll(v, &end, 10);
	return end != v && *end == '\0' && ((uint64_t)n & cfg->disabled_mask) != 0;
}

static void entry_name(const struct ldap_config *cfg, LDAP *ld, LDAPMessage *e,
                       struct ldapx_user *u)
{
	struct berval **vals = entry_values(ld, e, cfg->name_attr);
	if (vals != NULL && vals[0] != NULL &&
	    address_utf8_is_valid(vals[0]->bv_val, vals[0]->bv_len)) {
		char tmp[DIR_NAME_MAX + 1];
		size_t n = vals[0]->bv_len < DIR_NAME_MAX ? vals[0]->bv_len : DIR_NAME_MAX;
		memcpy(tmp, vals[0]->bv_val, n);
		tmp[n] = '\0';
		for (size_t i = 0; i < n; i++) {
			if ((unsigned char)tmp[i] < 0x20 || tmp[i] == 0x7f)
				tmp[i] = ' ';
		}
		directory_copy_name(u->name, tmp);
	}
	ldap_value_free_len(vals);
}

/* Fills u from a user entry. DIR_ENOTFOUND if it has no usable address. */
static enum directory_err entry_user(const struct ldap_config *cfg, LDAP *ld, LDAPMessage *e,
                                     struct ldapx_user *u, char *error_r)
{
	memset(u, 0, sizeof(*u));
	u->dn = ldap_get_dn(ld, e);
	struct berval **vals = entry_values(ld, e, cfg->mail_attr);
	bool ok = vals != NULL && vals[0] != NULL && value_address(cfg, vals[0], u->address);
	ldap_value_free_len(vals);
	if (!ok || u->dn == NULL) {
		log_warn("event=ldap_user_without_address dn=\"%s\"", u->dn ? u->dn : "");
		ldapx_user_free(u);
		return directory_error(error_r, DIR_ENOTFOUND, "the LDAP entry has no address");
	}
	entry_name(cfg, ld, e, u);
	entry_alternates(cfg, ld, e, u);
	vals = entry_values(ld, e, cfg->quota_attr);
	if (vals != NULL && vals[0] != NULL) {
		char q[32];
		snprintf(q, sizeof(q), "%.*s", (int)vals[0]->bv_len, vals[0]->bv_val);
		if (str_to_u64(q, INT64_MAX, &u->quota_bytes) < 0)
			u->quota_bytes = 0;
	}
	ldap_value_free_len(vals);
	vals = entry_values(ld, e, cfg->disabled_attr);
	u->disabled = entry_disabled(cfg, vals);
	ldap_value_free_len(vals);
	return DIR_OK;
}

/* Runs a user search and reads the single entry it must find. */
static enum directory_err search_user(struct directory *dir, const struct ldap_config *cfg,
                                      const char *base, int scope, const char *filter,
                                      struct ldapx_user *u, char *error_r)
{
	char *list, *attrs[4 * LDAPX_MAX_ATTRS];
	LDAPMessage *res = NULL;
	memset(u, 0, sizeof(*u));
	user_attrs(cfg, attrs, sizeof(attrs) / sizeof(attrs[0]), &list);
	enum directory_err e = ldapx_search(dir, cfg, base, scope, filter, attrs, 2, &res, error_r);
	free(list);
	if (e != DIR_OK)
		return e;
	/* The entries are parsed without a connection: libldap only needs a
	 * handle for error state, any initialised one will do. */
	LDAP *ld = NULL;
	ldap_initialize(&ld, NULL);
	int n = ldap_count_entries(ld, res);
	if (n == 1)
		e = entry_user(cfg, ld, ldap_first_entry(ld, res), u, error_r);
	else
		e = directory_error(error_r, DIR_ENOTFOUND,
		                    n == 0 ? "no such LDAP user"
		                           : "more than one LDAP user matches");
	if (n > 1)
		log_warn("event=ldap_user_ambiguous filter=\"%s\"", filter);
	ldap_unbind_ext_s(ld, NULL, NULL);
	ldap_msgfree(res);
	return e;
}

enum directory_err ldapx_find_user(struct directory *dir, const struct ldap_config *cfg,
                                   const char *login, struct ldapx_user *u, char *error_r)
{
	struct buf f, attrs;
	buf_init(&f, 8192);
	buf_init(&attrs, 1024);
	buf_printf(&attrs, "%s %s", cfg->login_attrs, cfg->mail_attr);
	enum directory_err e = DIR_EINVALID;
	if (ldapx_filter_any(&f, cfg->user_filter, buf_cstr(&attrs), login, strlen(login)) == 0)
		e = search_user(dir, cfg, user_base(cfg), LDAP_SCOPE_SUBTREE, buf_cstr(&f), u,
		                error_r);
	buf_free(&f);
	buf_free(&attrs);
	return e;
}

enum directory_err ldapx_read_user(struct directory *dir, const struct ldap_config *cfg,
                                   const char *dn, struct ldapx_user *u, char *error_r)
{
	const char *filter = cfg->user_filter[0] != '\0' ? cfg->user_filter : "(objectClass=*)";
	return search_user(dir, cfg, dn, LDAP_SCOPE_BASE, filter, u, error_r);
}

/* The user whose primary or alternate address is key. */
static enum directory_err find_user_by_address(struct directory *dir, const struct ldap_config *cfg,
                                               const char *key, struct ldapx_user *u, char *error_r)
{
	struct buf f;
	buf_init(&f, 8192);
	int rc = buf_printf(&f, "(&%s(|(%s=", cfg->user_filter, cfg->mail_attr);
	rc = rc < 0 ? rc : ldapx_filter_escape(&f, key, strlen(key));
	rc = rc < 0 ? rc : buf_append_char(&f, ')');
	char *list = xstrdup(cfg->alt_attrs), *attrs[LDAPX_MAX_ATTRS + 1];
	attrs_add(attrs, 0, LDAPX_MAX_ATTRS + 1, list);
	for (size_t i = 0; rc == 0 && attrs[i] != NULL; i++) {
		rc = buf_printf(&f, "(%s=", attrs[i]);
		rc =
		    rc < 0 ? rc : ldapx_filter_escape(&f, cfg->alt_prefix, strlen(cfg->alt_prefix));
		rc = rc < 0 ? rc : ldapx_filter_escape(&f, key, strlen(key));
		rc = rc < 0 ? rc : buf_append_char(&f, ')');
	}
	rc = rc < 0 ? rc : buf_append_str(&f, "))");
	free(list);
	enum directory_err e = DIR_EINVALID;
	if (rc == 0)
		e = search_user(dir, cfg, user_base(cfg), LDAP_SCOPE_SUBTREE, buf_cstr(&f), u,
		                error_r);
	buf_free(&f);
	return e;
}

/* ---- groups ---- */

/* DNs of entries under group_base matching (&group_filter(attr=value)). */
static enum directory_err search_dns(struct directory *dir, const struct ldap_config *cfg,
                                     const char *attr, const char *value, char ***dns_r,
                                     size_t *n_r, char *error_r)
{
	struct buf f;
	LDAPMessage *res = NULL;
	char *noattrs[] = {LDAP_NO_ATTRS, NULL};
	buf_init(&f, 8192);
	*dns_r = NULL;
	*n_r = 0;
	enum directory_err e = DIR_EINVALID;
	if (buf_printf(&f, "(&%s(%s=", cfg->group_filter, attr) == 0 &&
	    ldapx_filter_escape(&f, value, strlen(value)) == 0 && buf_append_str(&f, "))") == 0)
		e = ldapx_search(dir, cfg, group_base(cfg), LDAP_SCOPE_SUBTREE, buf_cstr(&f),
		                 noattrs, DIR_RESOLVE_MAX_RESULTS, &res, error_r);
	buf_free(&f);
	if (e != DIR_OK)
		return e;
	LDAP *ld = NULL;
	ldap_initialize(&ld, NULL);
	for (LDAPMessage *m = ldap_first_entry(ld, res); m != NULL; m = ldap_next_entry(ld, m)) {
		char *dn = ldap_get_dn(ld, m);
		if (dn == NULL)
			continue;
		*dns_r = xreallocarray(*dns_r, *n_r + 1, sizeof(char *));
		(*dns_r)[(*n_r)++] = xstrdup(dn);
		ldap_memfree(dn);
	}
	ldap_unbind_ext_s(ld, NULL, NULL);
	ldap_msgfree(res);
	return DIR_OK;
}

static void strings_free(char **s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(s[i]);
	free(s);
}

/* DNs compared the way the directory does: normalised, case-insensitive. */
static bool dn_equal(const char *a, const char *b)
{
	char *na = NULL, *nb = NULL;
	bool eq;
	if (ldap_dn_normalize(a, LDAP_DN_FORMAT_LDAP, &na, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS ||
	    ldap_dn_normalize(b, LDAP_DN_FORMAT_LDAP, &nb, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS)
		eq = strcasecmp(a, b) == 0;
	else
		eq = strcasecmp(na, nb) == 0;
	ldap_memfree(na);
	ldap_memfree(nb);
	return eq;
}

struct dn_set {
	char **dns;
	size_t n;
};

/* Adds dn; false if it was there already (a loop or a diamond). */
static bool dn_set_add(struct dn_set *s, const char *dn)
{
	for (size_t i = 0; i < s->n; i++) {
		if (dn_equal(s->dns[i], dn))
			return false;
	}
	s->dns = xreallocarray(s->dns, s->n + 1, sizeof(char *));
	s->dns[s->n++] = xstrdup(dn);
	return true;
}

/* Whether dn is, directly or through nested groups, a member of the admin
 * group. Walks upwards from dn: groups listing it, groups listing those... */
static enum directory_err member_of_admin(struct directory *dir, const struct ldap_config *cfg,
                                          const char *dn, bool *admin_r, char *error_r)
{
	struct dn_set seen = {0};
	struct dn_set todo = {0};
	enum directory_err e = DIR_OK;
	*admin_r = false;
	dn_set_add(&todo, dn);
	for (size_t i = 0; i < todo.n && !*admin_r && e == DIR_OK && i < DIR_RESOLVE_MAX_RESULTS;
	     i++) {
		char **parents = NULL;
		size_t np = 0;
		e = search_dns(dir, cfg, cfg->member_attr, todo.dns[i], &parents, &np, error_r);
		for (size_t j = 0; j < np && e == DIR_OK; j++) {
			if (dn_equal(parents[j], cfg->admin_group))
				*admin_r = true;
			else if (dn_set_add(&seen, parents[j]))
				dn_set_add(&todo, parents[j]);
		}
		strings_free(parents, np);
	}
	strings_free(seen.dns, seen.n);
	strings_free(todo.dns, todo.n);
	return e;
}

static enum directory_err user_admin(struct directory *dir, const struct ldap_config *cfg,
                                     struct ldapx_user *u, char *error_r)
{
	u->is_admin = false;
	if (cfg->admin_group[0] == '\0')
		return DIR_OK;
	return member_of_admin(dir, cfg, u->dn, &u->is_admin, error_r);
}

/* ---- accounts in the store ---- */

enum directory_err ldapx_domain_served(struct directory *dir, const struct ldap_config *cfg,
                                       const char *domain, bool *served_r, char *error_r)
{
	*served_r = false;
	if (cfg->domains[0] != '\0') {
		char *list = xstrdup(cfg->domains), *save = NULL;
		bool listed = false;
		for (char *t = strtok_r(list, " ,", &save); t != NULL && !listed;
		     t = strtok_r(NULL, " ,", &save))
			listed = strcasecmp(t, domain) == 0;
		free(list);
		if (!listed)
			return DIR_OK;
	}
	return dir->ops->is_local_domain(dir, domain, served_r, error_r);
}

/* "local": a local account with a password, never taken over by LDAP. */
#define LDAPX_ACCOUNT_COLS                                                                         \
	"id, CASE WHEN source = 'local' AND password_hash IS NOT NULL THEN 'local' ELSE 'ldap' "   \
	"END, "                                                                                    \
	"display_name, quota_bytes, is_admin, disabled, external_id"

/* The stored row for key: *found_r, and whether it needs u's values. */
static enum directory_err account_row(PGconn *conn, const char *key, const struct ldapx_user *u,
                                      int64_t *id_r, bool *found_r, bool *stale_r, bool *local_r,
                                      char *error_r)
{
	const char *params[] = {key};
	PGresult *res = db_exec(
	    conn, "SELECT " LDAPX_ACCOUNT_COLS " FROM accounts WHERE address = $1", 1, params);
	if (res == NULL)
		return directory_error(error_r, DIR_ETEMP,
		                       "database error while reading an account");
	*found_r = PQntuples(res) == 1;
	if (*found_r) {
		char quota[24];
		snprintf(quota, sizeof(quota), "%" PRIu64, u->quota_bytes);
		uint64_t id = 0;
		str_to_u64(PQgetvalue(res, 0, 0), INT64_MAX, &id);
		*id_r = (int64_t)id;
		*local_r = strcmp(PQgetvalue(res, 0, 1), "local") == 0;
		*stale_r = strcmp(PQgetvalue(res, 0, 2), u->name) != 0 ||
		           strcmp(PQgetvalue(res, 0, 3), quota) != 0 ||
		           (PQgetvalue(res, 0, 4)[0] == 't') != u->is_admin ||
		           (PQgetvalue(res, 0, 5)[0] == 't') != u->disabled ||
		           PQgetisnull(res, 0, 6) || strcmp(PQgetvalue(res, 0, 6), u->dn) != 0;
	}
	PQclear(res);
	return DIR_OK;
}

static enum directory_err account_copy(PGconn *conn, int64_t id, const struct ldapx_user *u,
                                       char *error_r)
{
	char ids[24], quota[24];
	snprintf(ids, sizeof(ids), "%" PRId64, id);
	snprintf(quota, sizeof(quota), "%" PRIu64, u->quota_bytes);
	const char *params[] = {ids,
	                        u->dn,
	                        u->name,
	                        quota,
	                        u->is_admin ? "true" : "false",
	                        u->disabled ? "true" : "false"};
	/* password_hash IS NULL: a half-provisioned row (see ldapx_account_ensure);
	 * a local account with a password is never taken over. */
	return ldapx_command(conn,
	                     "UPDATE accounts SET source = 'ldap', external_id = $2, "
	                     "display_name = $3, quota_bytes = $4::bigint, "
	                     "is_admin = $5::boolean, disabled = $6::boolean, updated_at = now() "
	                     "WHERE id = $1::bigint AND (source = 'ldap' OR password_hash IS NULL)",
	                     6, params, "updating an account", error_r);
}

/* Reads the row and, if needed, copies u's values; *found_r false if none. */
static enum directory_err account_sync_row(struct directory *dir, const struct ldapx_user *u,
                                           int64_t *id_r, bool *found_r, bool *changed_r,
                                           char *error_r)
{
	bool stale = false, local = false;
	PGconn *conn = db_pool_borrow(dir->pool, DIR_BORROW_TIMEOUT_MS);
	if (conn == NULL)
		return directory_error(error_r, DIR_ETEMP, "database unavailable");
	enum directory_err e =
	    account_row(conn, u->address, u, id_r, found_r, &stale, &local, error_r);
	if (e == DIR_OK && *found_r && local)
		e = directory_error(error_r, DIR_EEXISTS,
		                    "%s is a local account; the LDAP entry is ignored", u->address);
	else if (e == DIR_OK && *found_r && stale)
		e = account_copy(conn, *id_r, u, error_r);
	if (changed_r != NULL)
		*changed_r = stale;
	db_pool_return(dir->pool, &conn);
	return e;
}

enum directory_err ldapx_account_ensure(struct directory *dir, const struct ldapx_user *u,
                                        int64_t *id_r, bool *changed_r, char *error_r)
{
	bool found = false;
	enum directory_err e = account_sync_row(dir, u, id_r, &found, changed_r, error_r);
	if (e != DIR_OK || found)
		return e;
	struct address a;
	const char *why;
	if (address_parse(u->address, strlen(u->address), &a, &why) < 0)
		return directory_error(error_r, DIR_EINVALID, "invalid LDAP address");
	/* The local backend's creation path (account and default mailboxes in
	 * one transaction), without a password; then marked as LDAP's. Should
	 * the second step fail, the row has no password and is completed at
	 * the next login or lookup. */
	int64_t id = 0;
	e = dir->ops->account_add(dir, &a, u->address, NULL, u->name, &id, error_r);
	if (e == DIR_OK)
		log_info("event=ldap_account_provisioned account_id=%" PRId64, id);
	if (e != DIR_OK && e != DIR_EEXISTS)
		return e;
	return account_sync_row(dir, u, id_r, &found, NULL, error_r) == DIR_OK && found
	           ? DIR_OK
	           : directory_error(error_r, DIR_ETEMP, "cannot provision %s", u->address);
}

/* Full view of a user: entry, admin role, account. */
enum directory_err ldapx_user_provision(struct directory *dir, const struct ldap_config *cfg,
                                        struct ldapx_user *u, int64_t *id_r, bool *changed_r,
                                        char *error_r)
{
	bool served = false;
	char domain[ADDRESS_BUF_SIZE];
	const char *at = strrchr(u->address, '@');
	snprintf(domain, sizeof(domain), "%s", at != NULL ? at + 1 : "");
	enum directory_err e = ldapx_domain_served(dir, cfg, domain, &served, error_r);
	if (e == DIR_OK && !served)
		e = directory_error(error_r, DIR_ENOTFOUND, "%s is not a domain served from LDAP",
		                    domain);
	if (e == DIR_OK)
		e = user_admin(dir, cfg, u, error_r);
	if (e == DIR_OK)
		e = ldapx_account_ensure(dir, u, id_r, changed_r, error_r);
	return e;
}

/* ---- authentication ---- */

/* A bind as dn on a bind connection: LDAP_SUCCESS, LDAP_INVALID_CREDENTIALS
 * or another code. A broken pooled connection is replaced once. */
static int user_bind(struct directory *dir, const struct ldap_config *cfg, const char *dn,
                     const char *password)
{
	int rc = LDAP_SERVER_DOWN;
	char err[DIR_ERROR_SIZE];
	for (int attempt = 0; attempt < 2; attempt++) {
		LDAP *ld = ldapx_pool_get(backend(dir)->binders, cfg, err);
		if (ld == NULL)
			return LDAP_SERVER_DOWN;
		rc = ldapx_simple_bind(ld, dn, password);
		bool broken = ldapx_is_temporary(rc);
		ldapx_pool_put(backend(dir)->binders, &ld, broken);
		if (!broken)
			break;
	}
	return rc;
}

static enum directory_auth auth_with(struct directory *dir, const struct ldap_config *cfg,
                                     const char *login, const char *password,
                                     struct directory_account *account_r)
{
	char err[DIR_ERROR_SIZE], q[LOG_QUOTE_MAX];
	struct ldapx_user u = {0};
	enum directory_err e = ldapx_find_user(dir, cfg, login, &u, err);
	if (e != DIR_OK)
		return e == DIR_ETEMP ? DIR_AUTH_TEMPFAIL : DIR_AUTH_FAILED;
	int rc = user_bind(dir, cfg, u.dn, password);
	enum directory_auth result = DIR_AUTH_FAILED;
	int64_t id = 0;
	if (rc == LDAP_SUCCESS && u.disabled)
		result = DIR_AUTH_DISABLED;
	else if (rc == LDAP_SUCCESS) {
		e = ldapx_user_provision(dir, cfg, &u, &id, NULL, err);
		if (e == DIR_OK)
			e = dir->ops->account_get_by_id(dir, id, account_r, err);
		result = e == DIR_OK      ? DIR_AUTH_OK
		         : e == DIR_ETEMP ? DIR_AUTH_TEMPFAIL
		                          : DIR_AUTH_FAILED;
		if (e != DIR_OK)
			log_warn("event=ldap_login_unusable user=%s error=\"%s\"",
			         log_quote(q, sizeof(q), u.address), err);
	} else if (ldapx_is_temporary(rc))
		result = DIR_AUTH_TEMPFAIL;
	if (result == DIR_AUTH_OK && account_r->disabled)
		result = DIR_AUTH_DISABLED;
	ldapx_user_free(&u);
	return result;
}

enum directory_auth directory_ldap_authenticate(struct directory *dir, const char *login,
                                                const char *password,
                                                struct directory_account *account_r)
{
	char err[DIR_ERROR_SIZE];
	if (strnlen(login, LDAPX_LOGIN_MAX + 1) > LDAPX_LOGIN_MAX || password[0] == '\0')
		return DIR_AUTH_FAILED;
	struct ldap_config *cfg = ldapx_backend_config(dir, err);
	if (cfg == NULL)
		return DIR_AUTH_TEMPFAIL;
	struct address a;
	const char *why;
	bool served = true;
	enum directory_auth r = DIR_AUTH_FAILED;
	/* An address in a domain LDAP does not serve is not LDAP's to answer
	 * (nor to fail temporarily when the directory is down). */
	if (cfg->enabled && address_parse(login, strlen(login), &a, &why) == 0 &&
	    ldapx_domain_served(dir, cfg, a.domain, &served, err) != DIR_OK)
		r = DIR_AUTH_TEMPFAIL;
	else if (cfg->enabled && served)
		r = auth_with(dir, cfg, login, password, account_r);
	ldapx_config_unref(&cfg);
	return r;
}

/* ---- resolution: users and groups by address ---- */

struct group_walk {
	struct directory *dir;
	const struct ldap_config *cfg;
	struct directory_resolution *r;
	struct dn_set seen;
	char *error_r;
};

static enum directory_err walk_group(struct group_walk *w, const char *dn, unsigned depth);

/* Adds a member user: its account (provisioned) or, outside our domains,
 * its address as a remote recipient. */
static enum directory_err walk_user(struct group_walk *w, struct ldapx_user *u)
{
	int64_t id = 0;
	char q[LOG_QUOTE_MAX];
	if (u->disabled)
		return DIR_OK;
	enum directory_err e = ldapx_user_provision(w->dir, w->cfg, u, &id, NULL, w->error_r);
	if (e == DIR_OK)
		return directory_resolution_add(w->r, id, NULL, w->error_r);
	if (e == DIR_ENOTFOUND)
		return directory_resolution_add(w->r, 0, u->address, w->error_r);
	if (e == DIR_ETEMP)
		return e;
	log_warn("event=ldap_member_skipped member=%s", log_quote(q, sizeof(q), u->address));
	return DIR_OK;
}

static enum directory_err walk_member(struct group_walk *w, const char *dn, unsigned depth)
{
	struct ldapx_user u = {0};
	char q[LOG_QUOTE_MAX];
	if (!dn_set_add(&w->seen, dn))
		return DIR_OK; /* a loop, or a member reached twice */
	enum directory_err e = ldapx_read_user(w->dir, w->cfg, dn, &u, w->error_r);
	if (e == DIR_OK) {
		e = walk_user(w, &u);
		ldapx_user_free(&u);
		return e;
	}
	if (e == DIR_ETEMP)
		return e;
	e = walk_group(w, dn, depth + 1);
	if (e == DIR_ENOTFOUND) {
		log_info("event=ldap_member_unknown member=%s", log_quote(q, sizeof(q), dn));
		return DIR_OK;
	}
	return e;
}

/* The members of the group entry at dn. DIR_ENOTFOUND if dn is no group. */
static enum directory_err walk_group(struct group_walk *w, const char *dn, unsigned depth)
{
	char *attrs[] = {w->cfg->member_attr, NULL};
	LDAPMessage *res = NULL;
	char q[LOG_QUOTE_MAX];
	if (depth > DIR_RESOLVE_MAX_DEPTH) {
		log_warn("event=ldap_group_too_deep group=%s", log_quote(q, sizeof(q), dn));
		return DIR_OK;
	}
	enum directory_err e = ldapx_search(w->dir, w->cfg, dn, LDAP_SCOPE_BASE,
	                                    w->cfg->group_filter, attrs, 1, &res, w->error_r);
	if (e != DIR_OK)
		return e;
	LDAP *ld = NULL;
	ldap_initialize(&ld, NULL);
	LDAPMessage *entry = ldap_first_entry(ld, res);
	struct berval **vals =
	    entry == NULL ? NULL : ldap_get_values_len(ld, entry, w->cfg->member_attr);
	e = entry == NULL ? DIR_ENOTFOUND : DIR_OK;
	for (size_t i = 0; vals != NULL && vals[i] != NULL && e == DIR_OK; i++) {
		char *member = xstrndup(vals[i]->bv_val, vals[i]->bv_len);
		e = walk_member(w, member, depth);
		free(member);
	}
	ldap_value_free_len(vals);
	ldap_unbind_ext_s(ld, NULL, NULL);
	ldap_msgfree(res);
	return e;
}

/* The group whose address is key: its DN, or DIR_ENOTFOUND. */
static enum directory_err find_group(struct directory *dir, const struct ldap_config *cfg,
                                     const char *key, char **dn_r, char *error_r)
{
	char **dns = NULL;
	size_t n = 0;
	*dn_r = NULL;
	if (cfg->group_mail_attr[0] == '\0')
		return directory_error(error_r, DIR_ENOTFOUND, "no group addresses");
	enum directory_err e = search_dns(dir, cfg, cfg->group_mail_attr, key, &dns, &n, error_r);
	if (e == DIR_OK && n != 1)
		e = directory_error(error_r, DIR_ENOTFOUND,
		                    n == 0 ? "no such group" : "more than one group matches");
	if (e == DIR_OK) {
		*dn_r = dns[0];
		dns[0] = NULL;
	}
	strings_free(dns, n);
	return e;
}

static enum directory_err lookup_group(struct directory *dir, const struct ldap_config *cfg,
                                       const char *key, struct directory_resolution *r,
                                       char *error_r)
{
	char *dn = NULL;
	enum directory_err e = find_group(dir, cfg, key, &dn, error_r);
	if (e != DIR_OK)
		return e;
	struct group_walk w = {.dir = dir, .cfg = cfg, .r = r, .error_r = error_r};
	dn_set_add(&w.seen, dn);
	e = walk_group(&w, dn, 0);
	strings_free(w.seen.dns, w.seen.n);
	free(dn);
	if (e == DIR_OK && r->naccounts + r->nremote == 0)
		e = directory_error(error_r, DIR_ENOTFOUND, "group %s has no valid members", key);
	return e;
}

/* A user or a group by address, without the cache. */
static enum directory_err lookup_address(struct directory *dir, const struct ldap_config *cfg,
                                         const char *key, struct directory_resolution *r,
                                         char *error_r)
{
	struct ldapx_user u = {0};
	int64_t id = 0;
	enum directory_err e = find_user_by_address(dir, cfg, key, &u, error_r);
	if (e == DIR_OK) {
		if (u.disabled)
			e = directory_error(error_r, DIR_EPERM, "account %s is disabled", key);
		else
			e = ldapx_user_provision(dir, cfg, &u, &id, NULL, error_r);
		if (e == DIR_OK)
			e = directory_resolution_add(r, id, NULL, error_r);
		ldapx_user_free(&u);
		return e;
	}
	if (e != DIR_ENOTFOUND)
		return e;
	return lookup_group(dir, cfg, key, r, error_r);
}

static bool cache_get(struct ldap_backend *b, const char *key, struct directory_resolution *r,
                      enum directory_err *err_r)
{
	time_t now = time(NULL);
	bool hit = false;
	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; i < b->ncache && !hit; i++) {
		struct ldapx_cache_entry *c = &b->cache[i];
		if (strcmp(c->key, key) != 0 || c->expires <= now)
			continue;
		hit = true;
		*err_r = c->err;
		for (size_t j = 0; j < c->nids; j++)
			directory_resolution_add(r, c->ids[j], NULL, NULL);
		for (size_t j = 0; j < c->nremote; j++)
			directory_resolution_add(r, 0, c->remote[j], NULL);
	}
	pthread_mutex_unlock(&b->lock);
	return hit;
}

static void cache_put(struct ldap_backend *b, unsigned ttl, const char *key, enum directory_err e,
                      const struct directory_resolution *r)
{
	time_t now = time(NULL);
	if (ttl == 0)
		return;
	pthread_mutex_lock(&b->lock);
	size_t slot = b->ncache;
	for (size_t i = 0; i < b->ncache; i++) {
		if (b->cache[i].expires <= now || strcmp(b->cache[i].key, key) == 0) {
			slot = i;
			break;
		}
	}
	if (slot == b->ncache && b->ncache < LDAPX_CACHE_MAX) {
		b->cache = xreallocarray(b->cache, ++b->ncache, sizeof(*b->cache));
		memset(&b->cache[slot], 0, sizeof(b->cache[slot]));
	} else if (slot == b->ncache)
		slot = (size_t)now % LDAPX_CACHE_MAX; /* full: evict one */
	struct ldapx_cache_entry *c = &b->cache[slot];
	cache_entry_clear(c);
	snprintf(c->key, sizeof(c->key), "%s", key);
	c->expires = now + (time_t)ttl;
	c->err = e;
	if (r->naccounts > 0) {
		c->ids = xcalloc(r->naccounts, sizeof(int64_t));
		memcpy(c->ids, r->accounts, r->naccounts * sizeof(int64_t));
	}
	c->nids = r->naccounts;
	c->remote = r->nremote == 0 ? NULL : xcalloc(r->nremote, sizeof(char *));
	for (size_t i = 0; i < r->nremote; i++)
		c->remote[c->nremote++] = xstrdup(r->remote[i]);
	pthread_mutex_unlock(&b->lock);
}

static enum directory_err resolve_key(struct directory *dir, const struct ldap_config *cfg,
                                      const char *key, struct directory_resolution *r,
                                      char *error_r)
{
	struct ldap_backend *b = backend(dir);
	enum directory_err e;
	if (cache_get(b, key, r, &e))
		return e == DIR_OK ? e
		                   : directory_error(error_r, e, "%s: %s (cached)", key,
		                                     directory_err_str(e));
	e = lookup_address(dir, cfg, key, r, error_r);
	/* Temporary failures are never cached: the next try asks again. */
	if (e != DIR_ETEMP)
		cache_put(b, cfg->cache_ttl_s, key, e, r);
	return e;
}

static enum directory_err resolve_with(struct directory *dir, const struct ldap_config *cfg,
                                       const struct address *a, struct directory_resolution *r,
                                       char *error_r)
{
	char key[ADDRESS_BUF_SIZE];
	bool served = false;
	struct address base;
	enum directory_err e = ldapx_domain_served(dir, cfg, a->domain, &served, error_r);
	if (e != DIR_OK || !served)
		return e != DIR_OK ? e : directory_error(error_r, DIR_ENOTFOUND, "not found");
	address_lookup_key(a, key);
	e = resolve_key(dir, cfg, key, r, error_r);
	if (e == DIR_ENOTFOUND &&
	    address_split_detail(a, dir->detail_separator, &base, NULL) == 1) {
		address_lookup_key(&base, key);
		directory_resolution_free(r);
		e = resolve_key(dir, cfg, key, r, error_r);
	}
	return e;
}

enum directory_err directory_ldap_resolve(struct directory *dir, const struct address *a,
                                          struct directory_resolution *r, char *error_r)
{
	struct ldap_config *cfg = ldapx_backend_config(dir, error_r);
	if (cfg == NULL)
		return DIR_ETEMP;
	enum directory_err e = cfg->enabled ? resolve_with(dir, cfg, a, r, error_r)
	                                    : directory_error(error_r, DIR_ENOTFOUND, "not found");
	ldapx_config_unref(&cfg);
	return e;
}

/* ---- for the admin API ---- */

/* Where a login would go: DIR_OK and *ldap_r for an LDAP account or none
 * (LDAP then decides), false for a local account with a password. */
enum directory_err ldapx_login_source(struct directory *dir, const char *key, bool *ldap_r)
{
	const char *params[] = {key};
	char err[DIR_ERROR_SIZE];
	PGresult *res = ldapx_query(dir->pool,
	                            "SELECT source = 'ldap' OR password_hash IS NULL FROM accounts "
	                            "WHERE address = $1",
	                            1, params, "looking up an account", err);
	if (res == NULL)
		return DIR_ETEMP;
	*ldap_r = PQntuples(res) == 0 || PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return DIR_OK;
}

static void report_user(struct buf *out, const struct ldapx_user *u)
{
	buf_printf(out, "dn: %s\naddress: %s\nname: %s\n", u->dn, u->address, u->name);
	for (size_t i = 0; i < u->nalt; i++)
		buf_printf(out, "alternate: %s\n", u->alt[i]);
	buf_printf(out, "quota: %" PRIu64 "\ndisabled: %s\nadmin: %s\n", u->quota_bytes,
	           u->disabled ? "yes" : "no", u->is_admin ? "yes" : "no");
}

static enum directory_err test_with(struct directory *dir, const struct ldap_config *cfg,
                                    const char *login, struct buf *out, char *error_r)
{
	LDAP *ld = NULL;
	const char *dn = cfg->bind_dn[0] != '\0' ? cfg->bind_dn : NULL;
	if (ldapx_connect(cfg, dn, cfg->bind_password, &ld, error_r) != LDAP_SUCCESS)
		return DIR_ETEMP;
	ldap_unbind_ext_s(ld, NULL, NULL);
	buf_printf(out, "connection: ok (%s)\n", dn != NULL ? "service bind" : "anonymous");
	if (login == NULL)
		return DIR_OK;
	struct ldapx_user u = {0};
	enum directory_err e = ldapx_find_user(dir, cfg, login, &u, error_r);
	if (e == DIR_ENOTFOUND) {
		struct address a;
		const char *why;
		char key[ADDRESS_BUF_SIZE];
		if (address_parse(login, strlen(login), &a, &why) == 0) {
			address_lookup_key(&a, key);
			e = find_user_by_address(dir, cfg, key, &u, error_r);
		}
	}
	if (e == DIR_OK)
		e = user_admin(dir, cfg, &u, error_r);
	if (e == DIR_OK)
		report_user(out, &u);
	ldapx_user_free(&u);
	return e;
}

enum directory_err directory_ldap_test(struct directory *dir, const char *login, struct buf *out,
                                       char *error_r)
{
	char scratch[DIR_ERROR_SIZE];
	char *err = error_r != NULL ? error_r : scratch;
	err[0] = '\0';
	ldapx_backend_invalidate(dir);
	struct ldap_config *cfg = ldapx_backend_config(dir, err);
	if (cfg == NULL)
		return DIR_ETEMP;
	enum directory_err e =
	    cfg->enabled ? test_with(dir, cfg, login, out, err)
	                 : directory_error(err, DIR_EINVALID, "LDAP is not configured (ldap urls)");
	ldapx_config_unref(&cfg);
	return e;
}
