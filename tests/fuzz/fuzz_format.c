/*
 * fuzz_format.c: the mq-consume format-string compiler and formatter.
 */
#include <stdlib.h>
#include <string.h>

#include "mq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *fmt = malloc(size + 1);
	struct mq_format *f;
	static const uint8_t hdr[] = { 2, 'a', 2, 'b' };
	struct mq_record r = { 7, 1700000000000, (const uint8_t *)"key", 3,
			       (const uint8_t *)"value\0x", 7, 1, hdr, sizeof hdr };

	if (!fmt)
		return 0;
	memcpy(fmt, data, size);
	fmt[size] = 0;
	if (mq_format_compile(fmt, &f) == 0) {
		struct mq_buf out = { 0 };
		mq_format_record(&out, f, "topic", 3, &r);
		r.key_len = -1;
		r.value_len = -1;
		mq_format_record(&out, f, "topic", 3, &r);
		mq_buf_free(&out);
		mq_format_free(f);
	}
	free(fmt);
	return 0;
}
