/* wa-json.c - request bodies, JSON answers, and errors that name the field. */
#include "webadmin-private.h"

#include "strnum.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void wa_error(struct http_response *resp, unsigned status, const char *field, const char *message)
{
	json_t *o = json_pack("{s:s}", "error", message);
	if (o != NULL && field != NULL)
		json_object_set_new(o, "field", json_string(field));
	char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	if (s == NULL) {
		http_response_error(resp, status, message);
	} else {
		http_response_json(resp, status, s);
		free(s);
	}
	json_decref(o);
}

int wa_json(struct http_response *resp, unsigned status, json_t *v)
{
	if (v == NULL)
		return -1;
	char *s = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	if (s == NULL)
		return -1;
	http_response_json(resp, status, s);
	free(s);
	return 0;
}

int wa_body_object(struct http_request *req, struct http_response *resp, json_t **obj_r)
{
	json_error_t jerr;
	if (req->body.len == 0) {
		wa_error(resp, 400, NULL, "a JSON object is required in the body");
		return 1;
	}
	json_t *o = json_loadb(req->body.data, req->body.len, JSON_REJECT_DUPLICATES, &jerr);
	if (o == NULL) {
		char msg[256];
		snprintf(msg, sizeof(msg), "invalid JSON at line %d column %d: %s", jerr.line,
		         jerr.column, jerr.text);
		wa_error(resp, 400, NULL, msg);
		return 1;
	}
	if (!json_is_object(o)) {
		json_decref(o);
		wa_error(resp, 400, NULL, "the body must be a JSON object");
		return 1;
	}
	*obj_r = o;
	return 0;
}

static bool wa_has_control(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return true;
	return false;
}

int wa_field_str(json_t *obj, const char *name, bool required, size_t max_len,
                 struct http_response *resp, const char **r)
{
	json_t *v = json_object_get(obj, name);
	char msg[128];
	*r = NULL;
	if (v == NULL || json_is_null(v)) {
		if (!required)
			return 0;
		snprintf(msg, sizeof(msg), "%s is required", name);
	} else if (!json_is_string(v)) {
		snprintf(msg, sizeof(msg), "%s must be a string", name);
	} else if (json_string_length(v) > max_len) {
		snprintf(msg, sizeof(msg), "%s is longer than %zu bytes", name, max_len);
	} else if (strlen(json_string_value(v)) != json_string_length(v) ||
	           wa_has_control(json_string_value(v))) {
		snprintf(msg, sizeof(msg), "%s must not contain control characters", name);
	} else if (required && json_string_length(v) == 0) {
		snprintf(msg, sizeof(msg), "%s is required", name);
	} else {
		*r = json_string_value(v);
		return 0;
	}
	wa_error(resp, 400, name, msg);
	return 1;
}

int wa_field_bool(json_t *obj, const char *name, struct http_response *resp, bool *present_r,
                  bool *r)
{
	json_t *v = json_object_get(obj, name);
	*present_r = v != NULL;
	if (v == NULL)
		return 0;
	if (!json_is_boolean(v)) {
		char msg[128];
		snprintf(msg, sizeof(msg), "%s must be true or false", name);
		wa_error(resp, 400, name, msg);
		return 1;
	}
	*r = json_is_true(v);
	return 0;
}

int wa_field_size(json_t *obj, const char *name, struct http_response *resp, bool *present_r,
                  uint64_t *r)
{
	json_t *v = json_object_get(obj, name);
	*present_r = v != NULL;
	if (v == NULL)
		return 0;
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*r = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v) &&
	    str_to_size(json_string_value(v), r) == 0 && *r <= INT64_MAX)
		return 0;
	char msg[160];
	snprintf(msg, sizeof(msg),
	         "%s must be a number of bytes, or a size like 500M or 2G (0: unlimited)", name);
	wa_error(resp, 400, name, msg);
	return 1;
}

void wa_dir_error(struct http_response *resp, enum directory_err e, const char *err,
                  const char *field)
{
	const char *msg = err != NULL && err[0] != '\0' ? err : directory_err_str(e);
	switch (e) {
	case DIR_EINVALID:
	case DIR_EQUOTA:
		wa_error(resp, 400, field, msg);
		break;
	case DIR_ENOTFOUND:
		wa_error(resp, 404, field, msg);
		break;
	case DIR_EEXISTS:
		wa_error(resp, 409, field, msg);
		break;
	case DIR_EPERM:
		wa_error(resp, 403, field, msg);
		break;
	case DIR_ETEMP:
	case DIR_OK:
		wa_error(resp, 503, NULL, "the directory is unavailable, try again shortly");
		break;
	}
}

static int wa_query_uint(const struct http_request *req, struct http_response *resp,
                         const char *name, uint64_t max, size_t *r)
{
	const char *s = http_request_query(req, name);
	uint64_t v;
	if (s == NULL)
		return 0;
	if (str_to_u64(s, max, &v) < 0) {
		char msg[128];
		snprintf(msg, sizeof(msg), "%s must be a whole number up to %llu", name,
		         (unsigned long long)max);
		wa_error(resp, 400, name, msg);
		return 1;
	}
	*r = (size_t)v;
	return 0;
}

int wa_paging(const struct http_request *req, struct http_response *resp, size_t *offset_r,
              size_t *limit_r)
{
	*offset_r = 0;
	*limit_r = WA_PAGE_DEFAULT;
	if (wa_query_uint(req, resp, "offset", 1000000000, offset_r) != 0 ||
	    wa_query_uint(req, resp, "limit", WA_PAGE_MAX, limit_r) != 0)
		return 1;
	if (*limit_r == 0)
		*limit_r = WA_PAGE_DEFAULT;
	return 0;
}

bool wa_confirmed(const struct http_request *req, struct http_response *resp, const char *what)
{
	const char *c = http_request_query(req, "confirm");
	if (c != NULL && strcasecmp(c, what) == 0)
		return true;
	wa_error(resp, 400, "confirm",
	         "confirm by repeating the name of what is removed in the confirm argument");
	return false;
}
