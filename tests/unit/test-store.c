/* test-store.c - the store API against a real PostgreSQL cluster (managed,
 * in a temporary directory, migrated with db_migrate). */
#include "unit.h"

#include "buf.h"
#include "indexer.h"
#include "notify-batch.h"
#include "migrate.h"
#include "pgmanaged.h"
#include "pool.h"
#include "prepared.h"
#include "search-words.h"
#include "store.h"
#include "store-private.h"
#include "utf8.h"

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char test_root[64];
static struct pgmanaged *test_pg;
static PGconn *test_db;
static bool test_db_failed;
static int test_seq; /* makes account addresses and messages unique */

static int test_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	remove(path);
	return 0;
}

static void test_cleanup(void)
{
	PQfinish(test_db);
	test_db = NULL;
	pgmanaged_stop(&test_pg);
	if (test_root[0] != '\0')
		nftw(test_root, test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void test_notice(void *arg, const char *message)
{
}

static PGconn *test_connect(void)
{
	PGconn *conn = PQconnectdb(pgmanaged_conninfo(test_pg));
	PQsetNoticeProcessor(conn, test_notice, NULL);
	if (PQstatus(conn) != CONNECTION_OK) {
		unit_fail(__FILE__, __LINE__, "connect: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

static bool test_start(void)
{
	snprintf(test_root, sizeof(test_root), "/tmp/roost-store-XXXXXX");
	if (mkdtemp(test_root) == NULL)
		return false;
	chmod(test_root, 0711);
	atexit(test_cleanup);
	char path[128];
	snprintf(path, sizeof(path), "%s/data", test_root);
	struct pgmanaged_opts o = {.data_dir = path, .quiet = true};
	if (geteuid() == 0)
		o.run_as = "postgres";
	char *error = NULL;
	unsigned applied = 0;
	if (pgmanaged_start(&o, &test_pg, &error) < 0 || (test_db = test_connect()) == NULL ||
	    db_migrate(test_db, &applied, &error) < 0) {
		unit_fail(__FILE__, __LINE__, "database: %s", error ? error : "connect");
		free(error);
		return false;
	}
	return true;
}

/* The shared connection, or NULL (reported once) without a database. */
static PGconn *db(void)
{
	if (test_db == NULL && !test_db_failed)
		test_db_failed = !test_start();
	return test_db;
}

/* First column of the first row of a query with up to two text params. */
static long long q_num(const char *sql, const char *a, const char *b)
{
	const char *params[2] = {a, b};
	PGresult *r = PQexecParams(db(), sql, b ? 2 : a ? 1 : 0, NULL, params, NULL, NULL, 0);
	long long v = -1;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	else if (PQresultStatus(r) != PGRES_TUPLES_OK)
		unit_fail(__FILE__, __LINE__, "%s: %s", sql, PQerrorMessage(db()));
	PQclear(r);
	return v;
}

static const char *num(long long v, char *out)
{
	snprintf(out, 24, "%lld", v);
	return out;
}

/* A new account with the default mailboxes; quota 0 means unlimited. */
static int64_t make_account(long long quota)
{
	char addr[64], localpart[32], q[24];
	int n = ++test_seq;
	snprintf(localpart, sizeof(localpart), "user%d", n);
	snprintf(addr, sizeof(addr), "user%d@example.org", n);
	q_num("INSERT INTO domains (name) VALUES ('example.org') ON CONFLICT DO NOTHING "
	      "RETURNING 0",
	      NULL, NULL);
	const char *params[3] = {localpart, addr, num(quota, q)};
	PGresult *r =
	    PQexecParams(db(),
	                 "INSERT INTO accounts (domain_id, localpart, address, quota_bytes) "
	                 "SELECT id, $1, $2, $3::bigint FROM domains WHERE name = "
	                 "'example.org' RETURNING id",
	                 3, NULL, params, NULL, NULL, 0);
	int64_t id = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
	PQclear(r);
	CHECK(id > 0);
	PQclear(PQexec(db(), "BEGIN"));
	CHECK_INT(store_mailboxes_create_defaults(db(), id), STORE_OK);
	PQclear(PQexec(db(), "COMMIT"));
	return id;
}

static int64_t mailbox_id(int64_t account, const char *name)
{
	struct store_mailbox mb;
	if (store_mailbox_get(db(), account, name, &mb) != STORE_OK)
		return 0;
	int64_t id = mb.id;
	store_mailbox_free_fields(&mb);
	return id;
}

/* A multipart message, unique per call, in *raw. */
static void make_message(struct buf *raw)
{
	int n = ++test_seq;
	buf_init(raw, BUF_NO_LIMIT);
	buf_printf(raw,
	           "From: Alice Example <alice@example.org>\r\n"
	           "To: Bob <bob@example.org>\r\n"
	           "Subject: Quarterly report %d\r\n"
	           "Date: Tue, 24 Nov 2026 13:00:00 +0000\r\n"
	           "Message-ID: <msg%d@example.org>\r\n"
	           "MIME-Version: 1.0\r\n"
	           "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
	           "\r\n"
	           "--b1\r\n"
	           "Content-Type: text/plain; charset=utf-8\r\n"
	           "\r\n"
	           "Hello Bob, the numbers are in. Grüße %d\r\n"
	           "--b1\r\n"
	           "Content-Type: application/octet-stream; name=\"a.bin\"\r\n"
	           "Content-Transfer-Encoding: base64\r\n"
	           "\r\n"
	           "AAECAwQFBgcICQ==\r\n"
	           "--b1--\r\n",
	           n, n, n);
}

/* An incoming message fed in small chunks, finished. */
static struct store_incoming *make_incoming(const struct buf *raw)
{
	struct store_incoming *in = store_incoming_new(10 * 1024 * 1024, NULL);
	/* Small chunks split everything; large messages go faster. */
	size_t chunk = raw->len < 65536 ? 7 : 65536;
	for (size_t off = 0; off < raw->len; off += chunk) {
		size_t n = raw->len - off < chunk ? raw->len - off : chunk;
		CHECK_INT(store_incoming_write(in, raw->data + off, n), 0);
	}
	store_incoming_finish(in);
	return in;
}

static struct store_incoming *new_incoming(struct buf *raw)
{
	make_message(raw);
	return make_incoming(raw);
}

static struct store_target target(int64_t account, int64_t mailbox)
{
	return (struct store_target){.account_id = account, .mailbox_id = mailbox};
}

/* Delivers a new message to one mailbox; returns its UID (0 on failure). */
static uint32_t deliver_one(int64_t account, int64_t mailbox, unsigned flags)
{
	struct buf raw;
	struct store_incoming *in = new_incoming(&raw);
	struct store_target t = target(account, mailbox);
	t.flags = flags;
	enum store_err err = store_deliver(db(), in, &t, 1, false);
	store_incoming_free(&in);
	buf_free(&raw);
	return err == STORE_OK && t.result == STORE_OK ? t.uid_r : 0;
}

static long long blob_count(const char *sha_hex)
{
	return q_num("SELECT count(*) FROM blobs WHERE sha256 = decode($1, 'hex')", sha_hex, NULL);
}

UNIT_TEST(store_deliver_dedupes_blob)
{
	if (db() == NULL)
		return;
	int64_t a[3] = {make_account(0), make_account(0), make_account(0)};
	struct buf raw;
	struct store_incoming *in = new_incoming(&raw);
	const char *sha = store_incoming_sha256_hex(in);
	CHECK_INT(strlen(sha), 64);
	struct store_target t[3] = {target(a[0], 0), target(a[1], 0), target(a[2], 0)};
	CHECK_INT(store_deliver(db(), in, t, 3, false), STORE_OK);
	for (int i = 0; i < 3; i++) {
		CHECK_INT(t[i].result, STORE_OK);
		CHECK_INT(t[i].uid_r, 1);
		CHECK_INT(t[i].mailbox_id_r, mailbox_id(a[i], "INBOX"));
		CHECK(t[i].uidvalidity_r > 0);
	}
	CHECK_INT(blob_count(sha), 1);
	CHECK_INT(
	    q_num("SELECT count(*) FROM messages WHERE sha256 = decode($1, 'hex')", sha, NULL), 1);
	CHECK_INT(q_num("SELECT count(*) FROM mailbox_entries e JOIN messages m ON "
	                "m.id = e.message_id WHERE m.sha256 = decode($1, 'hex')",
	                sha, NULL),
	          3);
	/* The same bytes again: new UIDs, still one blob and one messages row. */
	CHECK_INT(store_deliver(db(), in, t, 3, false), STORE_OK);
	for (int i = 0; i < 3; i++)
		CHECK_INT(t[i].uid_r, 2);
	CHECK_INT(blob_count(sha), 1);
	CHECK_INT(
	    q_num("SELECT count(*) FROM messages WHERE sha256 = decode($1, 'hex')", sha, NULL), 1);
	struct store_mailbox mb;
	CHECK_INT(store_mailbox_get(db(), a[1], "inbox", &mb), STORE_OK);
	CHECK_INT(mb.messages, 2);
	CHECK_INT(mb.unseen, 2);
	CHECK_INT(mb.uidnext, 3);
	CHECK_INT(mb.size_bytes, 2 * raw.len);
	store_mailbox_free_fields(&mb);
	char id[24];
	CHECK_INT(
	    q_num("SELECT used_bytes FROM accounts WHERE id = $1::bigint", num(a[2], id), NULL),
	    (long long)(2 * raw.len));
	store_incoming_free(&in);
	buf_free(&raw);
}

UNIT_TEST(store_deliver_quota_per_target)
{
	if (db() == NULL)
		return;
	int64_t a = make_account(0), small = make_account(100), c = make_account(0);
	struct buf raw;
	struct store_incoming *in = new_incoming(&raw);
	CHECK(raw.len > 100);
	struct store_target t[4] = {target(a, 0), target(small, 0), target(c, 0),
	                            target(c, 999999999)};
	CHECK_INT(store_deliver(db(), in, t, 4, false), STORE_OK);
	CHECK_INT(t[0].result, STORE_OK);
	CHECK_INT(t[1].result, STORE_EQUOTA);
	CHECK_INT(t[2].result, STORE_OK);
	CHECK_INT(t[3].result, STORE_ENOTFOUND);
	char id[24];
	CHECK_INT(
	    q_num("SELECT used_bytes FROM accounts WHERE id = $1::bigint", num(small, id), NULL),
	    0);
	CHECK_INT(q_num("SELECT count(*) FROM mailbox_entries e JOIN mailboxes m ON "
	                "m.id = e.mailbox_id WHERE m.account_id = $1::bigint",
	                num(small, id), NULL),
	          0);
	/* All or nothing: one failure and nobody gets it. */
	CHECK_INT(store_deliver(db(), in, t, 3, true), STORE_EQUOTA);
	CHECK_INT(t[1].result, STORE_EQUOTA);
	CHECK_INT(q_num("SELECT count(*) FROM mailbox_entries e JOIN mailboxes m ON "
	                "m.id = e.mailbox_id WHERE m.account_id = $1::bigint",
	                num(a, id), NULL),
	          1);
	/* A statement failing inside the pipeline rolls everything back and
	 * leaves the connection idle and usable. */
	int64_t junk = mailbox_id(a, "Junk");
	q_num("UPDATE mailboxes SET uidnext = 4294967296 WHERE id = $1::bigint RETURNING 0",
	      num(junk, id), NULL);
	struct store_target two[2] = {target(a, 0), target(a, junk)};
	CHECK_INT(store_deliver(db(), in, two, 2, false), STORE_EINVALID);
	CHECK_INT(two[0].result, STORE_EINVALID);
	CHECK_INT(two[1].result, STORE_EINVALID);
	CHECK_INT(PQtransactionStatus(db()), PQTRANS_IDLE);
	CHECK_INT(store_deliver(db(), in, two, 1, false), STORE_OK);
	CHECK_INT(two[0].result, STORE_OK);
	CHECK_INT(two[0].uid_r, 2);
	/* An internal date PostgreSQL cannot hold is refused up front. */
	t[0].internaldate = (time_t)INT64_MAX / 2;
	CHECK_INT(store_deliver(db(), in, t, 1, false), STORE_OK);
	CHECK_INT(t[0].result, STORE_EINVALID);
	t[0].internaldate = 0;
	/* A bad keyword is the caller's mistake. */
	const char *bad[] = {"no space", NULL};
	t[0].keywords = bad;
	CHECK_INT(store_deliver(db(), in, t, 1, false), STORE_OK);
	CHECK_INT(t[0].result, STORE_EINVALID);
	store_incoming_free(&in);
	buf_free(&raw);
}

UNIT_TEST(store_incoming_limits)
{
	struct store_incoming *in = store_incoming_new(10, NULL);
	CHECK_INT(store_incoming_write(in, "0123456789", 10), 0);
	CHECK(!store_incoming_too_big(in));
	CHECK_INT(store_incoming_write(in, "x", 1), -1);
	CHECK(store_incoming_too_big(in));
	CHECK_INT(store_incoming_write(in, "yz", 2), -1);
	CHECK_INT(store_incoming_size(in), 13);
	store_incoming_finish(in);
	struct store_target t = target(1, 0);
	CHECK_INT(store_deliver(NULL, in, &t, 1, false), STORE_EINVALID);
	store_incoming_free(&in);
	CHECK(in == NULL);
	/* SHA-256 of "abc". */
	in = store_incoming_new(100, NULL);
	store_incoming_write(in, "a", 1);
	store_incoming_write(in, "bc", 2);
	store_incoming_finish(in);
	CHECK_STR(store_incoming_sha256_hex(in),
	          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	CHECK(store_incoming_parsed(in) != NULL);
	store_incoming_free(&in);
}

struct deliver_thread {
	int64_t account;
	int count;
	uint32_t uids[25];
	int ok;
};

static void *deliver_thread_main(void *arg)
{
	struct deliver_thread *d = arg;
	PGconn *conn = PQconnectdb(pgmanaged_conninfo(test_pg));
	for (int i = 0; i < d->count && PQstatus(conn) == CONNECTION_OK; i++) {
		struct buf raw;
		buf_init(&raw, BUF_NO_LIMIT);
		buf_printf(&raw, "Subject: thread %p message %d\r\n\r\nbody\r\n", arg, i);
		struct store_incoming *in = make_incoming(&raw);
		struct store_target t = target(d->account, 0);
		if (store_deliver(conn, in, &t, 1, false) == STORE_OK && t.result == STORE_OK)
			d->uids[d->ok++] = t.uid_r;
		store_incoming_free(&in);
		buf_free(&raw);
	}
	PQfinish(conn);
	return NULL;
}

UNIT_TEST(store_deliver_concurrent_uids)
{
	if (db() == NULL)
		return;
	int64_t a = make_account(0);
	struct deliver_thread d[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		d[i] = (struct deliver_thread){.account = a, .count = 25};
		pthread_create(&th[i], NULL, deliver_thread_main, &d[i]);
	}
	bool seen[101] = {false};
	int total = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_INT(d[i].ok, 25);
		for (int k = 0; k < d[i].ok; k++) {
			/* Each thread sees its own UIDs strictly increasing. */
			if (k > 0)
				CHECK(d[i].uids[k] > d[i].uids[k - 1]);
			uint32_t u = d[i].uids[k];
			CHECK(u >= 1 && u <= 100);
			if (u >= 1 && u <= 100) {
				CHECK(!seen[u]);
				seen[u] = true;
				total++;
			}
		}
	}
	CHECK_INT(total, 100); /* 100 distinct UIDs in 1..100: no gaps */
	struct store_mailbox mb;
	CHECK_INT(store_mailbox_get(db(), a, "INBOX", &mb), STORE_OK);
	CHECK_INT(mb.uidnext, 101);
	CHECK_INT(mb.messages, 100);
	store_mailbox_free_fields(&mb);
}

static bool kw_has(char **kw, const char *k)
{
	for (size_t i = 0; kw != NULL && kw[i] != NULL; i++)
		if (strcmp(kw[i], k) == 0)
			return true;
	return false;
}

UNIT_TEST(store_flags_and_modseq)
{
	if (db() == NULL)
		return;
	int64_t a = make_account(0);
	int64_t inbox = mailbox_id(a, "INBOX");
	CHECK_INT(deliver_one(a, inbox, 0), 1);
	CHECK_INT(deliver_one(a, inbox, STORE_FLAG_SEEN), 2);
	CHECK_INT(deliver_one(a, inbox, 0), 3);
	struct store_mailbox mb;
	CHECK_INT(store_mailbox_get_by_id(db(), inbox, &mb), STORE_OK);
	CHECK_INT(mb.unseen, 2);
	uint64_t modseq0 = mb.highestmodseq;
	store_mailbox_free_fields(&mb);

	uint32_t uids[] = {1, 2, 3, 7};
	const char *kw[] = {"$Important", "work", NULL};
	struct store_flag_change *ch;
	uint32_t *failed;
	size_t nch, nfailed;
	CHECK_INT(store_flags_change(db(), inbox, uids, 4, STORE_FLAGS_ADD, STORE_FLAG_SEEN, kw, 0,
	                             &ch, &nch, &failed, &nfailed),
	          STORE_OK);
	CHECK_INT(nch, 3);
	CHECK_INT(nfailed, 0);
	for (size_t i = 0; i < nch; i++) {
		CHECK_INT(ch[i].uid, i + 1);
		CHECK(ch[i].flags & STORE_FLAG_SEEN);
		CHECK(kw_has(ch[i].keywords, "work") && kw_has(ch[i].keywords, "$Important"));
		CHECK_INT(ch[i].modseq, modseq0 + 1);
	}
	store_flag_changes_free(&ch, nch);
	free(failed);
	CHECK_INT(store_mailbox_get_by_id(db(), inbox, &mb), STORE_OK);
	CHECK_INT(mb.unseen, 0);
	CHECK_INT(mb.highestmodseq, modseq0 + 1);
	store_mailbox_free_fields(&mb);

	/* Removing what is there changes; adding again changes nothing. */
	const char *rm[] = {"WORK", NULL};
	CHECK_INT(store_flags_change(db(), inbox, uids, 1, STORE_FLAGS_REMOVE, STORE_FLAG_SEEN, rm,
	                             0, &ch, &nch, &failed, &nfailed),
	          STORE_OK);
	CHECK_INT(nch, 1);
	CHECK_INT(ch[0].flags & STORE_FLAG_SEEN, 0);
	CHECK(!kw_has(ch[0].keywords, "work") && kw_has(ch[0].keywords, "$Important"));
	CHECK_INT(ch[0].modseq, modseq0 + 2);
	store_flag_changes_free(&ch, nch);
	free(failed);
	CHECK_INT(store_flags_change(db(), inbox, uids + 1, 1, STORE_FLAGS_ADD, STORE_FLAG_SEEN,
	                             NULL, 0, &ch, &nch, &failed, &nfailed),
	          STORE_OK);
	CHECK_INT(nch, 1);
	CHECK_INT(ch[0].modseq, modseq0 + 1);
	store_flag_changes_free(&ch, nch);
	free(failed);
	CHECK_INT(store_mailbox_get_by_id(db(), inbox, &mb), STORE_OK);
	CHECK_INT(mb.highestmodseq, modseq0 + 2);
	CHECK_INT(mb.unseen, 1);
	store_mailbox_free_fields(&mb);

	/* SET with UNCHANGEDSINCE: uid 1 changed after modseq0 + 1 and fails. */
	CHECK_INT(store_flags_change(db(), inbox, uids, 3, STORE_FLAGS_SET, STORE_FLAG_FLAGGED,
	                             NULL, modseq0 + 1, &ch, &nch, &failed, &nfailed),
	          STORE_OK);
	CHECK_INT(nfailed, 1);
	CHECK_INT(failed[0], 1);
	CHECK_INT(nch, 3);
	CHECK_INT(ch[0].modseq, modseq0 + 2);
	CHECK_INT(ch[1].flags, STORE_FLAG_FLAGGED);
	CHECK(ch[1].keywords != NULL && ch[1].keywords[0] == NULL);
	CHECK_INT(ch[1].modseq, modseq0 + 3);
	store_flag_changes_free(&ch, nch);
	free(failed);

	struct store_entry *e;
	size_t ne;
	CHECK_INT(store_entries_list(db(), inbox, 1, UINT32_MAX, modseq0 + 2, &e, &ne), STORE_OK);
	CHECK_INT(ne, 2);
	if (ne == 2) {
		CHECK_INT(e[0].uid, 2);
		CHECK_INT(e[1].uid, 3);
		CHECK(e[0].message_id > 0 && e[0].size > 0 && e[0].internaldate > 0);
	}
	store_entries_free(&e, ne);
	const char *badkw[] = {"\\Seen", NULL};
	CHECK_INT(store_flags_change(db(), inbox, uids, 1, STORE_FLAGS_ADD, 0, badkw, 0, &ch, &nch,
	                             &failed, &nfailed),
	          STORE_EINVALID);
	CHECK_INT(store_entries_list(db(), 999999999, 1, 10, 0, &e, &ne), STORE_ENOTFOUND);
}

UNIT_TEST(store_copy_move_expunge)
{
	if (db() == NULL)
		return;
	int64_t a = make_account(0);
	int64_t inbox = mailbox_id(a, "INBOX"), arch = mailbox_id(a, "Archive");
	for (int i = 1; i <= 4; i++)
		CHECK_INT(deliver_one(a, inbox, 0), i);
	char id[24];
	long long used =
	    q_num("SELECT used_bytes FROM accounts WHERE id = $1::bigint", num(a, id), NULL);
	long long blobs = q_num("SELECT count(*) FROM blobs", NULL, NULL);

	uint32_t uids[] = {2, 3, 9}, *src, *dst;
	size_t n;
	uint32_t uidvalidity;
	CHECK_INT(store_copy(db(), inbox, uids, 3, arch, false, &src, &dst, &n, &uidvalidity),
	          STORE_OK);
	CHECK_INT(n, 2);
	CHECK_INT(src[0], 2);
	CHECK_INT(src[1], 3);
	CHECK_INT(dst[0], 1);
	CHECK_INT(dst[1], 2);
	CHECK(uidvalidity > 0);
	free(src);
	free(dst);
	CHECK_INT(q_num("SELECT count(*) FROM blobs", NULL, NULL), blobs);
	long long used2 =
	    q_num("SELECT used_bytes FROM accounts WHERE id = $1::bigint", num(a, id), NULL);
	CHECK(used2 > used);

	/* Move 1 and 4: new UIDs 3, 4 in Archive, tombstones in INBOX. */
	struct store_mailbox mb;
	CHECK_INT(store_mailbox_get_by_id(db(), inbox, &mb), STORE_OK);
	uint64_t modseq0 = mb.highestmodseq;
	store_mailbox_free_fields(&mb);
	uint32_t mv[] = {1, 4};
	CHECK_INT(store_copy(db(), inbox, mv, 2, arch, true, &src, &dst, &n, &uidvalidity),
	          STORE_OK);
	CHECK_INT(n, 2);
	CHECK_INT(dst[0], 3);
	CHECK_INT(dst[1], 4);
	free(src);
	free(dst);
	CHECK_INT(q_num("SELECT used_bytes FROM accounts WHERE id = $1::bigint", num(a, id), NULL),
	          used2);
	uint32_t *gone;
	CHECK_INT(store_expunged_since(db(), inbox, modseq0, &gone, &n), STORE_OK);
	CHECK_INT(n, 2);
	CHECK_INT(gone[0], 1);
	CHECK_INT(gone[1], 4);
	free(gone);
	CHECK_INT(store_mailbox_get_by_id(db(), inbox, &mb), STORE_OK);
	CHECK_INT(mb.messages, 2);
	CHECK(mb.highestmodseq > modseq0);
	uint64_t modseq1 = mb.highestmodseq;
	store_mailbox_free_fields(&mb);
	CHECK_INT(store_mailbox_get_by_id(db(), arch, &mb), STORE_OK);
	CHECK_INT(mb.messages, 4);
	CHECK_INT(mb.uidnext, 5);
	store_mailbox_free_fields(&mb);

	/* Expunge \Deleted only. */
	uint32_t del[] = {3};
	struct store_flag_change *ch;
	uint32_t *failed;
	size_t nch, nfailed;
	CHECK_INT(store_flags_change(db(), inbox, del, 1, STORE_FLAGS_ADD, STORE_FLAG_DELETED, NULL,
	                             0, &ch, &nch, &failed, &nfailed),
	          STORE_OK);
	store_flag_changes_free(&ch, nch);
	free(failed);
	uint32_t *ex;
	CHECK_INT(store_expunge(db(), inbox, NULL, 0, &ex, &n), STORE_OK);
	CHECK_INT(n, 1);
	CHECK_INT(ex[0], 3);
	free(ex);
	CHECK_INT(store_expunged_since(db(), inbox, modseq1, &gone, &n), STORE_OK);
	CHECK_INT(n, 1);
	free(gone);
	CHECK_INT(store_mailbox_get_by_id(db(), inbox, &mb), STORE_OK);
	CHECK_INT(mb.messages, 1);
	CHECK_INT(mb.unseen, 1);
	store_mailbox_free_fields(&mb);
	CHECK(q_num("SELECT used_bytes FROM accounts WHERE id = $1::bigint", num(a, id), NULL) <
	      used2);
	/* Nothing to expunge: no change, no new modseq. */
	CHECK_INT(store_expunge(db(), inbox, NULL, 0, &ex, &n), STORE_OK);
	CHECK_INT(n, 0);
	free(ex);
	/* Another account's mailbox is refused. */
	int64_t other = mailbox_id(make_account(0), "INBOX");
	CHECK_INT(store_copy(db(), inbox, uids, 1, other, false, &src, &dst, &n, &uidvalidity),
	          STORE_EINVALID);
}

UNIT_TEST(store_copy_over_quota)
{
	if (db() == NULL)
		return;
	struct buf raw;
	make_message(&raw);
	int64_t a = make_account((long long)raw.len * 2 + raw.len / 2);
	buf_free(&raw);
	int64_t inbox = mailbox_id(a, "INBOX"), arch = mailbox_id(a, "Archive");
	CHECK_INT(deliver_one(a, inbox, 0), 1);
	CHECK_INT(deliver_one(a, inbox, 0), 2);
	uint32_t uids[] = {1, 2}, *src, *dst, uidvalidity;
	size_t n;
	CHECK_INT(store_copy(db(), inbox, uids, 2, arch, false, &src, &dst, &n, &uidvalidity),
	          STORE_EQUOTA);
	/* A move does not need more room. */
	CHECK_INT(store_copy(db(), inbox, uids, 2, arch, true, &src, &dst, &n, &uidvalidity),
	          STORE_OK);
	CHECK_INT(n, 2);
	free(src);
	free(dst);
}

UNIT_TEST(store_mailbox_names)
{
	if (db() == NULL)
		return;
	int64_t a = make_account(0);
	static const char *const bad[] = {
	    "", "/a", "a/", "a//b", "a\tb", "a\x7f", "bad\xff", "\xc0\xaf", "x\xc2\x85y",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_INT(store_mailbox_create(db(), a, bad[i], NULL, NULL), STORE_EINVALID);
	char longname[1002];
	memset(longname, 'x', 1001);
	longname[1001] = '\0';
	CHECK_INT(store_mailbox_create(db(), a, longname, NULL, NULL), STORE_EINVALID);
	longname[1000] = '\0';
	CHECK_INT(store_mailbox_create(db(), a, longname, NULL, NULL), STORE_OK);
	CHECK_INT(store_mailbox_create(db(), a, "Projekte/Grüße", NULL, NULL), STORE_OK);
	CHECK_INT(store_mailbox_create(db(), a, "inbox", NULL, NULL), STORE_EEXISTS);
	CHECK_INT(store_mailbox_create(db(), a, "Sent", NULL, NULL), STORE_EEXISTS);
	CHECK_INT(store_mailbox_create(db(), a, "x", "\\Bogus", NULL), STORE_EINVALID);
	CHECK_INT(store_mailbox_create(db(), 999999999, "x", NULL, NULL), STORE_ENOTFOUND);
	int64_t id = 0;
	CHECK_INT(store_mailbox_create(db(), a, "inBox/Sub", NULL, &id), STORE_OK);
	struct store_mailbox mb;
	CHECK_INT(store_mailbox_get(db(), a, "INBOX/Sub", &mb), STORE_OK);
	CHECK_INT(mb.id, id);
	store_mailbox_free_fields(&mb);
	CHECK_INT(store_mailbox_get(db(), a, "Nope", &mb), STORE_ENOTFOUND);
	CHECK_INT(store_mailbox_get(db(), a, "Sent", &mb), STORE_OK);
	CHECK_STR(mb.special_use, "\\Sent");
	CHECK(mb.subscribed);
	store_mailbox_free_fields(&mb);
	CHECK_INT(store_mailbox_subscribe(db(), a, "Sent", false), STORE_OK);
	CHECK_INT(store_mailbox_get(db(), a, "Sent", &mb), STORE_OK);
	CHECK(!mb.subscribed);
	store_mailbox_free_fields(&mb);
	CHECK_INT(store_mailbox_subscribe(db(), a, "Nope", true), STORE_ENOTFOUND);
}

UNIT_TEST(store_mailbox_lifecycle)
{
	if (db() == NULL)
		return;
	int64_t a = make_account(0);
	CHECK_INT(store_mailbox_create(db(), a, "Work", NULL, NULL), STORE_OK);
	CHECK_INT(store_mailbox_create(db(), a, "Work/2026", NULL, NULL), STORE_OK);
	CHECK_INT(store_mailbox_create(db(), a, "Workshop", NULL, NULL), STORE_OK);
	int64_t work = mailbox_id(a, "Work");
	CHECK_INT(deliver_one(a, work, 0), 1);

	CHECK_INT(store_mailbox_rename(db(), a, "Work", "Jobs"), STORE_OK);
	CHECK_INT(mailbox_id(a, "Jobs"), work);
	CHECK(mailbox_id(a, "Jobs/2026") > 0);
	CHECK(mailbox_id(a, "Workshop") > 0);
	CHECK_INT(mailbox_id(a, "Work"), 0);
	CHECK_INT(store_mailbox_rename(db(), a, "Jobs", "Sent"), STORE_EEXISTS);
	CHECK_INT(store_mailbox_rename(db(), a, "Nope", "Other"), STORE_ENOTFOUND);
	CHECK_INT(store_mailbox_rename(db(), a, "Jobs", "inbox"), STORE_EEXISTS);
	CHECK_INT(store_mailbox_rename(db(), a, "Jobs", "Jobs/x"), STORE_EINVALID);

	/* INBOX: messages move to the new mailbox, INBOX stays, empty. */
	int64_t inbox = mailbox_id(a, "INBOX");
	CHECK_INT(deliver_one(a, inbox, 0), 1);
	CHECK_INT(deliver_one(a, inbox, 0), 2);
	CHECK_INT(store_mailbox_rename(db(), a, "INBOX", "Old Inbox"), STORE_OK);
	struct store_mailbox mb;
	CHECK_INT(store_mailbox_get(db(), a, "INBOX", &mb), STORE_OK);
	CHECK_INT(mb.id, inbox);
	CHECK_INT(mb.messages, 0);
	CHECK_INT(mb.uidnext, 3);
	store_mailbox_free_fields(&mb);
	CHECK_INT(store_mailbox_get(db(), a, "Old Inbox", &mb), STORE_OK);
	CHECK_INT(mb.messages, 2);
	CHECK_INT(mb.uidnext, 3);
	store_mailbox_free_fields(&mb);
	uint32_t *gone;
	size_t n;
	CHECK_INT(store_expunged_since(db(), inbox, 0, &gone, &n), STORE_OK);
	CHECK_INT(n, 2);
	free(gone);

	struct store_mailbox *mbs;
	CHECK_INT(store_mailbox_list(db(), a, &mbs, &n), STORE_OK);
	CHECK_INT(n, 10);
	for (size_t i = 1; i < n; i++)
		CHECK(strcmp(mbs[i - 1].name, mbs[i].name) < 0);
	store_mailboxes_free(&mbs, n);

	char id[24];
	long long used =
	    q_num("SELECT used_bytes FROM accounts WHERE id = $1::bigint", num(a, id), NULL);
	CHECK(used > 0);
	CHECK_INT(store_mailbox_delete(db(), a, "inbox"), STORE_EPERM);
	CHECK_INT(store_mailbox_delete(db(), a, "Old Inbox"), STORE_OK);
	CHECK_INT(store_mailbox_delete(db(), a, "Old Inbox"), STORE_ENOTFOUND);
	CHECK_INT(store_mailbox_delete(db(), a, "Jobs"), STORE_OK);
	CHECK_INT(q_num("SELECT used_bytes FROM accounts WHERE id = $1::bigint", num(a, id), NULL),
	          0);
	CHECK(mailbox_id(a, "Jobs/2026") > 0);
}

/* More orphans than one batch deletes: one run takes them all, the
 * messages and then the blobs they held. */
UNIT_TEST(store_gc_many_orphans)
{
	if (db() == NULL)
		return;
	q_num(
	    "WITH b AS (INSERT INTO blobs (sha256, size, data) SELECT "
	    "sha256(convert_to('gc-many-' || i, 'UTF8')), 1, '\\x78' FROM generate_series(1, 1200) "
	    "AS i RETURNING sha256) "
	    "INSERT INTO messages (sha256, size, header_size, envelope, body, bodystructure, "
	    "parts) "
	    "SELECT sha256, 1, 0, '', '', '', '' FROM b RETURNING 0",
	    NULL, NULL);
	CHECK(store_gc(db(), NULL, NULL) >= 1200);
	CHECK_INT(
	    q_num("SELECT count(*) FROM blobs WHERE sha256 IN (SELECT "
	          "sha256(convert_to('gc-many-' || i, 'UTF8')) FROM generate_series(1, 1200) AS i)",
	          NULL, NULL),
	    0);
	CHECK_INT(
	    q_num("SELECT count(*) FROM messages WHERE size = 1 AND envelope = ''", NULL, NULL), 0);
	/* The dashboard still counts them as received. */
	CHECK(q_num("SELECT coalesce(sum(received), 0) FROM mail_hourly "
	            "WHERE hour >= date_trunc('hour', now()) - interval '1 hour'",
	            NULL, NULL) >= 1200);
}

/* Delivers raw to a's INBOX and expunges it again: its message row and
 * blob are left unreferenced, as store_gc() finds them. Returns the
 * message row's id. */
static long long orphan_message(int64_t a, struct store_incoming *in)
{
	struct store_target t = target(a, 0);
	CHECK_INT(store_deliver(db(), in, &t, 1, false), STORE_OK);
	uint32_t *ex;
	size_t n;
	CHECK_INT(store_expunge(db(), mailbox_id(a, "INBOX"), &t.uid_r, 1, &ex, &n), STORE_OK);
	free(ex);
	return q_num("SELECT id FROM messages WHERE sha256 = decode($1, 'hex')",
	             store_incoming_sha256_hex(in), NULL);
}

/* Waits (10 s at most) until some backend waits for an advisory lock. */
static bool fence_waited_for(void)
{
	for (int i = 0; i < 1000; i++) {
		if (q_num(
		        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
		        NULL, NULL) > 0)
			return true;
		usleep(10000);
	}
	return false;
}

static bool exec_ok(PGconn *conn, const char *sql)
{
	PGresult *r = PQexec(conn, sql);
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		unit_fail(__FILE__, __LINE__, "%s: %s", sql, PQerrorMessage(conn));
	PQclear(r);
	return ok;
}

/* A message left unreferenced, one side of the reference fence held by
 * holder in an open transaction, and a thread on the other side waiting
 * for it: a gc, or a delivery of the same bytes. */
/* BEGIN, then fn (pg_advisory_xact_lock_shared or pg_advisory_xact_lock)
 * on the fence of in's bytes, as a delivery or gc takes it. */
static bool fence_take(PGconn *conn, const char *fn, struct store_incoming *in)
{
	char sql[256];
	snprintf(sql, sizeof(sql),
	         "SELECT %s(" STORE_FENCE_CLASS ", " STORE_FENCE_KEY("decode('%s', 'hex')") ")", fn,
	         store_incoming_sha256_hex(in));
	return exec_ok(conn, "BEGIN") && exec_ok(conn, sql);
}

static long long rows_of(const char *table, struct store_incoming *in)
{
	char sql[96];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE sha256 = decode($1, 'hex')",
	         table);
	return q_num(sql, store_incoming_sha256_hex(in), NULL);
}

/* The fence key computed in C (deliveries) is the one SQL computes (gc). */
UNIT_TEST(store_fence_key_matches_sql)
{
	if (db() == NULL)
		return;
	static const unsigned char firsts[][4] = {
	    {0, 0, 0, 0},
	    {0xff, 0xff, 0xff, 0xff},
	    {0x80, 0, 0, 1},
	    {0x7f, 0xff, 0xff, 0xff},
	    {0x12, 0x34, 0xab, 0xcd},
	};
	for (size_t i = 0; i < sizeof(firsts) / sizeof(firsts[0]); i++) {
		unsigned char digest[32] = {0};
		memcpy(digest, firsts[i], 4);
		char hex[65];
		for (int k = 0; k < 32; k++)
			snprintf(hex + 2 * k, 3, "%02x", digest[k]);
		CHECK_INT(q_num("SELECT " STORE_FENCE_KEY("decode($1, 'hex')"), hex, NULL),
		          store_fence_key(digest));
	}
}

/* gc leaves the bytes whose fence a delivery in flight holds, and only
 * those: the rest goes, and gc does not wait. */
UNIT_TEST(store_gc_skips_bytes_being_delivered)
{
	if (db() == NULL)
		return;
	int64_t a = make_account(0);
	struct buf raw_a, raw_b;
	struct store_incoming *in_a = new_incoming(&raw_a), *in_b = new_incoming(&raw_b);
	long long msg_a = orphan_message(a, in_a);
	CHECK(orphan_message(a, in_b) > 0);
	PGconn *holder = test_connect();
	if (holder != NULL && fence_take(holder, "pg_advisory_xact_lock_shared", in_a)) {
		CHECK(store_gc(db(), NULL, NULL) >= 1);
		CHECK_INT(rows_of("messages", in_a), 1);
		CHECK_INT(rows_of("blobs", in_a), 1);
		CHECK_INT(rows_of("messages", in_b), 0);
		CHECK_INT(rows_of("blobs", in_b), 0);
		/* As the delivery of the same bytes would: an entry for the message. */
		char sql[256];
		snprintf(sql, sizeof(sql),
		         "INSERT INTO mailbox_entries (mailbox_id, uid, message_id, modseq, size) "
		         "VALUES (%lld, 4000000000, %lld, 1, 1)",
		         (long long)mailbox_id(a, "INBOX"), msg_a);
		CHECK(exec_ok(holder, sql));
		CHECK(exec_ok(holder, "COMMIT"));
		CHECK(store_gc(db(), NULL, NULL) >= 0);
		CHECK_INT(rows_of("messages", in_a), 1);
		CHECK_INT(rows_of("blobs", in_a), 1);
	}
	PQfinish(holder);
	store_incoming_free(&in_a);
	store_incoming_free(&in_b);
	buf_free(&raw_a);
	buf_free(&raw_b);
}

struct redeliver {
	int64_t account;
	struct store_incoming *in;
	struct store_target t;
	enum store_err err;
};

static void *redeliver_main(void *arg)
{
	struct redeliver *d = arg;
	PGconn *conn = test_connect();
	d->t = target(d->account, 0);
	d->err = conn != NULL ? store_deliver(conn, d->in, &d->t, 1, false) : STORE_ETEMP;
	PQfinish(conn);
	return NULL;
}

/* A delivery of bytes stored before waits while gc holds their fence, so
 * gc cannot delete the rows it is about to refer to; deliveries of other
 * bytes go on meanwhile. */
UNIT_TEST(store_deliver_waits_for_gc_of_its_bytes)
{
	if (db() == NULL)
		return;
	int64_t a = make_account(0);
	struct buf raw_a, raw_b;
	struct store_incoming *in_a = new_incoming(&raw_a), *in_b = new_incoming(&raw_b);
	long long msg_a = orphan_message(a, in_a);
	PGconn *gc = test_connect();
	if (gc != NULL && fence_take(gc, "pg_advisory_xact_lock", in_a)) {
		struct redeliver d = {.account = a, .in = in_a};
		pthread_t th;
		pthread_create(&th, NULL, redeliver_main, &d);
		CHECK(fence_waited_for());
		struct store_target tb = target(a, 0);
		CHECK_INT(store_deliver(db(), in_b, &tb, 1, false), STORE_OK);
		CHECK_INT(tb.result, STORE_OK);
		/* What gc would delete now. */
		char sql[160];
		snprintf(sql, sizeof(sql), "DELETE FROM messages WHERE id = %lld", msg_a);
		CHECK(exec_ok(gc, sql));
		snprintf(sql, sizeof(sql), "DELETE FROM blobs WHERE sha256 = decode('%s', 'hex')",
		         store_incoming_sha256_hex(in_a));
		CHECK(exec_ok(gc, sql));
		CHECK(exec_ok(gc, "COMMIT"));
		pthread_join(th, NULL);
		CHECK_INT(d.err, STORE_OK);
		CHECK_INT(d.t.result, STORE_OK);
		char mb[24], uid[24];
		CHECK_INT(q_num("SELECT count(*) FROM mailbox_entries e JOIN messages m ON "
		                "m.id = e.message_id JOIN blobs b ON b.sha256 = m.sha256 "
		                "WHERE e.mailbox_id = $1::bigint AND e.uid = $2::bigint",
		                num(mailbox_id(a, "INBOX"), mb), num(d.t.uid_r, uid)),
		          1);
	}
	PQfinish(gc);
	store_incoming_free(&in_a);
	store_incoming_free(&in_b);
	buf_free(&raw_a);
	buf_free(&raw_b);
}

static bool stop_now(void *arg)
{
	(void)arg;
	return true;
}

/* Told to stop (the server shutting down), gc ends before its next batch. */
UNIT_TEST(store_gc_stops_when_told)
{
	if (db() == NULL)
		return;
	int64_t a = make_account(0);
	struct buf raw;
	struct store_incoming *in = new_incoming(&raw);
	CHECK(orphan_message(a, in) > 0);
	CHECK_INT(store_gc(db(), stop_now, NULL), 0);
	CHECK_INT(blob_count(store_incoming_sha256_hex(in)), 1);
	CHECK(store_gc(db(), NULL, NULL) >= 1);
	CHECK_INT(blob_count(store_incoming_sha256_hex(in)), 0);
	store_incoming_free(&in);
	buf_free(&raw);
}

/* Entries go with their mailbox, also when the account is removed. */
UNIT_TEST(store_entries_go_with_their_mailbox)
{
	if (db() == NULL)
		return;
	int64_t a = make_account(0);
	for (int i = 0; i < 2; i++) {
		struct buf raw;
		struct store_incoming *in = new_incoming(&raw);
		struct store_target t[2] = {target(a, 0), target(a, mailbox_id(a, "Archive"))};
		CHECK_INT(store_deliver(db(), in, t, 2, false), STORE_OK);
		store_incoming_free(&in);
		buf_free(&raw);
	}
	char id[24], arch[24];
	num(mailbox_id(a, "Archive"), arch);
	CHECK_INT(
	    q_num("SELECT count(*) FROM mailbox_entries WHERE mailbox_id = $1::bigint", arch, NULL),
	    2);
	CHECK_INT(store_mailbox_delete(db(), a, "Archive"), STORE_OK);
	CHECK_INT(
	    q_num("SELECT count(*) FROM mailbox_entries WHERE mailbox_id = $1::bigint", arch, NULL),
	    0);
	num(mailbox_id(a, "INBOX"), id);
	CHECK_INT(
	    q_num("SELECT count(*) FROM mailbox_entries WHERE mailbox_id = $1::bigint", id, NULL),
	    2);
	q_num("DELETE FROM accounts WHERE id = $1::bigint RETURNING 0", num(a, (char[24]){0}),
	      NULL);
	CHECK_INT(
	    q_num("SELECT count(*) FROM mailbox_entries WHERE mailbox_id = $1::bigint", id, NULL),
	    0);
}

UNIT_TEST(store_message_slices)
{
	if (db() == NULL)
		return;
	int64_t a = make_account(0);
	struct buf raw;
	struct store_incoming *in = new_incoming(&raw);
	struct store_target t = target(a, 0);
	t.flags = STORE_FLAG_FLAGGED;
	const char *kw[] = {"$Forwarded", NULL};
	t.keywords = kw;
	t.internaldate = 1700000000;
	CHECK_INT(store_deliver(db(), in, &t, 1, false), STORE_OK);
	struct store_entry *e;
	size_t ne;
	CHECK_INT(store_entries_list(db(), t.mailbox_id_r, 1, 1, 0, &e, &ne), STORE_OK);
	CHECK_INT(ne, 1);
	if (ne != 1)
		return;
	CHECK_INT(e[0].flags, STORE_FLAG_FLAGGED);
	CHECK_STR(e[0].keywords[0], "$Forwarded");
	CHECK_INT(e[0].internaldate, 1700000000);
	CHECK_INT(e[0].size, raw.len);
	struct store_message m;
	CHECK_INT(store_message_get(db(), e[0].message_id, &m), STORE_OK);
	CHECK_STR(m.sha256_hex, store_incoming_sha256_hex(in));
	CHECK_INT(m.size, raw.len);
	CHECK(m.has_date);
	CHECK_INT(m.date, 1795525200);
	CHECK(m.envelope != NULL && strstr(m.envelope, "Quarterly report") != NULL);
	CHECK(m.bodystructure != NULL && m.body != NULL && m.preview != NULL);
	CHECK(m.nparts >= 3);
	struct buf out;
	buf_init(&out, BUF_NO_LIMIT);
	for (size_t i = 0; i < m.nparts; i++) {
		const struct mime_part *p = &m.parts[i];
		buf_reset(&out);
		CHECK_INT(store_message_read(db(), m.id, p->body_start, p->body_len, &out),
		          STORE_OK);
		CHECK(out.len == p->body_len &&
		      memcmp(out.data, raw.data + p->body_start, p->body_len) == 0);
		buf_reset(&out);
		CHECK_INT(store_message_read(db(), m.id, p->header_start, p->header_len, &out),
		          STORE_OK);
		CHECK(out.len == p->header_len &&
		      memcmp(out.data, raw.data + p->header_start, p->header_len) == 0);
	}
	/* Past the end is cut; the whole message reads back byte for byte. */
	buf_reset(&out);
	CHECK_INT(store_message_read(db(), m.id, raw.len - 3, 100, &out), STORE_OK);
	CHECK_INT(out.len, 3);
	buf_reset(&out);
	CHECK_INT(store_message_read(db(), m.id, 0, UINT64_MAX, &out), STORE_OK);
	CHECK(out.len == raw.len && memcmp(out.data, raw.data, raw.len) == 0);
	buf_reset(&out);
	CHECK_INT(store_message_read(db(), m.id, UINT64_MAX, 10, &out), STORE_OK);
	CHECK_INT(out.len, 0);
	CHECK_INT(store_message_read(db(), 999999999, 0, 10, &out), STORE_ENOTFOUND);
	/* The message waits in search_pending; the indexer takes its text
	 * from the blob and files it, in lower case, with the message's header
	 * fields in message_search. */
	CHECK_INT(q_num("SELECT count(*) FROM search_pending WHERE message_id = $1::bigint",
	                num(m.id, (char[24]){0}), NULL),
	          1);
	CHECK(store_index_pending(db(), 1000, NULL) >= 1);
	CHECK_INT(store_index_pending(db(), 1000, NULL), 0);
	CHECK_INT(q_num("SELECT count(*) FROM search_pending", NULL, NULL), 0);
	CHECK_INT(q_num("SELECT count(*) FROM message_search WHERE message_id = $1::bigint AND "
	                "strpos(body, 'quarterly') > 0 AND strpos(headers, 'bob') > 0 AND "
	                "strpos(words, ' quarterly ') > 0 AND body = lower(body)",
	                num(m.id, (char[24]){0}), NULL),
	          1);
	buf_free(&out);
	store_message_free_fields(&m);
	store_entries_free(&e, ne);
	store_incoming_free(&in);
	buf_free(&raw);
}

UNIT_TEST(store_gc_unreferenced_only)
{
	if (db() == NULL)
		return;
	int64_t a = make_account(0);
	int64_t inbox = mailbox_id(a, "INBOX");
	struct buf raw1, raw2, raw3;
	struct store_incoming *in1 = new_incoming(&raw1), *in2 = new_incoming(&raw2),
	                      *in3 = new_incoming(&raw3);
	struct store_target t = target(a, 0);
	CHECK_INT(store_deliver(db(), in1, &t, 1, false), STORE_OK);
	CHECK_INT(store_deliver(db(), in2, &t, 1, false), STORE_OK);
	CHECK_INT(store_deliver(db(), in3, &t, 1, false), STORE_OK);
	/* Message 3 is also queued for sending out. */
	q_num("INSERT INTO queue (sha256, sender) VALUES (decode($1, 'hex'), '') RETURNING id",
	      store_incoming_sha256_hex(in3), NULL);
	CHECK(store_gc(db(), NULL, NULL) >= 0);
	CHECK_INT(blob_count(store_incoming_sha256_hex(in1)), 1);
	uint32_t uids[] = {t.uid_r - 2, t.uid_r}, *ex;
	size_t n;
	CHECK_INT(store_expunge(db(), inbox, uids, 2, &ex, &n), STORE_OK);
	CHECK_INT(n, 2);
	free(ex);
	CHECK(store_gc(db(), NULL, NULL) >= 1);
	CHECK_INT(blob_count(store_incoming_sha256_hex(in1)), 0);
	CHECK_INT(blob_count(store_incoming_sha256_hex(in2)), 1);
	CHECK_INT(blob_count(store_incoming_sha256_hex(in3)), 1);
	CHECK_INT(q_num("SELECT count(*) FROM messages WHERE sha256 = decode($1, 'hex')",
	                store_incoming_sha256_hex(in3), NULL),
	          0);
	CHECK_INT(store_gc(db(), NULL, NULL), 0);
	store_incoming_free(&in1);
	store_incoming_free(&in2);
	store_incoming_free(&in3);
	buf_free(&raw1);
	buf_free(&raw2);
	buf_free(&raw3);
}

/* Waits up to two seconds for a roost_mailbox notification; its payload
 * as a number, or -1. */
static long long wait_notify(PGconn *listener)
{
	for (int i = 0; i < 200; i++) {
		PQconsumeInput(listener);
		PGnotify *n = PQnotifies(listener);
		if (n != NULL) {
			long long v = strcmp(n->relname, "roost_mailbox") == 0
			                  ? strtoll(n->extra, NULL, 10)
			                  : -2;
			PQfreemem(n);
			return v;
		}
		usleep(10000);
	}
	return -1;
}

UNIT_TEST(store_changes_notify)
{
	if (db() == NULL)
		return;
	int64_t a = make_account(0), full = make_account(1);
	int64_t inbox = mailbox_id(a, "INBOX"), junk = mailbox_id(a, "Junk");
	PGconn *listener = test_connect();
	if (listener == NULL)
		return;
	PQclear(PQexec(listener, "LISTEN roost_mailbox"));
	CHECK_INT(deliver_one(a, 0, 0), 1);
	CHECK_INT(wait_notify(listener), inbox);
	CHECK_INT(deliver_one(a, junk, 0), 1);
	CHECK_INT(wait_notify(listener), junk);
	uint32_t uid = 1, *failed, *ex;
	struct store_flag_change *ch;
	size_t nch, nfailed, n;
	CHECK_INT(store_flags_change(db(), inbox, &uid, 1, STORE_FLAGS_ADD, STORE_FLAG_DELETED,
	                             NULL, 0, &ch, &nch, &failed, &nfailed),
	          STORE_OK);
	store_flag_changes_free(&ch, nch);
	free(failed);
	CHECK_INT(wait_notify(listener), inbox);
	CHECK_INT(store_expunge(db(), inbox, NULL, 0, &ex, &n), STORE_OK);
	free(ex);
	CHECK_INT(wait_notify(listener), inbox);
	/* Rolled back: no word. */
	struct buf raw;
	struct store_incoming *in = new_incoming(&raw);
	struct store_target t[2] = {target(a, 0), target(full, 0)};
	CHECK_INT(store_deliver(db(), in, t, 2, true), STORE_EQUOTA);
	CHECK_INT(t[0].result, STORE_EQUOTA);
	CHECK_INT(wait_notify(listener), -1);
	store_incoming_free(&in);
	buf_free(&raw);
	PQfinish(listener);
}

/* With the sender running, deliveries' notifications come from it: one per
 * mailbox per batch, and the same for a message to two mailboxes; after it
 * stops, deliveries notify by themselves again. */
UNIT_TEST(store_deliver_notifies_in_batches)
{
	if (db() == NULL)
		return;
	int64_t a = make_account(0);
	int64_t inbox = mailbox_id(a, "INBOX"), junk = mailbox_id(a, "Junk");
	PGconn *listener = test_connect();
	if (listener == NULL)
		return;
	PQclear(PQexec(listener, "LISTEN roost_mailbox"));
	struct db_pool *pool = NULL;
	char *err = NULL;
	CHECK_INT(db_pool_create(pgmanaged_conninfo(test_pg), 2, &pool, &err), 0);
	CHECK_INT(notify_batch_start(pool, &err), 0);
	CHECK(notify_batch_running());
	CHECK_INT(notify_batch_start(pool, &err), -1); /* only one */
	free(err);
	CHECK_INT(deliver_one(a, 0, 0), 1);
	CHECK_INT(wait_notify(listener), inbox);
	struct buf raw;
	struct store_incoming *in = new_incoming(&raw);
	struct store_target t[2] = {target(a, 0), target(a, junk)};
	CHECK_INT(store_deliver(db(), in, t, 2, false), STORE_OK);
	long long got[2] = {wait_notify(listener), wait_notify(listener)};
	CHECK((got[0] == inbox && got[1] == junk) || (got[0] == junk && got[1] == inbox));
	CHECK_INT(wait_notify(listener), -1);
	store_incoming_free(&in);
	buf_free(&raw);
	/* Many at once all arrive, each mailbox at least once. */
	int64_t ids[3] = {inbox, junk, inbox};
	CHECK(notify_batch_add(ids, 3));
	long long first = wait_notify(listener), second = wait_notify(listener);
	CHECK(first == inbox || first == junk);
	CHECK(second == inbox || second == junk);
	notify_batch_stop();
	CHECK(!notify_batch_running());
	CHECK(!notify_batch_add(ids, 1));
	CHECK_INT(deliver_one(a, junk, 0), 2);
	CHECK_INT(wait_notify(listener), junk);
	db_pool_destroy(&pool);
	PQfinish(listener);
}

/* SQLSTATE of a statement that must fail ("" if it succeeded). */
static const char *q_fails(const char *sql, const char *a, char *state, size_t n)
{
	const char *params[1] = {a};
	PGresult *r = PQexecParams(db(), sql, a ? 1 : 0, NULL, params, NULL, NULL, 0);
	const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	snprintf(state, n, "%s", st != NULL ? st : "");
	PQclear(r);
	return state;
}

/* The account and mailbox rules migration 014 moved from CHECK
 * constraints into triggers and UIDNEXT still hold, with SQLSTATE 23514;
 * a delivery, which writes none of those columns, passes. */
UNIT_TEST(store_schema_rules_hold)
{
	if (db() == NULL)
		return;
	int64_t a = make_account(0);
	char id[24], st[8];
	num(a, id);
	CHECK_STR(q_fails("UPDATE accounts SET localpart = '' WHERE id = $1::bigint", id, st, 8),
	          "23514");
	CHECK_STR(q_fails("UPDATE accounts SET source = 'nis' WHERE id = $1::bigint", id, st, 8),
	          "23514");
	CHECK_STR(q_fails("UPDATE accounts SET quota_bytes = -1 WHERE id = $1::bigint", id, st, 8),
	          "23514");
	CHECK_STR(
	    q_fails("INSERT INTO accounts (domain_id, localpart, address) SELECT domain_id, '', "
	            "'x' || address FROM accounts WHERE id = $1::bigint",
	            id, st, 8),
	    "23514");
	CHECK_STR(q_fails("UPDATE mailboxes SET special_use = '\\Bogus' WHERE account_id = "
	                  "$1::bigint AND name = 'INBOX'",
	                  id, st, 8),
	          "23514");
	CHECK_STR(q_fails("INSERT INTO mailboxes (account_id, name, special_use) VALUES "
	                  "($1::bigint, 'Odd', 'Junk')",
	                  id, st, 8),
	          "23514");
	CHECK_STR(q_fails("UPDATE mailboxes SET uidnext = 4294967297 WHERE account_id = $1::bigint",
	                  id, st, 8),
	          "23514");
	CHECK_STR(
	    q_fails("UPDATE mailboxes SET uidnext = 0 WHERE account_id = $1::bigint", id, st, 8),
	    "23514");
	CHECK_STR(q_fails("UPDATE mailboxes SET special_use = '\\Archive' WHERE account_id = "
	                  "$1::bigint AND name = 'Archive'",
	                  id, st, 8),
	          "");
	CHECK_INT(deliver_one(a, 0, 0), 1);
}

/* A prepared statement runs prepared, is prepared again once when the
 * server lost it (DISCARD ALL), and a failure comes back as NULL. */
UNIT_TEST(db_exec_prepared_prepares_again)
{
	PGconn *conn = db() != NULL ? test_connect() : NULL;
	if (conn == NULL)
		return;
	static const struct db_stmt stmt = {"roost_test_half", "SELECT 10 / $1::integer", 1};
	unsigned *bits = db_prepared_bits(conn, DB_PREPARED_NOTIFY);
	CHECK(bits != NULL);
	const char *two[1] = {"2"}, *zero[1] = {"0"};
	for (int round = 0; round < 2; round++) {
		PGresult *r = db_exec_prepared(conn, DB_PREPARED_NOTIFY, 0, &stmt, two);
		CHECK(r != NULL);
		if (r != NULL)
			CHECK_STR(PQgetvalue(r, 0, 0), "5");
		PQclear(r);
		CHECK(bits != NULL && (*bits & 1u) != 0);
		PQclear(PQexec(conn, "DISCARD ALL")); /* the server forgets; the bit stays */
	}
	CHECK(db_exec_prepared(conn, DB_PREPARED_NOTIFY, 0, &stmt, zero) == NULL);
	CHECK_STR(db_last_sqlstate(), "22012");
	PQfinish(conn);
}

UNIT_TEST(store_large_message)
{
	if (db() == NULL)
		return;
	int64_t a = make_account(0);
	struct buf raw;
	buf_init(&raw, BUF_NO_LIMIT);
	buf_append_str(&raw, "Subject: big\r\nContent-Type: application/octet-stream\r\n\r\n");
	for (int i = 0; raw.len < 6 * 1024 * 1024; i++)
		buf_printf(&raw, "line %08d of a large message, with some filler text\r\n", i);
	struct store_incoming *in = make_incoming(&raw);
	struct store_target t = target(a, 0);
	CHECK_INT(store_deliver(db(), in, &t, 1, false), STORE_OK);
	CHECK_INT(t.result, STORE_OK);
	struct store_entry *e;
	size_t ne;
	CHECK_INT(store_entries_list(db(), t.mailbox_id_r, 1, 1, 0, &e, &ne), STORE_OK);
	CHECK_INT(ne, 1);
	struct buf out;
	buf_init(&out, BUF_NO_LIMIT);
	uint64_t off = raw.len - 1000;
	if (ne == 1)
		CHECK_INT(store_message_read(db(), e[0].message_id, off, 5000, &out), STORE_OK);
	CHECK(out.len == 1000 && memcmp(out.data, raw.data + off, 1000) == 0);
	/* Too small a buffer for the slice is the caller's mistake. */
	struct buf small;
	buf_init(&small, 10);
	if (ne == 1)
		CHECK_INT(store_message_read(db(), e[0].message_id, 0, 11, &small), STORE_EINVALID);
	buf_free(&small);
	buf_free(&out);
	store_entries_free(&e, ne);
	store_incoming_free(&in);
	buf_free(&raw);
}

/* The indexer lowers texts in C and the managed cluster's lower() (its
 * LC_CTYPE is C.UTF-8) gave the texts filed before migration 013: the two
 * agree on every code point. */
UNIT_TEST(search_lower_matches_managed_cluster)
{
	if (db() == NULL)
		return;
	struct buf all, mine;
	buf_init(&all, BUF_NO_LIMIT);
	buf_init(&mine, BUF_NO_LIMIT);
	for (uint32_t cp = 1; cp < 0x30000; cp++) {
		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		char e[4];
		size_t k = utf8_encode(cp, e);
		buf_append(&all, e, k);
	}
	CHECK_INT(search_lower(all.data, all.len, &mine), 0);
	const char *params[1] = {buf_cstr(&all)};
	PGresult *r = PQexecParams(db(), "SELECT lower($1::text)", 1, NULL, params, NULL, NULL, 0);
	CHECK(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
		CHECK((size_t)PQgetlength(r, 0, 0) == mine.len);
		CHECK(memcmp(PQgetvalue(r, 0, 0), mine.data, mine.len) == 0);
	}
	PQclear(r);
	buf_free(&all);
	buf_free(&mine);
}

/* Migration 013 on a store that had texts pending (with their text, as
 * before it) and texts filed: the pending ones stay pending, now without
 * the text, and are filed from their blobs; the filed ones stay, their
 * lower() being C.UTF-8's here. */
UNIT_TEST(store_migration_013_upgrade)
{
	if (db() == NULL)
		return;
	int64_t a = make_account(0);
	struct buf raw1, raw2;
	struct store_incoming *in1 = new_incoming(&raw1), *in2 = new_incoming(&raw2);
	struct store_target t1 = target(a, 0), t2 = target(a, 0);
	CHECK_INT(store_deliver(db(), in1, &t1, 1, false), STORE_OK);
	while (store_index_pending(db(), 1000, NULL) > 0)
		;
	CHECK_INT(store_deliver(db(), in2, &t2, 1, false), STORE_OK);
	char id[24];
	const char *undo =
	    "ALTER TABLE search_pending ADD COLUMN body text NOT NULL DEFAULT 'old text';"
	    "DELETE FROM schema_migrations WHERE version = 13";
	PQclear(PQexec(db(), undo));
	unsigned applied = 0;
	char *error = NULL;
	CHECK_INT(db_migrate(db(), &applied, &error), 0);
	CHECK_INT(applied, 1);
	free(error);
	CHECK_INT(q_num("SELECT count(*) FROM information_schema.columns WHERE "
	                "table_name = 'search_pending' AND column_name = 'body'",
	                NULL, NULL),
	          0);
	int64_t m1 = q_num("SELECT message_id FROM mailbox_entries WHERE mailbox_id = "
	                   "(SELECT id FROM mailboxes WHERE account_id = $1::bigint AND name = "
	                   "'INBOX') ORDER BY uid LIMIT 1",
	                   num(a, id), NULL);
	CHECK_INT(q_num("SELECT count(*) FROM message_search WHERE message_id = $1::bigint",
	                num(m1, id), NULL),
	          1);
	CHECK_INT(q_num("SELECT count(*) FROM search_pending", NULL, NULL), 1);
	CHECK_INT(store_index_pending(db(), 1000, NULL), 1);
	CHECK_INT(q_num("SELECT count(*) FROM message_search s JOIN mailbox_entries e ON "
	                "e.message_id = s.message_id JOIN mailboxes b ON b.id = e.mailbox_id WHERE "
	                "b.account_id = $1::bigint AND strpos(s.body, 'hello bob') > 0",
	                num(a, id), NULL),
	          2);
	store_incoming_free(&in1);
	store_incoming_free(&in2);
	buf_free(&raw1);
	buf_free(&raw2);
}
