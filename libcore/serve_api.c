/*
 * serve_api.c: mq-serve's /v1 API over a data directory (the reference
 * is mq-serve(1); client.c makes these requests).
 *
 *   GET    /healthz  /metrics
 *   GET    /v1/topics                                  list
 *   GET|PUT|PATCH|DELETE /v1/topics/T                  describe, create, alter, delete
 *   GET    /v1/topics/T/partitions/P                   partition state
 *   GET    /v1/topics/T/partitions/P/offset?time=MS    offset by time
 *   GET    /v1/topics/T/partitions/P/batches?offset=O&max_bytes=B&wait_ms=W
 *   POST   /v1/topics/T[/partitions/P]/records          produce
 *   POST   /v1/wait?wait_ms=W                           wait for any of several
 *   GET    /v1/groups                                  list
 *   GET    /v1/groups/G/offsets/T      POST /v1/groups/G/offsets
 *   POST|DELETE /v1/groups/G/members/ID                heartbeat, leave
 *   GET    /v1/lag?group=G&topic=T&window_ms=&allowed_lag=
 *
 * Every name in a path is checked (DESIGN.md §2) before it is used, after
 * libmicrohttpd decoded it, so "..%2f" is a 400 and never a path.
 *
 * Fetches answer from the segment file with sendfile (fetch.c finds the
 * byte range) and long-poll on the server's inotify watches.  Produce
 * requests append under a per-partition mutex to appenders kept open
 * between requests (the partition's flock still orders them against
 * other processes), and answer only once the batches are in the log.
 * Remote group members are held here: each has a real group membership
 * (group.c) opened by this process, renewed by its heartbeats and closed
 * when they stop for longer than the member's session timeout.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "serve_priv.h"

#define MAX_WAIT_MS 15000
#define MAX_SEGS 8

typedef enum MHD_Result result;

const char *mq_srv_arg(struct MHD_Connection *c, const char *k)
{
	return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, k);
}

int64_t mq_srv_arg_int(struct MHD_Connection *c, const char *k, int64_t dflt, int64_t max)
{
	const char *v = mq_srv_arg(c, k);
	int64_t n;

	if (!v || mq_parse_int(v, INT64_MIN, INT64_MAX, &n) < 0)
		return dflt;
	return n > max ? max : n;
}

static result bad(struct srv_req *q, struct MHD_Connection *c, const char *fmt, const char *s)
{
	char msg[600];

	snprintf(msg, sizeof msg, fmt, s);
	return mq_srv_error(q, c, 400, MQ_EUSAGE, msg);
}

static result method_not_allowed(struct srv_req *q, struct MHD_Connection *c, const char *allow)
{
	json_t *j = json_pack("{s:s,s:i}", "error", "method not allowed", "class", MQ_EUSAGE);
	char *text = json_dumps(j, JSON_COMPACT);
	struct MHD_Response *r;

	json_decref(j);
	if (!text)
		return MHD_NO;
	r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Allow", allow);
	MHD_add_response_header(r, "Content-Type", "application/json");
	q->bytes = strlen(text);
	return mq_srv_reply(q, c, 405, r);
}

/* ---- topics ---- */

static json_t *partition_json(const char *dir, const struct mq_config *conf, int32_t p)
{
	struct mq_partition_info pi;
	struct mq_replica *v;
	size_t n;

	if (mq_partition_info(dir, &pi) < 0 || mq_partition_hw(dir, conf, &pi.high_watermark) < 0 ||
	    mq_replicas_list(dir, conf, mq_now_ms(), &v, &n) < 0)
		return NULL;
	json_t *reps = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(reps, json_pack("{s:s,s:I,s:I,s:b}", "id", v[i].id, "position",
						      (json_int_t)v[i].position, "time", (json_int_t)v[i].time,
						      "in_sync", v[i].in_sync));
	free(v);
	return json_pack("{s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "partition", p,
			 "log_start", (json_int_t)pi.log_start, "log_end", (json_int_t)pi.log_end,
			 "high_watermark", (json_int_t)pi.high_watermark, "bytes", (json_int_t)pi.bytes,
			 "segments", (json_int_t)pi.nsegments,
			 "first_timestamp", (json_int_t)pi.first_timestamp,
			 "last_timestamp", (json_int_t)pi.last_timestamp, "replicas", reps);
}

static json_t *describe(const struct mq_topic *t)
{
	json_t *conf = json_object(), *parts = json_array();
	char val[64], dir[PATH_MAX];

	for (size_t i = 0; mq_config_keys[i]; i++)
		if (mq_config_get(&t->conf, mq_config_keys[i], val, sizeof val) == 0)
			json_object_set_new(conf, mq_config_keys[i], json_string(val));
	for (int32_t p = 0; p < t->conf.partitions; p++) {
		json_t *pj;
		mq_topic_partition_dir(t, p, dir, sizeof dir);
		if (!(pj = partition_json(dir, &t->conf, p))) {
			json_decref(conf);
			json_decref(parts);
			return NULL;
		}
		json_array_append_new(parts, pj);
	}
	return json_pack("{s:s,s:o,s:o}", "name", t->name, "config", conf, "partitions", parts);
}

/* Checks the name, the token, and opens the topic; -1 with *res queued. */
int mq_srv_open_topic(struct srv_req *q, struct MHD_Connection *c, const char *name, int write,
		      struct mq_topic *t, result *res)
{
	if (mq_topic_name_check(name) < 0) {
		*res = mq_srv_fail(q, c);
		return -1;
	}
	if (mq_srv_allowed(q, c, write, name, res) < 0)
		return -1;
	if (mq_topic_open(q->s->o.datadir, name, t) < 0) {
		*res = mq_srv_fail(q, c);
		return -1;
	}
	return 0;
}

int32_t mq_srv_partition_of(struct MHD_Connection *c, const struct mq_topic *t, const char *s)
{
	int64_t p;

	(void)c;
	if (mq_parse_int(s, 0, INT32_MAX, &p) < 0)
		return mq_error(MQ_EUSAGE, "invalid partition '%s'", s);
	if (p >= t->conf.partitions)
		return mq_error(MQ_ENOTFOUND, "partition %lld not found: topic '%s' has %d", (long long)p,
				t->name, t->conf.partitions);
	return (int32_t)p;
}

/* Reads a {"config":{...}} body into conf. */
static int config_body(struct srv_req *q, struct mq_config *conf)
{
	json_t *j, *cj, *v;
	const char *k;
	json_error_t e;

	if (q->body.len == 0)
		return 0;
	if (!(j = json_loadb((const char *)q->body.p, q->body.len, 0, &e)))
		return mq_error(MQ_EUSAGE, "invalid JSON body: %s", e.text);
	cj = json_object_get(j, "config");
	json_object_foreach(cj, k, v) {
		char buf[64];
		const char *val = buf;
		if (json_is_string(v))
			val = json_string_value(v);
		else if (json_is_integer(v))
			snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
		else {
			json_decref(j);
			return mq_error(MQ_EUSAGE, "config value of '%s' is not a string or number", k);
		}
		if (mq_config_set(conf, k, val) < 0) {
			json_decref(j);
			return -1;
		}
	}
	json_decref(j);
	return 0;
}

static result topic(struct srv_req *q, struct MHD_Connection *c, const char *name, const char *method)
{
	struct srv *s = q->s;
	struct mq_topic t;
	struct mq_config conf;
	result res;
	json_t *d;

	if (!strcmp(method, "PUT")) {
		if (mq_topic_name_check(name) < 0)
			return mq_srv_fail(q, c);
		if (mq_srv_allowed(q, c, 1, name, &res) < 0)
			return res;
		if (mq_topic_defaults(s->o.datadir, &conf) < 0 || config_body(q, &conf) < 0 ||
		    mq_topic_create(s->o.datadir, name, &conf) < 0 ||
		    mq_topic_open(s->o.datadir, name, &t) < 0)
			return mq_srv_fail(q, c);
		d = describe(&t);
		mq_topic_close(&t);
		return d ? mq_srv_json(q, c, 201, d) : mq_srv_fail(q, c);
	}
	int write = strcmp(method, "GET") && strcmp(method, "HEAD");
	if (mq_srv_open_topic(q, c, name, write, &t, &res) < 0)
		return res;
	if (!strcmp(method, "DELETE")) {
		mq_topic_close(&t);
		mq_srv_close_logs(s, t.dir);
		if (mq_topic_delete(s->o.datadir, name) < 0)
			return mq_srv_fail(q, c);
		return mq_srv_reply(q, c, 204, MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT));
	}
	if (!strcmp(method, "PATCH")) {
		conf = t.conf;
		if (config_body(q, &conf) < 0 || mq_topic_alter(&t, &conf) < 0) {
			mq_topic_close(&t);
			return mq_srv_fail(q, c);
		}
	} else if (write) {
		mq_topic_close(&t);
		return method_not_allowed(q, c, "GET, PUT, PATCH, DELETE");
	}
	d = describe(&t);
	mq_topic_close(&t);
	return d ? mq_srv_json(q, c, 200, d) : mq_srv_fail(q, c);
}

/* ---- fetch ---- */

static void range_headers(struct MHD_Response *r, const struct mq_partition_info *pi)
{
	char v[32];

	snprintf(v, sizeof v, "%lld", (long long)pi->log_start);
	MHD_add_response_header(r, "X-Mq-Log-Start", v);
	snprintf(v, sizeof v, "%lld", (long long)pi->log_end);
	MHD_add_response_header(r, "X-Mq-Log-End", v);
	snprintf(v, sizeof v, "%lld", (long long)pi->high_watermark);
	MHD_add_response_header(r, "X-Mq-High-Watermark", v);
}

static result fetch(struct srv_req *q, struct MHD_Connection *c, struct mq_topic *t, int32_t part)
{
	struct srv *s = q->s;
	struct mq_fetch f;
	char dir[PATH_MAX];
	int64_t offset = mq_srv_arg_int(c, "offset", -1, INT64_MAX);
	int64_t max = mq_srv_arg_int(c, "max_bytes", 1 << 20, 64 << 20);
	int64_t wait = mq_srv_arg_int(c, "wait_ms", 0, MAX_WAIT_MS);
	int64_t deadline = mq_mono_ms() + wait, limit = -1, hw = -1;
	uint64_t gen = mq_srv_gen(s);
	const char *replica = mq_srv_arg(c, "replica");
	/* how far the follower has written, when it fetches ahead of that */
	int64_t position = mq_srv_arg(c, "position") ? mq_srv_arg_int(c, "position", -1, INT64_MAX) : offset;

	if (offset < 0)
		return bad(q, c, "missing or invalid offset%s", "");
	if (position < 0 || position > offset)
		return bad(q, c, "invalid position: expected a number from 0 to the offset%s", "");
	if (replica && mq_replica_id_check(replica) < 0)
		return mq_srv_fail(q, c);
	/* a follower's position moves the high watermark: that is a write */
	result res;
	if (replica && mq_srv_allowed(q, c, 1, t->name, &res) < 0)
		return res;
	if (max < 1)
		max = 1;
	mq_topic_partition_dir(t, part, dir, sizeof dir);
	/* a follower says how far it got; with it the high watermark moves */
	if (replica && !s->o.read_only && mq_replica_report(dir, &t->conf, replica, position) < 0)
		return mq_srv_fail(q, c);
	if (wait > 0)
		mq_srv_watch(s, dir);
	for (;;) {
		/* consumers see only what enough followers have */
		if (t->conf.min_insync_replicas > 0 && mq_partition_hw(dir, &t->conf, &hw) < 0)
			return mq_srv_fail(q, c);
		limit = replica ? -1 : hw;
		if (mq_fetch_range(dir, offset, max, limit, &f) < 0) {
			if (mq_errclass() == MQ_ENOTFOUND) {
				json_t *j = json_pack("{s:s,s:i,s:I,s:I}", "error", mq_errmsg(), "class", MQ_ENOTFOUND,
						      "log_start", (json_int_t)f.pi.log_start,
						      "log_end", (json_int_t)f.pi.log_end);
				return mq_srv_json(q, c, 416, j);
			}
			return mq_srv_fail(q, c);
		}
		if (f.fd >= 0 || mq_mono_ms() >= deadline || s->stopping)
			break;
		if (mq_srv_wait_change(s, q, &gen, deadline))
			break;   /* the client left */
	}
	struct MHD_Response *r = f.fd >= 0 ?
		MHD_create_response_from_fd_at_offset64((uint64_t)f.len, f.fd, (uint64_t)f.pos) :
		MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
	if (!r) {
		if (f.fd >= 0)
			close(f.fd);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "application/vnd.kafka.batch");
	if (hw >= 0)
		f.pi.high_watermark = hw;
	range_headers(r, &f.pi);
	if (f.seg_base >= 0) {
		char v[32];
		snprintf(v, sizeof v, "%lld", (long long)f.seg_base);
		MHD_add_response_header(r, "X-Mq-Segment-Base", v);
	}
	q->bytes = (uint64_t)f.len;
	return mq_srv_reply(q, c, 200, r);
}

static result offset_for_time(struct srv_req *q, struct MHD_Connection *c, struct mq_topic *t,
			      int32_t part)
{
	struct mq_reader *r;
	char dir[PATH_MAX];
	const char *ts = mq_srv_arg(c, "time");
	int64_t when, off;

	if (!ts || mq_parse_int(ts, INT64_MIN, INT64_MAX, &when) < 0)
		return bad(q, c, "missing or invalid time%s", "");
	mq_topic_partition_dir(t, part, dir, sizeof dir);
	if (mq_reader_open(&r, dir) < 0)
		return mq_srv_fail(q, c);
	if (mq_reader_seek_time(r, when, &off) < 0) {
		mq_reader_close(r);
		return mq_srv_fail(q, c);
	}
	mq_reader_close(r);
	return mq_srv_json(q, c, 200, json_pack("{s:I}", "offset", (json_int_t)off));
}

static result partition(struct srv_req *q, struct MHD_Connection *c, const char *name,
			const char *ps, const char *what, const char *method)
{
	struct mq_topic t;
	char dir[PATH_MAX];
	int32_t part;
	result res;

	if (what && !strcmp(what, "records") && !strcmp(method, "POST"))
		return mq_srv_produce(q, c, name, ps);
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return method_not_allowed(q, c, what && !strcmp(what, "records") ? "POST" : "GET");
	if (mq_srv_open_topic(q, c, name, 0, &t, &res) < 0)
		return res;
	if ((part = mq_srv_partition_of(c, &t, ps)) < 0)
		res = mq_srv_fail(q, c);
	else if (!what) {
		json_t *j;
		mq_topic_partition_dir(&t, part, dir, sizeof dir);
		res = (j = partition_json(dir, &t.conf, part)) ? mq_srv_json(q, c, 200, j) : mq_srv_fail(q, c);
	} else if (!strcmp(what, "batches"))
		res = fetch(q, c, &t, part);
	else if (!strcmp(what, "offset"))
		res = offset_for_time(q, c, &t, part);
	else
		res = mq_srv_error(q, c, 404, MQ_ENOTFOUND, "no such endpoint");
	mq_topic_close(&t);
	return res;
}

/* POST /v1/wait: returns once one of the partitions has data at its
 * offset (or its log moved past it), or when the wait is over.  Data
 * means below the high watermark, except for a follower (?replica=ID). */
static result wait_any(struct srv_req *q, struct MHD_Connection *c)
{
	struct srv *s = q->s;
	int64_t wait = mq_srv_arg_int(c, "wait_ms", 0, MAX_WAIT_MS), deadline = mq_mono_ms() + wait;
	uint64_t gen = mq_srv_gen(s);
	int replica = mq_srv_arg(c, "replica") != NULL;
	json_t *j, *a, *ready = NULL;
	struct waiter {
		char dir[PATH_MAX];
		const char *topic;
		int32_t p;
		int64_t offset;
		struct mq_config conf;    /* its high watermark for consumers */
	} *w = NULL;
	size_t n = 0;
	result res;

	if (!(j = json_loadb((const char *)q->body.p, q->body.len, 0, NULL)) ||
	    !json_is_array(a = json_object_get(j, "partitions"))) {
		res = bad(q, c, "invalid JSON body%s", "");
		goto out;
	}
	/* checked, and their topics read, once; then looked at on each change */
	if (!(w = calloc(json_array_size(a) + 1, sizeof *w))) {
		mq_syserr("cannot wait");
		res = mq_srv_fail(q, c);
		goto out;
	}
	for (size_t i = 0; i < json_array_size(a); i++) {
		json_t *e = json_array_get(a, i);
		const char *tn = json_string_value(json_object_get(e, "topic"));
		json_int_t p = json_integer_value(json_object_get(e, "partition"));
		struct mq_topic t;
		if (!tn) {
			res = bad(q, c, "invalid JSON body%s", "");
			goto out;
		}
		if (mq_topic_name_check(tn) < 0) {
			res = mq_srv_fail(q, c);
			goto out;
		}
		if (mq_srv_allowed(q, c, 0, tn, &res) < 0)
			goto out;
		if (p < 0 || p > INT32_MAX)
			continue;
		w[n] = (struct waiter){ .topic = tn, .p = (int32_t)p,
					.offset = json_integer_value(json_object_get(e, "offset")) };
		mq_pathf(w[n].dir, sizeof w[n].dir, "%s/topics/%s/%lld", s->o.datadir, tn, (long long)p);
		mq_config_default(&w[n].conf);
		if (!replica && mq_topic_open(s->o.datadir, tn, &t) == 0) {
			w[n].conf = t.conf;
			mq_topic_close(&t);
		}
		mq_srv_watch(s, w[n].dir);
		n++;
	}
	ready = json_array();
	for (;;) {
		for (size_t i = 0; i < n; i++) {
			struct mq_partition_info pi;
			/* data at the offset, or a log that moved past it (or is gone) */
			int rc = replica ? mq_partition_info(w[i].dir, &pi) :
				 mq_partition_hw(w[i].dir, &w[i].conf, &pi.log_end);
			if (rc < 0 || pi.log_end != w[i].offset)
				json_array_append_new(ready, json_pack("{s:s,s:i}", "topic", w[i].topic,
								       "partition", w[i].p));
		}
		if (json_array_size(ready) || mq_mono_ms() >= deadline || s->stopping ||
		    mq_srv_wait_change(s, q, &gen, deadline))
			break;
	}
	res = mq_srv_json(q, c, 200, json_pack("{s:o}", "ready", ready));
	ready = NULL;
out:
	json_decref(ready);
	json_decref(j);
	free(w);
	return res;
}

/* ---- routing ---- */

enum MHD_Result mq_srv_dispatch(struct srv_req *q, struct MHD_Connection *c, const char *url,
				const char *method)
{
	char buf[2048], *seg[MAX_SEGS], *save = NULL;
	size_t n = 0;
	int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
	result res;

	if (strlen(url) >= sizeof buf)
		return mq_srv_error(q, c, 414, MQ_EUSAGE, "URI too long");
	/* names never hold '/' or NUL: encoded ones in the path (which
	 * libmicrohttpd has decoded by now) would change which name is meant */
	const char *raw = strchr(q->line, ' ');
	size_t rawlen = raw ? strcspn(raw + 1, "? ") : 0;
	for (size_t i = 0; raw && i + 3 <= rawlen; i++)
		if (raw[1 + i] == '%' && (!strncasecmp(raw + 2 + i, "2f", 2) || !strncmp(raw + 2 + i, "00", 2) ||
					  !strncasecmp(raw + 2 + i, "5c", 2)))
			return mq_srv_error(q, c, 400, MQ_EUSAGE, "invalid name: an encoded '/', '\\' or NUL");
	strcpy(buf, url);
	for (char *p = strtok_r(buf, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
		if (n == MAX_SEGS)
			return mq_srv_error(q, c, 404, MQ_ENOTFOUND, "no such endpoint");
		seg[n++] = p;
	}
	if (n == 1 && !strcmp(seg[0], "healthz") && get) {
		q->bytes = 3;
		return mq_srv_reply(q, c, 200, MHD_create_response_from_buffer(3, "ok\n", MHD_RESPMEM_PERSISTENT));
	}
	if (n == 1 && !strcmp(seg[0], "metrics") && get) {
		if (mq_srv_allowed(q, c, 0, NULL, &res) < 0)
			return res;
		return mq_srv_metrics(q, c);
	}
	if (n < 2 || strcmp(seg[0], "v1"))
		return mq_srv_error(q, c, 404, MQ_ENOTFOUND, "no such endpoint");
	if (!strcmp(seg[1], "topics")) {
		if (n >= 3 && mq_topic_name_check(seg[2]) < 0)
			return mq_srv_fail(q, c);
		if (n == 2 && get) {
			char **names;
			size_t k;
			if (mq_srv_allowed(q, c, 0, NULL, &res) < 0)
				return res;
			if (mq_topic_list(q->s->o.datadir, &names, &k) < 0)
				return mq_srv_fail(q, c);
			json_t *a = json_array();
			for (size_t i = 0; i < k; i++)
				if (mq_srv_may(q, 0, names[i]))
					json_array_append_new(a, json_string(names[i]));
			mq_strv_free(names, k);
			return mq_srv_json(q, c, 200, json_pack("{s:o}", "topics", a));
		}
		if (n == 3)
			return topic(q, c, seg[2], method);
		if (n == 4 && !strcmp(seg[3], "records") && !strcmp(method, "POST"))
			return mq_srv_produce(q, c, seg[2], NULL);
		if ((n == 5 || n == 6) && !strcmp(seg[3], "partitions"))
			return partition(q, c, seg[2], seg[4], n == 6 ? seg[5] : NULL, method);
	} else if (!strcmp(seg[1], "wait") && n == 2 && !strcmp(method, "POST")) {
		return wait_any(q, c);
	} else if (!strcmp(seg[1], "groups") || !strcmp(seg[1], "lag")) {
		return mq_srv_groups(q, c, seg + 1, n - 1, method);
	}
	return mq_srv_error(q, c, 404, MQ_ENOTFOUND, "no such endpoint");
}
