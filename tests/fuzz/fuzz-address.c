/* libFuzzer target for the address parser (core/address.h): any input must
 * parse or fail cleanly, and what parses must format back to something that
 * parses to the same address. */
#include "address.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct address a, b;
	const char *err;
	if (address_parse((const char *)data, size, &a, &err) == 0) {
		char out[ADDRESS_BUF_SIZE];
		address_format(&a, out);
		if (address_parse(out, strlen(out), &b, &err) != 0 ||
		    strcmp(a.local, b.local) != 0 || strcmp(a.domain, b.domain) != 0)
			__builtin_trap();
		char key[ADDRESS_BUF_SIZE];
		address_lookup_key(&a, key);
		struct address base;
		char detail[ADDRESS_LOCAL_MAX + 1];
		(void)address_split_detail(&a, '+', &base, detail);
	}
	size_t consumed;
	if (address_parse_path_prefix((const char *)data, size, &a, &consumed, &err) == 0 &&
	    consumed > size)
		__builtin_trap();
	return 0;
}
