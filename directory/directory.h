/* directory.h - users, aliases and domains: authenticate and look up.
 *
 * One interface for every protocol and for the `roost` command, with
 * backends behind an ops table (directory-private.h): directory_local.c
 * (accounts in the PostgreSQL store) and, beside it, directory_ldap.c (an
 * LDAP directory, used once configured: ldap-admin.h). Local and LDAP
 * accounts live side by side; an LDAP user gets an account in the store
 * (source ldap, no password) the first time they log in or mail arrives
 * for them. Protocol code sees only this header.
 *
 * Connections: each call borrows a connection from the pool given to
 * directory_open() for its own unit of work and gives it back before
 * returning (waiting at most DIR_BORROW_TIMEOUT_MS, else DIR_ETEMP). Do not
 * call while holding the last free connection of the same pool.
 *
 * Addresses passed in are parsed with address_parse() (core/address.h) and
 * looked up by address_lookup_key(): domain lower-cased, ASCII letters of the
 * local part folded. Addresses handed out are stored lower-case.
 *
 * Errors: functions return enum directory_err. Those taking `char *error_r`
 * also write a one-line English message there (at most DIR_ERROR_SIZE bytes
 * including the NUL; error_r may be NULL), meant to be printed by the CLI or
 * returned by the admin API, e.g. "unknown domain example.org". "" on
 * success. Messages never contain passwords.
 *
 * Thread safety: a struct directory may be used by many threads at once. */
#ifndef ROOST_DIRECTORY_H
#define ROOST_DIRECTORY_H

#include "address.h"
#include "pool.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DIR_ERROR_SIZE 256
/* Longest display name in bytes (UTF-8, no control characters). */
#define DIR_NAME_MAX 200
/* Passwords: 1..DIR_PASSWORD_MAX bytes, no control characters (the SASL
 * fields of RFC 4616 carry at most 255 octets). */
#define DIR_PASSWORD_MAX 255
/* How long a call waits for a pooled connection. */
#define DIR_BORROW_TIMEOUT_MS 5000
/* Alias expansion: nesting depth and total recipients of one resolve. */
#define DIR_RESOLVE_MAX_DEPTH   10
#define DIR_RESOLVE_MAX_RESULTS 1000

/* The small error enum of STYLE.md; same meanings as enum store_err. */
enum directory_err {
	DIR_OK = 0,
	DIR_ETEMP,     /* database or LDAP unreachable: try later */
	DIR_EPERM,     /* not allowed (read-only backend, disabled account...) */
	DIR_EQUOTA,    /* over a quota */
	DIR_ENOTFOUND, /* no such domain/account/alias */
	DIR_EINVALID,  /* malformed address, name, password or argument */
	DIR_EEXISTS,   /* already exists */
};
/* "ok", "temporary failure", "permission denied", "over quota", "not found",
 * "invalid", "already exists". */
const char *directory_err_str(enum directory_err e);

enum directory_auth {
	DIR_AUTH_OK = 0,
	DIR_AUTH_FAILED,   /* unknown user or wrong password: never says which */
	DIR_AUTH_DISABLED, /* right password, but the account is disabled */
	DIR_AUTH_TEMPFAIL, /* could not check now: answer "try later" */
};

struct directory_account {
	int64_t id;
	char address[ADDRESS_BUF_SIZE]; /* lower-case localpart@domain */
	char display_name[DIR_NAME_MAX + 1];
	bool is_admin;
	bool disabled;
	bool ldap;            /* source is LDAP (read-only here) */
	uint64_t quota_bytes; /* 0: unlimited */
	uint64_t used_bytes;
};

struct directory_domain {
	int64_t id;
	char name[ADDRESS_DOMAIN_MAX + 1];
	uint64_t accounts; /* number of accounts in the domain */
	uint64_t aliases;  /* number of aliases (catch-all included) */
};

struct directory_alias {
	char address[ADDRESS_BUF_SIZE]; /* "user@dom", or "@dom" for a catch-all */
	char **targets;                 /* ntargets strings, sorted */
	size_t ntargets;
};

/* Where mail for one address goes. Both arrays are deduplicated and
 * malloc'd; free with directory_resolution_free(). */
struct directory_resolution {
	int64_t *accounts; /* local account ids, in order of discovery */
	size_t naccounts;
	char **remote; /* remote addresses (non-local domains), as stored */
	size_t nremote;
};

struct directory;

/* ---- handle ---- */

/* backend: "local" (or NULL for it); anything else is refused. LDAP needs
 * no choice here: it is consulted as soon as its settings say so (read
 * from the database at first use and every few seconds). The pool must
 * outlive the handle. -1 with a static message on error. */
int directory_open(struct db_pool *pool, const char *backend, struct directory **dir_r,
                   const char **error_r);
/* Sets *dir to NULL. */
void directory_close(struct directory **dir);
/* Sub-addressing separator used by directory_resolve(); default
 * ADDRESS_DETAIL_SEPARATOR ('+'); '\0' turns sub-addressing off. Call before
 * sharing the handle between threads. */
void directory_set_detail_separator(struct directory *dir, char separator);

/* ---- used by the protocols ---- */

/* Checks login and password. With DIR_AUTH_OK (and only then) *account_r
 * is filled. The login is an address, or (LDAP on) a value of an LDAP login
 * attribute such as uid or sAMAccountName. A local account with a password
 * is checked locally; any other login goes to LDAP when it is on (search,
 * then a bind as the user's DN: first login provisions the account).
 * Empty passwords always fail. DIR_AUTH_TEMPFAIL when the database or the
 * directory cannot answer. Unknown local users get a dummy password
 * verification so the answer takes as long as for a real one. The password
 * is not kept. */
enum directory_auth directory_authenticate(struct directory *dir, const char *login,
                                           const char *password,
                                           struct directory_account *account_r);

/* Resolves a recipient address into local accounts and remote addresses
 * (the store first; if it has nothing, LDAP for the domains it serves: a
 * user by primary or alternate address, provisioned on the way, or a group
 * with that address expanded into its members, nested groups included;
 * cached for the ldap cache_ttl setting; DIR_ETEMP if LDAP is unreachable):
 *   1. an account with exactly this address (DIR_EPERM if it is disabled);
 *   2. an alias with this address, each target resolved in turn (targets in
 *      non-local domains are remote; loops are cut; nesting deeper than
 *      DIR_RESOLVE_MAX_DEPTH and disabled or unknown targets are skipped
 *      and logged);
 *   3. with sub-addressing, "user+tag@dom" is retried as "user@dom";
 *   4. the catch-all alias "@dom".
 * DIR_ENOTFOUND when nothing delivers (also for non-local domains),
 * DIR_EINVALID for a malformed address. On DIR_OK *r holds at least one
 * account or remote address; otherwise *r is empty. */
enum directory_err directory_resolve(struct directory *dir, const char *address,
                                     struct directory_resolution *r, char *error_r);
void directory_resolution_free(struct directory_resolution *r);

/* *local_r: the domain (any case) is one of ours. */
enum directory_err directory_is_local_domain(struct directory *dir, const char *domain,
                                             bool *local_r, char *error_r);

/* An account by address (exact, no aliases) or by id. DIR_ENOTFOUND. */
enum directory_err directory_account_get(struct directory *dir, const char *address,
                                         struct directory_account *account_r, char *error_r);
enum directory_err directory_account_get_by_id(struct directory *dir, int64_t id,
                                               struct directory_account *account_r, char *error_r);

/* ---- management (CLI, admin API). DIR_EPERM on read-only backends. ---- */

/* Adds a domain (validated with address_is_valid_domain(), stored
 * lower-case). DIR_EEXISTS if present. */
enum directory_err directory_domain_add(struct directory *dir, const char *name, char *error_r);
/* All domains sorted by name; *domains_r is malloc'd (free()), NULL if none. */
enum directory_err directory_domain_list(struct directory *dir, struct directory_domain **domains_r,
                                         size_t *n_r, char *error_r);
/* Removes a domain. Without force, refuses (DIR_EEXISTS, "domain example.org
 * still has 3 accounts and 1 alias") while accounts or aliases exist; with
 * force, removes them too (accounts with their mailboxes). */
enum directory_err directory_domain_remove(struct directory *dir, const char *name, bool force,
                                           char *error_r);

/* Creates an account and its default mailboxes (store_mailboxes_create_defaults)
 * in one transaction. The address's domain must be local (else DIR_ENOTFOUND,
 * "unknown domain example.org"); the address must not be an account or an
 * alias (DIR_EEXISTS). The password is hashed with argon2id (core/password.h).
 * display_name may be NULL. *id_r (may be NULL): the new account id. */
enum directory_err directory_account_add(struct directory *dir, const char *address,
                                         const char *password, const char *display_name,
                                         int64_t *id_r, char *error_r);
enum directory_err directory_account_set_password(struct directory *dir, const char *address,
                                                  const char *password, char *error_r);
enum directory_err directory_account_set_name(struct directory *dir, const char *address,
                                              const char *display_name, char *error_r);
/* bytes: 0 for unlimited; at most INT64_MAX. */
enum directory_err directory_account_set_quota(struct directory *dir, const char *address,
                                               uint64_t bytes, char *error_r);
enum directory_err directory_account_set_admin(struct directory *dir, const char *address,
                                               bool is_admin, char *error_r);
enum directory_err directory_account_set_disabled(struct directory *dir, const char *address,
                                                  bool disabled, char *error_r);
/* Accounts sorted by address, all or those of one domain (domain NULL for
 * all; an unknown domain is DIR_ENOTFOUND). *accounts_r is malloc'd (free()),
 * NULL if none. */
enum directory_err directory_account_list(struct directory *dir, const char *domain,
                                          struct directory_account **accounts_r, size_t *n_r,
                                          char *error_r);
/* Deletes the account and its mailboxes and entries (blobs are collected
 * later by store_gc). */
enum directory_err directory_account_remove(struct directory *dir, const char *address,
                                            char *error_r);

/* Adds targets to the alias `address` (created if missing; targets already
 * present are kept once). address: "user@dom" in a local domain that is not
 * an account, or "@dom" for the domain's catch-all. Targets: valid addresses
 * (local or remote), stored lower-case; at least one. */
enum directory_err directory_alias_add(struct directory *dir, const char *address,
                                       const char *const *targets, size_t ntargets, char *error_r);
/* Aliases sorted by address, all or those of one domain. Free with
 * directory_aliases_free(). */
enum directory_err directory_alias_list(struct directory *dir, const char *domain,
                                        struct directory_alias **aliases_r, size_t *n_r,
                                        char *error_r);
void directory_aliases_free(struct directory_alias **aliases, size_t n);
/* Removes the given targets of an alias, or (ntargets 0) the whole alias.
 * An alias left without targets is removed. DIR_ENOTFOUND if the alias or
 * one of the targets does not exist (then nothing is changed). */
enum directory_err directory_alias_remove(struct directory *dir, const char *address,
                                          const char *const *targets, size_t ntargets,
                                          char *error_r);

#endif
