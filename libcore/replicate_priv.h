/*
 * replicate_priv.h: what replicate.c and replicate_diverge.c share, a
 * follower's state.
 */
#ifndef MQ_REPLICATE_PRIV_H
#define MQ_REPLICATE_PRIV_H

#include <limits.h>

#include "log_priv.h"

struct part {
	size_t ti;                /* topic: r->src[ti], r->dst[ti] */
	struct mq_topic *src, *dst;   /* set again whenever those move */
	int32_t p;
	char dir[PATH_MAX];       /* the local partition */
	char sdir[PATH_MAX];      /* the source's, when it is a directory */
	struct mq_log *log;
	int64_t end;              /* local log end */
	int checked;              /* divergence checked */
	int64_t hw;               /* the leader's high watermark, as last heard */
	int idle;                 /* the last fetch brought nothing */
};

/* What one fetch brought. */
struct chunk {
	struct mq_response resp;  /* a remote source's answer */
	struct mq_buf buf;        /* what a directory source gave */
	const uint8_t *data;      /* whole batches */
	size_t len;
	int64_t next;             /* the offset after them (check) */
	int64_t seg;              /* the base of the source segment they came
				   * from (or of its newest one) */
	int64_t start, end, hw;   /* the source partition's, as the fetch saw them */
};

struct rep {
	const struct mq_replicate_opts *o;
	int remote;
	struct mq_topic *src, *dst;
	size_t ntopics;
	struct part *parts;
	size_t nparts;
	struct chunk ck[2];       /* the one being written, and the next */
	int ino;
};

/* Whole batches at offset from the source into c; position is how far
 * this follower's log goes (-1: to offset). */
int mq_rep_fetch(struct rep *r, struct part *pt, int64_t offset, int64_t position, int64_t max,
		 int64_t wait, struct chunk *c);
/* Before the first append: same history as the source?  Cuts or resets
 * when the options say so. */
int mq_rep_reconcile(struct rep *r, struct part *pt);

#endif
