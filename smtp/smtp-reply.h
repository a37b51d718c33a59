/* smtp-reply.h - the one writer of SMTP replies (STYLE.md).
 *
 * Every reply of the SMTP server goes through here: a three-digit code, an
 * enhanced status code (RFC 3463, RFC 2034 ENHANCEDSTATUSCODES; NULL where
 * none belongs: the greeting, EHLO lines, 334 and 354) and a text. Text may
 * carry client input (a HELO name, an address): every byte that is not
 * printable ASCII, CR and LF above all, is written as \xHH so an echoed
 * string can never end the reply early or start a forged one.
 *
 * Replies are buffered in the conn (core/conn.h); a read that has to wait
 * for input flushes them first, which is exactly the batching RFC 2920
 * (PIPELINING) asks for. */
#ifndef ROOST_SMTP_REPLY_H
#define ROOST_SMTP_REPLY_H

#include "buf.h"
#include "conn.h"

#include <stdbool.h>

/* Longest reply text line we write (RFC 5321 4.5.3.1.5: 512 with the code). */
#define SMTP_REPLY_TEXT_MAX 480

/* Appends one reply line "CODE[-| ]ESC TEXT\r\n" to out, last selecting ' '
 * over '-'. code must be 200..599. Text is escaped as described above and
 * cut at SMTP_REPLY_TEXT_MAX bytes. */
void smtp_reply_format(struct buf *out, unsigned code, const char *esc, bool last,
                       const char *text);

/* Writes a one-line reply (printf-style text) to c; returns the write's
 * status. */
enum conn_status smtp_reply(struct conn *c, unsigned code, const char *esc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes a multi-line reply: one line per entry of lines (n >= 1), the same
 * code and enhanced code on each. */
enum conn_status smtp_reply_lines(struct conn *c, unsigned code, const char *esc,
                                  const char *const *lines, size_t n);

#endif
