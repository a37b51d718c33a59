/* unit.h - the tiny unit test harness.
 *
 *   UNIT_TEST(test_name) { CHECK(1 + 1 == 2); CHECK_STR(a, "b"); }
 *
 * Tests register themselves; main() in unit.c runs them all (or those named
 * on the command line) and ends with "N passed, N failed". A failed CHECK
 * reports file:line and marks the test failed, and the test goes on. */
#ifndef ROOST_UNIT_H
#define ROOST_UNIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef void (*unit_fn)(void);
void unit_register(const char *name, unit_fn fn);
void unit_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Directory of test data (tests/unit), from $ROOST_TEST_DATA or ".". */
const char *unit_data_dir(void);
/* Reads a whole file; NULL if it cannot. Caller frees. */
char *unit_read_file(const char *path, size_t *len_r);

#define UNIT_TEST(name)                                                  \
	static void name(void);                                          \
	__attribute__((constructor)) static void name##_register(void)   \
	{                                                                \
		unit_register(#name, name);                              \
	}                                                                \
	static void name(void)

#define CHECK(cond)                                                      \
	do {                                                             \
		if (!(cond))                                             \
			unit_fail(__FILE__, __LINE__, "%s", #cond);      \
	} while (0)

#define CHECK_INT(a, b)                                                  \
	do {                                                             \
		long long _a = (long long)(a), _b = (long long)(b);      \
		if (_a != _b)                                            \
			unit_fail(__FILE__, __LINE__, "%s == %lld, expected %lld", \
				  #a, _a, _b);                           \
	} while (0)

#define CHECK_STR(a, b)                                                  \
	do {                                                             \
		const char *_a = (a), *_b = (b);                         \
		if (_a == NULL || _b == NULL || strcmp(_a, _b) != 0)     \
			unit_fail(__FILE__, __LINE__, "%s == \"%s\", expected \"%s\"", \
				  #a, _a ? _a : "(null)", _b ? _b : "(null)"); \
	} while (0)

#endif
