#include "log.h"

#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

static enum log_level log_min_level = LOG_INFO;
static _Thread_local char log_sid[48];
static _Thread_local char log_mid[48];

static const char *const log_level_names[] = { "debug", "info", "warn", "error",
					       "fatal" };

void log_set_level(enum log_level level)
{
	log_min_level = level;
}

int log_parse_level(const char *name, enum log_level *r)
{
	for (int i = LOG_DEBUG; i <= LOG_ERROR; i++) {
		if (strcasecmp(name, log_level_names[i]) == 0) {
			*r = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

static void log_copy_id(char *dst, size_t dstlen, const char *src)
{
	if (src == NULL) {
		dst[0] = '\0';
		return;
	}
	size_t i;
	for (i = 0; i + 1 < dstlen && src[i] != '\0'; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[i] = (c > 0x20 && c < 0x7f && c != '"') ? (char)c : '_';
	}
	dst[i] = '\0';
}

void log_set_session(const char *session_id)
{
	log_copy_id(log_sid, sizeof(log_sid), session_id);
	log_mid[0] = '\0';
}

void log_set_msgid(const char *msg_id)
{
	log_copy_id(log_mid, sizeof(log_mid), msg_id);
}

const char *log_session(void)
{
	return log_sid;
}

void log_vwrite(enum log_level level, const char *fmt, va_list ap)
{
	if (level < log_min_level)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char stamp[40];
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

	struct buf b;
	buf_init(&b, 16384);
	buf_printf(&b, "%s.%03ldZ level=%s", stamp, ts.tv_nsec / 1000000,
		   log_level_names[level]);
	if (log_sid[0] != '\0')
		buf_printf(&b, " session=%s", log_sid);
	if (log_mid[0] != '\0')
		buf_printf(&b, " id=%s", log_mid);
	buf_append_char(&b, ' ');
	if (buf_vprintf(&b, fmt, ap) < 0)
		buf_append_str(&b, "(log line too long)");
	/* A format argument must never smuggle a line break into the log. */
	for (size_t i = 0; i < b.len; i++)
		if (b.data[i] == '\n' || b.data[i] == '\r')
			b.data[i] = ' ';
	buf_append_char(&b, '\n');
	fwrite(b.data, 1, b.len, stderr);
	fflush(stderr);
	buf_free(&b);
}

void log_write(enum log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(level, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(LOG_FATAL, fmt, ap);
	va_end(ap);
	exit(1);
}

char *log_quote(char *out, size_t outlen, const char *s)
{
	struct buf b;
	buf_init(&b, outlen > 3 ? outlen - 3 : 0);
	buf_append_char(&b, '"');
	if (s != NULL)
		buf_append_escaped(&b, s, strlen(s), 200);
	buf_append_char(&b, '"');
	snprintf(out, outlen, "%s", buf_cstr(&b));
	buf_free(&b);
	return out;
}

void log_new_id(const char *prefix, char *out, size_t outlen)
{
	unsigned char r[4];
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		unsigned long v = (unsigned long)random();
		memcpy(r, &v, sizeof(r));
	}
	snprintf(out, outlen, "%s-%02x%02x%02x%02x", prefix, r[0], r[1], r[2], r[3]);
}
