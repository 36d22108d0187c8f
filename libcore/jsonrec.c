/*
 * jsonrec.c: one record as one JSON line, the form mq-consume -J writes
 * and mq-produce --json reads, so that the one round-trips through the
 * other:
 *
 *   {"topic":"logs","partition":0,"offset":42,"timestamp":1763769600000,
 *    "key":"host1","value":"GET /","headers":{"trace":"abc"}}
 *
 * Keys, values and header values are JSON strings when they are valid
 * UTF-8, {"base64":"..."} otherwise, and null when null.  Reading uses
 * jansson; writing is done here, straight into a buffer, because it is
 * on the consumer's hot path.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "mq.h"

/* Length of the valid UTF-8 prefix (RFC 3629: no surrogates, no
 * overlongs, at most U+10FFFF). */
static size_t utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		size_t k;
		uint32_t cp;
		if (c < 0x80) { i++; continue; }
		if (c >= 0xc2 && c <= 0xdf) { k = 1; cp = c & 0x1f; }
		else if (c >= 0xe0 && c <= 0xef) { k = 2; cp = c & 0x0f; }
		else if (c >= 0xf0 && c <= 0xf4) { k = 3; cp = c & 0x07; }
		else return i;
		for (size_t j = 1; j <= k; j++) {
			if (i + j >= n || (s[i + j] & 0xc0) != 0x80)
				return i;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return i;
		i += k + 1;
	}
	return i;
}

static int put(struct mq_buf *b, const char *s, size_t n)
{
	return mq_buf_append(b, s, n);
}

int mq_json_bytes(struct mq_buf *b, const uint8_t *s, int32_t n)
{
	static const char hex[] = "0123456789abcdef";

	if (n < 0)
		return put(b, "null", 4);
	if (utf8_valid(s, (size_t)n) != (size_t)n) {
		if (mq_buf_reserve(b, 16 + ((size_t)n + 2) / 3 * 4) < 0)
			return -1;
		put(b, "{\"base64\":\"", 11);
		b->len += mq_base64_encode(s, (size_t)n, (char *)b->p + b->len);
		return put(b, "\"}", 2);
	}
	if (mq_buf_reserve(b, (size_t)n * 6 + 2) < 0)
		return -1;
	char *o = (char *)b->p + b->len;
	*o++ = '"';
	for (int32_t i = 0; i < n; i++) {
		uint8_t c = s[i];
		if (c == '"' || c == '\\') {
			*o++ = '\\';
			*o++ = (char)c;
		} else if (c >= 0x20) {
			*o++ = (char)c;
		} else if (c == '\n') {
			*o++ = '\\'; *o++ = 'n';
		} else if (c == '\t') {
			*o++ = '\\'; *o++ = 't';
		} else if (c == '\r') {
			*o++ = '\\'; *o++ = 'r';
		} else {
			memcpy(o, "\\u00", 4);
			o[4] = hex[c >> 4];
			o[5] = hex[c & 15];
			o += 6;
		}
	}
	*o++ = '"';
	b->len = (size_t)(o - (char *)b->p);
	return 0;
}

int mq_json_record_write(struct mq_buf *b, const char *topic, int32_t partition,
			 const struct mq_record *r)
{
	char num[96];
	struct mq_header h;
	size_t pos = 0;
	int first = 1, rc;

	put(b, "{\"topic\":", 9);
	mq_json_bytes(b, (const uint8_t *)topic, (int32_t)strlen(topic));
	put(b, num, (size_t)snprintf(num, sizeof num, ",\"partition\":%d,\"offset\":%lld,\"timestamp\":%lld",
				     partition, (long long)r->offset, (long long)r->timestamp));
	put(b, ",\"key\":", 7);
	mq_json_bytes(b, r->key, r->key_len);
	put(b, ",\"value\":", 9);
	mq_json_bytes(b, r->value, r->value_len);
	put(b, ",\"headers\":{", 12);
	while ((rc = mq_header_next(r, &pos, &h)) > 0) {
		if (!first)
			put(b, ",", 1);
		first = 0;
		mq_json_bytes(b, h.key, h.key_len);
		put(b, ":", 1);
		mq_json_bytes(b, h.value, h.value_len);
	}
	if (rc < 0)
		return -1;
	return put(b, "}}\n", 3);
}

/* ---- reading ---- */

/* A string, null, or {"base64": "..."} into out; *isnull for null. */
static int get_bytes(json_t *v, const char *what, struct mq_buf *out, int *isnull)
{
	out->len = 0;
	*isnull = 0;
	if (!v || json_is_null(v)) {
		*isnull = 1;
		return 0;
	}
	if (json_is_string(v))
		return mq_buf_append(out, json_string_value(v), json_string_length(v));
	if (json_is_object(v) && json_is_string(json_object_get(v, "base64"))) {
		json_t *s = json_object_get(v, "base64");
		size_t n = json_string_length(s);
		if (mq_buf_reserve(out, n) < 0)
			return -1;
		ssize_t got = mq_base64_decode(json_string_value(s), n, out->p);
		if (got < 0)
			return mq_error(MQ_EUSAGE, "invalid base64 in \"%s\"", what);
		out->len = (size_t)got;
		return 0;
	}
	if (json_is_number(v)) {
		/* numbers as values are taken as their text */
		char *s = json_dumps(v, JSON_ENCODE_ANY);
		int rc = s ? mq_buf_append(out, s, strlen(s)) : -1;
		free(s);
		return rc;
	}
	return mq_error(MQ_EUSAGE, "\"%s\" must be a string, null or {\"base64\": ...}", what);
}

void mq_json_record_free(struct mq_json_record *r)
{
	mq_buf_free(&r->key);
	mq_buf_free(&r->value);
	mq_buf_free(&r->hbuf);
	free(r->headers);
	memset(r, 0, sizeof *r);
}

int mq_json_record_parse(const char *line, size_t len, struct mq_json_record *r)
{
	json_error_t err;
	json_t *root = json_loadb(line, len, JSON_ALLOW_NUL, &err), *v;
	const char *k;
	int isnull;

	if (!root)
		return mq_error(MQ_EUSAGE, "invalid JSON: %s", err.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return mq_error(MQ_EUSAGE, "invalid JSON record: not an object");
	}
	r->partition = -1;
	r->timestamp = -1;
	r->nheaders = 0;
	if ((v = json_object_get(root, "partition")) && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
			goto bad_partition;
		r->partition = (int32_t)json_integer_value(v);
	}
	if ((v = json_object_get(root, "timestamp")) && json_is_integer(v))
		r->timestamp = json_integer_value(v);
	if (get_bytes(json_object_get(root, "key"), "key", &r->key, &r->key_null) < 0 ||
	    get_bytes(json_object_get(root, "value"), "value", &r->value, &r->value_null) < 0)
		goto fail;
	v = json_object_get(root, "headers");
	if (v && !json_is_null(v)) {
		json_t *hv;
		size_t n = json_object_size(v), i = 0;
		struct mq_buf one = { 0 };
		if (!json_is_object(v)) {
			mq_error(MQ_EUSAGE, "\"headers\" must be an object");
			goto fail;
		}
		free(r->headers);
		r->headers = calloc(n ? n : 1, sizeof *r->headers);
		size_t *offs = calloc(n ? 2 * n : 1, sizeof *offs);
		r->hbuf.len = 0;
		if (mq_buf_reserve(&r->hbuf, 1) < 0) {
			free(offs);
			goto fail;
		}
		if (!r->headers || !offs) {
			free(offs);
			mq_syserr("cannot parse JSON record");
			goto fail;
		}
		json_object_foreach(v, k, hv) {
			if (get_bytes(hv, k, &one, &isnull) < 0) {
				free(offs);
				mq_buf_free(&one);
				goto fail;
			}
			offs[2 * i] = r->hbuf.len;
			mq_buf_append(&r->hbuf, k, strlen(k));
			offs[2 * i + 1] = r->hbuf.len;
			mq_buf_append(&r->hbuf, one.p, one.len);
			r->headers[i].key_len = (int32_t)strlen(k);
			r->headers[i].value_len = isnull ? -1 : (int32_t)one.len;
			i++;
		}
		/* pointers only once the buffer stopped moving */
		for (size_t j = 0; j < i; j++) {
			r->headers[j].key = r->hbuf.p + offs[2 * j];
			r->headers[j].value = r->hbuf.p + offs[2 * j + 1];
		}
		r->nheaders = (int32_t)i;
		free(offs);
		mq_buf_free(&one);
	}
	json_decref(root);
	return 0;
bad_partition:
	mq_error(MQ_EUSAGE, "\"partition\" must be a non-negative integer");
fail:
	json_decref(root);
	return -1;
}
