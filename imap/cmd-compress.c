/* cmd-compress.c - COMPRESS=DEFLATE (RFC 4978): raw deflate (zlib with
 * windowBits -15) both ways, as an I/O filter between the session and its
 * conn (struct imap_io_filter in imap-private.h).
 *
 * Output is deflated as it is written and pushed out with Z_SYNC_FLUSH on
 * every flush, and before any read that may wait, so the client always has
 * every reply it can act on (RFC 4978 section 4). Input is inflated into a
 * bounded plain-text buffer from which lines and literals are served with
 * the conn's own contracts (limits, CONN_TOO_LONG keeping in step).
 *
 * A session that goes idle (in IDLE, or no command for
 * DEFLATE_IDLE_AFTER_MS) holds almost nothing of this:
 *  - the deflater (~260 KB) is ended. Its history is ours to drop: after a
 *    sync flush (no BFINAL) a fresh raw deflater is a valid continuation
 *    for the client's inflater. The next write starts one. (Ending it at
 *    every flush would cost too much ratio: replies to one command are
 *    much like the replies to the one before.)
 *  - the inflater (~40 KB) is ended if it stands between two blocks,
 *    keeping only its window, packed with a small deflater (command text
 *    packs ~10:1): the client's deflater may still refer back 32 KB. The
 *    next input sets it up again with inflateSetDictionary.
 *  - zlib's scratch space and the empty plain and raw buffers are freed.
 * Idle is when IDLE waits (imap_io_idle, cmd-idle.c), or when a wait for
 * the next command lasts DEFLATE_IDLE_AFTER_MS (dio_wait_command). */
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
/* The client's deflater refers back at most this far (windowBits 15). */
#define DEFLATE_WINDOW 32768
/* zlib's output goes through this much heap (not the stack: a session
 * thread's stack pages stay resident once touched). */
#define DEFLATE_SCRATCH 16384
/* A session waiting this long for its next command is idle. */
#define DEFLATE_IDLE_AFTER_MS 1000
/* Shorter histories are kept as they are. The packer needs no more than a
 * 4 KB window (windowBits 12) and the smallest hash (memLevel 1) for
 * command text: ~25 KB for a moment. */
#define DEFLATE_PACK_MIN   1024
#define DEFLATE_PACK_WBITS (-12)

struct deflate_io {
	struct imap_io_filter filter; /* first: freed with the rest (dio_free) */
	z_stream out, in;
	bool out_live;  /* out is set up; else the next write sets it up */
	bool out_dirty; /* deflated data may be held inside zlib */
	bool in_live;   /* in is set up; else hist holds its window */
	bool in_ended;  /* the client's stream had its final block */
	/* While !in_live: the inflater's window (hist_plain bytes), deflated
	 * when hist_packed. Exact-size malloc'd bytes, not a buf: a buf
	 * rounds 32 KB up to 64. */
	unsigned char *hist;
	size_t hist_len, hist_plain;
	bool hist_packed;
	unsigned char *scratch; /* DEFLATE_SCRATCH bytes while busy, for zlib's output */
	struct buf plain;       /* inflated, not yet consumed */
	struct buf raw;         /* compressed input read from the conn */
	bool broken;
};

static int dio_out_begin(struct deflate_io *d)
{
	if (d->out_live)
		return 0;
	memset(&d->out, 0, sizeof(d->out));
	if (deflateInit2(&d->out, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK)
		return -1;
	d->out_live = true;
	return 0;
}

static void dio_out_end(struct deflate_io *d)
{
	if (!d->out_live)
		return;
	deflateEnd(&d->out);
	d->out_live = false;
}

static void dio_hist_set(struct deflate_io *d, const unsigned char *p, size_t n, bool packed)
{
	free(d->hist);
	d->hist = n > 0 ? xmalloc(n) : NULL;
	if (n > 0)
		memcpy(d->hist, p, n);
	d->hist_len = n;
	d->hist_packed = packed;
}

/* Deflates the kept window in place (once, and only where it pays). */
static void dio_hist_pack(struct deflate_io *d)
{
	if (d->in_live || d->hist_packed || d->hist_len < DEFLATE_PACK_MIN)
		return;
	z_stream z = {0};
	if (deflateInit2(&z, 1, Z_DEFLATED, DEFLATE_PACK_WBITS, 1, Z_DEFAULT_STRATEGY) != Z_OK)
		return;
	size_t cap = deflateBound(&z, (uLong)d->hist_len);
	unsigned char *out = xmalloc(cap);
	z.next_in = d->hist;
	z.avail_in = (uInt)d->hist_len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	int zr = deflate(&z, Z_FINISH);
	size_t n = cap - z.avail_out;
	deflateEnd(&z);
	if (zr == Z_STREAM_END && n < d->hist_len)
		dio_hist_set(d, out, n, true);
	free(out);
}

/* The kept window, unpacked into win (DEFLATE_WINDOW bytes); its length,
 * or -1 if it does not unpack (cannot happen: we packed it). */
static ssize_t dio_hist_get(struct deflate_io *d, unsigned char *win)
{
	if (!d->hist_packed) {
		if (d->hist_len > 0)
			memcpy(win, d->hist, d->hist_len);
		return (ssize_t)d->hist_len;
	}
	z_stream z = {0};
	if (inflateInit2(&z, DEFLATE_PACK_WBITS) != Z_OK)
		return -1;
	z.next_in = d->hist;
	z.avail_in = (uInt)d->hist_len;
	z.next_out = win;
	z.avail_out = DEFLATE_WINDOW;
	int zr = inflate(&z, Z_FINISH);
	size_t n = DEFLATE_WINDOW - z.avail_out;
	inflateEnd(&z);
	return zr == Z_STREAM_END && n == d->hist_plain ? (ssize_t)n : -1;
}

/* Sets the inflater up again where it was released. */
static int dio_in_begin(struct deflate_io *d)
{
	if (d->in_live)
		return 0;
	unsigned char *win = xmalloc(DEFLATE_WINDOW);
	ssize_t n = dio_hist_get(d, win);
	int r = -1;
	memset(&d->in, 0, sizeof(d->in));
	if (n >= 0 && inflateInit2(&d->in, -15) == Z_OK) {
		d->in_live = true;
		if (n == 0 || inflateSetDictionary(&d->in, win, (uInt)n) == Z_OK)
			r = 0;
	}
	free(win);
	dio_hist_set(d, NULL, 0, false);
	d->hist_plain = 0;
	return r;
}

/* Ends the inflater, keeping its window, if nothing is waiting and it
 * stands right between two blocks, on a byte boundary (after the client's
 * sync flush): data_type is then exactly 128 (see inflate() in zlib.h). */
static void dio_in_release(struct deflate_io *d)
{
	if (!d->in_live || d->in_ended || d->raw.len > 0 || d->in.data_type != 128)
		return;
	uInt n = 0;
	if (inflateGetDictionary(&d->in, NULL, &n) != Z_OK || n > DEFLATE_WINDOW)
		return;
	unsigned char *win = xmalloc(DEFLATE_WINDOW);
	if (inflateGetDictionary(&d->in, win, &n) == Z_OK) {
		inflateEnd(&d->in);
		d->in_live = false;
		dio_hist_set(d, win, n, false);
		d->hist_plain = n;
	}
	free(win);
}

/* The session is idle: gives back what its next command can set up again. */
static void dio_idle(struct deflate_io *d)
{
	dio_out_end(d);
	dio_in_release(d);
	dio_hist_pack(d);
	free(d->scratch);
	d->scratch = NULL;
	if (d->plain.len == 0)
		buf_free(&d->plain);
	if (d->raw.len == 0)
		buf_free(&d->raw);
}

static unsigned char *dio_scratch(struct deflate_io *d)
{
	if (d->scratch == NULL)
		d->scratch = xmalloc(DEFLATE_SCRATCH);
	return d->scratch;
}

static enum conn_status dio_deflate(struct deflate_io *d, struct conn *c, const void *p, size_t n,
                                    int mode)
{
	if (dio_out_begin(d) < 0) {
		d->broken = true;
		return CONN_ERROR;
	}
	unsigned char *out = dio_scratch(d);
	d->out.next_in = (unsigned char *)(uintptr_t)p;
	d->out.avail_in = (uInt)n;
	do {
		d->out.next_out = out;
		d->out.avail_out = DEFLATE_SCRATCH;
		int zr = deflate(&d->out, mode);
		if (zr != Z_OK && zr != Z_BUF_ERROR) {
			d->broken = true;
			return CONN_ERROR;
		}
		size_t have = DEFLATE_SCRATCH - d->out.avail_out;
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
		d->out_dirty = true;
	}
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

/* imap_io_idle(): only once everything written is flushed out. */
static void dio_idle_hook(void *ctx)
{
	struct deflate_io *d = ctx;
	if (!d->broken && !d->out_dirty)
		dio_idle(d);
}

/* Corrupt input ends the session; the output stream is still sound, so
 * the client is told why. */
static enum conn_status dio_input_error(struct deflate_io *d, struct conn *c, const char *what)
{
	static const char bye[] = "* BYE [ALERT] Invalid compressed data\r\n";
	log_info("event=imap_compress_error reason=%s", what);
	d->in_ended = true;
	if (!d->broken && dio_write(d, c, bye, sizeof(bye) - 1) == CONN_OK)
		dio_flush(d, c);
	d->broken = true;
	return CONN_ERROR;
}

/* Inflates what is in d->raw into d->plain (up to its bound). Z_BLOCK
 * stops at block boundaries, where data_type tells dio_in_release whether
 * the inflater may be ended. */
static enum conn_status dio_inflate(struct deflate_io *d, struct conn *c)
{
	if (d->in_ended)
		return dio_input_error(d, c, "data_after_end");
	if (dio_in_begin(d) < 0) {
		d->broken = true;
		return CONN_ERROR;
	}
	unsigned char *out = dio_scratch(d);
	d->in.next_in = (unsigned char *)d->raw.data;
	d->in.avail_in = (uInt)d->raw.len;
	int zr = Z_OK;
	while (d->in.avail_in > 0 && d->plain.len + DEFLATE_SCRATCH <= d->plain.max) {
		d->in.next_out = out;
		d->in.avail_out = DEFLATE_SCRATCH;
		zr = inflate(&d->in, Z_BLOCK);
		if (zr != Z_OK && zr != Z_BUF_ERROR && zr != Z_STREAM_END)
			return dio_input_error(d, c, zr == Z_DATA_ERROR ? "corrupt" : "inflate");
		buf_append(&d->plain, out, DEFLATE_SCRATCH - d->in.avail_out);
		if (zr == Z_BUF_ERROR || zr == Z_STREAM_END)
			break;
	}
	buf_consume(&d->raw, d->raw.len - d->in.avail_in);
	/* A final block ends the client's stream: nothing may follow. */
	if (zr == Z_STREAM_END) {
		d->in_ended = true;
		if (d->raw.len > 0)
			return dio_input_error(d, c, "data_after_end");
	}
	return CONN_OK;
}

/* Before a read that waits for a new command: a session that sends none
 * for DEFLATE_IDLE_AFTER_MS is idle (dio_idle), then waits on. */
static enum conn_status dio_wait_command(struct deflate_io *d, struct conn *c)
{
	if ((!d->out_live && !d->in_live) || conn_pending_input(c) > 0)
		return CONN_OK;
	enum conn_status st = conn_wait_input(c, DEFLATE_IDLE_AFTER_MS, -1, NULL);
	if (st == CONN_TIMEOUT) {
		dio_idle(d);
		return CONN_OK;
	}
	return st;
}

/* Makes more plain input available, reading from the conn if needed. */
static enum conn_status dio_fill(struct deflate_io *d, struct conn *c, unsigned flags)
{
	if (d->broken)
		return CONN_ERROR;
	size_t before = d->plain.len;
	if (d->raw.len > 0 && dio_inflate(d, c) != CONN_OK)
		return CONN_ERROR;
	while (d->plain.len == before) {
		if (d->plain.len + DEFLATE_SCRATCH > d->plain.max)
			return CONN_TOO_LONG;
		if (dio_sync(d, c) != CONN_OK)
			return CONN_ERROR;
		enum conn_status st = CONN_OK;
		if ((flags & CONN_NEW_REQUEST) != 0 && d->raw.len == 0)
			st = dio_wait_command(d, c);
		if (st == CONN_OK)
			st = conn_read_some(c, &d->raw, DEFLATE_IN_CHUNK, flags);
		if (st != CONN_OK)
			return st;
		if (dio_inflate(d, c) != CONN_OK)
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
	dio_out_end(d);
	if (d->in_live)
		inflateEnd(&d->in);
	free(d->hist);
	free(d->scratch);
	buf_free(&d->plain);
	buf_free(&d->raw);
	free(d);
}

/* zlib's streams are set up on first use (dio_out_begin, dio_in_begin). */
static struct imap_io_filter *dio_new(void)
{
	struct deflate_io *d = xcalloc(1, sizeof(*d));
	buf_init(&d->plain, DEFLATE_PLAIN_MAX);
	buf_init(&d->raw, BUF_NO_LIMIT);
	d->filter = (struct imap_io_filter){
	    dio_write,         dio_flush,     dio_read_line, dio_read_stream,
	    dio_pending_input, dio_idle_hook, dio_free,      d};
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
	/* The OK goes out uncompressed; everything after it is deflated,
	 * including input the client pipelined after the command. */
	imap_reply_ok(cmd, "DEFLATE active");
	if (imap_io_flush(s) != CONN_OK)
		return 0;
	s->filter = dio_new();
	return 0;
}
