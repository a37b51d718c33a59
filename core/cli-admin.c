/* cli-admin.c - `roost domain|user|alias|admin ...`: the local store's
 * management through directory/, printing results for people and scripts
 * (tab-separated columns). */
#include "cli.h"

#include "directory.h"
#include "strnum.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prints the directory's message (or the generic one) and maps to an exit status. */
static int cli_dir_status(enum directory_err e, const char *msg)
{
	if (e == DIR_OK)
		return 0;
	cli_error("%s", msg[0] != '\0' ? msg : directory_err_str(e));
	return e == DIR_ETEMP ? 75 /* EX_TEMPFAIL */ : 1;
}

struct cli_dir {
	struct cli_db db;
	struct directory *dir;
};

/* 0, or the exit status (cli_db_open()). */
static int cli_dir_open(const struct cli_args *args, struct cli_dir *d)
{
	const char *err;
	int status = cli_db_open(args, &d->db);
	if (status != 0)
		return status;
	if (directory_open(d->db.pool, "local", &d->dir, &err) < 0) {
		cli_error("%s", err);
		cli_db_close(&d->db);
		return 1;
	}
	return 0;
}

static void cli_dir_close(struct cli_dir *d)
{
	directory_close(&d->dir);
	cli_db_close(&d->db);
}

static int cli_domain_list(struct directory *dir)
{
	struct directory_domain *doms = NULL;
	size_t n = 0;
	char err[DIR_ERROR_SIZE];
	enum directory_err e = directory_domain_list(dir, &doms, &n, err);
	if (e != DIR_OK)
		return cli_dir_status(e, err);
	for (size_t i = 0; i < n; i++)
		printf("%s\t%llu accounts\t%llu aliases\n", doms[i].name,
		       (unsigned long long)doms[i].accounts, (unsigned long long)doms[i].aliases);
	free(doms);
	return 0;
}

int cli_domain(const struct cli_args *args, const char *verb)
{
	struct cli_dir d;
	int open_status = cli_dir_open(args, &d);
	if (open_status != 0)
		return open_status;
	char err[DIR_ERROR_SIZE] = "";
	int status;
	if (strcmp(verb, "list") == 0) {
		status = cli_domain_list(d.dir);
	} else if (strcmp(verb, "add") == 0) {
		status = cli_dir_status(directory_domain_add(d.dir, args->argv[0], err), err);
		if (status == 0)
			printf("domain %s added\n", args->argv[0]);
	} else {
		bool force = cli_opt(args, "force") != NULL;
		status =
		    cli_dir_status(directory_domain_remove(d.dir, args->argv[0], force, err), err);
		if (status == 0)
			printf("domain %s removed\n", args->argv[0]);
	}
	cli_dir_close(&d);
	return status;
}

static int cli_user_list(struct directory *dir, const char *domain)
{
	struct directory_account *accts = NULL;
	size_t n = 0;
	char err[DIR_ERROR_SIZE];
	enum directory_err e = directory_account_list(dir, domain, &accts, &n, err);
	if (e != DIR_OK)
		return cli_dir_status(e, err);
	for (size_t i = 0; i < n; i++) {
		char quota[24], used[24];
		if (accts[i].quota_bytes == 0)
			snprintf(quota, sizeof(quota), "unlimited");
		else
			size_format(accts[i].quota_bytes, quota, sizeof(quota));
		snprintf(used, sizeof(used), "%llu", (unsigned long long)accts[i].used_bytes);
		printf("%s\t%s\tquota=%s\tused=%s%s%s%s\n", accts[i].address, accts[i].display_name,
		       quota, used, accts[i].is_admin ? "\tadmin" : "",
		       accts[i].disabled ? "\tdisabled" : "", accts[i].ldap ? "\tldap" : "");
	}
	free(accts);
	return 0;
}

static int cli_parse_quota(const char *s, uint64_t *r)
{
	if (str_to_size(s, r) < 0 || *r > INT64_MAX) {
		cli_error("invalid quota '%s' (a size such as 500M or 2G; 0 for unlimited)", s);
		return -1;
	}
	return 0;
}

static int cli_user_add(struct directory *dir, const struct cli_args *args)
{
	const char *address = args->argv[0];
	const char *quota_s = cli_opt(args, "quota");
	uint64_t quota = 0;
	if (quota_s != NULL && cli_parse_quota(quota_s, &quota) < 0)
		return 2;
	char *password = cli_read_password("Password: ");
	if (password == NULL)
		return 1;
	char err[DIR_ERROR_SIZE] = "";
	enum directory_err e =
	    directory_account_add(dir, address, password, cli_opt(args, "name"), NULL, err);
	explicit_bzero(password, strlen(password));
	free(password);
	if (e == DIR_OK && quota != 0)
		e = directory_account_set_quota(dir, address, quota, err);
	if (e == DIR_OK)
		printf("account %s added\n", address);
	return cli_dir_status(e, err);
}

static int cli_user_passwd(struct directory *dir, const char *address)
{
	char *password = cli_read_password("New password: ");
	if (password == NULL)
		return 1;
	char err[DIR_ERROR_SIZE] = "";
	enum directory_err e = directory_account_set_password(dir, address, password, err);
	explicit_bzero(password, strlen(password));
	free(password);
	if (e == DIR_OK)
		printf("password of %s changed\n", address);
	return cli_dir_status(e, err);
}

int cli_user(const struct cli_args *args, const char *verb)
{
	struct cli_dir d;
	int open_status = cli_dir_open(args, &d);
	if (open_status != 0)
		return open_status;
	char err[DIR_ERROR_SIZE] = "";
	int status;
	if (strcmp(verb, "list") == 0) {
		status = cli_user_list(d.dir, args->argc > 0 ? args->argv[0] : NULL);
	} else if (strcmp(verb, "add") == 0) {
		status = cli_user_add(d.dir, args);
	} else if (strcmp(verb, "passwd") == 0) {
		status = cli_user_passwd(d.dir, args->argv[0]);
	} else {
		status = cli_dir_status(directory_account_remove(d.dir, args->argv[0], err), err);
		if (status == 0)
			printf("account %s removed\n", args->argv[0]);
	}
	cli_dir_close(&d);
	return status;
}

static int cli_alias_list(struct directory *dir, const char *domain)
{
	struct directory_alias *aliases = NULL;
	size_t n = 0;
	char err[DIR_ERROR_SIZE];
	enum directory_err e = directory_alias_list(dir, domain, &aliases, &n, err);
	if (e != DIR_OK)
		return cli_dir_status(e, err);
	for (size_t i = 0; i < n; i++) {
		printf("%s\t", aliases[i].address);
		for (size_t j = 0; j < aliases[i].ntargets; j++)
			printf("%s%s", j > 0 ? "," : "", aliases[i].targets[j]);
		printf("\n");
	}
	directory_aliases_free(&aliases, n);
	return 0;
}

int cli_alias(const struct cli_args *args, const char *verb)
{
	struct cli_dir d;
	int open_status = cli_dir_open(args, &d);
	if (open_status != 0)
		return open_status;
	char err[DIR_ERROR_SIZE] = "";
	int status;
	if (strcmp(verb, "list") == 0) {
		status = cli_alias_list(d.dir, args->argc > 0 ? args->argv[0] : NULL);
	} else if (strcmp(verb, "add") == 0) {
		status = cli_dir_status(directory_alias_add(d.dir, args->argv[0],
		                                            (const char *const *)args->argv + 1,
		                                            (size_t)args->argc - 1, err),
		                        err);
		if (status == 0)
			printf("alias %s added\n", args->argv[0]);
	} else {
		status =
		    cli_dir_status(directory_alias_remove(d.dir, args->argv[0], NULL, 0, err), err);
		if (status == 0)
			printf("alias %s removed\n", args->argv[0]);
	}
	cli_dir_close(&d);
	return status;
}

int cli_admin(const struct cli_args *args, const char *verb)
{
	struct cli_dir d;
	int open_status = cli_dir_open(args, &d);
	if (open_status != 0)
		return open_status;
	char err[DIR_ERROR_SIZE] = "";
	bool grant = strcmp(verb, "add") == 0;
	int status =
	    cli_dir_status(directory_account_set_admin(d.dir, args->argv[0], grant, err), err);
	if (status == 0)
		printf("%s %s the administrator role\n", args->argv[0],
		       grant ? "now has" : "no longer has");
	cli_dir_close(&d);
	return status;
}
