/* worker.c - background threads that work in rounds (worker.h). */
#include "worker.h"

#include "clock.h"
#include "log.h"
#include "xalloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct worker {
	char session[32];
	unsigned first_ms;
	worker_round_fn round;
	void *arg;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
};

/* Sleeps up to ms unless asked to stop; true when stopping. */
static bool worker_sleep(struct worker *w, unsigned ms)
{
	struct timespec until = clock_monotonic_at(clock_monotonic_ms() + ms);
	pthread_mutex_lock(&w->lock);
	while (!w->stop && pthread_cond_timedwait(&w->cond, &w->lock, &until) != ETIMEDOUT)
		;
	bool stop = w->stop;
	pthread_mutex_unlock(&w->lock);
	return stop;
}

bool worker_stopping(struct worker *w)
{
	pthread_mutex_lock(&w->lock);
	bool stop = w->stop;
	pthread_mutex_unlock(&w->lock);
	return stop;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	log_set_session(w->session);
	unsigned wait = w->first_ms;
	while (!worker_sleep(w, wait))
		wait = w->round(w, w->arg);
	return NULL;
}

struct worker *worker_start(const char *session, unsigned first_ms, worker_round_fn round,
                            void *arg, char **error_r)
{
	struct worker *w = xcalloc(1, sizeof(*w));
	snprintf(w->session, sizeof(w->session), "%s", session);
	w->first_ms = first_ms;
	w->round = round;
	w->arg = arg;
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &attr);
	pthread_condattr_destroy(&attr);
	int err = pthread_create(&w->thread, NULL, worker_main, w);
	if (err != 0) {
		char msg[128];
		snprintf(msg, sizeof(msg), "cannot start the %s thread: %s", session,
		         strerror(err));
		*error_r = xstrdup(msg);
		pthread_cond_destroy(&w->cond);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return NULL;
	}
	return w;
}

void worker_stop(struct worker **wp)
{
	struct worker *w = *wp;
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
	*wp = NULL;
}
