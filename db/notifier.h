/* notifier.h - change notification (DESIGN.md "Change notification").
 *
 * Every change to a mailbox commits `NOTIFY roost_mailbox, '<mailbox id>'`
 * (store.h). One notifier per process keeps a dedicated connection that
 * LISTENs on that channel in its own thread and wakes the sessions that
 * subscribed to the mailbox (IMAP IDLE, NOOP, POP3). Because the wake-up
 * travels through PostgreSQL, changes made by other nodes arrive too.
 *
 * A subscription is an eventfd that becomes readable when its mailbox may
 * have changed, so a session can poll it together with its client socket.
 * Wake-ups are coalesced: several changes before the session looks count as
 * one. If the connection drops, the notifier reconnects with backoff and
 * then wakes every subscriber, because changes may have been missed. */
#ifndef ROOST_DB_NOTIFIER_H
#define ROOST_DB_NOTIFIER_H

#include <stdbool.h>
#include <stdint.h>

#define NOTIFIER_CHANNEL "roost_mailbox"

struct notifier;
struct notifier_sub;

/* Connects to conninfo, LISTENs and starts the listener thread. Returns
 * NULL with a malloc'd message in *error_r (free with free()) if the first
 * connection fails; later failures are retried in the background. */
struct notifier *notifier_start(const char *conninfo, char **error_r);
/* Stops the thread and closes the connection. Subscriptions still alive
 * are detached (never woken again) and must still be freed with
 * notifier_unsubscribe(), but not concurrently with this call. Sets *n to
 * NULL. */
void notifier_stop(struct notifier **n);

/* Subscribes to changes of one mailbox. Thread-safe. NULL (logged) only
 * when no eventfd can be made: the process is out of file descriptors. */
struct notifier_sub *notifier_subscribe(struct notifier *n, int64_t mailbox_id);
/* Ends the subscription, closes its fd, sets *s to NULL. Thread-safe. */
void notifier_unsubscribe(struct notifier_sub **s);

/* The eventfd: readable when a change is pending. Do not read or close it
 * yourself; use notifier_sub_changed() to clear it. */
int notifier_sub_fd(const struct notifier_sub *s);
/* Waits up to timeout_ms (negative: forever) for a change. Returns 1 if one
 * was pending (and clears it), 0 on timeout. */
int notifier_wait(struct notifier_sub *s, int timeout_ms);
/* Non-blocking: whether a change was pending, clearing it. */
bool notifier_sub_changed(struct notifier_sub *s);

/* How many times the listener connection was re-established (for tests
 * and metrics). */
unsigned notifier_reconnects(const struct notifier *n);

#endif
