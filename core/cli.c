#include "cli.h"

#include <stdio.h>
#include <string.h>

int cli_main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "version") == 0) {
		printf("roost %s\n", ROOST_VERSION);
		return 0;
	}
	fprintf(stderr, "usage: roost COMMAND\n");
	return 2;
}
