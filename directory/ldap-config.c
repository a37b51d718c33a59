/* ldap-config.c - the LDAP settings: rows "ldap.<key>" of the settings
 * table, one table of keys with defaults, two presets, and immutable
 * snapshots shared by the threads (reference counted). */
#include "ldap-private.h"

#include "ldap-admin.h"
#include "log.h"
#include "strnum.h"
#include "xalloc.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Ordered by key, so a later "urls" row replaces the default list once. */
#define LDAPX_SETTINGS_SQL                                                                         \
	"SELECT substr(key, 6), value FROM settings WHERE key LIKE 'ldap.%' ORDER BY key"

const struct ldapx_setting ldapx_settings[] = {
    {"urls", LDAPX_URLS, "", "ldap:// or ldaps:// URLs, tried in turn (failover); empty: LDAP off"},
    {"starttls", LDAPX_BOOL, "yes", "StartTLS on ldap:// URLs"},
    {"tls_verify", LDAPX_BOOL, "yes", "verify the server certificate"},
    {"ca_file", LDAPX_TEXT, "", "PEM file of the CA certificates to trust (empty: system)"},
    {"bind_dn", LDAPX_TEXT, "", "service account DN (empty: anonymous searches)"},
    {"bind_password", LDAPX_SECRET, "", "service account password (never shown)"},
    {"base_dn", LDAPX_TEXT, "", "where users are searched"},
    {"user_filter", LDAPX_FILTER, "(objectClass=inetOrgPerson)", "what a user entry is"},
    {"login_attrs", LDAPX_TEXT, "uid mail", "attributes a login name is matched against"},
    {"mail_attr", LDAPX_TEXT, "mail", "primary address"},
    {"alt_attrs", LDAPX_TEXT, "mailLocalAddress", "alternate addresses"},
    {"alt_prefix", LDAPX_TEXT, "", "prefix of address values, e.g. smtp: (case-insensitive)"},
    {"name_attr", LDAPX_TEXT, "cn", "display name"},
    {"quota_attr", LDAPX_TEXT, "", "quota in bytes (empty: none)"},
    {"disabled_attr", LDAPX_TEXT, "", "disabled flag (empty: none)"},
    {"disabled_mask", LDAPX_UINT, "0", "bits of disabled_attr meaning disabled (0: TRUE/yes/1)"},
    {"group_base", LDAPX_TEXT, "", "where groups are searched (empty: base_dn)"},
    {"group_filter", LDAPX_FILTER, "(objectClass=groupOfNames)", "what a group entry is"},
    {"member_attr", LDAPX_TEXT, "member", "group attribute listing member DNs"},
    {"group_mail_attr", LDAPX_TEXT, "mail", "a group's address (a distribution list)"},
    {"member_of_attr", LDAPX_TEXT, "", "user attribute listing its groups (e.g. memberOf)"},
    {"admin_group", LDAPX_TEXT, "", "DN of the group whose members are administrators"},
    {"domains", LDAPX_TEXT, "", "local domains served from LDAP (empty: all)"},
    {"timeout", LDAPX_UINT, "5", "seconds for connecting and for each operation"},
    {"sync_interval", LDAPX_UINT, "900", "seconds between syncs (0: only on demand)"},
    {"cache_ttl", LDAPX_UINT, "60", "seconds an address lookup is cached"},
    {"pool_size", LDAPX_UINT, "8", "pooled connections of each kind"},
};
const size_t ldapx_nsettings = sizeof(ldapx_settings) / sizeof(ldapx_settings[0]);

struct ldapx_preset_value {
	const char *key, *value;
};
static const struct ldapx_preset_value preset_openldap[] = {
    {"user_filter", "(objectClass=inetOrgPerson)"},
    {"login_attrs", "uid mail"},
    {"mail_attr", "mail"},
    {"alt_attrs", "mailLocalAddress"},
    {"alt_prefix", ""},
    {"name_attr", "cn"},
    {"disabled_attr", ""},
    {"disabled_mask", "0"},
    {"group_filter", "(objectClass=groupOfNames)"},
    {"member_attr", "member"},
    {"group_mail_attr", "mail"},
    {"member_of_attr", ""},
    {NULL, NULL},
};
static const struct ldapx_preset_value preset_ad[] = {
    {"user_filter", "(&(objectClass=user)(!(objectClass=computer)))"},
    {"login_attrs", "userPrincipalName sAMAccountName mail"},
    {"mail_attr", "mail"},
    {"alt_attrs", "proxyAddresses"},
    {"alt_prefix", "smtp:"},
    {"name_attr", "displayName"},
    {"disabled_attr", "userAccountControl"},
    {"disabled_mask", "2"},
    {"group_filter", "(objectClass=group)"},
    {"member_attr", "member"},
    {"group_mail_attr", "mail"},
    {"member_of_attr", "memberOf"},
    {NULL, NULL},
};

static const struct ldapx_setting *setting_find(const char *key)
{
	for (size_t i = 0; i < ldapx_nsettings; i++) {
		if (strcmp(ldapx_settings[i].key, key) == 0)
			return &ldapx_settings[i];
	}
	return NULL;
}

static bool parse_bool(const char *v, bool *r)
{
	if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 || strcmp(v, "on") == 0 ||
	    strcmp(v, "1") == 0)
		*r = true;
	else if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0 || strcmp(v, "off") == 0 ||
	         strcmp(v, "0") == 0)
		*r = false;
	else
		return false;
	return true;
}

static bool valid_urls(const char *v)
{
	char *copy = xstrdup(v), *save = NULL;
	bool ok = true;
	size_t n = 0;
	for (char *u = strtok_r(copy, " ,", &save); u != NULL; u = strtok_r(NULL, " ,", &save)) {
		ok = ok && ++n <= LDAPX_MAX_URLS &&
		     (strncmp(u, "ldap://", 7) == 0 || strncmp(u, "ldaps://", 8) == 0) &&
		     ldap_is_ldap_url(u);
	}
	free(copy);
	return ok;
}

/* A filter must be "" or one parenthesised, balanced expression. */
static bool valid_filter(const char *v)
{
	int depth = 0;
	if (v[0] == '\0')
		return true;
	if (v[0] != '(')
		return false;
	for (const char *p = v; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0') {
			p++;
			continue;
		}
		depth += *p == '(' ? 1 : *p == ')' ? -1 : 0;
		if (depth < 0 || (depth == 0 && p[1] != '\0'))
			return false;
	}
	return depth == 0;
}

static enum directory_err validate(const struct ldapx_setting *s, const char *v, char *error_r)
{
	bool b;
	uint64_t u;
	for (const char *p = v; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20)
			return directory_error(error_r, DIR_EINVALID,
			                       "ldap %s: control characters are not allowed",
			                       s->key);
	}
	if (s->kind == LDAPX_BOOL && !parse_bool(v, &b))
		return directory_error(error_r, DIR_EINVALID, "ldap %s: expected yes or no",
		                       s->key);
	if (s->kind == LDAPX_UINT && str_to_u64(v, UINT32_MAX, &u) < 0)
		return directory_error(error_r, DIR_EINVALID, "ldap %s: expected a number", s->key);
	if (s->kind == LDAPX_URLS && !valid_urls(v))
		return directory_error(error_r, DIR_EINVALID,
		                       "ldap %s: expected up to %d ldap:// or ldaps:// URLs",
		                       s->key, LDAPX_MAX_URLS);
	if (s->kind == LDAPX_FILTER && !valid_filter(v))
		return directory_error(error_r, DIR_EINVALID,
		                       "ldap %s: expected a filter in parentheses", s->key);
	if (strcmp(s->key, "timeout") == 0 && (u == 0 || u > 300))
		return directory_error(error_r, DIR_EINVALID, "ldap timeout: 1 to 300 seconds");
	if (strcmp(s->key, "pool_size") == 0 && (u == 0 || u > 64))
		return directory_error(error_r, DIR_EINVALID, "ldap pool_size: 1 to 64");
	return DIR_OK;
}

/* ---- snapshots ---- */

#define TEXT_FIELD(name)                                                                           \
	{                                                                                          \
#name, offsetof(struct ldap_config, name)                                          \
	}
static const struct {
	const char *key;
	size_t offset;
} text_fields[] = {
    TEXT_FIELD(ca_file),         TEXT_FIELD(bind_dn),        TEXT_FIELD(bind_password),
    TEXT_FIELD(base_dn),         TEXT_FIELD(user_filter),    TEXT_FIELD(login_attrs),
    TEXT_FIELD(mail_attr),       TEXT_FIELD(alt_attrs),      TEXT_FIELD(alt_prefix),
    TEXT_FIELD(name_attr),       TEXT_FIELD(quota_attr),     TEXT_FIELD(disabled_attr),
    TEXT_FIELD(group_base),      TEXT_FIELD(group_filter),   TEXT_FIELD(member_attr),
    TEXT_FIELD(group_mail_attr), TEXT_FIELD(member_of_attr), TEXT_FIELD(admin_group),
    TEXT_FIELD(domains),
};
#undef TEXT_FIELD
#define NTEXT_FIELDS (sizeof(text_fields) / sizeof(text_fields[0]))

/* The string member of c named key (settings of kind TEXT, SECRET, FILTER). */
static char **text_field(struct ldap_config *c, const char *key)
{
	for (size_t i = 0; i < NTEXT_FIELDS; i++) {
		if (strcmp(text_fields[i].key, key) == 0)
			return (char **)((char *)c + text_fields[i].offset);
	}
	return NULL;
}

static void config_set(struct ldap_config *c, const char *key, const char *v)
{
	bool b = false;
	uint64_t u = 0;
	const struct ldapx_setting *s = setting_find(key);
	if (s == NULL)
		return;
	char scratch[DIR_ERROR_SIZE];
	if (validate(s, v, scratch) != DIR_OK) {
		log_warn("event=ldap_setting_ignored key=%s", key);
		v = s->def;
	}
	parse_bool(v, &b);
	str_to_u64(v, UINT32_MAX, &u);
	char **text = text_field(c, key);
	if (text != NULL) {
		free(*text);
		*text = xstrdup(v);
		return;
	}
	if (strcmp(key, "starttls") == 0)
		c->starttls = b;
	else if (strcmp(key, "tls_verify") == 0)
		c->tls_verify = b;
	else if (strcmp(key, "disabled_mask") == 0)
		c->disabled_mask = u;
	else if (strcmp(key, "timeout") == 0)
		c->timeout_s = (unsigned)u;
	else if (strcmp(key, "sync_interval") == 0)
		c->sync_interval_s = (unsigned)u;
	else if (strcmp(key, "cache_ttl") == 0)
		c->cache_ttl_s = (unsigned)u;
	else if (strcmp(key, "pool_size") == 0)
		c->pool_size = (unsigned)u;
	else if (strcmp(key, "urls") == 0) {
		char *copy = xstrdup(v), *save = NULL;
		for (char *t = strtok_r(copy, " ,", &save); t != NULL && c->nurls < LDAPX_MAX_URLS;
		     t = strtok_r(NULL, " ,", &save))
			c->urls[c->nurls++] = xstrdup(t);
		free(copy);
	}
}

void ldapx_config_unref(struct ldap_config **cfgp)
{
	struct ldap_config *c = *cfgp;
	*cfgp = NULL;
	if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	for (size_t i = 0; i < c->nurls; i++)
		free(c->urls[i]);
	if (c->bind_password != NULL)
		explicit_bzero(c->bind_password, strlen(c->bind_password));
	for (size_t i = 0; i < NTEXT_FIELDS; i++)
		free(*(char **)((char *)c + text_fields[i].offset));
	free(c);
}

enum directory_err ldapx_config_load(struct db_pool *pool, struct ldap_config **cfg_r,
                                     char *error_r)
{
	static atomic_uint generation;
	PGresult *res =
	    ldapx_query(pool, LDAPX_SETTINGS_SQL, 0, NULL, "reading the LDAP settings", error_r);
	if (res == NULL)
		return DIR_ETEMP;
	struct ldap_config *c = xcalloc(1, sizeof(*c));
	atomic_init(&c->refs, 1);
	c->generation = atomic_fetch_add(&generation, 1) + 1;
	for (size_t i = 0; i < ldapx_nsettings; i++)
		config_set(c, ldapx_settings[i].key, ldapx_settings[i].def);
	for (int i = 0; i < PQntuples(res); i++) {
		if (strcmp(PQgetvalue(res, i, 0), "urls") == 0)
			c->nurls = 0; /* replaces the (empty) default list */
		config_set(c, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
	}
	PQclear(res);
	c->enabled = c->nurls > 0;
	*cfg_r = c;
	return DIR_OK;
}

/* ---- storing ---- */

static enum directory_err store_one(PGconn *conn, const char *key, const char *value, char *error_r)
{
	char full[64];
	snprintf(full, sizeof(full), "ldap.%s", key);
	const char *params[] = {full, value};
	return ldapx_command(conn,
	                     "INSERT INTO settings (key, value) VALUES ($1, $2) "
	                     "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, "
	                     "updated_at = now()",
	                     2, params, "storing the LDAP settings", error_r);
}

static enum directory_err store_all(PGconn *conn, const char *const *keys,
                                    const char *const *values, size_t n, char *error_r)
{
	enum directory_err e = DIR_OK;
	for (size_t i = 0; i < n && e == DIR_OK; i++) {
		const struct ldapx_preset_value *p = NULL;
		if (strcmp(keys[i], "preset") != 0) {
			e = store_one(conn, keys[i], values[i], error_r);
			continue;
		}
		p = strcmp(values[i], "ad") == 0 ? preset_ad : preset_openldap;
		for (; p->key != NULL && e == DIR_OK; p++)
			e = store_one(conn, p->key, p->value, error_r);
	}
	return e;
}

static enum directory_err check_all(const char *const *keys, const char *const *values, size_t n,
                                    char *error_r)
{
	for (size_t i = 0; i < n; i++) {
		const struct ldapx_setting *s = setting_find(keys[i]);
		if (strcmp(keys[i], "preset") == 0) {
			if (strcmp(values[i], "openldap") != 0 && strcmp(values[i], "ad") != 0)
				return directory_error(error_r, DIR_EINVALID,
				                       "ldap preset: openldap or ad");
			continue;
		}
		if (s == NULL)
			return directory_error(error_r, DIR_EINVALID, "unknown LDAP setting %.64s",
			                       keys[i]);
		if (validate(s, values[i], error_r) != DIR_OK)
			return DIR_EINVALID;
	}
	return DIR_OK;
}

enum directory_err ldapx_config_store(struct db_pool *pool, const char *const *keys,
                                      const char *const *values, size_t n, char *error_r)
{
	enum directory_err e = check_all(keys, values, n, error_r);
	if (e != DIR_OK)
		return e;
	PGconn *conn = db_pool_borrow(pool, DIR_BORROW_TIMEOUT_MS);
	if (conn == NULL)
		return directory_error(error_r, DIR_ETEMP, "database unavailable");
	if (db_begin(conn) < 0)
		e = directory_error(error_r, DIR_ETEMP, "database unavailable");
	else
		e = store_all(conn, keys, values, n, error_r);
	if (e == DIR_OK && db_commit(conn) < 0)
		e = directory_error(error_r, DIR_ETEMP, "cannot store the LDAP settings");
	else if (e != DIR_OK)
		db_rollback(conn);
	db_pool_return(pool, &conn);
	return e;
}

/* ---- the admin API ---- */

enum directory_err directory_ldap_settings_set(struct directory *dir, const char *const *keys,
                                               const char *const *values, size_t n, char *error_r)
{
	char scratch[DIR_ERROR_SIZE];
	char *err = error_r != NULL ? error_r : scratch;
	err[0] = '\0';
	enum directory_err e = ldapx_config_store(dir->pool, keys, values, n, err);
	if (e == DIR_OK)
		ldapx_backend_invalidate(dir);
	return e;
}

static void settings_fill(struct directory_ldap_setting *list, const PGresult *res)
{
	for (size_t i = 0; i < ldapx_nsettings; i++) {
		const struct ldapx_setting *s = &ldapx_settings[i];
		const char *value = s->def;
		list[i].key = s->key;
		list[i].help = s->help;
		list[i].secret = s->kind == LDAPX_SECRET;
		for (int r = 0; r < PQntuples(res); r++) {
			if (strcmp(PQgetvalue(res, r, 0), s->key) == 0) {
				value = PQgetvalue(res, r, 1);
				list[i].is_set = true;
			}
		}
		/* The password stays write-only: only whether it is set. */
		list[i].value = xstrdup(list[i].secret ? "" : value);
		if (list[i].secret)
			list[i].is_set = value[0] != '\0';
	}
}

enum directory_err directory_ldap_settings_get(struct directory *dir,
                                               struct directory_ldap_setting **settings_r,
                                               size_t *n_r, char *error_r)
{
	char scratch[DIR_ERROR_SIZE];
	char *err = error_r != NULL ? error_r : scratch;
	*settings_r = NULL;
	*n_r = 0;
	err[0] = '\0';
	PGresult *res =
	    ldapx_query(dir->pool, LDAPX_SETTINGS_SQL, 0, NULL, "reading the LDAP settings", err);
	if (res == NULL)
		return DIR_ETEMP;
	struct directory_ldap_setting *list = xcalloc(ldapx_nsettings, sizeof(*list));
	settings_fill(list, res);
	PQclear(res);
	*settings_r = list;
	*n_r = ldapx_nsettings;
	return DIR_OK;
}

void directory_ldap_settings_free(struct directory_ldap_setting **settings, size_t n)
{
	if (*settings == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free((*settings)[i].value);
	free(*settings);
	*settings = NULL;
}
