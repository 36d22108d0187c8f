/*
 * replica.c: the leader's side of replication, and what a follower does
 * to its own partition when its history must change.
 *
 * Follower positions.  Every fetch a follower makes says who it is and
 * from which offset it fetches, which is how far it has replicated (its
 * log end).  The leader keeps that per partition in a small file:
 *
 *   DATADIR/topics/T/P/replica-ID.state     "POSITION TIME\n"
 *
 * replaced by rename, never synced: losing it in a power cut costs only
 * a moment out of the in-sync set.
 *
 * High watermark.  With min.insync.replicas = k > 0 (mq counts
 * followers, see conf.c), a follower is in sync when it fetched within
 * replica.lag.time.max.ms; the high watermark is the k-th highest
 * position among the in-sync followers, never past the log end and never
 * moving back.  It is kept in high-watermark.checkpoint, which
 * mq_partition_info reads; with k = 0 it is simply the log end.
 * Consumers read below it and `mq-produce --acks all` waits for it.
 *
 * Rewriting history.  A follower whose log diverged is cut back to the
 * common prefix (mq_partition_truncate), and one the leader's retention
 * left behind starts over at the leader's log start (mq_partition_reset);
 * both under the partition lock, like any append.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "log_priv.h"

#define STATE_PREFIX "replica-"
#define STATE_SUFFIX ".state"

int mq_replica_id_check(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > 100)
		return mq_error(MQ_EUSAGE, "invalid replica id '%s': 1 to 100 characters", id);
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", id[i]))
			return mq_error(MQ_EUSAGE, "invalid replica id '%s': use [A-Za-z0-9._-]", id);
	return 0;
}

int mq_replicas_list(const char *dir, const struct mq_config *conf, int64_t now,
		     struct mq_replica **out, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct mq_replica *v = NULL;
	size_t k = 0;

	*out = NULL;
	*n = 0;
	if (!d)
		return errno == ENOENT ? 0 : mq_syserr("cannot read partition '%s'", dir);
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name), pl = strlen(STATE_PREFIX), sl = strlen(STATE_SUFFIX);
		char path[PATH_MAX], *text;
		size_t tl;
		if (len <= pl + sl || strncmp(e->d_name, STATE_PREFIX, pl) ||
		    strcmp(e->d_name + len - sl, STATE_SUFFIX) || len - pl - sl >= sizeof v->id)
			continue;
		mq_pathf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (mq_read_file(path, 256, &text, &tl) < 0)
			continue;
		struct mq_replica r = { .position = -1 };
		memcpy(r.id, e->d_name + pl, len - pl - sl);
		r.id[len - pl - sl] = '\0';
		if (sscanf(text, "%lld %lld", (long long *)&r.position, (long long *)&r.time) == 2) {
			r.in_sync = now - r.time <= conf->replica_lag_max_ms;
			struct mq_replica *nv = realloc(v, (k + 1) * sizeof *nv);
			if (!nv) {
				free(text);
				free(v);
				closedir(d);
				return mq_syserr("cannot read replicas of '%s'", dir);
			}
			v = nv;
			v[k++] = r;
		}
		free(text);
	}
	closedir(d);
	*out = v;
	*n = k;
	return 0;
}

static int by_position_desc(const void *a, const void *b)
{
	int64_t x = ((const struct mq_replica *)a)->position, y = ((const struct mq_replica *)b)->position;
	return (x < y) - (x > y);
}

int mq_partition_hw(const char *dir, const struct mq_config *conf, int64_t *hw)
{
	struct mq_partition_info pi;
	struct mq_replica *v;
	size_t n, k = (size_t)conf->min_insync_replicas, ins = 0;
	char path[PATH_MAX];
	int64_t old;

	if (mq_partition_info(dir, &pi) < 0)
		return -1;
	if (k == 0) {
		*hw = pi.log_end;
		return 0;
	}
	mq_pathf(path, sizeof path, "%s/" MQ_CKPT_HW, dir);
	if (mq_checkpoint_read(path, &old) < 0)
		old = pi.log_start;
	if (mq_replicas_list(dir, conf, mq_now_ms(), &v, &n) < 0)
		return -1;
	if (n)
		qsort(v, n, sizeof *v, by_position_desc);
	for (size_t i = 0; i < n; i++)
		if (v[i].in_sync && ++ins == k && v[i].position > old)
			old = v[i].position;
	free(v);
	if (old > pi.log_end)
		old = pi.log_end;
	*hw = old;
	return 0;
}

int mq_replica_report(const char *dir, const struct mq_config *conf, const char *id,
		      int64_t position)
{
	char path[PATH_MAX], line[64];
	int64_t hw, old;

	mq_pathf(path, sizeof path, "%s/" STATE_PREFIX "%s" STATE_SUFFIX, dir, id);
	int n = snprintf(line, sizeof line, "%lld %lld\n", (long long)position, (long long)mq_now_ms());
	if (mq_write_file_replace(path, line, (size_t)n) < 0)
		return mq_syserr("cannot record the position of replica '%s'", id);
	if (conf->min_insync_replicas == 0 || mq_partition_hw(dir, conf, &hw) < 0)
		return 0;
	mq_pathf(path, sizeof path, "%s/" MQ_CKPT_HW, dir);
	if (mq_checkpoint_read(path, &old) == 0 && old >= hw)
		return 0;
	return mq_checkpoint_write(path, hw, 0);
}

int mq_partition_wait_hw(const char *dir, const struct mq_config *conf, int64_t offset,
			 int64_t timeout_ms)
{
	int64_t deadline = mq_mono_ms() + timeout_ms, hw = 0;
	int ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	char buf[4096];

	if (ino >= 0)
		inotify_add_watch(ino, dir, IN_MOVED_TO | IN_CREATE | IN_MODIFY);
	for (;;) {
		if (mq_partition_hw(dir, conf, &hw) < 0) {
			if (ino >= 0)
				close(ino);
			return -1;
		}
		if (hw >= offset) {
			if (ino >= 0)
				close(ino);
			return 0;
		}
		int64_t left = deadline - mq_mono_ms();
		if (left <= 0)
			break;
		struct pollfd pf = { .fd = ino, .events = POLLIN };
		/* without inotify, look every 50 ms */
		poll(&pf, ino >= 0 ? 1 : 0, (int)(ino >= 0 || left < 50 ? left : 50));
		while (ino >= 0 && read(ino, buf, sizeof buf) > 0)
			;
	}
	if (ino >= 0)
		close(ino);
	struct mq_replica *v;
	size_t n, ins = 0;
	if (mq_replicas_list(dir, conf, mq_now_ms(), &v, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			ins += v[i].in_sync;
		free(v);
	}
	return mq_error(MQ_EREMOTE,
			"timed out after %lld ms waiting for %d in-sync replica%s to reach offset %lld "
			"(%zu in sync, high watermark %lld)",
			(long long)timeout_ms, conf->min_insync_replicas,
			conf->min_insync_replicas == 1 ? "" : "s", (long long)offset, ins, (long long)hw);
}

/* ---- rewriting a follower's history ---- */

static int clamp_ckpt(const char *dir, const char *name, int64_t max)
{
	char path[PATH_MAX];
	int64_t v;

	mq_pathf(path, sizeof path, "%s/%s", dir, name);
	if (mq_checkpoint_read(path, &v) == 0 && v > max)
		return mq_checkpoint_write(path, max, 1);
	return 0;
}

int mq_partition_truncate(const char *dir, int64_t offset, int64_t interval)
{
	struct mq_segment *segs = NULL;
	size_t n;
	int lockfd, fd = -1, rc = -1;
	char path[PATH_MAX];

	if (mq_partition_lock(dir, &lockfd) < 0)
		return -1;
	if (mq_segments_list(dir, &segs, &n) < 0)
		goto out;
	/* whole segments past the cut go, newest first */
	while (n > 1 && segs[n - 1].base >= offset) {
		if (mq_segment_remove(dir, segs[n - 1].base) < 0)
			goto out;
		n--;
	}
	if (n > 0) {
		struct mq_walk w;
		struct mq_batch b;
		int64_t pos = 0;
		mq_segment_path(path, sizeof path, dir, segs[n - 1].base, "log");
		if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0) {
			mq_syserr("cannot open segment '%s'", path);
			goto out;
		}
		mq_walk_init(&w, fd, 0, segs[n - 1].size, 0);
		while (mq_walk_next(&w, &b) > 0 && b.base_offset < offset)
			pos = w.pos;
		mq_walk_free(&w);
		if (ftruncate(fd, (off_t)pos) < 0 || fsync(fd) < 0) {
			mq_syserr("cannot truncate '%s'", path);
			goto out;
		}
		if (mq_index_rebuild(dir, segs[n - 1].base, fd, pos, interval, 0) < 0)
			goto out;
	}
	if (clamp_ckpt(dir, MQ_CKPT_RECOVERY, offset) < 0 || clamp_ckpt(dir, MQ_CKPT_HW, offset) < 0 ||
	    mq_fsync_dir(dir) < 0)
		goto out;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(segs);
	mq_partition_unlock(lockfd);
	return rc;
}

int mq_partition_reset(const char *dir, int64_t start)
{
	struct mq_segment *segs = NULL;
	size_t n;
	int lockfd, fd, rc = -1;
	char path[PATH_MAX];

	if (mq_mkdir_p(dir, 0777) < 0)
		return mq_syserr("cannot create partition '%s'", dir);
	if (mq_partition_lock(dir, &lockfd) < 0)
		return -1;
	if (mq_segments_list(dir, &segs, &n) < 0)
		goto out;
	for (size_t i = n; i-- > 0;)
		if (mq_segment_remove(dir, segs[i].base) < 0)
			goto out;
	mq_pathf(path, sizeof path, "%s/" MQ_CKPT_LOG_START, dir);
	if (mq_checkpoint_write(path, start, 1) < 0)
		goto out;
	mq_pathf(path, sizeof path, "%s/" MQ_CKPT_RECOVERY, dir);
	if (mq_checkpoint_write(path, start, 1) < 0)
		goto out;
	mq_pathf(path, sizeof path, "%s/" MQ_CKPT_HW, dir);
	unlink(path);
	mq_segment_path(path, sizeof path, dir, start, "log");
	if ((fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0666)) < 0) {
		mq_syserr("cannot create segment '%s'", path);
		goto out;
	}
	close(fd);
	rc = mq_fsync_dir(dir);
out:
	free(segs);
	mq_partition_unlock(lockfd);
	return rc;
}
