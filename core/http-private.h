/* http-private.h - what http.c (the MHD side) and http-bridge.c (the conn
 * side) share. Not for use outside core/http*.c. */
#ifndef ROOST_HTTP_PRIVATE_H
#define ROOST_HTTP_PRIVATE_H

#include "http.h"

#include <pthread.h>
#include <stdbool.h>

struct MHD_Daemon;

/* What the MHD side needs to know about the client behind a socketpair end:
 * copied at MHD's "connection started" notification from the registry entry
 * the bridge made before handing the socket over. */
struct http_link_info {
	bool tls;
	char session_id[48];
	char peer_ip[64];
};

/* One bridged connection, owned by its session thread. */
struct http_bridge_entry {
	int mhd_fd; /* the socketpair end given to MHD (key) */
	int our_fd; /* our end; shut down by http_server_free */
	struct http_link_info info;
	struct http_bridge_entry *next;
};

struct http_server {
	const struct http_route *routes;
	size_t nroutes;
	struct http_options opts;
	struct MHD_Daemon *daemon;

	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t idle;  /* signalled when nbridges drops to 0 */
	bool stopping;
	unsigned nbridges;
	struct http_bridge_entry *bridges;
};

/* Registers e (fills nothing; the caller has set it up) unless the server is
 * stopping. -1 when stopping. */
int http_bridge_register(struct http_server *srv, struct http_bridge_entry *e);
void http_bridge_unregister(struct http_server *srv, struct http_bridge_entry *e);
/* Copies the info of the bridge whose MHD end is mhd_fd; false if none. */
bool http_bridge_lookup(struct http_server *srv, int mhd_fd, struct http_link_info *r);

/* The raw path is origin-form: "/" then visible ASCII only. */
bool http_path_chars_ok(const char *path);

/* Writes a complete minimal response (security headers, Connection: close)
 * for the bridge's own 400/408 answers into out. */
void http_format_bare_response(struct buf *out, unsigned status, bool tls);
const char *http_status_reason(unsigned status);

#endif
