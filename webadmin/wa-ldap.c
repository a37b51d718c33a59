/* wa-ldap.c - /api/v1/ldap: the LDAP settings page of the browser admin,
 * its "test connection" and "sync now" buttons (directory/ldap-admin.h). */
#include "webadmin-private.h"

#include "buf.h"
#include "ldap-admin.h"
#include "log.h"
#include "xalloc.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest value accepted for one setting (URL lists, filters, DNs). */
#define WA_LDAP_VALUE_MAX 4096
/* Most text directory_ldap_test() may report. */
#define WA_LDAP_REPORT_MAX (64 * 1024)

/* One setting as the API shows it; the bind password only as "set" or
 * "not set", never its value. */
static json_t *wa_ldap_setting_json(const struct directory_ldap_setting *s)
{
	const char *value = s->value;
	if (s->secret)
		value = s->is_set ? "set" : "not set";
	return json_pack("{s:s, s:s, s:s, s:b, s:b}", "key", s->key, "value", value, "help",
	                 s->help, "default", !s->is_set && !s->secret, "secret", s->secret);
}

int wa_ldap_get(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	(void)req;
	struct directory_ldap_setting *list = NULL;
	size_t n = 0;
	char err[DIR_ERROR_SIZE] = "";
	enum directory_err e = directory_ldap_settings_get(wa->dir, &list, &n, err);
	if (e != DIR_OK) {
		wa_dir_error(resp, e, err, NULL);
		return 0;
	}
	json_t *settings = json_array();
	bool enabled = false, pw_set = false;
	for (size_t i = 0; i < n; i++) {
		json_array_append_new(settings, wa_ldap_setting_json(&list[i]));
		if (strcmp(list[i].key, "urls") == 0)
			enabled = list[i].value[0] != '\0';
		if (list[i].secret)
			pw_set = list[i].is_set;
	}
	directory_ldap_settings_free(&list, n);
	return wa_json(resp, 200,
	               json_pack("{s:b, s:s, s:o}", "enabled", enabled, "bind_password",
	                         pw_set ? "set" : "not set", "settings", settings));
}

/* The text of one member: strings as they are, booleans as yes/no, whole
 * numbers in decimal (into num). NULL when the type does not fit. */
static const char *wa_ldap_value(json_t *v, char num[24])
{
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_boolean(v))
		return json_is_true(v) ? "yes" : "no";
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		snprintf(num, 24, "%lld", (long long)json_integer_value(v));
		return num;
	}
	return NULL;
}

/* The bad key named by directory_ldap_settings_set()'s message ("ldap
 * KEY: ...", "unknown LDAP setting KEY"), among the keys sent. */
static const char *wa_ldap_bad_key(const char *err, const char *const *keys, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(keys[i]);
		if ((strncmp(err, "ldap ", 5) == 0 && strncmp(err + 5, keys[i], len) == 0 &&
		     err[5 + len] == ':') ||
		    (strncmp(err, "unknown LDAP setting ", 21) == 0 &&
		     strcmp(err + 21, keys[i]) == 0))
			return keys[i];
	}
	return NULL;
}

/* Collects the members of obj as keys/values (the preset first, since it
 * is applied before the keys that override it; an empty bind password
 * left out so that the stored one is kept). n_r pairs, or 1 after a 400. */
static int wa_ldap_pairs(json_t *obj, struct http_response *resp, const char **keys,
                         const char **values, char (*nums)[24], size_t *n_r)
{
	size_t n = 0;
	const char *key;
	json_t *v;
	json_t *preset = json_object_get(obj, "preset");
	if (preset != NULL && json_is_string(preset) && json_string_length(preset) > 0) {
		keys[n] = "preset";
		values[n++] = json_string_value(preset);
	}
	json_object_foreach(obj, key, v)
	{
		if (strcmp(key, "preset") == 0 && preset != NULL && json_is_string(preset))
			continue;
		const char *s = wa_ldap_value(v, nums[n]);
		if (s == NULL || strlen(s) > WA_LDAP_VALUE_MAX) {
			char msg[160];
			snprintf(msg, sizeof(msg), "%.64s must be a string of at most %d bytes",
			         key, WA_LDAP_VALUE_MAX);
			wa_error(resp, 400, key, msg);
			return 1;
		}
		if (strcmp(key, "bind_password") == 0 && s[0] == '\0')
			continue;
		keys[n] = key;
		values[n++] = s;
	}
	*n_r = n;
	return 0;
}

int wa_ldap_set(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	json_t *obj;
	if (wa_body_object(req, resp, &obj) != 0)
		return 0;
	size_t max = json_object_size(obj) + 1, n = 0;
	const char **keys = xcalloc(max, sizeof(*keys));
	const char **values = xcalloc(max, sizeof(*values));
	char(*nums)[24] = xcalloc(max, sizeof(*nums));
	char err[DIR_ERROR_SIZE] = "";
	if (wa_ldap_pairs(obj, resp, keys, values, nums, &n) == 0) {
		enum directory_err e = directory_ldap_settings_set(wa->dir, keys, values, n, err);
		if (e == DIR_OK) {
			log_info("event=web_ldap_set user=%s keys=%zu", wa_auth_of(req)->address,
			         n);
			wa_ldap_get(req, resp, ctx);
		} else {
			wa_dir_error(resp, e, err, wa_ldap_bad_key(err, keys, n));
		}
	}
	/* The bind password may be among the values: wipe it from the parsed
	 * body and from the raw one. */
	json_t *pw = json_object_get(obj, "bind_password");
	if (json_is_string(pw))
		OPENSSL_cleanse((char *)json_string_value(pw), json_string_length(pw));
	if (req->body.data != NULL)
		OPENSSL_cleanse(req->body.data, req->body.len);
	free(keys);
	free(values);
	free(nums);
	json_decref(obj);
	return 0;
}

/* The optional "login" member of a JSON body (an empty body is allowed).
 * 0 with *obj_r (may be NULL) and *login_r (may be NULL), or 1 after a 400. */
static int wa_ldap_login_arg(struct http_request *req, struct http_response *resp, json_t **obj_r,
                             const char **login_r)
{
	*obj_r = NULL;
	*login_r = NULL;
	if (req->body.len == 0)
		return 0;
	if (wa_body_object(req, resp, obj_r) != 0)
		return 1;
	if (wa_field_str(*obj_r, "login", false, ADDRESS_BUF_SIZE, resp, login_r) != 0) {
		json_decref(*obj_r);
		return 1;
	}
	if (*login_r != NULL && (*login_r)[0] == '\0')
		*login_r = NULL;
	return 0;
}

/* A test that could not connect or did not find the user still ran: 200
 * with ok false and what went wrong, so that the page shows the report.
 * LDAP not configured is the caller's mistake (400 naming urls). */
int wa_ldap_test(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	json_t *obj;
	const char *login;
	if (wa_ldap_login_arg(req, resp, &obj, &login) != 0)
		return 0;
	struct buf report;
	char err[DIR_ERROR_SIZE] = "";
	buf_init(&report, WA_LDAP_REPORT_MAX);
	enum directory_err e = directory_ldap_test(wa->dir, login, &report, err);
	if (e == DIR_EINVALID) {
		wa_error(resp, 400, "urls", err[0] != '\0' ? err : "LDAP is not configured");
	} else {
		const char *msg = err[0] != '\0' ? err : directory_err_str(e);
		if (e != DIR_OK && buf_printf(&report, "error: %s\n", msg) < 0)
			buf_truncate(&report, 0);
		json_t *o = json_pack("{s:b, s:s}", "ok", e == DIR_OK, "report", buf_cstr(&report));
		if (o != NULL && e != DIR_OK)
			json_object_set_new(o, "error", json_string(msg));
		wa_json(resp, 200, o);
	}
	buf_free(&report);
	json_decref(obj);
	return 0;
}

int wa_ldap_sync(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct webadmin *wa = ctx;
	struct directory_ldap_sync_stats st;
	char err[DIR_ERROR_SIZE] = "";
	enum directory_err e = directory_ldap_sync(wa->dir, &st, err);
	if (e == DIR_EINVALID) {
		wa_error(resp, 400, "urls", err[0] != '\0' ? err : "LDAP is not configured");
		return 0;
	}
	if (e != DIR_OK) {
		/* Unlike other endpoints, say why: the admin is checking the link. */
		wa_error(resp, 503, NULL, err[0] != '\0' ? err : directory_err_str(e));
		return 0;
	}
	log_info("event=web_ldap_sync user=%s checked=%u updated=%u disabled=%u enabled=%u",
	         wa_auth_of(req)->address, st.checked, st.updated, st.disabled, st.enabled);
	return wa_json(resp, 200,
	               json_pack("{s:I, s:I, s:I, s:I}", "checked", (json_int_t)st.checked,
	                         "updated", (json_int_t)st.updated, "disabled",
	                         (json_int_t)st.disabled, "enabled", (json_int_t)st.enabled));
}
