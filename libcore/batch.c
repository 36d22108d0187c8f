/*
 * batch.c: Kafka's RecordBatch v2, encoded and decoded byte for byte as
 * DefaultRecordBatch.java and DefaultRecord.java do.
 *
 *   offset  field                 (big-endian)
 *    0      baseOffset            i64
 *    8      batchLength           i32   bytes after this field
 *   12      partitionLeaderEpoch  i32
 *   16      magic                 i8    = 2
 *   17      crc                   u32   CRC-32C of bytes 21..end
 *   21      attributes            i16   codec, timestamp type, txn, control
 *   23      lastOffsetDelta       i32
 *   27      baseTimestamp         i64
 *   35      maxTimestamp          i64
 *   43      producerId            i64
 *   51      producerEpoch         i16
 *   53      baseSequence          i32
 *   57      recordsCount          i32
 *   61      records (compressed as one blob when a codec is set)
 *
 * A record is: length varint, attributes i8, timestampDelta varlong,
 * offsetDelta varint, keyLength varint (-1 null), key, valueLength varint
 * (-1 null), value, headerCount varint, then per header a key length
 * varint, key, value length varint (-1 null), value.
 *
 * baseOffset and partitionLeaderEpoch lie outside the CRC, so the log
 * assigns offsets at append time by patching 12 bytes, without touching
 * the records or recomputing anything.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mq.h"

int mq_batch_parse(const uint8_t *p, size_t avail, struct mq_batch *b)
{
	int32_t length;

	if (avail < MQ_BATCH_OVERHEAD)
		return MQ_BATCH_SHORT;
	length = (int32_t)mq_be32(p + 8);
	if (length < MQ_BATCH_HEADER - MQ_BATCH_OVERHEAD || length > INT32_MAX - MQ_BATCH_OVERHEAD) {
		mq_error(MQ_ECORRUPT, "invalid batch length %d", length);
		return MQ_BATCH_BAD;
	}
	if (avail > 16 && p[16] != 2) {
		mq_error(MQ_ECORRUPT, "unsupported batch magic %d", (int8_t)p[16]);
		return MQ_BATCH_BAD;
	}
	if (avail < (size_t)length + MQ_BATCH_OVERHEAD)
		return MQ_BATCH_SHORT;
	b->base_offset = (int64_t)mq_be64(p);
	b->length = length;
	b->leader_epoch = (int32_t)mq_be32(p + 12);
	b->magic = (int8_t)p[16];
	b->crc = mq_be32(p + 17);
	b->attributes = (int16_t)mq_be16(p + 21);
	b->last_offset_delta = (int32_t)mq_be32(p + 23);
	b->base_timestamp = (int64_t)mq_be64(p + 27);
	b->max_timestamp = (int64_t)mq_be64(p + 35);
	b->producer_id = (int64_t)mq_be64(p + 43);
	b->producer_epoch = (int16_t)mq_be16(p + 51);
	b->base_sequence = (int32_t)mq_be32(p + 53);
	b->count = (int32_t)mq_be32(p + 57);
	b->data = p;
	b->size = (size_t)length + MQ_BATCH_OVERHEAD;
	if (b->base_offset < 0 || b->base_offset > INT64_MAX - INT32_MAX) {
		mq_error(MQ_ECORRUPT, "invalid batch base offset %lld", (long long)b->base_offset);
		return MQ_BATCH_BAD;
	}
	if (b->last_offset_delta < 0 || b->count < 0) {
		mq_error(MQ_ECORRUPT, "invalid batch header (lastOffsetDelta %d, count %d)",
			 b->last_offset_delta, b->count);
		return MQ_BATCH_BAD;
	}
	return MQ_BATCH_OK;
}

int mq_batch_crc_ok(const struct mq_batch *b)
{
	return mq_crc32c(0, b->data + 21, b->size - 21) == b->crc;
}

void mq_batch_set_offset(uint8_t *batch, int64_t base_offset, int32_t epoch)
{
	mq_put64(batch, (uint64_t)base_offset);
	mq_put32(batch + 12, (uint32_t)epoch);
}

/* ---- decoding records ---- */

int mq_record_iter_init(struct mq_record_iter *it, const struct mq_batch *b, size_t limit)
{
	int codec = b->attributes & MQ_ATTR_CODEC;

	it->batch = *b;
	it->left = b->count;
	if (codec == MQ_CODEC_NONE) {
		it->p = b->data + MQ_BATCH_HEADER;
		it->end = b->data + b->size;
		return 0;
	}
	if (mq_decompress(codec, b->data + MQ_BATCH_HEADER, b->size - MQ_BATCH_HEADER,
			  &it->buf, limit) < 0)
		return -1;
	if (!it->buf.p) {
		/* nothing decompressed: an empty range, not arithmetic on NULL */
		it->p = it->end = b->data + b->size;
		return 0;
	}
	it->p = it->buf.p;
	it->end = it->buf.p + it->buf.len;
	return 0;
}

void mq_record_iter_free(struct mq_record_iter *it)
{
	mq_buf_free(&it->buf);
}

/* Reads a varint length-prefixed byte string: -1 length means null. */
static int get_bytes(const uint8_t **pp, const uint8_t *end, const uint8_t **s, int32_t *len)
{
	size_t n = mq_varint_get(*pp, (size_t)(end - *pp), len);

	if (!n || *len < -1)
		return -1;
	*pp += n;
	if (*len < 0) {
		*s = NULL;
		return 0;
	}
	if (*len > end - *pp)
		return -1;
	*s = *pp;
	*pp += *len;
	return 0;
}

int mq_record_next(struct mq_record_iter *it, struct mq_record *r)
{
	const uint8_t *p = it->p, *end;
	int32_t len, offdelta;
	int64_t tsdelta;
	size_t n;

	if (it->left <= 0)
		return 0;
	n = mq_varint_get(p, (size_t)(it->end - p), &len);
	if (!n || len < 1 || len > it->end - p - (ptrdiff_t)n)
		goto bad;
	p += n;
	end = p + len;
	p++;    /* attributes, unused */
	if (!(n = mq_varlong_get(p, (size_t)(end - p), &tsdelta)))
		goto bad;
	p += n;
	if (!(n = mq_varint_get(p, (size_t)(end - p), &offdelta)))
		goto bad;
	p += n;
	if (get_bytes(&p, end, &r->key, &r->key_len) < 0 ||
	    get_bytes(&p, end, &r->value, &r->value_len) < 0)
		goto bad;
	if (!(n = mq_varint_get(p, (size_t)(end - p), &r->header_count)) || r->header_count < 0)
		goto bad;
	p += n;
	r->headers = p;
	r->headers_len = (size_t)(end - p);
	/* in unsigned arithmetic: garbage deltas must not be undefined */
	r->offset = (int64_t)((uint64_t)it->batch.base_offset + (uint64_t)(int64_t)offdelta);
	r->timestamp = it->batch.attributes & MQ_ATTR_LOGAPPEND_TIME ?
		it->batch.max_timestamp :
		(int64_t)((uint64_t)it->batch.base_timestamp + (uint64_t)tsdelta);
	it->p = end;
	it->left--;
	return 1;
bad:
	return mq_error(MQ_ECORRUPT, "malformed record in batch at offset %lld",
			(long long)it->batch.base_offset);
}

/* Headers are the last field of a record, so the walk ends where the
 * record's bytes end. */
int mq_header_next(const struct mq_record *r, size_t *pos, struct mq_header *h)
{
	const uint8_t *p = r->headers + *pos, *end = r->headers + r->headers_len;

	if (p >= end)
		return 0;
	if (get_bytes(&p, end, &h->key, &h->key_len) < 0 || h->key_len < 0 ||
	    get_bytes(&p, end, &h->value, &h->value_len) < 0)
		return mq_error(MQ_ECORRUPT, "malformed record header at offset %lld",
				(long long)r->offset);
	*pos = (size_t)(p - r->headers);
	return 1;
}

/* ---- encoding ---- */

void mq_batch_builder_init(struct mq_batch_builder *bb, int codec)
{
	memset(bb, 0, sizeof *bb);
	bb->codec = codec;
	bb->producer_id = -1;
	bb->producer_epoch = -1;
	bb->base_sequence = -1;
}

static struct mq_buf *records_buf(struct mq_batch_builder *bb)
{
	return bb->codec == MQ_CODEC_NONE ? &bb->out : &bb->recs;
}

static size_t varlong_size(int64_t v)
{
	uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
	size_t n = 1;

	while (z >= 0x80) {
		z >>= 7;
		n++;
	}
	return n;
}

static size_t bytes_size(int32_t len)
{
	return mq_varint_size(len) + (len > 0 ? (size_t)len : 0);
}

int mq_batch_builder_add(struct mq_batch_builder *bb, int64_t ts,
			 const void *key, int32_t klen, const void *value, int32_t vlen,
			 const struct mq_header *hs, int32_t nh)
{
	struct mq_buf *b = records_buf(bb);
	int64_t tsdelta;
	size_t body;
	uint8_t *p;

	if (bb->count == 0) {
		bb->base_timestamp = ts;
		bb->max_timestamp = ts;
		if (bb->codec == MQ_CODEC_NONE && bb->out.len == 0) {
			if (mq_buf_reserve(&bb->out, MQ_BATCH_HEADER) < 0)
				return -1;
			bb->out.len = MQ_BATCH_HEADER;
		}
	}
	if (ts > bb->max_timestamp)
		bb->max_timestamp = ts;
	tsdelta = ts - bb->base_timestamp;
	/* the exact length first, so the record is written in place */
	body = 1 + varlong_size(tsdelta) + mq_varint_size(bb->count) + bytes_size(klen) +
	       bytes_size(vlen) + mq_varint_size(nh);
	for (int32_t i = 0; i < nh; i++)
		body += bytes_size(hs[i].key_len) + bytes_size(hs[i].value_len);
	if (body > INT32_MAX - 16)
		return mq_error(MQ_EUSAGE, "record too large");
	if (mq_buf_reserve(b, body + 5) < 0)
		return -1;
	p = b->p + b->len;
	p += mq_varint_put(p, (int32_t)body);
	*p++ = 0;
	p += mq_varlong_put(p, tsdelta);
	p += mq_varint_put(p, bb->count);
	p += mq_varint_put(p, klen);
	if (klen > 0) { memcpy(p, key, (size_t)klen); p += klen; }
	p += mq_varint_put(p, vlen);
	if (vlen > 0) { memcpy(p, value, (size_t)vlen); p += vlen; }
	p += mq_varint_put(p, nh);
	for (int32_t i = 0; i < nh; i++) {
		p += mq_varint_put(p, hs[i].key_len);
		if (hs[i].key_len > 0) { memcpy(p, hs[i].key, (size_t)hs[i].key_len); p += hs[i].key_len; }
		p += mq_varint_put(p, hs[i].value_len);
		if (hs[i].value_len > 0) { memcpy(p, hs[i].value, (size_t)hs[i].value_len); p += hs[i].value_len; }
	}
	b->len = (size_t)(p - b->p);
	bb->count++;
	return 0;
}

size_t mq_batch_builder_size(const struct mq_batch_builder *bb)
{
	if (bb->count == 0)
		return 0;
	return bb->codec == MQ_CODEC_NONE ? bb->out.len : MQ_BATCH_HEADER + bb->recs.len;
}

int mq_batch_builder_finish(struct mq_batch_builder *bb, size_t max)
{
	int codec = bb->codec;
	uint8_t *h;

	if (codec != MQ_CODEC_NONE) {
		bb->out.len = 0;
		if (mq_buf_reserve(&bb->out, MQ_BATCH_HEADER) < 0)
			return -1;
		bb->out.len = MQ_BATCH_HEADER;
		if (mq_compress(codec, bb->recs.p, bb->recs.len, &bb->out) < 0)
			return -1;
		if (max && bb->out.len > max) {
			/* compression made it bigger than allowed: as it is */
			codec = MQ_CODEC_NONE;
			bb->out.len = MQ_BATCH_HEADER;
			if (mq_buf_append(&bb->out, bb->recs.p, bb->recs.len) < 0)
				return -1;
		}
	} else if (bb->out.len == 0) {
		if (mq_buf_reserve(&bb->out, MQ_BATCH_HEADER) < 0)
			return -1;
		bb->out.len = MQ_BATCH_HEADER;
	}
	h = bb->out.p;
	mq_put64(h, 0);
	mq_put32(h + 8, (uint32_t)(bb->out.len - MQ_BATCH_OVERHEAD));
	mq_put32(h + 12, 0);
	h[16] = 2;
	mq_put16(h + 21, (uint16_t)(codec & MQ_ATTR_CODEC));
	mq_put32(h + 23, (uint32_t)(bb->count > 0 ? bb->count - 1 : 0));
	mq_put64(h + 27, (uint64_t)bb->base_timestamp);
	mq_put64(h + 35, (uint64_t)bb->max_timestamp);
	mq_put64(h + 43, (uint64_t)bb->producer_id);
	mq_put16(h + 51, (uint16_t)bb->producer_epoch);
	mq_put32(h + 53, (uint32_t)bb->base_sequence);
	mq_put32(h + 57, (uint32_t)bb->count);
	mq_put32(h + 17, mq_crc32c(0, h + 21, bb->out.len - 21));
	return 0;
}

void mq_batch_builder_reset(struct mq_batch_builder *bb)
{
	bb->count = 0;
	bb->recs.len = 0;
	bb->out.len = 0;
}

void mq_batch_builder_free(struct mq_batch_builder *bb)
{
	mq_buf_free(&bb->recs);
	mq_buf_free(&bb->out);
}
