/* privdrop.h - dropping root after binding ports (STYLE.md "Start-up").
 *
 * Order at start-up: bind listeners, read keys and secrets, then
 * privdrop_to_user(), then accept. */
#ifndef ROOST_PRIVDROP_H
#define ROOST_PRIVDROP_H

#include <stdbool.h>
#include <sys/types.h>

/* Looks up a system user. -1 with *error_r if it does not exist. */
int privdrop_lookup(const char *user, uid_t *uid_r, gid_t *gid_r, const char **error_r);
/* When running as root (euid 0): initgroups, setgid, setuid to user, then
 * checks that root cannot be regained. Does nothing (returns 0) when not
 * root. -1 with *error_r (thread-local text naming the user) on failure;
 * the caller makes that fatal. */
int privdrop_to_user(const char *user, const char **error_r);

#endif
