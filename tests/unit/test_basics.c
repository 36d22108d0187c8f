/*
 * test_basics.c: unit tests of the byte helpers, CRC-32C and murmur2,
 * against published vectors: the CRC-32C check value, Kafka's
 * ByteUtilsTest varint encodings and murmur2 values from Kafka's
 * UtilsTest and the Java client.  The SSE4.2 CRC path is compared with
 * the portable one and with a bit-at-a-time reference on every length up
 * to 300 at every alignment, and on buffers long enough to reach its
 * three-way blocks with every kind of tail.
 */
#include <stdint.h>
#include <stdlib.h>

#include "mq.h"
#include "unit.h"

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static uint32_t crc_ref(uint32_t crc, const uint8_t *p, size_t n)
{
	int k;

	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = crc & 1 ? crc >> 1 ^ 0x82f63b78u : crc >> 1;
	}
	return ~crc;
}

static void test_crc(void)
{
	const char *check = "123456789";
	size_t big = 5 << 20, len, off, i, bad;
	uint8_t *buf = malloc(big + 64);
	uint32_t a, whole;
	/* Lengths around the three-way block sizes (3 * 256, 3 * 8192). */
	static const size_t edges[] = { 767, 768, 769, 775, 776, 1535, 1536,
		24575, 24576, 24577, 24583, 24584, 25343, 25344, 25351,
		49152, 49153, 50000, 73728 + 768 + 7 };

	CHECK(buf != NULL, "allocate %zu bytes", big);
	if (!buf)
		return;
	for (i = 0; i < big + 64; i++)
		buf[i] = (uint8_t)rnd();

	if (!mq_crc32c_hw_available())
		printf("# crc32c: hardware path not in use, hw checks compare sw with itself\n");
	CHECK_EQ_INT(mq_crc32c(0, check, 9), 0xe3069283u, "crc32c check value");
	CHECK_EQ_INT(mq_crc32c_sw(0, check, 9), 0xe3069283u, "crc32c_sw check value");
	CHECK_EQ_INT(crc_ref(0, (const uint8_t *)check, 9), 0xe3069283u,
		     "reference crc check value");
	CHECK_EQ_INT(mq_crc32c(0, "", 0), 0, "crc32c of nothing");
	CHECK_EQ_INT(mq_crc32c(0x12345678, NULL, 0), 0x12345678, "crc32c of nothing keeps crc");
	CHECK_EQ_INT(mq_crc32c(mq_crc32c(0, "1234", 4), "56789", 5), 0xe3069283u,
		     "crc32c continues");
	CHECK_EQ_INT(mq_crc32c_sw(mq_crc32c_sw(0, "12345", 5), "6789", 4), 0xe3069283u,
		     "crc32c_sw continues");

	bad = 0;
	for (len = 0; len <= 300; len++)
		for (off = 0; off < 16; off++) {
			a = crc_ref(0, buf + off, len);
			if (mq_crc32c(0, buf + off, len) != a ||
			    mq_crc32c_sw(0, buf + off, len) != a ||
			    mq_crc32c(a, buf + off, len) != crc_ref(a, buf + off, len))
				bad++;
		}
	CHECK_EQ_INT(bad, 0, "hw == sw == reference, lengths 0..300, offsets 0..15");

	bad = 0;
	for (i = 0; i < sizeof edges / sizeof edges[0]; i++)
		for (off = 0; off < 8; off++) {
			a = crc_ref(0, buf + off, edges[i]);
			if (mq_crc32c(0, buf + off, edges[i]) != a ||
			    mq_crc32c_sw(0, buf + off, edges[i]) != a)
				bad++;
		}
	CHECK_EQ_INT(bad, 0, "hw == sw == reference around block sizes");

	bad = 0;
	for (i = 0; i < 200; i++) {
		len = rnd() % (200 << 10);
		off = rnd() % 64;
		if (mq_crc32c(0, buf + off, len) != mq_crc32c_sw(0, buf + off, len))
			bad++;
	}
	CHECK_EQ_INT(bad, 0, "hw == sw, 200 random lengths below 200 KiB");

	whole = mq_crc32c_sw(0, buf + 3, big);
	CHECK_EQ_INT(mq_crc32c(0, buf + 3, big), whole, "hw == sw over 5 MiB");
	CHECK_EQ_INT(crc_ref(0, buf + 3, 1 << 20), mq_crc32c(0, buf + 3, 1 << 20),
		     "hw == reference over 1 MiB");
	bad = 0;
	for (i = 0; i < 20; i++) {
		len = rnd() % big;
		a = mq_crc32c(0, buf + 3, len);
		if (mq_crc32c(a, buf + 3 + len, big - len) != whole ||
		    mq_crc32c_sw(mq_crc32c_sw(0, buf + 3, len), buf + 3 + len,
				 big - len) != whole)
			bad++;
	}
	CHECK_EQ_INT(bad, 0, "crc32c split at 20 random points equals one call");
	free(buf);
}

static void test_murmur2(void)
{
	CHECK_EQ_INT(mq_murmur2("21", 2), -973932308, "murmur2 \"21\"");
	CHECK_EQ_INT(mq_murmur2("foobar", 6), -790332482, "murmur2 \"foobar\"");
	CHECK_EQ_INT(mq_murmur2("a-little-bit-long-string", 24), -985981536,
		     "murmur2 \"a-little-bit-long-string\"");
	CHECK_EQ_INT(mq_murmur2("a-little-bit-longer-string", 26), -1486304829,
		     "murmur2 \"a-little-bit-longer-string\"");
	CHECK_EQ_INT(mq_murmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", 48),
		     -58897971, "murmur2 48-byte key");
	CHECK_EQ_INT(mq_murmur2("abc", 3), 479470107, "murmur2 \"abc\"");
	CHECK_EQ_INT(mq_murmur2("kafka", 5), (int32_t)0xd067cf64, "murmur2 \"kafka\"");
	CHECK_EQ_INT(mq_murmur2("", 0), (int32_t)0x106e08d9, "murmur2 \"\"");
	CHECK_EQ_INT(mq_partition_for_key("21", 2, 1), 0, "partition of any key among 1");
	CHECK_EQ_INT(mq_partition_for_key("21", 2, 7),
		     (-973932308 & 0x7fffffff) % 7, "partition of \"21\" among 7");
	CHECK_EQ_INT(mq_partition_for_key("foobar", 6, 12),
		     (-790332482 & 0x7fffffff) % 12, "partition of \"foobar\" among 12");
	CHECK_EQ_INT(mq_partition_for_key("abc", 3, 3), 479470107 % 3,
		     "partition of \"abc\" among 3");
	CHECK_EQ_INT(mq_partition_for_key("abc", 3, 0), -1, "0 partitions refused");
	CHECK_EQ_INT(mq_errclass(), MQ_EUSAGE, "0 partitions is a usage error");
}

struct vint {
	int32_t v;
	size_t n;
	uint8_t enc[5];
};

static void test_varint(void)
{
	static const struct vint vs[] = {
		{ 0, 1, { 0x00 } },
		{ -1, 1, { 0x01 } },
		{ 1, 1, { 0x02 } },
		{ 63, 1, { 0x7e } },
		{ -64, 1, { 0x7f } },
		{ 64, 2, { 0x80, 0x01 } },
		{ -65, 2, { 0x81, 0x01 } },
		{ 8191, 2, { 0xfe, 0x7f } },
		{ -8192, 2, { 0xff, 0x7f } },
		{ 8192, 3, { 0x80, 0x80, 0x01 } },
		{ -8193, 3, { 0x81, 0x80, 0x01 } },
		{ 1048575, 3, { 0xfe, 0xff, 0x7f } },
		{ -1048576, 3, { 0xff, 0xff, 0x7f } },
		{ 1048576, 4, { 0x80, 0x80, 0x80, 0x01 } },
		{ -1048577, 4, { 0x81, 0x80, 0x80, 0x01 } },
		{ 134217727, 4, { 0xfe, 0xff, 0xff, 0x7f } },
		{ -134217728, 4, { 0xff, 0xff, 0xff, 0x7f } },
		{ 134217728, 5, { 0x80, 0x80, 0x80, 0x80, 0x01 } },
		{ -134217729, 5, { 0x81, 0x80, 0x80, 0x80, 0x01 } },
		{ INT32_MAX, 5, { 0xfe, 0xff, 0xff, 0xff, 0x0f } },
		{ INT32_MIN, 5, { 0xff, 0xff, 0xff, 0xff, 0x0f } },
	};
	static const uint8_t too_long[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 };
	uint8_t buf[16];
	size_t i, n, bad;
	int32_t v;

	for (i = 0; i < sizeof vs / sizeof vs[0]; i++) {
		memset(buf, 0xaa, sizeof buf);
		n = mq_varint_put(buf, vs[i].v);
		CHECK(n == vs[i].n && memcmp(buf, vs[i].enc, n) == 0,
		      "varint_put %d", (int)vs[i].v);
		CHECK_EQ_INT(mq_varint_size(vs[i].v), vs[i].n, "varint_size %d", (int)vs[i].v);
		v = 12345;
		n = mq_varint_get(vs[i].enc, vs[i].n, &v);
		CHECK(n == vs[i].n && v == vs[i].v, "varint_get %d", (int)vs[i].v);
		bad = 0;
		for (n = 0; n < vs[i].n; n++)
			if (mq_varint_get(vs[i].enc, n, &v) != 0)
				bad++;
		CHECK_EQ_INT(bad, 0, "varint_get %d truncated returns 0", (int)vs[i].v);
	}
	CHECK_EQ_INT(mq_varint_get(too_long, sizeof too_long, &v), 0,
		     "varint_get of 6 bytes returns 0");
	CHECK_EQ_INT(mq_varint_get(buf, 0, &v), 0, "varint_get of nothing returns 0");

	bad = 0;
	for (i = 0; i < 100000; i++) {
		int32_t x = (int32_t)rnd() >> (rnd() % 32), y = 0;

		n = mq_varint_put(buf, x);
		if (n != mq_varint_size(x) || mq_varint_get(buf, sizeof buf, &y) != n || y != x)
			bad++;
	}
	CHECK_EQ_INT(bad, 0, "varint round trips of random values");
}

static void test_varlong(void)
{
	static const int64_t vals[] = { 0, -1, 1, 63, -64, 64, -65, 8191, -8192,
		INT32_MAX, INT32_MIN, (int64_t)INT32_MAX + 1, (int64_t)INT32_MIN - 1,
		1700000000000, -1700000000000, INT64_MAX, INT64_MIN,
		INT64_MAX - 1, INT64_MIN + 1 };
	static const uint8_t max[] = { 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
				       0xff, 0xff, 0x01 };
	static const uint8_t min[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
				       0xff, 0xff, 0x01 };
	static const uint8_t too_long[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
					    0x80, 0x80, 0x80, 0x80, 0x01 };
	uint8_t buf[16], b64[5];
	size_t i, n, k, bad;
	int64_t v;

	n = mq_varlong_put(buf, INT64_MAX);
	CHECK(n == 10 && memcmp(buf, max, 10) == 0, "varlong_put INT64_MAX");
	n = mq_varlong_put(buf, INT64_MIN);
	CHECK(n == 10 && memcmp(buf, min, 10) == 0, "varlong_put INT64_MIN");
	n = mq_varlong_put(buf, 64);
	CHECK(n == 2 && buf[0] == 0x80 && buf[1] == 0x01, "varlong_put 64");

	for (i = 0; i < sizeof vals / sizeof vals[0]; i++) {
		n = mq_varlong_put(buf, vals[i]);
		v = 12345;
		CHECK(mq_varlong_get(buf, n, &v) == n && v == vals[i],
		      "varlong round trip %lld", (long long)vals[i]);
		bad = 0;
		for (k = 0; k < n; k++)
			if (mq_varlong_get(buf, k, &v) != 0)
				bad++;
		CHECK_EQ_INT(bad, 0, "varlong_get %lld truncated returns 0",
			     (long long)vals[i]);
		if (vals[i] >= INT32_MIN && vals[i] <= INT32_MAX) {
			mq_varint_put(b64, (int32_t)vals[i]);
			CHECK_MEM(buf, b64, n, "varlong and varint agree on %lld",
				  (long long)vals[i]);
		}
	}
	CHECK_EQ_INT(mq_varlong_get(too_long, sizeof too_long, &v), 0,
		     "varlong_get of 11 bytes returns 0");

	bad = 0;
	for (i = 0; i < 100000; i++) {
		int64_t x = (int64_t)((uint64_t)rnd() << 32 | rnd()) >> (rnd() % 64), y = 0;

		n = mq_varlong_put(buf, x);
		if (mq_varlong_get(buf, sizeof buf, &y) != n || y != x)
			bad++;
	}
	CHECK_EQ_INT(bad, 0, "varlong round trips of random values");
}

static void test_buf(void)
{
	struct mq_buf b = { 0 };
	size_t i, bad = 0, cap;
	uint8_t byte;

	CHECK_EQ_INT(mq_buf_reserve(&b, 0), 0, "reserve 0 on an empty buffer");
	CHECK_EQ_INT(mq_buf_append(&b, NULL, 0), 0, "append nothing");
	CHECK_EQ_INT(b.len, 0, "empty buffer stays empty");
	for (i = 0; i < 100000; i++) {
		byte = (uint8_t)i;
		if (mq_buf_append(&b, &byte, 1) < 0)
			bad++;
	}
	CHECK_EQ_INT(bad, 0, "100000 one-byte appends");
	CHECK_EQ_INT(b.len, 100000, "length after appends");
	CHECK(b.cap >= b.len && b.cap < 4 * b.len, "capacity grows geometrically (%zu)", b.cap);
	for (i = 0, bad = 0; i < b.len; i++)
		if (b.p[i] != (uint8_t)i)
			bad++;
	CHECK_EQ_INT(bad, 0, "contents after appends");
	cap = b.cap;
	CHECK_EQ_INT(mq_buf_reserve(&b, cap - b.len), 0, "reserve within capacity");
	CHECK_EQ_INT(b.cap, cap, "reserve within capacity keeps the block");
	CHECK_EQ_INT(mq_buf_reserve(&b, 1 << 20), 0, "reserve 1 MiB more");
	CHECK(b.cap - b.len >= 1 << 20, "room for 1 MiB more");
	CHECK_EQ_INT(mq_buf_append(&b, "abc", 3), 0, "append 3 bytes");
	CHECK_MEM(b.p + 100000, "abc", 3, "appended bytes in place");
	CHECK_EQ_INT(mq_buf_reserve(&b, SIZE_MAX), -1, "reserve SIZE_MAX fails");
	CHECK_EQ_INT(mq_errclass(), MQ_EIO, "out of memory is MQ_EIO");
	CHECK(strcmp(mq_errmsg(), "out of memory") == 0, "out of memory message");
	CHECK_EQ_INT(b.len, 100003, "failed reserve keeps the contents");
	mq_buf_free(&b);
	CHECK(b.p == NULL && b.len == 0 && b.cap == 0, "free empties the buffer");
	mq_buf_free(&b);
	CHECK(1, "free twice is harmless");
}

int main(void)
{
	test_crc();
	test_murmur2();
	test_varint();
	test_varlong();
	test_buf();
	return unit_done();
}
