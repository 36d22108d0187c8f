/*
 * fetch.c: which bytes of a segment file answer a fetch, the way Kafka's
 * broker answers one: whole batches, from the one holding the offset
 * asked for, up to a byte limit, from one segment file, found from the
 * offset index and batch headers alone, so the bytes can go to the
 * socket with sendfile without ever being read here.
 *
 * A batch counts only when all its bytes are in the file; a batch being
 * appended is not there yet.  Checking CRCs is the receiver's job.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log_priv.h"

/* Header fields up to lastOffsetDelta. */
#define HEAD 27

int mq_fetch_range(const char *dir, int64_t offset, int64_t max_bytes, int64_t limit,
		   struct mq_fetch *f)
{
	struct mq_segment *segs = NULL;
	struct mq_index ix;
	struct stat st;
	char path[PATH_MAX];
	size_t n, i;
	int damaged;
	int64_t pos;
	uint8_t h[HEAD];

	f->fd = -1;
	f->pos = f->len = 0;
	f->seg_base = -1;
	if (mq_partition_info(dir, &f->pi) < 0)
		return -1;
	if (offset < f->pi.log_start || offset > f->pi.log_end)
		return mq_error(MQ_ENOTFOUND, "offset %lld out of range (log holds %lld to %lld)",
				(long long)offset, (long long)f->pi.log_start, (long long)f->pi.log_end);
	if (mq_segments_list(dir, &segs, &n) < 0)
		return -1;
	if (n > 0)
		f->seg_base = segs[n - 1].base;
	if (offset == f->pi.log_end || (limit >= 0 && offset >= limit)) {
		free(segs);
		return 0;
	}
	for (i = n; i-- > 1;)
		if (segs[i].base <= offset)
			break;
	for (; i < n; i++) {
		if (mq_index_load(&ix, dir, segs[i].base, segs[i].size, &damaged) < 0)
			goto fail;
		pos = mq_index_lookup(&ix, offset);
		mq_index_free(&ix);
		mq_segment_path(path, sizeof path, dir, segs[i].base, "log");
		if ((f->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
			if (errno == ENOENT)   /* retention took it: the caller asks again */
				continue;
			mq_syserr("cannot open segment '%s'", path);
			goto fail;
		}
		if (fstat(f->fd, &st) < 0) {
			mq_syserr("cannot stat segment '%s'", path);
			goto fail;
		}
		while (pos + HEAD <= st.st_size) {
			ssize_t r = mq_pread_full(f->fd, h, HEAD, pos);
			if (r < 0) {
				mq_syserr("cannot read segment '%s'", path);
				goto fail;
			}
			int64_t base = (int64_t)mq_be64(h), size = (int64_t)(int32_t)mq_be32(h + 8) + MQ_BATCH_OVERHEAD;
			int64_t last = base + (int32_t)mq_be32(h + 23);
			if (r < HEAD || size < MQ_BATCH_HEADER || size > MQ_MAX_BATCH || h[16] != 2) {
				if (f->len == 0) {
					mq_error(MQ_ECORRUPT, "corrupt batch in '%s' at byte %lld", path, (long long)pos);
					goto fail;
				}
				break;
			}
			if (pos + size > st.st_size || (limit >= 0 && last >= limit))
				break;
			if (last < offset) {
				pos += size;
				continue;
			}
			if (f->len == 0)
				f->pos = pos;
			else if (f->len + size > max_bytes)
				break;
			f->len += size;
			pos += size;
		}
		if (f->len > 0) {
			f->seg_base = segs[i].base;
			break;
		}
		close(f->fd);
		f->fd = -1;
	}
	free(segs);
	return 0;
fail:
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	free(segs);
	return -1;
}
