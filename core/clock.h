/* clock.h - the monotonic clock in milliseconds, for timeouts and pacing. */
#ifndef ROOST_CORE_CLOCK_H
#define ROOST_CORE_CLOCK_H

#include <stdint.h>

/* Milliseconds of CLOCK_MONOTONIC: only differences mean anything. */
uint64_t clock_monotonic_ms(void);

#endif
