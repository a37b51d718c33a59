/* wa-domains.c - /api/v1/domains and /api/v1/aliases. */
#include "webadmin-private.h"

#include "../db/queue.h"
#include "dns-records.h"
#include "log.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Storage used per domain, as name -> bytes. */
static json_t *wa_domain_storage(struct webadmin *wa)
{
	PGresult *res = wa_db_exec(wa,
	                           "SELECT d.name, coalesce(sum(a.used_bytes), 0) FROM domains d "
	                           "LEFT JOIN accounts a ON a.domain_id = d.id GROUP BY d.name",
	                           0, NULL);
	if (res == NULL)
		return NULL;
	json_t *o = json_object();
	for (int i = 0; i < PQntuples(res); i++)
		json_object_set_new(o, PQgetvalue(res, i, 0), json_integer(wa_db_int(res, i, 1)));
	PQclear(res);
	return o;
}

int wa_domains_list(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	(void)req;
	struct directory_domain *doms = NULL;
	size_t n = 0;
	char err[DIR_ERROR_SIZE];
	enum directory_err e = directory_domain_list(wa->dir, &doms, &n, err);
	if (e != DIR_OK) {
		wa_dir_error(resp, e, err, NULL);
		return 0;
	}
	json_t *storage = wa_domain_storage(wa);
	if (storage == NULL) {
		free(doms);
		return -1;
	}
	json_t *items = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *used = json_object_get(storage, doms[i].name);
		json_array_append_new(
		    items, json_pack("{s:s, s:I, s:I, s:I}", "name", doms[i].name, "accounts",
		                     (json_int_t)doms[i].accounts, "aliases",
		                     (json_int_t)doms[i].aliases, "used_bytes",
		                     used != NULL ? json_integer_value(used) : (json_int_t)0));
	}
	free(doms);
	json_decref(storage);
	return wa_json(resp, 200, json_pack("{s:o, s:I}", "items", items, "total", (json_int_t)n));
}

int wa_domains_add(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	json_t *o;
	if (wa_body_object(req, resp, &o) != 0)
		return 0;
	const char *name;
	char err[DIR_ERROR_SIZE];
	int r = 0;
	if (wa_field_str(o, "name", true, ADDRESS_DOMAIN_MAX, resp, &name) == 0) {
		enum directory_err e = directory_domain_add(wa->dir, name, err);
		if (e != DIR_OK) {
			wa_dir_error(resp, e, err, "name");
		} else {
			log_info("event=web_domain_add domain=%s by=%s", name,
			         wa_auth_of(req)->address);
			char norm[ADDRESS_DOMAIN_MAX + 1];
			if (address_normalize_domain(name, norm, sizeof(norm)) < 0)
				snprintf(norm, sizeof(norm), "%s", name);
			r = wa_json(resp, 201, json_pack("{s:s}", "name", norm));
		}
	}
	json_decref(o);
	return r;
}

int wa_domains_remove(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	const char *name = http_request_param(req, "name");
	const char *force = http_request_query(req, "force");
	char err[DIR_ERROR_SIZE];
	if (!wa_confirmed(req, resp, name))
		return 0;
	bool f = force != NULL && (strcmp(force, "yes") == 0 || strcmp(force, "true") == 0);
	enum directory_err e = directory_domain_remove(wa->dir, name, f, err);
	if (e != DIR_OK) {
		wa_dir_error(resp, e, err, e == DIR_EEXISTS ? "force" : "name");
		return 0;
	}
	log_info("event=web_domain_remove domain=%s force=%s by=%s", name, f ? "yes" : "no",
	         wa_auth_of(req)->address);
	return wa_json(resp, 200, json_pack("{s:s}", "removed", name));
}

/* The records to publish for a domain (core/dns-records.h), with its DKIM
 * key, which is made on first request. */
int wa_domains_dns(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	const char *name = http_request_param(req, "name");
	bool local = false;
	char err[DIR_ERROR_SIZE];
	enum directory_err e = directory_is_local_domain(wa->dir, name, &local, err);
	if (e == DIR_OK && !local) {
		e = DIR_ENOTFOUND;
		snprintf(err, sizeof(err), "unknown domain %s", name);
	}
	if (e != DIR_OK) {
		wa_dir_error(resp, e, err, "name");
		return 0;
	}
	char dom[ADDRESS_DOMAIN_MAX + 1];
	address_normalize_domain(name, dom, sizeof(dom));
	PGconn *conn = db_pool_borrow(wa->pool, WA_BORROW_MS);
	if (conn == NULL)
		return -1;
	struct queue_dkim_key k;
	memset(&k, 0, sizeof(k));
	int got = queue_dkim_key_get(conn, dom, true, &k);
	db_pool_return(wa->pool, &conn);
	if (got < 0)
		return -1;
	struct dns_dkim dkim = {k.selector, k.algorithm, k.public_b64};
	struct dns_record recs[DNS_RECORDS_MAX];
	size_t n = dns_records(dom, wa->hostname, got > 0 ? &dkim : NULL, recs);
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *r = json_pack("{s:s, s:s, s:s, s:s}", "name", buf_cstr(&recs[i].name),
		                      "type", recs[i].type, "value", buf_cstr(&recs[i].value),
		                      "purpose", recs[i].purpose);
		if (recs[i].kind == DNS_RECORD_DKIM) {
			json_object_set_new(r, "selector", json_string(k.selector));
			json_object_set_new(r, "algorithm", json_string(k.algorithm));
		}
		json_array_append_new(arr, r);
	}
	dns_records_free(recs, n);
	queue_dkim_key_free(&k);
	return wa_json(resp, 200, json_pack("{s:s, s:o}", "domain", dom, "records", arr));
}

/* ---- aliases and distribution lists ---- */

static bool wa_alias_matches(const struct directory_alias *al, const char *q)
{
	if (q == NULL || q[0] == '\0' || strcasestr(al->address, q) != NULL)
		return true;
	for (size_t i = 0; i < al->ntargets; i++)
		if (strcasestr(al->targets[i], q) != NULL)
			return true;
	return false;
}

static json_t *wa_alias_json(const struct directory_alias *al)
{
	json_t *t = json_array();
	for (size_t i = 0; i < al->ntargets; i++)
		json_array_append_new(t, json_string(al->targets[i]));
	return json_pack("{s:s, s:o, s:b}", "address", al->address, "targets", t, "catch_all",
	                 al->address[0] == '@');
}

int wa_aliases_list(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	size_t offset, limit;
	if (wa_paging(req, resp, &offset, &limit) != 0)
		return 0;
	const char *domain = http_request_query(req, "domain");
	const char *q = http_request_query(req, "q");
	struct directory_alias *al = NULL;
	size_t n = 0, total = 0;
	char err[DIR_ERROR_SIZE];
	enum directory_err e = directory_alias_list(
	    wa->dir, domain != NULL && domain[0] != '\0' ? domain : NULL, &al, &n, err);
	if (e != DIR_OK) {
		wa_dir_error(resp, e, err, "domain");
		return 0;
	}
	json_t *items = json_array();
	for (size_t i = 0; i < n; i++) {
		if (!wa_alias_matches(&al[i], q))
			continue;
		if (total >= offset && total - offset < limit)
			json_array_append_new(items, wa_alias_json(&al[i]));
		total++;
	}
	directory_aliases_free(&al, n);
	return wa_json(resp, 200,
	               json_pack("{s:o, s:I, s:I, s:I}", "items", items, "total", (json_int_t)total,
	                         "offset", (json_int_t)offset, "limit", (json_int_t)limit));
}

/* targets: an array of strings, or one string of addresses separated by
 * commas, spaces or new lines (as typed into the form). At most
 * DIR_RESOLVE_MAX_RESULTS of them: no alias expands to more recipients. */
static int wa_alias_targets(json_t *o, struct http_response *resp, char ***targets_r, size_t *n_r)
{
	json_t *v = json_object_get(o, "targets");
	char **t = NULL, many[64];
	size_t n = 0;
	const char *why = NULL;
	snprintf(many, sizeof(many), "targets: at most %d targets at a time",
	         DIR_RESOLVE_MAX_RESULTS);
	if (json_is_string(v)) {
		char *copy = xstrdup(json_string_value(v)), *save = NULL;
		for (char *tok = strtok_r(copy, ", \t\r\n", &save); tok != NULL;
		     tok = strtok_r(NULL, ", \t\r\n", &save)) {
			if (n == DIR_RESOLVE_MAX_RESULTS) {
				why = many;
				break;
			}
			t = xreallocarray(t, n + 1, sizeof(*t));
			t[n++] = xstrdup(tok);
		}
		free(copy);
	} else if (json_is_array(v) && json_array_size(v) > DIR_RESOLVE_MAX_RESULTS) {
		why = many;
	} else if (json_is_array(v)) {
		size_t i;
		json_t *el;
		json_array_foreach(v, i, el)
		{
			if (!json_is_string(el)) {
				why = "targets must be addresses";
				break;
			}
			t = xreallocarray(t, n + 1, sizeof(*t));
			t[n++] = xstrdup(json_string_value(el));
		}
	}
	if (why == NULL && n == 0)
		why = "targets: give at least one address";
	if (why != NULL) {
		for (size_t i = 0; i < n; i++)
			free(t[i]);
		free(t);
		wa_error(resp, 400, "targets", why);
		return 1;
	}
	*targets_r = t;
	*n_r = n;
	return 0;
}

int wa_aliases_add(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	json_t *o;
	if (wa_body_object(req, resp, &o) != 0)
		return 0;
	const char *address;
	char **targets = NULL, err[DIR_ERROR_SIZE];
	size_t n = 0;
	int r = 0;
	if (wa_field_str(o, "address", true, ADDRESS_MAX, resp, &address) == 0 &&
	    wa_alias_targets(o, resp, &targets, &n) == 0) {
		enum directory_err e =
		    directory_alias_add(wa->dir, address, (const char *const *)targets, n, err);
		if (e != DIR_OK) {
			/* The message names the bad address; say which field holds it. */
			const char *field = strstr(err, "target") != NULL ? "targets" : "address";
			wa_dir_error(resp, e, err, field);
		} else {
			log_info("event=web_alias_add alias=%s targets=%zu by=%s", address, n,
			         wa_auth_of(req)->address);
			r = wa_json(
			    resp, 201,
			    json_pack("{s:s, s:I}", "address", address, "added", (json_int_t)n));
		}
	}
	for (size_t i = 0; i < n; i++)
		free(targets[i]);
	free(targets);
	json_decref(o);
	return r;
}

int wa_aliases_remove(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	const char *address = http_request_param(req, "address");
	char err[DIR_ERROR_SIZE];
	if (!wa_confirmed(req, resp, address))
		return 0;
	enum directory_err e = directory_alias_remove(wa->dir, address, NULL, 0, err);
	if (e != DIR_OK) {
		wa_dir_error(resp, e, err, "address");
		return 0;
	}
	log_info("event=web_alias_remove alias=%s by=%s", address, wa_auth_of(req)->address);
	return wa_json(resp, 200, json_pack("{s:s}", "removed", address));
}

int wa_aliases_remove_target(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	const char *address = http_request_param(req, "address");
	const char *target = http_request_param(req, "target");
	char err[DIR_ERROR_SIZE];
	enum directory_err e = directory_alias_remove(wa->dir, address, &target, 1, err);
	if (e != DIR_OK) {
		wa_dir_error(resp, e, err, "target");
		return 0;
	}
	log_info("event=web_alias_remove alias=%s target=%s by=%s", address, target,
	         wa_auth_of(req)->address);
	return wa_json(resp, 200, json_pack("{s:s, s:s}", "address", address, "removed", target));
}
