/* cli.h - the `roost` command line (part of the roost executable only). */
#ifndef ROOST_CLI_H
#define ROOST_CLI_H

int cli_main(int argc, char **argv);

#endif
