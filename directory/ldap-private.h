/* ldap-private.h - the pieces of the LDAP backend, shared by
 * directory_ldap.c and directory/ldap-*.c only.
 *
 * ldap-escape.c  RFC 4515 filter values and RFC 4514 DN values
 * ldap-config.c  the "ldap.*" rows of the settings table: keys, presets,
 *                validation, one immutable snapshot (struct ldap_config)
 * ldap-conn.c    connections: failover across URLs, StartTLS/ldaps with CA
 *                verification, timeouts; a small pool of service
 *                connections and one of bind connections
 * ldap-sync.c    the sync pass and its thread
 * directory_ldap.c  user search, login binds, addresses, groups,
 *                provisioning of accounts, the resolve cache */
#ifndef ROOST_LDAP_PRIVATE_H
#define ROOST_LDAP_PRIVATE_H

#include "directory-private.h"

#include "buf.h"

#include <ldap.h>
#include <pthread.h>
#include <stdatomic.h>

/* ---- database ---- */

/* Borrows a connection, runs one statement, gives the connection back.
 * NULL on failure with DIR_ETEMP's message "database error while <what>"
 * in error_r. The result must be PQclear'd. */
PGresult *ldapx_query(struct db_pool *pool, const char *sql, int n, const char *const *params,
                      const char *what, char *error_r);
/* One statement on conn whose result is not needed: DIR_OK or DIR_ETEMP. */
enum directory_err ldapx_command(PGconn *conn, const char *sql, int n, const char *const *params,
                                 const char *what, char *error_r);

/* ---- escaping ---- */

/* Appends value (n bytes, NUL allowed) escaped for an LDAP filter assertion
 * value (RFC 4515 section 3: '*', '(', ')', '\\' and NUL as \2a \28 \29 \5c
 * \00; every other byte, UTF-8 included, as is). -1 if out is full. */
int ldapx_filter_escape(struct buf *out, const char *value, size_t n);
/* Appends value escaped as an RFC 4514 attribute value of a DN (leading
 * space or '#', trailing space, '"', '+', ',', ';', '<', '>', '\\' with a
 * backslash, NUL as \00). -1 if out is full. */
int ldapx_dn_escape(struct buf *out, const char *value, size_t n);
/* Builds "(&FILTER(|(a1=v)(a2=v)...))" from a base filter (may be "") and a
 * space-separated attribute list; v is escaped. -1 if out is full. */
int ldapx_filter_any(struct buf *out, const char *base_filter, const char *attrs, const char *value,
                     size_t n);

/* ---- configuration ---- */

#define LDAPX_MAX_URLS  8
#define LDAPX_MAX_ATTRS 8

struct ldap_config {
	atomic_int refs;
	unsigned generation;
	bool enabled; /* urls set */
	char *urls[LDAPX_MAX_URLS];
	size_t nurls;
	bool starttls, tls_verify;
	char *ca_file;
	char *bind_dn, *bind_password;
	char *base_dn, *user_filter;
	char *login_attrs; /* space-separated */
	char *mail_attr, *alt_attrs, *alt_prefix, *name_attr, *quota_attr;
	char *disabled_attr;
	uint64_t disabled_mask; /* 0: the attribute is a boolean */
	char *group_base, *group_filter, *member_attr, *group_mail_attr, *member_of_attr;
	char *admin_group;
	char *domains; /* space-separated; "" for every local domain */
	unsigned timeout_s, sync_interval_s, cache_ttl_s, pool_size;
};

/* One setting: its key (without "ldap."), default, and kind. */
enum ldapx_kind { LDAPX_TEXT, LDAPX_SECRET, LDAPX_BOOL, LDAPX_UINT, LDAPX_URLS, LDAPX_FILTER };
struct ldapx_setting {
	const char *key;
	enum ldapx_kind kind;
	const char *def;
	const char *help;
};
extern const struct ldapx_setting ldapx_settings[];
extern const size_t ldapx_nsettings;

/* Reads every ldap.* row and builds a snapshot (refs 1). DIR_ETEMP if the
 * database fails; bad stored values fall back to defaults (logged). */
enum directory_err ldapx_config_load(struct db_pool *pool, struct ldap_config **cfg_r,
                                     char *error_r);
void ldapx_config_unref(struct ldap_config **cfg);
/* Validates one key=value ("preset" expands to its keys); stores them all
 * in one transaction. */
enum directory_err ldapx_config_store(struct db_pool *pool, const char *const *keys,
                                      const char *const *values, size_t n, char *error_r);

/* ---- connections ---- */

struct ldapx_pool;

/* Opens one connection: the URLs in turn starting at the last that worked,
 * StartTLS for ldap:// when configured, then a simple bind as dn (NULL:
 * none). LDAP_SUCCESS and *ld_r, or the last error (an LDAP result code;
 * LDAP_INVALID_CREDENTIALS for a refused bind). */
int ldapx_connect(const struct ldap_config *cfg, const char *dn, const char *password, LDAP **ld_r,
                  char *error_r);
/* A simple bind as dn with password; an empty password or DN (an
 * anonymous bind) is LDAP_INVALID_CREDENTIALS without asking the server. */
int ldapx_simple_bind(LDAP *ld, const char *dn, const char *password);
/* Whether an LDAP result code means "the directory is unreachable/busy". */
bool ldapx_is_temporary(int rc);

struct ldapx_pool *ldapx_pool_create(unsigned size, bool service);
void ldapx_pool_destroy(struct ldapx_pool **p);
/* A connection for cfg (a service connection bound as cfg->bind_dn, or an
 * unbound one for user binds), opened if needed. NULL with DIR_ETEMP's
 * message in error_r when no URL answers or the pool stays busy past the
 * timeout. */
LDAP *ldapx_pool_get(struct ldapx_pool *p, const struct ldap_config *cfg, char *error_r);
/* Gives ld back; broken: close it instead (after a server-down error). */
void ldapx_pool_put(struct ldapx_pool *p, LDAP **ld, bool broken);

/* ---- the backend state ---- */

struct ldapx_cache_entry;

struct ldap_backend {
	pthread_mutex_t lock; /* cfg, cache */
	struct ldap_config *cfg;
	time_t cfg_loaded;
	struct ldapx_pool *service, *binders;
	struct ldapx_cache_entry *cache;
	size_t ncache;
	pthread_t sync_thread;
	bool sync_running, sync_stop;
	pthread_cond_t sync_cond;
};

/* The current snapshot (reloaded from the database when older than a few
 * seconds); release with ldapx_config_unref(). NULL with DIR_ETEMP. */
struct ldap_config *ldapx_backend_config(struct directory *dir, char *error_r);

/* One user entry as Roost sees it. */
struct ldapx_user {
	char *dn;
	char address[ADDRESS_BUF_SIZE]; /* lookup key of the primary address */
	char name[DIR_NAME_MAX + 1];
	char **alt; /* alternate address keys */
	size_t nalt;
	uint64_t quota_bytes;
	bool disabled, is_admin;
};
void ldapx_user_free(struct ldapx_user *u);
/* Searches a user by login (address or login attribute). DIR_ENOTFOUND
 * (also for more than one match, logged), DIR_ETEMP, DIR_OK. */
enum directory_err ldapx_find_user(struct directory *dir, const struct ldap_config *cfg,
                                   const char *login, struct ldapx_user *u, char *error_r);
/* Reads the user entry at dn (with the user filter). DIR_ENOTFOUND if gone. */
enum directory_err ldapx_read_user(struct directory *dir, const struct ldap_config *cfg,
                                   const char *dn, struct ldapx_user *u, char *error_r);
/* Creates or updates the LDAP account of u (source ldap, external_id dn):
 * name, quota, admin role and disabled flag copied. *id_r: its id. */
enum directory_err ldapx_account_ensure(struct directory *dir, const struct ldapx_user *u,
                                        int64_t *id_r, bool *changed_r, char *error_r);
/* Checks that u's domain is served, works out its admin role, then
 * ldapx_account_ensure(). *changed_r (may be NULL): the row was updated. */
enum directory_err ldapx_user_provision(struct directory *dir, const struct ldap_config *cfg,
                                        struct ldapx_user *u, int64_t *id_r, bool *changed_r,
                                        char *error_r);
/* Where a login for key goes: *ldap_r true for an LDAP account or no
 * account at all, false for a local account with a password. */
enum directory_err ldapx_login_source(struct directory *dir, const char *key, bool *ldap_r);
/* Forgets cached lookups and makes the settings be read again. */
void ldapx_backend_invalidate(struct directory *dir);
/* Whether the domain's addresses may come from LDAP (a local domain listed
 * in cfg->domains, or any local domain when that is empty). */
enum directory_err ldapx_domain_served(struct directory *dir, const struct ldap_config *cfg,
                                       const char *domain, bool *served_r, char *error_r);

/* The LDAP part of the directory, called by directory.c. */
int directory_ldap_attach(struct directory *dir, const char **error_r);
void directory_ldap_detach(struct directory *dir);
/* DIR_AUTH_FAILED when LDAP is not configured. */
enum directory_auth directory_ldap_authenticate(struct directory *dir, const char *login,
                                                const char *password,
                                                struct directory_account *account_r);
/* After the local store found nothing for a: the LDAP user or group with
 * that address. DIR_ENOTFOUND when LDAP is off or the domain not served. */
enum directory_err directory_ldap_resolve(struct directory *dir, const struct address *a,
                                          struct directory_resolution *r, char *error_r);
bool directory_ldap_enabled(struct directory *dir);

/* ---- sync ---- */

#endif
