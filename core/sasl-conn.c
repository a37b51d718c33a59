#include "sasl-conn.h"

#include "buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum sasl_status sasl_io_exchange(struct sasl *s, enum sasl_status st, const struct sasl_io *io,
                                  const char *prefix, enum conn_status *conn_r,
                                  const char **error_r)
{
	struct buf line;
	buf_init(&line, SASL_RESPONSE_MAX + 16);
	*conn_r = CONN_OK;
	while (st == SASL_CONTINUE) {
		const char *challenge = sasl_challenge(s);
		enum conn_status ws = io->write(io->ctx, prefix, strlen(prefix));
		if (ws == CONN_OK)
			ws = io->write(io->ctx, challenge, strlen(challenge));
		if (ws == CONN_OK)
			ws = io->write(io->ctx, "\r\n", 2);
		if (ws != CONN_OK) {
			*conn_r = ws;
			st = SASL_ERROR;
			break;
		}
		enum conn_status cs = io->read_line(io->ctx, &line, SASL_RESPONSE_MAX + 16);
		if (cs == CONN_TOO_LONG) {
			*error_r = "Response too long";
			st = SASL_ERROR;
			break;
		}
		if (cs != CONN_OK) {
			*conn_r = cs;
			st = SASL_ERROR;
			break;
		}
		st = sasl_step(s, buf_cstr(&line), line.len, error_r);
		if (line.data != NULL)
			explicit_bzero(line.data, line.len);
	}
	if (line.data != NULL)
		explicit_bzero(line.data, line.cap);
	buf_free(&line);
	return st;
}

static enum conn_status sasl_conn_write(void *ctx, const void *p, size_t n)
{
	return conn_write(ctx, p, n);
}

static enum conn_status sasl_conn_read_line(void *ctx, struct buf *line, size_t max_len)
{
	return conn_read_line(ctx, line, max_len, 0, NULL);
}

enum sasl_status sasl_conn_exchange(struct sasl *s, enum sasl_status st, struct conn *c,
                                    const char *prefix, enum conn_status *conn_r,
                                    const char **error_r)
{
	const struct sasl_io io = {sasl_conn_write, sasl_conn_read_line, c};
	return sasl_io_exchange(s, st, &io, prefix, conn_r, error_r);
}

void auth_failure_pause(const struct config *cfg)
{
	uint32_t max = (uint32_t)config_uint(cfg, CFG_LIMITS_AUTH_FAILURE_DELAY_MS);
	if (max == 0)
		return;
	uint32_t ms = max / 2 + arc4random_uniform(max - max / 2 + 1);
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0)
		;
}
