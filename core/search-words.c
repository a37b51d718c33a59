#include "search-words.h"

#include "xalloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Open addressing over the words seen so far, each kept as an offset and
 * length into the text; the table doubles at half full. */
struct words_set {
	struct words_slot {
		size_t off, len; /* len 0: empty */
	} * slot;
	size_t cap, used;
};

static uint64_t words_hash(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
	return h;
}

static void words_grow(struct words_set *w, const char *s)
{
	struct words_slot *old = w->slot;
	size_t oldcap = w->cap;
	w->cap = oldcap == 0 ? 256 : oldcap * 2;
	w->slot = xcalloc(w->cap, sizeof(*w->slot));
	for (size_t i = 0; i < oldcap; i++) {
		if (old[i].len == 0)
			continue;
		size_t k = words_hash(s + old[i].off, old[i].len) & (w->cap - 1);
		while (w->slot[k].len != 0)
			k = (k + 1) & (w->cap - 1);
		w->slot[k] = old[i];
	}
	free(old);
}

/* Adds s[off..off+len) unless present; true if it was new. */
static bool words_add(struct words_set *w, const char *s, size_t off, size_t len)
{
	if (2 * (w->used + 1) > w->cap)
		words_grow(w, s);
	size_t k = words_hash(s + off, len) & (w->cap - 1);
	for (; w->slot[k].len != 0; k = (k + 1) & (w->cap - 1))
		if (w->slot[k].len == len && memcmp(s + w->slot[k].off, s + off, len) == 0)
			return false;
	w->slot[k] = (struct words_slot){off, len};
	w->used++;
	return true;
}

int search_words(const char *s, size_t n, struct buf *out)
{
	struct words_set w = {0};
	int ret = 0;
	size_t i = 0, start = out->len;
	while (i < n && ret == 0) {
		while (i < n && search_word_separator((unsigned char)s[i]))
			i++;
		size_t from = i;
		while (i < n && !search_word_separator((unsigned char)s[i]))
			i++;
		if (i == from || !words_add(&w, s, from, i - from))
			continue;
		if (buf_append_char(out, ' ') < 0 || buf_append(out, s + from, i - from) < 0)
			ret = -1;
	}
	if (ret == 0 && out->len > start && buf_append_char(out, ' ') < 0)
		ret = -1;
	free(w.slot);
	return ret;
}
