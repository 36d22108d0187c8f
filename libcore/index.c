/*
 * index.c: Kafka's sparse segment indexes, read side.
 *
 *   NNNNNNNNNNNNNNNNNNNN.index      8-byte entries: offset - base (i32),
 *                                   file position of a batch (i32)
 *   NNNNNNNNNNNNNNNNNNNN.timeindex  12-byte entries: max timestamp so far
 *                                   (i64), offset - base (i32)
 *
 * An offset entry names the last offset of the batch that starts at its
 * position; one is written when more than index.interval.bytes were
 * appended since the previous one.  A time entry is written with it when
 * the segment's max timestamp grew.  Kafka preallocates both files and
 * fills the rest with zeros; the first entry that does not increase ends
 * the list (a file of nothing but zeros has no entries).  Entries are
 * big-endian like everything else.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log_priv.h"

static int load(const char *path, uint8_t **data, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	ssize_t r;

	*data = NULL;
	*len = 0;
	if (fd < 0)
		return errno == ENOENT ? 0 : mq_syserr("cannot open index '%s'", path);
	if (fstat(fd, &st) < 0 || !(*data = malloc((size_t)st.st_size + 1))) {
		close(fd);
		return mq_syserr("cannot read index '%s'", path);
	}
	r = mq_pread_full(fd, *data, (size_t)st.st_size, 0);
	close(fd);
	if (r < 0) {
		free(*data);
		*data = NULL;
		return mq_syserr("cannot read index '%s'", path);
	}
	*len = (size_t)r;
	return 0;
}

int mq_index_load(struct mq_index *ix, const char *dir, int64_t base,
		  int64_t log_size, int *damaged)
{
	char path[PATH_MAX];
	uint8_t *d;
	size_t len, n;

	memset(ix, 0, sizeof *ix);
	ix->base = base;
	*damaged = 0;

	mq_segment_path(path, sizeof path, dir, base, "index");
	if (load(path, &d, &len) < 0)
		return -1;
	n = len / 8;
	if (len % 8)
		*damaged = 1;
	ix->off = malloc((n ? n : 1) * sizeof *ix->off);
	ix->capoff = n ? n : 1;
	for (size_t i = 0; ix->off && i < n; i++) {
		int64_t off = base + (int32_t)mq_be32(d + 8 * i);
		int64_t pos = (int32_t)mq_be32(d + 8 * i + 4);
		/* no entry ever names position 0 (the first batch is found
		 * without one), so a zero entry is padding, even the first */
		int padding = off == base && pos == 0;
		if (padding)
			break;
		if (pos < 0 || pos >= log_size || off < base ||
		    (i > 0 && (off <= ix->off[i - 1].offset || pos <= ix->off[i - 1].pos))) {
			*damaged = 1;
			break;
		}
		ix->off[ix->noff++] = (struct mq_offset_entry){ off, pos };
	}
	/* a zero tail after real entries is Kafka's preallocation; anything
	 * else left over means the file does not match the log */
	for (size_t i = ix->noff; i < n && !*damaged; i++)
		if (mq_be32(d + 8 * i) || mq_be32(d + 8 * i + 4))
			*damaged = 1;
	free(d);
	if (!ix->off)
		return mq_syserr("cannot load index '%s'", path);

	mq_segment_path(path, sizeof path, dir, base, "timeindex");
	if (load(path, &d, &len) < 0) {
		mq_index_free(ix);
		return -1;
	}
	n = len / 12;
	if (len % 12)
		*damaged = 1;
	ix->time = malloc((n ? n : 1) * sizeof *ix->time);
	ix->captime = n ? n : 1;
	for (size_t i = 0; ix->time && i < n; i++) {
		int64_t ts = (int64_t)mq_be64(d + 12 * i);
		int64_t off = base + (int32_t)mq_be32(d + 12 * i + 8);
		if (ts == 0 && off == base)
			break;
		if (off < base || (i > 0 && (ts <= ix->time[i - 1].timestamp ||
					     off < ix->time[i - 1].offset))) {
			*damaged = 1;
			break;
		}
		ix->time[ix->ntime++] = (struct mq_time_entry){ ts, off };
	}
	free(d);
	if (!ix->time) {
		mq_syserr("cannot load index '%s'", path);
		mq_index_free(ix);
		return -1;
	}
	return 0;
}

void mq_index_free(struct mq_index *ix)
{
	free(ix->off);
	free(ix->time);
	memset(ix, 0, sizeof *ix);
}

int64_t mq_index_lookup(const struct mq_index *ix, int64_t offset)
{
	size_t lo = 0, hi = ix->noff;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ix->off[mid].offset <= offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? ix->off[lo - 1].pos : 0;
}

int64_t mq_index_lookup_time(const struct mq_index *ix, int64_t ts)
{
	size_t lo = 0, hi = ix->ntime;

	/* the last entry strictly before ts: every record up to its offset
	 * is older than ts, so the answer lies at or after it */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ix->time[mid].timestamp < ts)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? ix->time[lo - 1].offset : ix->base;
}
