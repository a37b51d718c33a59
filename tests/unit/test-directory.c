/* test-directory.c - the directory (local backend) against a real
 * PostgreSQL cluster (managed, in a temporary directory, migrated). */
#include "unit.h"

#include "directory.h"
#include "migrate.h"
#include "pgmanaged.h"
#include "pool.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char test_root[64];
static struct pgmanaged *test_pg;
static struct db_pool *test_pool;
static struct directory *test_dir;
static bool test_failed;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	remove(path);
	return 0;
}

static void test_cleanup(void)
{
	directory_close(&test_dir);
	db_pool_destroy(&test_pool);
	pgmanaged_stop(&test_pg);
	if (test_root[0] != '\0')
		nftw(test_root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static bool test_migrate(void)
{
	char *error = NULL;
	unsigned applied = 0;
	PGconn *conn = db_pool_borrow(test_pool, 5000);
	int ret = conn == NULL ? -1 : db_migrate(conn, &applied, &error);
	if (ret < 0)
		unit_fail(__FILE__, __LINE__, "migrate: %s", error ? error : "no connection");
	free(error);
	if (conn != NULL)
		db_pool_return(test_pool, &conn);
	return ret == 0;
}

static bool test_start(void)
{
	char path[128], *error = NULL;
	const char *derr = NULL;

	snprintf(test_root, sizeof(test_root), "/tmp/roost-dir-XXXXXX");
	if (mkdtemp(test_root) == NULL)
		return false;
	chmod(test_root, 0711);
	atexit(test_cleanup);
	snprintf(path, sizeof(path), "%s/data", test_root);
	struct pgmanaged_opts o = {.data_dir = path, .quiet = true};
	if (geteuid() == 0)
		o.run_as = "postgres";
	if (pgmanaged_start(&o, &test_pg, &error) < 0 ||
	    db_pool_create(pgmanaged_conninfo(test_pg), 3, &test_pool, &error) < 0) {
		unit_fail(__FILE__, __LINE__, "database: %s", error ? error : "?");
		free(error);
		return false;
	}
	if (!test_migrate())
		return false;
	if (directory_open(test_pool, "local", &test_dir, &derr) < 0) {
		unit_fail(__FILE__, __LINE__, "directory_open: %s", derr);
		return false;
	}
	return true;
}

/* The shared directory, or NULL (reported once) without a database. */
static struct directory *dir(void)
{
	if (test_dir == NULL && !test_failed)
		test_failed = !test_start();
	return test_dir;
}

/* First column of the first row of a query with one text parameter. */
static long long q_num(const char *sql, const char *param)
{
	PGconn *conn = db_pool_borrow(test_pool, 5000);
	const char *params[1] = {param};
	PGresult *r = PQexecParams(conn, sql, param ? 1 : 0, NULL, params, NULL, NULL, 0);
	long long v = -1;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	else if (PQresultStatus(r) != PGRES_TUPLES_OK)
		unit_fail(__FILE__, __LINE__, "%s: %s", sql, PQerrorMessage(conn));
	PQclear(r);
	db_pool_return(test_pool, &conn);
	return v;
}

static long long mailbox_count(int64_t account_id)
{
	char id[24];
	snprintf(id, sizeof(id), "%lld", (long long)account_id);
	return q_num("SELECT count(*) FROM mailboxes WHERE account_id = $1::bigint", id);
}

#define CHECK_ERR(call, expected)                                                                  \
	do {                                                                                       \
		enum directory_err _e = (call);                                                    \
		if (_e != (expected))                                                              \
			unit_fail(__FILE__, __LINE__, "%s: %s (%s), expected %s", #call,           \
			          directory_err_str(_e), errbuf, directory_err_str(expected));     \
	} while (0)

static char errbuf[DIR_ERROR_SIZE];

/* Builds the standard fixture once: domains example.com and example.net,
 * accounts alice and bob in example.com. */
static bool fixture(void)
{
	static bool done;
	if (dir() == NULL)
		return false;
	if (done)
		return true;
	done = true;
	CHECK_ERR(directory_domain_add(dir(), "Example.COM", errbuf), DIR_OK);
	CHECK_ERR(directory_domain_add(dir(), "example.net", errbuf), DIR_OK);
	CHECK_ERR(directory_account_add(dir(), "Alice@Example.com", "correct horse", "Alice A.",
	                                NULL, errbuf),
	          DIR_OK);
	CHECK_ERR(
	    directory_account_add(dir(), "bob@example.com", "bob's password", NULL, NULL, errbuf),
	    DIR_OK);
	return true;
}

UNIT_TEST(directory_domains)
{
	if (!fixture())
		return;
	CHECK_ERR(directory_domain_add(dir(), "example.com", errbuf), DIR_EEXISTS);
	CHECK(strstr(errbuf, "example.com") != NULL);
	CHECK_ERR(directory_domain_add(dir(), "EXAMPLE.com", errbuf), DIR_EEXISTS);
	CHECK_ERR(directory_domain_add(dir(), "bad..name", errbuf), DIR_EINVALID);
	CHECK_ERR(directory_domain_add(dir(), "", errbuf), DIR_EINVALID);
	CHECK_ERR(directory_domain_add(dir(), "[1.2.3.4]", errbuf), DIR_EINVALID);
	CHECK_ERR(directory_domain_add(dir(), "bad_name.com", errbuf), DIR_EINVALID);

	struct directory_domain *d = NULL;
	size_t n = 0;
	CHECK_ERR(directory_domain_list(dir(), &d, &n, errbuf), DIR_OK);
	CHECK(n >= 2);
	bool seen = false;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(d[i].name, "example.com") == 0) {
			seen = true;
			CHECK(d[i].accounts >= 2);
			CHECK(d[i].id > 0);
		}
	}
	CHECK(seen);
	free(d);

	bool local = false;
	CHECK_ERR(directory_is_local_domain(dir(), "EXAMPLE.com", &local, errbuf), DIR_OK);
	CHECK(local);
	CHECK_ERR(directory_is_local_domain(dir(), "example.org", &local, errbuf), DIR_OK);
	CHECK(!local);
	CHECK_ERR(directory_is_local_domain(dir(), "not a domain", &local, errbuf), DIR_OK);
	CHECK(!local);
}

UNIT_TEST(directory_account_add_rules)
{
	if (!fixture())
		return;
	struct directory_account a;
	CHECK_ERR(directory_account_get(dir(), "ALICE@example.COM", &a, errbuf), DIR_OK);
	CHECK_STR(a.address, "alice@example.com");
	CHECK_STR(a.display_name, "Alice A.");
	CHECK(!a.is_admin && !a.disabled && !a.ldap);
	CHECK_INT(a.quota_bytes, 0);
	/* Default mailboxes come with the account. */
	CHECK_INT(mailbox_count(a.id), 6);

	struct directory_account b;
	CHECK_ERR(directory_account_get_by_id(dir(), a.id, &b, errbuf), DIR_OK);
	CHECK_STR(b.address, "alice@example.com");
	CHECK_ERR(directory_account_get_by_id(dir(), 999999, &b, errbuf), DIR_ENOTFOUND);
	CHECK_ERR(directory_account_get(dir(), "nobody@example.com", &b, errbuf), DIR_ENOTFOUND);

	CHECK_ERR(directory_account_add(dir(), "alice@EXAMPLE.com", "x", NULL, NULL, errbuf),
	          DIR_EEXISTS);
	CHECK_ERR(directory_account_add(dir(), "carol@example.org", "pw", NULL, NULL, errbuf),
	          DIR_ENOTFOUND);
	CHECK_STR(errbuf, "unknown domain example.org");
	CHECK_ERR(directory_account_add(dir(), "carol", "pw", NULL, NULL, errbuf), DIR_EINVALID);
	CHECK_ERR(directory_account_add(dir(), "carol@[1.2.3.4]", "pw", NULL, NULL, errbuf),
	          DIR_EINVALID);
	CHECK_ERR(directory_account_add(dir(), "carol@example.com", "", NULL, NULL, errbuf),
	          DIR_EINVALID);
	CHECK_ERR(directory_account_add(dir(), "carol@example.com", NULL, NULL, NULL, errbuf),
	          DIR_EINVALID);
	CHECK_ERR(directory_account_add(dir(), "carol@example.com", "pw\n", NULL, NULL, errbuf),
	          DIR_EINVALID);
	CHECK_ERR(
	    directory_account_add(dir(), "carol@example.com", "pw", "bad\x01name", NULL, errbuf),
	    DIR_EINVALID);
	char longpw[300];
	memset(longpw, 'p', 256);
	longpw[256] = '\0';
	CHECK_ERR(directory_account_add(dir(), "carol@example.com", longpw, NULL, NULL, errbuf),
	          DIR_EINVALID);
	/* Nothing of carol was left behind by the failures. */
	CHECK_INT(q_num("SELECT count(*) FROM accounts WHERE address = $1", "carol@example.com"),
	          0);

	int64_t id = 0;
	CHECK_ERR(directory_account_add(dir(), "Carol+x@example.net", "pw", "Carol \xc3\x89.", &id,
	                                errbuf),
	          DIR_OK);
	CHECK(id > 0);
	CHECK_INT(q_num("SELECT count(*) FROM accounts WHERE address = $1", "carol+x@example.net"),
	          1);
	CHECK_INT(q_num("SELECT count(*) FROM accounts WHERE localpart = $1", "carol+x"), 1);
	CHECK_ERR(directory_account_remove(dir(), "carol+x@example.net", errbuf), DIR_OK);
	CHECK_INT(mailbox_count(id), 0);
	CHECK_ERR(directory_account_remove(dir(), "carol+x@example.net", errbuf), DIR_ENOTFOUND);
}

UNIT_TEST(directory_authentication)
{
	if (!fixture())
		return;
	struct directory_account a;
	memset(&a, 0, sizeof(a));
	CHECK_INT(directory_authenticate(dir(), "alice@example.com", "correct horse", &a),
	          DIR_AUTH_OK);
	CHECK_STR(a.address, "alice@example.com");
	CHECK_INT(directory_authenticate(dir(), "ALICE@Example.Com", "correct horse", &a),
	          DIR_AUTH_OK);
	CHECK_INT(directory_authenticate(dir(), "alice@example.com", "Correct horse", &a),
	          DIR_AUTH_FAILED);
	CHECK_INT(directory_authenticate(dir(), "alice@example.com", "", &a), DIR_AUTH_FAILED);
	CHECK_INT(directory_authenticate(dir(), "nobody@example.com", "correct horse", &a),
	          DIR_AUTH_FAILED);
	CHECK_INT(directory_authenticate(dir(), "not an address", "correct horse", &a),
	          DIR_AUTH_FAILED);
	CHECK_INT(directory_authenticate(dir(), NULL, "x", &a), DIR_AUTH_FAILED);
	/* Aliases do not log in. */
	const char *t[] = {"alice@example.com"};
	CHECK_ERR(directory_alias_add(dir(), "al@example.com", t, 1, errbuf), DIR_OK);
	CHECK_INT(directory_authenticate(dir(), "al@example.com", "correct horse", &a),
	          DIR_AUTH_FAILED);
	CHECK_ERR(directory_alias_remove(dir(), "al@example.com", NULL, 0, errbuf), DIR_OK);

	CHECK_ERR(directory_account_set_disabled(dir(), "alice@example.com", true, errbuf), DIR_OK);
	CHECK_INT(directory_authenticate(dir(), "alice@example.com", "correct horse", &a),
	          DIR_AUTH_DISABLED);
	CHECK_INT(directory_authenticate(dir(), "alice@example.com", "wrong", &a), DIR_AUTH_FAILED);
	CHECK_ERR(directory_account_set_disabled(dir(), "alice@example.com", false, errbuf),
	          DIR_OK);

	/* A hash imported from elsewhere (SHA512-CRYPT) works too. */
	PGconn *conn = db_pool_borrow(test_pool, 5000);
	const char *p[] = {"{SHA512-CRYPT}$6$saltsalt$hRM5XZ86KXEw9UOmjigeVqFgULtFB2sgpC9lXQDfMib3"
	                   "Zgw7mEiUvBJI2EplzfAqxL5Vvwp2scFtv/uamSo5z0"};
	PQclear(db_exec(conn,
	                "UPDATE accounts SET password_hash = $1 "
	                "WHERE address = 'bob@example.com'",
	                1, p));
	db_pool_return(test_pool, &conn);
	CHECK_INT(directory_authenticate(dir(), "bob@example.com", "correct horse", &a),
	          DIR_AUTH_OK);
	CHECK_ERR(directory_account_set_password(dir(), "bob@example.com", "new pass", errbuf),
	          DIR_OK);
	CHECK_INT(directory_authenticate(dir(), "bob@example.com", "correct horse", &a),
	          DIR_AUTH_FAILED);
	CHECK_INT(directory_authenticate(dir(), "bob@example.com", "new pass", &a), DIR_AUTH_OK);
	CHECK_ERR(directory_account_set_password(dir(), "nobody@example.com", "x", errbuf),
	          DIR_ENOTFOUND);
	CHECK_ERR(directory_account_set_password(dir(), "bob@example.com", "", errbuf),
	          DIR_EINVALID);
}

UNIT_TEST(directory_account_settings)
{
	if (!fixture())
		return;
	struct directory_account a;
	CHECK_ERR(directory_account_set_name(dir(), "bob@example.com", "Bob \xc3\x9c.", errbuf),
	          DIR_OK);
	CHECK_ERR(directory_account_set_quota(dir(), "bob@example.com", 10485760, errbuf), DIR_OK);
	CHECK_ERR(directory_account_set_admin(dir(), "BOB@example.com", true, errbuf), DIR_OK);
	CHECK_ERR(directory_account_get(dir(), "bob@example.com", &a, errbuf), DIR_OK);
	CHECK_STR(a.display_name, "Bob \xc3\x9c.");
	CHECK_INT(a.quota_bytes, 10485760);
	CHECK(a.is_admin);
	CHECK_ERR(directory_account_set_admin(dir(), "bob@example.com", false, errbuf), DIR_OK);
	CHECK_ERR(directory_account_set_quota(dir(), "bob@example.com", 0, errbuf), DIR_OK);
	CHECK_ERR(directory_account_set_quota(dir(), "bob@example.com", UINT64_MAX, errbuf),
	          DIR_EINVALID);
	CHECK_ERR(directory_account_set_name(dir(), "bob@example.com", "a\nb", errbuf),
	          DIR_EINVALID);
	CHECK_ERR(directory_account_set_name(dir(), "bob@example.com", "\xff", errbuf),
	          DIR_EINVALID);
	CHECK_ERR(directory_account_set_name(dir(), "nobody@example.com", "N", errbuf),
	          DIR_ENOTFOUND);
	CHECK_ERR(directory_account_set_admin(dir(), "nobody@example.com", true, errbuf),
	          DIR_ENOTFOUND);
	CHECK_ERR(directory_account_get(dir(), "bob@example.com", &a, errbuf), DIR_OK);
	CHECK(!a.is_admin);
	CHECK_INT(a.quota_bytes, 0);

	struct directory_account *list = NULL;
	size_t n = 0;
	CHECK_ERR(directory_account_list(dir(), "EXAMPLE.com", &list, &n, errbuf), DIR_OK);
	CHECK(n >= 2);
	for (size_t i = 1; i < n; i++)
		CHECK(strcmp(list[i - 1].address, list[i].address) < 0);
	free(list);
	CHECK_ERR(directory_account_list(dir(), NULL, &list, &n, errbuf), DIR_OK);
	CHECK(n >= 2);
	free(list);
	CHECK_ERR(directory_account_list(dir(), "example.org", &list, &n, errbuf), DIR_ENOTFOUND);
	CHECK(list == NULL && n == 0);
	CHECK_ERR(directory_account_list(dir(), "bad..", &list, &n, errbuf), DIR_EINVALID);
}

/* Resolves address and compares with the expected accounts (by address)
 * and remote addresses, both given in order. */
static void check_resolve(int line, const char *address, enum directory_err expected,
                          const char *const *accounts, const char *const *remote)
{
	struct directory_resolution r;
	char msg[DIR_ERROR_SIZE];
	enum directory_err e = directory_resolve(dir(), address, &r, msg);
	if (e != expected) {
		unit_fail(__FILE__, line, "resolve %s: %s (%s)", address, directory_err_str(e),
		          msg);
		directory_resolution_free(&r);
		return;
	}
	size_t na = 0, nr = 0;
	while (accounts != NULL && accounts[na] != NULL)
		na++;
	while (remote != NULL && remote[nr] != NULL)
		nr++;
	if (r.naccounts != na || r.nremote != nr) {
		unit_fail(__FILE__, line, "resolve %s: %zu accounts, %zu remote", address,
		          r.naccounts, r.nremote);
		directory_resolution_free(&r);
		return;
	}
	for (size_t i = 0; i < na; i++) {
		struct directory_account a;
		if (directory_account_get_by_id(dir(), r.accounts[i], &a, msg) != DIR_OK ||
		    strcmp(a.address, accounts[i]) != 0)
			unit_fail(__FILE__, line, "resolve %s: account %zu is not %s", address, i,
			          accounts[i]);
	}
	for (size_t i = 0; i < nr; i++) {
		if (strcmp(r.remote[i], remote[i]) != 0)
			unit_fail(__FILE__, line, "resolve %s: remote %zu is %s, not %s", address,
			          i, r.remote[i], remote[i]);
	}
	directory_resolution_free(&r);
}

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NONE   NULL

UNIT_TEST(directory_resolution)
{
	if (!fixture())
		return;
	const char *const alice = "alice@example.com", *bob = "bob@example.com";

	check_resolve(__LINE__, "Alice@EXAMPLE.com", DIR_OK, L(alice), NONE);
	check_resolve(__LINE__, "alice+news@example.com", DIR_OK, L(alice), NONE);
	check_resolve(__LINE__, "alice+a+b@example.com", DIR_OK, L(alice), NONE);
	check_resolve(__LINE__, "nobody@example.com", DIR_ENOTFOUND, NONE, NONE);
	check_resolve(__LINE__, "nobody+x@example.com", DIR_ENOTFOUND, NONE, NONE);
	check_resolve(__LINE__, "alice@example.org", DIR_ENOTFOUND, NONE, NONE);
	check_resolve(__LINE__, "alice@[127.0.0.1]", DIR_EINVALID, NONE, NONE);
	check_resolve(__LINE__, "not an address", DIR_EINVALID, NONE, NONE);

	/* An alias with a local and a remote target; duplicates collapse. */
	const char *sales[] = {"Alice@example.com", "Partner@Other.NET", "alice+x@example.com"};
	CHECK_ERR(directory_alias_add(dir(), "sales@example.com", sales, 3, errbuf), DIR_OK);
	check_resolve(__LINE__, "sales@example.com", DIR_OK, L(alice), L("partner@other.net"));
	check_resolve(__LINE__, "sales+q3@example.com", DIR_OK, L(alice), L("partner@other.net"));

	/* Nested lists (targets are expanded in sorted order). */
	const char *team[] = {"sales@example.com", "bob@example.com"};
	CHECK_ERR(directory_alias_add(dir(), "team@example.com", team, 2, errbuf), DIR_OK);
	check_resolve(__LINE__, "team@example.com", DIR_OK, L(bob, alice), L("partner@other.net"));

	/* Loops are cut. */
	const char *l1[] = {"loop2@example.com"}, *l2[] = {"loop1@example.com", "bob@example.com"};
	CHECK_ERR(directory_alias_add(dir(), "loop1@example.com", l1, 1, errbuf), DIR_OK);
	CHECK_ERR(directory_alias_add(dir(), "loop2@example.com", l2, 2, errbuf), DIR_OK);
	check_resolve(__LINE__, "loop1@example.com", DIR_OK, L(bob), NONE);
	check_resolve(__LINE__, "loop2@example.com", DIR_OK, L(bob), NONE);
	/* A pure loop delivers nowhere. */
	const char *p1[] = {"pure2@example.com"}, *p2[] = {"pure1@example.com"};
	CHECK_ERR(directory_alias_add(dir(), "pure1@example.com", p1, 1, errbuf), DIR_OK);
	CHECK_ERR(directory_alias_add(dir(), "pure2@example.com", p2, 1, errbuf), DIR_OK);
	check_resolve(__LINE__, "pure1@example.com", DIR_ENOTFOUND, NONE, NONE);

	/* Nesting depth: a chain of 5 works, a chain past the limit does not. */
	char name[64], next[64];
	for (int i = 0; i < 14; i++) {
		snprintf(name, sizeof(name), "chain%d@example.com", i);
		snprintf(next, sizeof(next), "chain%d@example.com", i + 1);
		const char *t[] = {i == 13 ? alice : next};
		CHECK_ERR(directory_alias_add(dir(), name, t, 1, errbuf), DIR_OK);
	}
	check_resolve(__LINE__, "chain9@example.com", DIR_OK, L(alice), NONE);
	check_resolve(__LINE__, "chain0@example.com", DIR_ENOTFOUND, NONE, NONE);

	/* A disabled account: refused directly, skipped in lists. */
	CHECK_ERR(directory_account_set_disabled(dir(), alice, true, errbuf), DIR_OK);
	check_resolve(__LINE__, alice, DIR_EPERM, NONE, NONE);
	check_resolve(__LINE__, "team@example.com", DIR_OK, L(bob), L("partner@other.net"));
	CHECK_ERR(directory_account_set_disabled(dir(), alice, false, errbuf), DIR_OK);

	/* Catch-all last: after accounts, aliases and sub-addressing. */
	const char *catchall[] = {"bob@example.com"};
	CHECK_ERR(directory_alias_add(dir(), "@Example.com", catchall, 1, errbuf), DIR_OK);
	check_resolve(__LINE__, "nobody@example.com", DIR_OK, L(bob), NONE);
	check_resolve(__LINE__, "alice+x@example.com", DIR_OK, L(alice), NONE);
	check_resolve(__LINE__, "alice@example.com", DIR_OK, L(alice), NONE);
	check_resolve(__LINE__, "nobody@example.net", DIR_ENOTFOUND, NONE, NONE);
	/* A list target that does not exist falls to the catch-all too. */
	const char *typo[] = {"bobb@example.com"};
	CHECK_ERR(directory_alias_add(dir(), "typo@example.com", typo, 1, errbuf), DIR_OK);
	check_resolve(__LINE__, "typo@example.com", DIR_OK, L(bob), NONE);
	CHECK_ERR(directory_alias_remove(dir(), "@example.com", NULL, 0, errbuf), DIR_OK);
	check_resolve(__LINE__, "typo@example.com", DIR_ENOTFOUND, NONE, NONE);
	check_resolve(__LINE__, "nobody@example.com", DIR_ENOTFOUND, NONE, NONE);

	/* Sub-addressing can be switched off. */
	directory_set_detail_separator(dir(), '\0');
	check_resolve(__LINE__, "alice+news@example.com", DIR_ENOTFOUND, NONE, NONE);
	directory_set_detail_separator(dir(), '-');
	check_resolve(__LINE__, "alice-news@example.com", DIR_OK, L(alice), NONE);
	directory_set_detail_separator(dir(), '+');
}

UNIT_TEST(directory_alias_management)
{
	if (!fixture())
		return;
	const char *t1[] = {"alice@example.com"};
	const char *t2[] = {"bob@example.com", "x@remote.example"};
	CHECK_ERR(directory_alias_add(dir(), "list@example.net", t1, 1, errbuf), DIR_OK);
	CHECK_ERR(directory_alias_add(dir(), "LIST@example.net", t2, 2, errbuf), DIR_OK);
	CHECK_ERR(directory_alias_add(dir(), "list@example.net", t1, 1, errbuf), DIR_OK);

	struct directory_alias *al = NULL;
	size_t n = 0;
	CHECK_ERR(directory_alias_list(dir(), "example.net", &al, &n, errbuf), DIR_OK);
	CHECK_INT(n, 1);
	if (n == 1) {
		CHECK_STR(al[0].address, "list@example.net");
		CHECK_INT(al[0].ntargets, 3);
		if (al[0].ntargets == 3) {
			CHECK_STR(al[0].targets[0], "alice@example.com");
			CHECK_STR(al[0].targets[1], "bob@example.com");
			CHECK_STR(al[0].targets[2], "x@remote.example");
		}
	}
	directory_aliases_free(&al, n);
	CHECK(al == NULL);

	/* Refusals. */
	CHECK_ERR(directory_alias_add(dir(), "bob@example.com", t1, 1, errbuf), DIR_EEXISTS);
	CHECK_ERR(directory_account_add(dir(), "list@example.net", "pw", NULL, NULL, errbuf),
	          DIR_EEXISTS);
	CHECK_ERR(directory_alias_add(dir(), "x@example.org", t1, 1, errbuf), DIR_ENOTFOUND);
	CHECK_STR(errbuf, "unknown domain example.org");
	CHECK_ERR(directory_alias_add(dir(), "@example.org", t1, 1, errbuf), DIR_ENOTFOUND);
	CHECK_ERR(directory_alias_add(dir(), "self@example.net",
	                              (const char *[]){"SELF@example.net"}, 1, errbuf),
	          DIR_EINVALID);
	CHECK_ERR(directory_alias_add(dir(), "y@example.net", (const char *[]){"no at"}, 1, errbuf),
	          DIR_EINVALID);
	CHECK_ERR(directory_alias_add(dir(), "y@example.net", t1, 0, errbuf), DIR_EINVALID);
	CHECK_ERR(directory_alias_add(dir(), "@bad..dom", t1, 1, errbuf), DIR_EINVALID);
	CHECK_INT(q_num("SELECT count(*) FROM aliases WHERE address = $1", "y@example.net"), 0);

	/* Removing targets; a missing one changes nothing. */
	const char *gone[] = {"bob@example.com", "nobody@example.com"};
	CHECK_ERR(directory_alias_remove(dir(), "list@example.net", gone, 2, errbuf),
	          DIR_ENOTFOUND);
	CHECK_INT(q_num("SELECT count(*) FROM alias_targets t JOIN aliases a ON a.id = t.alias_id "
	                "WHERE a.address = $1",
	                "list@example.net"),
	          3);
	CHECK_ERR(directory_alias_remove(dir(), "list@example.net", t2, 2, errbuf), DIR_OK);
	CHECK_ERR(directory_alias_remove(dir(), "list@example.net", t1, 1, errbuf), DIR_OK);
	/* The last target gone, the alias is gone. */
	CHECK_INT(q_num("SELECT count(*) FROM aliases WHERE address = $1", "list@example.net"), 0);
	CHECK_ERR(directory_alias_remove(dir(), "list@example.net", NULL, 0, errbuf),
	          DIR_ENOTFOUND);
	CHECK_ERR(directory_alias_list(dir(), "example.org", &al, &n, errbuf), DIR_ENOTFOUND);
	CHECK_ERR(directory_alias_list(dir(), NULL, &al, &n, errbuf), DIR_OK);
	directory_aliases_free(&al, n);
}

UNIT_TEST(directory_domain_removal)
{
	if (!fixture())
		return;
	int64_t id = 0;
	CHECK_ERR(directory_domain_add(dir(), "gone.example", errbuf), DIR_OK);
	CHECK_ERR(directory_account_add(dir(), "u@gone.example", "pw", NULL, &id, errbuf), DIR_OK);
	const char *t[] = {"u@gone.example"};
	CHECK_ERR(directory_alias_add(dir(), "a@gone.example", t, 1, errbuf), DIR_OK);
	CHECK_ERR(directory_domain_remove(dir(), "gone.example", false, errbuf), DIR_EEXISTS);
	CHECK(strstr(errbuf, "1 account and 1 alias") != NULL);
	CHECK_INT(mailbox_count(id), 6);
	CHECK_ERR(directory_domain_remove(dir(), "GONE.example", true, errbuf), DIR_OK);
	CHECK_INT(mailbox_count(id), 0);
	CHECK_INT(q_num("SELECT count(*) FROM aliases WHERE address = $1", "a@gone.example"), 0);
	CHECK_ERR(directory_domain_remove(dir(), "gone.example", false, errbuf), DIR_ENOTFOUND);
	CHECK_STR(errbuf, "unknown domain gone.example");
	/* An empty domain goes without force. */
	CHECK_ERR(directory_domain_add(dir(), "empty.example", errbuf), DIR_OK);
	CHECK_ERR(directory_domain_remove(dir(), "empty.example", false, errbuf), DIR_OK);
	CHECK_ERR(directory_domain_remove(dir(), "bad..", false, errbuf), DIR_EINVALID);
}

UNIT_TEST(directory_open_backends)
{
	struct directory *d = NULL;
	const char *err = NULL;
	CHECK(directory_open(NULL, "ldap", &d, &err) == -1);
	CHECK(err != NULL && d == NULL);
	CHECK_STR(directory_err_str(DIR_ENOTFOUND), "not found");
	CHECK_STR(directory_err_str(DIR_EEXISTS), "already exists");
}
