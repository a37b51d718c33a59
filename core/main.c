/* main.c - the `roost` command. Subcommands are in cli*.c. */
#include "cli.h"

int main(int argc, char **argv)
{
	return cli_main(argc, argv);
}
