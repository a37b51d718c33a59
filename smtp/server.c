/* server.c - the SMTP server object: listeners' contexts and the queue
 * runner's lifetime. */
#include "smtp-private.h"

#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "outbound.h"

int smtp_server_new(const struct config *cfg, struct db_pool *pool, struct directory *dir,
                    struct smtp_server **srv_r, const char **error_r)
{
	if (cfg == NULL || pool == NULL || dir == NULL) {
		*error_r = "smtp server needs a config, a database pool and a directory";
		return -1;
	}
	struct smtp_server *srv = xcalloc(1, sizeof(*srv));
	srv->cfg = cfg;
	srv->pool = pool;
	srv->dir = dir;
	pthread_mutex_init(&srv->unlimited.lock, NULL);
	if (gethostname(srv->default_hostname, sizeof(srv->default_hostname) - 1) < 0)
		snprintf(srv->default_hostname, sizeof(srv->default_hostname), "localhost");
	for (int i = 0; i < 3; i++)
		srv->listeners[i] = (struct smtp_listener_ctx){srv, (enum smtp_listener)i};
	*srv_r = srv;
	return 0;
}

void *smtp_server_listener_ctx(struct smtp_server *srv, enum smtp_listener which)
{
	return &srv->listeners[which];
}

int smtp_server_start_queue(struct smtp_server *srv, const char **error_r)
{
	return queue_runner_start(srv->cfg, srv->pool, srv->dir, &srv->qr, error_r);
}

void smtp_server_free(struct smtp_server **srv)
{
	if (*srv == NULL)
		return;
	queue_runner_stop(&(*srv)->qr);
	pthread_mutex_destroy(&(*srv)->unlimited.lock);
	free(*srv);
	*srv = NULL;
}
