#include "sasl-conn.h"

#include "buf.h"

#include <string.h>

enum sasl_status sasl_conn_exchange(struct sasl *s, enum sasl_status st, struct conn *c,
				    const char *prefix, enum conn_status *conn_r,
				    const char **error_r)
{
	struct buf line;
	buf_init(&line, SASL_RESPONSE_MAX + 16);
	*conn_r = CONN_OK;
	while (st == SASL_CONTINUE) {
		enum conn_status ws = conn_printf(c, "%s%s\r\n", prefix, sasl_challenge(s));
		if (ws != CONN_OK) {
			*conn_r = ws;
			st = SASL_ERROR;
			break;
		}
		enum conn_status cs = conn_read_line(c, &line, SASL_RESPONSE_MAX + 16, 0, NULL);
		if (cs == CONN_TOO_LONG) {
			*error_r = "response too long";
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
