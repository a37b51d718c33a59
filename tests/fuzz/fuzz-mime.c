/* fuzz-mime.c - libFuzzer target for the MIME parser.
 *
 * Each input is parsed whole and again in pseudo-random chunks (seeded from
 * the input), with default and with tight limits; the results must be
 * identical, the part table must survive pack/unpack, and the decoders and
 * the date parser must not crash on the same bytes. */
#include "buf.h"
#include "mime.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct mime_message *parse_chunks(const uint8_t *d, size_t n, const struct mime_limits *l)
{
	uint32_t seed = 2166136261u;
	for (size_t i = 0; i < n && i < 64; i++)
		seed = (seed ^ d[i]) * 16777619u;
	struct mime_parser *p = mime_parser_new(l);
	size_t i = 0;
	while (i < n) {
		seed = seed * 1103515245u + 12345u;
		size_t c = 1 + (seed >> 16) % 97;
		if (c > n - i)
			c = n - i;
		mime_parser_feed(p, d + i, c);
		i += c;
	}
	return mime_parser_finish(&p);
}

static void same(const char *a, const char *b)
{
	if (strcmp(a, b) != 0) {
		fprintf(stderr, "mismatch:\n%s\n%s\n", a, b);
		abort();
	}
}

static void check(const struct mime_message *a, const struct mime_message *b)
{
	same(a->envelope, b->envelope);
	same(a->body, b->body);
	same(a->bodystructure, b->bodystructure);
	same(a->headers, b->headers);
	same(a->search_text, b->search_text);
	same(a->preview, b->preview);
	if (a->nparts != b->nparts || a->size != b->size || a->truncated != b->truncated ||
	    memcmp(a->parts, b->parts, a->nparts * sizeof(*a->parts)) != 0)
		abort();
	struct buf pk;
	struct mime_part *parts;
	size_t np;
	buf_init(&pk, BUF_NO_LIMIT);
	mime_parts_pack(a->parts, a->nparts, &pk);
	if (mime_parts_unpack(pk.data, pk.len, a->size, &parts, &np) != 0 || np != a->nparts ||
	    memcmp(parts, a->parts, np * sizeof(*parts)) != 0)
		abort();
	for (size_t k = 0; k < np; k++)
		if (mime_part_find(parts, np, parts[k].section) != (int)k)
			abort();
	free(parts);
	buf_free(&pk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_limits lim, tight;
	mime_limits_default(&lim);
	tight = lim;
	tight.max_depth = 4;
	tight.max_parts = 10;
	tight.max_header_bytes = 300;
	tight.max_search_text = 200;
	tight.preview_chars = 20;
	const struct mime_limits *ls[2] = {&lim, &tight};
	for (int k = 0; k < 2; k++) {
		struct mime_message *a = mime_parse(data, size, ls[k]);
		struct mime_message *b = parse_chunks(data, size, ls[k]);
		check(a, b);
		mime_message_free(&a);
		mime_message_free(&b);
	}
	/* The stand-alone decoders on the same bytes. */
	struct buf out;
	buf_init(&out, BUF_NO_LIMIT);
	mime_decode_base64(data, size, &out);
	buf_reset(&out);
	mime_decode_qp(data, size, &out);
	buf_reset(&out);
	mime_decode_header(data, size, &out);
	buf_reset(&out);
	mime_to_utf8(size > 0 && data[0] & 1 ? "shift_jis" : "iso-2022-jp", data, size, &out);
	buf_free(&out);
	char *s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	time_t t;
	mime_parse_date(s, &t);
	struct mime_part *parts;
	size_t np;
	if (mime_parts_unpack(data, size, UINT64_MAX, &parts, &np) == 0)
		free(parts);
	free(s);
	return 0;
}
