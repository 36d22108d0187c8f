/*
 * follow.c: mq-produce -F, shipping a growing file like tail -F and
 * resuming after a crash exactly where the last durable batch ended.
 *
 * The position shipped is stored in the topic itself, in a header of the
 * last record of every batch written, so that records and position reach
 * the log in the same write:
 *
 *   mq.follow = PATH \t SEQ \t DEV:INO \t START \t END \t NPARTS \t STICKY
 *
 * Lines are shipped in rounds.  A round is the complete lines read since
 * the last one (at most a batch worth), split into one batch per
 * partition they go to; SEQ numbers the rounds, START and END are the
 * file positions before its first and after its last line, NPARTS the
 * batches it wrote, STICKY the partition its unkeyed lines went to.  Unkeyed lines of a round all go to one partition
 * (moving to the next for the next round), so only keyed rounds span
 * partitions.
 *
 * Resuming: the last mq.follow header for PATH is looked up in every
 * partition (from a hint of where the last rounds went, else from the
 * start).  If every batch of the newest round is there, shipping resumes
 * at its END.  If a crash came between partitions, it resumes at START
 * and skips the lines whose partition already got its batch (keys hash
 * to the same partitions again), so no line is lost or doubled.  If the
 * file was replaced since (another inode), it starts at 0 of the new
 * file, as tail -F would.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mq.h"

#define HDR "mq.follow"

struct round_info {
	int64_t seq, start, end;
	int32_t nparts;
	int32_t sticky;           /* where its unkeyed lines went, -1 unknown */
	char inode[64];
};

struct follow {
	const struct mq_follow_opts *o;
	struct mq_producer *p;
	struct mq_topic *t;
	char path[PATH_MAX];
	char hint[PATH_MAX];
	int64_t *hint_off;        /* per partition: offset of its last round */
	int64_t seq;
	int32_t sticky;
	struct mq_batch_builder *bb;
	int32_t *used;            /* partitions touched by this round */
	uint8_t *skip;            /* partitions to skip while replaying */
	int64_t skip_until;
	int64_t hint_written;
};

/* The newest mq.follow round for our path in one partition. */
static int scan_partition(struct follow *f, int32_t part, struct round_info *ri)
{
	char dir[PATH_MAX];
	struct mq_reader *r;
	struct mq_batch b;
	int rc;
	size_t plen = strlen(f->path);

	ri->seq = -1;
	mq_topic_partition_dir(f->t, part, dir, sizeof dir);
	if (access(dir, F_OK) < 0)
		return 0;
	if (mq_reader_open(&r, dir) < 0)
		return -1;
	int64_t from = f->hint_off[part] >= 0 ? f->hint_off[part] : 0;
	if (mq_reader_seek(r, from) < 0 && mq_reader_seek(r, 0) < 0) {
		/* empty or below the start: from the log start */
		struct mq_partition_info pi;
		if (mq_partition_info(dir, &pi) < 0 || mq_reader_seek(r, pi.log_start) < 0) {
			mq_reader_close(r);
			return -1;
		}
	}
	while ((rc = mq_reader_next(r, &b)) > 0) {
		struct mq_record_iter it = { 0 };
		struct mq_record rec;
		if (b.attributes & MQ_ATTR_CONTROL)
			continue;
		if (mq_record_iter_init(&it, &b, MQ_MAX_RECORDS) < 0) {
			rc = -1;
			break;
		}
		int got = 0;
		while (mq_record_next(&it, &rec) > 0)
			got = 1;
		if (got && rec.header_count > 0) {
			struct mq_header h;
			size_t pos = 0;
			while (mq_header_next(&rec, &pos, &h) > 0) {
				if (h.key_len != (int32_t)strlen(HDR) || memcmp(h.key, HDR, strlen(HDR)) ||
				    h.value_len <= (int32_t)plen || memcmp(h.value, f->path, plen) ||
				    h.value[plen] != '\t')
					continue;
				char v[PATH_MAX + 256];
				struct round_info x;
				snprintf(v, sizeof v, "%.*s", h.value_len - (int32_t)plen - 1,
					 (const char *)h.value + plen + 1);
				x.sticky = -1;
				if (sscanf(v, "%" SCNd64 "\t%63[^\t]\t%" SCNd64 "\t%" SCNd64 "\t%" SCNd32
					   "\t%" SCNd32, &x.seq, x.inode, &x.start, &x.end, &x.nparts,
					   &x.sticky) >= 5 &&
				    x.seq > ri->seq) {
					*ri = x;
					f->hint_off[part] = b.base_offset;
				}
			}
		}
		mq_record_iter_free(&it);
	}
	mq_reader_close(r);
	return rc < 0 ? -1 : 0;
}

static void write_hint(struct follow *f)
{
	struct mq_buf b = { 0 };
	char line[64];

	for (int32_t i = 0; i < f->t->conf.partitions; i++)
		mq_buf_append(&b, line, (size_t)snprintf(line, sizeof line, "%" PRId64 "\n", f->hint_off[i]));
	mq_write_file_atomic(f->hint, b.p, b.len);   /* a hint: failure only slows a restart */
	mq_buf_free(&b);
	f->hint_written = mq_now_ms();
}

static void read_hint(struct follow *f)
{
	char *s, *p;

	for (int32_t i = 0; i < f->t->conf.partitions; i++)
		f->hint_off[i] = -1;
	if (mq_read_file(f->hint, 1 << 20, &s, NULL) < 0)
		return;
	p = s;
	for (int32_t i = 0; i < f->t->conf.partitions && *p; i++) {
		f->hint_off[i] = strtoll(p, &p, 10);
		while (*p == '\n')
			p++;
	}
	free(s);
}

static int32_t part_of(struct follow *f, const uint8_t *key, int32_t klen)
{
	if (f->o->partition >= 0)
		return f->o->partition;
	if (klen >= 0)
		return mq_partition_for_key(key, (size_t)klen, f->t->conf.partitions);
	return f->sticky;
}

static void split(const struct mq_follow_opts *o, const uint8_t *s, size_t n,
		  const uint8_t **key, int32_t *klen, const uint8_t **val, int32_t *vlen)
{
	*key = (const uint8_t *)o->key;
	*klen = o->key ? (int32_t)strlen(o->key) : -1;
	*val = s;
	*vlen = (int32_t)n;
	if (o->kdlen) {
		const uint8_t *d = memmem(s, n, o->kdelim, o->kdlen);
		if (d) {
			*key = s;
			*klen = (int32_t)(d - s);
			*val = d + o->kdlen;
			*vlen = (int32_t)(n - (size_t)*klen - o->kdlen);
		}
	}
}

/* Ships the complete lines in buf[0..n), which start at file position
 * start, as one round. */
static int ship(struct follow *f, const uint8_t *buf, size_t n, int64_t start, const char *inode)
{
	const struct mq_follow_opts *o = f->o;
	int32_t np = f->t->conf.partitions, nused = 0;
	int64_t ts = mq_now_ms(), pos = start;
	const uint8_t *s = buf, *end = buf + n;
	int32_t *last = calloc((size_t)np, sizeof *last);   /* last line index per partition */
	int64_t idx = 0;

	if (!last)
		return mq_syserr("cannot ship lines");
	/* room for the record's own fields and the mq.follow header */
	size_t maxline = (size_t)f->t->conf.max_message_bytes - MQ_BATCH_HEADER - 128 - strlen(f->path);
	/* pass 1: which partition gets the last line */
	for (s = buf; s < end; idx++) {
		const uint8_t *d = memmem(s, (size_t)(end - s), o->delim, o->dlen);
		const uint8_t *key, *val;
		int32_t klen, vlen;
		if ((size_t)(d - s) > maxline) {
			if (!o->skip_oversize) {
				free(last);
				return mq_error(MQ_ENEG, "'%s': line at byte %" PRId64
						" is longer than max.message.bytes (%d)",
						o->path, pos, f->t->conf.max_message_bytes);
			}
			if (o->on_skip)
				o->on_skip(o->arg, pos, (size_t)(d - s));
			pos += (d - s) + (int64_t)o->dlen;
			s = d + o->dlen;
			continue;
		}
		split(o, s, (size_t)(d - s), &key, &klen, &val, &vlen);
		int32_t part = part_of(f, key, klen);
		if (!(pos < f->skip_until && f->skip[part])) {
			if (!last[part])
				f->used[nused++] = part;
			last[part] = (int32_t)idx + 1;
		}
		pos += (d - s) + (int64_t)o->dlen;
		s = d + o->dlen;
	}
	char hv[PATH_MAX + 256];
	int hl = snprintf(hv, sizeof hv, "%s\t%" PRId64 "\t%s\t%" PRId64 "\t%" PRId64 "\t%d\t%d",
			  f->path, f->seq, inode, start, start + (int64_t)n, nused, f->sticky);
	struct mq_header hs[65];
	for (int32_t i = 0; i < o->nheaders && i < 64; i++)
		hs[i] = o->headers[i];
	hs[o->nheaders] = (struct mq_header){ (const uint8_t *)HDR, (int32_t)strlen(HDR),
					      (const uint8_t *)hv, hl };
	/* pass 2: build the batches */
	pos = start;
	idx = 0;
	for (s = buf; s < end; idx++) {
		const uint8_t *d = memmem(s, (size_t)(end - s), o->delim, o->dlen);
		const uint8_t *key, *val;
		int32_t klen, vlen;
		if ((size_t)(d - s) > maxline) {
			pos += (d - s) + (int64_t)o->dlen;
			s = d + o->dlen;
			continue;
		}
		split(o, s, (size_t)(d - s), &key, &klen, &val, &vlen);
		int32_t part = part_of(f, key, klen);
		if (!(pos < f->skip_until && f->skip[part])) {
			int is_last = last[part] == idx + 1;
			if (mq_batch_builder_add(&f->bb[part], ts, key, klen, val, vlen, hs,
						 o->nheaders + is_last) < 0)
				goto fail;
		}
		pos += (d - s) + (int64_t)o->dlen;
		s = d + o->dlen;
	}
	for (int32_t i = 0; i < nused; i++) {
		int32_t part = f->used[i];
		int64_t first;
		if (mq_batch_builder_finish(&f->bb[part], (size_t)f->t->conf.max_message_bytes) < 0 ||
		    mq_producer_append_batches(f->p, part, f->bb[part].out.p, f->bb[part].out.len, &first) < 0)
			goto fail;
		f->hint_off[part] = first;
		mq_batch_builder_reset(&f->bb[part]);
	}
	free(last);
	f->seq++;
	f->sticky = (f->sticky + 1) % np;
	if (pos >= f->skip_until)
		memset(f->skip, 0, (size_t)np);
	if (mq_now_ms() - f->hint_written > 1000)
		write_hint(f);
	return 0;
fail:
	free(last);
	return -1;
}

static void inode_of(const struct stat *st, char *buf, size_t n)
{
	snprintf(buf, n, "%ju:%ju", (uintmax_t)st->st_dev, (uintmax_t)st->st_ino);
}

int mq_follow_run(struct mq_producer *p, struct mq_topic *t, const struct mq_follow_opts *o)
{
	struct follow f = { .o = o, .p = p, .t = t };
	int32_t np = t->conf.partitions;
	struct round_info newest = { .seq = -1 };
	struct mq_buf buf = { 0 };
	char inode[64];
	struct stat st;
	int fd = -1, ino = -1, rc = -1;
	int64_t pos = 0;
	/* room for record overhead and the header within max.message.bytes */
	int64_t limit = (o->batch_bytes > 0 && o->batch_bytes < t->conf.max_message_bytes ?
			 o->batch_bytes : t->conf.max_message_bytes) * 3 / 4;

	if (!realpath(o->path, f.path))
		return mq_syserr("cannot follow '%s'", o->path);
	uint32_t h = (uint32_t)mq_murmur2(f.path, strlen(f.path));
	mq_pathf(f.hint, sizeof f.hint, "%s/follow-%08x.hint", t->dir, h);
	f.hint_off = calloc((size_t)np, sizeof *f.hint_off);
	f.bb = calloc((size_t)np, sizeof *f.bb);
	f.used = calloc((size_t)np, sizeof *f.used);
	f.skip = calloc((size_t)np, 1);
	if (!f.hint_off || !f.bb || !f.used || !f.skip) {
		mq_syserr("cannot follow '%s'", o->path);
		goto out;
	}
	for (int32_t i = 0; i < np; i++)
		mq_batch_builder_init(&f.bb[i], o->codec);
	read_hint(&f);

	/* where the last run stopped */
	struct round_info *per = calloc((size_t)np, sizeof *per);
	if (!per) {
		mq_syserr("cannot follow '%s'", o->path);
		goto out;
	}
	for (int32_t i = 0; i < np; i++) {
		if (scan_partition(&f, i, &per[i]) < 0) {
			free(per);
			goto out;
		}
		if (per[i].seq > newest.seq)
			newest = per[i];
	}
	if ((fd = open(f.path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0) {
		mq_syserr("cannot open '%s'", o->path);
		free(per);
		goto out;
	}
	inode_of(&st, inode, sizeof inode);
	if (newest.seq >= 0 && !strcmp(newest.inode, inode)) {
		int32_t have = 0;
		for (int32_t i = 0; i < np; i++)
			if (per[i].seq == newest.seq) {
				have++;
				f.skip[i] = 1;
			}
		if (have >= newest.nparts) {
			pos = newest.end;
			memset(f.skip, 0, (size_t)np);
			if (newest.sticky >= 0)
				f.sticky = (newest.sticky + 1) % np;
		} else {
			/* replay the round as it was: its unkeyed lines go where
			 * they went, keyed ones hash the same */
			pos = newest.start;
			f.skip_until = newest.end;
			if (newest.sticky >= 0 && newest.sticky < np)
				f.sticky = newest.sticky;
		}
		if (pos > st.st_size)
			pos = 0;     /* truncated since */
	}
	f.seq = newest.seq + 1;
	free(per);
	if (lseek(fd, (off_t)pos, SEEK_SET) < 0) {
		mq_syserr("cannot seek '%s'", o->path);
		goto out;
	}
	if ((ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) >= 0)
		inotify_add_watch(ino, f.path, IN_MODIFY | IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF);

	int64_t bufpos = pos;        /* file position of buf.p[0] */
	int discarding = 0;          /* inside a line too long to ship */
	while (!*o->stop) {
		if (mq_buf_reserve(&buf, (size_t)limit) < 0)
			goto out;
		ssize_t r = read(fd, buf.p + buf.len, buf.cap - buf.len);
		if (r < 0 && errno != EINTR) {
			mq_syserr("cannot read '%s'", o->path);
			goto out;
		}
		if (r > 0)
			buf.len += (size_t)r;
		if (discarding && buf.len) {
			/* the rest of a line too long to ship */
			const uint8_t *d = memmem(buf.p, buf.len, o->delim, o->dlen);
			size_t drop = d ? (size_t)(d - buf.p) + o->dlen :
				      buf.len > o->dlen ? buf.len - (o->dlen - 1) : 0;
			memmove(buf.p, buf.p + drop, buf.len - drop);
			buf.len -= drop;
			bufpos += (int64_t)drop;
			discarding = !d;
		}
		/* ship the complete lines, a batch worth at a time */
		size_t done = 0;
		for (;;) {
			size_t upto = 0, scan = done, lines = 0;
			const uint8_t *d;
			while ((d = memmem(buf.p + scan, buf.len - scan, o->delim, o->dlen))) {
				size_t e = (size_t)(d - buf.p) + o->dlen;
				/* a record costs up to 16 bytes besides its line */
				if (upto > done && (int64_t)(e - done + 16 * (lines + 1)) > limit)
					break;
				upto = e;
				scan = e;
				lines++;
			}
			if (upto <= done)
				break;
			if (ship(&f, buf.p + done, upto - done, bufpos + (int64_t)done, inode) < 0)
				goto out;
			done = upto;
		}
		if (done) {
			memmove(buf.p, buf.p + done, buf.len - done);
			buf.len -= done;
			bufpos += (int64_t)done;
		}
		if (r > 0)
			continue;
		if (buf.len >= (size_t)t->conf.max_message_bytes) {
			if (!o->skip_oversize) {
				mq_error(MQ_ENEG, "'%s': line at byte %" PRId64
					 " is longer than max.message.bytes (%d)",
					 o->path, bufpos, t->conf.max_message_bytes);
				goto out;
			}
			/* drop it up to its delimiter (below, as more comes) */
			if (!discarding && o->on_skip)
				o->on_skip(o->arg, bufpos, buf.len);
			discarding = 1;
			bufpos += (int64_t)buf.len;
			buf.len = 0;
			continue;
		}
		/* at the end: rotated or truncated? */
		struct stat now;
		if (stat(f.path, &now) == 0) {
			char ni[64];
			inode_of(&now, ni, sizeof ni);
			if (strcmp(ni, inode)) {
				int nfd = open(f.path, O_RDONLY | O_CLOEXEC);
				if (nfd >= 0) {
					close(fd);
					fd = nfd;
					snprintf(inode, sizeof inode, "%s", ni);
					buf.len = 0;
					bufpos = 0;
					if (ino >= 0)
						inotify_add_watch(ino, f.path, IN_MODIFY | IN_ATTRIB |
								  IN_MOVE_SELF | IN_DELETE_SELF);
					continue;
				}
			} else if (now.st_size < bufpos + (int64_t)buf.len) {
				lseek(fd, 0, SEEK_SET);
				buf.len = 0;
				bufpos = 0;
				continue;
			}
		}
		/* wait for a change (and look at the name again now and then,
		 * for a file created anew under it) */
		struct pollfd pf = { .fd = ino, .events = POLLIN };
		if (poll(&pf, ino >= 0 ? 1 : 0, 1000) > 0) {
			char ev[4096];
			while (read(ino, ev, sizeof ev) > 0)
				;
		}
	}
	write_hint(&f);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (ino >= 0)
		close(ino);
	mq_buf_free(&buf);
	for (int32_t i = 0; f.bb && i < np; i++)
		mq_batch_builder_free(&f.bb[i]);
	free(f.bb);
	free(f.used);
	free(f.skip);
	free(f.hint_off);
	return rc;
}
