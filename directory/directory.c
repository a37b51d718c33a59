/* directory.c - the interface: argument checks, then the backend's ops. */
#include "directory-private.h"
#include "ldap-private.h"

#include "log.h"
#include "password.h"
#include "xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *directory_err_str(enum directory_err e)
{
	switch (e) {
	case DIR_OK:
		return "ok";
	case DIR_ETEMP:
		return "temporary failure";
	case DIR_EPERM:
		return "permission denied";
	case DIR_EQUOTA:
		return "over quota";
	case DIR_ENOTFOUND:
		return "not found";
	case DIR_EINVALID:
		return "invalid";
	case DIR_EEXISTS:
		return "already exists";
	}
	return "unknown error";
}

enum directory_err directory_error(char *error_r, enum directory_err err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	/* Bounded by DIR_ERROR_SIZE; a message cut short is still useful. */
	vsnprintf(error_r, DIR_ERROR_SIZE, fmt, ap);
	va_end(ap);
	return err;
}

/* A scratch buffer when the caller passed NULL, so backends always write. */
#define ERRBUF(error_r, scratch) ((error_r) != NULL ? (error_r) : (scratch))

void directory_copy_name(char dst[DIR_NAME_MAX + 1], const char *src)
{
	size_t n = strnlen(src, DIR_NAME_MAX + 1);
	if (n > DIR_NAME_MAX) {
		n = DIR_NAME_MAX;
		/* Do not cut a UTF-8 sequence: back off continuation bytes. */
		while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* ---- handle ---- */

int directory_open(struct db_pool *pool, const char *backend, struct directory **dir_r,
                   const char **error_r)
{
	/* LDAP is not a choice here: it always sits beside the store and is
	 * used once the "ldap.urls" setting is set (ldap-admin.h). */
	if (backend != NULL && strcmp(backend, "local") != 0) {
		*error_r = "unknown directory backend (only \"local\"; LDAP is configured with "
		           "roost ldap set)";
		return -1;
	}
	struct directory *dir = xcalloc(1, sizeof(*dir));
	dir->ops = &directory_local_ops;
	dir->pool = pool;
	dir->detail_separator = ADDRESS_DETAIL_SEPARATOR;
	if (dir->ops->open != NULL && dir->ops->open(dir, error_r) < 0) {
		free(dir);
		return -1;
	}
	if (directory_ldap_attach(dir, error_r) < 0) {
		if (dir->ops->close != NULL)
			dir->ops->close(dir);
		free(dir);
		return -1;
	}
	*dir_r = dir;
	return 0;
}

void directory_close(struct directory **dirp)
{
	struct directory *dir = *dirp;
	if (dir == NULL)
		return;
	directory_ldap_detach(dir);
	if (dir->ops->close != NULL)
		dir->ops->close(dir);
	free(dir);
	*dirp = NULL;
}

void directory_set_detail_separator(struct directory *dir, char separator)
{
	dir->detail_separator = separator;
}

/* ---- argument checks ---- */

static enum directory_err parse_address(const char *s, struct address *a, char *key, char *error_r)
{
	const char *why;
	if (s == NULL || address_parse(s, strlen(s), a, &why) < 0)
		return directory_error(error_r, DIR_EINVALID, "invalid address: %s",
		                       s == NULL ? "missing" : why);
	if (a->domain_literal)
		return directory_error(error_r, DIR_EINVALID,
		                       "invalid address: an address literal is not a local domain");
	address_lookup_key(a, key);
	return DIR_OK;
}

static enum directory_err parse_domain(const char *s, char out[ADDRESS_DOMAIN_MAX + 1],
                                       char *error_r)
{
	if (s == NULL || address_normalize_domain(s, out, ADDRESS_DOMAIN_MAX + 1) < 0)
		return directory_error(error_r, DIR_EINVALID, "invalid domain name");
	return DIR_OK;
}

/* An alias address: "user@dom" or the catch-all "@dom". */
static enum directory_err parse_alias_address(const char *s, char *domain, char *key, char *error_r)
{
	struct address a = {0};
	if (s != NULL && s[0] == '@') {
		if (parse_domain(s + 1, domain, error_r) != DIR_OK)
			return DIR_EINVALID;
		key[0] = '@';
		memcpy(key + 1, domain, strlen(domain) + 1);
		return DIR_OK;
	}
	if (parse_address(s, &a, key, error_r) != DIR_OK)
		return DIR_EINVALID;
	memcpy(domain, a.domain, a.domain_len + 1);
	return DIR_OK;
}

static bool has_control(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	}
	return false;
}

static enum directory_err check_password(const char *pw, char *error_r)
{
	size_t n = pw == NULL ? 0 : strnlen(pw, DIR_PASSWORD_MAX + 1);
	if (n == 0)
		return directory_error(error_r, DIR_EINVALID, "empty password");
	if (n > DIR_PASSWORD_MAX)
		return directory_error(error_r, DIR_EINVALID, "password longer than %d bytes",
		                       DIR_PASSWORD_MAX);
	if (has_control(pw))
		return directory_error(error_r, DIR_EINVALID,
		                       "password contains control characters");
	return DIR_OK;
}

static enum directory_err check_name(const char *name, char *error_r)
{
	size_t n = strnlen(name, DIR_NAME_MAX + 1);
	if (n > DIR_NAME_MAX)
		return directory_error(error_r, DIR_EINVALID, "display name longer than %d bytes",
		                       DIR_NAME_MAX);
	if (!address_utf8_is_valid(name, n) || has_control(name))
		return directory_error(error_r, DIR_EINVALID,
		                       "display name must be UTF-8 without control characters");
	return DIR_OK;
}

static enum directory_err hash_password(const char *pw, char out[PASSWORD_HASH_SIZE], char *error_r)
{
	const char *why;
	if (check_password(pw, error_r) != DIR_OK)
		return DIR_EINVALID;
	if (password_hash(pw, strlen(pw), out, PASSWORD_HASH_SIZE, &why) < 0) {
		log_error("event=password_hash_failed error=\"%s\"", why);
		return directory_error(error_r, DIR_ETEMP, "cannot hash the password: %s", why);
	}
	return DIR_OK;
}

static enum directory_err read_only(const struct directory *dir, char *error_r)
{
	return directory_error(error_r, DIR_EPERM, "the %s directory is read-only here",
	                       dir->ops->name);
}

/* ---- used by the protocols ---- */

/* A login that is not an address can only be an LDAP login attribute. */
static enum directory_auth authenticate_name(struct directory *dir, const char *login,
                                             const char *password, size_t pwlen,
                                             struct directory_account *account_r)
{
	if (login != NULL && login[0] != '\0' && directory_ldap_enabled(dir))
		return directory_ldap_authenticate(dir, login, password, account_r);
	/* Same cost as a real check: a bad login must not answer faster. */
	password_verify_dummy(password, pwlen);
	return DIR_AUTH_FAILED;
}

enum directory_auth directory_authenticate(struct directory *dir, const char *login,
                                           const char *password,
                                           struct directory_account *account_r)
{
	struct address a;
	char key[ADDRESS_BUF_SIZE];
	const char *why;
	size_t pwlen = password == NULL ? 0 : strnlen(password, DIR_PASSWORD_MAX + 1);

	if (password == NULL || pwlen == 0 || pwlen > DIR_PASSWORD_MAX) {
		/* Never an empty password: to LDAP it would be an anonymous bind. */
		password_verify_dummy("", 0);
		return DIR_AUTH_FAILED;
	}
	if (login == NULL || address_parse(login, strlen(login), &a, &why) < 0 || a.domain_literal)
		return authenticate_name(dir, login, password, pwlen, account_r);
	address_lookup_key(&a, key);
	bool ldap = false;
	if (directory_ldap_enabled(dir)) {
		if (ldapx_login_source(dir, key, &ldap) != DIR_OK)
			return DIR_AUTH_TEMPFAIL;
	}
	if (ldap)
		return directory_ldap_authenticate(dir, login, password, account_r);
	return dir->ops->authenticate(dir, key, password, pwlen, account_r);
}

enum directory_err directory_resolve(struct directory *dir, const char *address,
                                     struct directory_resolution *r, char *error_r)
{
	char scratch[DIR_ERROR_SIZE], key[ADDRESS_BUF_SIZE];
	struct address a;
	char *err = ERRBUF(error_r, scratch);

	memset(r, 0, sizeof(*r));
	err[0] = '\0';
	if (parse_address(address, &a, key, err) != DIR_OK)
		return DIR_EINVALID;
	enum directory_err e = dir->ops->resolve(dir, &a, r, err);
	if (e == DIR_ENOTFOUND) {
		/* Not in the store: maybe an LDAP user, alternate address or group
		 * (asked only for the domains LDAP serves; cached). */
		char lerr[DIR_ERROR_SIZE] = "";
		directory_resolution_free(r);
		enum directory_err le = directory_ldap_resolve(dir, &a, r, lerr);
		if (le != DIR_ENOTFOUND) {
			e = le;
			snprintf(err, DIR_ERROR_SIZE, "%s", lerr);
		}
	}
	if (e != DIR_OK)
		directory_resolution_free(r);
	return e;
}

void directory_resolution_free(struct directory_resolution *r)
{
	for (size_t i = 0; i < r->nremote; i++)
		free(r->remote[i]);
	free(r->remote);
	free(r->accounts);
	memset(r, 0, sizeof(*r));
}

enum directory_err directory_is_local_domain(struct directory *dir, const char *domain,
                                             bool *local_r, char *error_r)
{
	char scratch[DIR_ERROR_SIZE], name[ADDRESS_DOMAIN_MAX + 1];
	char *err = ERRBUF(error_r, scratch);

	*local_r = false;
	err[0] = '\0';
	if (parse_domain(domain, name, err) != DIR_OK)
		return DIR_OK; /* not even a name: certainly not ours */
	return dir->ops->is_local_domain(dir, name, local_r, err);
}

enum directory_err directory_account_get(struct directory *dir, const char *address,
                                         struct directory_account *account_r, char *error_r)
{
	char scratch[DIR_ERROR_SIZE], key[ADDRESS_BUF_SIZE];
	struct address a;
	char *err = ERRBUF(error_r, scratch);

	err[0] = '\0';
	if (parse_address(address, &a, key, err) != DIR_OK)
		return DIR_EINVALID;
	return dir->ops->account_get(dir, key, account_r, err);
}

enum directory_err directory_account_get_by_id(struct directory *dir, int64_t id,
                                               struct directory_account *account_r, char *error_r)
{
	char scratch[DIR_ERROR_SIZE];
	char *err = ERRBUF(error_r, scratch);
	err[0] = '\0';
	return dir->ops->account_get_by_id(dir, id, account_r, err);
}

/* ---- management: domains ---- */

enum directory_err directory_domain_add(struct directory *dir, const char *name, char *error_r)
{
	char scratch[DIR_ERROR_SIZE], domain[ADDRESS_DOMAIN_MAX + 1];
	char *err = ERRBUF(error_r, scratch);

	err[0] = '\0';
	if (dir->ops->domain_add == NULL)
		return read_only(dir, err);
	if (parse_domain(name, domain, err) != DIR_OK)
		return DIR_EINVALID;
	return dir->ops->domain_add(dir, domain, err);
}

enum directory_err directory_domain_list(struct directory *dir, struct directory_domain **domains_r,
                                         size_t *n_r, char *error_r)
{
	char scratch[DIR_ERROR_SIZE];
	char *err = ERRBUF(error_r, scratch);

	*domains_r = NULL;
	*n_r = 0;
	err[0] = '\0';
	if (dir->ops->domain_list == NULL)
		return read_only(dir, err);
	return dir->ops->domain_list(dir, domains_r, n_r, err);
}

enum directory_err directory_domain_remove(struct directory *dir, const char *name, bool force,
                                           char *error_r)
{
	char scratch[DIR_ERROR_SIZE], domain[ADDRESS_DOMAIN_MAX + 1];
	char *err = ERRBUF(error_r, scratch);

	err[0] = '\0';
	if (dir->ops->domain_remove == NULL)
		return read_only(dir, err);
	if (parse_domain(name, domain, err) != DIR_OK)
		return DIR_EINVALID;
	return dir->ops->domain_remove(dir, domain, force, err);
}

/* ---- management: accounts ---- */

enum directory_err directory_account_add(struct directory *dir, const char *address,
                                         const char *password, const char *display_name,
                                         int64_t *id_r, char *error_r)
{
	char scratch[DIR_ERROR_SIZE], key[ADDRESS_BUF_SIZE], hash[PASSWORD_HASH_SIZE];
	struct address a;
	char *err = ERRBUF(error_r, scratch);
	int64_t id = 0;

	err[0] = '\0';
	if (dir->ops->account_add == NULL)
		return read_only(dir, err);
	if (display_name == NULL)
		display_name = "";
	if (parse_address(address, &a, key, err) != DIR_OK ||
	    check_name(display_name, err) != DIR_OK)
		return DIR_EINVALID;
	enum directory_err e = hash_password(password, hash, err);
	if (e == DIR_OK)
		e = dir->ops->account_add(dir, &a, key, hash, display_name, &id, err);
	password_wipe(hash, sizeof(hash));
	if (e == DIR_OK && id_r != NULL)
		*id_r = id;
	return e;
}

static enum directory_err account_update(struct directory *dir, const char *address,
                                         const struct directory_change *change, char *error_r)
{
	char scratch[DIR_ERROR_SIZE], key[ADDRESS_BUF_SIZE];
	struct address a;
	char *err = ERRBUF(error_r, scratch);

	err[0] = '\0';
	if (dir->ops->account_update == NULL)
		return read_only(dir, err);
	if (parse_address(address, &a, key, err) != DIR_OK)
		return DIR_EINVALID;
	return dir->ops->account_update(dir, key, change, err);
}

enum directory_err directory_account_set_password(struct directory *dir, const char *address,
                                                  const char *password, char *error_r)
{
	char scratch[DIR_ERROR_SIZE], hash[PASSWORD_HASH_SIZE];
	char *err = ERRBUF(error_r, scratch);
	struct directory_change c = {.field = DIR_FIELD_PASSWORD_HASH, .text = hash};

	struct directory_account acct;
	err[0] = '\0';
	enum directory_err e = directory_account_get(dir, address, &acct, err);
	if (e == DIR_OK && acct.ldap)
		return directory_error(err, DIR_EPERM,
		                       "%s is managed by LDAP: change the password there", address);
	e = hash_password(password, hash, err);
	if (e == DIR_OK)
		e = account_update(dir, address, &c, err);
	password_wipe(hash, sizeof(hash));
	return e;
}

enum directory_err directory_account_set_name(struct directory *dir, const char *address,
                                              const char *display_name, char *error_r)
{
	char scratch[DIR_ERROR_SIZE];
	char *err = ERRBUF(error_r, scratch);
	struct directory_change c = {.field = DIR_FIELD_DISPLAY_NAME,
	                             .text = display_name == NULL ? "" : display_name};

	err[0] = '\0';
	if (check_name(c.text, err) != DIR_OK)
		return DIR_EINVALID;
	return account_update(dir, address, &c, err);
}

enum directory_err directory_account_set_quota(struct directory *dir, const char *address,
                                               uint64_t bytes, char *error_r)
{
	char scratch[DIR_ERROR_SIZE];
	char *err = ERRBUF(error_r, scratch);
	struct directory_change c = {.field = DIR_FIELD_QUOTA, .number = bytes};

	err[0] = '\0';
	if (bytes > (uint64_t)INT64_MAX)
		return directory_error(err, DIR_EINVALID, "quota too large");
	return account_update(dir, address, &c, err);
}

enum directory_err directory_account_set_admin(struct directory *dir, const char *address,
                                               bool is_admin, char *error_r)
{
	struct directory_change c = {.field = DIR_FIELD_ADMIN, .flag = is_admin};
	return account_update(dir, address, &c, error_r);
}

enum directory_err directory_account_set_disabled(struct directory *dir, const char *address,
                                                  bool disabled, char *error_r)
{
	struct directory_change c = {.field = DIR_FIELD_DISABLED, .flag = disabled};
	return account_update(dir, address, &c, error_r);
}

enum directory_err directory_account_list(struct directory *dir, const char *domain,
                                          struct directory_account **accounts_r, size_t *n_r,
                                          char *error_r)
{
	char scratch[DIR_ERROR_SIZE], name[ADDRESS_DOMAIN_MAX + 1];
	char *err = ERRBUF(error_r, scratch);

	*accounts_r = NULL;
	*n_r = 0;
	err[0] = '\0';
	if (dir->ops->account_list == NULL)
		return read_only(dir, err);
	if (domain != NULL && parse_domain(domain, name, err) != DIR_OK)
		return DIR_EINVALID;
	return dir->ops->account_list(dir, domain == NULL ? NULL : name, accounts_r, n_r, err);
}

enum directory_err directory_account_remove(struct directory *dir, const char *address,
                                            char *error_r)
{
	char scratch[DIR_ERROR_SIZE], key[ADDRESS_BUF_SIZE];
	struct address a;
	char *err = ERRBUF(error_r, scratch);

	err[0] = '\0';
	if (dir->ops->account_remove == NULL)
		return read_only(dir, err);
	if (parse_address(address, &a, key, err) != DIR_OK)
		return DIR_EINVALID;
	return dir->ops->account_remove(dir, key, err);
}

/* ---- management: aliases ---- */

static void free_keys(char **keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
}

/* Parses targets into lookup keys (an array of ntargets malloc'd strings). */
static enum directory_err parse_targets(const char *key, const char *const *targets,
                                        size_t ntargets, char ***keys_r, char *error_r)
{
	char **keys = xcalloc(ntargets + 1, sizeof(*keys));
	struct address a;
	char tkey[ADDRESS_BUF_SIZE] = "";

	for (size_t i = 0; i < ntargets; i++) {
		if (parse_address(targets[i], &a, tkey, error_r) != DIR_OK) {
			free_keys(keys, i);
			return DIR_EINVALID;
		}
		if (strcmp(tkey, key) == 0) {
			free_keys(keys, i);
			return directory_error(error_r, DIR_EINVALID,
			                       "an alias cannot point to itself");
		}
		keys[i] = xstrdup(tkey);
	}
	*keys_r = keys;
	return DIR_OK;
}

enum directory_err directory_alias_add(struct directory *dir, const char *address,
                                       const char *const *targets, size_t ntargets, char *error_r)
{
	char scratch[DIR_ERROR_SIZE];
	char key[ADDRESS_BUF_SIZE] = "", domain[ADDRESS_DOMAIN_MAX + 1] = "";
	char *err = ERRBUF(error_r, scratch);
	char **keys = NULL;

	err[0] = '\0';
	if (dir->ops->alias_add == NULL)
		return read_only(dir, err);
	if (parse_alias_address(address, domain, key, err) != DIR_OK)
		return DIR_EINVALID;
	if (ntargets == 0)
		return directory_error(err, DIR_EINVALID, "an alias needs at least one target");
	if (parse_targets(key, targets, ntargets, &keys, err) != DIR_OK)
		return DIR_EINVALID;
	enum directory_err e =
	    dir->ops->alias_add(dir, domain, key, (const char *const *)keys, ntargets, err);
	free_keys(keys, ntargets);
	return e;
}

enum directory_err directory_alias_list(struct directory *dir, const char *domain,
                                        struct directory_alias **aliases_r, size_t *n_r,
                                        char *error_r)
{
	char scratch[DIR_ERROR_SIZE], name[ADDRESS_DOMAIN_MAX + 1];
	char *err = ERRBUF(error_r, scratch);

	*aliases_r = NULL;
	*n_r = 0;
	err[0] = '\0';
	if (dir->ops->alias_list == NULL)
		return read_only(dir, err);
	if (domain != NULL && parse_domain(domain, name, err) != DIR_OK)
		return DIR_EINVALID;
	return dir->ops->alias_list(dir, domain == NULL ? NULL : name, aliases_r, n_r, err);
}

void directory_aliases_free(struct directory_alias **aliases, size_t n)
{
	if (*aliases == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free_keys((*aliases)[i].targets, (*aliases)[i].ntargets);
	free(*aliases);
	*aliases = NULL;
}

enum directory_err directory_alias_remove(struct directory *dir, const char *address,
                                          const char *const *targets, size_t ntargets,
                                          char *error_r)
{
	char scratch[DIR_ERROR_SIZE];
	char key[ADDRESS_BUF_SIZE] = "", domain[ADDRESS_DOMAIN_MAX + 1] = "";
	char *err = ERRBUF(error_r, scratch);
	char **keys = NULL;

	err[0] = '\0';
	if (dir->ops->alias_remove == NULL)
		return read_only(dir, err);
	if (parse_alias_address(address, domain, key, err) != DIR_OK ||
	    parse_targets(key, targets, ntargets, &keys, err) != DIR_OK)
		return DIR_EINVALID;
	enum directory_err e =
	    dir->ops->alias_remove(dir, key, (const char *const *)keys, ntargets, err);
	free_keys(keys, ntargets);
	return e;
}

/* ---- alias expansion, shared by the backends ---- */

void directory_lookup_clear(struct directory_lookup *l)
{
	free_keys(l->targets, l->ntargets);
	memset(l, 0, sizeof(*l));
}

struct expand {
	const struct directory *dir;
	const struct directory_lookup_fns *fns;
	void *ctx;
	struct directory_resolution *r;
	char **visited; /* alias keys already expanded: cuts loops */
	size_t nvisited;
	char *error_r;
};

static size_t expand_total(const struct expand *ex)
{
	return ex->r->naccounts + ex->r->nremote;
}

enum directory_err directory_resolution_add(struct directory_resolution *r, int64_t id,
                                            const char *remote, char *error_r)
{
	char scratch[DIR_ERROR_SIZE];
	for (size_t i = 0; remote == NULL && i < r->naccounts; i++) {
		if (r->accounts[i] == id)
			return DIR_OK;
	}
	for (size_t i = 0; remote != NULL && i < r->nremote; i++) {
		if (strcmp(r->remote[i], remote) == 0)
			return DIR_OK;
	}
	if (r->naccounts + r->nremote >= DIR_RESOLVE_MAX_RESULTS)
		return directory_error(ERRBUF(error_r, scratch), DIR_EINVALID,
		                       "alias expands to more than %d recipients",
		                       DIR_RESOLVE_MAX_RESULTS);
	if (remote != NULL) {
		r->remote = xreallocarray(r->remote, r->nremote + 1, sizeof(*r->remote));
		r->remote[r->nremote++] = xstrdup(remote);
	} else {
		r->accounts = xreallocarray(r->accounts, r->naccounts + 1, sizeof(*r->accounts));
		r->accounts[r->naccounts++] = id;
	}
	return DIR_OK;
}

static enum directory_err add_account(struct expand *ex, int64_t id)
{
	return directory_resolution_add(ex->r, id, NULL, ex->error_r);
}

static enum directory_err add_remote(struct expand *ex, const char *key)
{
	return directory_resolution_add(ex->r, 0, key, ex->error_r);
}

/* Marks an alias as expanded; false if it already was. */
static bool visit(struct expand *ex, const char *key)
{
	for (size_t i = 0; i < ex->nvisited; i++) {
		if (strcmp(ex->visited[i], key) == 0)
			return false;
	}
	ex->visited = xreallocarray(ex->visited, ex->nvisited + 1, sizeof(*ex->visited));
	ex->visited[ex->nvisited++] = xstrdup(key);
	return true;
}

static enum directory_err expand_address(struct expand *ex, const struct address *a,
                                         unsigned depth);

static enum directory_err expand_targets(struct expand *ex, const char *key,
                                         const struct directory_lookup *l, unsigned depth)
{
	char q[LOG_QUOTE_MAX];
	if (!visit(ex, key))
		return DIR_OK; /* a loop, or a list reached twice: once is enough */
	if (depth >= DIR_RESOLVE_MAX_DEPTH) {
		log_warn("event=alias_too_deep alias=%s", log_quote(q, sizeof(q), key));
		return DIR_OK;
	}
	for (size_t i = 0; i < l->ntargets; i++) {
		struct address t;
		const char *why;
		if (address_parse(l->targets[i], strlen(l->targets[i]), &t, &why) < 0) {
			char q2[LOG_QUOTE_MAX];
			log_warn("event=alias_target_invalid alias=%s target=%s",
			         log_quote(q, sizeof(q), key),
			         log_quote(q2, sizeof(q2), l->targets[i]));
			continue;
		}
		enum directory_err e = expand_address(ex, &t, depth + 1);
		if (e != DIR_OK)
			return e;
	}
	return DIR_OK;
}

/* Looks key up; *found_r says whether it named an account or an alias. */
static enum directory_err expand_key(struct expand *ex, const char *key, unsigned depth,
                                     bool *found_r)
{
	struct directory_lookup l = {0};
	char q[LOG_QUOTE_MAX];
	enum directory_err e = ex->fns->lookup(ex->ctx, key, &l);

	*found_r = e == DIR_OK && l.kind != DIR_LOOKUP_NONE;
	if (e != DIR_OK)
		return directory_error(ex->error_r, e, "directory lookup failed");
	if (l.kind == DIR_LOOKUP_ACCOUNT && !l.disabled)
		e = add_account(ex, l.account_id);
	else if (l.kind == DIR_LOOKUP_ACCOUNT && depth == 0)
		e = directory_error(ex->error_r, DIR_EPERM, "account %s is disabled", key);
	else if (l.kind == DIR_LOOKUP_ACCOUNT)
		log_info("event=alias_target_disabled target=%s", log_quote(q, sizeof(q), key));
	else if (l.kind == DIR_LOOKUP_ALIAS)
		e = expand_targets(ex, key, &l, depth);
	directory_lookup_clear(&l);
	return e;
}

/* The lookup order of directory_resolve() within a local domain. */
static enum directory_err expand_local(struct expand *ex, const struct address *a, unsigned depth)
{
	char key[ADDRESS_BUF_SIZE], q[LOG_QUOTE_MAX];
	struct address base;
	bool found;

	address_lookup_key(a, key);
	enum directory_err e = expand_key(ex, key, depth, &found);
	if (found || e != DIR_OK)
		return e;
	if (address_split_detail(a, ex->dir->detail_separator, &base, NULL) == 1) {
		address_lookup_key(&base, key);
		e = expand_key(ex, key, depth, &found);
		if (found || e != DIR_OK)
			return e;
	}
	key[0] = '@';
	memcpy(key + 1, a->domain, a->domain_len + 1);
	e = expand_key(ex, key, depth, &found);
	if (found || e != DIR_OK)
		return e;
	address_lookup_key(a, key);
	if (depth == 0)
		return directory_error(ex->error_r, DIR_ENOTFOUND, "no such user %s", key);
	log_warn("event=alias_target_unknown target=%s", log_quote(q, sizeof(q), key));
	return DIR_OK;
}

static enum directory_err expand_address(struct expand *ex, const struct address *a, unsigned depth)
{
	char key[ADDRESS_BUF_SIZE];
	bool local = false;

	if (!a->domain_literal) {
		enum directory_err e = ex->fns->is_local_domain(ex->ctx, a->domain, &local);
		if (e != DIR_OK)
			return directory_error(ex->error_r, e, "directory lookup failed");
	}
	if (local)
		return expand_local(ex, a, depth);
	if (depth == 0)
		return directory_error(ex->error_r, DIR_ENOTFOUND, "%s is not a local domain",
		                       a->domain);
	address_lookup_key(a, key);
	return add_remote(ex, key);
}

enum directory_err directory_expand(const struct directory *dir,
                                    const struct directory_lookup_fns *fns, void *ctx,
                                    const struct address *a, struct directory_resolution *r,
                                    char *error_r)
{
	struct expand ex = {.dir = dir, .fns = fns, .ctx = ctx, .r = r, .error_r = error_r};
	char key[ADDRESS_BUF_SIZE];

	enum directory_err e = expand_address(&ex, a, 0);
	free_keys(ex.visited, ex.nvisited);
	if (e == DIR_OK && expand_total(&ex) == 0) {
		address_lookup_key(a, key);
		e = directory_error(error_r, DIR_ENOTFOUND, "%s has no valid recipients", key);
	}
	return e;
}
