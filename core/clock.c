#include "clock.h"

#include <time.h>

uint64_t clock_monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct timespec clock_monotonic_at(uint64_t ms)
{
	return (struct timespec){.tv_sec = (time_t)(ms / 1000),
	                         .tv_nsec = (long)(ms % 1000) * 1000000L};
}
