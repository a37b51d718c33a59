/* cmd-idle.c - IDLE (RFC 2177): waits on the client socket and the
 * notifier's eventfd together, so a delivery is reported within moments. */
#include "imap-private.h"

#include "clock.h"
#include "log.h"

#include <string.h>
#include <time.h>

/* "* OK Still here" keeps NAT mappings alive; without a notifier the
 * mailbox is polled this often. */
#define IMAP_IDLE_KEEPALIVE_MS 120000
#define IMAP_IDLE_POLL_MS      2000

/* Reads the line that ends IDLE and answers it. */
static void idle_done(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	enum conn_status st = imap_io_read_line(s, &s->line, 64, CONN_NEW_REQUEST, NULL);
	if (st == CONN_OK && strcasecmp(buf_cstr(&s->line), "DONE") == 0)
		imap_reply_ok(cmd, "IDLE terminated");
	else if (st == CONN_OK || st == CONN_TOO_LONG)
		imap_reply_bad(cmd, "Expected DONE");
	else
		s->logout = true;
}

/* One wait; returns false once IDLE is over (answered or session ending). */
static bool idle_wait(struct imap_cmd *cmd, uint64_t *last_out, uint64_t deadline)
{
	struct imap_session *s = cmd->s;
	if (imap_io_pending_input(s) > 0) {
		idle_done(cmd);
		return false;
	}
	uint64_t now = clock_monotonic_ms();
	if (now >= deadline) {
		imap_untagged(s, "BYE Autologout; idle for too long");
		s->logout = true;
		return false;
	}
	uint64_t wait = deadline - now;
	int fd = s->view.sub != NULL ? notifier_sub_fd(s->view.sub) : -1;
	if (wait > IMAP_IDLE_KEEPALIVE_MS)
		wait = IMAP_IDLE_KEEPALIVE_MS;
	if (fd < 0 && s->state == IMAP_STATE_SELECTED && wait > IMAP_IDLE_POLL_MS)
		wait = IMAP_IDLE_POLL_MS;
	bool extra = false;
	imap_io_flush(s);
	imap_io_idle(s); /* COMPRESS gives back its zlib state meanwhile */
	enum conn_status st = conn_wait_input(s->c, (int)wait, fd, &extra);
	if (st == CONN_STOPPING) {
		imap_untagged(s, "BYE [UNAVAILABLE] Server shutting down, try again later");
		s->logout = true;
		return false;
	}
	if (st == CONN_OK &&
	    (!extra || imap_io_pending_input(s) > 0 || conn_pending_input(s->c) > 0)) {
		idle_done(cmd);
		return false;
	}
	if (st != CONN_OK && st != CONN_TIMEOUT) {
		s->logout = true;
		return false;
	}
	if (extra || fd < 0)
		imap_view_sync(s, false, fd < 0);
	if (clock_monotonic_ms() - *last_out >= IMAP_IDLE_KEEPALIVE_MS) {
		imap_untagged(s, "OK Still here");
		*last_out = clock_monotonic_ms();
	}
	return true;
}

int imap_cmd_idle(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	if (imap_arg_end(cmd) < 0)
		return -1;
	imap_write_str(s, "+ idling\r\n");
	imap_view_sync(s, false, true);
	uint64_t last_out = clock_monotonic_ms();
	uint64_t deadline = last_out + conn_get_limits(s->c)->idle_timeout_ms;
	while (idle_wait(cmd, &last_out, deadline))
		;
	return 0;
}
