/*
 * fuzz_segment.c: recovery and verification of a partition whose segment
 * and index hold arbitrary bytes.  The input is split at the first
 * "\n--index--\n": the .log before it, the .index after it.  Whatever
 * the bytes, verify must not crash; a writer either recovers or refuses
 * damage that has data after it, in which case verify --repair makes the
 * log appendable; after the append the log verifies clean and a reader
 * reads it to the end without error.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mq.h"

static void put(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		abort();
	fwrite(p, 1, n, f);
	fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char dir[] = "/tmp/mq-fuzz-XXXXXX", path[PATH_MAX];
	const uint8_t *sep = memmem(data, size, "\n--index--\n", 11);
	size_t loglen = sep ? (size_t)(sep - data) : size;
	struct mq_verify_result vr;
	struct mq_config conf;
	struct mq_log *l;
	struct mq_reader *r;
	struct mq_batch b;
	int64_t first;

	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof path, "%s/00000000000000000000.log", dir);
	put(path, data, loglen);
	if (sep) {
		snprintf(path, sizeof path, "%s/00000000000000000000.index", dir);
		put(path, sep + 11, size - loglen - 11);
	}
	mq_verify_partition(dir, 0, NULL, NULL, &vr);

	/* a writer recovers, then appends one batch */
	mq_config_default(&conf);
	struct mq_batch_builder bb;
	mq_batch_builder_init(&bb, MQ_CODEC_NONE);
	mq_batch_builder_add(&bb, 1, "k", 1, "v", 1, NULL, 0);
	mq_batch_builder_finish(&bb, 0);
	if (mq_log_open(&l, dir, &conf, 0) == 0) {
		if (mq_log_append(l, bb.out.p, bb.out.len, &first) < 0) {
			/* damage with data after it is refused, never cut
			 * silently; repair decides, then appending works */
			if (mq_errclass() != MQ_ECORRUPT)
				abort();
			mq_log_close(l);
			if (mq_verify_partition(dir, 1, NULL, NULL, &vr) < 0 ||
			    mq_log_open(&l, dir, &conf, 0) < 0 ||
			    mq_log_append(l, bb.out.p, bb.out.len, &first) < 0)
				abort();
		}
		mq_log_close(l);
		if (mq_verify_partition(dir, 0, NULL, NULL, &vr) < 0 || vr.nproblems)
			abort();
		if (mq_reader_open(&r, dir) == 0) {
			int rc;
			mq_reader_seek(r, 0);
			while ((rc = mq_reader_next(r, &b)) > 0)
				;
			if (rc < 0)
				abort();
			mq_reader_close(r);
		}
	}
	mq_batch_builder_free(&bb);
	mq_rm_rf(dir);
	return 0;
}
