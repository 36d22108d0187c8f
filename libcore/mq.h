/*
 * mq.h: the one public header of libcore, the library under every mq
 * program.  Sections follow the modules (one .c file each, named after
 * the prefix): errors, CLI helpers, byte helpers, checksums and hashes,
 * codecs, record batches, indexes, partition logs, readers, topics and
 * their configuration, consumer groups.
 *
 * Conventions: functions return 0 (or a count) on success and -1 on
 * failure, after recording a message and an exit class with mq_error().
 * libcore never prints to stderr and never exits; cmd/ does both.
 */
#ifndef MQ_H
#define MQ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <signal.h>
#include <sys/types.h>

#define MQ_VERSION "0.1.0"

/* ---- errors (err.c) ------------------------------------------------ */

/* Exit classes, the same table in every man page (DESIGN.md §6). */
enum {
	MQ_OK = 0,
	MQ_ENEG = 1,      /* a negative answer */
	MQ_EUSAGE = 2,    /* usage error, invalid argument */
	MQ_ENOTFOUND = 3, /* topic, group or offset not found */
	MQ_ECORRUPT = 4,  /* corrupt data */
	MQ_EIO = 5,       /* system or I/O error */
	MQ_EREMOTE = 6,   /* remote error */
};

/* Records a message (printf format) and an exit class for the caller to
 * report; returns -1 so that "return mq_error(...)" reads naturally. */
int mq_error(int cls, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Like mq_error with MQ_EIO, appending ": strerror(errno)". */
int mq_syserr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *mq_errmsg(void);
int mq_errclass(void);

/* ---- CLI helpers (cli.c), for cmd/ only ---------------------------- */

extern const char *mq_progname;
void mq_setprogname(const char *argv0);
/* "prog: message" on stderr. */
void mq_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the message and exits with status cls. */
void mq_die(int cls, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
/* Prints the recorded libcore error and exits with its class. */
void mq_die_err(void) __attribute__((noreturn));
/* "Try 'prog --help'." and exit 2. */
void mq_usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
void mq_print_version(void);
/* After getopt reported a bad option: the hint, and exit 2. */
void mq_usage_hint(void) __attribute__((noreturn));

/* Parsers for the argument syntaxes of DESIGN.md §6.  Each returns 0, or
 * -1 with an MQ_EUSAGE error naming the text. */
int mq_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);
int mq_parse_size(const char *s, int64_t *out);     /* 64K, 16M, 1G, 512 */
int mq_parse_duration(const char *s, int64_t *ms);  /* 500ms 10s 5m 1h 2d */
/* ISO 8601 (2026-11-21T10:00:00Z, date only, with offset), epoch ms, or
 * relative to now (-15m, -2h, -7d). */
int mq_parse_time(const char *s, int64_t *ms);
/* Parses backslash escapes (\n \t \r \0 \\ \xNN) into buf; returns the
 * length or -1 (MQ_EUSAGE). */
ssize_t mq_unescape(const char *s, char *buf, size_t size);
/* Decodes the escape whose backslash *p points at (the escapes above) and
 * moves *p to its last character.  The byte, -1 for an unknown or bad
 * escape, -2 when the text ends inside it (*p unchanged on error). */
int mq_escape(const char **p);
int64_t mq_now_ms(void);
/* A clock for timeouts: monotonic, deaf to MQ_NOW_MS. */
int64_t mq_mono_ms(void);
/* ISO 8601 UTC with milliseconds ("-" for a negative time) into buf. */
char *mq_format_time(int64_t ms, char *buf, size_t n);

/* The data directory: dir if given, else $MQ_DIR, else
 * $XDG_DATA_HOME/mq, else ~/.local/share/mq.  Created when missing
 * (MQ_EIO when it cannot be).  The path returned belongs to libcore and
 * lives until the next call. */
char *mq_datadir(const char *dir);
/* For TOPIC arguments, each a name or an address ending in /NAME (all
 * the same address): rewrites args to the names and returns the data
 * directory or address, as mq_datadir; NULL with MQ_EUSAGE on a bad
 * name or addresses that disagree. */
char *mq_topic_args(const char *dir, char **args, int n);

/* ---- byte helpers (bytes.c) ----------------------------------------- */

static inline uint16_t mq_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t mq_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t mq_be64(const uint8_t *p)
{
	return (uint64_t)mq_be32(p) << 32 | mq_be32(p + 4);
}
static inline void mq_put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = (uint8_t)v; }
static inline void mq_put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24; p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void mq_put64(uint8_t *p, uint64_t v)
{
	mq_put32(p, (uint32_t)(v >> 32)); mq_put32(p + 4, (uint32_t)v);
}

/* A growable byte buffer. */
struct mq_buf {
	uint8_t *p;
	size_t len, cap;
};
int mq_buf_reserve(struct mq_buf *b, size_t extra);  /* room for extra more */
int mq_buf_append(struct mq_buf *b, const void *p, size_t n);
void mq_buf_free(struct mq_buf *b);

/* Zigzag varints as Kafka writes them (protobuf style).  The writers
 * return the bytes written (at most 5 / 10); the readers return the bytes
 * read, or 0 when the input is truncated or too long. */
size_t mq_varlong_put(uint8_t *p, int64_t v);
size_t mq_varint_get(const uint8_t *p, size_t n, int32_t *v);
size_t mq_varlong_get(const uint8_t *p, size_t n, int64_t *v);

/* Inline: they run several times for every record a producer writes. */
static inline size_t mq_varint_put(uint8_t *p, int32_t v)
{
	uint32_t z = ((uint32_t)v << 1) ^ (uint32_t)(v >> 31);
	size_t n = 0;

	while (z >= 0x80) {
		p[n++] = (uint8_t)(z | 0x80);
		z >>= 7;
	}
	p[n++] = (uint8_t)z;
	return n;
}

static inline size_t mq_varint_size(int32_t v)
{
	uint32_t z = ((uint32_t)v << 1) ^ (uint32_t)(v >> 31);
	size_t n = 1;

	while (z >= 0x80) {
		z >>= 7;
		n++;
	}
	return n;
}

/* Base64 (RFC 4648, padded).  encode writes 4*ceil(n/3) bytes, no NUL;
 * decode writes at most 3*n/4 and returns the length or -1. */
size_t mq_base64_encode(const uint8_t *in, size_t n, char *out);
ssize_t mq_base64_decode(const char *in, size_t n, uint8_t *out);

/* ---- checksums and hashes (crc32c.c, murmur2.c) ---------------------- */

/* CRC-32C (Castagnoli) of buf continuing from crc (start with 0).  Uses
 * the SSE4.2 instruction when the CPU has it, a table otherwise. */
uint32_t mq_crc32c(uint32_t crc, const void *buf, size_t len);
uint32_t mq_crc32c_sw(uint32_t crc, const void *buf, size_t len);
int mq_crc32c_hw_available(void);

/* Kafka's murmur2 (seed 0x9747b28c), as Utils.murmur2 returns it. */
int32_t mq_murmur2(const void *key, size_t len);
/* The partition Kafka's default partitioner picks for a key. */
int32_t mq_partition_for_key(const void *key, size_t len, int32_t npart);

/* ---- codecs (codec.c) ------------------------------------------------- */

enum { MQ_CODEC_NONE = 0, MQ_CODEC_GZIP = 1, MQ_CODEC_SNAPPY = 2,
       MQ_CODEC_LZ4 = 3, MQ_CODEC_ZSTD = 4 };

const char *mq_codec_name(int codec);     /* "none", "gzip", ... */
int mq_codec_parse(const char *name);     /* -1 when unknown */
int mq_codec_can_write(int codec);        /* none, gzip, lz4 */
/* Appends the compressed form of in[0..len) to out.  gzip is RFC 1952
 * (level 1); lz4 is an LZ4 frame with independent 64 KiB blocks. */
int mq_compress(int codec, const uint8_t *in, size_t len, struct mq_buf *out);
/* Replaces out's contents with the decompressed form.  snappy (raw and
 * xerial framing) and zstd when built with their libraries; otherwise
 * MQ_ECORRUPT "codec 'x' not supported".  limit bounds the output size
 * (MQ_ECORRUPT when exceeded). */
int mq_decompress(int codec, const uint8_t *in, size_t len, struct mq_buf *out,
		  size_t limit);

/* ---- record batches (batch.c) ---------------------------------------- */

#define MQ_BATCH_HEADER 61        /* bytes before the records */
#define MQ_MAX_RECORDS (256 << 20) /* most a batch may decompress to */
#define MQ_BATCH_OVERHEAD 12      /* baseOffset + batchLength */
#define MQ_ATTR_CODEC 0x07
#define MQ_ATTR_LOGAPPEND_TIME 0x08
#define MQ_ATTR_TRANSACTIONAL 0x10
#define MQ_ATTR_CONTROL 0x20

/* The header of one RecordBatch v2, decoded.  data points at the batch's
 * first byte; size is 12 + length. */
struct mq_batch {
	int64_t base_offset;
	int32_t length;
	int32_t leader_epoch;
	int8_t magic;
	uint32_t crc;
	int16_t attributes;
	int32_t last_offset_delta;
	int64_t base_timestamp;
	int64_t max_timestamp;
	int64_t producer_id;
	int16_t producer_epoch;
	int32_t base_sequence;
	int32_t count;
	const uint8_t *data;
	size_t size;
};

static inline int64_t mq_batch_last_offset(const struct mq_batch *b)
{
	return b->base_offset + b->last_offset_delta;
}

/* Result of mq_batch_parse. */
enum { MQ_BATCH_OK = 1, MQ_BATCH_SHORT = 0, MQ_BATCH_BAD = -1 };

/* Decodes the header of the batch at p (avail bytes available).
 * MQ_BATCH_SHORT: fewer than 12 + length bytes are there (a batch still
 * being written, or a torn tail).  MQ_BATCH_BAD: the header cannot be a
 * batch (bad length or magic); why is in mq_errmsg().  The CRC is not
 * checked here. */
int mq_batch_parse(const uint8_t *p, size_t avail, struct mq_batch *b);
/* 1 when the stored CRC matches the batch's bytes. */
int mq_batch_crc_ok(const struct mq_batch *b);
/* Sets baseOffset and partitionLeaderEpoch of an encoded batch in place
 * (both lie outside the CRC). */
void mq_batch_set_offset(uint8_t *batch, int64_t base_offset, int32_t epoch);

/* A record as decoded.  Lengths of -1 mean null.  Pointers are into the
 * batch or the iterator's buffer and live until the next call. */
struct mq_record {
	int64_t offset;
	int64_t timestamp;
	const uint8_t *key;
	int32_t key_len;
	const uint8_t *value;
	int32_t value_len;
	int32_t header_count;
	const uint8_t *headers;   /* the encoded headers */
	size_t headers_len;
};

struct mq_header {
	const uint8_t *key;
	int32_t key_len;
	const uint8_t *value;
	int32_t value_len;
};

/* Walks the records of one batch, decompressing when needed. */
struct mq_record_iter {
	struct mq_batch batch;
	const uint8_t *p, *end;
	int32_t left;
	struct mq_buf buf;         /* decompressed records */
};
/* Prepares iteration over b; decompresses.  -1 on a codec error. */
int mq_record_iter_init(struct mq_record_iter *it, const struct mq_batch *b,
			size_t limit);
/* 1 with *r filled, 0 at the end, -1 when a record is malformed. */
int mq_record_next(struct mq_record_iter *it, struct mq_record *r);
void mq_record_iter_free(struct mq_record_iter *it);
/* Walks encoded headers: *pos starts at 0; 1 with *h filled, 0 at end,
 * -1 malformed. */
int mq_header_next(const struct mq_record *r, size_t *pos, struct mq_header *h);

/* Builds one batch.  Records are added with their timestamps; finish
 * compresses and writes the header with base offset 0 (the log assigns
 * the real one at append). */
struct mq_batch_builder {
	int codec;
	int32_t count;
	int64_t base_timestamp, max_timestamp;
	int64_t producer_id;
	int16_t producer_epoch;
	int32_t base_sequence;
	struct mq_buf recs;        /* uncompressed records */
	struct mq_buf out;         /* the finished batch */
};
void mq_batch_builder_init(struct mq_batch_builder *bb, int codec);
/* Adds a record; key_len/value_len -1 for null.  headers may be NULL. */
int mq_batch_builder_add(struct mq_batch_builder *bb, int64_t timestamp,
			 const void *key, int32_t key_len,
			 const void *value, int32_t value_len,
			 const struct mq_header *headers, int32_t nheaders);
/* Encoded size so far (uncompressed, with header): for batch limits. */
size_t mq_batch_builder_size(const struct mq_batch_builder *bb);
/* Completes the batch in bb->out (bb->out.p, bb->out.len).  When
 * compression would make it larger than max (0: no limit), the batch is
 * written uncompressed instead. */
int mq_batch_builder_finish(struct mq_batch_builder *bb, size_t max);
/* Empties the builder for the next batch, keeping its memory. */
void mq_batch_builder_reset(struct mq_batch_builder *bb);
void mq_batch_builder_free(struct mq_batch_builder *bb);

/* ---- files (fsio.c) ---------------------------------------------------- */

/* write() until done, surviving EINTR and short writes. */
int mq_write_all(int fd, const void *p, size_t n);
/* Copies from -> to until the end of input, with splice(2) where the
 * descriptors allow it (pipes, sockets): 0, or -1 on error. */
int mq_relay(int from, int to);
/* pwrite() until done, surviving EINTR and short writes. */
int mq_pwrite_all(int fd, const void *p, size_t n, off_t off);
/* pread() until n bytes or EOF; returns bytes read or -1. */
ssize_t mq_pread_full(int fd, void *p, size_t n, off_t off);
/* The crash-safe small-file writer (DESIGN.md §4): temp file with
 * O_EXCL, write, fsync, rename over path, fsync the directory. */
int mq_write_file_atomic(const char *path, const void *p, size_t n);
/* Reads a whole small file into a malloc'd, NUL-terminated buffer.  -1
 * with errno: ENOENT for a missing file, EFBIG when it is over max. */
int mq_read_file(const char *path, size_t max, char **out, size_t *len);
int mq_fsync_dir(const char *dir);
/* snprintf for paths: -1 (MQ_EUSAGE "path too long") on truncation. */
int mq_pathf(char *buf, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int mq_mkdir_p(const char *path, mode_t mode);
int mq_rm_rf(const char *path);
/* The same without the fsyncs: the old contents or the new after a crash
 * of the process, for hints that may be lost with power (a recovery
 * point not backed by synced data). */
int mq_write_file_replace(const char *path, const void *p, size_t n);
/* Checkpoint files: one decimal int64 and a newline; sync as above. */
int mq_checkpoint_read(const char *path, int64_t *v);   /* -1/ENOENT */
int mq_checkpoint_write(const char *path, int64_t v, int sync);

/* ---- topic configuration (conf.c) ------------------------------------ */

struct mq_config {
	int32_t partitions;
	int64_t retention_ms;       /* -1: forever */
	int64_t retention_bytes;    /* -1: unlimited */
	int64_t segment_bytes;
	int64_t segment_ms;
	int compression;            /* MQ_CODEC_*, or -1 for "producer" */
	int32_t max_message_bytes;
	int compact;                /* cleanup.policy: 0 delete, 1 compact */
	int32_t min_insync_replicas;
	int64_t index_interval_bytes;
	int64_t replica_lag_max_ms; /* out of the in-sync set past this */
};

/* Kafka's defaults (min.insync.replicas counts followers: 0). */
void mq_config_default(struct mq_config *c);
/* Sets one key from text, validating both (MQ_EUSAGE naming the key). */
int mq_config_set(struct mq_config *c, const char *key, const char *value);
/* Parses "key=value" lines (# comments); file names the source in
 * messages. */
int mq_config_parse(struct mq_config *c, const char *text, const char *file);
/* Formats every key as "key=value\n" lines into buf (malloc'd). */
char *mq_config_format(const struct mq_config *c);
/* Value of one key as text into buf; -1 when the key is unknown. */
int mq_config_get(const struct mq_config *c, const char *key, char *buf, size_t n);
extern const char *const mq_config_keys[];

/* ---- topics (topic.c) ------------------------------------------------- */

/* 1–249 characters of [A-Za-z0-9._-], not "." or "..".  0 or -1 with
 * MQ_EUSAGE saying why. */
int mq_topic_name_check(const char *name);

struct mq_remote;
struct mq_partition_info;
struct mq_topic {
	char *name;
	char *dir;                  /* DATADIR/topics/NAME, or the address */
	struct mq_config conf;
	struct mq_remote *remote;   /* on an mq-serve (remote.c), or NULL */
};
/* Creates a topic from conf (defaults from DATADIR/defaults.conf when
 * conf is NULL).  Atomic: the topic appears whole or not at all; when it
 * exists already, -1 with errno EEXIST and MQ_ENEG. */
int mq_topic_create(const char *datadir, const char *name,
		    const struct mq_config *conf);
/* The data directory's defaults for new topics. */
int mq_topic_defaults(const char *datadir, struct mq_config *c);
/* Opens an existing topic (MQ_ENOTFOUND when missing). */
int mq_topic_open(const char *datadir, const char *name, struct mq_topic *t);
void mq_topic_close(struct mq_topic *t);
/* Sorted names of all topics (malloc'd array of malloc'd strings). */
int mq_topic_list(const char *datadir, char ***names, size_t *n);
void mq_strv_free(char **v, size_t n);
/* Rewrites topic.conf with conf after validating the change (partitions
 * only grow; new partition directories are created first). */
int mq_topic_alter(struct mq_topic *t, const struct mq_config *conf);
int mq_topic_delete(const char *datadir, const char *name);
/* Path of partition p's directory into buf. */
void mq_topic_partition_dir(const struct mq_topic *t, int32_t p, char *buf, size_t n);
/* A partition's state, locally or from the server. */
int mq_topic_partition_info(const struct mq_topic *t, int32_t p, struct mq_partition_info *pi);

/* ---- indexes (index.c) ------------------------------------------------ */

/* Kafka's .index (relative offset i32, position i32) and .timeindex
 * (timestamp i64, relative offset i32) files.  Loaded whole: they are
 * small (one entry per 4 KiB of log).  Zero padding written by Kafka
 * ends the entries. */
struct mq_offset_entry { int64_t offset; int64_t pos; };
struct mq_time_entry { int64_t timestamp; int64_t offset; };

struct mq_index {
	int64_t base;
	struct mq_offset_entry *off;
	size_t noff, capoff;
	struct mq_time_entry *time;
	size_t ntime, captime;
};
/* Loads both index files of the segment with base offset base in dir;
 * missing files load as empty.  Entries that are not increasing, or lie
 * past log_size, end the list (*damaged set to 1 when that drops any). */
int mq_index_load(struct mq_index *ix, const char *dir, int64_t base,
		  int64_t log_size, int *damaged);
void mq_index_free(struct mq_index *ix);
/* Position of the last indexed batch at or before offset (0 if none). */
int64_t mq_index_lookup(const struct mq_index *ix, int64_t offset);
/* Offset of the last time entry with timestamp <= ts (base if none). */
int64_t mq_index_lookup_time(const struct mq_index *ix, int64_t ts);

/* ---- partition logs (log.c) -------------------------------------------- */

/* A partition opened for appending.  See log.c for the locking and
 * recovery protocol. */
struct mq_log;

enum { MQ_LOG_FSYNC = 1, MQ_LOG_FOLLOWER = 2 /* rolls only when told */ };

/* Opens partition directory dir for appending (creates it if missing).
 * The first append recovers the tail under the partition lock. */
int mq_log_open(struct mq_log **lp, const char *dir, const struct mq_config *conf,
		int flags);
/* Appends buf, which holds n complete encoded batches, in one write under
 * the partition lock.  Assigns offsets (patching each batch), maintains
 * the indexes, rolls segments, applies retention on roll.  With
 * MQ_LOG_FSYNC, returns after fdatasync.  *first gets the first offset
 * assigned.  A failed fsync is reported (MQ_EIO) and the log handle is
 * unusable afterwards. */
int mq_log_append(struct mq_log *l, uint8_t *buf, size_t len, int64_t *first);
/* Same, but batches keep their offsets (replication): the first must
 * start at the log end offset.  MQ_ECORRUPT otherwise. */
int mq_log_append_raw(struct mq_log *l, const uint8_t *buf, size_t len);
/* Starts a new segment at base, which must be the log end (a follower
 * mirroring its leader's segments); nothing when the active segment
 * already starts there. */
int mq_log_roll_at(struct mq_log *l, int64_t base);
/* Log end offset as of the last append (or recovery). */
int64_t mq_log_end_offset(struct mq_log *l);
/* Writes the recovery point and releases everything. */
int mq_log_close(struct mq_log *l);

/* ---- partition state without a writer (partition.c) ------------------- */

struct mq_segment {
	int64_t base;
	int64_t size;             /* bytes of .log */
};
/* Sorted segments of a partition directory. */
int mq_segments_list(const char *dir, struct mq_segment **segs, size_t *n);
void mq_segment_path(char *buf, size_t n, const char *dir, int64_t base,
		     const char *ext);

struct mq_partition_info {
	int64_t log_start;        /* first offset still held */
	int64_t log_end;          /* next offset to be written */
	int64_t high_watermark;   /* == log_end until replication */
	int64_t bytes;
	int64_t first_timestamp;  /* -1 when empty */
	int64_t last_timestamp;   /* max timestamp of the last batch */
	size_t nsegments;
};
/* Reads a partition's state from checkpoints, index tails and batch
 * headers (never whole segments). */
int mq_partition_info(const char *dir, struct mq_partition_info *pi);
/* Applies retention to a partition: deletes closed segments past
 * retention.ms or retention.bytes, checkpoints the new log start
 * offset.  Takes the partition lock.  *removed gets segments deleted. */
int mq_partition_retention(const char *dir, const struct mq_config *conf,
			   int64_t now_ms, size_t *removed);

/* What answers a fetch (fetch.c): whole batches of one segment from the
 * one holding offset, at most max_bytes unless the first is larger.
 * fd is -1 when there is nothing at offset yet (else the caller closes
 * it); MQ_ENOTFOUND when offset lies outside the log. */
struct mq_fetch {
	int fd;
	int64_t pos, len;
	int64_t seg_base;         /* segment the bytes are from (else the newest), -1 */
	struct mq_partition_info pi;
};
/* limit >= 0: only batches wholly below it (the high watermark). */
int mq_fetch_range(const char *dir, int64_t offset, int64_t max_bytes, int64_t limit,
		   struct mq_fetch *f);

/* ---- verification (verify.c) ------------------------------------------- */

struct mq_verify_problem {
	char file[4096];
	int64_t pos;              /* byte position in file */
	char what[256];
};
struct mq_verify_result {
	int64_t batches, records, bytes;
	size_t nproblems;
	int64_t truncated_bytes;  /* removed by repair */
	int64_t removed_batches;
};
/* Checks every batch of a partition (CRC, offsets dense and increasing,
 * length) and its indexes.  report is called for each problem.  With
 * repair, takes the partition lock, truncates the log at the first bad
 * batch (later segments too) and rebuilds the indexes. */
int mq_verify_partition(const char *dir, int repair,
			void (*report)(const struct mq_verify_problem *, void *),
			void *arg, struct mq_verify_result *res);

/* ---- readers (reader.c) -------------------------------------------------- */

/* A lock-free reader of one partition: sees only complete batches,
 * follows segment rolls, survives retention. */
struct mq_reader;

int mq_reader_open(struct mq_reader **rp, const char *dir);
/* A reader of partition part of a topic on an mq-serve (t->remote). */
int mq_reader_open_remote(struct mq_reader **rp, const struct mq_topic *t, int32_t part);
/* The partition's log end offset (remote: as the last fetch reported). */
int64_t mq_reader_log_end(struct mq_reader *r);
void mq_reader_close(struct mq_reader *r);
/* Positions the reader at offset (the batch holding it).  MQ_ENOTFOUND
 * when offset is below the log start or past the end. */
int mq_reader_seek(struct mq_reader *r, int64_t offset);
/* Positions at the first record with timestamp >= ts (the log end when
 * none), through the time index; *offset gets that offset. */
int mq_reader_seek_time(struct mq_reader *r, int64_t ts, int64_t *offset);
/* Next complete batch at or after the position: 1 with *b filled (valid
 * until the next call), 0 when nothing more is there yet, -1 on corrupt
 * data (MQ_ECORRUPT, message names file and position) or I/O error.
 * Batches are CRC-checked when check_crc was set. */
int mq_reader_next(struct mq_reader *r, struct mq_batch *b);
void mq_reader_set_crc_check(struct mq_reader *r, int on);
/* After a corrupt batch: skip to the next segment (for --skip-corrupt). */
int mq_reader_skip_corrupt(struct mq_reader *r);
/* Offset the reader will return next. */
int64_t mq_reader_position(const struct mq_reader *r);
/* File and position of the batch last returned (for messages, --raw). */
const char *mq_reader_file(const struct mq_reader *r);
/* Raw access for --raw: fd and byte range of the batch last returned. */
int mq_reader_batch_fd(const struct mq_reader *r, off_t *pos);

/* ---- producing (producer.c) --------------------------------------------- */

struct mq_producer;
struct mq_producer_opts {
	int codec;                /* MQ_CODEC_NONE, _GZIP, _LZ4 */
	int64_t batch_bytes;      /* 0: max.message.bytes */
	int64_t linger_ms;
	int fsync;                /* acknowledge after fdatasync */
	int acks_all;             /* acknowledge at the high watermark */
	int64_t acks_timeout_ms;  /* for it (0: 30 s), then MQ_EREMOTE */
	int32_t partition;        /* -1: by key, or sticky round-robin */
	/* Called for each batch once it is in the log; b->base_offset is
	 * the first offset it got.  A negative return stops the producer. */
	int (*on_ack)(void *arg, int32_t partition, const struct mq_batch *b);
	void *arg;
};
int mq_producer_open(struct mq_producer **pp, struct mq_topic *t,
		     const struct mq_producer_opts *o);
/* Adds a record to the batch of its partition (part -1: chosen as the
 * options say), flushing batches that are full.  Returns the partition,
 * or -1: MQ_ENEG when the record can never fit max.message.bytes (nothing
 * else changed), other classes for errors. */
int mq_producer_add(struct mq_producer *p, int32_t part, int64_t ts,
		    const void *key, int32_t klen, const void *value, int32_t vlen,
		    const struct mq_header *hs, int32_t nh);
/* Appends complete encoded batches to a partition as they are (offsets
 * reassigned) in one write, bypassing the batching; on_ack is called for
 * each.  part -1: round-robin.  Returns the partition or -1. */
int mq_producer_append_batches(struct mq_producer *p, int32_t part, uint8_t *buf,
			       size_t len, int64_t *first);
int mq_producer_flush(struct mq_producer *p);
/* When the oldest pending record's linger runs out (ms), or -1. */
int64_t mq_producer_deadline(const struct mq_producer *p);
/* Closes the partition logs; pending records not flushed are dropped. */
int mq_producer_close(struct mq_producer *p);

/* ---- following a file (follow.c) ----------------------------------------- */

struct mq_follow_opts {
	const char *path;
	const char *delim, *kdelim;
	size_t dlen, kdlen;       /* kdlen 0: no key delimiter */
	const char *key;          /* fixed key, or NULL */
	const struct mq_header *headers;
	int32_t nheaders;         /* at most 64 */
	int32_t partition;        /* -1: by key, else round-robin by round */
	int codec;
	int64_t batch_bytes;
	volatile sig_atomic_t *stop;
	int skip_oversize;        /* drop lines too long for a batch, else fail */
	void (*on_skip)(void *arg, int64_t pos, size_t len);
	void *arg;
};
/* Ships path's lines like tail -F until *stop, resuming where the last
 * run's durable batches ended (see follow.c).  Batches go through p's
 * mq_producer_append_batches, so p's on_ack sees them. */
int mq_follow_run(struct mq_producer *p, struct mq_topic *t, const struct mq_follow_opts *o);

/* ---- records as JSON lines (jsonrec.c) ----------------------------------- */

/* Appends bytes as a JSON value: a string when valid UTF-8, else
 * {"base64":"..."}; null when n is -1. */
int mq_json_bytes(struct mq_buf *b, const uint8_t *s, int32_t n);
/* Appends one record as a JSON line (with newline) to b. */
int mq_json_record_write(struct mq_buf *b, const char *topic, int32_t partition,
			 const struct mq_record *r);

struct mq_json_record {
	int32_t partition;        /* -1 when absent */
	int64_t timestamp;        /* -1 when absent */
	struct mq_buf key, value;
	int key_null, value_null;
	struct mq_header *headers;
	int32_t nheaders;
	struct mq_buf hbuf;       /* header bytes */
};
/* Parses one JSON line into r (reusable across calls; zero it first).
 * MQ_EUSAGE with the reason when the line is not a record. */
int mq_json_record_parse(const char *line, size_t len, struct mq_json_record *r);
void mq_json_record_free(struct mq_json_record *r);

/* ---- consumer groups (group.c) -------------------------------------------- */

#define MQ_GROUP_POLL_MS 250
#define MQ_GROUP_HISTORY 32

struct mq_tp {
	const char *topic;        /* owned by the caller */
	int32_t partition;
};
struct mq_commit {
	int64_t offset;           /* the next offset to consume */
	int64_t time;             /* when committed, epoch ms */
	int64_t end;              /* the log end offset then */
};
struct mq_group;

int mq_group_name_check(const char *name);
/* Joins group as a live member (see group.c for the protocol). */
int mq_group_open(struct mq_group **gp, const char *datadir, const char *group);
/* Joins group as mq_group_open does, for mq-serve, on
 * behalf of the remote member remote_id ("TIME-HOST-PID"), whose pid
 * and host its member file and partition locks name (this process's
 * when remote_id has another shape). */
int mq_group_open_member(struct mq_group **gp, const char *datadir, const char *group,
			 const char *remote_id);
/* The partitions this member competes for. */
int mq_group_subscribe(struct mq_group *g, const struct mq_tp *tps, size_t n);
/* Looks at the members (at most every MQ_GROUP_POLL_MS unless force) and
 * moves partitions: revoke is called before one is released (commit
 * there), assign after one is taken.  Returns 1 when ownership changed,
 * 0 when not, -1 on error. */
int mq_group_rebalance(struct mq_group *g, int force,
		       int (*revoke)(void *arg, const struct mq_tp *tp),
		       int (*assign)(void *arg, const struct mq_tp *tp), void *arg);
/* 1 when the next mq_group_rebalance will look (commit before it). */
int mq_group_due(const struct mq_group *g);
/* Copies up to max owned partitions into out; returns how many owned. */
size_t mq_group_owned(const struct mq_group *g, struct mq_tp *out, size_t max);
void mq_group_release(struct mq_group *g, const struct mq_tp *tp);
/* Releases everything and leaves the group. */
void mq_group_close(struct mq_group *g);

/* Committed offset of a partition: 1 with *offset set, 0 when the group
 * never committed there, -1 on error. */
int mq_group_committed(const char *datadir, const char *group, const char *topic,
		       int32_t p, int64_t *offset);
/* Commits offset (the next to consume), crash-safely, adding to the
 * history; end is the log end offset at the time, for mq-lag. */
int mq_group_commit(const char *datadir, const char *group, const char *topic,
		    int32_t p, int64_t offset, int64_t end);
struct mq_commit_req {
	const char *topic;
	int32_t partition;
	int64_t offset, end;
};
/* Several commits at once: one write per topic. */
int mq_group_commit_many(const char *datadir, const char *group,
			 const struct mq_commit_req *r, size_t n);
/* The last max commits, oldest first. */
int mq_group_history(const char *datadir, const char *group, const char *topic,
		     int32_t p, struct mq_commit *h, size_t max, size_t *n);
/* All partitions' histories of one topic, read once (for mq-lag). */
struct mq_group_offsets {
	void *priv;
	size_t n;
};
int mq_group_offsets_load(const char *datadir, const char *group, const char *topic,
			  struct mq_group_offsets *go);
/* Partition p's history (oldest first) and its length; 0 when none. */
size_t mq_group_offsets_get(const struct mq_group_offsets *go, int32_t p,
			    const struct mq_commit **h);
void mq_group_offsets_free(struct mq_group_offsets *go);
/* Topics a group has committed in or holds partitions of (sorted). */
int mq_group_topics(const char *datadir, const char *group, char ***names, size_t *n);
/* Live member IDs of a group (sorted, oldest first). */
int mq_group_members(const char *datadir, const char *group, char ***ids, size_t *n);
/* 1 and "ID pid host" in buf when a live member owns the partition. */
int mq_group_owner(const char *datadir, const char *group, const char *topic, int32_t p,
		   char *buf, size_t n);
int mq_group_list(const char *datadir, char ***names, size_t *n);

/* ---- consuming (consumer.c) ----------------------------------------------- */

enum { MQ_OFFSET_DEFAULT, MQ_OFFSET_BEGINNING, MQ_OFFSET_END, MQ_OFFSET_STORED,
       MQ_OFFSET_ABSOLUTE, MQ_OFFSET_FROM_END, MQ_OFFSET_TIME };
struct mq_offset_spec {
	int kind;
	int64_t value;            /* N, -N's N, or @TIME in ms */
};
/* beginning|end|stored|N|-N|@TIME; MQ_EUSAGE otherwise. */
int mq_offset_spec_parse(const char *s, struct mq_offset_spec *spec);

enum { MQ_RESET_ERROR, MQ_RESET_EARLIEST, MQ_RESET_LATEST };

struct mq_consumer_opts {
	const char *datadir;
	const char *const *topics;
	size_t ntopics;
	int32_t partition;        /* -1: all */
	struct mq_offset_spec start;
	const char *group;        /* NULL: no group */
	int commit;               /* commit delivered offsets (with a group) */
	int exit_at_end;          /* stop at the end as it was at start */
	int reset;                /* MQ_RESET_*: offsets out of range */
	int check_crc;
	int skip_corrupt;
	void (*on_corrupt)(void *arg, const char *msg);
	void *arg;
	volatile sig_atomic_t *stop;  /* set by a signal: waiting ends */
};
struct mq_consumer;
int mq_consumer_open(struct mq_consumer **cp, const struct mq_consumer_opts *o);
/* Next batch: 1 with *tp, *b (valid until the next call) and *first (the
 * partition's start offset: skip records below it), 0 when nothing is
 * there now, 2 when every partition reached its stop (-e), -1 on error. */
int mq_consumer_next(struct mq_consumer *c, struct mq_tp *tp, struct mq_batch *b,
		     int64_t *first);
/* Records before next were written out and flushed: commit them. */
void mq_consumer_delivered(struct mq_consumer *c, const struct mq_tp *tp, int64_t next);
/* Stops reading a partition (e.g. --until reached). */
void mq_consumer_finish(struct mq_consumer *c, const struct mq_tp *tp);
/* Commits delivered offsets (rate-limited unless force). */
int mq_consumer_commit(struct mq_consumer *c, int force);
/* Sleeps until a watched partition changes or timeout_ms passes (-1:
 * forever; in a group, at most the rebalance period). */
int mq_consumer_wait(struct mq_consumer *c, int timeout_ms);
size_t mq_consumer_partitions(const struct mq_consumer *c);
/* Commits and closes; leaves the group. */
int mq_consumer_close(struct mq_consumer *c);

/* ---- record output formats (format.c) ------------------------------------ */

struct mq_format;
/* Compiles a kcat-style format: %t topic, %p partition, %o offset, %k key,
 * %s value, %S value size, %K key size, %T timestamp (epoch ms), %D
 * timestamp as ISO 8601 UTC, %h headers as "k=v,k2=v2", %% a percent
 * sign; escapes \n \t \r \0 \\ \xNN.  Null keys and values print as
 * nothing, their sizes as -1.  MQ_EUSAGE naming the problem. */
int mq_format_compile(const char *fmt, struct mq_format **out);
void mq_format_free(struct mq_format *f);
/* Appends the record formatted to out. */
int mq_format_record(struct mq_buf *out, const struct mq_format *f, const char *topic,
		     int32_t partition, const struct mq_record *r);

/* ---- workers for --exec (worker.c) ---------------------------------------- */

struct mq_worker_opts {
	const char *cmd;          /* run with /bin/sh -c */
	int retries;
	const char *dlq;          /* dead-letter topic, or NULL */
	const char *datadir;
	int fsync;
	volatile sig_atomic_t *stop;
};
struct mq_worker;
int mq_worker_open(struct mq_worker **wp, const struct mq_worker_opts *o);
/* Runs the command for n records of one partition (see worker.c).
 * Returns 0 handled, 2 handled by the dead-letter topic, 1 failed with
 * no dead-letter topic (why says how), 3 interrupted (neither: leave them
 * uncommitted), -1 on error. */
int mq_worker_run(struct mq_worker *w, const char *topic, int32_t part,
		  const struct mq_record *recs, size_t n, char *why, size_t whylen);
void mq_worker_close(struct mq_worker *w);

/* ---- consumer lag (lag.c) --------------------------------------------------- */

/* Partition statuses, least to most severe (rules in lag.c). */
enum { MQ_LAG_OK, MQ_LAG_WARN, MQ_LAG_REWIND, MQ_LAG_STALL, MQ_LAG_STOP };
const char *mq_lag_status_name(int status);

struct mq_lag_opts {
	const char *topic;        /* only this topic, or NULL */
	int64_t window_ms;        /* commits considered for status and rate */
	int64_t allowed_lag;      /* at most this much counts as caught up */
};
struct mq_lag_row {
	char group[256], topic[256];
	int32_t partition;
	int64_t committed;        /* -1: never committed */
	int64_t start, end, lag;
	int64_t age_ms;           /* -1: unknown */
	int64_t last_commit;      /* epoch ms, -1 */
	double rate;              /* records/s over the window */
	int status;
	int members;              /* live members of the group */
	char owner[256];          /* "ID pid host" of the live owner, or "" */
};
struct mq_lag_report {
	struct mq_lag_row *rows;
	size_t n, cap;
};
/* Rows for the groups named (all when ngroups is 0); MQ_ENOTFOUND for a
 * group or topic that does not exist. */
int mq_lag_gather(const char *datadir, char *const *groups, size_t ngroups,
		  const struct mq_lag_opts *o, struct mq_lag_report *rep);
void mq_lag_report_free(struct mq_lag_report *rep);

/* ---- replication (replica.c, replicate.c) ---------------------------------- */

struct mq_replica {
	char id[104];
	int64_t position;         /* its log end, as of its last fetch */
	int64_t time;             /* of that fetch, epoch ms */
	int in_sync;              /* fetched within replica.lag.time.max.ms */
};
int mq_replica_id_check(const char *id);
/* The followers of partition p of a topic, local or remote. */
int mq_topic_replicas(const struct mq_topic *t, int32_t p, struct mq_replica **out, size_t *n);
/* The followers a partition directory knows of. */
int mq_replicas_list(const char *dir, const struct mq_config *conf, int64_t now,
		     struct mq_replica **out, size_t *n);
/* The partition's high watermark (the log end when min.insync.replicas
 * is 0). */
int mq_partition_hw(const char *dir, const struct mq_config *conf, int64_t *hw);
/* A follower fetched from position: records it, advances the high
 * watermark. */
int mq_replica_report(const char *dir, const struct mq_config *conf, const char *id,
		      int64_t position);
/* Waits until the high watermark reaches offset; MQ_EREMOTE after
 * timeout_ms, saying how many followers are in sync. */
int mq_partition_wait_hw(const char *dir, const struct mq_config *conf, int64_t offset,
			 int64_t timeout_ms);
/* Cuts a partition so that its log ends at offset (a batch boundary). */
int mq_partition_truncate(const char *dir, int64_t offset, int64_t interval);
/* Empties a partition and makes it start at offset. */
int mq_partition_reset(const char *dir, int64_t start);

struct mq_replicate_opts {
	const char *source;       /* a data directory or an address */
	const char *datadir;      /* the local one */
	char *const *topics;      /* none: all the source's */
	size_t ntopics;
	const char *id;           /* this follower's name at the leader */
	int follow;               /* keep going, long-polling */
	int truncate_diverged;
	int reset;                /* behind the leader's log start: start over */
	int fsync;
	volatile sig_atomic_t *stop;
	/* after each append: where the partition got to, and the leader's end */
	void (*progress)(void *arg, const char *topic, int32_t p, int64_t at, int64_t end);
	void (*note)(void *arg, const char *msg);   /* refetches, reconnects */
	void *arg;
};
/* Pulls the topics from the source until caught up (or *stop, when
 * following).  MQ_ECORRUPT when a log diverged, MQ_ENOTFOUND when the
 * leader's retention passed this follower, MQ_EREMOTE for the link. */
int mq_replicate_run(const struct mq_replicate_opts *o);
/* A lock on the data directory held while replicating into it: -1 with
 * MQ_ENEG when another mq-replicate holds it. */
int mq_replicate_lock(const char *datadir);

/* ---- remote data directories (remote.c, client.c) ------------------------ */

/* http://, https:// or ssh:// (DESIGN.md §5). */
int mq_remote_is(const char *s);
/* For a topic argument: 0 when it is a local name; 1 with *dir (the
 * address) and *name (its last path element) malloc'd when remote. */
int mq_address_split(const char *arg, char **dir, char **name);
/* Bearer token from the first word of a file (else MQ_TOKEN, MQ_TOKEN_FILE). */
int mq_remote_token_file(const char *path);

struct mq_response {
	long status;
	struct mq_buf body;
	int64_t log_start, log_end, high_watermark;  /* X-Mq-* headers, -1 absent */
	int64_t seg_base;
};
enum { MQ_REQ_IDEMPOTENT = 1 };
/* The connection for an address, made on first use and kept. */
int mq_remote_get(const char *addr, struct mq_remote **rp);
void mq_remote_free(struct mq_remote *r);
void mq_remote_close_all(void);
/* Requests in flight end (MQ_EREMOTE) when *stop becomes nonzero. */
void mq_remote_set_stop(volatile sig_atomic_t *stop);
/* HTTP status of the last answer, 0 when none came. */
long mq_remote_last_status(void);
const char *mq_remote_addr(const struct mq_remote *r);
/* One HTTP request (path from "/v1"); 0 whatever the status, -1 with
 * MQ_EREMOTE when no answer came.  Idempotent ones are retried. */
int mq_remote_request(struct mq_remote *r, const char *method, const char *path,
		      const char *ctype, const void *body, size_t len, int flags,
		      long timeout_ms, struct mq_response *resp);
/* Turns an unsuccessful answer into the error it reports; returns -1. */
int mq_remote_fail(struct mq_remote *r, const char *method, const char *path,
		   const struct mq_response *resp);
void mq_response_free(struct mq_response *resp);
int mq_url_escape(struct mq_buf *b, const char *s);

/* The API's requests (client.c), twins of the local functions. */
int mq_client_topic_open(const char *addr, const char *name, struct mq_topic *t);
int mq_client_topic_list(const char *addr, char ***names, size_t *n);
int mq_client_topic_create(const char *addr, const char *name, const struct mq_config *conf);
int mq_client_topic_alter(struct mq_topic *t, const struct mq_config *conf);
int mq_client_topic_delete(const char *addr, const char *name);
int mq_client_partition_info(const struct mq_topic *t, int32_t p, struct mq_partition_info *pi);
int mq_client_offset_for_time(const struct mq_topic *t, int32_t p, int64_t ts, int64_t *off);
int mq_client_replicas(const struct mq_topic *t, int32_t p, struct mq_replica **out, size_t *n);
enum { MQ_PRODUCE_FSYNC = 1, MQ_PRODUCE_ACKS_ALL = 2 };
/* Appends encoded batches to partition p; *first the offset of the first. */
int mq_client_produce(const struct mq_topic *t, int32_t p, const uint8_t *buf, size_t len,
		      int flags, int64_t timeout_ms, int64_t *first);
/* Whole batches from the one holding offset, waiting up to wait_ms when
 * there are none yet; replica names a follower (mq-replicate), whose log
 * ends at position (-1: at offset; a follower fetching ahead is behind). */
int mq_client_fetch(const struct mq_topic *t, int32_t p, int64_t offset, int64_t max_bytes,
		    int64_t wait_ms, const char *replica, int64_t position, struct mq_response *resp);
/* Returns when one of the partitions has data at its offset, or after wait_ms. */
int mq_client_wait(struct mq_remote *r, const struct mq_tp *tps, const int64_t *offsets, size_t n,
		   int64_t wait_ms, const char *replica);
int mq_client_group_committed(const char *addr, const char *group, const char *topic, int32_t p,
			      int64_t *offset);
int mq_client_group_commit_many(const char *addr, const char *group,
				const struct mq_commit_req *c, size_t n);
/* Membership: commits c, then the server rebalances; assigned[i] is set
 * to 1 for each tps[i] this member owns now. */
int mq_client_group_heartbeat(const char *addr, const char *group, const char *member,
			      const struct mq_tp *tps, size_t n, int64_t session_ms,
			      const struct mq_commit_req *c, size_t nc,
			      int32_t *assigned, size_t *nassigned);
int mq_client_group_leave(const char *addr, const char *group, const char *member);
int mq_client_lag(const char *addr, char *const *groups, size_t ngroups,
		  const struct mq_lag_opts *o, struct mq_lag_report *rep);

/* ---- serving (serve.c, serve_api.c) ---------------------------------------- */

struct mq_serve_opts {
	const char *datadir;
	const char *listen;       /* ADDR:PORT, default 127.0.0.1:8092 */
	const char *token_file;   /* NULL: no authentication */
	int read_only;
	int stdio;                /* one connection over stdin/stdout */
	unsigned max_connections;
	int64_t max_body;         /* bytes */
	int64_t timeout_ms;       /* to receive a request; idle keep-alive */
	void (*log)(void *arg, const char *line);      /* a line per request */
	void (*ready)(void *arg, unsigned port);       /* listening */
	void *arg;
	volatile sig_atomic_t *stop;
};
/* Serves until *stop (or, with stdio, until the client leaves), then
 * finishes what is in flight and releases everything. */
int mq_serve_run(const struct mq_serve_opts *o);

/* ---- segment dump (dump.c) ---------------------------------------------- */

enum { MQ_DUMP_RECORDS = 1, MQ_DUMP_JSON = 2 };
/* Writes a kafka-dump-log style listing of a .log, .index or .timeindex
 * file to out. */
int mq_dump_file(FILE *out, const char *path, int flags);

#endif
