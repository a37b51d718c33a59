/* ldap-admin.h - LDAP settings, test and sync for the `roost ldap`
 * command and the browser admin (call these from an HTTP handler).
 *
 * Settings are rows "ldap.<key>" of the settings table, shared by every
 * process on the database; a running server reads changes within a few
 * seconds. LDAP is on when the "urls" setting is not empty. The keys, their
 * defaults and meaning: directory_ldap_settings_get() lists them all.
 *
 * The bind password is write-only: directory_ldap_settings_get() never
 * returns it (only whether it is set), and nothing logs it.
 *
 * Errors as in directory.h (error_r: DIR_ERROR_SIZE bytes, may be NULL). */
#ifndef ROOST_LDAP_ADMIN_H
#define ROOST_LDAP_ADMIN_H

#include "buf.h"
#include "directory.h"

#include <stdbool.h>
#include <stdint.h>

struct directory_ldap_setting {
	const char *key;  /* "urls", "bind_dn", ... (static) */
	const char *help; /* one line of English (static) */
	char *value;      /* current value; "" for the bind password */
	bool is_set;      /* stored (false: the default applies) */
	bool secret;      /* the bind password: value is never returned */
};

/* Every LDAP setting in a fixed order. Free with
 * directory_ldap_settings_free(). */
enum directory_err directory_ldap_settings_get(struct directory *dir,
                                               struct directory_ldap_setting **settings_r,
                                               size_t *n_r, char *error_r);
void directory_ldap_settings_free(struct directory_ldap_setting **settings, size_t n);

/* Validates then stores n key/value pairs in one transaction (all or
 * nothing). The key "preset" with value "openldap" or "ad" first stores the
 * attribute mapping of OpenLDAP (inetOrgPerson, groupOfNames) or Active
 * Directory (userPrincipalName/sAMAccountName, proxyAddresses with smtp:,
 * memberOf, userAccountControl). Values are stored as given ("" included:
 * an empty "urls" turns LDAP off; leave "bind_password" out to keep the
 * stored one). DIR_EINVALID names the bad key. A running server uses the
 * new values within a few seconds; cached address lookups are dropped. */
enum directory_err directory_ldap_settings_set(struct directory *dir, const char *const *keys,
                                               const char *const *values, size_t n, char *error_r);

/* Tests the settings now stored: connects (every URL in turn, TLS as
 * configured) and binds as the service account; with login (an address or
 * a login name; may be NULL) also finds the user and appends to report what
 * Roost would see, one "key: value" line each (dn, address, name, alternate,
 * quota, disabled, admin). The password of the user is not checked here.
 * DIR_ETEMP (cannot connect/bind; message says why), DIR_ENOTFOUND (no such
 * user), DIR_EINVALID (LDAP not configured). */
enum directory_err directory_ldap_test(struct directory *dir, const char *login, struct buf *report,
                                       char *error_r);

struct directory_ldap_sync_stats {
	unsigned checked;  /* LDAP accounts looked at */
	unsigned updated;  /* name, quota, admin role or DN copied */
	unsigned disabled; /* entry gone or disabled: account disabled now */
	unsigned enabled;  /* entry back: account enabled again */
};

/* One sync pass: every account with source ldap is compared with its entry
 * (by DN, then by address if the DN is gone). Accounts whose entry is gone
 * or disabled are disabled (mail refused, stored mail kept); display name,
 * quota and admin role are copied. Stops with DIR_ETEMP, changing nothing
 * more, if the directory does not answer. DIR_EINVALID if LDAP is off. */
enum directory_err directory_ldap_sync(struct directory *dir,
                                       struct directory_ldap_sync_stats *stats_r, char *error_r);

/* Starts the thread that runs directory_ldap_sync() every sync_interval
 * seconds (re-read each time; 0 pauses it) while LDAP is on. For
 * `roost serve` only. -1 with a static message if the thread cannot start.
 * directory_close() stops it. */
int directory_sync_start(struct directory *dir, const char **error_r);
/* Stops the thread (waits for a pass in flight); harmless if not started. */
void directory_sync_stop(struct directory *dir);

#endif
