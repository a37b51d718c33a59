/* cli-config.c - `roost config check|reference`. */
#include "cli.h"

#include "buf.h"

#include <stdio.h>
#include <string.h>

int cli_config(const struct cli_args *args, const char *verb)
{
	if (strcmp(verb, "reference") == 0) {
		struct buf b;
		buf_init(&b, BUF_NO_LIMIT);
		config_write_reference(&b);
		fwrite(b.data, 1, b.len, stdout);
		buf_free(&b);
		return 0;
	}
	struct config *cfg;
	if (cli_load_config(args, &cfg) < 0)
		return 1;
	printf("ok: %s\n", config_path(cfg)[0] != '\0' ? config_path(cfg) : "(defaults)");
	config_free(&cfg);
	return 0;
}
