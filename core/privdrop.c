#include "privdrop.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static _Thread_local char privdrop_err[512];

int privdrop_lookup(const char *user, uid_t *uid_r, gid_t *gid_r, const char **error_r)
{
	struct passwd pw, *res = NULL;
	char tmp[4096];
	int e = getpwnam_r(user, &pw, tmp, sizeof(tmp), &res);
	if (res == NULL) {
		snprintf(privdrop_err, sizeof(privdrop_err),
		         "user \"%.100s\" (set by [server] user) does not exist%s%s", user,
		         e != 0 ? ": " : "", e != 0 ? strerror(e) : "");
		*error_r = privdrop_err;
		return -1;
	}
	*uid_r = pw.pw_uid;
	*gid_r = pw.pw_gid;
	return 0;
}

static int privdrop_fail(const char *user, const char *step, const char **error_r)
{
	snprintf(privdrop_err, sizeof(privdrop_err), "cannot switch to user \"%.100s\": %s: %s",
	         user, step, strerror(errno));
	*error_r = privdrop_err;
	return -1;
}

int privdrop_to_user(const char *user, const char **error_r)
{
	if (geteuid() != 0)
		return 0;
	uid_t uid;
	gid_t gid;
	if (privdrop_lookup(user, &uid, &gid, error_r) < 0)
		return -1;
	if (uid == 0) {
		snprintf(privdrop_err, sizeof(privdrop_err),
		         "[server] user \"%.100s\" is root; refusing to serve as root", user);
		*error_r = privdrop_err;
		return -1;
	}
	if (initgroups(user, gid) < 0)
		return privdrop_fail(user, "initgroups", error_r);
	if (setgid(gid) < 0)
		return privdrop_fail(user, "setgid", error_r);
	if (setuid(uid) < 0)
		return privdrop_fail(user, "setuid", error_r);
	/* A half-done drop must not go unnoticed: root must be gone for good. */
	if (setuid(0) == 0 || seteuid(0) == 0 || geteuid() != uid || getegid() != gid) {
		snprintf(privdrop_err, sizeof(privdrop_err),
		         "switching to user \"%.100s\" did not stick", user);
		*error_r = privdrop_err;
		return -1;
	}
	return 0;
}
