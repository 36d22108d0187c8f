/*
 * test_format.c: unit tests of the kcat-style record formats of
 * mq-consume -f (format.c): every token, null and empty keys and values,
 * binary values whose NUL bytes must come out unchanged, headers read
 * back from a real encoded batch, every escape, %%, the compile errors,
 * a long format and 1 MiB values.  Ends with a micro-benchmark of '%s\n'
 * over 1M records, reported as a "# " line (no assertion on time).
 */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "mq.h"
#include "unit.h"

static struct mq_record rec(int64_t offset, int64_t ts, const char *key, const char *value)
{
	struct mq_record r;

	memset(&r, 0, sizeof r);
	r.offset = offset;
	r.timestamp = ts;
	r.key = (const uint8_t *)key;
	r.key_len = key ? (int32_t)strlen(key) : -1;
	r.value = (const uint8_t *)value;
	r.value_len = value ? (int32_t)strlen(value) : -1;
	return r;
}

/* fmt with its control characters shown as escapes, for test names. */
static const char *show(const char *fmt)
{
	static char buf[256];
	size_t n = 0;

	for (; *fmt && n + 5 < sizeof buf; fmt++) {
		unsigned char c = (unsigned char)*fmt;
		if (c == '\n')
			n += (size_t)snprintf(buf + n, sizeof buf - n, "\\n");
		else if (c < 0x20 || c >= 0x7f)
			n += (size_t)snprintf(buf + n, sizeof buf - n, "\\x%02x", c);
		else
			buf[n++] = (char)c;
	}
	buf[n] = '\0';
	return buf;
}

/* Formats r through fmt and compares the output with want[0..wlen). */
static void check_fmt(const char *fmt, const char *topic, int32_t part,
		      const struct mq_record *r, const char *want, size_t wlen)
{
	struct mq_format *f;
	struct mq_buf b = { 0 };
	int rc, ok;

	if (mq_format_compile(fmt, &f) < 0) {
		CHECK(0, "compile '%s': %s", show(fmt), mq_errmsg());
		return;
	}
	rc = mq_format_record(&b, f, topic, part, r);
	ok = rc == 0 && b.len == wlen && (wlen == 0 || memcmp(b.p, want, wlen) == 0);
	CHECK(ok, "format '%s' gives %zu expected bytes", show(fmt), wlen);
	if (rc == 0 && !ok)
		printf("#   got '%.*s' (%zu bytes)\n", (int)b.len, (const char *)b.p, b.len);
	mq_buf_free(&b);
	mq_format_free(f);
}

#define CHECK_FMT(fmt, topic, part, r, want) \
	check_fmt(fmt, topic, part, r, want, sizeof want - 1)

static void test_tokens(void)
{
	struct mq_record r = rec(42, 1763769600123, "host1", "GET /");

	CHECK_FMT("%t", "logs", 3, &r, "logs");
	CHECK_FMT("%p", "logs", 3, &r, "3");
	CHECK_FMT("%o", "logs", 3, &r, "42");
	CHECK_FMT("%k", "logs", 3, &r, "host1");
	CHECK_FMT("%s", "logs", 3, &r, "GET /");
	CHECK_FMT("%S", "logs", 3, &r, "5");
	CHECK_FMT("%K", "logs", 3, &r, "5");
	CHECK_FMT("%T", "logs", 3, &r, "1763769600123");
	CHECK_FMT("%D", "logs", 3, &r, "2025-11-22T00:00:00.123Z");
	CHECK_FMT("%h", "logs", 3, &r, "");
	CHECK_FMT("%%", "logs", 3, &r, "%");
	CHECK_FMT("", "logs", 3, &r, "");
	CHECK_FMT("plain text", "logs", 3, &r, "plain text");
	CHECK_FMT("%t/%p@%o %k=%s\n", "logs", 0, &r, "logs/0@42 host1=GET /\n");
	CHECK_FMT("100%% %s%%", "logs", 0, &r, "100% GET /%");
	CHECK_FMT("%%s", "logs", 0, &r, "%s");
	CHECK_FMT("%s%s%k%k%t%t", "ab", 0, &r, "GET /GET /host1host1abab");
	CHECK_FMT("%t", NULL, 0, &r, "");
}

static void test_integers(void)
{
	static const struct { int64_t v; const char *s; } cases[] = {
		{ 0, "0" }, { 1, "1" }, { 9, "9" }, { 10, "10" }, { 99, "99" },
		{ 100, "100" }, { 999, "999" }, { 1000, "1000" }, { 9999, "9999" },
		{ 10000, "10000" }, { 12345678, "12345678" }, { 123456789, "123456789" },
		{ -1, "-1" }, { -10, "-10" }, { -12345, "-12345" },
		{ INT64_MAX, "9223372036854775807" },
		{ INT64_MIN, "-9223372036854775808" },
		{ 10000000000000000000u / 10, "1000000000000000000" },
		{ 4294967295, "4294967295" }, { 4294967296, "4294967296" },
		{ -4294967296, "-4294967296" }, { 100000000, "100000000" },
		{ 100000001, "100000001" }, { 1000000000000000001, "1000000000000000001" },
		{ 10000000000000009, "10000000000000009" }, { 1763769600000, "1763769600000" },
	};
	struct mq_record r = rec(0, 0, NULL, NULL);
	char want[64];
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		r.offset = cases[i].v;
		r.timestamp = cases[i].v;
		snprintf(want, sizeof want, "%s %s", cases[i].s, cases[i].s);
		check_fmt("%o %T", "t", 0, &r, want, strlen(want));
	}
	for (i = 1; i < 20; i++) {
		/* every digit count, and 10^n - 1 */
		int64_t v = 1;
		size_t k;
		for (k = 1; k < i; k++)
			v *= 10;
		r.offset = v;
		r.timestamp = v - 1;
		snprintf(want, sizeof want, "%lld %lld", (long long)v, (long long)(v - 1));
		check_fmt("%o %T", "t", 0, &r, want, strlen(want));
	}
	CHECK_FMT("%p", "t", INT32_MAX, &r, "2147483647");
	CHECK_FMT("%p", "t", INT32_MIN, &r, "-2147483648");
	CHECK_FMT("%p", "t", -1, &r, "-1");
	r.timestamp = -1;
	CHECK_FMT("%T %D", "t", 0, &r, "-1 -");
	r.timestamp = 0;
	CHECK_FMT("%D", "t", 0, &r, "1970-01-01T00:00:00.000Z");
	r.timestamp = 253402300799999;
	CHECK_FMT("%D", "t", 0, &r, "9999-12-31T23:59:59.999Z");
	r.timestamp = INT64_MAX;    /* a year of nine digits still fits */
	{
		struct mq_format *f;
		struct mq_buf b = { 0 };
		char date[64];
		int rc;
		mq_format_time(INT64_MAX, date, sizeof date);
		mq_format_compile("%D", &f);
		rc = mq_format_record(&b, f, "t", 0, &r);
		CHECK(rc == 0 && b.len == strlen(date) && memcmp(b.p, date, b.len) == 0,
		      "%%D of INT64_MAX is mq_format_time's (%s)", date);
		mq_buf_free(&b);
		mq_format_free(f);
	}
}

static void test_nulls(void)
{
	struct mq_record r = rec(7, 1, NULL, NULL);

	CHECK_FMT("[%k][%s][%K][%S]", "t", 0, &r, "[][][-1][-1]");
	r = rec(7, 1, "", "");
	CHECK_FMT("[%k][%s][%K][%S]", "t", 0, &r, "[][][0][0]");
	r = rec(7, 1, NULL, "v");
	CHECK_FMT("[%k][%s][%K][%S]", "t", 0, &r, "[][v][-1][1]");
	r = rec(7, 1, "k", NULL);
	CHECK_FMT("[%k][%s][%K][%S]", "t", 0, &r, "[k][][1][-1]");
}

static void test_binary(void)
{
	static const uint8_t val[] = { 'a', 0, 'b', 0, 0, 0xff, 0x80, '\n', 0 };
	static const uint8_t key[] = { 0, 1, 2 };
	struct mq_record r = rec(1, 1, NULL, NULL);

	r.value = val;
	r.value_len = sizeof val;
	r.key = key;
	r.key_len = sizeof key;
	check_fmt("%s", "t", 0, &r, (const char *)val, sizeof val);
	CHECK_FMT("<%k|%s>", "t", 0, &r, "<\0\1\2|a\0b\0\0\xff\x80\n\0>");
	CHECK_FMT("%S %K", "t", 0, &r, "9 3");
}

static void test_escapes(void)
{
	struct mq_record r = rec(5, 1, "k", "v");

	CHECK_FMT("\\n", "t", 0, &r, "\n");
	CHECK_FMT("\\t", "t", 0, &r, "\t");
	CHECK_FMT("\\r", "t", 0, &r, "\r");
	CHECK_FMT("\\\\", "t", 0, &r, "\\");
	CHECK_FMT("\\0", "t", 0, &r, "\0");
	CHECK_FMT("\\x00", "t", 0, &r, "\0");
	CHECK_FMT("%s\\x00%k\\0", "t", 0, &r, "v\0k\0");
	CHECK_FMT("\\x41\\x7a\\xFf\\x0a", "t", 0, &r, "Az\xff\n");
	CHECK_FMT("%k\\t%s\\r\\n", "t", 0, &r, "k\tv\r\n");
	CHECK_FMT("\\\\n", "t", 0, &r, "\\n");
	CHECK_FMT("%%\\n", "t", 0, &r, "%\n");
	CHECK_FMT("\\x25s", "t", 0, &r, "%s");   /* an escaped % is a literal */
}

static void check_err(const char *fmt, const char *want)
{
	struct mq_format *f = NULL;
	int rc = mq_format_compile(fmt, &f);

	CHECK(rc == -1 && mq_errclass() == MQ_EUSAGE && strcmp(mq_errmsg(), want) == 0,
	      "compile '%s' fails: %s", show(fmt), want);
	if (rc == 0) {
		mq_format_free(f);
	} else if (strcmp(mq_errmsg(), want) != 0) {
		printf("#   got '%s'\n", mq_errmsg());
	}
}

static void test_errors(void)
{
	check_err("%q", "unknown format token '%q'");
	check_err("%o %x", "unknown format token '%x'");
	check_err("%", "format ends with a lone '%'");
	check_err("%s\\n%", "format ends with a lone '%'");
	check_err("\\q", "invalid escape '\\q' in format");
	check_err("\\xZZ", "invalid escape '\\xZZ' in format");
	check_err("\\x4g", "invalid escape '\\x4g' in format");
	check_err("\\x", "format ends inside an escape");
	check_err("\\x4", "format ends inside an escape");
	check_err("%s\\", "format ends inside an escape");
}

/* A record with headers, the way consumers see them: encoded by the
 * builder, parsed back from the batch. */
static void test_headers(void)
{
	struct mq_header hs[] = {
		{ (const uint8_t *)"trace", 5, (const uint8_t *)"abc", 3 },
		{ (const uint8_t *)"flag", 4, NULL, -1 },
		{ (const uint8_t *)"empty", 5, (const uint8_t *)"", 0 },
		{ (const uint8_t *)"bin", 3, (const uint8_t *)"x\0y", 3 },
	};
	struct mq_batch_builder bb;
	struct mq_batch b;
	struct mq_record_iter it;
	struct mq_record r;
	int ok;

	memset(&it, 0, sizeof it);
	mq_batch_builder_init(&bb, MQ_CODEC_NONE);
	ok = mq_batch_builder_add(&bb, 1000, "k", 1, "v", 1, hs, 4) == 0 &&
	     mq_batch_builder_add(&bb, 1001, "k2", 2, "v2", 2, NULL, 0) == 0 &&
	     mq_batch_builder_add(&bb, 1002, NULL, -1, NULL, -1, hs + 1, 1) == 0 &&
	     mq_batch_builder_finish(&bb, 0) == 0;
	CHECK(ok, "batch with headers built");
	ok = mq_batch_parse(bb.out.p, bb.out.len, &b) == MQ_BATCH_OK &&
	     mq_record_iter_init(&it, &b, 1 << 20) == 0;
	CHECK(ok, "batch parsed");

	ok = mq_record_next(&it, &r) == 1;
	CHECK(ok && r.header_count == 4, "first record, 4 headers");
	CHECK_FMT("%h", "t", 0, &r, "trace=abc,flag,empty=,bin=x\0y");
	CHECK_FMT("%o:%k=%s [%h] %T\n", "t", 0, &r,
		  "0:k=v [trace=abc,flag,empty=,bin=x\0y] 1000\n");
	CHECK_FMT("%h|%h", "t", 0, &r,
		  "trace=abc,flag,empty=,bin=x\0y|trace=abc,flag,empty=,bin=x\0y");

	ok = mq_record_next(&it, &r) == 1;
	CHECK(ok && r.header_count == 0, "second record, no headers");
	CHECK_FMT("[%h] %o %s", "t", 0, &r, "[] 1 v2");

	ok = mq_record_next(&it, &r) == 1;
	CHECK(ok && r.header_count == 1, "third record, 1 header");
	CHECK_FMT("[%h] %o [%k] [%s] %K %S", "t", 0, &r, "[flag] 2 [] [] -1 -1");
	mq_record_iter_free(&it);
	mq_batch_builder_free(&bb);

	/* A malformed header (key length past the end) is an error, and
	 * leaves the buffer as it was. */
	{
		static const uint8_t bad[] = { 0x40, 'a' };   /* key length 32 */
		struct mq_format *f;
		struct mq_buf out = { 0 };
		r = rec(0, 0, "k", "v");
		r.headers = bad;
		r.headers_len = sizeof bad;
		r.header_count = 1;
		mq_buf_append(&out, "keep", 4);
		mq_format_compile("%s %h\n", &f);
		ok = mq_format_record(&out, f, "t", 0, &r);
		CHECK(ok == -1 && mq_errclass() == MQ_ECORRUPT, "malformed headers: MQ_ECORRUPT");
		CHECK(out.len == 4 && memcmp(out.p, "keep", 4) == 0,
		      "malformed headers: output untouched");
		mq_format_free(f);
		mq_buf_free(&out);
	}
}

static void test_long_format(void)
{
	struct mq_record r = rec(12, 34, "key", "value");
	struct mq_format *f;
	struct mq_buf out = { 0 }, want = { 0 };
	char *fmt;
	size_t i, n = 5000, len = 0;
	int rc;

	/* 5000 pieces: a literal, a token and an escape each */
	fmt = malloc(n * 16 + 1);
	for (i = 0; i < n; i++) {
		static const char *const pieces[][2] = {
			{ "lit%o\\t", "lit12\t" }, { "%k%%", "key%" }, { "x%s\\x41", "xvalueA" },
			{ "%T\\n", "34\n" }, { "%K%S", "35" }, { "%t%p", "topic7" },
		};
		memcpy(fmt + len, pieces[i % 6][0], strlen(pieces[i % 6][0]));
		len += strlen(pieces[i % 6][0]);
		mq_buf_append(&want, pieces[i % 6][1], strlen(pieces[i % 6][1]));
	}
	fmt[len] = '\0';
	rc = mq_format_compile(fmt, &f);
	CHECK(rc == 0, "compile a %zu-byte format", len);
	if (rc < 0)
		return;
	rc = mq_format_record(&out, f, "topic", 7, &r);
	CHECK(rc == 0 && out.len == want.len && memcmp(out.p, want.p, want.len) == 0,
	      "long format gives %zu bytes", want.len);
	/* twice more, appending */
	rc = mq_format_record(&out, f, "topic", 7, &r) | mq_format_record(&out, f, "topic", 7, &r);
	CHECK(rc == 0 && out.len == 3 * want.len &&
	      memcmp(out.p + 2 * want.len, want.p, want.len) == 0, "long format appends");
	mq_format_free(f);
	mq_buf_free(&out);
	mq_buf_free(&want);
	free(fmt);
}

static void test_large(void)
{
	size_t n = 1 << 20, i;
	uint8_t *v = malloc(n), *k = malloc(n);
	struct mq_record r = rec(1, 1, NULL, NULL);
	struct mq_format *f;
	struct mq_buf out = { 0 };
	int ok;

	for (i = 0; i < n; i++) {
		v[i] = (uint8_t)(i * 7 + (i >> 8));
		k[i] = (uint8_t)(i * 13 + 1);
	}
	r.value = v;
	r.value_len = (int32_t)n;
	r.key = k;
	r.key_len = (int32_t)n;
	mq_format_compile("%k|%s|%s\n", &f);
	ok = mq_format_record(&out, f, "t", 0, &r) == 0;
	CHECK(ok && out.len == 3 * n + 3 && memcmp(out.p, k, n) == 0 && out.p[n] == '|' &&
	      memcmp(out.p + n + 1, v, n) == 0 && out.p[2 * n + 1] == '|' &&
	      memcmp(out.p + 2 * n + 2, v, n) == 0 && out.p[3 * n + 2] == '\n',
	      "1 MiB key and value, exact bytes");
	/* appended after a small record, into a buffer that must grow */
	mq_buf_free(&out);
	r.value_len = 3;
	ok = mq_format_record(&out, f, "t", 0, &r) == 0;
	r.value_len = (int32_t)n;
	ok = ok && mq_format_record(&out, f, "t", 0, &r) == 0;
	CHECK(ok && out.len == (n + 1 + 3 + 1 + 3 + 1) + 3 * n + 3 &&
	      memcmp(out.p + n + 9, k, n) == 0 && memcmp(out.p + n + 9 + 2 * n + 2, v, n) == 0,
	      "1 MiB value after a small one");
	mq_format_free(f);
	mq_buf_free(&out);
	free(v);
	free(k);
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static __attribute__((noinline)) void append_line(struct mq_buf *b, const uint8_t *p, size_t n)
{
	if (b->cap - b->len < n + 1 && mq_buf_reserve(b, n + 1) < 0)
		return;
	memcpy(b->p + b->len, p, n);
	b->p[b->len + n] = '\n';
	b->len += n + 1;
}

/* ns per record of fmt over n 100-byte values, best of 3 runs; the
 * buffer is emptied every 64 KiB as a consumer's write() would.  With
 * fmt NULL, the baseline: an out-of-line memcpy of the value and a
 * newline. */
static double bench(const char *fmt, size_t n)
{
	static uint8_t vals[16][100];
	struct mq_record r = rec(1000000, 1763769600000, "key-123", NULL);
	struct mq_format *f = NULL;
	struct mq_buf out = { 0 };
	size_t i, j, sum = 0;
	double t0, t, best = 0;
	int run, rc = 0;

	for (i = 0; i < 16; i++)
		for (j = 0; j < 100; j++)
			vals[i][j] = (uint8_t)('a' + (i + j) % 26);
	if (fmt)
		mq_format_compile(fmt, &f);
	mq_buf_reserve(&out, 1 << 17);
	r.value_len = 100;
	for (run = 0; run < 3; run++) {
		t0 = now_ns();
		for (i = 0; i < n; i++) {
			r.value = vals[i & 15];
			r.offset++;
			if (!f)
				append_line(&out, r.value, 100);
			else
				rc |= mq_format_record(&out, f, "logs", 0, &r);
			if (out.len >= 1 << 16) {
				sum += out.p[out.len / 2];
				out.len = 0;
			}
		}
		t = (now_ns() - t0) / (double)n;
		if (run == 0 || t < best)
			best = t;
	}
	CHECK(rc == 0 && sum > 0, "benchmark '%s' over %zu records", fmt ? show(fmt) : "memcpy", n);
	mq_format_free(f);
	mq_buf_free(&out);
	return best;
}

int main(void)
{
	double base, s, full;

	test_tokens();
	test_integers();
	test_nulls();
	test_binary();
	test_escapes();
	test_errors();
	test_headers();
	test_long_format();
	test_large();

	base = bench(NULL, 1000000);
	s = bench("%s\\n", 1000000);
	full = bench("%t %p %o %T %k %s\\n", 1000000);
	printf("# format '%%s\\n': %.1f ns/record (memcpy and newline alone: %.1f); "
	       "'%%t %%p %%o %%T %%k %%s\\n': %.1f ns/record\n", s, base, full);
	return unit_done();
}
