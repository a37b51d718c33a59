/* log.h - one key=value line per event (STYLE.md).
 *
 * Lines look like:
 *   2026-11-24T13:20:00.123Z level=info session=imap-1f3a msg=42 event=login user="a@b"
 * The session id (and the message or queue id once there is one) is kept per
 * thread, because each connection runs on its own thread. Untrusted strings
 * go through log_quote() so CR/LF and control bytes are escaped and long
 * values are cut. Credentials are never logged. */
#ifndef ROOST_LOG_H
#define ROOST_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_FATAL };

/* Minimum level written; default LOG_INFO. Output goes to stderr. */
void log_set_level(enum log_level level);
int log_parse_level(const char *name, enum log_level *r);
/* Per-thread context. The strings are copied (cut at 47 bytes). NULL clears. */
void log_set_session(const char *session_id);
void log_set_msgid(const char *msg_id);
const char *log_session(void);

void log_write(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_vwrite(enum log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

/* Logs at LOG_FATAL and exits with status 1. For bad config or environment. */
_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes s as a double-quoted, escaped value (cut at 200 input bytes) into out.
 * Returns out, for use directly in a log_write argument list. */
char *log_quote(char *out, size_t outlen, const char *s);
#define LOG_QUOTE_MAX 820

/* A short random id (e.g. "imap-1f3a9c02") for a session or an internal
 * error that appears both in a reply and in the log. out: >= 24 bytes. */
void log_new_id(const char *prefix, char *out, size_t outlen);

#endif
