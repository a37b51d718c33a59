#include "strnum.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int mem_to_u64(const char *s, size_t len, uint64_t max, uint64_t *r)
{
	if (len == 0)
		return -1;
	uint64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		uint64_t d = (uint64_t)(s[i] - '0');
		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*r = v;
	return 0;
}

int str_to_u64(const char *s, uint64_t max, uint64_t *r)
{
	return mem_to_u64(s, strlen(s), max, r);
}

int str_to_u32(const char *s, uint32_t *r)
{
	uint64_t v;
	if (str_to_u64(s, UINT32_MAX, &v) < 0)
		return -1;
	*r = (uint32_t)v;
	return 0;
}

static int str_suffixed(const char *s, const char *const *suffixes,
			const uint64_t *mults, size_t nsuf, uint64_t *r)
{
	size_t n = 0;
	while (s[n] >= '0' && s[n] <= '9')
		n++;
	uint64_t v;
	if (mem_to_u64(s, n, UINT64_MAX, &v) < 0)
		return -1;
	const char *suf = s + n;
	uint64_t mult = 1;
	if (*suf != '\0') {
		size_t i;
		for (i = 0; i < nsuf; i++)
			if (strcasecmp(suf, suffixes[i]) == 0)
				break;
		if (i == nsuf)
			return -1;
		mult = mults[i];
	}
	if (mult != 0 && v > UINT64_MAX / mult)
		return -1;
	*r = v * mult;
	return 0;
}

int str_to_size(const char *s, uint64_t *r)
{
	static const char *const suf[] = { "b", "k", "kb", "kib", "m", "mb", "mib",
					   "g", "gb", "gib", "t", "tb", "tib" };
	static const uint64_t mul[] = { 1, 1ULL << 10, 1ULL << 10, 1ULL << 10,
					1ULL << 20, 1ULL << 20, 1ULL << 20,
					1ULL << 30, 1ULL << 30, 1ULL << 30,
					1ULL << 40, 1ULL << 40, 1ULL << 40 };
	return str_suffixed(s, suf, mul, sizeof(mul) / sizeof(mul[0]), r);
}

int str_to_seconds(const char *s, uint64_t *r)
{
	static const char *const suf[] = { "s", "m", "min", "h", "d" };
	static const uint64_t mul[] = { 1, 60, 60, 3600, 86400 };
	return str_suffixed(s, suf, mul, sizeof(mul) / sizeof(mul[0]), r);
}

void size_format(uint64_t bytes, char *out, size_t outlen)
{
	static const char units[] = "KMGT";
	if (bytes == 0) {
		snprintf(out, outlen, "0");
		return;
	}
	int u = -1;
	uint64_t v = bytes;
	while (u < 3 && v % 1024 == 0) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(out, outlen, "%llu", (unsigned long long)v);
	else
		snprintf(out, outlen, "%llu%c", (unsigned long long)v, units[u]);
}
