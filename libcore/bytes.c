/*
 * bytes.c: the growable byte buffer every encoder appends to, and the
 * zigzag varints of Kafka's record format (DESIGN.md §3).  A varint is
 * the value zigzag-mapped to unsigned ((v << 1) ^ (v >> 31), so that
 * small negative numbers stay short), then written 7 bits at a time,
 * least significant group first, with the top bit of each byte set when
 * more follow: 1 -> 02, -1 -> 01, 64 -> 80 01.  The readers accept what
 * Kafka's ByteUtils.readVarint/readVarlong accept: at most 5 / 10 bytes,
 * bits past 32 / 64 ignored.
 */
#include <stdlib.h>
#include <string.h>

#include "mq.h"

int mq_buf_reserve(struct mq_buf *b, size_t extra)
{
	size_t need, cap;
	uint8_t *p;

	if (b->cap - b->len >= extra)
		return 0;
	if (extra > SIZE_MAX - b->len)
		return mq_error(MQ_EIO, "out of memory");
	need = b->len + extra;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->p, cap);
	if (!p)
		return mq_error(MQ_EIO, "out of memory");
	b->p = p;
	b->cap = cap;
	return 0;
}

int mq_buf_append(struct mq_buf *b, const void *p, size_t n)
{
	if (mq_buf_reserve(b, n) < 0)
		return -1;
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

void mq_buf_free(struct mq_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

static size_t put_unsigned(uint8_t *p, uint64_t u)
{
	size_t n = 0;

	while (u >= 0x80) {
		p[n++] = (uint8_t)(u | 0x80);
		u >>= 7;
	}
	p[n++] = (uint8_t)u;
	return n;
}

/* Reads at most max bytes of an unsigned varint; 0 when truncated or
 * longer than max. */
static size_t get_unsigned(const uint8_t *p, size_t n, size_t max, uint64_t *u)
{
	uint64_t v = 0;
	size_t i;

	if (n > max)
		n = max;
	for (i = 0; i < n; i++) {
		v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			*u = v;
			return i + 1;
		}
	}
	return 0;
}

static uint64_t zigzag64(int64_t v)
{
	return (uint64_t)v << 1 ^ (v < 0 ? UINT64_MAX : 0);
}

size_t mq_varlong_put(uint8_t *p, int64_t v)
{
	return put_unsigned(p, zigzag64(v));
}

size_t mq_varint_get(const uint8_t *p, size_t n, int32_t *v)
{
	uint64_t u;
	uint32_t z;
	size_t r = get_unsigned(p, n, 5, &u);

	if (!r)
		return 0;
	z = (uint32_t)u;
	*v = z & 1 ? -(int32_t)(z >> 1) - 1 : (int32_t)(z >> 1);
	return r;
}

size_t mq_varlong_get(const uint8_t *p, size_t n, int64_t *v)
{
	uint64_t u;
	size_t r = get_unsigned(p, n, 10, &u);

	if (!r)
		return 0;
	*v = u & 1 ? -(int64_t)(u >> 1) - 1 : (int64_t)(u >> 1);
	return r;
}

