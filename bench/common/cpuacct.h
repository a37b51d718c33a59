/* cpuacct.h - CPU time of a benchmark and its servers, for the benches.
 *
 * On a machine shared with other work, throughput swings with the
 * neighbours, while CPU time per message stays steady when the measured
 * runs are CPU-bound. Put the bench (and so the server and database it
 * starts) in a cgroup of its own and name that cgroup's cpuacct.usage in
 * $ROOST_BENCH_CPUACCT, e.g.
 *
 *   mkdir /sys/fs/cgroup/cpuacct/bench && echo $$ > /sys/fs/cgroup/cpuacct/bench/cgroup.procs
 *   ROOST_BENCH_CPUACCT=/sys/fs/cgroup/cpuacct/bench/cpuacct.usage bench-...
 */
#ifndef ROOST_BENCH_CPUACCT_H
#define ROOST_BENCH_CPUACCT_H

#include <stdio.h>
#include <stdlib.h>

/* Seconds of CPU used by the cgroup so far; 0 without $ROOST_BENCH_CPUACCT. */
static inline double bench_cpu_used_s(void)
{
	const char *path = getenv("ROOST_BENCH_CPUACCT");
	FILE *f = path != NULL ? fopen(path, "r") : NULL;
	unsigned long long ns = 0;
	if (f != NULL) {
		if (fscanf(f, "%llu", &ns) != 1)
			ns = 0;
		fclose(f);
	}
	return (double)ns / 1e9;
}

#endif
