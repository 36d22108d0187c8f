/*
 * log_priv.h: what log.c, reader.c, verify.c and partition.c share and
 * nobody else needs: the buffered batch walker over one segment file and
 * the names of a partition's checkpoint files.
 */
#ifndef MQ_LOG_PRIV_H
#define MQ_LOG_PRIV_H

#include "mq.h"

#define MQ_CKPT_LOG_START "log-start-offset.checkpoint"
#define MQ_CKPT_RECOVERY "recovery-point.checkpoint"
#define MQ_CKPT_HW "high-watermark.checkpoint"
#define MQ_MAX_BATCH MQ_MAX_RECORDS  /* refuse to buffer a batch past this */
#define MQ_WALK_CHUNK (1 << 20)

/* Walks the batches of one segment file from a position, reading in
 * chunks.  Each batch returned is whole in memory. */
struct mq_walk {
	int fd;
	int64_t pos;              /* file position of the next batch */
	int64_t size;             /* bytes of file to consider */
	struct mq_buf buf;
	int64_t buf_pos;          /* file position of buf.p[0] */
	size_t buf_off;           /* consumed bytes of buf */
	int check_crc;
};
void mq_walk_init(struct mq_walk *w, int fd, int64_t pos, int64_t size, int check_crc);
/* 1: *b is the batch at the old w->pos and w->pos moved past it.
 * 0: fewer bytes than a whole batch remain (end, or torn tail).
 * -1: the bytes at w->pos are not a valid batch (MQ_ECORRUPT, message
 * says why but not where) or a read failed (MQ_EIO). */
int mq_walk_next(struct mq_walk *w, struct mq_batch *b);
void mq_walk_free(struct mq_walk *w);

/* Max timestamp of a segment and the offset it belongs to, from its time
 * index and the batches after its last offset index entry. */
int mq_segment_max_timestamp(const char *dir, const struct mq_segment *s,
			     int64_t *ts);

/* Deletes a segment's .log, .index and .timeindex. */
int mq_segment_remove(const char *dir, int64_t base);

/* Parses "00000000000000000042.log" style names: 1 and *base when name
 * is a segment with extension ext. */
int mq_segment_name(const char *name, const char *ext, int64_t *base);

/* Writes the indexes of the segment at base (log fd, size bytes) as an
 * appender would have: one offset entry per interval bytes, a time entry
 * with each when the max timestamp grew, and a final time entry for a
 * closed segment. */
int mq_index_rebuild(const char *dir, int64_t base, int fd, int64_t size,
		     int64_t interval, int closed);

/* For recovery: is the damage at pos a tail a crash leaves (rather than
 * damage with good batches after it)? */
int mq_damaged_tail(int fd, int64_t pos, int64_t size);
/* Checks a closed segment from pos (CRC, dense offsets, offsets inside
 * the segment); *cut gets the position of the first bad batch or -1,
 * *next the offset after the last good one. */
int mq_segment_validate(const char *dir, const struct mq_segment *s, int64_t pos,
			int64_t *next, int64_t *cut);
/* Rebuilds a closed segment's indexes when missing or damaged. */
int mq_index_heal(const char *dir, const struct mq_segment *s, int64_t interval);

/* mq_partition_retention for a caller that holds the partition lock. */
int mq_retention_locked(const char *dir, const struct mq_config *conf,
			int64_t now, size_t *removed);

/* The partition lock: flock on the directory itself. */
int mq_partition_lock(const char *dir, int *fd);
void mq_partition_unlock(int fd);
/* Takes the lock on an open partition directory, through EINTR. */
int mq_flock_ex(int fd, const char *dir);

#endif
