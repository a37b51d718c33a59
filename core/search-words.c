#include "search-words.h"

#include "utf8.h"
#include "xalloc.h"

#include <locale.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

/* Open addressing over the words seen so far, each kept as an offset and
 * length into the text with its hash (compared before the bytes, and kept
 * so that growing rehashes nothing); the table doubles at half full. */
struct words_set {
	struct words_slot {
		size_t off, len; /* len 0: empty */
		uint64_t hash;
	} * slot;
	size_t cap, used;
};

static void words_grow(struct words_set *w)
{
	struct words_slot *old = w->slot;
	size_t oldcap = w->cap;
	w->cap = oldcap == 0 ? 256 : oldcap * 2;
	w->slot = xcalloc(w->cap, sizeof(*w->slot));
	for (size_t i = 0; i < oldcap; i++) {
		if (old[i].len == 0)
			continue;
		size_t k = old[i].hash & (w->cap - 1);
		while (w->slot[k].len != 0)
			k = (k + 1) & (w->cap - 1);
		w->slot[k] = old[i];
	}
	free(old);
}

/* Most words are short: compared in place rather than through a call. */
static inline bool words_equal(const char *a, const char *b, size_t len)
{
	if (len > 16)
		return memcmp(a, b, len) == 0;
	for (size_t i = 0; i < len; i++)
		if (a[i] != b[i])
			return false;
	return true;
}

/* Adds s[off..off+len) (hash h) unless present; true if it was new. */
static bool words_add(struct words_set *w, const char *s, size_t off, size_t len, uint64_t h)
{
	if (2 * (w->used + 1) > w->cap)
		words_grow(w);
	size_t k = h & (w->cap - 1);
	for (; w->slot[k].len != 0; k = (k + 1) & (w->cap - 1))
		if (w->slot[k].hash == h && w->slot[k].len == len &&
		    words_equal(s + w->slot[k].off, s + off, len))
			return false;
	w->slot[k] = (struct words_slot){off, len, h};
	w->used++;
	return true;
}

/* search_word_separator() for every byte, looked up instead of tested. */
static bool word_sep[256];
static pthread_once_t word_sep_once = PTHREAD_ONCE_INIT;

static void word_sep_init(void)
{
	for (int c = 0; c < 256; c++)
		word_sep[c] = search_word_separator((unsigned char)c);
}

int search_words(const char *s, size_t n, struct buf *out)
{
	pthread_once(&word_sep_once, word_sep_init);
	const unsigned char *u = (const unsigned char *)s;
	struct words_set w = {0};
	int ret = 0;
	size_t i = 0, start = out->len;
	while (i < n && ret == 0) {
		while (i < n && word_sep[u[i]])
			i++;
		size_t from = i;
		uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, as the word is read */
		for (; i < n && !word_sep[u[i]]; i++)
			h = (h ^ u[i]) * 0x100000001b3ull;
		if (i == from || !words_add(&w, s, from, i - from, h ^ (h >> 29)))
			continue;
		if (buf_append_char(out, ' ') < 0 || buf_append(out, s + from, i - from) < 0)
			ret = -1;
	}
	if (ret == 0 && out->len > start && buf_append_char(out, ' ') < 0)
		ret = -1;
	free(w.slot);
	return ret;
}

static locale_t lower_locale;
static pthread_once_t lower_once = PTHREAD_ONCE_INIT;

/* Without C.UTF-8 (never on Debian), only ASCII letters fold. */
static void lower_locale_init(void)
{
	lower_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

/* One non-ASCII character at s[0..n): its lower-case form appended;
 * returns the bytes it took. */
static size_t lower_char(const unsigned char *s, size_t n, struct buf *out, int *ret)
{
	uint32_t cp;
	size_t len = utf8_decode(s, n, &cp);
	if (len == 0) {
		*ret |= buf_append_char(out, (char)s[0]);
		return 1;
	}
	uint32_t lc =
	    lower_locale != (locale_t)0 ? (uint32_t)towlower_l((wint_t)cp, lower_locale) : cp;
	if (lc == cp || lc > 0x10ffff || (lc >= 0xd800 && lc <= 0xdfff)) {
		*ret |= buf_append(out, s, len);
		return len;
	}
	char e[4];
	size_t k = utf8_encode(lc, e);
	*ret |= buf_append(out, e, k);
	return len;
}

int search_lower(const char *s, size_t n, struct buf *out)
{
	pthread_once(&lower_once, lower_locale_init);
	const unsigned char *u = (const unsigned char *)s;
	int ret = 0;
	size_t i = 0;
	while (i < n && ret == 0) {
		size_t run = utf8_ascii_span(u + i, n - i);
		size_t start = out->len;
		if (run > 0 && buf_append(out, s + i, run) == 0) {
			char *d = out->data + start;
			for (size_t k = 0; k < run; k++)
				if (d[k] >= 'A' && d[k] <= 'Z')
					d[k] = (char)(d[k] + ('a' - 'A'));
		} else if (run > 0) {
			ret = -1;
		}
		i += run;
		if (i < n)
			i += lower_char(u + i, n - i, out, &ret);
	}
	return ret < 0 ? -1 : 0;
}
