/* search-parse.c - SEARCH keys (RFC 3501 6.4.4, RFC 9051 6.4.4, RFC 7162
 * MODSEQ, RFC 5182 "$") into a tree. The grammar is a table: each key names
 * its argument shape. */
#include "imap-search.h"

#include "arena.h"
#include "store.h"
#include "strnum.h"
#include "utf8.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

enum sarg {
	SARG_NONE,
	SARG_STRING, /* astring */
	SARG_ATOM,   /* flag-keyword */
	SARG_DATE,
	SARG_NUMBER,
	SARG_HEADER, /* field-name astring, then astring */
	SARG_SET,    /* sequence set */
	SARG_NOT,
	SARG_OR,
	SARG_MODSEQ, /* [entry-name entry-type] mod-sequence-valzer */
};

struct skey_def {
	const char *name;
	enum imap_skey_type type;
	enum sarg arg;
	uint64_t num; /* flag bit */
};

static const struct skey_def skey_table[] = {
    {"ALL", SKEY_ALL, SARG_NONE, 0},
    {"ANSWERED", SKEY_FLAG, SARG_NONE, STORE_FLAG_ANSWERED},
    {"BCC", SKEY_BCC, SARG_STRING, 0},
    {"BEFORE", SKEY_BEFORE, SARG_DATE, 0},
    {"BODY", SKEY_BODY, SARG_STRING, 0},
    {"CC", SKEY_CC, SARG_STRING, 0},
    {"DELETED", SKEY_FLAG, SARG_NONE, STORE_FLAG_DELETED},
    {"DRAFT", SKEY_FLAG, SARG_NONE, STORE_FLAG_DRAFT},
    {"FLAGGED", SKEY_FLAG, SARG_NONE, STORE_FLAG_FLAGGED},
    {"FROM", SKEY_FROM, SARG_STRING, 0},
    {"HEADER", SKEY_HEADER, SARG_HEADER, 0},
    {"KEYWORD", SKEY_KEYWORD, SARG_ATOM, 0},
    {"LARGER", SKEY_LARGER, SARG_NUMBER, 0},
    {"MODSEQ", SKEY_MODSEQ, SARG_MODSEQ, 0},
    {"NEW", SKEY_RECENT, SARG_NONE, 1}, /* RECENT UNSEEN, built below */
    {"NOT", SKEY_NOT, SARG_NOT, 0},
    {"OLD", SKEY_NOT, SARG_NONE, 2}, /* NOT RECENT, built below */
    {"ON", SKEY_ON, SARG_DATE, 0},
    {"OR", SKEY_OR, SARG_OR, 0},
    {"RECENT", SKEY_RECENT, SARG_NONE, 0},
    {"SEEN", SKEY_FLAG, SARG_NONE, STORE_FLAG_SEEN},
    {"SENTBEFORE", SKEY_SENTBEFORE, SARG_DATE, 0},
    {"SENTON", SKEY_SENTON, SARG_DATE, 0},
    {"SENTSINCE", SKEY_SENTSINCE, SARG_DATE, 0},
    {"SINCE", SKEY_SINCE, SARG_DATE, 0},
    {"SMALLER", SKEY_SMALLER, SARG_NUMBER, 0},
    {"SUBJECT", SKEY_SUBJECT, SARG_STRING, 0},
    {"TEXT", SKEY_TEXT, SARG_STRING, 0},
    {"TO", SKEY_TO, SARG_STRING, 0},
    {"UID", SKEY_UIDSET, SARG_SET, 0},
    {"UNANSWERED", SKEY_UNFLAG, SARG_NONE, STORE_FLAG_ANSWERED},
    {"UNDELETED", SKEY_UNFLAG, SARG_NONE, STORE_FLAG_DELETED},
    {"UNDRAFT", SKEY_UNFLAG, SARG_NONE, STORE_FLAG_DRAFT},
    {"UNFLAGGED", SKEY_UNFLAG, SARG_NONE, STORE_FLAG_FLAGGED},
    {"UNKEYWORD", SKEY_UNKEYWORD, SARG_ATOM, 0},
    {"UNSEEN", SKEY_UNFLAG, SARG_NONE, STORE_FLAG_SEEN},
};

struct sparse {
	struct arena *a;
	const struct imap_stok *toks;
	size_t n, pos;
	struct imap_search_prog *prog;
	const char *error;
};

static int sp_fail(struct sparse *p, const char *msg)
{
	if (p->error == NULL)
		p->error = msg;
	return -1;
}

static const struct imap_stok *sp_next(struct sparse *p)
{
	return p->pos < p->n ? &p->toks[p->pos++] : NULL;
}

static struct imap_skey *sp_key(struct sparse *p, enum imap_skey_type type)
{
	struct imap_skey *k = arena_alloc(p->a, sizeof(*k));
	k->type = type;
	p->prog->nkeys++;
	return k;
}

static const struct skey_def *skey_lookup(const char *name)
{
	for (size_t i = 0; i < sizeof(skey_table) / sizeof(skey_table[0]); i++)
		if (strcasecmp(skey_table[i].name, name) == 0)
			return &skey_table[i];
	return NULL;
}

/* Arguments become text parameters of the query, which the database takes
 * in UTF-8 only (the only CHARSETs are UTF-8 and US-ASCII): anything else
 * is the client's mistake, answered BAD, never a failed query. */
static const char *sp_text(struct sparse *p, const struct imap_stok *t)
{
	if (!utf8_valid(t->s, t->len)) {
		sp_fail(p, "Search argument is not valid UTF-8");
		return NULL;
	}
	return t->s;
}

static const char *sp_astring(struct sparse *p)
{
	const struct imap_stok *t = sp_next(p);
	if (t == NULL || (t->type != IMAP_STOK_ATOM && t->type != IMAP_STOK_STRING)) {
		sp_fail(p, "Missing string argument");
		return NULL;
	}
	return sp_text(p, t);
}

static const char *sp_atom(struct sparse *p, const char *what)
{
	const struct imap_stok *t = sp_next(p);
	if (t == NULL || t->type != IMAP_STOK_ATOM) {
		sp_fail(p, what);
		return NULL;
	}
	return sp_text(p, t);
}

static const char mon_names[12][4] = {"jan", "feb", "mar", "apr", "may", "jun",
                                      "jul", "aug", "sep", "oct", "nov", "dec"};

int imap_search_date(const char *s, char out[11])
{
	const char *d1 = strchr(s, '-');
	if (d1 == NULL || d1 - s < 1 || d1 - s > 2 || strlen(d1) != 9 || d1[4] != '-')
		return -1;
	uint64_t day, year;
	if (mem_to_u64(s, (size_t)(d1 - s), 31, &day) < 0 || day == 0 ||
	    mem_to_u64(d1 + 5, 4, 9999, &year) < 0 || year == 0)
		return -1;
	for (int m = 0; m < 12; m++) {
		if (strncasecmp(d1 + 1, mon_names[m], 3) == 0) {
			static const int mdays[12] = {31, 29, 31, 30, 31, 30,
			                              31, 31, 30, 31, 30, 31};
			if (day > (uint64_t)mdays[m])
				return -1;
			snprintf(out, 11, "%04u-%02d-%02u", (unsigned)year, m + 1, (unsigned)day);
			return 0;
		}
	}
	return -1;
}

/* seq-number = nz-number / "*"; returns the length matched or 0. */
static size_t seqnum_len(const char *s)
{
	if (*s == '*')
		return 1;
	if (*s < '1' || *s > '9')
		return 0;
	size_t i = 0;
	while (s[i] >= '0' && s[i] <= '9')
		i++;
	uint64_t v;
	return mem_to_u64(s, i, UINT32_MAX, &v) == 0 ? i : 0;
}

bool imap_search_seqset_valid(const char *s)
{
	for (;;) {
		size_t n = seqnum_len(s);
		if (n == 0)
			return false;
		s += n;
		if (*s == ':') {
			if ((n = seqnum_len(s + 1)) == 0)
				return false;
			s += n + 1;
		}
		if (*s == '\0')
			return true;
		if (*s != ',')
			return false;
		s++;
	}
}

static struct imap_skey *sp_parse_key(struct sparse *p, unsigned depth);

static int sp_date_arg(struct sparse *p, struct imap_skey *k)
{
	const char *s = sp_astring(p);
	char d[11];
	if (s == NULL || imap_search_date(s, d) < 0)
		return sp_fail(p, "Invalid date");
	k->str = arena_strdup(p->a, d);
	return 0;
}

static int sp_number_arg(struct sparse *p, struct imap_skey *k, uint64_t max)
{
	const char *s = sp_atom(p, "Missing number");
	if (s == NULL || str_to_u64(s, max, &k->num) < 0)
		return sp_fail(p, "Invalid number");
	return 0;
}

/* MODSEQ ["/flags/\\Seen" ("priv"/"shared"/"all")] mod-sequence-valzer */
static int sp_modseq_arg(struct sparse *p, struct imap_skey *k)
{
	const struct imap_stok *t = p->pos < p->n ? &p->toks[p->pos] : NULL;
	if (t != NULL && t->type == IMAP_STOK_STRING) {
		p->pos++;
		const char *type = sp_atom(p, "Missing entry type");
		if (type == NULL ||
		    (strcasecmp(type, "priv") != 0 && strcasecmp(type, "shared") != 0 &&
		     strcasecmp(type, "all") != 0))
			return sp_fail(p, "Invalid entry type");
	}
	p->prog->uses_modseq = true;
	return sp_number_arg(p, k, INT64_MAX);
}

static int sp_args(struct sparse *p, const struct skey_def *d, struct imap_skey *k, unsigned depth)
{
	switch (d->arg) {
	case SARG_NONE:
		return 0;
	case SARG_STRING:
		return (k->str = sp_astring(p)) == NULL ? -1 : 0;
	case SARG_ATOM:
		return (k->str = sp_atom(p, "Missing keyword")) == NULL ? -1 : 0;
	case SARG_DATE:
		return sp_date_arg(p, k);
	case SARG_NUMBER:
		return sp_number_arg(p, k, INT64_MAX);
	case SARG_HEADER:
		if ((k->field = sp_astring(p)) == NULL || (k->str = sp_astring(p)) == NULL)
			return -1;
		return k->field[0] == '\0' || strpbrk(k->field, ": \t") != NULL
		           ? sp_fail(p, "Invalid header field name")
		           : 0;
	case SARG_SET:
		k->str = sp_atom(p, "Missing UID set");
		if (k->str != NULL && strcmp(k->str, "$") == 0) {
			k->type = SKEY_SAVED;
			p->prog->uses_saved = true;
			return 0;
		}
		return k->str == NULL || !imap_search_seqset_valid(k->str)
		           ? sp_fail(p, "Invalid UID set")
		           : 0;
	case SARG_NOT:
		return (k->child = sp_parse_key(p, depth + 1)) == NULL ? -1 : 0;
	case SARG_OR:
		if ((k->child = sp_parse_key(p, depth + 1)) == NULL ||
		    (k->child->next = sp_parse_key(p, depth + 1)) == NULL)
			return -1;
		return 0;
	case SARG_MODSEQ:
		return sp_modseq_arg(p, k);
	}
	return -1;
}

/* NEW is RECENT UNSEEN and OLD is NOT RECENT. */
static struct imap_skey *sp_macro(struct sparse *p, const struct skey_def *d)
{
	struct imap_skey *recent = sp_key(p, SKEY_RECENT);
	struct imap_skey *k = sp_key(p, d->num == 1 ? SKEY_AND : SKEY_NOT);
	k->child = recent;
	if (d->num == 1) {
		recent->next = sp_key(p, SKEY_UNFLAG);
		recent->next->num = STORE_FLAG_SEEN;
	}
	return k;
}

static struct imap_skey *sp_parse_list(struct sparse *p, unsigned depth);

static struct imap_skey *sp_parse_key(struct sparse *p, unsigned depth)
{
	if (depth > IMAP_SEARCH_MAX_DEPTH) {
		sp_fail(p, "Search program nested too deeply");
		return NULL;
	}
	if (p->prog->nkeys >= IMAP_SEARCH_MAX_KEYS) {
		sp_fail(p, "Too many search keys");
		return NULL;
	}
	const struct imap_stok *t = sp_next(p);
	if (t == NULL) {
		sp_fail(p, "Missing search key");
		return NULL;
	}
	if (t->type == IMAP_STOK_LPAREN)
		return sp_parse_list(p, depth + 1);
	if (t->type != IMAP_STOK_ATOM) {
		sp_fail(p, "Invalid search key");
		return NULL;
	}
	const struct skey_def *d = skey_lookup(t->s);
	if (d == NULL) {
		struct imap_skey *k = sp_key(p, SKEY_SEQSET);
		k->str = t->s;
		if (strcmp(t->s, "$") == 0) {
			k->type = SKEY_SAVED;
			p->prog->uses_saved = true;
		} else if (!imap_search_seqset_valid(t->s)) {
			sp_fail(p, "Unknown search key");
			return NULL;
		}
		return k;
	}
	if (d->arg == SARG_NONE && d->num != 0 && d->type != SKEY_FLAG && d->type != SKEY_UNFLAG)
		return sp_macro(p, d);
	struct imap_skey *k = sp_key(p, d->type);
	k->num = d->num;
	return sp_args(p, d, k, depth) < 0 ? NULL : k;
}

/* After "(": keys up to the matching ")". */
static struct imap_skey *sp_parse_list(struct sparse *p, unsigned depth)
{
	struct imap_skey *and = sp_key(p, SKEY_AND), **tail = &and->child;
	for (;;) {
		if (p->pos < p->n && p->toks[p->pos].type == IMAP_STOK_RPAREN) {
			p->pos++;
			if (and->child == NULL) {
				sp_fail(p, "Empty search list");
				return NULL;
			}
			return and;
		}
		if (p->pos >= p->n) {
			sp_fail(p, "Missing )");
			return NULL;
		}
		struct imap_skey *k = sp_parse_key(p, depth);
		if (k == NULL)
			return NULL;
		*tail = k;
		tail = &k->next;
	}
}

int imap_search_parse(struct arena *a, const struct imap_stok *toks, size_t ntoks, size_t *pos,
                      struct imap_search_prog *prog, const char **error_r)
{
	struct sparse p = {a, toks, ntoks, *pos, prog, NULL};
	memset(prog, 0, sizeof(*prog));
	prog->root = sp_key(&p, SKEY_AND);
	struct imap_skey **tail = &prog->root->child;
	while (p.pos < p.n) {
		if (p.toks[p.pos].type == IMAP_STOK_RPAREN) {
			*error_r = "Unexpected )";
			return -1;
		}
		struct imap_skey *k = sp_parse_key(&p, 0);
		if (k == NULL) {
			*error_r = p.error;
			return -1;
		}
		*tail = k;
		tail = &k->next;
	}
	if (prog->root->child == NULL) {
		*error_r = "Missing search key";
		return -1;
	}
	*pos = p.pos;
	return 0;
}
