/*
 * mq-consume: read and tail topics, alone or in consumer groups.  See
 * mq-consume(1).
 *
 * Output is gathered in a buffer and written after each batch read, so
 * that a group commits only what reached standard output (at-least-once).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mq.h"

static const char usage_text[] =
	"usage: mq-consume [-eJ] [-d DIR] [-o OFFSET] [-p N] [-c COUNT] [-f FORMAT | --raw]\n"
	"                  [-g GROUP [--commit auto|none]] [--until TIME] [--key KEY]\n"
	"                  [--grep REGEX] [--offset-reset error|earliest|latest]\n"
	"                  [--isolation committed|uncommitted] [--skip-corrupt]\n"
	"                  [--token-file FILE] [-x CMD [--batch N] [--retries N] [--dlq TOPIC]]\n"
	"                  TOPIC...\n"
	"       mq-consume [-d DIR] --reset-offsets OFFSET -g GROUP [--force] TOPIC...\n";

enum { OPT_RAW = 256, OPT_COMMIT, OPT_UNTIL, OPT_KEY, OPT_GREP, OPT_RESET, OPT_ISOLATION,
       OPT_SKIP, OPT_BATCH, OPT_RETRIES, OPT_DLQ, OPT_RESETOFF, OPT_FORCE, OPT_TOKEN };

static volatile sig_atomic_t stop;

static struct {
	const char *dir, *group, *key, *exec, *dlq, *reset_to;
	struct mq_format *fmt;
	int json, raw, commit, force, skip_corrupt;
	int64_t count, until, batch, retries;
	regex_t grep;
	int has_grep;
	struct mq_consumer_opts co;
} o = { .commit = 1, .count = -1, .until = -1, .batch = 1, .co = { .partition = -1, .check_crc = 1 } };

static struct mq_buf out;
static int64_t shown;

/* Where each record of the current batch ends in out, so that when
 * standard output closes half way, what did get out is committed. */
static struct {
	int64_t *next;            /* offset after the record */
	size_t *end;              /* out.len after it */
	size_t n, cap;
} marks;

static void mark(int64_t next)
{
	if (marks.n == marks.cap) {
		size_t cap = marks.cap ? 2 * marks.cap : 1024;
		int64_t *nn = realloc(marks.next, cap * sizeof *nn);
		size_t *ne = nn ? realloc(marks.end, cap * sizeof *ne) : NULL;
		if (!nn || !ne)
			mq_die(MQ_EIO, "out of memory");
		marks.next = nn;
		marks.end = ne;
		marks.cap = cap;
	}
	marks.next[marks.n] = next;
	marks.end[marks.n++] = out.len;
}

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

static void on_corrupt(void *arg, const char *msg)
{
	(void)arg;
	mq_warn("skipping corrupt data: %s", msg);
}

/* Writes the buffer out.  0, or 1 when standard output is gone (a closed
 * pipe ends the consumer quietly); *written says how much got out. */
static int flush_out(size_t *written)
{
	size_t done = 0;

	*written = 0;
	while (done < out.len) {
		ssize_t w = write(1, out.p + done, out.len - done);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			*written = done;
			if (errno == EPIPE)
				return 1;
			mq_die(MQ_EIO, "cannot write to standard output: %s", strerror(errno));
		}
		done += (size_t)w;
	}
	*written = done;
	out.len = 0;
	return 0;
}

static int matches(const struct mq_record *r)
{
	if (o.key && (r->key_len < 0 || (size_t)r->key_len != strlen(o.key) ||
		      memcmp(r->key, o.key, (size_t)r->key_len)))
		return 0;
	if (o.has_grep) {
		regmatch_t m = { 0, r->value_len > 0 ? r->value_len : 0 };
		if (r->value_len < 0 ||
		    regexec(&o.grep, r->value_len ? (const char *)r->value : "", 1, &m, REG_STARTEND))
			return 0;
	}
	return 1;
}

/* Records collected for --exec --batch: copies of their bytes, since a
 * batch's records live only as long as its iterator. */
static struct {
	struct mq_record *recs;
	size_t *at;               /* where each record's bytes start in data */
	struct mq_buf data;
	size_t n;
} pend;

static void exec_records(struct mq_worker *w, struct mq_consumer *c, const struct mq_tp *tp,
			 struct mq_record *recs, size_t n)
{
	char why[128];
	int rc = mq_worker_run(w, tp->topic, tp->partition, recs, n, why, sizeof why);

	if (rc < 0)
		mq_die_err();
	if (rc == 3) {
		stop = 1;
		return;
	}
	if (rc == 1) {
		/* the message first: closing frees the topic name */
		char msg[1024];
		snprintf(msg, sizeof msg, "command failed for '%s' partition %d offset %lld: %s",
			 tp->topic, tp->partition, (long long)recs[0].offset, why);
		mq_consumer_close(c);
		mq_die(MQ_ENEG, "%s", msg);
	}
	if (rc == 2)
		mq_warn("'%s' partition %d offset %lld: %s, sent to '%s'", tp->topic, tp->partition,
			(long long)recs[0].offset, why, o.dlq);
	mq_consumer_delivered(c, tp, recs[n - 1].offset + 1);
	/* a slow worker commits as it goes, not once per log batch */
	if (mq_consumer_commit(c, 0) < 0)
		mq_die_err();
}

static size_t len0(int32_t n)
{
	return n > 0 ? (size_t)n : 0;
}

static void keep(const struct mq_record *r)
{
	pend.at[pend.n] = pend.data.len;
	if (mq_buf_append(&pend.data, r->key, len0(r->key_len)) < 0 ||
	    mq_buf_append(&pend.data, r->value, len0(r->value_len)) < 0 ||
	    mq_buf_append(&pend.data, r->headers, r->headers_len) < 0)
		mq_die_err();
	pend.recs[pend.n++] = *r;
}

static void run_pending(struct mq_worker *w, struct mq_consumer *c, const struct mq_tp *tp)
{
	if (!pend.n)
		return;
	/* point the copies at the buffer, now that it stopped moving */
	for (size_t i = 0; i < pend.n; i++) {
		struct mq_record *r = &pend.recs[i];
		const uint8_t *p = pend.data.p + pend.at[i];
		r->key = r->key_len >= 0 ? p : NULL;
		r->value = r->value_len >= 0 ? p + len0(r->key_len) : NULL;
		r->headers = p + len0(r->key_len) + len0(r->value_len);
	}
	exec_records(w, c, tp, pend.recs, pend.n);
	pend.n = 0;
	pend.data.len = 0;
}

/* Handles one batch; returns 1 when the consumer should end. */
static int handle(struct mq_consumer *c, struct mq_worker *w, const struct mq_tp *tp,
		  const struct mq_batch *b, int64_t first)
{
	struct mq_record_iter it = { 0 };
	struct mq_record r;
	int rc, end = 0;
	int64_t next = mq_batch_last_offset(b) + 1;

	marks.n = 0;
	if (o.raw) {
		if (mq_buf_append(&out, b->data, b->size) < 0)
			mq_die_err();
		mark(next);
		shown += b->count;
		if (o.count >= 0 && shown >= o.count)
			end = 1;
		goto done;
	}
	if (b->attributes & MQ_ATTR_CONTROL)
		goto done;
	if (mq_record_iter_init(&it, b, MQ_MAX_RECORDS) < 0)
		mq_die_err();
	while ((rc = mq_record_next(&it, &r)) > 0) {
		if (r.offset < first)
			continue;
		if (o.until >= 0 && r.timestamp >= o.until) {
			mq_consumer_finish(c, tp);
			next = r.offset;
			break;
		}
		if (!matches(&r))
			continue;
		if (w) {
			keep(&r);
			if ((int64_t)pend.n >= o.batch)
				run_pending(w, c, tp);
			if (stop)
				break;    /* interrupted: what ran is committed, the rest not */
		} else if (o.json) {
			if (mq_json_record_write(&out, tp->topic, tp->partition, &r) < 0)
				mq_die_err();
		} else if (mq_format_record(&out, o.fmt, tp->topic, tp->partition, &r) < 0) {
			mq_die_err();
		}
		if (!w)
			mark(r.offset + 1);
		if (o.count >= 0 && ++shown >= o.count) {
			next = r.offset + 1;
			end = 1;
			break;
		}
	}
	if (rc < 0)
		mq_die_err();
	mq_record_iter_free(&it);
	if (w) {
		if (!stop)
			run_pending(w, c, tp);
		/* the records after the last one a command handled were
		 * filtered out: delivered too, unless interrupted */
		if (!stop)
			mq_consumer_delivered(c, tp, next);
		pend.n = 0;
		pend.data.len = 0;
		return end;
	}
done:;
	size_t written;
	if (flush_out(&written)) {
		/* the records that got out whole count as delivered */
		for (size_t i = marks.n; i-- > 0;)
			if (marks.end[i] <= written) {
				mq_consumer_delivered(c, tp, marks.next[i]);
				break;
			}
		return 2;
	}
	mq_consumer_delivered(c, tp, next);
	return end;
}

static int reset_offsets(char *dir, char **topics, int n)
{
	char **members;
	size_t nm;

	if (mq_group_members(dir, o.group, &members, &nm) < 0)
		mq_die_err();
	mq_strv_free(members, nm);
	if (nm > 0 && !o.force)
		mq_die(MQ_ENEG, "group '%s' has %zu active member%s; stop them or use --force",
		       o.group, nm, nm == 1 ? "" : "s");
	for (int i = 0; i < n; i++) {
		struct mq_topic t;
		char pdir[PATH_MAX];
		if (mq_topic_open(dir, topics[i], &t) < 0)
			mq_die_err();
		for (int32_t p = 0; p < t.conf.partitions; p++) {
			struct mq_partition_info pi;
			struct mq_reader *r;
			int64_t off = 0, cur;
			if (o.co.partition >= 0 && p != o.co.partition)
				continue;
			mq_topic_partition_dir(&t, p, pdir, sizeof pdir);
			if (mq_partition_info(pdir, &pi) < 0)
				mq_die_err();
			switch (o.co.start.kind) {
			case MQ_OFFSET_BEGINNING: off = pi.log_start; break;
			case MQ_OFFSET_END: off = pi.log_end; break;
			case MQ_OFFSET_ABSOLUTE: off = o.co.start.value; break;
			case MQ_OFFSET_FROM_END: off = pi.log_end - o.co.start.value; break;
			case MQ_OFFSET_TIME:
				if (mq_reader_open(&r, pdir) < 0 || mq_reader_seek_time(r, o.co.start.value, &off) < 0)
					mq_die_err();
				mq_reader_close(r);
				break;
			case MQ_OFFSET_STORED: {
				int rc = mq_group_committed(dir, o.group, t.name, p, &cur);
				if (rc < 0)
					mq_die_err();
				if (rc == 0)
					continue;
				off = cur;
				break;
			}
			}
			if (off < pi.log_start)
				off = pi.log_start;
			if (off > pi.log_end)
				off = pi.log_end;
			if (mq_group_commit(dir, o.group, t.name, p, off, pi.log_end) < 0)
				mq_die_err();
			printf("%s %d %lld\n", t.name, p, (long long)off);
		}
		mq_topic_close(&t);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "batch", required_argument, NULL, OPT_BATCH },
		{ "commit", required_argument, NULL, OPT_COMMIT },
		{ "count", required_argument, NULL, 'c' },
		{ "dir", required_argument, NULL, 'd' },
		{ "dlq", required_argument, NULL, OPT_DLQ },
		{ "exec", required_argument, NULL, 'x' },
		{ "exit", no_argument, NULL, 'e' },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "format", required_argument, NULL, 'f' },
		{ "grep", required_argument, NULL, OPT_GREP },
		{ "group", required_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },
		{ "isolation", required_argument, NULL, OPT_ISOLATION },
		{ "json", no_argument, NULL, 'J' },
		{ "key", required_argument, NULL, OPT_KEY },
		{ "offset", required_argument, NULL, 'o' },
		{ "offset-reset", required_argument, NULL, OPT_RESET },
		{ "partition", required_argument, NULL, 'p' },
		{ "raw", no_argument, NULL, OPT_RAW },
		{ "token-file", required_argument, NULL, OPT_TOKEN },
		{ "reset-offsets", required_argument, NULL, OPT_RESETOFF },
		{ "retries", required_argument, NULL, OPT_RETRIES },
		{ "skip-corrupt", no_argument, NULL, OPT_SKIP },
		{ "until", required_argument, NULL, OPT_UNTIL },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *format = "%s\n";
	struct sigaction sa = { .sa_handler = on_signal };
	struct mq_consumer *c;
	struct mq_worker *w = NULL;
	char *dir;
	int ch, rc = 0;
	int64_t p;

	mq_setprogname(argv[0]);
	while ((ch = getopt_long(argc, argv, "c:d:ef:g:hJo:p:Vx:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			if (mq_parse_int(optarg, 0, INT64_MAX, &o.count) < 0)
				mq_usage_error("invalid count '%s'", optarg);
			break;
		case 'd': o.dir = optarg; break;
		case 'e': o.co.exit_at_end = 1; break;
		case 'f': format = optarg; break;
		case 'g': o.group = optarg; break;
		case 'h': usage(stdout, 0); break;
		case 'J': o.json = 1; break;
		case 'o':
			if (mq_offset_spec_parse(optarg, &o.co.start) < 0)
				mq_usage_error("%s", mq_errmsg());
			break;
		case 'p':
			if (mq_parse_int(optarg, 0, 99999, &p) < 0)
				mq_usage_error("invalid partition '%s'", optarg);
			o.co.partition = (int32_t)p;
			break;
		case 'V': mq_print_version(); return 0;
		case OPT_TOKEN:
			if (mq_remote_token_file(optarg) < 0)
				mq_die_err();
			break;
		case 'x': o.exec = optarg; break;
		case OPT_BATCH:
			if (mq_parse_int(optarg, 1, 1000000, &o.batch) < 0)
				mq_usage_error("invalid batch '%s'", optarg);
			break;
		case OPT_COMMIT:
			if (strcmp(optarg, "none") && strcmp(optarg, "auto"))
				mq_usage_error("invalid --commit '%s': expected auto or none", optarg);
			o.commit = !strcmp(optarg, "auto");
			break;
		case OPT_DLQ: o.dlq = optarg; break;
		case OPT_FORCE: o.force = 1; break;
		case OPT_GREP:
			if (regcomp(&o.grep, optarg, REG_EXTENDED | REG_NOSUB))
				mq_usage_error("invalid regular expression '%s'", optarg);
			o.has_grep = 1;
			break;
		case OPT_ISOLATION:
			if (strcmp(optarg, "committed") && strcmp(optarg, "uncommitted"))
				mq_usage_error("invalid --isolation '%s'", optarg);
			break;
		case OPT_KEY: o.key = optarg; break;
		case OPT_RAW: o.raw = 1; break;
		case OPT_RESET:
			if (!strcmp(optarg, "earliest")) o.co.reset = MQ_RESET_EARLIEST;
			else if (!strcmp(optarg, "latest")) o.co.reset = MQ_RESET_LATEST;
			else if (!strcmp(optarg, "error")) o.co.reset = MQ_RESET_ERROR;
			else mq_usage_error("invalid --offset-reset '%s'", optarg);
			break;
		case OPT_RESETOFF:
			o.reset_to = optarg;
			if (mq_offset_spec_parse(optarg, &o.co.start) < 0)
				mq_usage_error("%s", mq_errmsg());
			break;
		case OPT_RETRIES:
			if (mq_parse_int(optarg, 0, 1000, &o.retries) < 0)
				mq_usage_error("invalid retries '%s'", optarg);
			break;
		case OPT_SKIP: o.co.skip_corrupt = 1; break;
		case OPT_UNTIL:
			if (mq_parse_time(optarg, &o.until) < 0)
				mq_usage_error("invalid time '%s'", optarg);
			break;
		default: mq_usage_hint();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		mq_usage_error("missing TOPIC");
	if (o.json + o.raw + (o.exec != NULL) > 1)
		mq_usage_error("-J, --raw and --exec exclude each other");
	if ((o.dlq || o.retries || o.batch > 1) && !o.exec)
		mq_usage_error("--dlq, --retries and --batch need --exec");
	if (o.reset_to && !o.group)
		mq_usage_error("--reset-offsets needs a group (-g)");
	if (o.group && mq_group_name_check(o.group) < 0)
		mq_usage_error("%s", mq_errmsg());
	if (!o.json && !o.raw && mq_format_compile(format, &o.fmt) < 0)
		mq_usage_error("%s", mq_errmsg());
	if (!(dir = mq_topic_args(o.dir, argv, argc)))
		mq_die_err();
	if (o.reset_to && mq_remote_is(dir))
		mq_usage_error("--reset-offsets needs a local data directory (run it on the server)");
	if (o.reset_to)
		return reset_offsets(dir, argv, argc);

	o.co.datadir = dir;
	o.co.topics = (const char *const *)argv;
	o.co.ntopics = (size_t)argc;
	o.co.group = o.group;
	o.co.commit = o.commit;
	o.co.on_corrupt = on_corrupt;
	o.co.stop = &stop;
	mq_remote_set_stop(&stop);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (o.exec) {
		struct mq_worker_opts wo = { .cmd = o.exec, .retries = (int)o.retries, .dlq = o.dlq,
					     .datadir = dir, .stop = &stop };
		if (o.dlq && mq_topic_name_check(o.dlq) < 0)
			mq_die_err();
		if (mq_worker_open(&w, &wo) < 0)
			mq_die_err();
		pend.recs = calloc((size_t)o.batch, sizeof *pend.recs);
		pend.at = calloc((size_t)o.batch, sizeof *pend.at);
		if (!pend.recs || !pend.at)
			mq_die(MQ_EIO, "out of memory");
	}
	if (mq_consumer_open(&c, &o.co) < 0)
		mq_die_err();
	if (o.count == 0)
		stop = 1;
	while (!stop) {
		struct mq_tp tp;
		struct mq_batch b;
		int64_t first;
		int r = mq_consumer_next(c, &tp, &b, &first);
		if (r < 0) {
			int e = mq_errclass();
			char msg[4096];
			snprintf(msg, sizeof msg, "%s", mq_errmsg());
			mq_consumer_close(c);
			mq_die(e, "%s", msg);
		}
		if (r == 2)
			break;
		if (r == 0) {
			/* caught up: with --until past, whatever comes next is
			 * later still, so this is the end; otherwise sleep, at
			 * most until then */
			int64_t wait = -1;
			if (o.until >= 0) {
				wait = o.until - mq_now_ms();
				if (wait <= 0)
					break;
			}
			if (mq_consumer_commit(c, 0) < 0 ||
			    mq_consumer_wait(c, wait < 0 ? -1 : (int)(wait < 60000 ? wait : 60000)) < 0)
				mq_die_err();
			continue;
		}
		int end = handle(c, w, &tp, &b, first);
		if (end == 2)
			break;          /* standard output closed */
		if (mq_consumer_commit(c, 0) < 0)
			mq_die_err();
		if (end)
			break;
	}
	size_t written;
	flush_out(&written);
	if (mq_consumer_close(c) < 0) {
		/* the last commit failed: say so */
		mq_warn("%s", mq_errmsg());
		rc = mq_errclass();
	}
	mq_worker_close(w);
	mq_buf_free(&out);

	return rc;
}
