/*
 * murmur2.c: the key hash of Kafka's default partitioner, bit for bit
 * as org.apache.kafka.common.utils.Utils.murmur2 computes it (MurmurHash2
 * with seed 0x9747b28c, key read as little-endian 32-bit words), so that
 * a key lands in the same partition whether a Java producer or mq wrote
 * it (DESIGN.md §3).  Java's int arithmetic wraps; here it is done in
 * uint32_t and converted at the end.
 */
#include "mq.h"

int32_t mq_murmur2(const void *key, size_t len)
{
	const uint8_t *p = key;
	const uint32_t m = 0x5bd1e995;
	uint32_t h = 0x9747b28cu ^ (uint32_t)len, k;
	size_t i, n4 = len / 4;

	for (i = 0; i < n4; i++, p += 4) {
		k = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
		    (uint32_t)p[3] << 24;
		k *= m;
		k ^= k >> 24;
		k *= m;
		h *= m;
		h ^= k;
	}
	switch (len % 4) {
	case 3:
		h ^= (uint32_t)p[2] << 16;
		__attribute__((fallthrough));
	case 2:
		h ^= (uint32_t)p[1] << 8;
		__attribute__((fallthrough));
	case 1:
		h ^= p[0];
		h *= m;
	}
	h ^= h >> 13;
	h *= m;
	h ^= h >> 15;
	return (int32_t)h;
}

int32_t mq_partition_for_key(const void *key, size_t len, int32_t npart)
{
	if (npart <= 0)
		return mq_error(MQ_EUSAGE, "invalid partition count %d", (int)npart);
	return (int32_t)(((uint32_t)mq_murmur2(key, len) & 0x7fffffff) %
			 (uint32_t)npart);
}
