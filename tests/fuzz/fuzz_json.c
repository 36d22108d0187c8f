/*
 * fuzz_json.c: mq-produce --json record parsing, and writing what parsed
 * back as a JSON line.
 */
#include "mq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mq_json_record jr = { 0 };

	if (mq_json_record_parse((const char *)data, size, &jr) == 0) {
		struct mq_batch_builder bb;
		struct mq_batch b;
		struct mq_record_iter it = { 0 };
		struct mq_record r;
		struct mq_buf out = { 0 };
		mq_batch_builder_init(&bb, MQ_CODEC_NONE);
		mq_batch_builder_add(&bb, 0, jr.key_null ? NULL : jr.key.p,
				     jr.key_null ? -1 : (int32_t)jr.key.len,
				     jr.value_null ? NULL : jr.value.p,
				     jr.value_null ? -1 : (int32_t)jr.value.len, jr.headers, jr.nheaders);
		mq_batch_builder_finish(&bb, 0);
		if (mq_batch_parse(bb.out.p, bb.out.len, &b) == MQ_BATCH_OK &&
		    mq_record_iter_init(&it, &b, 1 << 22) == 0 && mq_record_next(&it, &r) > 0)
			mq_json_record_write(&out, "t", 0, &r);
		mq_record_iter_free(&it);
		mq_buf_free(&out);
		mq_batch_builder_free(&bb);
	}
	mq_json_record_free(&jr);
	return 0;
}
