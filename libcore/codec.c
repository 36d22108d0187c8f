/*
 * codec.c: the compression codecs of Kafka's record batches (attribute
 * bits 0-2).  mq writes gzip (RFC 1952, level 1) and lz4 (the LZ4 frame
 * format with independent 64 KiB blocks and no checksums, what Kafka's
 * Java client writes and reads), and reads whatever other Kafka writers
 * produce: gzip or zlib, possibly concatenated; any LZ4 frame; snappy raw
 * or in xerial framing; zstd, with or without content size in the frame.
 * snappy and zstd are optional (HAVE_SNAPPY, HAVE_ZSTD): without them a
 * reader says which codec it cannot read rather than failing obscurely.
 *
 * Decompression never trusts sizes stated by the data: output grows
 * geometrically up to the caller's limit and a one-byte probe detects
 * data that would go past it, so a small hostile batch cannot make the
 * reader allocate more than the limit.
 */
#include <limits.h>
#include <stdarg.h>
#include <string.h>

#include <lz4frame.h>
#include <zlib.h>
#ifdef HAVE_SNAPPY
#include <snappy-c.h>
#endif
#ifdef HAVE_ZSTD
#include <zstd.h>
#endif

#include "mq.h"

static const char *const codec_names[] = { "none", "gzip", "snappy", "lz4", "zstd" };
#define NCODECS (int)(sizeof codec_names / sizeof codec_names[0])

/* "unknown" for values outside the table, so that callers may print it. */
const char *mq_codec_name(int codec)
{
	return codec >= 0 && codec < NCODECS ? codec_names[codec] : "unknown";
}

int mq_codec_parse(const char *name)
{
	if (strcmp(name, "uncompressed") == 0)
		return MQ_CODEC_NONE;
	for (int i = 0; i < NCODECS; i++)
		if (strcmp(name, codec_names[i]) == 0)
			return i;
	return -1;
}

int mq_codec_can_write(int codec)
{
	return codec == MQ_CODEC_NONE || codec == MQ_CODEC_GZIP || codec == MQ_CODEC_LZ4;
}

/* "cannot decompress CODEC batch: REASON", class MQ_ECORRUPT. */
static int __attribute__((format(printf, 2, 3))) bad(int codec, const char *fmt, ...)
{
	char reason[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	return mq_error(MQ_ECORRUPT, "cannot decompress %s batch: %s",
			mq_codec_name(codec), reason);
}

static int nomem(const char *what, int codec)
{
	return mq_error(MQ_EIO, "cannot %s %s batch: out of memory", what,
			mq_codec_name(codec));
}

static uInt zlen(size_t n) { return n > UINT_MAX ? UINT_MAX : (uInt)n; }

/* Stands in for a NULL input of length 0: the libraries, and pointer
 * arithmetic, want a real address. */
static const uint8_t empty[1];

/* ---- compression ---- */

static int gzip_compress(const uint8_t *in, size_t len, struct mq_buf *out)
{
	size_t pos = 0;
	z_stream zs;
	int rc;

	memset(&zs, 0, sizeof zs);
	if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return nomem("compress", MQ_CODEC_GZIP);
	if (mq_buf_reserve(out, deflateBound(&zs, len)) < 0)
		goto oom;
	do {
		if (out->cap == out->len && mq_buf_reserve(out, 65536) < 0)
			goto oom;
		size_t room = out->cap - out->len;
		zs.next_out = out->p + out->len;
		zs.avail_out = zlen(room);
		zs.next_in = (Bytef *)in + pos;
		zs.avail_in = zlen(len - pos);
		uInt fed = zs.avail_in;
		rc = deflate(&zs, pos + fed == len ? Z_FINISH : Z_NO_FLUSH);
		pos += fed - zs.avail_in;
		out->len += zlen(room) - zs.avail_out;
	} while (rc == Z_OK || rc == Z_BUF_ERROR);
	deflateEnd(&zs);
	if (rc != Z_STREAM_END)
		return mq_error(MQ_EIO, "cannot compress gzip batch: deflate failed (%d)", rc);
	return 0;
oom:
	deflateEnd(&zs);
	return nomem("compress", MQ_CODEC_GZIP);
}

static int lz4_compress(const uint8_t *in, size_t len, struct mq_buf *out)
{
	LZ4F_preferences_t prefs;
	size_t bound, n;

	memset(&prefs, 0, sizeof prefs);
	prefs.frameInfo.blockSizeID = LZ4F_max64KB;
	prefs.frameInfo.blockMode = LZ4F_blockIndependent;
	prefs.frameInfo.contentChecksumFlag = LZ4F_noContentChecksum;
	prefs.frameInfo.blockChecksumFlag = LZ4F_noBlockChecksum;
	bound = LZ4F_compressFrameBound(len, &prefs);
	if (mq_buf_reserve(out, bound) < 0)
		return nomem("compress", MQ_CODEC_LZ4);
	n = LZ4F_compressFrame(out->p + out->len, bound, in, len, &prefs);
	if (LZ4F_isError(n))
		return mq_error(MQ_EIO, "cannot compress lz4 batch: %s", LZ4F_getErrorName(n));
	out->len += n;
	return 0;
}

int mq_compress(int codec, const uint8_t *in, size_t len, struct mq_buf *out)
{
	size_t had = out->len;
	int rc;

	if (len == 0)
		in = empty;
	switch (codec) {
	case MQ_CODEC_NONE:
		return mq_buf_append(out, in, len) < 0 ? nomem("compress", codec) : 0;
	case MQ_CODEC_GZIP:
		rc = gzip_compress(in, len, out);
		break;
	case MQ_CODEC_LZ4:
		rc = lz4_compress(in, len, out);
		break;
	default:
		return mq_error(MQ_EUSAGE, "cannot compress with codec '%s': not supported for writing",
				mq_codec_name(codec));
	}
	if (rc < 0)
		out->len = had;
	return rc;
}

/* ---- decompression ---- */

/* Where decoders write: out, grown geometrically but never past limit.
 * At the limit the decoder gets the one-byte probe instead; anything
 * written there means the data is larger than allowed. */
struct sink {
	struct mq_buf *out;
	size_t limit;
	int codec;
	uint8_t probe;
};

static int sink_room(struct sink *s, uint8_t **dst, size_t *n)
{
	struct mq_buf *out = s->out;
	size_t left = s->limit - out->len;

	if (left == 0) {
		*dst = &s->probe;
		*n = 1;
		return 0;
	}
	if (out->cap == out->len) {
		size_t want = out->len < 65536 ? 65536 : out->len;
		if (mq_buf_reserve(out, want < left ? want : left) < 0)
			return nomem("decompress", s->codec);
	}
	*n = out->cap - out->len < left ? out->cap - out->len : left;
	*dst = out->p + out->len;
	return 0;
}

/* Accounts for the n bytes the decoder wrote at dst. */
static int sink_took(struct sink *s, const uint8_t *dst, size_t n)
{
	if (dst != &s->probe)
		s->out->len += n;
	else if (n > 0)
		return bad(s->codec, "decompressed size exceeds %zu bytes", s->limit);
	return 0;
}

static int gzip_run(z_stream *zs, const uint8_t *in, size_t len, struct sink *s)
{
	size_t used = 0, n;
	uint8_t *dst;

	for (;;) {
		if (sink_room(s, &dst, &n) < 0)
			return -1;
		if (zs->avail_in == 0) {
			zs->next_in = (Bytef *)in + used;
			zs->avail_in = zlen(len - used);
			used += zs->avail_in;
		}
		zs->next_out = dst;
		zs->avail_out = zlen(n);
		int rc = inflate(zs, Z_NO_FLUSH);
		if (sink_took(s, dst, zlen(n) - zs->avail_out) < 0)
			return -1;
		int end = zs->avail_in == 0 && used == len;
		if (rc == Z_STREAM_END && end)
			return 0;
		if (rc == Z_STREAM_END)
			inflateReset(zs);   /* another gzip member follows */
		else if (rc == Z_BUF_ERROR && end)
			return bad(MQ_CODEC_GZIP, "truncated data");
		else if (rc == Z_MEM_ERROR)
			return nomem("decompress", MQ_CODEC_GZIP);
		else if (rc != Z_OK && rc != Z_BUF_ERROR)
			return bad(MQ_CODEC_GZIP, "%s", zs->msg ? zs->msg : "invalid data");
	}
}

/* Any LZ4 frame (linked blocks, checksums, content size), and frames
 * one after another. */
static int lz4_run(LZ4F_dctx *dctx, const uint8_t *in, size_t len, struct sink *s)
{
	size_t n, hint;
	uint8_t *dst;

	for (;;) {
		if (sink_room(s, &dst, &n) < 0)
			return -1;
		size_t used = len;
		hint = LZ4F_decompress(dctx, dst, &n, in, &used, NULL);
		if (LZ4F_isError(hint))
			return bad(MQ_CODEC_LZ4, "%s", LZ4F_getErrorName(hint));
		if (sink_took(s, dst, n) < 0)
			return -1;
		in += used;
		len -= used;
		if (hint == 0 && len == 0)   /* a frame ended, nothing after */
			return 0;
		if (used == 0 && n == 0)
			return bad(MQ_CODEC_LZ4, "truncated data");
	}
}

#ifdef HAVE_SNAPPY
/* One raw snappy block; its stated size is checked against the limit
 * before anything is allocated. */
static int snappy_block(const uint8_t *in, size_t len, struct sink *s)
{
	struct mq_buf *out = s->out;
	size_t n;

	if (snappy_uncompressed_length((const char *)in, len, &n) != SNAPPY_OK)
		return bad(MQ_CODEC_SNAPPY, "invalid snappy block");
	if (n > s->limit - out->len)
		return bad(MQ_CODEC_SNAPPY, "decompressed size exceeds %zu bytes", s->limit);
	if (mq_buf_reserve(out, n ? n : 1) < 0)
		return nomem("decompress", MQ_CODEC_SNAPPY);
	if (snappy_uncompress((const char *)in, len, (char *)out->p + out->len, &n) != SNAPPY_OK)
		return bad(MQ_CODEC_SNAPPY, "invalid snappy block");
	out->len += n;
	return 0;
}

/* Raw snappy, or the xerial framing of snappy-java that Kafka's Java
 * client writes: 8-byte magic, version and compatible version (int32
 * each), then blocks of [int32 big-endian length][raw snappy]. */
static int snappy_run(const uint8_t *in, size_t len, struct sink *s)
{
	static const uint8_t magic[8] = { 0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0 };
	size_t pos = 16, n;

	if (len < 16 || memcmp(in, magic, 8) != 0)
		return snappy_block(in, len, s);
	for (; pos < len; pos += n) {
		if (len - pos < 4)
			return bad(MQ_CODEC_SNAPPY, "truncated xerial block header");
		n = mq_be32(in + pos);
		pos += 4;
		if (n > len - pos)
			return bad(MQ_CODEC_SNAPPY, "truncated xerial block");
		if (snappy_block(in + pos, n, s) < 0)
			return -1;
	}
	return 0;
}
#endif

#ifdef HAVE_ZSTD
/* Streaming, so that frames without a content size (and several frames
 * one after another) decode like any other. */
static int zstd_run(ZSTD_DCtx *dctx, const uint8_t *in, size_t len, struct sink *s)
{
	ZSTD_inBuffer ib = { in, len, 0 };
	size_t n, hint;
	uint8_t *dst;

	for (;;) {
		if (sink_room(s, &dst, &n) < 0)
			return -1;
		ZSTD_outBuffer ob = { dst, n, 0 };
		size_t before = ib.pos;
		hint = ZSTD_decompressStream(dctx, &ob, &ib);
		if (ZSTD_isError(hint))
			return bad(MQ_CODEC_ZSTD, "%s", ZSTD_getErrorName(hint));
		if (sink_took(s, dst, ob.pos) < 0)
			return -1;
		if (hint == 0 && ib.pos == ib.size)   /* a frame ended, nothing after */
			return 0;
		if (ib.pos == before && ob.pos == 0)
			return bad(MQ_CODEC_ZSTD, "truncated data");
	}
}
#endif

int mq_decompress(int codec, const uint8_t *in, size_t len, struct mq_buf *out,
		  size_t limit)
{
	struct sink s = { out, limit, codec, 0 };
	LZ4F_dctx *lz4;
	z_stream zs;
	int rc;
#ifdef HAVE_ZSTD
	ZSTD_DCtx *zstd;
#endif

	out->len = 0;
	if (len == 0)
		in = empty;
	switch (codec) {
	case MQ_CODEC_NONE:
		if (len > limit)
			return bad(codec, "decompressed size exceeds %zu bytes", limit);
		return mq_buf_append(out, in, len) < 0 ? nomem("decompress", codec) : 0;
	case MQ_CODEC_GZIP:
		memset(&zs, 0, sizeof zs);
		if (inflateInit2(&zs, 15 + 32) != Z_OK)
			return nomem("decompress", codec);
		rc = gzip_run(&zs, in, len, &s);
		inflateEnd(&zs);
		break;
	case MQ_CODEC_LZ4:
		if (LZ4F_isError(LZ4F_createDecompressionContext(&lz4, LZ4F_VERSION)))
			return nomem("decompress", codec);
		rc = lz4_run(lz4, in, len, &s);
		LZ4F_freeDecompressionContext(lz4);
		break;
	case MQ_CODEC_SNAPPY:
#ifdef HAVE_SNAPPY
		rc = snappy_run(in, len, &s);
		break;
#else
		return mq_error(MQ_ECORRUPT, "codec 'snappy' not supported (built without libsnappy)");
#endif
	case MQ_CODEC_ZSTD:
#ifdef HAVE_ZSTD
		if (!(zstd = ZSTD_createDCtx()))
			return nomem("decompress", codec);
		rc = zstd_run(zstd, in, len, &s);
		ZSTD_freeDCtx(zstd);
		break;
#else
		return mq_error(MQ_ECORRUPT, "codec 'zstd' not supported (built without libzstd)");
#endif
	default:
		return mq_error(MQ_ECORRUPT, "cannot decompress batch: unknown codec %d", codec);
	}
	if (rc < 0)
		out->len = 0;
	return rc;
}
