/*
 * fuzz_batch.c: the batch decoder on arbitrary bytes: header parse, CRC,
 * decompression (bounded), every record and header.
 */
#include "mq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;
	struct mq_batch b;

	while (off < size && mq_batch_parse(data + off, size - off, &b) == MQ_BATCH_OK) {
		struct mq_record_iter it = { 0 };
		struct mq_record r;
		(void)mq_batch_crc_ok(&b);
		if (mq_record_iter_init(&it, &b, 1 << 22) == 0) {
			while (mq_record_next(&it, &r) > 0) {
				struct mq_header h;
				size_t pos = 0;
				while (mq_header_next(&r, &pos, &h) > 0)
					;
			}
		}
		mq_record_iter_free(&it);
		off += b.size;
	}
	return 0;
}
