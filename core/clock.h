/* clock.h - the monotonic clock in milliseconds, for timeouts and pacing. */
#ifndef ROOST_CORE_CLOCK_H
#define ROOST_CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds of CLOCK_MONOTONIC: only differences mean anything. */
uint64_t clock_monotonic_ms(void);

/* The CLOCK_MONOTONIC time of a clock_monotonic_ms() value, for waits on a
 * condition variable set to that clock (pthread_condattr_setclock). */
struct timespec clock_monotonic_at(uint64_t ms);

#endif
