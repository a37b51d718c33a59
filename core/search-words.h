/* search-words.h - the distinct words of a text, for SEARCH BODY/TEXT.
 *
 * A word is a maximal run of bytes that are not ASCII separators: every
 * ASCII byte other than a letter or a digit separates, and no other byte
 * does (so UTF-8 sequences are always inside words, and no locale decides).
 * A string without a separator occurs in a text exactly when it occurs in
 * the text's words joined by spaces: an occurrence cannot cross a
 * separator in the text, nor a space in the words. The indexer
 * (db/indexer.c) stores the words of every message's text; IMAP SEARCH
 * tests a string's runs on them before the text itself. */
#ifndef ROOST_CORE_SEARCH_WORDS_H
#define ROOST_CORE_SEARCH_WORDS_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>

/* Whether byte c separates words. */
static inline bool search_word_separator(unsigned char c)
{
	return c < 0x80 &&
	       !((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'));
}

/* Appends to out the distinct words of s[0..n), in order of first
 * appearance, each after a space, and one space after the last (" run "
 * is then a whole word); nothing for a text without words. Words are
 * compared byte for byte. -1 if out's limit was hit. The SQL function
 * search_words() (migration 012) gives the same words, sorted. */
int search_words(const char *s, size_t n, struct buf *out);

/* Appends s[0..n) to out in lower case: each character on its own through
 * towlower() of the C.UTF-8 locale (the lower() of the managed cluster,
 * whose LC_CTYPE is C.UTF-8), ASCII without a lookup. Bytes that are not
 * well-formed UTF-8 are copied as they are. The indexer stores texts
 * lowered so, and IMAP SEARCH lowers its strings the same way, so the two
 * agree whatever the database's own LC_CTYPE. -1 if out's limit was hit. */
int search_lower(const char *s, size_t n, struct buf *out);

#endif
