/*
 * test_log.c: the storage engine end to end, through the public API:
 * batches built and decoded, partition logs appended and read back,
 * segment rolls followed by readers, the sparse indexes and their
 * rebuilding, recovery of torn and corrupt tails, the recovery point,
 * several processes appending at once, time lookups, retention, partition
 * state, the atomic small-file writer, and Kafka's zero-padded indexes.
 *
 * Each test works in its own temporary directory.  The record at offset o
 * is written with value "v-<o>|xxx..." and timestamp ts0 + o * tstep, so
 * whatever a reader returns can be checked on its own.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mq.h"
#include "unit.h"

#define TS0 1700000000000LL          /* 2023-11-14, epoch ms */
#define KAFKA_INDEX_SIZE (10 << 20)  /* Kafka's preallocated index size */

/* CHECK evaluates its condition twice: conditions that do something
 * (append, seek, verify, repair) go through ONCE. */
#define ONCE(cond, ...) do { int once_ = !!(cond); CHECK(once_, __VA_ARGS__); } while (0)

/* ---- helpers: directories and files -------------------------------- */

/* The partition directory exists before a log opens (mq-topic creates
 * them); tests make it themselves. */
static int open_log(struct mq_log **l, const char *dir, const struct mq_config *c, int flags)
{
	mq_mkdir_p(dir, 0777);
	return mq_log_open(l, dir, c, flags);
}

static char *mktmp(void)
{
	char *d = strdup("/tmp/test_log.XXXXXX");
	if (!d || !mkdtemp(d)) {
		perror("mkdtemp");
		exit(2);
	}
	return d;
}

static void rmtmp(char *d)
{
	mq_rm_rf(d);
	free(d);
}

static void segfile(char *buf, const char *dir, int64_t base, const char *ext)
{
	mq_segment_path(buf, PATH_MAX, dir, base, ext);
}

static int64_t fsize(const char *path)
{
	struct stat st;
	return stat(path, &st) < 0 ? -1 : (int64_t)st.st_size;
}

/* The whole file, malloc'd; NULL when missing. */
static uint8_t *slurp(const char *path, size_t *n)
{
	char *s;
	int64_t sz = fsize(path);
	return sz < 0 || mq_read_file(path, (size_t)sz, &s, n) < 0 ? NULL : (uint8_t *)s;
}

static void spit(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
	if (fd < 0 || mq_write_all(fd, p, n) < 0)
		perror(path);
	if (fd >= 0)
		close(fd);
}

static void resize(const char *path, int64_t size)
{
	if (truncate(path, (off_t)size) < 0)
		perror(path);
}

static void flip(const char *path, int64_t pos)
{
	size_t n;
	uint8_t *p = slurp(path, &n);
	if (p && (size_t)pos < n) {
		p[pos] ^= 0x55;
		spit(path, p, n);
	}
	free(p);
}

static void garble(const char *path)
{
	size_t n;
	uint8_t *p = slurp(path, &n);
	for (size_t i = 0; p && i < n; i++)
		p[i] = (uint8_t)(i * 97 + 13);
	if (p)
		spit(path, p, n);
	free(p);
}

/* Runs a shell command made with printf arguments; its exit status. */
static int sh(const char *fmt, ...)
{
	char cmd[3 * PATH_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	fflush(stdout);
	return system(cmd);
}

/* 1 when directories a and b hold the same files, byte for byte. */
static int same_dirs(const char *a, const char *b)
{
	return sh("out=$(diff -rq %s %s) || { echo \"$out\" | sed 's/^/#   /'; exit 1; }", a, b) == 0;
}

static void config_small(struct mq_config *c, int64_t segment_bytes)
{
	mq_config_default(c);
	c->segment_bytes = segment_bytes;
	c->retention_ms = -1;     /* the timestamps are old: nothing expires */
}

static void report(const struct mq_verify_problem *p, void *arg)
{
	(void)arg;
	printf("#   verify: %s at %lld: %s\n", p->file, (long long)p->pos, p->what);
}

/* Problems mq_verify_partition finds, or -1 when it fails. */
static long verify(const char *dir, int repair, struct mq_verify_result *res)
{
	struct mq_verify_result r;
	if (mq_verify_partition(dir, repair, report, NULL, res ? res : &r) < 0) {
		printf("#   verify failed: %s\n", mq_errmsg());
		return -1;
	}
	return (long)(res ? res : &r)->nproblems;
}

static int64_t read_rp(const char *dir)
{
	char path[PATH_MAX];
	int64_t v = -1;
	mq_pathf(path, sizeof path, "%s/recovery-point.checkpoint", dir);
	return mq_checkpoint_read(path, &v) < 0 ? -1 : v;
}

/* ---- helpers: writing and reading records ----------------------------- */

struct gen {
	int codec;
	int pad;                  /* bytes of 'x' after "v-<offset>|" */
	int64_t ts0, tstep;
};
static const struct gen plain = { MQ_CODEC_NONE, 20, TS0, 1 };

static int value_of(char *buf, const struct gen *g, int64_t off)
{
	int len = sprintf(buf, "v-%lld|", (long long)off);
	memset(buf + len, 'x', (size_t)g->pad);
	return len + g->pad;
}

/* Appends nbatch batches of per records in one mq_log_append, valued for
 * offsets from next on.  Returns the first offset the log assigned. */
static int64_t append_n(struct mq_log *l, const struct gen *g, int64_t next, int nbatch, int per)
{
	struct mq_batch_builder bb;
	struct mq_buf all = { 0 };
	char key[32], val[4096];
	int64_t first = -1;

	mq_batch_builder_init(&bb, g->codec);
	for (int b = 0; b < nbatch; b++) {
		for (int i = 0; i < per; i++, next++)
			mq_batch_builder_add(&bb, g->ts0 + next * g->tstep, key,
					     sprintf(key, "k%lld", (long long)next), val,
					     value_of(val, g, next), NULL, 0);
		mq_batch_builder_finish(&bb, 0);
		mq_buf_append(&all, bb.out.p, bb.out.len);
		mq_batch_builder_reset(&bb);
	}
	if (mq_log_append(l, all.p, all.len, &first) < 0)
		printf("#   append failed: %s\n", mq_errmsg());
	mq_batch_builder_free(&bb);
	mq_buf_free(&all);
	return first;
}

/* Opens dir, appends nbatch batches of per records (one per append) from
 * offset next, closes.  1 when every offset was the expected one. */
static int write_log(const char *dir, const struct mq_config *c, const struct gen *g,
		     int64_t next, int nbatch, int per)
{
	struct mq_log *l;
	int ok = open_log(&l, dir, c, 0) == 0;
	for (int b = 0; ok && b < nbatch; b++, next += per)
		ok = append_n(l, g, next, 1, per) == next;
	return mq_log_close(l) == 0 && ok;
}

/* What reading found. */
struct scan {
	int64_t records, bad;     /* bad: offset, value or timestamp wrong */
	int64_t next;             /* the offset expected next */
	int rc;                   /* the last mq_reader_next result */
};

/* Reads with r until nothing more is there (or an error), checking that
 * records come at dense offsets from s->next as g wrote them. */
static void scan_reader(struct mq_reader *r, const struct gen *g, struct scan *s)
{
	struct mq_batch b;
	char want[4096];

	while ((s->rc = mq_reader_next(r, &b)) > 0) {
		struct mq_record_iter it = { 0 };
		struct mq_record rec;
		if (mq_record_iter_init(&it, &b, 1 << 28) < 0)
			s->bad++;
		while (mq_record_next(&it, &rec) > 0) {
			if (rec.offset < s->next)
				continue;        /* before the seek target */
			int n = value_of(want, g, rec.offset);
			s->bad += rec.offset != s->next || rec.value_len != n ||
				  memcmp(rec.value, want, (size_t)n) ||
				  rec.timestamp != g->ts0 + rec.offset * g->tstep;
			s->records++;
			s->next = rec.offset + 1;
		}
		mq_record_iter_free(&it);
	}
}

static void scan_log(const char *dir, const struct gen *g, int64_t from, struct scan *s)
{
	struct mq_reader *r;

	memset(s, 0, sizeof *s);
	s->next = from;
	s->rc = -1;
	if (mq_reader_open(&r, dir) < 0)
		return;
	if (mq_reader_seek(r, from) == 0)
		scan_reader(r, g, s);
	if (s->rc < 0)
		printf("#   read stopped: %s\n", mq_errmsg());
	mq_reader_close(r);
}

/* Start positions and last offsets of the batches of a .log file. */
static size_t log_batches(const char *path, int64_t *pos, int64_t *last, size_t max)
{
	size_t n, k = 0, off = 0;
	uint8_t *p = slurp(path, &n);
	struct mq_batch b;

	while (p && k < max && mq_batch_parse(p + off, n - off, &b) == MQ_BATCH_OK) {
		pos[k] = (int64_t)off;
		last[k++] = mq_batch_last_offset(&b);
		off += b.size;
	}
	free(p);
	return k;
}

/* ---- 1. batches: build, decode, patch the offset ---------------------- */

#define S(s) (const uint8_t *)(s)

static void test_batch(int codec)
{
	static const struct mq_header hs[] = { { S("trace"), 5, S("abc"), 3 }, { S("nil"), 3, NULL, -1 },
					       { S(""), 0, S(""), 0 } };
	static uint8_t big[3000];
	static const struct { const char *k; int32_t kl; const void *v; int32_t vl; int64_t ts; int nh; } in[] = {
		{ "alpha", 5, "one", 3, TS0, 3 }, { NULL, -1, "two", 3, TS0 + 7, 0 },
		{ "gamma", 5, NULL, -1, TS0 + 3, 1 }, { "", 0, "", 0, TS0 - 2, 0 },
		{ "big", 3, big, sizeof big, TS0 + 100, 2 },
	};
	struct mq_batch_builder bb;
	struct mq_batch b;
	struct mq_record_iter it = { 0 };
	struct mq_record r;
	const char *cn = mq_codec_name(codec);
	int i, ok = 1;

	for (i = 0; i < (int)sizeof big; i++)
		big[i] = (uint8_t)(i * 7 + i / 256);
	mq_batch_builder_init(&bb, codec);
	for (i = 0; i < 5; i++)
		ok &= mq_batch_builder_add(&bb, in[i].ts, in[i].k, in[i].kl, in[i].v, in[i].vl, hs, in[i].nh) == 0;
	ONCE(ok && mq_batch_builder_finish(&bb, 0) == 0 && mq_batch_parse(bb.out.p, bb.out.len, &b) == MQ_BATCH_OK,
	     "%s: a batch of 5 records builds and parses", cn);
	CHECK(b.size == bb.out.len && b.magic == 2 && b.base_offset == 0 && (b.attributes & 7) == codec,
	      "%s: size, magic 2, base offset 0, codec in attributes", cn);
	CHECK(b.count == 5 && b.last_offset_delta == 4, "%s: count 5, lastOffsetDelta 4", cn);
	CHECK(b.base_timestamp == TS0 && b.max_timestamp == TS0 + 100, "%s: base and max timestamp", cn);
	CHECK(b.producer_id == -1 && b.producer_epoch == -1 && b.base_sequence == -1, "%s: no producer id", cn);
	CHECK(mq_batch_crc_ok(&b), "%s: CRC valid", cn);

	mq_batch_set_offset(bb.out.p, 1000, 7);
	ONCE(mq_batch_parse(bb.out.p, bb.out.len, &b) == MQ_BATCH_OK && b.base_offset == 1000 &&
	     b.leader_epoch == 7 && mq_batch_crc_ok(&b), "%s: set_offset moves the offset, CRC stays valid", cn);
	CHECK_EQ_INT(mq_record_iter_init(&it, &b, 1 << 20), 0, "%s: iterator init", cn);
	for (i = 0; i < 5 && mq_record_next(&it, &r) == 1; i++) {
		struct mq_header h;
		size_t hp = 0;
		int j = 0;
		ok = r.offset == 1000 + i && r.timestamp == in[i].ts && r.key_len == in[i].kl &&
		     r.value_len == in[i].vl && r.header_count == in[i].nh &&
		     (in[i].kl < 0 ? !r.key : !memcmp(r.key, in[i].k, (size_t)in[i].kl)) &&
		     (in[i].vl < 0 ? !r.value : !memcmp(r.value, in[i].v, (size_t)in[i].vl));
		for (; mq_header_next(&r, &hp, &h) == 1; j++)
			ok &= j < in[i].nh && h.key_len == hs[j].key_len && h.value_len == hs[j].value_len &&
			      !memcmp(h.key, hs[j].key, (size_t)h.key_len) &&
			      (h.value_len < 0 ? !h.value : !memcmp(h.value, hs[j].value, (size_t)h.value_len));
		CHECK(ok && j == in[i].nh, "%s: record %d comes back byte for byte", cn, i);
	}
	ONCE(i == 5 && mq_record_next(&it, &r) == 0, "%s: exactly 5 records", cn);
	mq_record_iter_free(&it);
	bb.out.p[bb.out.len - 1] ^= 1;
	CHECK(!mq_batch_crc_ok(&b), "%s: a flipped bit fails the CRC", cn);

	mq_batch_builder_reset(&bb);
	mq_batch_builder_add(&bb, TS0, "k", 1, "v", 1, NULL, 0);
	mq_batch_builder_finish(&bb, 0);
	ONCE(mq_batch_parse(bb.out.p, bb.out.len, &b) == MQ_BATCH_OK && b.count == 1 &&
	     b.last_offset_delta == 0 && mq_batch_crc_ok(&b), "%s: the builder is reused after reset", cn);
	mq_batch_builder_free(&bb);
}

/* ---- 2. appending and reading back ------------------------------------ */

static void test_append_read(void)
{
	static const int codecs[] = { MQ_CODEC_NONE, MQ_CODEC_GZIP, MQ_CODEC_LZ4 };
	char *d = mktmp();
	struct mq_config c;
	struct mq_log *l;
	struct mq_reader *r;
	struct mq_batch b;
	struct scan s;
	int64_t next = 0;
	int bad = 0;

	config_small(&c, 1 << 30);
	CHECK_EQ_INT(open_log(&l, d, &c, 0), 0, "open a fresh partition");
	for (int i = 0; i < 60; i++) {
		struct gen g = plain;
		int nb = 1 + i % 4, per = 1 + i % 7;
		g.codec = codecs[i % 3];
		bad += append_n(l, &g, next, nb, per) != next;
		next += nb * per;
	}
	CHECK(bad == 0, "60 appends of 1-4 batches each get dense offsets from 0 (%d wrong)", bad);
	CHECK_EQ_INT(mq_log_end_offset(l), next, "log end offset");
	CHECK_EQ_INT(mq_log_close(l), 0, "close");

	scan_log(d, &plain, 0, &s);
	CHECK(s.rc == 0 && s.records == next && s.bad == 0, "a reader reads all %lld records in order", (long long)next);
	scan_log(d, &plain, 9, &s);
	CHECK(s.rc == 0 && s.records == next - 9 && s.bad == 0, "and from offset 9, inside the batch 8..10");
	mq_reader_open(&r, d);
	ONCE(mq_reader_seek(r, 9) == 0 && mq_reader_next(r, &b) == 1 && b.base_offset == 8 &&
	     mq_batch_last_offset(&b) == 10, "seek 9 returns the batch holding it");
	ONCE(mq_reader_seek(r, next) == 0 && mq_reader_next(r, &b) == 0, "seek to the end: nothing yet");
	ONCE(mq_reader_seek(r, next + 1) == -1 && mq_errclass() == MQ_ENOTFOUND, "seek past the end: not found");
	ONCE(mq_reader_seek(r, -1) == -1 && mq_errclass() == MQ_ENOTFOUND, "seek below the start: not found");
	mq_reader_close(r);
	rmtmp(d);
}

/* ---- 3. segment rolls, followed by readers ----------------------------- */

static void test_roll_follow(void)
{
	char *d = mktmp(), path[PATH_MAX];
	struct mq_config c;
	struct mq_reader *r;
	struct scan s;
	DIR *dir;
	struct dirent *e;
	int nseg = 0, ok = 1;

	config_small(&c, 4096);
	ONCE(write_log(d, &c, &plain, 0, 300, 5), "300 appends with 4 KiB segments");
	for (dir = opendir(d); dir && (e = readdir(dir));) {
		size_t n, l = strlen(e->d_name);
		uint8_t *p;
		if (l < 4 || strcmp(e->d_name + l - 4, ".log"))
			continue;
		nseg++;
		mq_pathf(path, sizeof path, "%s/%s", d, e->d_name);
		p = slurp(path, &n);
		ok &= l == 24 && strspn(e->d_name, "0123456789") == 20 && p && n >= 12 && n <= 4096 &&
		      (int64_t)mq_be64(p) == strtoll(e->d_name, NULL, 10);
		free(p);
	}
	closedir(dir);
	CHECK(nseg >= 10 && ok, "%d segments, named with 20 digits after their first offset, under 4 KiB", nseg);
	scan_log(d, &plain, 0, &s);
	CHECK(s.rc == 0 && s.records == 1500 && s.bad == 0, "a reader reads across all segments");

	mq_reader_open(&r, d);
	memset(&s, 0, sizeof s);
	s.next = 1500;
	ONCE(mq_reader_seek(r, 1500) == 0, "a reader at the end");
	scan_reader(r, &plain, &s);
	CHECK(s.rc == 0 && s.records == 0, "next returns 0 there");
	write_log(d, &c, &plain, 1500, 100, 5);
	scan_reader(r, &plain, &s);
	CHECK(s.rc == 0 && s.records == 500 && s.bad == 0, "then returns the 500 records appended and rolled since");
	write_log(d, &c, &plain, 2000, 1, 5);
	scan_reader(r, &plain, &s);
	CHECK(s.rc == 0 && s.next == 2005 && s.bad == 0, "and one more batch later");
	mq_reader_close(r);
	CHECK_EQ_INT(verify(d, 0, NULL), 0, "verify is clean");
	rmtmp(d);
}

/* ---- 4. indexes: shape, rebuilding by writers and by verify ----------- */

/* Checks segment base's indexes against its log: 8-byte entries on batch
 * starts naming the batch's last offset, as many as Kafka's rule (one when
 * more than 4096 bytes went by) makes; 12-byte time entries increasing, a
 * closed segment's last one naming its last offset. */
static void check_index(const char *dir, int64_t base, int closed)
{
	static int64_t pos[4096], last[4096];
	char path[PATH_MAX];
	size_t nb, ni, nt, k = 0, want = 0;
	uint8_t *ix, *tix;
	int64_t prev = 0;
	int ok;

	segfile(path, dir, base, "log");
	nb = log_batches(path, pos, last, 4096);
	for (size_t i = 0; i < nb; i++)
		if (pos[i] - prev > 4096)
			want++, prev = pos[i];
	segfile(path, dir, base, "index");
	ix = slurp(path, &ni);
	ok = ix && ni == want * 8;
	for (size_t i = 0; ok && i < ni / 8; i++) {
		int64_t o = base + (int32_t)mq_be32(ix + 8 * i), p = (int32_t)mq_be32(ix + 8 * i + 4);
		while (k < nb && pos[k] < p)
			k++;
		ok = k < nb && pos[k] == p && last[k] == o;
	}
	CHECK(ok, "segment %lld: %zu index entries on batch starts, naming their last offsets", (long long)base, want);
	segfile(path, dir, base, "timeindex");
	tix = slurp(path, &nt);
	ok = tix && nt % 12 == 0 && nt / 12 == want + (closed != 0);
	for (size_t i = 0; ok && i < nt / 12; i++) {
		int64_t ts = (int64_t)mq_be64(tix + 12 * i), o = base + (int32_t)mq_be32(tix + 12 * i + 8);
		ok = ts == TS0 + o && (i == 0 || ts > (int64_t)mq_be64(tix + 12 * i - 12)) &&
		     (!closed || i + 1 < nt / 12 || o == last[nb - 1]);
	}
	CHECK(ok, "segment %lld: %zu time index entries, increasing%s", (long long)base, nt / 12,
	      closed ? ", the last naming the last offset" : "");
	free(ix);
	free(tix);
}

enum { DELETE_ACTIVE, GARBLE_ACTIVE, DELETE_ALL };

/* Writes a 5-segment partition p and a copy q; damages q's indexes; makes
 * the same append to both; then every file must be the same. */
static void rebuilt_same(int damage, const char *what)
{
	char *d = mktmp(), p[PATH_MAX], q[PATH_MAX], path[PATH_MAX];
	struct mq_config c;
	struct mq_segment *segs;
	size_t n;

	config_small(&c, 64 << 10);
	mq_pathf(p, sizeof p, "%s/p", d);
	mq_pathf(q, sizeof q, "%s/q", d);
	write_log(p, &c, &plain, 0, 700, 10);
	sh("cp -R %s %s", p, q);
	mq_segments_list(q, &segs, &n);
	for (size_t i = damage == DELETE_ALL ? 0 : n - 1; i < n; i++)
		for (int t = 0; t < 2; t++) {
			segfile(path, q, segs[i].base, t ? "timeindex" : "index");
			if (damage == GARBLE_ACTIVE)
				garble(path);
			else
				unlink(path);
		}
	free(segs);
	write_log(p, &c, &plain, 7000, 1, 10);
	write_log(q, &c, &plain, 7000, 1, 10);
	ONCE(same_dirs(p, q), "%s: the next writer rebuilds them byte for byte", what);
	rmtmp(d);
}

static void test_index(void)
{
	char *d = mktmp(), ixp[PATH_MAX], tixp[PATH_MAX];
	struct mq_config c;
	struct mq_segment *segs;
	struct mq_verify_result res;
	uint8_t *o1, *o2, *n1, *n2;
	size_t n, l1, l2, m1 = 0, m2 = 0;

	config_small(&c, 64 << 10);
	write_log(d, &c, &plain, 0, 700, 10);
	mq_segments_list(d, &segs, &n);
	CHECK(n == 5, "64 KiB segments: %zu of them", n);
	for (size_t i = 0; i < n; i++)
		check_index(d, segs[i].base, i + 1 < n);
	ONCE(verify(d, 0, &res) == 0 && res.batches == 700 && res.records == 7000,
	     "verify: no problem in 700 batches, 7000 records");

	segfile(ixp, d, segs[1].base, "index");
	segfile(tixp, d, segs[1].base, "timeindex");
	o1 = slurp(ixp, &l1);
	o2 = slurp(tixp, &l2);
	garble(ixp);
	garble(tixp);
	ONCE(verify(d, 0, NULL) > 0, "verify reports a garbled index");
	ONCE(verify(d, 1, NULL) > 0, "verify --repair too");
	n1 = slurp(ixp, &m1);
	n2 = slurp(tixp, &m2);
	CHECK(n1 && n2 && l1 == m1 && l2 == m2 && !memcmp(o1, n1, l1) && !memcmp(o2, n2, l2),
	      "and rebuilds .index and .timeindex byte for byte");
	CHECK_EQ_INT(verify(d, 0, NULL), 0, "verify is clean after the repair");
	free(o1), free(o2), free(n1), free(n2), free(segs);
	rmtmp(d);

	/* DESIGN.md §4: the first writer "rebuilds missing or damaged
	 * indexes", closed segments' too */
	rebuilt_same(DELETE_ACTIVE, "deleted indexes of the active segment");
	rebuilt_same(GARBLE_ACTIVE, "garbled indexes of the active segment");
	rebuilt_same(DELETE_ALL, "deleted indexes of every segment");
}

/* ---- 5. torn and corrupt tails ------------------------------------------ */

/* The last batch of nbatch torn by 7 bytes.  With g's batches of 10 KB,
 * 150 of them make close checkpoint the recovery point (rp) at the end,
 * and every batch has an index entry. */
static void torn_tail(const struct gen *g, int nbatch, int64_t rp, const char *what)
{
	char *d = mktmp(), path[PATH_MAX];
	int64_t end = (int64_t)(nbatch - 1) * 10;
	struct mq_config c;
	struct mq_log *l;
	struct scan s;

	config_small(&c, 1 << 30);
	write_log(d, &c, g, 0, nbatch, 10);
	CHECK_EQ_INT(read_rp(d), rp, "%s: recovery point", what);
	segfile(path, d, 0, "log");
	resize(path, fsize(path) - 7);
	scan_log(d, g, 0, &s);
	CHECK(s.rc == 0 && s.records == end && s.bad == 0, "%s: a reader sees the whole batches, no error", what);
	ONCE(verify(d, 0, NULL) > 0, "%s: verify reports the torn batch", what);
	open_log(&l, d, &c, 0);
	CHECK_EQ_INT(append_n(l, g, end, 1, 10), end, "%s: a new writer cuts it and appends at %lld", what,
		     (long long)end);
	mq_log_close(l);
	scan_log(d, g, 0, &s);
	CHECK(s.rc == 0 && s.records == end + 10 && s.bad == 0, "%s: all records dense", what);
	CHECK_EQ_INT(verify(d, 0, NULL), 0, "%s: verify is clean afterwards", what);
	rmtmp(d);
}

static void test_corrupt_tail(void)
{
	char *d = mktmp(), p[PATH_MAX], q[PATH_MAX], path[PATH_MAX];
	static int64_t pos[64], last[64];
	struct mq_config c;
	struct mq_verify_result res;
	struct mq_log *l;
	struct scan s;
	int64_t size;

	config_small(&c, 1 << 30);
	mq_pathf(p, sizeof p, "%s/p", d);
	mq_pathf(q, sizeof q, "%s/q", d);
	write_log(p, &c, &plain, 0, 20, 5);
	segfile(path, p, 0, "log");
	size = fsize(path);
	log_batches(path, pos, last, 64);
	flip(path, pos[19] + 70);
	sh("cp -R %s %s", p, q);

	scan_log(p, &plain, 0, &s);
	CHECK(s.rc == -1 && mq_errclass() == MQ_ECORRUPT && s.records == 95,
	      "flipped byte: a reader returns 95 records, then -1 with MQ_ECORRUPT");
	CHECK(strstr(mq_errmsg(), path) && strstr(mq_errmsg(), "byte"), "the message names the file and the byte");
	ONCE(verify(p, 0, NULL) > 0, "verify reports the CRC mismatch");
	ONCE(verify(p, 1, &res) > 0 && res.truncated_bytes == size - pos[19], "verify --repair truncates there");
	ONCE(fsize(path) == pos[19] && verify(p, 0, NULL) == 0, "the log ends before the bad batch, verify is clean");
	scan_log(p, &plain, 0, &s);
	CHECK(s.rc == 0 && s.records == 95, "a reader reads 95 records and stops cleanly");

	open_log(&l, q, &c, 0);
	CHECK_EQ_INT(append_n(l, &plain, 95, 1, 5), 95, "writer recovery cuts the bad batch too");
	mq_log_close(l);
	scan_log(q, &plain, 0, &s);
	CHECK(s.rc == 0 && s.records == 100 && s.bad == 0, "a reader sees 100 dense records");
	CHECK_EQ_INT(verify(q, 0, NULL), 0, "verify is clean afterwards");
	rmtmp(d);
}

/* ---- 6. the recovery point ------------------------------------------- */

static void test_recovery_point(void)
{
	char *d = mktmp(), p[PATH_MAX], q[PATH_MAX], path[PATH_MAX];
	struct gen g = plain;
	struct mq_config c;
	struct mq_segment *segs;
	struct mq_log *l;
	struct scan s;
	size_t n;

	g.pad = 1000;
	config_small(&c, 1 << 30);
	mq_pathf(p, sizeof p, "%s/p", d);
	mq_pathf(q, sizeof q, "%s/q", d);
	write_log(p, &c, &g, 0, 150, 10);
	CHECK_EQ_INT(read_rp(p), 1500, "after 1.5 MB, close checkpoints the recovery point at the end");
	segfile(path, p, 0, "log");
	flip(path, 70);            /* in the first batch, far below the point */
	sh("cp -R %s %s", p, q);
	open_log(&l, p, &c, 0);
	CHECK_EQ_INT(append_n(l, &g, 1500, 1, 10), 1500, "a writer trusts what lies before the recovery point");
	mq_log_close(l);
	scan_log(p, &g, 20, &s);
	CHECK(s.rc == 0 && s.records == 1490 && s.bad == 0, "the records after the damaged batch are all there");
	ONCE(verify(p, 0, NULL) > 0, "verify finds the corruption below the recovery point");
	mq_pathf(path, sizeof path, "%s/recovery-point.checkpoint", q);
	unlink(path);
	open_log(&l, q, &c, 0);
	CHECK_EQ_INT(append_n(l, &g, 0, 1, 10), -1,
		     "without the point, a writer checks everything and refuses damage with data after it");
	CHECK(mq_errclass() == MQ_ECORRUPT && strstr(mq_errmsg(), "verify --repair"),
	      "the refusal is corrupt data, pointing at verify --repair");
	mq_log_close(l);
	ONCE(verify(q, 1, NULL) > 0, "verify --repair cuts at the damage");
	open_log(&l, q, &c, 0);
	CHECK_EQ_INT(append_n(l, &g, 0, 1, 10), 0, "then a writer appends at offset 0");
	mq_log_close(l);
	rmtmp(d);

	d = mktmp();
	config_small(&c, 64 << 10);
	write_log(d, &c, &g, 0, 150, 10);
	mq_segments_list(d, &segs, &n);
	CHECK(read_rp(d) == segs[n - 1].base, "with rolls, the recovery point is the active segment's base");
	segfile(path, d, segs[0].base, "log");
	flip(path, 70);
	open_log(&l, d, &c, 0);
	CHECK_EQ_INT(append_n(l, &g, 1500, 1, 10), 1500, "a writer appends past a corrupt closed segment");
	mq_log_close(l);
	ONCE(verify(d, 0, NULL) > 0, "verify finds the corruption in the closed segment");
	free(segs);
	rmtmp(d);
}

/* ---- 7. several writers at once -------------------------------------- */

static void child(const char *dir, const struct mq_config *c, int id)
{
	struct mq_batch_builder bb;
	struct mq_log *l;
	char v[32];
	int64_t first;
	int rc = 0;

	if (open_log(&l, dir, c, 0) < 0)
		_exit(1);
	mq_batch_builder_init(&bb, MQ_CODEC_NONE);
	for (int b = 0; b < 200 && rc == 0; b++) {
		mq_batch_builder_reset(&bb);
		for (int i = 0; i < 10; i++)
			mq_batch_builder_add(&bb, TS0, NULL, -1, v, sprintf(v, "child-%d-%d", id, b * 10 + i), NULL, 0);
		mq_batch_builder_finish(&bb, 0);
		rc = mq_log_append(l, bb.out.p, bb.out.len, &first);
	}
	mq_batch_builder_free(&bb);
	_exit(rc < 0 || mq_log_close(l) < 0);
}

static void test_concurrent(int64_t segment_bytes)
{
	static char seen[4][2000];
	char *d = mktmp();
	struct mq_config c;
	struct mq_reader *r;
	struct mq_batch b;
	int last[4] = { -1, -1, -1, -1 }, status, ok = 1, bad = 0;
	int64_t next = 0;

	config_small(&c, segment_bytes);
	memset(seen, 0, sizeof seen);
	fflush(stdout);
	for (int i = 0; i < 4; i++)
		if (fork() == 0)
			child(d, &c, i);
	for (int i = 0; i < 4; i++)
		ok &= wait(&status) > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	CHECK(ok, "%lld-byte segments: 4 processes append 200 batches each", (long long)segment_bytes);
	mq_reader_open(&r, d);
	while (mq_reader_next(r, &b) == 1) {
		struct mq_record_iter it = { 0 };
		struct mq_record rec;
		mq_record_iter_init(&it, &b, 1 << 20);
		while (mq_record_next(&it, &rec) == 1) {
			char v[32];
			int id, k;
			snprintf(v, sizeof v, "%.*s", rec.value_len, (const char *)rec.value);
			if (rec.offset != next++ || sscanf(v, "child-%d-%d", &id, &k) != 2 || id < 0 || id > 3 ||
			    k < 0 || k >= 2000 || seen[id][k]++ || k != last[id] + 1)
				bad++;
			else
				last[id] = k;
		}
		mq_record_iter_free(&it);
	}
	mq_reader_close(r);
	CHECK(next == 8000 && bad == 0, "8000 records at offsets 0..7999, each once, each child's in order "
	      "(%lld read, %d wrong)", (long long)next, bad);
	CHECK_EQ_INT(verify(d, 0, NULL), 0, "verify is clean");
	rmtmp(d);
}

/* A writer whose last append was several rolls ago must append at the
 * log end, in the newest segment. */
static void test_stale_writer(void)
{
	char *d = mktmp();
	struct mq_config c;
	struct mq_log *a, *b;
	struct scan s;
	int64_t next = 5;

	config_small(&c, 4096);
	open_log(&a, d, &c, 0);
	open_log(&b, d, &c, 0);
	CHECK_EQ_INT(append_n(b, &plain, 0, 1, 5), 0, "writer B appends first");
	for (int i = 0; i < 60; i++, next += 5)
		append_n(a, &plain, next, 1, 5);
	CHECK_EQ_INT(append_n(b, &plain, next, 1, 5), next, "after A rolled several times, B appends at the log end");
	mq_log_close(a);
	mq_log_close(b);
	scan_log(d, &plain, 0, &s);
	CHECK(s.rc == 0 && s.records == next + 5 && s.bad == 0, "a reader sees dense offsets 0..%lld",
	      (long long)next + 4);
	CHECK_EQ_INT(verify(d, 0, NULL), 0, "verify is clean");
	rmtmp(d);
}

/* ---- 8. time lookups -------------------------------------------------- */

static void test_seek_time(void)
{
	static const int64_t at[] = { 0, 1, 4, 5, 17, 333, 334, 500, 998, 999 };
	char *d = mktmp();
	struct gen g = plain;
	struct mq_config c;
	struct mq_reader *r;
	struct mq_batch b;
	int64_t off;
	int ok = 1;

	g.tstep = 10;
	config_small(&c, 4096);
	write_log(d, &c, &g, 0, 200, 5);
	mq_reader_open(&r, d);
	for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
		int64_t t = TS0 + at[i] * 10;
		ok &= mq_reader_seek_time(r, t, &off) == 0 && off == at[i];
		ok &= mq_reader_seek_time(r, t - 3, &off) == 0 && off == at[i];
		ok &= mq_reader_next(r, &b) == 1 && b.base_offset <= at[i] && mq_batch_last_offset(&b) >= at[i];
	}
	CHECK(ok, "seek_time finds the first record with timestamp >= T, in every segment");
	ONCE(mq_reader_seek_time(r, TS0 - 100000, &off) == 0 && off == 0, "T before everything: offset 0");
	ONCE(mq_reader_seek_time(r, TS0 + 10000, &off) == 0 && off == 1000 && mq_reader_next(r, &b) == 0,
	     "T after everything: the log end");
	mq_reader_close(r);
	rmtmp(d);
}

/* ---- 9. retention ------------------------------------------------------ */

static void test_retention(void)
{
	char *d = mktmp(), path[PATH_MAX];
	struct gen g = plain;
	struct mq_config c, rc;
	struct mq_segment *segs;
	struct mq_partition_info pi;
	struct mq_reader *r;
	struct scan s;
	size_t n, removed = 0, del = 0;
	int64_t total = 0, ls = -1, now;

	config_small(&c, 4096);
	write_log(d, &c, &plain, 0, 200, 5);
	mq_segments_list(d, &segs, &n);
	for (size_t i = 0; i < n; i++)
		total += segs[i].size;
	rc = c;
	rc.retention_bytes = 5 * 4096;
	while (del + 1 < n && total - segs[del].size >= rc.retention_bytes)
		total -= segs[del++].size;
	ONCE(mq_partition_retention(d, &rc, mq_now_ms(), &removed) == 0 && removed == del && del > 0,
	     "retention.bytes removes the %zu oldest segments", del);
	mq_pathf(path, sizeof path, "%s/log-start-offset.checkpoint", d);
	CHECK(mq_checkpoint_read(path, &ls) == 0 && ls == segs[del].base, "log-start-offset.checkpoint says %lld",
	      (long long)segs[del].base);
	CHECK(mq_partition_info(d, &pi) == 0 && pi.log_start == ls && pi.log_end == 1000 && pi.nsegments == n - del,
	      "partition info: the new log start, the same end");
	mq_reader_open(&r, d);
	ONCE(mq_reader_seek(r, ls - 1) == -1 && mq_errclass() == MQ_ENOTFOUND, "seek below the start: not found");
	mq_reader_close(r);
	scan_log(d, &plain, ls, &s);
	CHECK(s.rc == 0 && s.next == 1000 && s.bad == 0, "the rest reads from the new start");
	rc.retention_bytes = 0;
	ONCE(mq_partition_retention(d, &rc, mq_now_ms(), &removed) == 0 && mq_partition_info(d, &pi) == 0 &&
	     pi.nsegments == 1 && pi.log_start == segs[n - 1].base, "retention.bytes=0 keeps the active segment");
	free(segs);
	rmtmp(d);

	d = mktmp();
	g.ts0 = 1000000000000LL;  /* 2001 */
	g.tstep = 1000;
	write_log(d, &c, &g, 0, 200, 5);
	mq_segments_list(d, &segs, &n);
	rc = c;
	rc.retention_ms = 3600 * 1000;
	now = g.ts0 + (segs[3].base - 1) * 1000 + rc.retention_ms + 1;   /* segs[2]'s newest + 1h + 1ms */
	ONCE(mq_partition_retention(d, &rc, now, &removed) == 0 && removed == 3,
	     "retention.ms removes the 3 segments whose newest record is too old (%zu)", removed);
	CHECK(mq_partition_info(d, &pi) == 0 && pi.log_start == segs[3].base, "the log start moves to %lld",
	      (long long)segs[3].base);
	ONCE(mq_partition_retention(d, &rc, now + 1000000000, &removed) == 0 && mq_partition_info(d, &pi) == 0 &&
	     pi.nsegments == 1, "when everything expired, the active segment stays");
	free(segs);
	rmtmp(d);

	d = mktmp();
	c.retention_bytes = 3 * 4096;
	write_log(d, &c, &plain, 0, 200, 5);
	CHECK(mq_partition_info(d, &pi) == 0 && pi.nsegments <= 5 && pi.log_start > 0 && pi.log_end == 1000,
	      "a writer applies retention.bytes when it rolls (%zu segments left)", pi.nsegments);
	scan_log(d, &plain, pi.log_start, &s);
	CHECK(s.rc == 0 && s.next == 1000 && s.bad == 0, "what is left reads back");
	rmtmp(d);
}

/* ---- 10. partition state ------------------------------------------------ */

static void check_info(const char *dir, size_t nseg, int64_t bytes, const char *what)
{
	struct mq_partition_info pi;

	CHECK(mq_partition_info(dir, &pi) == 0 && pi.log_start == 0 && pi.log_end == 1000 &&
	      pi.high_watermark == 1000 && pi.bytes == bytes && pi.nsegments == nseg &&
	      pi.first_timestamp == TS0 && pi.last_timestamp == TS0 + 999,
	      "%s: start 0, end 1000, %lld bytes, %zu segments, first and last timestamp", what,
	      (long long)bytes, nseg);
}

static void test_info(void)
{
	char *d = mktmp(), p[PATH_MAX], q[PATH_MAX];
	struct mq_config c;
	struct mq_segment *segs;
	struct mq_partition_info pi;
	struct scan s;
	size_t n;
	int64_t bytes = 0;

	mq_pathf(p, sizeof p, "%s/p", d);
	mq_pathf(q, sizeof q, "%s/q", d);
	mq_mkdir_p(p, 0777);
	CHECK(mq_partition_info(p, &pi) == 0 && pi.log_start == 0 && pi.log_end == 0 && pi.nsegments == 0 &&
	      pi.bytes == 0 && pi.first_timestamp == -1, "an empty partition");
	config_small(&c, 8192);
	write_log(p, &c, &plain, 0, 100, 10);
	mq_segments_list(p, &segs, &n);
	for (size_t i = 0; i < n; i++)
		bytes += segs[i].size;
	free(segs);
	check_info(p, n, bytes, "written partition");
	sh("mkdir %s && cp %s/*.log %s", q, p, q);
	check_info(q, n, bytes, "only its .log files");
	scan_log(q, &plain, 500, &s);
	CHECK(s.rc == 0 && s.records == 500 && s.bad == 0, "only .log files: a reader reads from 500");
	CHECK_EQ_INT(verify(q, 0, NULL), 0, "only .log files: verify is clean");
	rmtmp(d);
}

/* ---- 11. the atomic small-file writer and checkpoints ----------------- */

static void test_atomic(void)
{
	static const int64_t vals[] = { 0, 42, -1, INT64_MAX, INT64_MIN };
	char *d = mktmp(), path[PATH_MAX], *s = NULL;
	DIR *dir;
	struct dirent *e;
	size_t n = 0;
	int64_t v;
	int files = 0, ok = 1;

	mq_pathf(path, sizeof path, "%s/file", d);
	ONCE(mq_write_file_atomic(path, "hello\n", 6) == 0 && mq_read_file(path, 100, &s, &n) == 0 &&
	     n == 6 && !memcmp(s, "hello\n", 6), "write_file_atomic writes the bytes");
	free(s);
	ONCE(mq_write_file_atomic(path, "bye", 3) == 0 && fsize(path) == 3, "and replaces them whole");
	mq_pathf(path, sizeof path, "%s/x.checkpoint", d);
	for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
		ok &= mq_checkpoint_write(path, vals[i], 1) == 0 && mq_checkpoint_read(path, &v) == 0 && v == vals[i];
	CHECK(ok, "checkpoints round trip 0, 42, -1, INT64_MAX, INT64_MIN");
	for (dir = opendir(d); dir && (e = readdir(dir));)
		files += e->d_name[0] != '.';
	closedir(dir);
	CHECK_EQ_INT(files, 2, "no temporary file is left behind");
	mq_pathf(path, sizeof path, "%s/missing", d);
	CHECK(mq_checkpoint_read(path, &v) == -1 && errno == ENOENT, "a missing checkpoint: ENOENT");
	mq_pathf(path, sizeof path, "%s/bad", d);
	spit(path, "12x\n", 4);
	CHECK(mq_checkpoint_read(path, &v) == -1 && errno == EINVAL, "a garbled checkpoint: EINVAL");
	rmtmp(d);
}

/* ---- 12. Kafka's preallocated, zero-padded indexes --------------------- */

static void pad_indexes(const char *dir)
{
	char path[PATH_MAX];

	segfile(path, dir, 0, "index");
	resize(path, KAFKA_INDEX_SIZE);
	segfile(path, dir, 0, "timeindex");
	resize(path, KAFKA_INDEX_SIZE / 12 * 12);
}

static void test_prealloc(void)
{
	char *d = mktmp(), path[PATH_MAX];
	struct mq_config c;
	struct mq_index a, b;
	struct scan s;
	int damaged = -1, ok = 1;
	int64_t size;

	config_small(&c, 1 << 30);
	write_log(d, &c, &plain, 0, 200, 10);
	segfile(path, d, 0, "log");
	size = fsize(path);
	mq_index_load(&a, d, 0, size, &damaged);
	pad_indexes(d);
	ONCE(mq_index_load(&b, d, 0, size, &damaged) == 0 && damaged == 0, "a zero-padded index loads undamaged");
	CHECK(a.noff > 3 && b.noff == a.noff && b.ntime == a.ntime, "with the same %zu + %zu entries", a.noff, a.ntime);
	for (int64_t o = 0; o < 2000; o += 37)
		ok &= mq_index_lookup(&a, o) == mq_index_lookup(&b, o) &&
		      mq_index_lookup_time(&a, TS0 + o) == mq_index_lookup_time(&b, TS0 + o);
	CHECK(ok, "and the same lookups");
	mq_index_free(&a);
	mq_index_free(&b);
	scan_log(d, &plain, 1234, &s);
	CHECK(s.rc == 0 && s.records == 766 && s.bad == 0, "a reader seeks through it");
	CHECK_EQ_INT(verify(d, 0, NULL), 0, "verify does not call it damaged");
	rmtmp(d);

	/* Kafka's active segment before its first index entry: all zeros */
	d = mktmp();
	write_log(d, &c, &plain, 0, 5, 10);
	segfile(path, d, 0, "log");
	size = fsize(path);
	pad_indexes(d);
	ONCE(size < 4096 && mq_index_load(&a, d, 0, size, &damaged) == 0 && damaged == 0 && a.noff == 0,
	     "an all-zero index has no entry (%zu)", a.noff);
	mq_index_free(&a);
	CHECK_EQ_INT(verify(d, 0, NULL), 0, "verify does not call an all-zero index damaged");
	scan_log(d, &plain, 0, &s);
	CHECK(s.rc == 0 && s.records == 50 && s.bad == 0, "a reader reads it all");
	rmtmp(d);
}

int main(void)
{
	struct gen big = plain;

	big.pad = 1000;           /* ~10 KB batches: each one gets an index entry */
	test_batch(MQ_CODEC_NONE);
	test_batch(MQ_CODEC_GZIP);
	test_batch(MQ_CODEC_LZ4);
	test_append_read();
	test_roll_follow();
	test_index();
	torn_tail(&plain, 20, -1, "torn tail");
	torn_tail(&big, 150, 1500, "torn tail below the recovery point");
	test_corrupt_tail();
	test_recovery_point();
	test_concurrent(1 << 30);
	test_concurrent(4096);
	test_stale_writer();
	test_seek_time();
	test_retention();
	test_info();
	test_atomic();
	test_prealloc();
	return unit_done();
}
