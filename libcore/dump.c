/*
 * dump.c: a listing of any Kafka segment file in the shape of Kafka's
 * kafka-dump-log.sh, so that the two can be compared line by line:
 *
 *   Dumping 00000000000000000000.log
 *   Log starting offset: 0
 *   baseOffset: 0 lastOffset: 1 count: 2 baseSequence: -1 lastSequence: -1
 *     producerId: -1 producerEpoch: -1 partitionLeaderEpoch: 0
 *     isTransactional: false isControl: false position: 0
 *     CreateTime: 1763769600000 size: 92 magic: 2 compresscodec: none
 *     crc: 2427405164 isvalid: true
 *   | offset: 0 CreateTime: 1763769600000 keySize: -1 valueSize: 5
 *     sequence: -1 headerKeys: [] payload: hello
 *
 * (each batch and record on one line).  Index files list their entries.
 * Bytes that are not printable ASCII are shown as \xNN.  The caller owns
 * the stream; errors are returned, not printed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log_priv.h"

static void put_escaped(FILE *out, const uint8_t *p, int32_t n)
{
	for (int32_t i = 0; i < n; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			putc(p[i], out);
		else if (p[i] == '\\')
			fputs("\\\\", out);
		else
			fprintf(out, "\\x%02x", p[i]);
	}
}

static int ends_with(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);
	return n >= m && !strcmp(s + n - m, suf);
}

static int dump_records(FILE *out, const struct mq_batch *b)
{
	struct mq_record_iter it = { 0 };
	struct mq_record r;
	int rc;

	if (mq_record_iter_init(&it, b, MQ_MAX_BATCH) < 0)
		return -1;
	while ((rc = mq_record_next(&it, &r)) > 0) {
		struct mq_header h;
		size_t hp = 0;
		int first = 1;
		fprintf(out, "| offset: %" PRId64 " %s: %" PRId64 " keySize: %d valueSize: %d sequence: %d headerKeys: [",
			r.offset, b->attributes & MQ_ATTR_LOGAPPEND_TIME ? "LogAppendTime" : "CreateTime",
			r.timestamp, r.key_len, r.value_len,
			b->base_sequence < 0 ? -1 : b->base_sequence + (int32_t)(r.offset - b->base_offset));
		while ((rc = mq_header_next(&r, &hp, &h)) > 0) {
			fputs(first ? "" : ",", out);
			put_escaped(out, h.key, h.key_len);
			first = 0;
		}
		if (rc < 0)
			break;
		fputs("]", out);
		if (r.key_len >= 0) {
			fputs(" key: ", out);
			put_escaped(out, r.key, r.key_len);
		}
		hp = 0;
		if (r.header_count > 0) {
			fputs(" headers: [", out);
			first = 1;
			while (mq_header_next(&r, &hp, &h) > 0) {
				fputs(first ? "" : ", ", out);
				put_escaped(out, h.key, h.key_len);
				fputs("=", out);
				if (h.value_len >= 0)
					put_escaped(out, h.value, h.value_len);
				else
					fputs("null", out);
				first = 0;
			}
			fputs("]", out);
		}
		fputs(" payload: ", out);
		if (r.value_len >= 0)
			put_escaped(out, r.value, r.value_len);
		else
			fputs("null", out);
		fputs("\n", out);
	}
	mq_record_iter_free(&it);
	return rc < 0 ? -1 : 0;
}

static int dump_log(FILE *out, const char *path, int fd, int64_t size, int flags)
{
	struct mq_walk w;
	struct mq_batch b;
	int rc;

	mq_walk_init(&w, fd, 0, size, 0);
	for (;;) {
		int64_t pos = w.pos;
		if ((rc = mq_walk_next(&w, &b)) <= 0) {
			if (rc == 0 && pos < size)
				fprintf(out, "Found %" PRId64 " trailing bytes at position %" PRId64
					" that are not a whole batch\n", size - pos, pos);
			if (rc < 0)
				mq_error(mq_errclass(), "cannot read '%s' at byte %" PRId64 ": %s",
					 path, pos, mq_errmsg());
			break;
		}
		int codec = b.attributes & MQ_ATTR_CODEC;
		fprintf(out, "baseOffset: %" PRId64 " lastOffset: %" PRId64 " count: %d baseSequence: %d "
			"lastSequence: %d producerId: %" PRId64 " producerEpoch: %d "
			"partitionLeaderEpoch: %d isTransactional: %s isControl: %s position: %" PRId64
			" %s: %" PRId64 " size: %zu magic: %d compresscodec: %s crc: %u isvalid: %s\n",
			b.base_offset, mq_batch_last_offset(&b), b.count, b.base_sequence,
			b.base_sequence < 0 ? -1 : b.base_sequence + b.last_offset_delta,
			b.producer_id, b.producer_epoch, b.leader_epoch,
			b.attributes & MQ_ATTR_TRANSACTIONAL ? "true" : "false",
			b.attributes & MQ_ATTR_CONTROL ? "true" : "false", pos,
			b.attributes & MQ_ATTR_LOGAPPEND_TIME ? "LogAppendTime" : "CreateTime",
			b.max_timestamp, b.size, b.magic, mq_codec_name(codec), b.crc,
			mq_batch_crc_ok(&b) ? "true" : "false");
		if ((flags & MQ_DUMP_RECORDS) && !(b.attributes & MQ_ATTR_CONTROL) &&
		    dump_records(out, &b) < 0) {
			fprintf(out, "| cannot decode records: %s\n", mq_errmsg());
		}
	}
	mq_walk_free(&w);
	return rc < 0 ? -1 : 0;
}

int mq_dump_file(FILE *out, const char *path, int flags)
{
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	struct stat st;
	int64_t base = 0;
	uint8_t e[12];
	int fd, rc = 0;

	(void)(mq_segment_name(name, "log", &base) || mq_segment_name(name, "index", &base) ||
	       mq_segment_name(name, "timeindex", &base));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return mq_syserr("cannot open '%s'", path);
	if (fstat(fd, &st) < 0) {
		close(fd);
		return mq_syserr("cannot stat '%s'", path);
	}
	fprintf(out, "Dumping %s\n", path);
	if (ends_with(path, ".log")) {
		fprintf(out, "Log starting offset: %" PRId64 "\n", base);
		rc = dump_log(out, path, fd, st.st_size, flags);
	} else if (ends_with(path, ".timeindex")) {
		int64_t prev = -1;
		for (off_t at = 0; mq_pread_full(fd, e, 12, at) == 12; at += 12) {
			int64_t ts = (int64_t)mq_be64(e);
			int32_t rel = (int32_t)mq_be32(e + 8);
			if (ts == 0 && rel == 0)
				break;     /* Kafka's preallocated zeros */
			if (ts <= prev)
				fprintf(out, "Found timestamp mis-ordering at entry %lld\n", (long long)(at / 12));
			prev = ts;
			fprintf(out, "timestamp: %" PRId64 " offset: %" PRId64 "\n", ts, base + rel);
		}
	} else if (ends_with(path, ".index")) {
		for (off_t at = 0; mq_pread_full(fd, e, 8, at) == 8; at += 8) {
			int32_t rel = (int32_t)mq_be32(e), pos = (int32_t)mq_be32(e + 4);
			if (rel == 0 && pos == 0)
				break;
			fprintf(out, "offset: %" PRId64 " position: %d\n", base + rel, pos);
		}
	} else {
		rc = mq_error(MQ_EUSAGE, "cannot dump '%s': not a .log, .index or .timeindex file", path);
	}
	close(fd);
	return rc;
}
