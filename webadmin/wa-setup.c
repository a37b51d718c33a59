/* wa-setup.c - the first administrator. There is never a default password:
 * while no administrator exists, `roost serve` logs a one-time link whose
 * token (kept only as its SHA-256) lets the first visitor create one. */
#include "webadmin-private.h"

#include "log.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int wa_admin_exists(struct webadmin *wa, bool *r)
{
	PGresult *res = wa_db_exec(
	    wa, "SELECT EXISTS (SELECT 1 FROM accounts WHERE is_admin AND NOT disabled)", 0, NULL);
	if (res == NULL)
		return -1;
	*r = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return 0;
}

static void wa_setup_log_link(const struct webadmin *wa, const struct config *cfg,
                              const char *token)
{
	struct config_listen_addr *addrs = NULL;
	size_t n = 0;
	if (config_listen(cfg, CFG_LISTEN_HTTPS, &addrs, &n) < 0 || n == 0) {
		log_warn("event=no_admin hint=\"no https listener: grant the role with "
		         "'roost admin add ADDRESS'\"");
		free(addrs);
		return;
	}
	char port[16] = "";
	if (strcmp(addrs[0].port, "443") != 0)
		snprintf(port, sizeof(port), ":%s", addrs[0].port);
	log_warn("event=setup_link url=https://%s%s/#setup=%s expires_in=%us "
	         "note=\"no administrator yet: open this link once to create one\"",
	         wa->hostname, port, token, wa->setup_link_s);
	free(addrs);
}

int wa_setup_announce(struct webadmin *wa, const struct config *cfg)
{
	bool exists;
	if (wa_admin_exists(wa, &exists) < 0)
		return -1;
	if (exists) {
		PQclear(wa_db_exec(wa, "DELETE FROM web_setup_tokens", 0, NULL));
		return 0;
	}
	char token[WA_TOKEN_HEX + 1], hash[67];
	if (wa_random_hex(token, WA_TOKEN_BYTES) < 0)
		return -1;
	wa_sha256_bytea(token, hash);
	char lifetime[16];
	snprintf(lifetime, sizeof(lifetime), "%u", wa->setup_link_s);
	const char *params[] = {hash, lifetime};
	PGresult *res = wa_db_exec(wa,
	                           "WITH old AS (DELETE FROM web_setup_tokens) "
	                           "INSERT INTO web_setup_tokens (token_sha256, expires_at) "
	                           "VALUES ($1::bytea, now() + make_interval(secs => $2::int))",
	                           2, params);
	if (res == NULL)
		return -1;
	PQclear(res);
	wa_setup_log_link(wa, cfg, token);
	OPENSSL_cleanse(token, sizeof(token));
	return 0;
}

/* Takes the token (single use): 1 if it was valid, 0 if not; *expires_r
 * keeps its expiry so a failed set-up can put it back. */
static int wa_setup_take(struct webadmin *wa, const char *token, char hash[67], char expires_r[64])
{
	wa_sha256_bytea(token, hash);
	const char *params[] = {hash};
	PGresult *res = wa_db_exec(
	    wa,
	    "DELETE FROM web_setup_tokens WHERE token_sha256 = $1::bytea AND expires_at > now() "
	    "AND NOT EXISTS (SELECT 1 FROM accounts WHERE is_admin AND NOT disabled) "
	    "RETURNING expires_at",
	    1, params);
	if (res == NULL)
		return -1;
	int r = PQntuples(res) == 1;
	if (r)
		snprintf(expires_r, 64, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return r;
}

static void wa_setup_put_back(struct webadmin *wa, const char *hash, const char *expires)
{
	const char *params[] = {hash, expires};
	PQclear(wa_db_exec(wa,
	                   "INSERT INTO web_setup_tokens (token_sha256, expires_at) "
	                   "VALUES ($1::bytea, $2::timestamptz) ON CONFLICT DO NOTHING",
	                   2, params));
}

/* The domain of address (added when missing), the account, the role. */
static enum directory_err wa_setup_create(struct webadmin *wa, const char *address,
                                          const char *password, const char *name,
                                          struct directory_account *acct, char *err,
                                          const char **field_r)
{
	struct address a;
	const char *perr;
	*field_r = "address";
	if (address_parse(address, strlen(address), &a, &perr) < 0) {
		snprintf(err, DIR_ERROR_SIZE, "invalid address: %s", perr);
		return DIR_EINVALID;
	}
	enum directory_err e = directory_domain_add(wa->dir, a.domain, err);
	if (e != DIR_OK && e != DIR_EEXISTS)
		return e;
	e = directory_account_add(wa->dir, address, password, name, NULL, err);
	if (e == DIR_OK)
		e = directory_account_set_admin(wa->dir, address, true, err);
	if (e == DIR_OK)
		e = directory_account_get(wa->dir, address, acct, err);
	return e;
}

int wa_setup(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	json_t *o;
	if (wa_body_object(req, resp, &o) != 0)
		return 0;
	const char *token, *address, *password, *name;
	char hash[67], expires[64], err[DIR_ERROR_SIZE];
	int r = 0;
	if (wa_field_str(o, "token", true, WA_TOKEN_HEX, resp, &token) != 0 ||
	    wa_field_str(o, "address", true, ADDRESS_MAX, resp, &address) != 0 ||
	    wa_field_str(o, "password", true, DIR_PASSWORD_MAX, resp, &password) != 0 ||
	    wa_field_str(o, "display_name", false, DIR_NAME_MAX, resp, &name) != 0)
		goto out;
	int taken = wa_setup_take(wa, token, hash, expires);
	if (taken <= 0) {
		r = taken;
		if (taken == 0)
			wa_error(
			    resp, 403, "token",
			    "this setup link was already used or has expired; an administrator "
			    "can be made with 'roost admin add ADDRESS'");
		goto out;
	}
	struct directory_account acct;
	const char *field;
	enum directory_err e = wa_setup_create(wa, address, password, name, &acct, err, &field);
	if (e != DIR_OK) {
		wa_setup_put_back(wa, hash, expires);
		wa_dir_error(resp, e, err, field);
		goto out;
	}
	log_info("event=web_setup_done admin=%s peer=%s", acct.address, req->peer_ip);
	r = wa_session_start(wa, req, resp, &acct);
out:
	json_decref(o);
	return r;
}
