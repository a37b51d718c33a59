#include "unit.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

struct unit_case {
	const char *name;
	unit_fn fn;
};

static struct unit_case unit_cases[1024];
static size_t unit_ncases;
static int unit_current_failed;

void unit_register(const char *name, unit_fn fn)
{
	if (unit_ncases < sizeof(unit_cases) / sizeof(unit_cases[0]))
		unit_cases[unit_ncases++] = (struct unit_case){ name, fn };
}

void unit_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s:%d: check failed: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	unit_current_failed = 1;
}

const char *unit_data_dir(void)
{
	const char *d = getenv("ROOST_TEST_DATA");
	return d != NULL ? d : ".";
}

char *unit_read_file(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	size_t cap = 4096, len = 0;
	char *data = malloc(cap);
	size_t n;
	while ((n = fread(data + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			cap *= 2;
			data = realloc(data, cap);
		}
	}
	fclose(f);
	data[len] = '\0';
	*len_r = len;
	return data;
}

static int unit_selected(int argc, char **argv, const char *name)
{
	if (argc < 2)
		return 1;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;
	for (size_t i = 0; i < unit_ncases; i++) {
		if (!unit_selected(argc, argv, unit_cases[i].name))
			continue;
		unit_current_failed = 0;
		unit_cases[i].fn();
		if (unit_current_failed) {
			failed++;
			printf("FAIL %s\n", unit_cases[i].name);
		} else {
			passed++;
			printf("ok   %s\n", unit_cases[i].name);
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
