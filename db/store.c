/* store.c - incoming messages: hashed (SHA-256) and parsed (MIME) in the
 * same pass as the bytes arrive, kept in one bounded buffer for delivery
 * (store-deliver.c). */
#include "store-private.h"

#include "log.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

struct store_incoming *store_incoming_new(uint64_t max_size, const struct mime_limits *limits)
{
	struct store_incoming *in = xcalloc(1, sizeof(*in));
	struct mime_limits lim;
	if (limits != NULL)
		lim = *limits;
	else
		mime_limits_default(&lim);
	/* The indexer takes the search text from the stored blob later
	 * (db/indexer.h): delivery has no use for it. */
	lim.max_search_text = 0;
	limits = &lim;
	in->sha = EVP_MD_CTX_new();
	if (in->sha == NULL || EVP_DigestInit_ex(in->sha, EVP_sha256(), NULL) != 1)
		fatal("event=sha256_init_failed");
	buf_init(&in->data, max_size > BUF_NO_LIMIT ? BUF_NO_LIMIT : (size_t)max_size);
	in->parser = mime_parser_new(limits);
	return in;
}

/* Past the limit the message is unusable: drop what we hold at once. */
static void incoming_overflow(struct store_incoming *in)
{
	in->too_big = true;
	buf_free(&in->data);
	struct mime_message *m = mime_parser_finish(&in->parser);
	mime_message_free(&m);
}

int store_incoming_write(struct store_incoming *in, const void *data, size_t len)
{
	in->offered += len;
	if (in->too_big || in->finished)
		return -1;
	if (buf_append(&in->data, data, len) < 0) {
		incoming_overflow(in);
		return -1;
	}
	if (EVP_DigestUpdate(in->sha, data, len) != 1)
		fatal("event=sha256_update_failed");
	mime_parser_feed(in->parser, data, len);
	return 0;
}

uint64_t store_incoming_size(const struct store_incoming *in)
{
	return in->offered;
}

bool store_incoming_too_big(const struct store_incoming *in)
{
	return in->too_big;
}

void store_incoming_finish(struct store_incoming *in)
{
	if (in->finished)
		return;
	in->finished = true;
	unsigned int dlen = 0;
	if (EVP_DigestFinal_ex(in->sha, in->digest, &dlen) != 1 || dlen != 32)
		fatal("event=sha256_final_failed");
	static const char hexdig[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		in->hex[2 * i] = hexdig[in->digest[i] >> 4];
		in->hex[2 * i + 1] = hexdig[in->digest[i] & 15];
	}
	in->hex[64] = '\0';
	if (in->parser != NULL)
		in->parsed = mime_parser_finish(&in->parser);
}

const char *store_incoming_sha256_hex(const struct store_incoming *in)
{
	return in->hex;
}

const struct mime_message *store_incoming_parsed(const struct store_incoming *in)
{
	return in->parsed;
}

void store_incoming_free(struct store_incoming **inp)
{
	struct store_incoming *in = *inp;
	if (in == NULL)
		return;
	EVP_MD_CTX_free(in->sha);
	buf_free(&in->data);
	if (in->parser != NULL) {
		struct mime_message *m = mime_parser_finish(&in->parser);
		mime_message_free(&m);
	}
	mime_message_free(&in->parsed);
	free(in);
	*inp = NULL;
}
