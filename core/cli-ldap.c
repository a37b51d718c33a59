/* cli-ldap.c - `roost ldap set|show|test|sync`: the LDAP settings and the
 * checks an administrator runs before and after switching LDAP on. */
#include "cli.h"

#include "buf.h"
#include "directory.h"
#include "ldap-admin.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cli_ldap_status(enum directory_err e, const char *msg)
{
	if (e == DIR_OK)
		return 0;
	cli_error("%s", msg[0] != '\0' ? msg : directory_err_str(e));
	return e == DIR_ETEMP ? 75 /* EX_TEMPFAIL */ : 1;
}

static int cli_ldap_show(struct directory *dir)
{
	struct directory_ldap_setting *list = NULL;
	size_t n = 0;
	char err[DIR_ERROR_SIZE] = "";
	enum directory_err e = directory_ldap_settings_get(dir, &list, &n, err);
	if (e != DIR_OK)
		return cli_ldap_status(e, err);
	for (size_t i = 0; i < n; i++) {
		const char *v = list[i].value;
		if (list[i].secret)
			v = list[i].is_set ? "(set)" : "(not set)";
		printf("%s=%s%s\n", list[i].key, v,
		       list[i].is_set || list[i].secret ? "" : "  (default)");
	}
	directory_ldap_settings_free(&list, n);
	return 0;
}

/* KEY=VALUE arguments; "bind_password=-" reads the password from stdin so
 * that it does not show in the process list. */
static int cli_ldap_set(struct directory *dir, const struct cli_args *args)
{
	const char **keys = xcalloc((size_t)args->argc, sizeof(char *));
	const char **values = xcalloc((size_t)args->argc, sizeof(char *));
	char *secret = NULL;
	int status = 0;
	for (int i = 0; i < args->argc && status == 0; i++) {
		char *eq = strchr(args->argv[i], '=');
		if (eq == NULL) {
			cli_error("expected KEY=VALUE, not '%s'", args->argv[i]);
			status = 2;
			break;
		}
		*eq = '\0';
		keys[i] = args->argv[i];
		values[i] = eq + 1;
		if (strcmp(keys[i], "bind_password") == 0 && strcmp(values[i], "-") == 0) {
			secret = cli_read_password("LDAP bind password: ");
			if (secret == NULL)
				status = 1;
			values[i] = secret;
		}
	}
	char err[DIR_ERROR_SIZE] = "";
	if (status == 0)
		status = cli_ldap_status(
		    directory_ldap_settings_set(dir, keys, values, (size_t)args->argc, err), err);
	if (status == 0)
		printf("LDAP settings saved\n");
	if (secret != NULL) {
		explicit_bzero(secret, strlen(secret));
		free(secret);
	}
	free(keys);
	free(values);
	return status;
}

static const char *const cli_auth_names[] = {
    [DIR_AUTH_OK] = "ok",
    [DIR_AUTH_FAILED] = "failed",
    [DIR_AUTH_DISABLED] = "disabled",
    [DIR_AUTH_TEMPFAIL] = "temporary failure",
};

/* The login itself, through the same path as IMAP/POP3/SMTP AUTH. */
static int cli_ldap_login(struct directory *dir, const char *login)
{
	char *pw = cli_read_password("Password: ");
	if (pw == NULL)
		return 1;
	struct directory_account acct;
	enum directory_auth r = directory_authenticate(dir, login, pw, &acct);
	explicit_bzero(pw, strlen(pw));
	free(pw);
	printf("login: %s\n", cli_auth_names[r]);
	if (r == DIR_AUTH_OK)
		printf("account: %s id=%lld source=%s admin=%s\n", acct.address, (long long)acct.id,
		       acct.ldap ? "ldap" : "local", acct.is_admin ? "yes" : "no");
	return r == DIR_AUTH_OK ? 0 : r == DIR_AUTH_TEMPFAIL ? 75 : 1;
}

static int cli_ldap_test(struct directory *dir, const struct cli_args *args)
{
	const char *login = args->argc > 0 ? args->argv[0] : NULL;
	if (cli_opt(args, "password") != NULL) {
		if (login == NULL) {
			cli_error("--password needs an ADDRESS");
			return 2;
		}
		return cli_ldap_login(dir, login);
	}
	struct buf report;
	char err[DIR_ERROR_SIZE] = "";
	buf_init(&report, 1 << 20);
	enum directory_err e = directory_ldap_test(dir, login, &report, err);
	fputs(buf_cstr(&report), stdout);
	buf_free(&report);
	return cli_ldap_status(e, err);
}

static int cli_ldap_sync(struct directory *dir)
{
	struct directory_ldap_sync_stats st;
	char err[DIR_ERROR_SIZE] = "";
	enum directory_err e = directory_ldap_sync(dir, &st, err);
	if (e == DIR_OK)
		printf("checked %u, updated %u, disabled %u, enabled %u\n", st.checked, st.updated,
		       st.disabled, st.enabled);
	return cli_ldap_status(e, err);
}

int cli_ldap(const struct cli_args *args, const char *verb)
{
	struct cli_db db;
	struct directory *dir = NULL;
	const char *derr;
	int open_status = cli_db_open(args, &db);
	if (open_status != 0)
		return open_status;
	if (directory_open(db.pool, "local", &dir, &derr) < 0) {
		cli_error("%s", derr);
		cli_db_close(&db);
		return 1;
	}
	int status;
	if (strcmp(verb, "set") == 0)
		status = cli_ldap_set(dir, args);
	else if (strcmp(verb, "show") == 0)
		status = cli_ldap_show(dir);
	else if (strcmp(verb, "test") == 0)
		status = cli_ldap_test(dir, args);
	else
		status = cli_ldap_sync(dir);
	directory_close(&dir);
	cli_db_close(&db);
	return status;
}
