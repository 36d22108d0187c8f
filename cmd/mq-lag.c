/*
 * mq-lag: the backlog of consumer groups, for terminals, cron and
 * Prometheus.  See mq-lag(1).
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mq.h"

static const char usage_text[] =
	"usage: mq-lag [-Jq] [-d DIR] [-t TOPIC] [--summary | --prometheus] [-o FILE]\n"
	"              [-w SECONDS] [--window DURATION] [--allowed-lag N]\n"
	"              [--max-lag N] [--max-age DURATION] [--fail-on warn|stall|stop]\n"
	"              [--token-file FILE] [ADDRESS] [GROUP...]\n";

enum { OPT_SUMMARY = 256, OPT_PROM, OPT_WINDOW, OPT_ALLOWED, OPT_MAXLAG, OPT_MAXAGE, OPT_FAILON,
       OPT_TOKEN };

static struct {
	const char *dir, *out;
	int json, quiet, summary, prom;
	int64_t watch, max_lag, max_age;
	int fail_on;
	struct mq_lag_opts lo;
} o = { .max_lag = -1, .max_age = -1, .fail_on = -1,
	.lo = { .window_ms = 10 * 60 * 1000, .allowed_lag = 0 } };

static volatile sig_atomic_t stop;

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

static void put(struct mq_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct mq_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	/* one pass when the text fits what is reserved, which it mostly does */
	if (mq_buf_reserve(b, 512) < 0)
		mq_die_err();
	va_start(ap, fmt);
	n = vsnprintf((char *)b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n >= b->cap - b->len) {
		if (mq_buf_reserve(b, (size_t)n + 1) < 0)
			mq_die_err();
		va_start(ap, fmt);
		vsnprintf((char *)b->p + b->len, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	if (n < 0)
		mq_die(MQ_EIO, "cannot format output");
	b->len += (size_t)n;
}

static const char *age(int64_t ms, char *buf, size_t n)
{
	int64_t s = ms / 1000;

	if (ms < 0)
		snprintf(buf, n, "-");
	else if (s < 60)
		snprintf(buf, n, "%" PRId64 "s", s);
	else if (s < 3600)
		snprintf(buf, n, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, n, "%" PRId64 "h%02" PRId64 "m", s / 3600, s / 60 % 60);
	else
		snprintf(buf, n, "%" PRId64 "d%02" PRId64 "h", s / 86400, s / 3600 % 24);
	return buf;
}

/* "ID pid host" as "pid@host". */
static const char *owner(const char *s, char *buf, size_t n)
{
	char id[256], host[256];
	long pid;

	if (!s[0] || sscanf(s, "%255s %ld %255s", id, &pid, host) != 3)
		snprintf(buf, n, "-");
	else
		snprintf(buf, n, "%ld@%s", pid, host);
	return buf;
}

static int offending(const struct mq_lag_row *r)
{
	return (o.max_lag >= 0 && r->lag > o.max_lag) ||
	       (o.max_age >= 0 && r->age_ms > o.max_age) ||
	       (o.fail_on >= 0 && r->status >= o.fail_on);
}

static int thresholds(void)
{
	return o.max_lag >= 0 || o.max_age >= 0 || o.fail_on >= 0;
}

static void json_str(struct mq_buf *b, const char *s)
{
	if (mq_json_bytes(b, (const uint8_t *)s, (int32_t)strlen(s)) < 0)
		mq_die_err();
}

struct gsum {
	const char *group;
	int64_t total, max_lag, max_age;
	int status, members, partitions;
};

static size_t summarize(const struct mq_lag_report *rep, int only_bad, struct gsum *g)
{
	size_t n = 0;

	for (size_t i = 0; i < rep->n; i++) {
		const struct mq_lag_row *r = &rep->rows[i];
		if (only_bad && !offending(r))
			continue;
		if (n == 0 || strcmp(g[n - 1].group, r->group))
			g[n++] = (struct gsum){ r->group, 0, 0, -1, MQ_LAG_OK, r->members, 0 };
		struct gsum *s = &g[n - 1];
		s->total += r->lag;
		s->partitions++;
		if (r->lag > s->max_lag) s->max_lag = r->lag;
		if (r->age_ms > s->max_age) s->max_age = r->age_ms;
		if (r->status > s->status) s->status = r->status;
	}
	return n;
}

static void table(struct mq_buf *b, const struct mq_lag_report *rep, int only_bad)
{
	char a[32], w[300];

	put(b, "%-16s %-16s %9s %12s %12s %10s %8s %10s %-6s %s\n", "GROUP", "TOPIC", "PARTITION",
	    "COMMITTED", "END", "LAG", "AGE", "RATE", "STATUS", "OWNER");
	for (size_t i = 0; i < rep->n; i++) {
		const struct mq_lag_row *r = &rep->rows[i];
		char c[32];
		if (only_bad && !offending(r))
			continue;
		if (r->committed < 0)
			snprintf(c, sizeof c, "-");
		else
			snprintf(c, sizeof c, "%" PRId64, r->committed);
		put(b, "%-16s %-16s %9d %12s %12" PRId64 " %10" PRId64 " %8s %8.1f/s %-6s %s\n",
		    r->group, r->topic, r->partition, c, r->end, r->lag, age(r->age_ms, a, sizeof a),
		    r->rate, mq_lag_status_name(r->status), owner(r->owner, w, sizeof w));
	}
}

static void summary(struct mq_buf *b, const struct mq_lag_report *rep, int only_bad)
{
	struct gsum *g = calloc(rep->n ? rep->n : 1, sizeof *g);
	char a[32];
	size_t n;

	if (!g)
		mq_die(MQ_EIO, "out of memory");
	n = summarize(rep, only_bad, g);
	put(b, "%-16s %7s %10s %12s %12s %8s %s\n", "GROUP", "MEMBERS", "PARTITIONS", "TOTAL-LAG",
	    "MAX-LAG", "MAX-AGE", "STATUS");
	for (size_t i = 0; i < n; i++)
		put(b, "%-16s %7d %10d %12" PRId64 " %12" PRId64 " %8s %s\n", g[i].group, g[i].members,
		    g[i].partitions, g[i].total, g[i].max_lag, age(g[i].max_age, a, sizeof a),
		    mq_lag_status_name(g[i].status));
	free(g);
}

static void json(struct mq_buf *b, const struct mq_lag_report *rep, int only_bad)
{
	struct gsum *g = calloc(rep->n ? rep->n : 1, sizeof *g);
	size_t n, k = 0;

	if (!g)
		mq_die(MQ_EIO, "out of memory");
	n = summarize(rep, only_bad, g);
	put(b, "{\"groups\":[");
	for (size_t i = 0; i < n; i++) {
		put(b, "%s{\"group\":", i ? "," : "");
		json_str(b, g[i].group);
		put(b, ",\"status\":\"%s\",\"members\":%d,\"total_lag\":%" PRId64 ",\"max_lag\":%" PRId64
		    ",\"max_age_ms\":%" PRId64 ",\"partitions\":[", mq_lag_status_name(g[i].status),
		    g[i].members, g[i].total, g[i].max_lag, g[i].max_age);
		int first = 1;
		/* skip the rows of groups summarize() left out */
		while (k < rep->n && strcmp(rep->rows[k].group, g[i].group))
			k++;
		for (; k < rep->n && !strcmp(rep->rows[k].group, g[i].group); k++) {
			const struct mq_lag_row *r = &rep->rows[k];
			char w[300];
			if (only_bad && !offending(r))
				continue;
			put(b, "%s{\"topic\":", first ? "" : ",");
			json_str(b, r->topic);
			put(b, ",\"partition\":%d,\"committed\":", r->partition);
			put(b, r->committed < 0 ? "null" : "%" PRId64, r->committed);
			put(b, ",\"log_start\":%" PRId64 ",\"end\":%" PRId64 ",\"lag\":%" PRId64 ",\"age_ms\":",
			    r->start, r->end, r->lag);
			put(b, r->age_ms < 0 ? "null" : "%" PRId64, r->age_ms);
			put(b, ",\"rate\":%.3f,\"status\":\"%s\",\"owner\":", r->rate, mq_lag_status_name(r->status));
			if (r->owner[0]) {
				owner(r->owner, w, sizeof w);
				json_str(b, w);
			} else {
				put(b, "null");
			}
			put(b, "}");
			first = 0;
		}
		put(b, "]}");
	}
	put(b, "]}\n");
	free(g);
}

/* Prometheus text exposition format, for node_exporter's textfile
 * collector. */
static void prometheus(struct mq_buf *b, const struct mq_lag_report *rep)
{
	static const struct { const char *name, *help; } m[] = {
		{ "mq_consumergroup_lag", "Records of the partition the group has not consumed." },
		{ "mq_consumergroup_lag_seconds", "Age of the oldest record the group has not consumed." },
		{ "mq_consumergroup_current_offset", "Offset the group committed (the next to consume)." },
		{ "mq_topic_partition_end_offset", "Log end offset of the partition." },
	};
	struct gsum *g = calloc(rep->n ? rep->n : 1, sizeof *g);
	size_t n;

	if (!g)
		mq_die(MQ_EIO, "out of memory");
	n = summarize(rep, 0, g);
	for (int k = 0; k < 4; k++) {
		put(b, "# HELP %s %s\n# TYPE %s gauge\n", m[k].name, m[k].help, m[k].name);
		for (size_t i = 0; i < rep->n; i++) {
			const struct mq_lag_row *r = &rep->rows[i];
			if (k == 3) {
				/* once per partition, whatever the groups */
				int seen = 0;
				for (size_t j = 0; j < i && !seen; j++)
					seen = !strcmp(rep->rows[j].topic, r->topic) &&
					       rep->rows[j].partition == r->partition;
				if (!seen)
					put(b, "%s{topic=\"%s\",partition=\"%d\"} %" PRId64 "\n", m[k].name,
					    r->topic, r->partition, r->end);
				continue;
			}
			if (k == 1 && r->age_ms < 0)
				continue;
			if (k == 2 && r->committed < 0)
				continue;
			put(b, "%s{group=\"%s\",topic=\"%s\",partition=\"%d\"} ", m[k].name, r->group,
			    r->topic, r->partition);
			if (k == 0) put(b, "%" PRId64 "\n", r->lag);
			if (k == 1) put(b, "%.3f\n", (double)r->age_ms / 1000.0);
			if (k == 2) put(b, "%" PRId64 "\n", r->committed);
		}
	}
	put(b, "# HELP mq_consumergroup_members Live members of the group.\n"
	       "# TYPE mq_consumergroup_members gauge\n");
	for (size_t i = 0; i < n; i++)
		put(b, "mq_consumergroup_members{group=\"%s\"} %d\n", g[i].group, g[i].members);
	put(b, "# HELP mq_consumergroup_status Worst partition status: 0 OK, 1 WARN, 2 REWIND, 3 STALL, 4 STOP.\n"
	       "# TYPE mq_consumergroup_status gauge\n");
	for (size_t i = 0; i < n; i++)
		put(b, "mq_consumergroup_status{group=\"%s\",status=\"%s\"} %d\n", g[i].group,
		    mq_lag_status_name(g[i].status), g[i].status);
	free(g);
}

/* One report; returns 1 when a threshold was breached. */
static int report(const char *dir, char **groups, size_t ngroups, int tty)
{
	struct mq_lag_report rep;
	struct mq_buf b = { 0 };
	int bad = 0;

	if (mq_lag_gather(dir, groups, ngroups, &o.lo, &rep) < 0)
		mq_die_err();
	for (size_t i = 0; i < rep.n && thresholds(); i++)
		bad |= offending(&rep.rows[i]);
	if (o.prom)
		prometheus(&b, &rep);
	else if (!(o.quiet && !bad)) {
		if (o.json)
			json(&b, &rep, thresholds());
		else if (o.summary)
			summary(&b, &rep, thresholds());
		else
			table(&b, &rep, thresholds());
	}
	if (o.out) {
		if (mq_write_file_atomic(o.out, b.p ? (void *)b.p : "", b.len) < 0)
			mq_die_err();
	} else {
		if (tty && o.watch > 0)
			fputs("\033[H\033[J", stdout);
		if (b.len && fwrite(b.p, 1, b.len, stdout) != b.len)
			mq_die(MQ_EIO, "cannot write to standard output");
		fflush(stdout);
	}
	mq_buf_free(&b);
	mq_lag_report_free(&rep);
	return bad;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "allowed-lag", required_argument, NULL, OPT_ALLOWED },
		{ "dir", required_argument, NULL, 'd' },
		{ "fail-on", required_argument, NULL, OPT_FAILON },
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, 'J' },
		{ "max-age", required_argument, NULL, OPT_MAXAGE },
		{ "max-lag", required_argument, NULL, OPT_MAXLAG },
		{ "output", required_argument, NULL, 'o' },
		{ "prometheus", no_argument, NULL, OPT_PROM },
		{ "quiet", no_argument, NULL, 'q' },
		{ "summary", no_argument, NULL, OPT_SUMMARY },
		{ "token-file", required_argument, NULL, OPT_TOKEN },
		{ "topic", required_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "watch", required_argument, NULL, 'w' },
		{ "window", required_argument, NULL, OPT_WINDOW },
		{ NULL, 0, NULL, 0 },
	};
	struct sigaction sa = { .sa_handler = on_signal };
	char *dir;
	int c, bad;

	mq_setprogname(argv[0]);
	while ((c = getopt_long(argc, argv, "d:hJo:qt:Vw:", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': o.dir = optarg; break;
		case 'h': usage(stdout, 0); break;
		case 'J': o.json = 1; break;
		case 'o': o.out = optarg; break;
		case 'q': o.quiet = 1; break;
		case 't':
			if (mq_topic_name_check(optarg) < 0)
				mq_usage_error("%s", mq_errmsg());
			o.lo.topic = optarg;
			break;
		case 'V': mq_print_version(); return 0;
		case OPT_TOKEN:
			if (mq_remote_token_file(optarg) < 0)
				mq_die_err();
			break;
		case 'w':
			if (mq_parse_int(optarg, 1, 86400, &o.watch) < 0)
				mq_usage_error("invalid watch interval '%s': expected seconds", optarg);
			break;
		case OPT_ALLOWED:
			if (mq_parse_int(optarg, 0, INT64_MAX, &o.lo.allowed_lag) < 0)
				mq_usage_error("invalid --allowed-lag '%s'", optarg);
			break;
		case OPT_FAILON:
			if (!strcmp(optarg, "warn")) o.fail_on = MQ_LAG_WARN;
			else if (!strcmp(optarg, "stall")) o.fail_on = MQ_LAG_STALL;
			else if (!strcmp(optarg, "stop")) o.fail_on = MQ_LAG_STOP;
			else mq_usage_error("invalid --fail-on '%s': expected warn, stall or stop", optarg);
			break;
		case OPT_MAXAGE:
			if (mq_parse_duration(optarg, &o.max_age) < 0)
				mq_usage_error("invalid --max-age '%s'", optarg);
			break;
		case OPT_MAXLAG:
			if (mq_parse_int(optarg, 0, INT64_MAX, &o.max_lag) < 0)
				mq_usage_error("invalid --max-lag '%s'", optarg);
			break;
		case OPT_PROM: o.prom = 1; break;
		case OPT_SUMMARY: o.summary = 1; break;
		case OPT_WINDOW:
			if (mq_parse_duration(optarg, &o.lo.window_ms) < 0 || o.lo.window_ms <= 0)
				mq_usage_error("invalid --window '%s'", optarg);
			break;
		default: mq_usage_hint();
		}
	}
	argc -= optind;
	argv += optind;
	/* mq-lag http://box:8092 [GROUP...]: the first argument may be the
	 * data directory's address */
	if (argc > 0 && mq_remote_is(argv[0])) {
		if (o.dir && strcmp(o.dir, argv[0]))
			mq_usage_error("both --dir '%s' and the address '%s' given", o.dir, argv[0]);
		o.dir = argv[0];
		argc--;
		argv++;
	}
	if (o.json + o.summary + o.prom > 1)
		mq_usage_error("-J, --summary and --prometheus exclude each other");
	for (int i = 0; i < argc; i++)
		if (mq_group_name_check(argv[i]) < 0)
			mq_usage_error("%s", mq_errmsg());
	if (!(dir = mq_datadir(o.dir)))
		mq_die_err();
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	int tty = isatty(1);
	bad = report(dir, argv, (size_t)argc, tty);
	while (o.watch > 0 && !stop) {
		struct timespec ts = { (time_t)o.watch, 0 };
		nanosleep(&ts, NULL);
		if (!stop)
			bad = report(dir, argv, (size_t)argc, tty);
	}
	return bad ? MQ_ENEG : 0;
}
