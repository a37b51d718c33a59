/* server.c - the state shared by all POP3 sessions of the process. */
#include "pop3-private.h"

#include "xalloc.h"

#include <stdlib.h>

int pop3_server_new(const struct config *cfg, struct db_pool *pool, struct directory *dir,
                    struct pop3_server **srv_r, const char **error_r)
{
	int64_t expire;
	if (pop3_parse_expire(config_str(cfg, CFG_POP3_EXPIRE), &expire) < 0) {
		*error_r = "[pop3] expire must be NEVER or a number of days (0 to 36500)";
		return -1;
	}
	struct pop3_server *srv = xcalloc(1, sizeof(*srv));
	srv->cfg = cfg;
	srv->pool = pool;
	srv->dir = dir;
	srv->expire_days = expire;
	srv->login_delay = config_uint(cfg, CFG_POP3_LOGIN_DELAY);
	pop3_locks_init(&srv->locks, db_pool_conninfo(pool));
	*srv_r = srv;
	return 0;
}

void pop3_server_free(struct pop3_server **srv)
{
	if (*srv == NULL)
		return;
	pop3_locks_deinit(&(*srv)->locks);
	free(*srv);
	*srv = NULL;
}
