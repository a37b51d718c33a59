/* cmd-fetch.c - FETCH and UID FETCH (RFC 3501 6.4.5, RFC 9051 6.4.5, RFC
 * 3516 BINARY, RFC 7162 CHANGEDSINCE/VANISHED, RFC 8970 PREVIEW).
 *
 * Items that live in the view (FLAGS, UID, MODSEQ, INTERNALDATE,
 * RFC822.SIZE) need no database at all, so `UID FETCH 1:* (UID FLAGS)` is
 * a walk over memory. Everything else is read in batches: one query for
 * the metadata (and, when asked, the top-level header bytes) of up to
 * FETCH_BATCH messages, then body sections as slices of the blob, streamed
 * FETCH_SLICE bytes at a time. Nothing is re-parsed (DESIGN.md). */
#include "imap-fetch.h"
#include "imap-private.h"
#include "log.h"

#include "strnum.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

/* Messages per metadata query, and bytes per blob read. */
#define FETCH_BATCH 100
#define FETCH_SLICE (256 * 1024)
/* Responses are gathered up to this before they are written. */
#define FETCH_OUT_CHUNK ((size_t)64 * 1024)
/* Decoded BINARY content up to this is kept from the sizing pass. */
#define FETCH_BINARY_KEEP (4 * 1024 * 1024)

struct fetch_meta {
	int64_t id;
	uint64_t size;
	char *envelope, *body, *bodystructure, *preview;
	struct mime_part *parts;
	size_t nparts;
	unsigned char *header; /* top-level header bytes (PQfreemem) or NULL */
	size_t header_len;
};

struct fetch_run {
	struct imap_cmd *cmd;
	struct imap_session *s;
	struct fetch_request *req;
	PGconn *conn;
	struct fetch_meta *metas;
	size_t nmetas;
	const char *fail_code; /* set when the command must end in NO */
	bool unavailable;      /* no connection came back from the pool */
	/* Output not yet written: the items served from the view are built
	 * here, so `FETCH 1:* (FLAGS)` costs a few appends per message and
	 * one write per FETCH_OUT_CHUNK, not several writes and printfs. */
	struct buf out;
};

/* ---- arguments ---- */

/* RFC 8970: PREVIEW may be followed by " (LAZY)"; our preview is always
 * at hand, so LAZY changes nothing. Called after a space was consumed:
 * *more_r tells whether another attribute follows. */
static int fetch_preview_mods(struct imap_cmd *cmd, bool *more_r)
{
	*more_r = true;
	if (!imap_arg_peek(cmd, '('))
		return 0;
	if (imap_arg_list_begin(cmd) < 0)
		return -1;
	do {
		const char *mod;
		if (imap_arg_atom(cmd, &mod) < 0)
			return -1;
		if (strcasecmp(mod, "LAZY") != 0) {
			cmd->error = "Unknown PREVIEW modifier";
			return -1;
		}
	} while (imap_arg_skip(cmd, ' '));
	if (imap_arg_list_end(cmd) < 0)
		return -1;
	*more_r = imap_arg_skip(cmd, ' ');
	return 0;
}

/* One attribute; *more_r: a space followed (inside a list). */
static int fetch_parse_one(struct imap_cmd *cmd, struct fetch_request *req, bool in_list,
                           bool *more_r)
{
	const char *word, *error = NULL;
	if (imap_arg_word(cmd, &word) < 0)
		return -1;
	if (imap_fetch_parse_att(cmd->arena, word, req, &error) < 0) {
		cmd->error = error;
		return -1;
	}
	bool preview = strcasecmp(word, "PREVIEW") == 0;
	/* Alone, "PREVIEW (LAZY)" keeps its modifier (RFC 8970's grammar);
	 * any other list after it is the FETCH modifiers. */
	if (!in_list) {
		if (preview)
			(void)imap_arg_skip_text(cmd, " (LAZY)");
		*more_r = false;
		return 0;
	}
	*more_r = imap_arg_skip(cmd, ' ');
	if (*more_r && preview)
		return fetch_preview_mods(cmd, more_r);
	return 0;
}

static int fetch_parse_atts(struct imap_cmd *cmd, struct fetch_request *req)
{
	bool more;
	if (!imap_arg_peek(cmd, '('))
		return fetch_parse_one(cmd, req, false, &more);
	if (imap_arg_list_begin(cmd) < 0)
		return -1;
	do {
		if (fetch_parse_one(cmd, req, true, &more) < 0)
			return -1;
	} while (more);
	return imap_arg_list_end(cmd);
}

/* " (CHANGEDSINCE n [VANISHED])" (RFC 7162 3.1.4, 3.2.6). */
static int fetch_parse_modifiers(struct imap_cmd *cmd, struct fetch_request *req)
{
	if (imap_arg_at_end(cmd))
		return 0;
	if (imap_arg_sp(cmd) < 0 || imap_arg_list_begin(cmd) < 0)
		return -1;
	do {
		const char *name;
		if (imap_arg_atom(cmd, &name) < 0)
			return -1;
		if (strcasecmp(name, "CHANGEDSINCE") == 0) {
			if (imap_arg_sp(cmd) < 0 || imap_arg_number64(cmd, &req->changedsince) < 0)
				return -1;
			if (req->changedsince == 0) {
				cmd->error = "CHANGEDSINCE must be positive";
				return -1;
			}
		} else if (strcasecmp(name, "VANISHED") == 0 && cmd->uid &&
		           (cmd->s->enabled & IMAP_EXT_QRESYNC)) {
			req->vanished = true;
		} else {
			cmd->error = "Unknown FETCH modifier";
			return -1;
		}
	} while (imap_arg_skip(cmd, ' '));
	if (imap_arg_list_end(cmd) < 0)
		return -1;
	if (req->vanished && req->changedsince == 0) {
		cmd->error = "VANISHED needs CHANGEDSINCE";
		return -1;
	}
	return 0;
}

static bool fetch_has(const struct fetch_request *req, enum fetch_item_type t)
{
	for (size_t i = 0; i < req->n; i++)
		if (req->items[i].type == t)
			return true;
	return false;
}

/* UID FETCH answers with UID first; CHANGEDSINCE implies MODSEQ. */
static void fetch_implicit_items(struct imap_cmd *cmd, struct fetch_request *req)
{
	if (cmd->uid && !fetch_has(req, FI_UID) && req->n < FETCH_MAX_ITEMS) {
		memmove(&req->items[1], &req->items[0], req->n * sizeof(req->items[0]));
		memset(&req->items[0], 0, sizeof(req->items[0]));
		req->items[0].type = FI_UID;
		req->items[0].name = "UID";
		req->items[0].part = "";
		req->n++;
	}
	if (req->changedsince > 0 && !fetch_has(req, FI_MODSEQ) && req->n < FETCH_MAX_ITEMS) {
		struct fetch_item *it = &req->items[req->n++];
		memset(it, 0, sizeof(*it));
		it->type = FI_MODSEQ;
		it->name = "MODSEQ";
		it->part = "";
	}
	if (req->changedsince > 0 || fetch_has(req, FI_MODSEQ))
		cmd->s->enabled |= IMAP_EXT_CONDSTORE;
}

/* ---- metadata in batches ---- */

static void fetch_metas_free(struct fetch_run *r)
{
	for (size_t i = 0; i < r->nmetas; i++) {
		struct fetch_meta *m = &r->metas[i];
		free(m->envelope);
		free(m->body);
		free(m->bodystructure);
		free(m->preview);
		free(m->parts);
		if (m->header != NULL)
			PQfreemem(m->header);
	}
	free(r->metas);
	r->metas = NULL;
	r->nmetas = 0;
}

static int fetch_meta_row(PGresult *res, int row, struct fetch_meta *m)
{
	uint64_t id;
	if (str_to_u64(PQgetvalue(res, row, 0), INT64_MAX, &id) < 0 ||
	    str_to_u64(PQgetvalue(res, row, 1), INT64_MAX, &m->size) < 0)
		return -1;
	m->id = (int64_t)id;
	m->envelope = xstrdup(PQgetvalue(res, row, 2));
	m->body = xstrdup(PQgetvalue(res, row, 3));
	m->bodystructure = xstrdup(PQgetvalue(res, row, 4));
	m->preview = xstrdup(PQgetvalue(res, row, 6));
	size_t plen = 0;
	unsigned char *packed =
	    PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, 5), &plen);
	int ret =
	    packed == NULL ? -1 : mime_parts_unpack(packed, plen, m->size, &m->parts, &m->nparts);
	PQfreemem(packed);
	if (!PQgetisnull(res, row, 7))
		m->header =
		    PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, 7), &m->header_len);
	return ret;
}

static const char sql_meta[] =
    "SELECT m.id, m.size, m.envelope, m.body, m.bodystructure, m.parts, m.preview, NULL::bytea "
    "FROM messages m WHERE m.id = ANY($1::bigint[])";
static const char sql_meta_header[] =
    "SELECT m.id, m.size, m.envelope, m.body, m.bodystructure, m.parts, m.preview, "
    "substring(b.data FROM 1 FOR m.header_size::integer) "
    "FROM messages m JOIN blobs b ON b.sha256 = m.sha256 WHERE m.id = ANY($1::bigint[])";

/* The run's connection for its next statement: writing to a slow client
 * may have given it back to the pool (imap_db_lend()). NULL if none came
 * in time. */
static PGconn *fetch_db(struct fetch_run *r)
{
	if (imap_db_again(r->s, &r->conn) == NULL)
		r->unavailable = true;
	return r->conn;
}

static int fetch_read(struct fetch_run *r, int64_t msg_id, uint64_t start, uint64_t len,
                      struct buf *out)
{
	PGconn *db = fetch_db(r);
	return db != NULL && store_message_read(db, msg_id, start, len, out) == STORE_OK ? 0 : -1;
}

/* A literal whose size went out cannot be finished: the session ends, as
 * any other answer would be read as the literal's bytes. */
static void fetch_literal_broken(struct fetch_run *r)
{
	log_warn("event=imap_fetch_literal_cut");
	conn_shutdown_force(r->s->c);
}

/* One query for the metadata of the messages at idx[0..n). */
static int fetch_load_metas(struct fetch_run *r, const size_t *idx, size_t n)
{
	fetch_metas_free(r);
	PGconn *db = fetch_db(r);
	if (db == NULL)
		return -1;
	struct buf ids;
	buf_init(&ids, BUF_NO_LIMIT);
	buf_append_char(&ids, '{');
	for (size_t i = 0; i < n; i++)
		buf_printf(&ids, i == 0 ? "%lld" : ",%lld",
		           (long long)r->s->view.entries[idx[i]].message_id);
	buf_append_char(&ids, '}');
	const char *params[1] = {buf_cstr(&ids)};
	PGresult *res = db_exec(db, r->req->need_header ? sql_meta_header : sql_meta, 1, params);
	buf_free(&ids);
	if (res == NULL)
		return -1;
	int rows = PQntuples(res), ret = 0;
	r->metas = xcalloc((size_t)rows + 1, sizeof(*r->metas));
	for (int i = 0; i < rows && ret == 0; i++, r->nmetas++)
		ret = fetch_meta_row(res, i, &r->metas[i]);
	PQclear(res);
	return ret;
}

static const struct fetch_meta *fetch_meta_find(const struct fetch_run *r, int64_t id)
{
	for (size_t i = 0; i < r->nmetas; i++)
		if (r->metas[i].id == id)
			return &r->metas[i];
	return NULL;
}

/* ---- implicit \Seen ---- */

/* Sets \Seen on the messages of the batch that lack it; *changed_r[i]
 * tells which ones changed (they get FLAGS in their response). */
static int fetch_set_seen(struct fetch_run *r, const size_t *idx, size_t n, bool *changed)
{
	uint32_t *uids = xcalloc(n + 1, sizeof(*uids));
	size_t nu = 0;
	for (size_t i = 0; i < n; i++)
		if (!(r->s->view.entries[idx[i]].flags & STORE_FLAG_SEEN))
			uids[nu++] = r->s->view.entries[idx[i]].uid;
	int ret = 0;
	PGconn *db = NULL;
	if (nu > 0 && (db = fetch_db(r)) == NULL) {
		ret = -1;
	} else if (nu > 0) {
		struct store_flag_change *ch = NULL;
		size_t nch = 0, nfailed = 0;
		uint32_t *failed = NULL;
		enum store_err e =
		    store_flags_change(db, r->s->view.mailbox_id, uids, nu, STORE_FLAGS_ADD,
		                       STORE_FLAG_SEEN, NULL, 0, &ch, &nch, &failed, &nfailed);
		if (e == STORE_OK) {
			imap_view_apply_changes(r->s, ch, nch);
			for (size_t i = 0; i < n; i++)
				for (size_t j = 0; j < nu; j++)
					if (r->s->view.entries[idx[i]].uid == uids[j])
						changed[i] = true;
		} else {
			ret = -1;
		}
		store_flag_changes_free(&ch, nch);
		free(failed);
	}
	free(uids);
	return ret;
}

/* ---- writing items ---- */

static void fetch_write_literal_head(struct imap_session *s, uint64_t len, bool binary)
{
	imap_printf(s, "%s{%llu}\r\n", binary ? "~" : "", (unsigned long long)len);
}

/* Streams [start, start+len) of the blob as a literal. */
static int fetch_stream(struct fetch_run *r, int64_t msg_id, uint64_t start, uint64_t len)
{
	fetch_write_literal_head(r->s, len, false);
	struct buf chunk;
	buf_init(&chunk, FETCH_SLICE);
	int ret = 0;
	while (len > 0 && ret == 0) {
		uint64_t n = len < FETCH_SLICE ? len : FETCH_SLICE;
		buf_reset(&chunk);
		if (fetch_read(r, msg_id, start, n, &chunk) < 0 || chunk.len != n) {
			fetch_literal_broken(r);
			ret = -1;
			break;
		}
		imap_write(r->s, chunk.data, chunk.len);
		start += n;
		len -= n;
	}
	buf_free(&chunk);
	return ret;
}

/* Applies <origin.length> to [*start, *start+*len). */
static void fetch_clip(const struct fetch_item *it, uint64_t *start, uint64_t *len)
{
	if (!it->partial)
		return;
	if (it->origin >= *len) {
		*start += *len;
		*len = 0;
		return;
	}
	*start += it->origin;
	*len -= it->origin;
	if (*len > it->length)
		*len = it->length;
}

static void fetch_write_bytes(struct fetch_run *r, const struct fetch_item *it, const char *p,
                              size_t len, bool binary)
{
	uint64_t start = 0, n = len;
	fetch_clip(it, &start, &n);
	bool nul = binary && memchr(p + start, '\0', n) != NULL;
	fetch_write_literal_head(r->s, n, nul);
	imap_write(r->s, p + start, n);
}

static int fetch_header_fields(struct fetch_run *r, const struct fetch_meta *m,
                               const struct fetch_item *it, uint64_t start, uint64_t len)
{
	struct buf raw, out;
	buf_init(&raw, BUF_NO_LIMIT);
	buf_init(&out, BUF_NO_LIMIT);
	int ret = 0;
	if (it->part[0] == '\0' && m->header != NULL)
		buf_append(&raw, m->header, m->header_len);
	else if (fetch_read(r, m->id, start, len, &raw) < 0)
		ret = -1;
	if (ret == 0) {
		if (it->spec == FS_HEADER)
			buf_append(&out, raw.data == NULL ? "" : raw.data, raw.len);
		else
			imap_fetch_header_fields(raw.data == NULL ? "" : raw.data, raw.len,
			                         it->fields, it->spec == FS_HEADER_FIELDS_NOT,
			                         &out);
		fetch_write_bytes(r, it, out.data == NULL ? "" : out.data, out.len, false);
	}
	buf_free(&raw);
	buf_free(&out);
	return ret;
}

static int fetch_section(struct fetch_run *r, const struct fetch_meta *m,
                         const struct fetch_item *it)
{
	uint64_t start, len;
	if (imap_fetch_section_range(m->parts, m->nparts, it, &start, &len) < 0) {
		imap_write_str(r->s, "NIL");
		return 0;
	}
	if (it->spec == FS_HEADER_FIELDS || it->spec == FS_HEADER_FIELDS_NOT ||
	    (it->spec == FS_HEADER && it->part[0] == '\0' && m->header != NULL))
		return fetch_header_fields(r, m, it, start, len);
	fetch_clip(it, &start, &len);
	return fetch_stream(r, m->id, start, len);
}

/* ---- BINARY (RFC 3516) ---- */

/* The part BINARY decodes, and its encoding (identity for the whole
 * message, multiparts and messages). -1 if there is no such part. */
static int fetch_binary_part(const struct fetch_meta *m, const struct fetch_item *it,
                             uint64_t *start_r, uint64_t *len_r, enum mime_encoding *enc_r)
{
	if (imap_fetch_section_range(m->parts, m->nparts, it, start_r, len_r) < 0)
		return -1;
	int i = mime_part_find(m->parts, m->nparts, it->part);
	const struct mime_part *p = &m->parts[i];
	bool leaf = it->part[0] != '\0' && !(p->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE));
	*enc_r = leaf ? p->encoding : MIME_ENC_BINARY;
	return 0;
}

struct binary_sink {
	struct imap_session *s;
	uint64_t pos, from, to; /* decoded offset; window [from, to) to write */
	struct buf keep;        /* the first pass's output while it fits */
	bool kept_all;
	bool nul;
};

/* Decodes the encoded range slice by slice; each decoded chunk goes to
 * the sink (write: the window of it goes to the client). */
static int fetch_binary_pass(struct fetch_run *r, int64_t msg_id, uint64_t start, uint64_t len,
                             enum mime_encoding enc, struct binary_sink *bs, bool write)
{
	struct fetch_decoder d;
	imap_fetch_decoder_init(&d, enc);
	struct buf chunk, out;
	buf_init(&chunk, FETCH_SLICE);
	buf_init(&out, BUF_NO_LIMIT);
	int ret = 0;
	for (bool last = false; !last && ret == 0;) {
		uint64_t n = len < FETCH_SLICE ? len : FETCH_SLICE;
		buf_reset(&chunk);
		buf_reset(&out);
		if (n > 0 && fetch_read(r, msg_id, start, n, &chunk) < 0)
			ret = -1;
		start += n, len -= n;
		last = len == 0 || ret < 0;
		if (ret < 0) {
			if (write)
				fetch_literal_broken(r);
			break;
		}
		imap_fetch_decoder_feed(&d, chunk.data == NULL ? "" : chunk.data, chunk.len, &out);
		if (last)
			imap_fetch_decoder_finish(&d, &out);
		if (write) {
			uint64_t lo = bs->pos, hi = bs->pos + out.len;
			uint64_t a = lo > bs->from ? lo : bs->from, b = hi < bs->to ? hi : bs->to;
			if (a < b)
				imap_write(bs->s, out.data + (a - lo), b - a);
		} else {
			if (out.len > 0 && memchr(out.data, '\0', out.len) != NULL)
				bs->nul = true;
			if (bs->kept_all && bs->keep.len + out.len <= FETCH_BINARY_KEEP)
				buf_append(&bs->keep, out.data == NULL ? "" : out.data, out.len);
			else
				bs->kept_all = false;
		}
		bs->pos += out.len;
	}
	if (ret < 0)
		imap_fetch_decoder_finish(&d, &out); /* frees its carry */
	buf_free(&chunk);
	buf_free(&out);
	return ret;
}

/* BINARY[...] and BINARY.SIZE[...]: a sizing pass (keeping the decoded
 * bytes when they are few), then the literal. */
static int fetch_binary(struct fetch_run *r, const struct fetch_meta *m,
                        const struct fetch_item *it)
{
	uint64_t start, len;
	enum mime_encoding enc;
	if (fetch_binary_part(m, it, &start, &len, &enc) < 0) {
		imap_write_str(r->s, "NIL");
		return 0;
	}
	struct binary_sink bs = {.s = r->s, .kept_all = true};
	buf_init(&bs.keep, BUF_NO_LIMIT);
	int ret = fetch_binary_pass(r, m->id, start, len, enc, &bs, false);
	uint64_t total = bs.pos;
	if (ret == 0 && it->type == FI_BINARY_SIZE) {
		imap_printf(r->s, "%llu", (unsigned long long)total);
	} else if (ret == 0 && bs.kept_all) {
		fetch_write_bytes(r, it, bs.keep.data == NULL ? "" : bs.keep.data, bs.keep.len,
		                  true);
	} else if (ret == 0) {
		uint64_t from = 0, n = total;
		fetch_clip(it, &from, &n);
		fetch_write_literal_head(r->s, n, bs.nul);
		struct binary_sink w = {.s = r->s, .from = from, .to = from + n};
		ret = fetch_binary_pass(r, m->id, start, len, enc, &w, true);
	}
	buf_free(&bs.keep);
	return ret;
}

/* A BINARY item on a part whose encoding we do not know ends the command
 * with NO [UNKNOWN-CTE] before anything of the message is written. */
static bool fetch_unknown_cte(const struct fetch_request *req, const struct fetch_meta *m)
{
	for (size_t i = 0; i < req->n; i++) {
		const struct fetch_item *it = &req->items[i];
		uint64_t start, len;
		enum mime_encoding enc;
		if ((it->type == FI_BINARY || it->type == FI_BINARY_SIZE) &&
		    fetch_binary_part(m, it, &start, &len, &enc) == 0 && enc == MIME_ENC_OTHER)
			return true;
	}
	return false;
}

static void fetch_out_flush(struct fetch_run *r)
{
	if (r->out.len > 0)
		imap_write(r->s, r->out.data, r->out.len);
	buf_reset(&r->out);
}

static void fetch_append_flags(struct fetch_run *r, const struct store_entry *e)
{
	buf_append_str(&r->out, "FLAGS ");
	imap_view_flags_format(r->s, e, &r->out);
}

static void fetch_append_modseq(struct fetch_run *r, const struct store_entry *e)
{
	buf_append_str(&r->out, "MODSEQ (");
	imap_append_number(&r->out, e->modseq);
	buf_append_char(&r->out, ')');
}

/* The items the view holds, appended to r->out; false for the others. */
static bool fetch_item_from_view(struct fetch_run *r, const struct store_entry *e,
                                 const struct fetch_item *it)
{
	char date[32];
	switch (it->type) {
	case FI_FLAGS:
		fetch_append_flags(r, e);
		return true;
	case FI_UID:
		buf_append_str(&r->out, "UID ");
		imap_append_number(&r->out, e->uid);
		return true;
	case FI_MODSEQ:
		fetch_append_modseq(r, e);
		return true;
	case FI_INTERNALDATE:
		imap_fetch_format_date((int64_t)e->internaldate, date);
		buf_append_str(&r->out, "INTERNALDATE \"");
		buf_append_str(&r->out, date);
		buf_append_char(&r->out, '"');
		return true;
	case FI_RFC822_SIZE:
		buf_append_str(&r->out, "RFC822.SIZE ");
		imap_append_number(&r->out, e->size);
		return true;
	default:
		return false;
	}
}

/* An item read from the message (written directly: it may be streamed). */
static int fetch_item(struct fetch_run *r, const struct fetch_meta *m, const struct fetch_item *it)
{
	struct imap_session *s = r->s;
	if (m == NULL) /* the message row vanished (garbage collected): say so */
		return -1;
	switch (it->type) {
	case FI_ENVELOPE:
		imap_printf(s, "ENVELOPE %s", m->envelope);
		return 0;
	case FI_BODY:
		imap_printf(s, "BODY %s", m->body);
		return 0;
	case FI_BODYSTRUCTURE:
		imap_printf(s, "BODYSTRUCTURE %s", m->bodystructure);
		return 0;
	case FI_PREVIEW:
		imap_write_str(s, "PREVIEW ");
		imap_write_string(s, m->preview, strlen(m->preview));
		return 0;
	case FI_SECTION:
		imap_printf(s, "%s ", it->name);
		return fetch_section(r, m, it);
	default:
		imap_printf(s, "%s ", it->name);
		return fetch_binary(r, m, it);
	}
}

/* "* MSN FETCH (...)" for view index i. */
static int fetch_one(struct fetch_run *r, size_t i, bool seen_changed)
{
	struct imap_session *s = r->s;
	const struct store_entry *e = &s->view.entries[i];
	const struct fetch_meta *m = r->req->need_meta ? fetch_meta_find(r, e->message_id) : NULL;
	if (m != NULL && fetch_unknown_cte(r->req, m)) {
		r->fail_code = "UNKNOWN-CTE";
		return -1;
	}
	buf_append_str(&r->out, "* ");
	imap_append_number(&r->out, i + 1);
	buf_append_str(&r->out, " FETCH (");
	bool flags_sent = false, modseq_sent = false;
	for (size_t k = 0; k < r->req->n; k++) {
		const struct fetch_item *it = &r->req->items[k];
		if (k > 0)
			buf_append_char(&r->out, ' ');
		if (!fetch_item_from_view(r, e, it)) {
			fetch_out_flush(r);
			if (fetch_item(r, m, it) < 0)
				return -1;
		}
		flags_sent |= it->type == FI_FLAGS;
		modseq_sent |= it->type == FI_MODSEQ;
	}
	if (seen_changed && !flags_sent) {
		buf_append_char(&r->out, ' ');
		fetch_append_flags(r, e);
	}
	if (seen_changed && !modseq_sent && (s->enabled & IMAP_EXT_CONDSTORE)) {
		buf_append_char(&r->out, ' ');
		fetch_append_modseq(r, e);
	}
	buf_append_str(&r->out, ")\r\n");
	if (r->out.len >= FETCH_OUT_CHUNK)
		fetch_out_flush(r);
	return 0;
}

static int fetch_batch(struct fetch_run *r, const size_t *idx, size_t n)
{
	bool *changed = xcalloc(n + 1, sizeof(*changed));
	int ret = 0;
	fetch_out_flush(r); /* keeps the order if \Seen announces anything */
	if (r->req->sets_seen && !r->s->view.readonly)
		ret = fetch_set_seen(r, idx, n, changed);
	if (ret == 0 && r->req->need_meta)
		ret = fetch_load_metas(r, idx, n);
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = fetch_one(r, idx[i], changed[i]);
	free(changed);
	fetch_metas_free(r);
	return ret;
}

/* ---- VANISHED (EARLIER) ---- */

static int fetch_vanished(struct fetch_run *r, const struct imap_seqset *set)
{
	uint32_t *uids = NULL;
	size_t n = 0;
	PGconn *db = fetch_db(r);
	if (db == NULL || store_expunged_since(db, r->s->view.mailbox_id, r->req->changedsince,
	                                       &uids, &n) != STORE_OK)
		return -1;
	uint32_t star = r->s->view.uidnext > 0 ? r->s->view.uidnext - 1 : 0;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (set->saved || imap_seqset_contains(set, uids[i], star))
			uids[k++] = uids[i];
	if (k > 0) {
		struct buf b;
		buf_init(&b, BUF_NO_LIMIT);
		imap_uidset_format(uids, k, &b);
		imap_untagged(r->s, "VANISHED (EARLIER) %s", buf_cstr(&b));
		buf_free(&b);
	}
	free(uids);
	return 0;
}

/* ---- the command ---- */

static int fetch_parse(struct imap_cmd *cmd, struct imap_seqset *set, struct fetch_request *req)
{
	if (imap_arg_sp(cmd) < 0 || imap_arg_seqset(cmd, set) < 0 || imap_arg_sp(cmd) < 0 ||
	    fetch_parse_atts(cmd, req) < 0 || fetch_parse_modifiers(cmd, req) < 0 ||
	    imap_arg_end(cmd) < 0)
		return -1;
	fetch_implicit_items(cmd, req);
	return 0;
}

/* Keeps the indexes whose MODSEQ is past CHANGEDSINCE. */
static size_t fetch_filter_changed(const struct imap_session *s, uint64_t since, size_t *idx,
                                   size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (s->view.entries[idx[i]].modseq > since)
			idx[k++] = idx[i];
	return k;
}

static int fetch_run(struct fetch_run *r, const struct imap_seqset *set, size_t *idx, size_t n)
{
	bool db =
	    r->req->need_meta || r->req->vanished || (r->req->sets_seen && !r->s->view.readonly);
	if (db && (r->conn = imap_db_borrow(r->cmd)) == NULL)
		return 1; /* replied */
	if (db)
		imap_db_lend(r->s, &r->conn);
	int ret = 0;
	if (r->req->vanished)
		ret = fetch_vanished(r, set);
	size_t batch = r->req->need_meta ? FETCH_BATCH : (n > 0 ? n : 1);
	buf_init(&r->out, BUF_NO_LIMIT);
	for (size_t i = 0; i < n && ret == 0; i += batch)
		ret = fetch_batch(r, idx + i, n - i < batch ? n - i : batch);
	/* What was built goes out before the tagged reply, also after a
	 * failure (complete responses stay complete). */
	fetch_out_flush(r);
	buf_free(&r->out);
	imap_db_return(r->s, &r->conn);
	return ret;
}

int imap_cmd_fetch(struct imap_cmd *cmd)
{
	struct imap_seqset set;
	struct fetch_request *req = arena_alloc(cmd->arena, sizeof(*req));
	if (fetch_parse(cmd, &set, req) < 0)
		return -1;
	size_t *idx = NULL, n = 0;
	if (imap_view_resolve(cmd, &set, cmd->uid, &idx, &n) < 0)
		return -1;
	if (req->changedsince > 0)
		n = fetch_filter_changed(cmd->s, req->changedsince, idx, n);
	struct fetch_run r = {.cmd = cmd, .s = cmd->s, .req = req};
	int ret = fetch_run(&r, &set, idx, n);
	free(idx);
	if (ret > 0)
		return 0;
	if (ret < 0 && r.unavailable)
		imap_reply_no(cmd, "%s", IMAP_DB_UNAVAILABLE);
	else if (ret < 0 && r.fail_code != NULL)
		imap_reply_no(cmd, "[%s] Unknown content transfer encoding", r.fail_code);
	else if (ret < 0)
		imap_reply_internal(cmd, "fetch");
	else
		imap_reply_ok(cmd, "%s completed", cmd->name);
	return 0;
}
