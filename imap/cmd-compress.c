/* cmd-compress.c - COMPRESS=DEFLATE (RFC 4978): raw deflate (zlib with
 * windowBits -15) both ways, as an I/O filter between the session and its
 * conn (struct imap_io_filter in imap-private.h).
 *
 * Output is deflated as it is written and pushed out with Z_SYNC_FLUSH on
 * every flush, and before any read that may wait, so the client always has
 * every reply it can act on (RFC 4978 section 4). Input is inflated into a
 * bounded plain-text buffer from which lines and literals are served with
 * the conn's own contracts (limits, CONN_TOO_LONG keeping in step). */
#include "imap-private.h"

#include "log.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

/* Compressed bytes read at a time; plain bytes kept waiting at most. */
#define DEFLATE_IN_CHUNK  16384
#define DEFLATE_PLAIN_MAX (256 * 1024)

struct deflate_io {
	struct imap_io_filter filter; /* first: freed with the rest (dio_free) */
	z_stream out, in;
	bool out_dirty;   /* deflated data may be held inside zlib */
	struct buf plain; /* inflated, not yet consumed */
	struct buf raw;   /* compressed input read from the conn */
	bool broken;
};

static enum conn_status dio_deflate(struct deflate_io *d, struct conn *c, const void *p, size_t n,
                                    int mode)
{
	unsigned char out[16384];
	d->out.next_in = (unsigned char *)(uintptr_t)p;
	d->out.avail_in = (uInt)n;
	do {
		d->out.next_out = out;
		d->out.avail_out = sizeof(out);
		int zr = deflate(&d->out, mode);
		if (zr != Z_OK && zr != Z_BUF_ERROR) {
			d->broken = true;
			return CONN_ERROR;
		}
		size_t have = sizeof(out) - d->out.avail_out;
		if (have > 0 && conn_write(c, out, have) != CONN_OK)
			return CONN_ERROR;
	} while (d->out.avail_in > 0 || d->out.avail_out == 0);
	return CONN_OK;
}

static enum conn_status dio_write(void *ctx, struct conn *c, const void *p, size_t n)
{
	struct deflate_io *d = ctx;
	if (d->broken)
		return CONN_ERROR;
	/* Large writes go in pieces: avail_in is 32 bits. */
	const unsigned char *q = p;
	while (n > 0) {
		size_t k = n > (1u << 20) ? (1u << 20) : n;
		if (dio_deflate(d, c, q, k, Z_NO_FLUSH) != CONN_OK)
			return CONN_ERROR;
		q += k;
		n -= k;
	}
	d->out_dirty = true;
	return CONN_OK;
}

static enum conn_status dio_sync(struct deflate_io *d, struct conn *c)
{
	if (!d->out_dirty)
		return CONN_OK;
	d->out_dirty = false;
	return dio_deflate(d, c, "", 0, Z_SYNC_FLUSH);
}

static enum conn_status dio_flush(void *ctx, struct conn *c)
{
	struct deflate_io *d = ctx;
	if (d->broken || dio_sync(d, c) != CONN_OK)
		return CONN_ERROR;
	return conn_flush(c);
}

/* Inflates what is in d->raw into d->plain (up to its bound). */
static enum conn_status dio_inflate(struct deflate_io *d)
{
	unsigned char out[16384];
	d->in.next_in = (unsigned char *)d->raw.data;
	d->in.avail_in = (uInt)d->raw.len;
	while (d->in.avail_in > 0 && d->plain.len + sizeof(out) <= d->plain.max) {
		d->in.next_out = out;
		d->in.avail_out = sizeof(out);
		int zr = inflate(&d->in, Z_SYNC_FLUSH);
		if (zr != Z_OK && zr != Z_BUF_ERROR && zr != Z_STREAM_END) {
			d->broken = true;
			return CONN_ERROR;
		}
		buf_append(&d->plain, out, sizeof(out) - d->in.avail_out);
		if (zr == Z_BUF_ERROR || zr == Z_STREAM_END)
			break;
	}
	buf_consume(&d->raw, d->raw.len - d->in.avail_in);
	return CONN_OK;
}

/* Makes more plain input available, reading from the conn if needed. */
static enum conn_status dio_fill(struct deflate_io *d, struct conn *c, unsigned flags)
{
	if (d->broken)
		return CONN_ERROR;
	size_t before = d->plain.len;
	if (d->raw.len > 0 && dio_inflate(d) != CONN_OK)
		return CONN_ERROR;
	while (d->plain.len == before) {
		if (d->plain.len + 16384 > d->plain.max)
			return CONN_TOO_LONG;
		if (dio_sync(d, c) != CONN_OK)
			return CONN_ERROR;
		enum conn_status st = conn_read_some(c, &d->raw, DEFLATE_IN_CHUNK, flags);
		if (st != CONN_OK)
			return st;
		if (dio_inflate(d) != CONN_OK)
			return CONN_ERROR;
	}
	return CONN_OK;
}

/* Throws away plain input up to and including the next LF. */
static enum conn_status dio_skip_line(struct deflate_io *d, struct conn *c)
{
	for (;;) {
		const char *nl =
		    d->plain.len > 0 ? memchr(d->plain.data, '\n', d->plain.len) : NULL;
		if (nl != NULL) {
			buf_consume(&d->plain, (size_t)(nl - d->plain.data) + 1);
			return CONN_OK;
		}
		buf_reset(&d->plain);
		enum conn_status st = dio_fill(d, c, 0);
		if (st != CONN_OK)
			return st;
	}
}

static enum conn_status dio_read_line(void *ctx, struct conn *c, struct buf *line, size_t max_len,
                                      unsigned flags, bool *bare_lf_r)
{
	struct deflate_io *d = ctx;
	buf_reset(line);
	for (unsigned f = flags;; f = 0) {
		const char *nl =
		    d->plain.len > 0 ? memchr(d->plain.data, '\n', d->plain.len) : NULL;
		size_t n = nl != NULL ? (size_t)(nl - d->plain.data) : d->plain.len;
		if (n > max_len + 1 || (nl == NULL && n > max_len)) {
			enum conn_status st = dio_skip_line(d, c);
			return st == CONN_OK ? CONN_TOO_LONG : st;
		}
		if (nl != NULL) {
			bool cr = n > 0 && d->plain.data[n - 1] == '\r';
			if (bare_lf_r != NULL)
				*bare_lf_r = !cr;
			size_t len = cr ? n - 1 : n;
			if (len > max_len || buf_append(line, d->plain.data, len) < 0) {
				buf_consume(&d->plain, n + 1);
				buf_reset(line);
				return CONN_TOO_LONG;
			}
			buf_consume(&d->plain, n + 1);
			return CONN_OK;
		}
		enum conn_status st = dio_fill(d, c, d->plain.len == 0 ? f : 0);
		if (st != CONN_OK)
			return st;
	}
}

static enum conn_status dio_read_stream(void *ctx, struct conn *c, uint64_t n,
                                        int (*sink)(void *sctx, const void *p, size_t len),
                                        void *sctx)
{
	struct deflate_io *d = ctx;
	bool failed = false;
	while (n > 0) {
		if (d->plain.len == 0) {
			enum conn_status st = dio_fill(d, c, 0);
			if (st != CONN_OK)
				return st;
		}
		size_t k = d->plain.len < n ? d->plain.len : (size_t)n;
		if (!failed && sink != NULL && sink(sctx, d->plain.data, k) < 0)
			failed = true;
		buf_consume(&d->plain, k);
		n -= k;
	}
	return failed ? CONN_SINK_FAILED : CONN_OK;
}

static size_t dio_pending_input(void *ctx, struct conn *c)
{
	struct deflate_io *d = ctx;
	return d->plain.len + d->raw.len + conn_pending_input(c);
}

static void dio_free(void *ctx)
{
	struct deflate_io *d = ctx;
	deflateEnd(&d->out);
	inflateEnd(&d->in);
	buf_free(&d->plain);
	buf_free(&d->raw);
	free(d);
}

static struct imap_io_filter *dio_new(void)
{
	struct deflate_io *d = xcalloc(1, sizeof(*d));
	if (deflateInit2(&d->out, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK) {
		free(d);
		return NULL;
	}
	if (inflateInit2(&d->in, -15) != Z_OK) {
		deflateEnd(&d->out);
		free(d);
		return NULL;
	}
	buf_init(&d->plain, DEFLATE_PLAIN_MAX);
	buf_init(&d->raw, BUF_NO_LIMIT);
	d->filter = (struct imap_io_filter){
	    dio_write, dio_flush, dio_read_line, dio_read_stream, dio_pending_input, dio_free, d};
	return &d->filter;
}

int imap_cmd_compress(struct imap_cmd *cmd)
{
	const char *mech;
	if (imap_arg_sp(cmd) < 0 || imap_arg_atom(cmd, &mech) < 0 || imap_arg_end(cmd) < 0)
		return -1;
	if (strcasecmp(mech, "DEFLATE") != 0) {
		cmd->error = "Unknown compression mechanism";
		return -1;
	}
	struct imap_session *s = cmd->s;
	if (s->filter != NULL) {
		imap_reply_no(cmd, "[COMPRESSIONACTIVE] Compression is already active");
		return 0;
	}
	struct imap_io_filter *f = dio_new();
	if (f == NULL) {
		imap_reply_internal(cmd, "compress");
		return 0;
	}
	/* The OK goes out uncompressed; everything after it is deflated,
	 * including input the client pipelined after the command. */
	imap_reply_ok(cmd, "DEFLATE active");
	if (imap_io_flush(s) != CONN_OK) {
		f->free(f->ctx);
		return 0;
	}
	s->filter = f;
	return 0;
}
