/*
 * mq-produce: pipe records into a topic.  See mq-produce(1).
 *
 * Input is read in large blocks and cut at the delimiter; every record of
 * one block gets the same timestamp.  When the input is a pipe or a
 * terminal and records are pending, reads wait at most until the oldest
 * pending record's linger runs out, so a slow trickle is still written
 * within the linger time.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mq.h"

#define MAX_HEADERS 64

static const char usage_text[] =
	"usage: mq-produce [-0v] [-d DIR] [-D DELIM] [-H NAME=VALUE]... [-K DELIM | -k KEY]\n"
	"                  [-p N] [-z CODEC] [--batch-size SIZE] [--linger DURATION]\n"
	"                  [--fsync] [--acks 1|all] [--acks-timeout DURATION] [--tee] [--no-create]\n"
	"                  [--skip-oversize] [--token-file FILE]\n"
	"                  [--json | --raw | --file-per-record | -F FILE] TOPIC [FILE...]\n";

enum { OPT_BATCH = 256, OPT_LINGER, OPT_FSYNC, OPT_ACKS, OPT_TEE, OPT_NOCREATE,
       OPT_SKIPOVER, OPT_JSON, OPT_RAW, OPT_FPR, OPT_TOKEN, OPT_ACKSTIME };

static volatile sig_atomic_t stop;

static struct {
	const char *dir;
	char delim[64];
	size_t dlen;
	char kdelim[64];
	size_t kdlen;
	const char *key;
	struct mq_header headers[MAX_HEADERS];
	int32_t nheaders;
	int64_t partition;
	int codec;
	int64_t batch, linger;
	int fsync, verbose, tee, no_create, skip_oversize, json, raw, fpr;
	const char *follow;
} o = { .delim = "\n", .dlen = 1, .partition = -1, .codec = -1, .linger = 100 };

static struct mq_producer *prod;
static struct mq_topic topic;
static int64_t nrecords, nskipped;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f, int code)
{
	fputs(usage_text, f);
	exit(code);
}

/* Stops on a record that cannot be taken: everything read before it is
 * written first, so nothing before the bad record is lost. */
static void refuse(int cls, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void refuse(int cls, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (mq_producer_flush(prod) < 0)
		mq_die_err();
	mq_producer_close(prod);
	mq_die(cls, "%s", msg);
}

/* Echoes acknowledged records for --tee (in the form they came in), and
 * reports batches for -v. */
static int on_ack(void *arg, int32_t part, const struct mq_batch *b)
{
	(void)arg;
	if (o.verbose)
		fprintf(stderr, "%d %lld\n", part, (long long)b->base_offset);
	if (o.tee && o.raw) {
		if (fwrite(b->data, 1, b->size, stdout) != b->size || fflush(stdout) != 0)
			return mq_error(MQ_EIO, "cannot write to standard output");
	} else if (o.tee) {
		struct mq_record_iter it = { 0 };
		struct mq_record r;
		struct mq_buf out = { 0 };
		int rc;
		if (mq_record_iter_init(&it, b, MQ_MAX_RECORDS) < 0)
			return -1;
		while ((rc = mq_record_next(&it, &r)) > 0) {
			if (o.json) {
				if (mq_json_record_write(&out, topic.name, part, &r) < 0) {
					rc = -1;
					break;
				}
				continue;
			}
			if (o.kdlen && r.key_len >= 0) {
				mq_buf_append(&out, r.key, (size_t)r.key_len);
				mq_buf_append(&out, o.kdelim, o.kdlen);
			}
			if (r.value_len > 0)
				mq_buf_append(&out, r.value, (size_t)r.value_len);
			mq_buf_append(&out, o.delim, o.dlen);
		}
		mq_record_iter_free(&it);
		int bad = rc < 0 || (out.len && fwrite(out.p, 1, out.len, stdout) != out.len) ||
			  fflush(stdout) != 0;
		mq_buf_free(&out);
		if (bad)
			return mq_error(MQ_EIO, "cannot write to standard output");
	}
	return 0;
}

static void add(const char *name, int64_t line, int64_t ts, const uint8_t *p, size_t n)
{
	const uint8_t *key = (const uint8_t *)o.key, *val = p;
	int32_t klen = o.key ? (int32_t)strlen(o.key) : -1, vlen = (int32_t)n;
	int32_t part = -1;
	struct mq_json_record *jr = NULL;
	static struct mq_json_record js;

	if (o.json) {
		if (n == 0)
			return;
		if (mq_json_record_parse((const char *)p, n, &js) < 0)
			refuse(MQ_EUSAGE, "%s: line %lld: %s", name, (long long)line, mq_errmsg());
		jr = &js;
		key = js.key_null ? NULL : js.key.p;
		klen = js.key_null ? -1 : (int32_t)js.key.len;
		val = js.value_null ? NULL : js.value.p;
		vlen = js.value_null ? -1 : (int32_t)js.value.len;
		part = js.partition;
		if (js.timestamp >= 0)
			ts = js.timestamp;
	} else if (o.kdlen) {
		const uint8_t *d = memmem(p, n, o.kdelim, o.kdlen);
		if (d) {
			key = p;
			klen = (int32_t)(d - p);
			val = d + o.kdlen;
			vlen = (int32_t)(n - (size_t)klen - o.kdlen);
		}
	}
	if (n > INT32_MAX)
		vlen = INT32_MAX;
	if (part >= topic.conf.partitions)
		refuse(MQ_EUSAGE, "%s: line %lld: partition %d out of range: topic '%s' has %d",
		       name, (long long)line, part, topic.name, topic.conf.partitions);
	if (mq_producer_add(prod, part, ts, key, klen, val, vlen,
			    jr ? jr->headers : o.headers, jr ? jr->nheaders : o.nheaders) < 0) {
		if (mq_errclass() != MQ_ENEG)
			mq_die_err();
		if (!o.skip_oversize)
			refuse(mq_errclass(), "%s: record %lld refused: %s", name, (long long)line, mq_errmsg());
		mq_warn("%s: record %lld skipped: %s", name, (long long)line, mq_errmsg());
		nskipped++;
		return;
	}
	nrecords++;
}

/* Waits for input on fd, flushing pending batches whose linger ran out.
 * Returns 1 when fd is readable, 0 on a signal. */
static int wait_input(int fd)
{
	for (;;) {
		int64_t dl = mq_producer_deadline(prod);
		if (dl < 0)
			return 1;
		int64_t left = dl - mq_now_ms();
		if (left <= 0) {
			if (mq_producer_flush(prod) < 0)
				mq_die_err();
			continue;
		}
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		int r = poll(&pf, 1, (int)left);
		if (r > 0)
			return 1;
		if (r < 0 && errno == EINTR && stop)
			return 0;
	}
}

/* Reads fd to its end, one record per delimiter. */
static void read_delimited(int fd, const char *name)
{
	struct stat st;
	struct mq_buf b = { 0 };
	size_t off = 0, max = (size_t)topic.conf.max_message_bytes + o.dlen + 4096;
	int64_t line = 0, ts = mq_now_ms();
	int waitable = fstat(fd, &st) == 0 && !S_ISREG(st.st_mode), eof = 0, oversize = 0;

	if (o.json && max < (1 << 20))
		max = 1 << 20;
	/* a bigger pipe: fewer, larger reads (best effort) */
	if (waitable)
		fcntl(fd, F_SETPIPE_SZ, 1 << 20);
	if (mq_buf_reserve(&b, 1 << 20) < 0)
		mq_die_err();
	while (!eof || off < b.len) {
		const uint8_t *s = b.p + off, *d;
		size_t avail = b.len - off;
		d = o.dlen == 1 ? memchr(s, o.delim[0], avail) : memmem(s, avail, o.delim, o.dlen);
		if (d || (eof && avail)) {
			size_t n = d ? (size_t)(d - s) : avail;
			line++;
			if (oversize) {
				oversize = 0;     /* the tail of a record already refused */
			} else {
				add(name, line, ts, s, n);
			}
			off += n + (d ? o.dlen : 0);
			continue;
		}
		if (eof || stop)
			break;
		/* no whole record left: make room and read more */
		if (off > 0) {
			memmove(b.p, b.p + off, avail);
			b.len = avail;
			off = 0;
		}
		if (b.len >= max) {
			/* a record longer than any batch may be: refuse it, or
			 * drop it up to its delimiter, saying so once */
			if (!oversize) {
				if (!o.skip_oversize)
					refuse(MQ_ENEG, "%s: record %lld refused: longer than max.message.bytes (%d)",
					       name, (long long)line + 1, topic.conf.max_message_bytes);
				mq_warn("%s: record %lld skipped: longer than max.message.bytes (%d)",
					name, (long long)line + 1, topic.conf.max_message_bytes);
				nskipped++;
				oversize = 1;
			}
			b.len = o.dlen - 1;   /* keep a possible partial delimiter */
			memmove(b.p, b.p + avail - b.len, b.len);
		}
		if (mq_buf_reserve(&b, 1 << 20) < 0)
			mq_die_err();
		if (waitable && !wait_input(fd))
			break;
		ssize_t r = read(fd, b.p + b.len, b.cap - b.len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			refuse(MQ_EIO, "cannot read '%s': %s", name, strerror(errno));
		}
		if (r == 0)
			eof = 1;
		b.len += (size_t)r;
		ts = mq_now_ms();
	}
	mq_buf_free(&b);
}

/* --raw: whole record batches, CRC-checked, appended as they are. */
static void read_raw(int fd, const char *name)
{
	struct mq_buf b = { 0 };
	int64_t at = 0;
	int eof = 0;

	while (!stop) {
		struct mq_batch batch;
		int rc = mq_batch_parse(b.p, b.len, &batch);
		if (rc == MQ_BATCH_BAD)
			mq_die(MQ_ECORRUPT, "%s: byte %lld: %s", name, (long long)at, mq_errmsg());
		if (rc == MQ_BATCH_OK) {
			if (!mq_batch_crc_ok(&batch))
				mq_die(MQ_ECORRUPT, "%s: byte %lld: batch CRC mismatch", name, (long long)at);
			if (batch.size > (size_t)topic.conf.max_message_bytes)
				mq_die(MQ_ENEG, "%s: byte %lld: batch of %zu bytes is larger than max.message.bytes (%d)",
				       name, (long long)at, batch.size, topic.conf.max_message_bytes);
			int64_t first;
			if (mq_producer_append_batches(prod, (int32_t)o.partition, b.p, batch.size, &first) < 0)
				mq_die_err();
			nrecords += batch.count;
			at += (int64_t)batch.size;
			memmove(b.p, b.p + batch.size, b.len - batch.size);
			b.len -= batch.size;
			continue;
		}
		if (eof) {
			if (b.len)
				mq_die(MQ_ECORRUPT, "%s: byte %lld: input ends inside a batch", name, (long long)at);
			break;
		}
		if (mq_buf_reserve(&b, 1 << 20) < 0)
			mq_die_err();
		ssize_t r = read(fd, b.p + b.len, b.cap - b.len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			mq_die(MQ_EIO, "cannot read '%s': %s", name, strerror(errno));
		}
		eof = r == 0;
		b.len += (size_t)r;
	}
	mq_buf_free(&b);
}

/* --file-per-record: the whole file is one record. */
static void read_whole(int fd, const char *name)
{
	struct mq_buf b = { 0 };
	size_t max = (size_t)topic.conf.max_message_bytes;

	for (;;) {
		if (mq_buf_reserve(&b, 1 << 20) < 0)
			mq_die_err();
		ssize_t r = read(fd, b.p + b.len, b.cap - b.len);
		if (r < 0) {
			if (errno == EINTR && !stop)
				continue;
			mq_die(MQ_EIO, "cannot read '%s': %s", name, strerror(errno));
		}
		if (r == 0)
			break;
		b.len += (size_t)r;
		if (b.len > max)
			break;
	}
	add(name, 1, mq_now_ms(), b.p ? b.p : (const uint8_t *)"", b.len);
	mq_buf_free(&b);
}

static void follow_skipped(void *arg, int64_t pos, size_t len)
{
	(void)arg;
	mq_warn("%s: line at byte %lld skipped: longer than max.message.bytes (%d)",
		o.follow, (long long)pos, topic.conf.max_message_bytes);
	(void)len;
	nskipped++;
}

static void parse_header(const char *arg)
{
	const char *eq = strchr(arg, '=');

	if (!eq || eq == arg)
		mq_usage_error("invalid header '%s': expected NAME=VALUE", arg);
	if (o.nheaders == MAX_HEADERS)
		mq_usage_error("too many headers (at most %d)", MAX_HEADERS);
	o.headers[o.nheaders++] = (struct mq_header){
		(const uint8_t *)arg, (int32_t)(eq - arg),
		(const uint8_t *)eq + 1, (int32_t)strlen(eq + 1) };
}

static void set_delim(char *buf, size_t *len, const char *arg, const char *what)
{
	ssize_t n = mq_unescape(arg, buf, 64);

	if (n < 0)
		mq_usage_error("invalid %s '%s': %s", what, arg, mq_errmsg());
	if (n == 0)
		mq_usage_error("invalid %s '': must not be empty", what);
	*len = (size_t)n;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "acks", required_argument, NULL, OPT_ACKS },
		{ "acks-timeout", required_argument, NULL, OPT_ACKSTIME },
		{ "batch-size", required_argument, NULL, OPT_BATCH },
		{ "compression", required_argument, NULL, 'z' },
		{ "delim", required_argument, NULL, 'D' },
		{ "dir", required_argument, NULL, 'd' },
		{ "file-per-record", no_argument, NULL, OPT_FPR },
		{ "follow", required_argument, NULL, 'F' },
		{ "fsync", no_argument, NULL, OPT_FSYNC },
		{ "header", required_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "key", required_argument, NULL, 'k' },
		{ "key-delim", required_argument, NULL, 'K' },
		{ "linger", required_argument, NULL, OPT_LINGER },
		{ "no-create", no_argument, NULL, OPT_NOCREATE },
		{ "null", no_argument, NULL, '0' },
		{ "partition", required_argument, NULL, 'p' },
		{ "raw", no_argument, NULL, OPT_RAW },
		{ "skip-oversize", no_argument, NULL, OPT_SKIPOVER },
		{ "tee", no_argument, NULL, OPT_TEE },
		{ "token-file", required_argument, NULL, OPT_TOKEN },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct mq_producer_opts po = { 0 };
	struct sigaction sa = { .sa_handler = on_signal };
	char *dir;
	int c, *fds = NULL, modes;

	mq_setprogname(argv[0]);
	while ((c = getopt_long(argc, argv, "0D:d:F:hH:K:k:p:vVz:", longopts, NULL)) != -1) {
		switch (c) {
		case '0': o.delim[0] = 0; o.dlen = 1; break;
		case 'D': set_delim(o.delim, &o.dlen, optarg, "delimiter"); break;
		case 'd': o.dir = optarg; break;
		case 'F': o.follow = optarg; break;
		case 'h': usage(stdout, 0); break;
		case 'H': parse_header(optarg); break;
		case 'K': set_delim(o.kdelim, &o.kdlen, optarg, "key delimiter"); break;
		case 'k': o.key = optarg; break;
		case 'p':
			if (mq_parse_int(optarg, 0, 99999, &o.partition) < 0)
				mq_usage_error("invalid partition '%s'", optarg);
			break;
		case 'v': o.verbose = 1; break;
		case 'V': mq_print_version(); return 0;
		case OPT_TOKEN:
			if (mq_remote_token_file(optarg) < 0)
				mq_die_err();
			break;
		case 'z':
			o.codec = mq_codec_parse(optarg);
			if (o.codec < 0 || !mq_codec_can_write(o.codec))
				mq_usage_error("invalid compression '%s': expected none, gzip or lz4", optarg);
			break;
		case OPT_ACKS:
			if (!strcmp(optarg, "all") || !strcmp(optarg, "-1"))
				po.acks_all = 1;
			else if (strcmp(optarg, "1"))
				mq_usage_error("invalid --acks '%s': expected 1 or all", optarg);
			break;
		case OPT_BATCH:
			if (mq_parse_size(optarg, &o.batch) < 0 || o.batch < 1)
				mq_usage_error("invalid batch size '%s'", optarg);
			break;
		case OPT_FPR: o.fpr = 1; break;
		case OPT_ACKSTIME:
			if (mq_parse_duration(optarg, &po.acks_timeout_ms) < 0 || po.acks_timeout_ms < 1)
				mq_usage_error("invalid --acks-timeout '%s'", optarg);
			break;
		case OPT_FSYNC: o.fsync = 1; break;
		case OPT_JSON: o.json = 1; break;
		case OPT_LINGER:
			if (mq_parse_duration(optarg, &o.linger) < 0)
				mq_usage_error("invalid linger '%s'", optarg);
			break;
		case OPT_NOCREATE: o.no_create = 1; break;
		case OPT_RAW: o.raw = 1; break;
		case OPT_SKIPOVER: o.skip_oversize = 1; break;
		case OPT_TEE: o.tee = 1; break;
		default: mq_usage_hint();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		mq_usage_error("missing TOPIC");
	modes = o.json + o.raw + o.fpr + (o.follow != NULL);
	if (modes > 1)
		mq_usage_error("--json, --raw, --file-per-record and --follow exclude each other");
	if (o.key && o.kdlen)
		mq_usage_error("-k and -K exclude each other");
	if (o.fpr && argc < 2)
		mq_usage_error("--file-per-record needs FILE arguments");
	if (o.follow && argc > 1)
		mq_usage_error("--follow takes no FILE arguments");
	if (!(dir = mq_topic_args(o.dir, argv, 1)))
		mq_die_err();
	if (o.follow && mq_remote_is(dir))
		mq_usage_error("--follow needs a local topic: it reads back what it wrote");

	/* every FILE is opened before anything is appended */
	fds = calloc((size_t)argc, sizeof *fds);
	for (int i = 1; i < argc; i++) {
		struct stat st;
		fds[i] = !strcmp(argv[i], "-") ? 0 : open(argv[i], O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0)
			mq_die(MQ_EIO, "cannot open '%s': %s", argv[i], strerror(errno));
		if (fstat(fds[i], &st) == 0 && S_ISDIR(st.st_mode))
			mq_die(MQ_EIO, "cannot read '%s': %s", argv[i], strerror(EISDIR));
	}
	if (o.follow && access(o.follow, R_OK) < 0)
		mq_die(MQ_EIO, "cannot follow '%s': %s", o.follow, strerror(errno));
	if (mq_topic_open(dir, argv[0], &topic) < 0) {
		struct mq_config dflt;
		if (mq_errclass() != MQ_ENOTFOUND || o.no_create)
			mq_die_err();
		/* refuse before creating anything */
		if (mq_topic_defaults(dir, &dflt) < 0)
			mq_die_err();
		if (o.partition >= dflt.partitions)
			mq_die(MQ_EUSAGE, "partition %lld out of range: a new topic '%s' would have %d",
			       (long long)o.partition, argv[0], dflt.partitions);
		if (mq_topic_create(dir, argv[0], NULL) < 0 && mq_errclass() != MQ_ENEG)
			mq_die_err();
		else if (mq_errclass() != MQ_ENEG)
			mq_warn("created topic '%s'", argv[0]);
		if (mq_topic_open(dir, argv[0], &topic) < 0)
			mq_die_err();
	}
	if (o.partition >= topic.conf.partitions)
		mq_die(MQ_EUSAGE, "partition %lld out of range: topic '%s' has %d",
		       (long long)o.partition, topic.name, topic.conf.partitions);
	if (o.codec < 0)
		o.codec = topic.conf.compression >= 0 && mq_codec_can_write(topic.conf.compression) ?
			  topic.conf.compression : MQ_CODEC_NONE;
	po.codec = o.codec;
	po.batch_bytes = o.batch;
	po.linger_ms = o.linger;
	po.fsync = o.fsync;
	po.partition = (int32_t)o.partition;
	po.on_ack = (o.verbose || o.tee) ? on_ack : NULL;
	if (mq_producer_open(&prod, &topic, &po) < 0)
		mq_die_err();

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (o.follow) {
		struct mq_follow_opts fo = {
			.path = o.follow, .delim = o.delim, .dlen = o.dlen,
			.kdelim = o.kdelim, .kdlen = o.kdlen, .key = o.key,
			.headers = o.headers, .nheaders = o.nheaders,
			.partition = (int32_t)o.partition, .codec = o.codec,
			.batch_bytes = o.batch, .stop = &stop,
			.skip_oversize = o.skip_oversize, .on_skip = follow_skipped,
		};
		if (mq_follow_run(prod, &topic, &fo) < 0)
			mq_die_err();
	} else if (argc == 1) {
		if (o.raw)
			read_raw(0, "standard input");
		else
			read_delimited(0, "standard input");
	}
	for (int i = 1; i < argc && !stop; i++) {
		if (o.raw)
			read_raw(fds[i], argv[i]);
		else if (o.fpr)
			read_whole(fds[i], argv[i]);
		else
			read_delimited(fds[i], argv[i]);
		if (fds[i] > 0)
			close(fds[i]);
	}
	if (mq_producer_flush(prod) < 0)
		mq_die_err();
	if (mq_producer_close(prod) < 0)
		mq_die_err();
	mq_topic_close(&topic);
	free(fds);

	return 0;
}
