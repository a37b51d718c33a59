/* search-sql.c - a search program as ONE parameterised SQL condition over
 * mailbox_entries e (JOIN messages m when a key needs it).
 *
 * BODY and TEXT mean a case-insensitive substring (RFC 3501 6.4.4, RFC 9051
 * 6.4.4.1) of the message's decoded text (TEXT also of the header fields):
 * a LIKE of the lower-case string (with its own "\\", "%" and "_" escaped)
 * in the lower-case text, both lowered by search_lower()
 * (core/search-words.h: C.UTF-8's mappings, all of Unicode's letters).
 *
 * A word index (tsvector) cannot narrow such a search soundly: the string
 * may begin or end inside a word. Trigrams can: where migrations 011 and
 * 012 could create the pg_trgm GIN indexes on message_search, the LIKE uses
 * them (the trigrams give candidates and the executor rechecks each, so
 * the answer stays exact; text kept in lower case makes that recheck a
 * plain LIKE); elsewhere every message of the mailbox is read. The
 * patterns are plain parameters, which PostgreSQL plans as constants. */
#include "imap-search.h"

#include "arena.h"
#include "search-words.h"
#include "store.h"

#include <string.h>

void imap_search_sql_init(struct imap_search_sql *s, struct arena *a)
{
	memset(s, 0, sizeof(*s));
	buf_init(&s->where, BUF_NO_LIMIT);
	s->arena = a;
}

void imap_search_sql_free(struct imap_search_sql *s)
{
	buf_free(&s->where);
}

struct sqlb {
	struct imap_search_sql *s;
	const struct imap_search_resolver *res;
	int first;
	const char *error;
};

/* Adds a parameter; returns its $ number. */
static int sqlb_param(struct sqlb *b, const char *v)
{
	if (b->s->nparams >= IMAP_SEARCH_MAX_PARAMS)
		return -1;
	b->s->params[b->s->nparams++] = v;
	return b->first + b->s->nparams - 1;
}

/* Appends pre "$n" post with v as parameter n. */
static int sqlb_expr(struct sqlb *b, const char *pre, const char *v, const char *post)
{
	int n = sqlb_param(b, v);
	if (n < 0) {
		b->error = "Too many search keys";
		return -1;
	}
	buf_printf(&b->s->where, "%s$%d%s", pre, n, post);
	return 0;
}

/* The string as a LIKE pattern matching it anywhere: its own "\\", "%"
 * and "_" escaped. */
static const char *sql_like_pattern(struct arena *a, const char *str)
{
	struct buf p;
	buf_init(&p, BUF_NO_LIMIT);
	buf_append_char(&p, '%');
	for (; *str != '\0'; str++) {
		if (*str == '\\' || *str == '%' || *str == '_')
			buf_append_char(&p, '\\');
		buf_append_char(&p, *str);
	}
	buf_append_char(&p, '%');
	const char *r = arena_strdup(a, buf_cstr(&p));
	buf_free(&p);
	return r;
}

/* Runs of a string that narrow its search through the word index: more
 * would cost parameters for little (3 per key at most, imap-search.h). */
#define SQL_TEXT_RUNS 2

/* The maximal runs of a string without separators: each lies inside one
 * word of any text holding the string, so the text's words hold it too;
 * a run after a separator begins a word, one before a separator ends it,
 * and the words, joined and surrounded by spaces, show that too. */
struct sql_runs {
	bool word; /* the string is one run (or empty) */
	int n;
	const char *like[SQL_TEXT_RUNS]; /* "%run%", "% run%", "%run %", "% run %" */
	size_t trigrams[SQL_TEXT_RUNS];  /* what pg_trgm takes from each */
};

/* Keeps the pattern of run (its "%" and characters so far) if it is among
 * the SQL_TEXT_RUNS that give pg_trgm the most trigrams: a word's inside
 * gives one per character past the second; a known beginning two more
 * ("  a", " ab"), a known end one more ("yz "). */
static void sql_runs_keep(struct arena *a, struct sql_runs *r, struct buf *run, size_t chars,
                          bool begins, bool ends)
{
	size_t tri = chars + (begins ? 2 : 0) + (ends ? 1 : 0);
	if (tri <= 2)
		return;
	tri -= 2;
	int k = r->n;
	if (k == SQL_TEXT_RUNS) {
		k = r->trigrams[0] <= r->trigrams[1] ? 0 : 1;
		if (r->trigrams[k] >= tri)
			return;
	} else {
		r->n++;
	}
	if (ends)
		buf_append_char(run, ' ');
	buf_append_char(run, '%');
	r->like[k] = arena_strdup(a, buf_cstr(run));
	r->trigrams[k] = tri;
}

/* The runs of str (already in lower case, as the words are). */
static void sql_runs(struct arena *a, const char *str, struct sql_runs *r)
{
	memset(r, 0, sizeof(*r));
	r->word = true;
	struct buf run;
	buf_init(&run, BUF_NO_LIMIT);
	size_t chars = 0;
	bool begins = false;
	for (size_t i = 0;; i++) {
		unsigned char c = (unsigned char)str[i];
		if (c != '\0' && !search_word_separator(c)) {
			if (run.len == 0) {
				begins = i > 0;
				buf_append_str(&run, begins ? "% " : "%");
			}
			buf_append_char(&run, (char)c);
			chars += (c & 0xc0) != 0x80; /* UTF-8 continuation bytes are no character */
			continue;
		}
		if (chars > 0)
			sql_runs_keep(a, r, &run, chars, begins, c != '\0');
		buf_reset(&run);
		chars = 0;
		if (c == '\0')
			break;
		r->word = false;
	}
	buf_free(&run);
}

/* The message's text is in message_search, with a copy of the header
 * fields, both in lower case (db/indexer.c; cmd-search.c files the
 * mailbox's pending messages before it runs a search that has text keys):
 * an EXISTS that the planner runs either per entry (a small mailbox) or
 * once through the trigram index, hashed (a large one).
 *
 * The trigram index is on the text's distinct words, not on the text. A
 * string without separators (a word, or part of one) occurs in the text
 * exactly when it occurs in the words, so those decide alone: every
 * candidate the trigrams give is rechecked, and rechecking whole texts
 * for a word that every message holds read and decompressed all of them
 * (600 ms per 100,000 messages), while the words are a fraction of that
 * and mostly inline. Any other string must occur in the text, and then
 * its runs in the words: those give the candidates, the text decides. */
static void sqlb_text_where(struct buf *w, bool text, const int *runs, int nruns, int like)
{
	buf_append_str(w, "EXISTS (SELECT 1 FROM message_search s WHERE s.message_id = "
	                  "e.message_id AND (");
	if (runs == NULL)
		buf_printf(w, "s.words LIKE $%d::text", like);
	else {
		buf_append_char(w, '(');
		for (int i = 0; i < nruns; i++)
			buf_printf(w, "s.words LIKE $%d::text AND ", runs[i]);
		buf_printf(w, "s.body LIKE $%d::text)", like);
	}
	if (text)
		buf_printf(w, " OR s.headers LIKE $%d::text", like);
	buf_append_str(w, "))");
}

static int sqlb_text(struct sqlb *b, const struct imap_skey *k)
{
	b->s->substring = true;
	struct buf low;
	buf_init(&low, BUF_NO_LIMIT);
	(void)search_lower(k->str, strlen(k->str), &low);
	const char *str = arena_strdup(b->s->arena, buf_cstr(&low));
	buf_free(&low);
	struct sql_runs r;
	sql_runs(b->s->arena, str, &r);
	int like = sqlb_param(b, sql_like_pattern(b->s->arena, str));
	int runs[SQL_TEXT_RUNS];
	int nruns = r.word ? 0 : r.n;
	for (int i = 0; i < nruns && like >= 0; i++) {
		runs[i] = sqlb_param(b, r.like[i]);
		if (runs[i] < 0)
			like = -1;
	}
	if (like < 0) {
		b->error = "Too many search keys";
		return -1;
	}
	sqlb_text_where(&b->s->where, k->type == SKEY_TEXT, r.word ? NULL : runs, nruns, like);
	return 0;
}

static int sqlb_header(struct sqlb *b, const struct imap_skey *k)
{
	b->s->needs_messages = true;
	int f = sqlb_param(b, k->field), v = sqlb_param(b, k->str);
	if (f < 0 || v < 0) {
		b->error = "Too many search keys";
		return -1;
	}
	buf_printf(&b->s->where,
	           "EXISTS (SELECT 1 FROM regexp_split_to_table(m.headers, E'\\n') AS h "
	           "WHERE position(':' IN h) > 0 "
	           "AND lower(rtrim(split_part(h, ':', 1))) = lower($%d::text) "
	           "AND strpos(lower(substr(h, position(':' IN h) + 1)), lower($%d::text)) > 0)",
	           f, v);
	return 0;
}

static int sqlb_set(struct sqlb *b, const struct imap_skey *k)
{
	struct buf mr;
	buf_init(&mr, BUF_NO_LIMIT);
	if (b->res->uids(b->res->ctx, k->type, k->str, &mr) < 0) {
		buf_free(&mr);
		b->error = "Invalid sequence set";
		return -1;
	}
	const char *v = arena_strdup(b->s->arena, buf_cstr(&mr));
	buf_free(&mr);
	return sqlb_expr(b, "e.uid <@ ", v, "::int8multirange");
}

static const char *sqlb_num(struct sqlb *b, uint64_t v)
{
	return arena_printf(b->s->arena, "%llu", (unsigned long long)v);
}

static int sqlb_key(struct sqlb *b, const struct imap_skey *k);

static int sqlb_list(struct sqlb *b, const struct imap_skey *k, const char *op)
{
	buf_append_char(&b->s->where, '(');
	for (const struct imap_skey *c = k; c != NULL; c = c->next) {
		if (c != k)
			buf_append_str(&b->s->where, op);
		if (sqlb_key(b, c) < 0)
			return -1;
	}
	buf_append_char(&b->s->where, ')');
	return 0;
}

/* INTERNALDATE: the day in UTC, the zone FETCH INTERNALDATE is given in.
 * Sent date: the day in the Date: header's own zone ("disregarding time
 * and timezone", RFC 3501 6.4.4), its numeric offset taken from the date
 * string at the head of the stored ENVELOPE; INTERNALDATE without one. */
#define SQL_IDATE "(e.internaldate AT TIME ZONE 'UTC')::date"
#define SQL_SDATE                                                                                  \
	"(CASE WHEN m.sent_date IS NULL THEN (e.internaldate AT TIME ZONE 'UTC')::date ELSE "      \
	"((m.sent_date AT TIME ZONE 'UTC') + COALESCE((SELECT (CASE WHEN substr(z, 1, 1) = '-' "   \
	"THEN -1 ELSE 1 END) * (substr(z, 2, 2)::int * 60 + substr(z, 4, 2)::int) * "              \
	"interval '1 minute' FROM substring(m.envelope FROM '^\\(\"[^\"]*?([+-][0-9]{4})') "       \
	"AS z), interval '0'))::date END)"

static int sqlb_simple(struct sqlb *b, const struct imap_skey *k)
{
	const char *addr_col[] = {
	    [SKEY_FROM] = "m.from_addr", [SKEY_TO] = "m.to_addr",      [SKEY_CC] = "m.cc_addr",
	    [SKEY_BCC] = "m.bcc_addr",   [SKEY_SUBJECT] = "m.subject",
	};
	struct buf *w = &b->s->where;
	switch (k->type) {
	case SKEY_FLAG:
	case SKEY_UNFLAG:
		buf_printf(w, "(e.flags & %u) %s 0", (unsigned)k->num,
		           k->type == SKEY_FLAG ? "<>" : "=");
		return 0;
	case SKEY_KEYWORD:
	case SKEY_UNKEYWORD:
		buf_append_str(w, k->type == SKEY_KEYWORD ? "" : "NOT ");
		return sqlb_expr(b,
		                 "EXISTS (SELECT 1 FROM unnest(e.keywords) AS kw "
		                 "WHERE lower(kw) = lower(",
		                 k->str, "::text))");
	case SKEY_BEFORE:
		return sqlb_expr(b, SQL_IDATE " < ", k->str, "::date");
	case SKEY_ON:
		return sqlb_expr(b, SQL_IDATE " = ", k->str, "::date");
	case SKEY_SINCE:
		return sqlb_expr(b, SQL_IDATE " >= ", k->str, "::date");
	case SKEY_LARGER:
		return sqlb_expr(b, "e.size > ", sqlb_num(b, k->num), "::bigint");
	case SKEY_SMALLER:
		return sqlb_expr(b, "e.size < ", sqlb_num(b, k->num), "::bigint");
	case SKEY_MODSEQ:
		return sqlb_expr(b, "e.modseq >= ", sqlb_num(b, k->num), "::bigint");
	default:
		break;
	}
	b->s->needs_messages = true;
	switch (k->type) {
	case SKEY_SENTBEFORE:
		return sqlb_expr(b, SQL_SDATE " < ", k->str, "::date");
	case SKEY_SENTON:
		return sqlb_expr(b, SQL_SDATE " = ", k->str, "::date");
	case SKEY_SENTSINCE:
		return sqlb_expr(b, SQL_SDATE " >= ", k->str, "::date");
	default:
		buf_printf(w, "strpos(lower(%s), ", addr_col[k->type]);
		return sqlb_expr(b, "lower(", k->str, "::text)) > 0");
	}
}

static int sqlb_key(struct sqlb *b, const struct imap_skey *k)
{
	switch (k->type) {
	case SKEY_ALL:
		buf_append_str(&b->s->where, "true");
		return 0;
	case SKEY_AND:
		return sqlb_list(b, k->child, " AND ");
	case SKEY_OR:
		return sqlb_list(b, k->child, " OR ");
	case SKEY_NOT:
		buf_append_str(&b->s->where, "NOT ");
		return sqlb_list(b, k->child, "");
	case SKEY_SEQSET:
	case SKEY_UIDSET:
	case SKEY_SAVED:
	case SKEY_RECENT:
		return sqlb_set(b, k);
	case SKEY_HEADER:
		return sqlb_header(b, k);
	case SKEY_BODY:
	case SKEY_TEXT:
		return sqlb_text(b, k);
	default:
		return sqlb_simple(b, k);
	}
}

int imap_search_sql_build(const struct imap_search_prog *prog,
                          const struct imap_search_resolver *res, int first_param,
                          struct imap_search_sql *s, const char **error_r)
{
	struct sqlb b = {s, res, first_param, NULL};
	buf_reset(&s->where);
	s->nparams = 0;
	s->needs_messages = false;
	s->substring = false;
	if (sqlb_key(&b, prog->root) < 0) {
		*error_r = b.error;
		return -1;
	}
	return 0;
}
