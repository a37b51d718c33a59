/* cli.c - the `roost` command: one table of subcommands, one generic step
 * that checks usage before any subcommand runs. */
#include "cli.h"

#include "buf.h"
#include "log.h"
#include "xalloc.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define CLI_EXIT_USAGE 2

struct cli_command {
	const char *group;
	const char *verb; /* NULL for single-word commands */
	int min_args, max_args;
	const char *options; /* allowed options: "name= quota= force" (= takes a value) */
	const char *usage;
	const char *help;
	int (*run)(const struct cli_args *args, const char *verb);
	bool needs_config;
};

static int cli_run_serve(const struct cli_args *a, const char *v)
{
	(void)v;
	return cli_serve(a);
}
static int cli_run_migrate(const struct cli_args *a, const char *v)
{
	(void)v;
	return cli_migrate(a);
}
static int cli_run_deliver(const struct cli_args *a, const char *v)
{
	(void)v;
	return cli_deliver(a);
}
static int cli_run_version(const struct cli_args *a, const char *v)
{
	(void)a;
	(void)v;
	printf("roost %s\n", ROOST_VERSION);
	return 0;
}

static const struct cli_command cli_commands[] = {
    {"serve", NULL, 0, 0, "", "roost serve [-c FILE]",
     "Run the server: every configured listener, over the managed PostgreSQL\n"
     "cluster under data_dir (or the configured DSN). Stops on SIGTERM, reloads\n"
     "certificates and settings on SIGHUP.",
     cli_run_serve, true},
    {"migrate", NULL, 0, 0, "", "roost migrate [-c FILE]",
     "Apply the database schema migrations this version has and exit.", cli_run_migrate, true},
    {"domain", "add", 1, 1, "", "roost domain add NAME [-c FILE]", "Add a local mail domain.",
     cli_domain, true},
    {"domain", "list", 0, 0, "", "roost domain list [-c FILE]",
     "List the local mail domains with their account and alias counts.", cli_domain, true},
    {"domain", "remove", 1, 1, "force", "roost domain remove NAME [--force] [-c FILE]",
     "Remove a local mail domain. Refused while it has accounts or aliases,\n"
     "unless --force, which removes them (and their mail) too.",
     cli_domain, true},
    {"domain", "dns", 1, 1,
     "new-dkim-key=", "roost domain dns NAME [--new-dkim-key rsa-sha256|ed25519-sha256] [-c FILE]",
     "Print the DNS records to publish for a local domain: MX, SPF, DKIM (the\n"
     "domain's signing key is created on first use) and DMARC. --new-dkim-key\n"
     "replaces the domain's DKIM key by a new one (new selector) of that algorithm.",
     cli_domain_dns, true},
    {"user", "add", 1, 1,
     "name= quota=", "roost user add ADDRESS [--name \"Full Name\"] [--quota SIZE] [-c FILE]",
     "Add an account with its default mailboxes (INBOX, Sent, Drafts, Trash,\n"
     "Junk, Archive). The password is read as one line from standard input.\n"
     "SIZE is bytes with an optional K, M, G or T suffix; 0 means unlimited.",
     cli_user, true},
    {"user", "passwd", 1, 1, "", "roost user passwd ADDRESS [-c FILE]",
     "Set an account's password, read as one line from standard input.", cli_user, true},
    {"user", "list", 0, 1, "", "roost user list [DOMAIN] [-c FILE]",
     "List accounts, of one domain or of all.", cli_user, true},
    {"user", "remove", 1, 1, "", "roost user remove ADDRESS [-c FILE]",
     "Remove an account and all its mail.", cli_user, true},
    {"alias", "add", 2, 1000, "", "roost alias add ADDRESS TARGET... [-c FILE]",
     "Add an alias or distribution list delivering to the targets (local or\n"
     "remote addresses). ADDRESS @domain is the domain's catch-all.",
     cli_alias, true},
    {"alias", "list", 0, 1, "", "roost alias list [DOMAIN] [-c FILE]",
     "List aliases with their targets.", cli_alias, true},
    {"alias", "remove", 1, 1, "", "roost alias remove ADDRESS [-c FILE]", "Remove an alias.",
     cli_alias, true},
    {"admin", "add", 1, 1, "", "roost admin add ADDRESS [-c FILE]",
     "Grant an account the administrator role (browser administration).", cli_admin, true},
    {"admin", "remove", 1, 1, "", "roost admin remove ADDRESS [-c FILE]",
     "Take the administrator role from an account.", cli_admin, true},
    {"queue", "list", 0, 0, "", "roost queue list [-c FILE]",
     "List the outbound queue: id, age, sender, recipients with their status,\n"
     "next attempt, attempts and last error.",
     cli_queue, true},
    {"queue", "retry", 1, 1, "", "roost queue retry ID [-c FILE]",
     "Schedule a queued message for delivery now.", cli_queue, true},
    {"queue", "delete", 1, 1, "", "roost queue delete ID [-c FILE]",
     "Remove a message from the queue, without a bounce to its sender.", cli_queue, true},
    {"deliver", NULL, 1, 1000, "", "roost deliver ADDRESS... [-c FILE]",
     "Deliver one message read from standard input to the local accounts the\n"
     "addresses resolve to (aliases and sub-addresses included), as a local\n"
     "delivery agent for another MTA or fetch tool. Exit status: 0 delivered,\n"
     "67 unknown recipient, 65 bad input, 73 over quota, 75 try again later.",
     cli_run_deliver, true},
    {"ldap", "set", 1, 100, "", "roost ldap set KEY=VALUE... [-c FILE]",
     "Store LDAP settings (see roost ldap show for the keys). preset=openldap\n"
     "or preset=ad sets the attribute mapping; bind_password=- reads the\n"
     "password from standard input; urls= (empty) turns LDAP off.",
     cli_ldap, true},
    {"ldap", "show", 0, 0, "", "roost ldap show [-c FILE]",
     "Print the LDAP settings (the bind password only as set or not).", cli_ldap, true},
    {"ldap", "test", 0, 1, "password", "roost ldap test [ADDRESS] [--password] [-c FILE]",
     "Connect and bind as the service account; with ADDRESS (or a login name)\n"
     "print what Roost sees of that user. With --password, log in as that user\n"
     "with a password read from standard input, exactly as IMAP/POP3/SMTP do.\n"
     "Exit status: 0 ok, 1 not found or refused, 75 directory unreachable.",
     cli_ldap, true},
    {"ldap", "sync", 0, 0, "", "roost ldap sync [-c FILE]",
     "Compare LDAP accounts with the directory now: disable those whose entry\n"
     "is gone or disabled, copy names, quotas and the administrator role.",
     cli_ldap, true},
    {"config", "check", 0, 0, "", "roost config check [-c FILE]",
     "Read the config file and report the first problem, or print \"ok\".", cli_config, true},
    {"config", "reference", 0, 0, "", "roost config reference",
     "Print the reference table of every setting (Markdown).", cli_config, false},
    {"version", NULL, 0, 0, "", "roost version", "Print the version.", cli_run_version, false},
};
#define CLI_NCOMMANDS (sizeof(cli_commands) / sizeof(cli_commands[0]))

void cli_error(const char *fmt, ...)
{
	va_list ap;
	fputs("roost: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void cli_usage_all(FILE *out)
{
	fputs("usage: roost COMMAND [ARGS] [-c FILE]\n\ncommands:\n", out);
	for (size_t i = 0; i < CLI_NCOMMANDS; i++)
		fprintf(out, "  %s\n", cli_commands[i].usage);
	fputs("\nEvery command takes -c FILE (default: /etc/roost/roost.conf, else ./roost.conf)\n"
	      "and --help.\n",
	      out);
}

static void cli_usage_one(FILE *out, const struct cli_command *c)
{
	fprintf(out, "usage: %s\n\n%s\n", c->usage, c->help);
}

const char *cli_opt(const struct cli_args *args, const char *name)
{
	for (int i = 0; i < args->nopts; i++)
		if (strcmp(args->opt_names[i], name) == 0)
			return args->opt_values[i];
	return NULL;
}

/* Is --name allowed by the row, and does it take a value? 0 no, 1 flag, 2 value. */
static int cli_opt_kind(const struct cli_command *c, const char *name, size_t len)
{
	const char *p = c->options;
	while (*p != '\0') {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " =");
		if (n == len && strncmp(p, name, n) == 0)
			return p[n] == '=' ? 2 : 1;
		p += n;
		if (*p == '=')
			p++;
	}
	return 0;
}

/* Splits argv into positional arguments, -c, --help and the row's options. */
static int cli_parse(const struct cli_command *c, int argc, char **argv, struct cli_args *args,
                     bool *help_r)
{
	for (int i = 0; i < argc; i++) {
		char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			*help_r = true;
		} else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (i + 1 >= argc) {
				cli_error("%s needs a file name", a);
				return -1;
			}
			args->config_file = argv[++i];
		} else if (strncmp(a, "--config=", 9) == 0) {
			args->config_file = a + 9;
		} else if (strncmp(a, "--", 2) == 0 && a[2] != '\0') {
			const char *name = a + 2;
			const char *eq = strchr(name, '=');
			size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
			int kind = cli_opt_kind(c, name, len);
			if (kind == 0 || (kind == 1 && eq != NULL) || args->nopts == CLI_MAX_OPTS) {
				cli_error("unknown option %s for '%s'", a, args->command);
				return -1;
			}
			const char *value = "";
			if (kind == 2) {
				if (eq != NULL)
					value = eq + 1;
				else if (i + 1 < argc &&
				         !(argv[i + 1][0] == '-' && argv[i + 1][1] != '\0'))
					value = argv[++i]; /* "--name=-x" for values that start with
					                      '-' */
				else {
					cli_error("option --%.*s needs a value", (int)len, name);
					return -1;
				}
			}
			args->opt_names[args->nopts] = xstrndup(name, len);
			args->opt_values[args->nopts++] = value;
		} else if (a[0] == '-' && a[1] != '\0') {
			cli_error("unknown option %s for '%s'", a, args->command);
			return -1;
		} else {
			args->argv[args->argc++] = a;
		}
	}
	return 0;
}

static const struct cli_command *cli_find(const char *group, const char *verb, bool *group_known)
{
	*group_known = false;
	for (size_t i = 0; i < CLI_NCOMMANDS; i++) {
		const struct cli_command *c = &cli_commands[i];
		if (strcmp(c->group, group) != 0)
			continue;
		*group_known = true;
		if (c->verb == NULL || (verb != NULL && strcmp(c->verb, verb) == 0))
			return c;
	}
	return NULL;
}

static void cli_group_usage(const char *group)
{
	fprintf(stderr, "usage:\n");
	for (size_t i = 0; i < CLI_NCOMMANDS; i++)
		if (strcmp(cli_commands[i].group, group) == 0)
			fprintf(stderr, "  %s\n", cli_commands[i].usage);
}

int cli_main(int argc, char **argv)
{
	if (argc < 2) {
		cli_usage_all(stderr);
		return CLI_EXIT_USAGE;
	}
	const char *group = argv[1];
	if (strcmp(group, "help") == 0 || strcmp(group, "--help") == 0 ||
	    strcmp(group, "-h") == 0) {
		cli_usage_all(stdout);
		return 0;
	}
	if (strcmp(group, "--version") == 0)
		group = "version";
	const char *verb = argc >= 3 ? argv[2] : NULL;
	bool group_known;
	bool verb_is_help =
	    verb != NULL && (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0);
	if (verb != NULL && verb[0] == '-' && !verb_is_help)
		verb = NULL; /* an option such as -c, not a subcommand */
	const struct cli_command *c = cli_find(group, verb, &group_known);
	if (c == NULL) {
		if (!group_known) {
			cli_error("unknown command '%s' (see roost --help)", group);
			return CLI_EXIT_USAGE;
		}
		if (verb_is_help) {
			cli_group_usage(group);
			return 0;
		}
		if (verb == NULL)
			cli_error("'%s' needs a subcommand", group);
		else
			cli_error("unknown subcommand '%s %s'", group, verb);
		cli_group_usage(group);
		return CLI_EXIT_USAGE;
	}
	int skip = c->verb != NULL ? 3 : 2;
	char command[64];
	snprintf(command, sizeof(command), "%s%s%s", c->group, c->verb ? " " : "",
	         c->verb ? c->verb : "");
	struct cli_args args = {.command = command};
	args.argv = xcalloc((size_t)argc + 1, sizeof(char *));
	bool help = false;
	int status;
	if (cli_parse(c, argc - skip, argv + skip, &args, &help) < 0) {
		fprintf(stderr, "usage: %s\n", c->usage);
		status = CLI_EXIT_USAGE;
	} else if (help) {
		cli_usage_one(stdout, c);
		status = 0;
	} else if (args.argc < c->min_args || args.argc > c->max_args) {
		cli_error("'%s' takes %s", command,
		          c->min_args == c->max_args ? (c->min_args == 0   ? "no arguments"
		                                        : c->min_args == 1 ? "one argument"
		                                                           : "two arguments")
		                                     : "a different number of arguments");
		fprintf(stderr, "usage: %s\n", c->usage);
		status = CLI_EXIT_USAGE;
	} else {
		status = c->run(&args, c->verb);
	}
	for (int i = 0; i < args.nopts; i++)
		free((char *)args.opt_names[i]);
	free(args.argv);
	return status;
}

int cli_load_config(const struct cli_args *args, struct config **cfg_r)
{
	char *err = NULL;
	const char *path = args->config_file;
	bool missing_ok = false;
	if (path == NULL) {
		path = access("/etc/roost/roost.conf", F_OK) == 0 ? "/etc/roost/roost.conf"
		                                                  : "./roost.conf";
		missing_ok = strcmp(path, "./roost.conf") == 0;
	}
	if (config_load(path, missing_ok, cfg_r, &err) < 0) {
		cli_error("%s", err);
		free(err);
		return -1;
	}
	enum log_level level = LOG_INFO;
	log_parse_level(config_str(*cfg_r, CFG_SERVER_LOG_LEVEL), &level);
	/* Management commands print their results; their log lines would be
	 * noise unless something goes wrong. */
	if (strcmp(args->command, "serve") != 0 && level < LOG_WARN)
		level = LOG_WARN;
	log_set_level(level);
	if (config_str(*cfg_r, CFG_SERVER_HOSTNAME)[0] == '\0') {
		char host[256];
		if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		char *err2 = NULL;
		if (config_set(*cfg_r, "server", "hostname", host, &err2) < 0)
			free(err2);
	}
	return 0;
}

char *cli_read_password(const char *prompt)
{
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	if (tty) {
		fprintf(stderr, "%s", prompt);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, stdin);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (n < 0) {
		free(line);
		cli_error("no password on standard input");
		return NULL;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (n == 0 || n > 1024) {
		explicit_bzero(line, cap);
		free(line);
		cli_error(n == 0 ? "empty password" : "password longer than 1024 bytes");
		return NULL;
	}
	return line;
}
