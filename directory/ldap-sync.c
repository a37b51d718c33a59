/* ldap-sync.c - joiners and leavers: compares every LDAP account with its
 * entry, disables those whose entry is gone or disabled, copies names,
 * quotas and the admin role; on demand and from a thread every interval. */
#include "ldap-private.h"

#include "ldap-admin.h"
#include "log.h"
#include "xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sync_account {
	char address[ADDRESS_BUF_SIZE];
	char *dn; /* NULL if none stored */
	bool disabled;
};

static enum directory_err sync_list(struct directory *dir, struct sync_account **list_r,
                                    size_t *n_r, char *error_r)
{
	PGresult *res = ldapx_query(dir->pool,
	                            "SELECT address, external_id, disabled FROM accounts "
	                            "WHERE source = 'ldap' ORDER BY address",
	                            0, NULL, "listing accounts", error_r);
	if (res == NULL)
		return DIR_ETEMP;
	size_t n = (size_t)PQntuples(res);
	struct sync_account *list = xcalloc(n + 1, sizeof(*list));
	for (size_t i = 0; i < n; i++) {
		snprintf(list[i].address, sizeof(list[i].address), "%s",
		         PQgetvalue(res, (int)i, 0));
		if (!PQgetisnull(res, (int)i, 1))
			list[i].dn = xstrdup(PQgetvalue(res, (int)i, 1));
		list[i].disabled = PQgetvalue(res, (int)i, 2)[0] == 't';
	}
	PQclear(res);
	*list_r = list;
	*n_r = n;
	return DIR_OK;
}

static enum directory_err sync_disable(struct directory *dir, const char *address, char *error_r)
{
	const char *params[] = {address};
	PGresult *res = ldapx_query(dir->pool,
	                            "UPDATE accounts SET disabled = true, updated_at = now() "
	                            "WHERE address = $1 AND source = 'ldap'",
	                            1, params, "disabling an account", error_r);
	if (res == NULL)
		return DIR_ETEMP;
	PQclear(res);
	return DIR_OK;
}

/* The entry of one account: by its DN, else by its address (renamed). */
static enum directory_err sync_find(struct directory *dir, const struct ldap_config *cfg,
                                    const struct sync_account *a, struct ldapx_user *u,
                                    char *error_r)
{
	enum directory_err e = DIR_ENOTFOUND;
	if (a->dn != NULL)
		e = ldapx_read_user(dir, cfg, a->dn, u, error_r);
	if (e == DIR_OK && strcmp(u->address, a->address) != 0) {
		ldapx_user_free(u);
		e = DIR_ENOTFOUND; /* the entry now has another primary address */
	}
	if (e == DIR_ENOTFOUND)
		e = ldapx_find_user(dir, cfg, a->address, u, error_r);
	if (e == DIR_OK && strcmp(u->address, a->address) != 0) {
		ldapx_user_free(u);
		e = directory_error(error_r, DIR_ENOTFOUND, "gone");
	}
	return e;
}

static enum directory_err sync_one(struct directory *dir, const struct ldap_config *cfg,
                                   const struct sync_account *a,
                                   struct directory_ldap_sync_stats *st, char *error_r)
{
	struct ldapx_user u = {0};
	char q[LOG_QUOTE_MAX];
	enum directory_err e = sync_find(dir, cfg, a, &u, error_r);
	st->checked++;
	if (e == DIR_ENOTFOUND || (e == DIR_OK && u.disabled)) {
		if (!a->disabled) {
			st->disabled++;
			log_info("event=ldap_account_disabled address=%s reason=%s",
			         log_quote(q, sizeof(q), a->address),
			         e == DIR_OK ? "disabled" : "gone");
		}
		ldapx_user_free(&u);
		return a->disabled ? DIR_OK : sync_disable(dir, a->address, error_r);
	}
	if (e != DIR_OK)
		return e;
	int64_t id = 0;
	bool changed = false;
	e = ldapx_user_provision(dir, cfg, &u, &id, &changed, error_r);
	if (e == DIR_OK && a->disabled)
		st->enabled++;
	else if (e == DIR_OK && changed)
		st->updated++;
	if (e != DIR_OK && e != DIR_ETEMP) {
		log_warn("event=ldap_sync_skipped address=%s error=\"%s\"",
		         log_quote(q, sizeof(q), a->address), error_r);
		e = DIR_OK;
	}
	ldapx_user_free(&u);
	return e;
}

static enum directory_err sync_with(struct directory *dir, const struct ldap_config *cfg,
                                    struct directory_ldap_sync_stats *st, char *error_r)
{
	struct sync_account *list = NULL;
	size_t n = 0;
	enum directory_err e = sync_list(dir, &list, &n, error_r);
	/* Stops at the first DIR_ETEMP: a directory that went away must not
	 * look like every entry gone. */
	for (size_t i = 0; i < n && e == DIR_OK; i++)
		e = sync_one(dir, cfg, &list[i], st, error_r);
	for (size_t i = 0; i < n; i++)
		free(list[i].dn);
	free(list);
	return e;
}

enum directory_err directory_ldap_sync(struct directory *dir,
                                       struct directory_ldap_sync_stats *stats_r, char *error_r)
{
	char scratch[DIR_ERROR_SIZE];
	char *err = error_r != NULL ? error_r : scratch;
	struct directory_ldap_sync_stats st = {0};
	err[0] = '\0';
	struct ldap_config *cfg = ldapx_backend_config(dir, err);
	if (cfg == NULL)
		return DIR_ETEMP;
	enum directory_err e =
	    cfg->enabled ? sync_with(dir, cfg, &st, err)
	                 : directory_error(err, DIR_EINVALID, "LDAP is not configured (ldap urls)");
	ldapx_config_unref(&cfg);
	ldapx_backend_invalidate(dir);
	log_info("event=ldap_sync result=%s checked=%u updated=%u disabled=%u enabled=%u",
	         directory_err_str(e), st.checked, st.updated, st.disabled, st.enabled);
	if (stats_r != NULL)
		*stats_r = st;
	return e;
}

/* ---- the thread ---- */

static unsigned sync_interval(struct directory *dir, bool *enabled_r)
{
	char err[DIR_ERROR_SIZE];
	struct ldap_config *cfg = ldapx_backend_config(dir, err);
	unsigned s = cfg != NULL ? cfg->sync_interval_s : 0;
	*enabled_r = cfg != NULL && cfg->enabled && s > 0;
	ldapx_config_unref(&cfg);
	return s;
}

/* Seconds between looks at the settings: a changed interval or LDAP being
 * switched on takes effect this fast. */
#define SYNC_POLL_S 5

/* When the next pass is due (0: none while LDAP is off or the interval 0). */
static time_t sync_due(struct directory *dir, time_t next, time_t now)
{
	bool enabled = false;
	unsigned interval = sync_interval(dir, &enabled);
	if (!enabled)
		return 0;
	if (next == 0 || next > now + (time_t)interval)
		next = now + (time_t)interval;
	return next;
}

static void *sync_main(void *arg)
{
	struct directory *dir = arg;
	struct ldap_backend *b = dir->ldap;
	time_t next = 0;
	pthread_mutex_lock(&b->lock);
	while (!b->sync_stop) {
		pthread_mutex_unlock(&b->lock);
		time_t now = time(NULL);
		next = sync_due(dir, next, now);
		if (next != 0 && now >= next) {
			char err[DIR_ERROR_SIZE];
			directory_ldap_sync(dir, NULL, err);
			next = sync_due(dir, 0, time(NULL));
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		time_t wait = next != 0 && next - now < SYNC_POLL_S ? next - now : SYNC_POLL_S;
		ts.tv_sec += wait > 0 ? wait : 1;
		pthread_mutex_lock(&b->lock);
		if (!b->sync_stop)
			pthread_cond_timedwait(&b->sync_cond, &b->lock, &ts);
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

int directory_sync_start(struct directory *dir, const char **error_r)
{
	struct ldap_backend *b = dir->ldap;
	if (b->sync_running)
		return 0;
	b->sync_stop = false;
	if (pthread_create(&b->sync_thread, NULL, sync_main, dir) != 0) {
		*error_r = "cannot start the LDAP sync thread";
		return -1;
	}
	b->sync_running = true;
	log_info("event=ldap_sync_started");
	return 0;
}

void directory_sync_stop(struct directory *dir)
{
	struct ldap_backend *b = dir->ldap;
	if (b == NULL || !b->sync_running)
		return;
	pthread_mutex_lock(&b->lock);
	b->sync_stop = true;
	pthread_cond_signal(&b->sync_cond);
	pthread_mutex_unlock(&b->lock);
	pthread_join(b->sync_thread, NULL);
	b->sync_running = false;
}
