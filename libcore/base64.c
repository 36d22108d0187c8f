/*
 * base64.c: RFC 4648 base64, for carrying binary keys, values and
 * headers inside JSON lines (mq-consume -J, mq-produce --json).
 */
#include <string.h>

#include "mq.h"

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t mq_base64_encode(const uint8_t *in, size_t n, char *out)
{
	char *o = out;
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*o++ = alphabet[v >> 18];
		*o++ = alphabet[(v >> 12) & 63];
		*o++ = alphabet[(v >> 6) & 63];
		*o++ = alphabet[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
		*o++ = alphabet[v >> 18];
		*o++ = alphabet[(v >> 12) & 63];
		*o++ = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	return (size_t)(o - out);
}

ssize_t mq_base64_decode(const char *in, size_t n, uint8_t *out)
{
	uint8_t *o = out;
	uint32_t v = 0;
	int bits = 0;
	size_t pad = 0;

	for (size_t i = 0; i < n; i++) {
		const char *c;
		if (in[i] == '=') {
			pad++;
			continue;
		}
		if (pad || !in[i] || !(c = strchr(alphabet, in[i])))
			return mq_error(MQ_EUSAGE, "invalid base64");
		v = v << 6 | (uint32_t)(c - alphabet);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			*o++ = (uint8_t)(v >> bits);
		}
	}
	if (pad > 2 || (n % 4 && pad))
		return mq_error(MQ_EUSAGE, "invalid base64");
	return o - out;
}
