/* bench-ldap-auth - LDAP logins and address lookups per second through the
 * directory interface (what IMAP LOGIN, POP3 PASS, SMTP AUTH and RCPT TO
 * call).
 *
 *   bench-ldap-auth DSN USERS DOMAIN [seconds-per-run]
 *   bench-ldap-auth --imaps PORT USERS DOMAIN [seconds-per-run]
 *
 * DSN: the Roost database, with the LDAP settings already stored (run.py
 * starts slapd and Roost and does that). USERS: how many users user0..N-1
 * with passwords pw-0..pw-N-1 the directory has. Runs logins for the given
 * time (default 5 s) at 1 and 32 threads sharing one directory handle (its
 * pooled service connections and bind connections), then address lookups
 * (directory_resolve of uN.alt@DOMAIN, alternate addresses only LDAP
 * knows: the RCPT TO path, cached after the first lookup as in a server) at 1 and 32 threads, and
 * the same lookups with the cache off. Prints one line per run.
 *
 * With --imaps: IMAP logins over TLS against a running server on
 * 127.0.0.1:PORT at 1 and 32 clients: each login is a new TCP connection,
 * a full TLS handshake, the greeting, LOGIN userN@DOMAIN pw-N and LOGOUT. */
#include "directory.h"
#include "ldap-admin.h"
#include "log.h"
#include "pool.h"
#include "strnum.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bench {
	struct directory *dir;
	SSL_CTX *tls; /* --imaps */
	unsigned port;
	unsigned users;
	const char *domain;
	double seconds;
	bool resolve;
	atomic_ulong ok, failed;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads until a line starting with tag (or "* BYE" for the greeting's
 * NULL tag: the first line). true if that line is OK. */
static bool imap_wait(SSL *ssl, const char *tag)
{
	char buf[4096];
	size_t have = 0;
	for (;;) {
		int n = SSL_read(ssl, buf + have, (int)(sizeof(buf) - 1 - have));
		if (n <= 0)
			return false;
		have += (size_t)n;
		buf[have] = '\0';
		char *line = buf, *nl;
		while ((nl = strstr(line, "\r\n")) != NULL) {
			*nl = '\0';
			if (tag == NULL)
				return strncmp(line, "* OK", 4) == 0;
			if (strncmp(line, tag, strlen(tag)) == 0 && line[strlen(tag)] == ' ')
				return strncmp(line + strlen(tag) + 1, "OK", 2) == 0;
			line = nl + 2;
		}
		have = strlen(line);
		memmove(buf, line, have);
		if (have >= sizeof(buf) - 1)
			have = 0;
	}
}

static bool imap_login(struct bench *b, const char *login, const char *pw)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)b->port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	SSL *ssl = SSL_new(b->tls);
	SSL_set_fd(ssl, fd);
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "a LOGIN \"%s\" \"%s\"\r\nb LOGOUT\r\n", login, pw);
	bool ok = SSL_connect(ssl) == 1 && imap_wait(ssl, NULL) &&
	          SSL_write(ssl, cmd, (int)strlen(cmd)) > 0 && imap_wait(ssl, "a");
	SSL_shutdown(ssl);
	SSL_free(ssl);
	close(fd);
	return ok;
}

static bool bench_one(struct bench *b, unsigned i)
{
	char login[128], pw[32];
	unsigned u = i % b->users;
	if (b->resolve) {
		/* Alternate addresses: only LDAP knows them (the primary ones are
		 * accounts in the store after the first login). */
		snprintf(login, sizeof(login), "u%u.alt@%s", u, b->domain);
		struct directory_resolution r;
		bool ok = directory_resolve(b->dir, login, &r, NULL) == DIR_OK && r.naccounts == 1;
		directory_resolution_free(&r);
		return ok;
	}
	struct directory_account a;
	snprintf(login, sizeof(login), "user%u@%s", u, b->domain);
	snprintf(pw, sizeof(pw), "pw-%u", u);
	if (b->tls != NULL)
		return imap_login(b, login, pw);
	return directory_authenticate(b->dir, login, pw, &a) == DIR_AUTH_OK;
}

static void *bench_thread(void *arg)
{
	struct bench *b = arg;
	static atomic_uint seq;
	double end = now_s() + b->seconds;
	while (now_s() < end) {
		if (bench_one(b, atomic_fetch_add(&seq, 1)))
			atomic_fetch_add(&b->ok, 1);
		else
			atomic_fetch_add(&b->failed, 1);
	}
	return NULL;
}

static void bench_run(struct bench *b, unsigned threads, const char *what)
{
	pthread_t t[64];
	atomic_store(&b->ok, 0);
	atomic_store(&b->failed, 0);
	double start = now_s();
	for (unsigned i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, bench_thread, b);
	for (unsigned i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	double took = now_s() - start;
	printf("%-28s threads=%-2u  %8.0f /s  (ok %lu, failed %lu)\n", what, threads,
	       (double)atomic_load(&b->ok) / took, atomic_load(&b->ok), atomic_load(&b->failed));
	fflush(stdout);
}

static void set_cache(struct directory *dir, const char *ttl)
{
	const char *k[] = {"cache_ttl"}, *v[] = {ttl};
	char err[DIR_ERROR_SIZE];
	if (directory_ldap_settings_set(dir, k, v, 1, err) != DIR_OK)
		fprintf(stderr, "bench-ldap-auth: %s\n", err);
}

static int bench_imaps(int argc, char **argv)
{
	uint64_t port = 0, users = 0, seconds = 5;
	if (argc < 5 || str_to_u64(argv[2], 65535, &port) < 0 ||
	    str_to_u64(argv[3], 100000, &users) < 0 || users == 0 ||
	    (argc > 5 && str_to_u64(argv[5], 3600, &seconds) < 0)) {
		fprintf(stderr, "usage: bench-ldap-auth --imaps PORT USERS DOMAIN [seconds]\n");
		return 2;
	}
	struct bench b = {.port = (unsigned)port,
	                  .users = (unsigned)users,
	                  .domain = argv[4],
	                  .seconds = (double)seconds};
	b.tls = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(b.tls, SSL_VERIFY_NONE, NULL); /* the test's self-signed cert */
	bench_run(&b, 1, "imaps login (TLS + LDAP)");
	bench_run(&b, 32, "imaps login (TLS + LDAP)");
	SSL_CTX_free(b.tls);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--imaps") == 0)
		return bench_imaps(argc, argv);
	uint64_t users = 0, seconds = 5;
	if (argc < 4 || str_to_u64(argv[2], 100000, &users) < 0 || users == 0 ||
	    (argc > 4 && str_to_u64(argv[4], 3600, &seconds) < 0)) {
		fprintf(stderr, "usage: bench-ldap-auth DSN USERS DOMAIN [seconds]\n");
		return 2;
	}
	log_set_level(LOG_ERROR);
	struct db_pool *pool = NULL;
	char *perr = NULL;
	const char *derr = NULL;
	struct directory *dir = NULL;
	if (db_pool_create(argv[1], 40, &pool, &perr) < 0 ||
	    directory_open(pool, "local", &dir, &derr) < 0) {
		fprintf(stderr, "bench-ldap-auth: %s\n", perr != NULL ? perr : derr);
		return 1;
	}
	struct bench b = {
	    .dir = dir, .users = (unsigned)users, .domain = argv[3], .seconds = (double)seconds};
	bench_run(&b, 1, "login (warm-up, provisions)");
	bench_run(&b, 1, "login");
	bench_run(&b, 32, "login");
	b.resolve = true;
	bench_run(&b, 1, "rcpt lookup (cached)");
	bench_run(&b, 32, "rcpt lookup (cached)");
	set_cache(dir, "0");
	directory_close(&dir);
	directory_open(pool, "local", &dir, &derr);
	b.dir = dir;
	bench_run(&b, 1, "rcpt lookup (no cache)");
	bench_run(&b, 32, "rcpt lookup (no cache)");
	set_cache(dir, "60");
	directory_close(&dir);
	db_pool_destroy(&pool);
	return 0;
}
