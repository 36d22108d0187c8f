/*
 * crc32c.c: CRC-32C (Castagnoli), the checksum of every RecordBatch v2
 * (DESIGN.md §3), so it runs over every byte mq writes, verifies,
 * replicates or dumps.  Reflected polynomial 0x82f63b78, register preset
 * to and result xored with 0xffffffff: crc32c("123456789") = 0xe3069283,
 * and a CRC can be continued by passing the previous result as crc.
 *
 * Two paths compute the same function.  The portable one is
 * slicing-by-8: eight 256-entry tables fold eight input bytes per step
 * (about 2 GB/s).  On x86-64 with SSE4.2 the crc32 instruction does
 * eight bytes per instruction, but it has a latency of three cycles and
 * a throughput of one per cycle, so a single dependent chain leaves two
 * thirds of the unit idle.  The hardware path therefore splits long
 * input into three adjacent blocks, runs one chain over each at the same
 * time (the second and third starting from 0), and joins them: because
 * the unconditioned CRC register is linear, crc(A || B) equals crc(A)
 * advanced over |B| zero bytes, xored with crc of B from 0.  Advancing
 * over n zero bytes is multiplication by x^(8n) modulo the polynomial,
 * done with four 256-entry tables per block size, computed once with the
 * carry-less multiply that zlib's crc32_combine uses.
 *
 * Tables are built on first use under pthread_once.  MQ_CRC32C_SW=1 in
 * the environment forces the portable path (tests and benchmarks).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mq.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CRC_HW 1
#include <nmmintrin.h>
#endif

#define POLY 0x82f63b78u

static uint32_t sw_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static int use_hw;

#ifdef CRC_HW
/* Bytes per stream in the three-way loops, and the tables that advance
 * a register over that many zero bytes. */
#define LONG_BLOCK 8192
#define SHORT_BLOCK 256
static uint32_t long_zeros[4][256], short_zeros[4][256];

/* a * b modulo POLY, both reflected (x^0 is the top bit). */
static uint32_t multmodp(uint32_t a, uint32_t b)
{
	uint32_t m = 1u << 31, p = 0;

	for (;;) {
		if (a & m) {
			p ^= b;
			if (!(a & (m - 1)))
				break;
		}
		m >>= 1;
		b = b & 1 ? b >> 1 ^ POLY : b >> 1;
	}
	return p;
}

/* x^(8n) modulo POLY: the operator for n zero bytes. */
static uint32_t x8nmodp(size_t n)
{
	uint32_t p = 1u << 31, sq = 1u << 30;    /* x^0, x^1 */
	int i;

	for (i = 0; i < 3; i++)
		sq = multmodp(sq, sq);               /* x^8 */
	while (n) {
		if (n & 1)
			p = multmodp(sq, p);
		sq = multmodp(sq, sq);
		n >>= 1;
	}
	return p;
}

static void zeros_table(uint32_t t[4][256], size_t n)
{
	uint32_t op = x8nmodp(n);
	int k, b;

	for (k = 0; k < 4; k++)
		for (b = 0; b < 256; b++)
			t[k][b] = multmodp(op, (uint32_t)b << (8 * k));
}

static uint32_t zeros_apply(uint32_t t[4][256], uint32_t crc)
{
	return t[0][crc & 0xff] ^ t[1][crc >> 8 & 0xff] ^
	       t[2][crc >> 16 & 0xff] ^ t[3][crc >> 24];
}

static inline uint64_t load64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* Three chains over blocks of size bytes each at p, p + size,
 * p + 2 * size, joined into crc. */
__attribute__((target("sse4.2")))
static inline uint64_t hw_three(uint64_t crc, const uint8_t *p, size_t size,
				uint32_t zeros[4][256])
{
	uint64_t c1 = 0, c2 = 0;
	const uint8_t *end = p + size;

	do {
		crc = _mm_crc32_u64(crc, load64(p));
		c1 = _mm_crc32_u64(c1, load64(p + size));
		c2 = _mm_crc32_u64(c2, load64(p + 2 * size));
		p += 8;
	} while (p < end);
	crc = zeros_apply(zeros, (uint32_t)crc) ^ c1;
	return zeros_apply(zeros, (uint32_t)crc) ^ c2;
}

__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc0, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t crc = crc0 ^ 0xffffffffu;

	while (len && ((uintptr_t)p & 7)) {
		crc = _mm_crc32_u8((uint32_t)crc, *p++);
		len--;
	}
	while (len >= 3 * LONG_BLOCK) {
		crc = hw_three(crc, p, LONG_BLOCK, long_zeros);
		p += 3 * LONG_BLOCK;
		len -= 3 * LONG_BLOCK;
	}
	while (len >= 3 * SHORT_BLOCK) {
		crc = hw_three(crc, p, SHORT_BLOCK, short_zeros);
		p += 3 * SHORT_BLOCK;
		len -= 3 * SHORT_BLOCK;
	}
	while (len >= 8) {
		crc = _mm_crc32_u64(crc, load64(p));
		p += 8;
		len -= 8;
	}
	while (len) {
		crc = _mm_crc32_u8((uint32_t)crc, *p++);
		len--;
	}
	return (uint32_t)crc ^ 0xffffffffu;
}
#endif

static void crc_init(void)
{
	const char *force_sw = getenv("MQ_CRC32C_SW");
	uint32_t c;
	int i, j, k;

	for (i = 0; i < 256; i++) {
		c = (uint32_t)i;
		for (j = 0; j < 8; j++)
			c = c & 1 ? c >> 1 ^ POLY : c >> 1;
		sw_table[0][i] = c;
	}
	for (k = 1; k < 8; k++)
		for (i = 0; i < 256; i++) {
			c = sw_table[k - 1][i];
			sw_table[k][i] = c >> 8 ^ sw_table[0][c & 0xff];
		}
#ifdef CRC_HW
	__builtin_cpu_init();
	if (__builtin_cpu_supports("sse4.2") &&
	    !(force_sw && *force_sw && strcmp(force_sw, "0") != 0)) {
		zeros_table(long_zeros, LONG_BLOCK);
		zeros_table(short_zeros, SHORT_BLOCK);
		use_hw = 1;
	}
#else
	(void)force_sw;
#endif
}

static inline uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

uint32_t mq_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t lo, hi;

	pthread_once(&crc_once, crc_init);
	crc = ~crc;
	while (len >= 8) {
		lo = crc ^ le32(p);
		hi = le32(p + 4);
		crc = sw_table[7][lo & 0xff] ^ sw_table[6][lo >> 8 & 0xff] ^
		      sw_table[5][lo >> 16 & 0xff] ^ sw_table[4][lo >> 24] ^
		      sw_table[3][hi & 0xff] ^ sw_table[2][hi >> 8 & 0xff] ^
		      sw_table[1][hi >> 16 & 0xff] ^ sw_table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = crc >> 8 ^ sw_table[0][(crc ^ *p++) & 0xff];
	return ~crc;
}

uint32_t mq_crc32c(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc_once, crc_init);
#ifdef CRC_HW
	if (use_hw)
		return crc32c_hw(crc, buf, len);
#endif
	return mq_crc32c_sw(crc, buf, len);
}

int mq_crc32c_hw_available(void)
{
	pthread_once(&crc_once, crc_init);
	return use_hw;
}
