/* bench-http - load generator for the HTTPS admin API.
 *
 *   bench-http HOST PORT PATH COOKIE CLIENTS SECONDS
 *
 * CLIENTS threads each keep one TLS connection open and send GET PATH with
 * the Cookie header back to back for SECONDS; prints requests/s, the
 * latency percentiles and the count of non-200 answers. */
#include "buf.h"
#include "strnum.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES 2000000

struct client {
	pthread_t thread;
	double *lat_ms;
	size_t n, cap, bad;
};

static const char *host, *path, *cookie;
static unsigned port;
static double deadline;
static SSL_CTX *ssl_ctx;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static SSL *bench_connect(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int one = 1;
	inet_pton(AF_INET, host, &sa.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("connect");
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	SSL *ssl = SSL_new(ssl_ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1) {
		ERR_print_errors_fp(stderr);
		exit(1);
	}
	return ssl;
}

/* Reads one response; returns its status, or -1 when the connection ended. */
static int bench_read_response(SSL *ssl, struct buf *in)
{
	for (;;) {
		const char *end = strstr(buf_cstr(in), "\r\n\r\n");
		if (end != NULL) {
			size_t head = (size_t)(end - in->data) + 4;
			const char *cl = strcasestr(in->data, "\r\nContent-Length:");
			uint64_t len = 0;
			if (cl == NULL || cl > end ||
			    mem_to_u64(cl + 17 + strspn(cl + 17, " "),
			               strcspn(cl + 17 + strspn(cl + 17, " "), "\r"), UINT32_MAX,
			               &len) < 0)
				return -1;
			if (in->len >= head + len) {
				int status = atoi(in->data + 9);
				buf_consume(in, head + (size_t)len);
				return status;
			}
		}
		char chunk[16384];
		int n = SSL_read(ssl, chunk, sizeof(chunk));
		if (n <= 0 || buf_append(in, chunk, (size_t)n) < 0)
			return -1;
	}
}

static void *bench_client(void *arg)
{
	struct client *c = arg;
	SSL *ssl = bench_connect();
	struct buf req, in;
	buf_init(&req, 8192);
	buf_init(&in, 64 * 1024 * 1024);
	buf_printf(&req, "GET %s HTTP/1.1\r\nHost: %s:%u\r\nCookie: %s\r\n\r\n", path, host, port,
	           cookie);
	while (now_s() < deadline && c->n < c->cap) {
		double t0 = now_s();
		if (SSL_write(ssl, req.data, (int)req.len) <= 0)
			break;
		int status = bench_read_response(ssl, &in);
		if (status < 0) {
			/* The server closed (idle timeout or limit): reconnect. */
			SSL_free(ssl);
			ssl = bench_connect();
			buf_reset(&in);
			continue;
		}
		c->lat_ms[c->n++] = (now_s() - t0) * 1000.0;
		if (status != 200)
			c->bad++;
	}
	SSL_free(ssl);
	buf_free(&req);
	buf_free(&in);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	uint64_t clients, seconds, p;
	if (argc != 7 || str_to_u64(argv[2], 65535, &p) < 0 ||
	    str_to_u64(argv[5], 1024, &clients) < 0 || clients == 0 ||
	    str_to_u64(argv[6], 3600, &seconds) < 0) {
		fprintf(stderr, "usage: bench-http HOST PORT PATH COOKIE CLIENTS SECONDS\n");
		return 2;
	}
	host = argv[1];
	port = (unsigned)p;
	path = argv[3];
	cookie = argv[4];
	ssl_ctx = SSL_CTX_new(TLS_client_method());
	struct client *cs = calloc(clients, sizeof(*cs));
	deadline = now_s() + (double)seconds;
	double start = now_s();
	for (size_t i = 0; i < clients; i++) {
		cs[i].cap = MAX_SAMPLES / clients;
		cs[i].lat_ms = malloc(cs[i].cap * sizeof(double));
		pthread_create(&cs[i].thread, NULL, bench_client, &cs[i]);
	}
	size_t total = 0, bad = 0;
	for (size_t i = 0; i < clients; i++) {
		pthread_join(cs[i].thread, NULL);
		total += cs[i].n;
		bad += cs[i].bad;
	}
	double elapsed = now_s() - start;
	double *all = malloc((total + 1) * sizeof(double));
	size_t k = 0;
	for (size_t i = 0; i < clients; i++) {
		memcpy(all + k, cs[i].lat_ms, cs[i].n * sizeof(double));
		k += cs[i].n;
		free(cs[i].lat_ms);
	}
	qsort(all, total, sizeof(double), cmp_double);
	if (total == 0) {
		printf("no answers\n");
		return 1;
	}
	printf("path=%s clients=%llu requests=%zu rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f "
	       "non200=%zu\n",
	       path, (unsigned long long)clients, total, (double)total / elapsed, all[total / 2],
	       all[(size_t)((double)total * 0.99)], all[total - 1], bad);
	free(all);
	free(cs);
	SSL_CTX_free(ssl_ctx);
	return bad == 0 ? 0 : 1;
}
