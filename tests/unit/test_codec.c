/*
 * test_codec.c: libcore's codecs.  Round trips of what mq writes, the
 * exact frame formats Kafka expects (gzip header, lz4 frame descriptor),
 * blobs made by the gzip and lz4 tools and by libsnappy and libzstd as
 * other Kafka clients would, and hostile input: truncated, garbage,
 * mutated, and decompression bombs against the size limit.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lz4frame.h>
#include <zlib.h>
#ifdef HAVE_SNAPPY
#include <snappy-c.h>
#endif
#ifdef HAVE_ZSTD
#include <zstd.h>
#endif

#include "mq.h"
#include "unit.h"

#define MIB (1024 * 1024)

static const int writable[] = { MQ_CODEC_NONE, MQ_CODEC_GZIP, MQ_CODEC_LZ4 };

static uint32_t rng = 2463534242u;
static uint32_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

/* n bytes of log-like lines: compressible, but not trivially. */
static uint8_t *text_data(size_t n)
{
	uint8_t *p = malloc(n + 128);
	size_t len = 0;
	for (int i = 0; len < n; i++)
		len += (size_t)sprintf((char *)p + len,
				       "2026-11-21T10:00:%02d.%03dZ INFO request id=%d path=/api/v1/items status=200\n",
				       i % 60, i % 1000, i);
	return p;
}

static uint8_t *rand_data(size_t n)
{
	uint8_t *p = malloc(n ? n : 1);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)next_rand();
	return p;
}

/* The whole stdout of a shell command. */
static void run_cmd(const char *cmd, struct mq_buf *out)
{
	FILE *f = popen(cmd, "r");
	uint8_t tmp[4096];
	size_t n;

	out->len = 0;
	if (!f)
		return;
	while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
		mq_buf_append(out, tmp, n);
	pclose(f);
}

/* Feeds p to a shell command through a temporary file; its stdout in out. */
static void filter_cmd(const char *cmd, const uint8_t *p, size_t n, struct mq_buf *out)
{
	char path[] = "/tmp/test_codec.XXXXXX", line[512];
	int fd = mkstemp(path);

	out->len = 0;
	if (fd < 0)
		return;
	if (write(fd, p, n) == (ssize_t)n) {
		snprintf(line, sizeof line, "%s <%s", cmd, path);
		run_cmd(line, out);
	}
	close(fd);
	unlink(path);
}

/* Decodes with mq_decompress and compares with want. */
static int decodes_to(int codec, const uint8_t *in, size_t len, const uint8_t *want,
		      size_t wantlen)
{
	struct mq_buf d = { 0 };
	int ok = mq_decompress(codec, in, len, &d, wantlen) == 0 && d.len == wantlen &&
		 (wantlen == 0 || memcmp(d.p, want, wantlen) == 0);
	if (!ok)
		printf("# %s\n", mq_errmsg());
	mq_buf_free(&d);
	return ok;
}

/* 1 when decompressing fails cleanly as corrupt data. */
static int fails_corrupt(int codec, const uint8_t *in, size_t len, size_t limit)
{
	struct mq_buf d = { 0 };
	int rc = mq_decompress(codec, in, len, &d, limit);
	mq_buf_free(&d);
	return rc == -1 && mq_errclass() == MQ_ECORRUPT;
}

static void test_names(void)
{
	static const char *names[] = { "none", "gzip", "snappy", "lz4", "zstd" };
	for (int i = 0; i < 5; i++) {
		CHECK(strcmp(mq_codec_name(i), names[i]) == 0, "name of codec %d", i);
		CHECK_EQ_INT(mq_codec_parse(names[i]), i, "parse '%s'", names[i]);
	}
	CHECK_EQ_INT(mq_codec_parse("uncompressed"), MQ_CODEC_NONE, "parse 'uncompressed'");
	CHECK_EQ_INT(mq_codec_parse("brotli"), -1, "parse unknown codec");
	CHECK_EQ_INT(mq_codec_parse(""), -1, "parse empty name");
	CHECK(strcmp(mq_codec_name(7), "unknown") == 0, "name of codec 7");
	CHECK(mq_codec_can_write(MQ_CODEC_NONE) && mq_codec_can_write(MQ_CODEC_GZIP) &&
	      mq_codec_can_write(MQ_CODEC_LZ4), "none, gzip, lz4 writable");
	CHECK(!mq_codec_can_write(MQ_CODEC_SNAPPY) && !mq_codec_can_write(MQ_CODEC_ZSTD) &&
	      !mq_codec_can_write(5), "snappy, zstd, 5 not writable");
}

static void roundtrip(int codec, const uint8_t *in, size_t len, const char *what)
{
	struct mq_buf c = { 0 }, d = { 0 };
	int rc;

	mq_buf_append(&c, "pre", 3);
	rc = mq_compress(codec, in, len, &c);
	CHECK_EQ_INT(rc, 0, "%s: compress %s", mq_codec_name(codec), what);
	CHECK(c.len >= 3 && memcmp(c.p, "pre", 3) == 0, "%s: compress %s appends",
	      mq_codec_name(codec), what);
	mq_buf_append(&d, "stale", 5);
	rc = mq_decompress(codec, c.p + 3, c.len - 3, &d, len);
	CHECK_EQ_INT(rc, 0, "%s: decompress %s", mq_codec_name(codec), what);
	CHECK(d.len == len && (len == 0 || memcmp(d.p, in, len) == 0),
	      "%s: round trip %s (%zu bytes, %zu compressed)", mq_codec_name(codec), what,
	      len, c.len - 3);
	mq_buf_free(&c);
	mq_buf_free(&d);
}

static void test_roundtrip(void)
{
	uint8_t *text = text_data(MIB), *rnd = rand_data(MIB);
	for (size_t i = 0; i < sizeof writable / sizeof writable[0]; i++) {
		roundtrip(writable[i], NULL, 0, "empty input");
		roundtrip(writable[i], (const uint8_t *)"hello, kafka", 12, "small input");
		roundtrip(writable[i], text, MIB, "1 MiB of text");
		roundtrip(writable[i], rnd, MIB, "1 MiB of random bytes");
	}
	free(text);
	free(rnd);
}

static void test_gzip_format(void)
{
	uint8_t *text = text_data(MIB);
	struct mq_buf c = { 0 }, d = { 0 };
	z_stream zs;

	CHECK_EQ_INT(mq_compress(MQ_CODEC_GZIP, text, MIB, &c), 0, "gzip: compress text");
	CHECK(c.len > 10 && c.p[0] == 0x1f && c.p[1] == 0x8b && c.p[2] == 8,
	      "gzip: RFC 1952 header (1f 8b 08)");
	CHECK_EQ_INT(c.p[8], 4, "gzip: XFL says fastest (level 1)");
	CHECK(c.len < MIB / 4, "gzip: text compresses (%zu bytes)", c.len);

	memset(&zs, 0, sizeof zs);
	inflateInit2(&zs, 15 + 16);    /* gzip only */
	mq_buf_reserve(&d, MIB + 1);
	zs.next_in = c.p;
	zs.avail_in = (uInt)c.len;
	zs.next_out = d.p;
	zs.avail_out = MIB + 1;
	int rc = inflate(&zs, Z_FINISH);
	CHECK(rc == Z_STREAM_END && zs.total_out == MIB && memcmp(d.p, text, MIB) == 0,
	      "gzip: zlib decodes it as gzip");
	inflateEnd(&zs);

	filter_cmd("gzip -dc", c.p, c.len, &d);
	CHECK(d.len == MIB && memcmp(d.p, text, MIB) == 0, "gzip: gzip -d decodes it");
	mq_buf_free(&c);
	mq_buf_free(&d);
	free(text);
}

static void test_lz4_format(void)
{
	uint8_t *text = text_data(MIB);
	struct mq_buf c = { 0 }, d = { 0 };

	CHECK_EQ_INT(mq_compress(MQ_CODEC_LZ4, text, MIB, &c), 0, "lz4: compress text");
	CHECK(c.len > 7 && mq_be32(c.p) == 0x04224d18, "lz4: frame magic");
	uint8_t flg = c.p[4], bd = c.p[5];
	CHECK_EQ_INT(flg >> 6, 1, "lz4: frame version 01");
	CHECK(flg & 0x20, "lz4: block independence bit set");
	CHECK(!(flg & 0x10), "lz4: no block checksum");
	CHECK(!(flg & 0x04), "lz4: no content checksum");
	CHECK(!(flg & 0x08) && !(flg & 0x01), "lz4: no content size, no dictionary id");
	CHECK_EQ_INT((bd >> 4) & 7, 4, "lz4: block maximum size 64 KiB");
	CHECK(c.len < MIB / 2, "lz4: text compresses (%zu bytes)", c.len);

	filter_cmd("lz4 -dc", c.p, c.len, &d);
	CHECK(d.len == MIB && memcmp(d.p, text, MIB) == 0, "lz4: lz4 -d decodes it");
	mq_buf_free(&c);
	mq_buf_free(&d);
	free(text);
}

/* Blobs made by the command-line tools, as other writers would. */
static void test_tool_blobs(void)
{
	static const char line[] = "hello from the command line\n";
	size_t n = 10000 * (sizeof line - 1);
	uint8_t *want = malloc(n);
	struct mq_buf b = { 0 };

	for (size_t i = 0; i < 10000; i++)
		memcpy(want + i * (sizeof line - 1), line, sizeof line - 1);
#define LINES "yes 'hello from the command line' | head -n 10000"
	run_cmd(LINES " | gzip -1 -c", &b);
	CHECK(b.len > 0 && decodes_to(MQ_CODEC_GZIP, b.p, b.len, want, n), "gzip -1 blob");
	run_cmd("(printf abc | gzip -1 -c; printf def | gzip -9 -c)", &b);
	CHECK(decodes_to(MQ_CODEC_GZIP, b.p, b.len, (const uint8_t *)"abcdef", 6),
	      "concatenated gzip members");
	run_cmd("printf 'zlib data' | python3 -c 'import sys,zlib;"
		"sys.stdout.buffer.write(zlib.compress(sys.stdin.buffer.read()))' 2>/dev/null", &b);
	if (b.len > 0)
		CHECK(decodes_to(MQ_CODEC_GZIP, b.p, b.len, (const uint8_t *)"zlib data", 9),
		      "zlib-wrapped deflate");
	run_cmd(LINES " | lz4 -1 -c", &b);
	CHECK(b.len > 0 && decodes_to(MQ_CODEC_LZ4, b.p, b.len, want, n),
	      "lz4 -1 blob (content checksum)");
	run_cmd(LINES " | lz4 -1 -c -B4 -BD -BX --content-size 2>/dev/null", &b);
	CHECK(b.len > 0 && decodes_to(MQ_CODEC_LZ4, b.p, b.len, want, n),
	      "lz4 blob with linked blocks, block checksums, content size");
	run_cmd("(printf abc | lz4 -c; printf def | lz4 -c)", &b);
	CHECK(decodes_to(MQ_CODEC_LZ4, b.p, b.len, (const uint8_t *)"abcdef", 6),
	      "concatenated lz4 frames");
#undef LINES
	mq_buf_free(&b);
	free(want);
}

static void test_snappy(void)
{
#ifdef HAVE_SNAPPY
	uint8_t *text = text_data(MIB);
	struct mq_buf x = { 0 };
	size_t n = snappy_max_compressed_length(MIB);
	uint8_t *raw = malloc(n);

	CHECK(snappy_compress((const char *)text, MIB, (char *)raw, &n) == SNAPPY_OK,
	      "snappy: compress raw");
	CHECK(decodes_to(MQ_CODEC_SNAPPY, raw, n, text, MIB), "snappy: raw block");
	CHECK(fails_corrupt(MQ_CODEC_SNAPPY, raw, n, MIB - 1), "snappy: raw over the limit");
	CHECK(fails_corrupt(MQ_CODEC_SNAPPY, raw, n / 2, MIB), "snappy: raw truncated");

	/* xerial: magic, version 1, compatible version 1, 32 KiB blocks. */
	static const uint8_t magic[8] = { 0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0 };
	uint8_t hdr[8];
	mq_buf_append(&x, magic, 8);
	mq_put32(hdr, 1);
	mq_put32(hdr + 4, 1);
	mq_buf_append(&x, hdr, 8);
	for (size_t off = 0; off < MIB; off += 32768) {
		size_t bn = snappy_max_compressed_length(32768);
		mq_buf_reserve(&x, 4 + bn);
		snappy_compress((const char *)text + off, 32768, (char *)x.p + x.len + 4, &bn);
		mq_put32(x.p + x.len, (uint32_t)bn);
		x.len += 4 + bn;
	}
	CHECK(decodes_to(MQ_CODEC_SNAPPY, x.p, x.len, text, MIB), "snappy: xerial framing");
	CHECK(decodes_to(MQ_CODEC_SNAPPY, x.p, 16, NULL, 0), "snappy: xerial with no block");
	CHECK(fails_corrupt(MQ_CODEC_SNAPPY, x.p, x.len, MIB / 2), "snappy: xerial over the limit");
	CHECK(fails_corrupt(MQ_CODEC_SNAPPY, x.p, x.len - 1, MIB), "snappy: xerial truncated block");
	CHECK(fails_corrupt(MQ_CODEC_SNAPPY, x.p, 18, MIB), "snappy: xerial truncated length");
	mq_put32(x.p + 16, 0x7fffffff);
	CHECK(fails_corrupt(MQ_CODEC_SNAPPY, x.p, x.len, MIB), "snappy: xerial huge block length");
	mq_buf_free(&x);
	free(raw);
	free(text);
#else
	struct mq_buf d = { 0 };
	int rc = mq_decompress(MQ_CODEC_SNAPPY, (const uint8_t *)"\x05\x10hello", 7, &d, 100);
	CHECK(rc == -1 && mq_errclass() == MQ_ECORRUPT &&
	      strstr(mq_errmsg(), "not supported (built without libsnappy)"),
	      "snappy: says it is not supported");
	mq_buf_free(&d);
#endif
}

static void test_zstd(void)
{
#ifdef HAVE_ZSTD
	uint8_t *text = text_data(MIB);
	size_t bound = ZSTD_compressBound(MIB), n;
	struct mq_buf z = { 0 };

	mq_buf_reserve(&z, 2 * bound);
	n = ZSTD_compress(z.p, bound, text, MIB, 3);
	CHECK(!ZSTD_isError(n), "zstd: one-shot compress");
	CHECK(decodes_to(MQ_CODEC_ZSTD, z.p, n, text, MIB), "zstd: frame with content size");
	CHECK(fails_corrupt(MQ_CODEC_ZSTD, z.p, n, MIB - 1), "zstd: over the limit");

	/* Streaming, as Java's zstd-jni writes: no content size, a checksum. */
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
	ZSTD_inBuffer ib = { text, MIB, 0 };
	ZSTD_outBuffer ob = { z.p, 2 * bound, 0 };
	size_t left;
	do
		left = ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_end);
	while (left != 0 && !ZSTD_isError(left));
	CHECK(left == 0, "zstd: streaming compress");
	CHECK(ZSTD_getFrameContentSize(z.p, ob.pos) == ZSTD_CONTENTSIZE_UNKNOWN,
	      "zstd: frame without content size");
	CHECK(decodes_to(MQ_CODEC_ZSTD, z.p, ob.pos, text, MIB), "zstd: frame without content size decodes");
	CHECK(fails_corrupt(MQ_CODEC_ZSTD, z.p, ob.pos, 1000), "zstd: no content size, over the limit");
	z.p[ob.pos - 1] ^= 1;
	CHECK(fails_corrupt(MQ_CODEC_ZSTD, z.p, ob.pos, MIB), "zstd: bad checksum");
	ZSTD_freeCCtx(cc);

	size_t a = ZSTD_compress(z.p, bound, "abc", 3, 1);
	size_t b = ZSTD_compress(z.p + a, bound, "def", 3, 1);
	CHECK(decodes_to(MQ_CODEC_ZSTD, z.p, a + b, (const uint8_t *)"abcdef", 6),
	      "zstd: concatenated frames");
	mq_buf_free(&z);
	free(text);
#else
	struct mq_buf d = { 0 };
	int rc = mq_decompress(MQ_CODEC_ZSTD, (const uint8_t *)"\x28\xb5\x2f\xfd", 4, &d, 100);
	CHECK(rc == -1 && mq_errclass() == MQ_ECORRUPT &&
	      strstr(mq_errmsg(), "not supported (built without libzstd)"),
	      "zstd: says it is not supported");
	mq_buf_free(&d);
#endif
}

/* Compresses in with codec the way a writer would (for the codecs mq
 * reads only, with their libraries); 0 when it cannot here. */
static size_t make_blob(int codec, const uint8_t *in, size_t len, struct mq_buf *out)
{
	out->len = 0;
	if (mq_codec_can_write(codec))
		return mq_compress(codec, in, len, out) == 0 ? out->len : 0;
#ifdef HAVE_SNAPPY
	if (codec == MQ_CODEC_SNAPPY) {
		size_t n = snappy_max_compressed_length(len);
		mq_buf_reserve(out, n);
		snappy_compress((const char *)in, len, (char *)out->p, &n);
		return out->len = n;
	}
#endif
#ifdef HAVE_ZSTD
	if (codec == MQ_CODEC_ZSTD) {
		size_t n = ZSTD_compressBound(len);
		mq_buf_reserve(out, n);
		return out->len = ZSTD_compress(out->p, n, in, len, 1);
	}
#endif
	return 0;
}

static void test_hostile(void)
{
	static const int codecs[] = { MQ_CODEC_GZIP, MQ_CODEC_SNAPPY, MQ_CODEC_LZ4, MQ_CODEC_ZSTD };
	uint8_t *text = text_data(MIB), *rnd = rand_data(MIB), *junk = rand_data(4096);
	struct mq_buf b = { 0 }, d = { 0 };

	for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++) {
		int c = codecs[i];
		const char *name = mq_codec_name(c);
		CHECK(fails_corrupt(c, NULL, 0, MIB), "%s: empty input is corrupt", name);
		CHECK(fails_corrupt(c, junk, 16, MIB), "%s: 16 bytes of garbage are corrupt", name);
		CHECK(fails_corrupt(c, junk, 4096, MIB), "%s: 4 KiB of garbage is corrupt", name);
		for (int k = 0; k < 2; k++) {
			const uint8_t *src = k ? rnd : text;
			size_t n = make_blob(c, src, MIB, &b);
			if (n == 0)
				continue;
			size_t cuts[] = { 1, 5, n / 2, n - 1 };
			for (size_t j = 0; j < 4; j++)
				CHECK(fails_corrupt(c, b.p, cuts[j], MIB), "%s: %s cut to %zu of %zu bytes",
				      name, k ? "random" : "text", cuts[j], n);
			CHECK(fails_corrupt(c, b.p, n, MIB - 1), "%s: %s one byte over the limit",
			      name, k ? "random" : "text");
			CHECK(strstr(mq_errmsg(), "decompressed size exceeds 1048575 bytes") &&
			      strncmp(mq_errmsg(), "cannot decompress ", 18) == 0,
			      "%s: limit message: %s", name, mq_errmsg());
			CHECK(decodes_to(c, b.p, n, src, MIB), "%s: %s exactly at the limit",
			      name, k ? "random" : "text");

			/* Random corruption: a clean result or MQ_ECORRUPT, never a crash. */
			int bad = 0;
			uint8_t *m = malloc(n);
			for (int t = 0; t < 300; t++) {
				memcpy(m, b.p, n);
				for (int f = 0; f < 1 + t % 4; f++)
					m[next_rand() % n] ^= (uint8_t)(1 + next_rand() % 255);
				size_t mn = t % 3 ? n : next_rand() % n;
				int rc = mq_decompress(c, m, mn, &d, MIB);
				if (rc != 0 && !(rc == -1 && mq_errclass() == MQ_ECORRUPT))
					bad++;
				if (rc == 0 && d.len > MIB)
					bad++;
			}
			free(m);
			CHECK_EQ_INT(bad, 0, "%s: 300 mutations of %s fail cleanly", name,
				     k ? "random" : "text");
		}
	}
	/* Kafka-style trailing garbage after a gzip member. */
	make_blob(MQ_CODEC_GZIP, text, 1000, &b);
	mq_buf_append(&b, "garbage!", 8);
	CHECK(fails_corrupt(MQ_CODEC_GZIP, b.p, b.len, MIB), "gzip: trailing garbage");
	make_blob(MQ_CODEC_GZIP, text, 1000, &b);
	b.p[b.len / 2] ^= 0x55;
	CHECK(fails_corrupt(MQ_CODEC_GZIP, b.p, b.len, MIB), "gzip: flipped byte");
	CHECK(fails_corrupt(7, text, 100, MIB) && strstr(mq_errmsg(), "unknown codec 7"),
	      "unknown codec 7 is corrupt");
	b.len = 0;
	CHECK(mq_compress(MQ_CODEC_SNAPPY, text, 100, &b) == -1 && mq_errclass() == MQ_EUSAGE &&
	      b.len == 0, "compress with snappy is refused");
	mq_buf_free(&b);
	mq_buf_free(&d);
	free(text);
	free(rnd);
	free(junk);
}

static void test_limit(void)
{
	static const int codecs[] = { MQ_CODEC_NONE, MQ_CODEC_GZIP, MQ_CODEC_SNAPPY,
				      MQ_CODEC_LZ4, MQ_CODEC_ZSTD };
	size_t big = 64 * (size_t)MIB, limit = MIB;
	uint8_t *zeros = calloc(1, big);
	struct mq_buf b = { 0 }, d = { 0 };

	for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++) {
		int c = codecs[i];
		const char *name = mq_codec_name(c);
		if (make_blob(c, zeros, big, &b) == 0 && c != MQ_CODEC_NONE)
			continue;
		int rc = mq_decompress(c, b.p, b.len, &d, limit);
		CHECK(rc == -1 && mq_errclass() == MQ_ECORRUPT &&
		      strstr(mq_errmsg(), "exceeds 1048576 bytes"),
		      "%s: 64 MiB of zeros (%zu bytes compressed) stops at 1 MiB", name, b.len);
		CHECK(d.cap <= 2 * limit + 65536, "%s: no more than the limit allocated (%zu)",
		      name, d.cap);
		CHECK_EQ_INT(d.len, 0, "%s: output emptied on error", name);
		mq_buf_free(&d);
		if (make_blob(c, NULL, 0, &b) == 0 && c != MQ_CODEC_NONE)
			continue;
		CHECK(decodes_to(c, b.p, b.len, NULL, 0), "%s: empty data within limit 0", name);
		make_blob(c, zeros, 1, &b);
		CHECK(fails_corrupt(c, b.p, b.len, 0), "%s: one byte over limit 0", name);
	}
	mq_buf_free(&b);
	free(zeros);
}

int main(void)
{
	test_names();
	test_roundtrip();
	test_gzip_format();
	test_lz4_format();
	test_tool_blobs();
	test_snappy();
	test_zstd();
	test_hostile();
	test_limit();
	return unit_done();
}
