/* xalloc.h - allocation that never returns NULL.
 *
 * Out of memory is fatal in exactly one place (STYLE.md): these wrappers log
 * and abort the process. Callers never check for NULL. */
#ifndef ROOST_XALLOC_H
#define ROOST_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
/* Array reallocation with an overflow check on nmemb * size. */
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
/* Copies at most n bytes of s and NUL-terminates the copy. */
char *xstrndup(const char *s, size_t n);
/* Copies exactly n bytes (may contain NULs) and appends a NUL. */
char *xmemdup0(const void *p, size_t n);

#endif
