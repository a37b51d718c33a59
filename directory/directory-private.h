/* directory-private.h - the ops table behind directory.h, for backends only.
 *
 * directory.c parses and validates every argument (addresses, domain names,
 * passwords, display names) and hands the backend normalised values:
 * "keys" are address_lookup_key() strings ("user@dom", or "@dom" for a
 * catch-all alias), domains are lower-case, passwords already hashed. It also
 * owns the generic alias expansion (directory_expand()), which backends call
 * with a lookup callback.
 *
 * Management ops are NULL for read-only backends; directory.c then answers
 * DIR_EPERM. Every op that returns enum directory_err writes its message into
 * error_r (DIR_ERROR_SIZE bytes, never NULL here) with directory_error(). */
#ifndef ROOST_DIRECTORY_PRIVATE_H
#define ROOST_DIRECTORY_PRIVATE_H

#include "directory.h"

struct directory;

/* Which field directory_account_update changes. */
enum directory_field {
	DIR_FIELD_PASSWORD_HASH, /* text: an encoded hash (password.h) */
	DIR_FIELD_DISPLAY_NAME,  /* text */
	DIR_FIELD_QUOTA,         /* number */
	DIR_FIELD_ADMIN,         /* flag */
	DIR_FIELD_DISABLED,      /* flag */
};

struct directory_change {
	enum directory_field field;
	const char *text;
	uint64_t number;
	bool flag;
};

/* What one key is, for alias expansion. */
enum directory_lookup_kind { DIR_LOOKUP_NONE, DIR_LOOKUP_ACCOUNT, DIR_LOOKUP_ALIAS };

struct directory_lookup {
	enum directory_lookup_kind kind;
	int64_t account_id; /* DIR_LOOKUP_ACCOUNT */
	bool disabled;      /* DIR_LOOKUP_ACCOUNT */
	char **targets;     /* DIR_LOOKUP_ALIAS: malloc'd strings, ntargets of them */
	size_t ntargets;
};
void directory_lookup_clear(struct directory_lookup *l);

/* Callbacks a backend gives directory_expand(); ctx is the backend's (e.g.
 * the borrowed connection). */
struct directory_lookup_fns {
	enum directory_err (*lookup)(void *ctx, const char *key, struct directory_lookup *r);
	enum directory_err (*is_local_domain)(void *ctx, const char *domain, bool *local_r);
};

struct directory_ops {
	const char *name;
	int (*open)(struct directory *dir, const char **error_r);
	void (*close)(struct directory *dir);

	enum directory_auth (*authenticate)(struct directory *dir, const char *key,
	                                    const char *password, size_t password_len,
	                                    struct directory_account *account_r);
	enum directory_err (*resolve)(struct directory *dir, const struct address *a,
	                              struct directory_resolution *r, char *error_r);
	enum directory_err (*is_local_domain)(struct directory *dir, const char *domain,
	                                      bool *local_r, char *error_r);
	enum directory_err (*account_get)(struct directory *dir, const char *key,
	                                  struct directory_account *account_r, char *error_r);
	enum directory_err (*account_get_by_id)(struct directory *dir, int64_t id,
	                                        struct directory_account *account_r, char *error_r);

	/* Management; NULL on read-only backends. */
	enum directory_err (*domain_add)(struct directory *dir, const char *domain, char *error_r);
	enum directory_err (*domain_list)(struct directory *dir,
	                                  struct directory_domain **domains_r, size_t *n_r,
	                                  char *error_r);
	enum directory_err (*domain_remove)(struct directory *dir, const char *domain, bool force,
	                                    char *error_r);
	/* a: the parsed address (for its domain and local part); key: its
	 * lookup key; hash: the encoded password hash; name: "" if none. */
	enum directory_err (*account_add)(struct directory *dir, const struct address *a,
	                                  const char *key, const char *hash, const char *name,
	                                  int64_t *id_r, char *error_r);
	enum directory_err (*account_update)(struct directory *dir, const char *key,
	                                     const struct directory_change *change, char *error_r);
	/* domain: NULL for all. */
	enum directory_err (*account_list)(struct directory *dir, const char *domain,
	                                   struct directory_account **accounts_r, size_t *n_r,
	                                   char *error_r);
	enum directory_err (*account_remove)(struct directory *dir, const char *key, char *error_r);
	/* domain: the alias's domain; key: "user@dom" or "@dom"; targets: keys. */
	enum directory_err (*alias_add)(struct directory *dir, const char *domain, const char *key,
	                                const char *const *targets, size_t ntargets, char *error_r);
	enum directory_err (*alias_list)(struct directory *dir, const char *domain,
	                                 struct directory_alias **aliases_r, size_t *n_r,
	                                 char *error_r);
	enum directory_err (*alias_remove)(struct directory *dir, const char *key,
	                                   const char *const *targets, size_t ntargets,
	                                   char *error_r);
};

struct ldap_backend;

/* The store's backend (ops) always; LDAP beside it (ldap-private.h), which
 * stays dormant until the "ldap.urls" setting is set. */
struct directory {
	const struct directory_ops *ops;
	struct db_pool *pool;
	char detail_separator;
	void *backend;             /* the backend's own state, if any */
	struct ldap_backend *ldap; /* never NULL after directory_open() */
};

extern const struct directory_ops directory_local_ops;

/* Formats a message into error_r (DIR_ERROR_SIZE bytes) and returns err. */
enum directory_err directory_error(char *error_r, enum directory_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Resolves a parsed address by the rules of directory_resolve(), using fns
 * for every lookup. Fills *r (which must start empty). */
enum directory_err directory_expand(const struct directory *dir,
                                    const struct directory_lookup_fns *fns, void *ctx,
                                    const struct address *a, struct directory_resolution *r,
                                    char *error_r);

/* Adds an account id (remote NULL) or a remote address to r, once each.
 * DIR_EINVALID (message in error_r, which may be NULL) past
 * DIR_RESOLVE_MAX_RESULTS. */
enum directory_err directory_resolution_add(struct directory_resolution *r, int64_t id,
                                            const char *remote, char *error_r);

/* Copies a display name, cut at DIR_NAME_MAX bytes on a UTF-8 boundary. */
void directory_copy_name(char dst[DIR_NAME_MAX + 1], const char *src);

#endif
