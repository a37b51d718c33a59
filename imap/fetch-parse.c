/* fetch-parse.c - FETCH attributes (RFC 3501 6.4.5, RFC 9051 6.4.5, RFC 3516
 * BINARY, RFC 7162 MODSEQ, RFC 8970 PREVIEW) into struct fetch_item. */
#include "imap-fetch.h"

#include "arena.h"
#include "strnum.h"

#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	enum fetch_item_type type;
} fetch_simple[] = {
    {"FLAGS", FI_FLAGS},
    {"INTERNALDATE", FI_INTERNALDATE},
    {"RFC822.SIZE", FI_RFC822_SIZE},
    {"ENVELOPE", FI_ENVELOPE},
    {"BODY", FI_BODY},
    {"BODYSTRUCTURE", FI_BODYSTRUCTURE},
    {"UID", FI_UID},
    {"MODSEQ", FI_MODSEQ},
    {"PREVIEW", FI_PREVIEW},
};

/* Macros expand to the simple items above. */
static const struct {
	const char *name;
	const char *items[5];
} fetch_macros[] = {
    {"ALL", {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", NULL}},
    {"FAST", {"FLAGS", "INTERNALDATE", "RFC822.SIZE", NULL}},
    {"FULL", {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"}},
};

/* Section shorthands of RFC 3501: name, section, peek. */
static const struct {
	const char *name;
	enum fetch_spec spec;
	bool peek;
} fetch_rfc822[] = {
    {"RFC822", FS_NONE, false},
    {"RFC822.HEADER", FS_HEADER, true},
    {"RFC822.TEXT", FS_TEXT, false},
};

struct fparse {
	struct arena *a;
	const char *p; /* cursor in the word */
	const char *error;
};

static struct fetch_item *fetch_add(struct fetch_request *req, enum fetch_item_type type)
{
	if (req->n >= FETCH_MAX_ITEMS)
		return NULL;
	struct fetch_item *it = &req->items[req->n++];
	memset(it, 0, sizeof(*it));
	it->type = type;
	it->part = "";
	return it;
}

static void fetch_note(struct fetch_request *req, const struct fetch_item *it)
{
	switch (it->type) {
	case FI_ENVELOPE:
	case FI_BODY:
	case FI_BODYSTRUCTURE:
	case FI_PREVIEW:
	case FI_SECTION:
	case FI_BINARY:
	case FI_BINARY_SIZE:
		req->need_meta = true;
		break;
	case FI_MODSEQ:
		req->has_modseq = true;
		break;
	default:
		break;
	}
	if ((it->type == FI_SECTION || it->type == FI_BINARY) && !it->peek)
		req->sets_seen = true;
	if (it->type == FI_SECTION && it->part[0] == '\0' &&
	    (it->spec == FS_HEADER || it->spec == FS_HEADER_FIELDS ||
	     it->spec == FS_HEADER_FIELDS_NOT))
		req->need_header = true;
}

static int fetch_simple_att(const char *word, struct fetch_request *req)
{
	for (size_t i = 0; i < sizeof(fetch_simple) / sizeof(fetch_simple[0]); i++) {
		if (strcasecmp(word, fetch_simple[i].name) != 0)
			continue;
		struct fetch_item *it = fetch_add(req, fetch_simple[i].type);
		if (it == NULL)
			return -1;
		it->name = fetch_simple[i].name;
		fetch_note(req, it);
		return 1;
	}
	for (size_t i = 0; i < sizeof(fetch_rfc822) / sizeof(fetch_rfc822[0]); i++) {
		if (strcasecmp(word, fetch_rfc822[i].name) != 0)
			continue;
		struct fetch_item *it = fetch_add(req, FI_SECTION);
		if (it == NULL)
			return -1;
		it->name = fetch_rfc822[i].name;
		it->spec = fetch_rfc822[i].spec;
		it->peek = fetch_rfc822[i].peek;
		fetch_note(req, it);
		return 1;
	}
	return 0;
}

static bool fp_take(struct fparse *f, const char *s)
{
	size_t n = strlen(s);
	if (strncasecmp(f->p, s, n) != 0)
		return false;
	f->p += n;
	return true;
}

static int fp_fail(struct fparse *f, const char *msg)
{
	f->error = msg;
	return -1;
}

/* section-part: nz-number *("." nz-number), leaving f->p after it (and
 * after a "." that introduces a section-text). */
static int fp_part(struct fparse *f, struct buf *part)
{
	while (*f->p >= '1' && *f->p <= '9') {
		size_t n = strspn(f->p, "0123456789");
		uint64_t v;
		if (mem_to_u64(f->p, n, UINT32_MAX, &v) < 0)
			return fp_fail(f, "Invalid section number");
		if (part->len > 0)
			buf_append_char(part, '.');
		buf_append(part, f->p, n);
		f->p += n;
		if (*f->p != '.')
			break;
		f->p++;
		if (!(*f->p >= '1' && *f->p <= '9'))
			break;
	}
	if (part->len > 48)
		return fp_fail(f, "Section nested too deeply");
	return 0;
}

static int fp_field(struct fparse *f, const char **field_r)
{
	const char *start = f->p;
	if (*f->p == '"') {
		start = ++f->p;
		while (*f->p != '\0' && *f->p != '"')
			f->p++;
		if (*f->p != '"')
			return fp_fail(f, "Unterminated header field name");
		*field_r = arena_memdup0(f->a, start, (size_t)(f->p - start));
		f->p++;
	} else {
		while (*f->p > ' ' && *f->p < 0x7f && *f->p != ')' && *f->p != '(' &&
		       *f->p != ':' && *f->p != '"')
			f->p++;
		*field_r = arena_memdup0(f->a, start, (size_t)(f->p - start));
	}
	if ((*field_r)[0] == '\0' || strpbrk(*field_r, ": \t\r\n") != NULL)
		return fp_fail(f, "Invalid header field name");
	return 0;
}

/* " (" field *(SP field) ")" */
static int fp_fields(struct fparse *f, struct fetch_item *it, struct buf *name)
{
	if (!fp_take(f, " ("))
		return fp_fail(f, "Expected a header field list");
	it->fields = arena_alloc(f->a, (FETCH_MAX_FIELDS + 1) * sizeof(*it->fields));
	buf_append_str(name, " (");
	for (size_t n = 0;; n++) {
		if (n >= FETCH_MAX_FIELDS)
			return fp_fail(f, "Too many header fields");
		if (fp_field(f, &it->fields[n]) < 0)
			return -1;
		buf_printf(name, n == 0 ? "%s" : " %s", it->fields[n]);
		if (*f->p == ')')
			break;
		if (*f->p++ != ' ')
			return fp_fail(f, "Invalid header field list");
	}
	f->p++;
	buf_append_char(name, ')');
	return 0;
}

/* section-msgtext / MIME after the part (or at the top level). */
static int fp_spec(struct fparse *f, struct fetch_item *it, struct buf *name)
{
	if (*f->p == ']')
		return 0;
	if (it->type != FI_SECTION)
		return fp_fail(f, "BINARY takes part numbers only");
	if (name->len > 0)
		buf_append_char(name, '.');
	if (fp_take(f, "HEADER.FIELDS.NOT")) {
		it->spec = FS_HEADER_FIELDS_NOT;
		buf_append_str(name, "HEADER.FIELDS.NOT");
		return fp_fields(f, it, name);
	}
	if (fp_take(f, "HEADER.FIELDS")) {
		it->spec = FS_HEADER_FIELDS;
		buf_append_str(name, "HEADER.FIELDS");
		return fp_fields(f, it, name);
	}
	static const struct {
		const char *s;
		enum fetch_spec spec;
	} plain[] = {{"HEADER", FS_HEADER}, {"TEXT", FS_TEXT}, {"MIME", FS_MIME}};
	for (size_t i = 0; i < 3; i++) {
		if (fp_take(f, plain[i].s)) {
			if (plain[i].spec == FS_MIME && it->part[0] == '\0')
				return fp_fail(f, "MIME needs a part number");
			it->spec = plain[i].spec;
			buf_append_str(name, plain[i].s);
			return 0;
		}
	}
	return fp_fail(f, "Invalid section");
}

/* "<" number "." nz-number ">" */
static int fp_partial(struct fparse *f, struct fetch_item *it)
{
	if (*f->p != '<')
		return 0;
	const char *dot = strchr(f->p, '.'), *end = strchr(f->p, '>');
	if (dot == NULL || end == NULL || dot > end || end[1] != '\0' ||
	    mem_to_u64(f->p + 1, (size_t)(dot - f->p - 1), INT64_MAX, &it->origin) < 0 ||
	    mem_to_u64(dot + 1, (size_t)(end - dot - 1), INT64_MAX, &it->length) < 0 ||
	    it->length == 0)
		return fp_fail(f, "Invalid partial range");
	it->partial = true;
	f->p = end + 1;
	return 0;
}

static int fetch_section_att(struct fparse *f, struct fetch_request *req)
{
	static const struct {
		const char *prefix, *name;
		enum fetch_item_type type;
		bool peek;
	} kinds[] = {
	    {"BODY.PEEK[", "BODY", FI_SECTION, true},
	    {"BODY[", "BODY", FI_SECTION, false},
	    {"BINARY.PEEK[", "BINARY", FI_BINARY, true},
	    {"BINARY.SIZE[", "BINARY.SIZE", FI_BINARY_SIZE, true},
	    {"BINARY[", "BINARY", FI_BINARY, false},
	};
	size_t k = 0;
	while (k < sizeof(kinds) / sizeof(kinds[0]) && !fp_take(f, kinds[k].prefix))
		k++;
	if (k == sizeof(kinds) / sizeof(kinds[0]))
		return fp_fail(f, "Unknown fetch attribute");
	struct fetch_item *it = fetch_add(req, kinds[k].type);
	if (it == NULL)
		return fp_fail(f, "Too many fetch attributes");
	it->peek = kinds[k].peek;
	struct buf sect;
	buf_init(&sect, 4096);
	int ret = fp_part(f, &sect);
	it->part = arena_memdup0(f->a, buf_cstr(&sect), sect.len);
	if (ret == 0)
		ret = fp_spec(f, it, &sect);
	if (ret == 0 && *f->p++ != ']')
		ret = fp_fail(f, "Invalid section");
	if (ret == 0 && it->type != FI_BINARY_SIZE)
		ret = fp_partial(f, it);
	if (ret == 0 && *f->p != '\0')
		ret = fp_fail(f, "Junk after fetch attribute");
	if (ret == 0) {
		it->name = it->partial
		               ? arena_printf(f->a, "%s[%s]<%llu>", kinds[k].name, buf_cstr(&sect),
		                              (unsigned long long)it->origin)
		               : arena_printf(f->a, "%s[%s]", kinds[k].name, buf_cstr(&sect));
		fetch_note(req, it);
	}
	buf_free(&sect);
	return ret;
}

int imap_fetch_parse_att(struct arena *a, const char *word, struct fetch_request *req,
                         const char **error_r)
{
	for (size_t i = 0; i < sizeof(fetch_macros) / sizeof(fetch_macros[0]); i++) {
		if (strcasecmp(word, fetch_macros[i].name) != 0)
			continue;
		for (size_t j = 0; j < 5 && fetch_macros[i].items[j] != NULL; j++)
			if (fetch_simple_att(fetch_macros[i].items[j], req) < 0)
				goto too_many;
		return 0;
	}
	int r = fetch_simple_att(word, req);
	if (r < 0)
		goto too_many;
	if (r > 0)
		return 0;
	struct fparse f = {a, word, NULL};
	if (fetch_section_att(&f, req) < 0) {
		*error_r = f.error;
		return -1;
	}
	return 0;
too_many:
	*error_r = "Too many fetch attributes";
	return -1;
}
