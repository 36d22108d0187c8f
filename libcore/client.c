/*
 * client.c: the /v1 requests of mq-serve's API (see mq-serve(1)), made
 * on behalf of topic.c, producer.c, consumer.c, group.c and lag.c when
 * their data directory is an address (remote.c).  Each function is the
 * remote twin of a local one and fails the same way: a missing topic is
 * MQ_ENOTFOUND here as there.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mq.h"

/* "/v1/topics/NAME" and friends, escaped, into b (NUL-terminated). */
static int path(struct mq_buf *b, const char *fmt, ...)
{
	va_list ap;

	b->len = 0;
	va_start(ap, fmt);
	for (const char *f = fmt; *f; f++) {
		if (*f != '%') {
			mq_buf_append(b, f, 1);
			continue;
		}
		f++;
		char num[32];
		if (*f == 's') {
			mq_url_escape(b, va_arg(ap, const char *));
		} else if (*f == 'd') {
			snprintf(num, sizeof num, "%d", va_arg(ap, int));
			mq_buf_append(b, num, strlen(num));
		} else if (*f == 'L') {
			snprintf(num, sizeof num, "%lld", (long long)va_arg(ap, int64_t));
			mq_buf_append(b, num, strlen(num));
		}
	}
	va_end(ap);
	return mq_buf_append(b, "", 1) < 0 ? mq_syserr("out of memory") : 0;
}

/* One request with a JSON answer: 0 and *out (may be NULL for an empty
 * body) on 2xx, -1 with the error set otherwise. */
static int call(struct mq_remote *r, const char *method, const char *p, json_t *body,
		int flags, json_t **out)
{
	struct mq_response resp = { 0 };
	char *text = NULL;
	int rc = -1;

	if (out)
		*out = NULL;
	if (body && !(text = json_dumps(body, JSON_COMPACT)))
		return mq_syserr("out of memory");
	if (mq_remote_request(r, method, p, text ? "application/json" : NULL, text,
			      text ? strlen(text) : 0, flags, 120000, &resp) < 0)
		goto out;
	if (resp.status < 200 || resp.status > 299) {
		mq_remote_fail(r, method, p, &resp);
		goto out;
	}
	if (out && resp.body.len) {
		json_error_t e;
		if (!(*out = json_loadb((const char *)resp.body.p, resp.body.len, 0, &e))) {
			mq_error(MQ_EREMOTE, "%s: %s %s: bad answer: %s", mq_remote_addr(r), method, p,
				 e.text);
			goto out;
		}
	}
	rc = 0;
out:
	free(text);
	mq_response_free(&resp);
	return rc;
}

static int64_t jint(json_t *o, const char *key, int64_t dflt)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

static json_t *config_json(const struct mq_config *c)
{
	json_t *o = json_object();
	char val[64];

	for (size_t i = 0; mq_config_keys[i]; i++)
		if (mq_config_get(c, mq_config_keys[i], val, sizeof val) == 0)
			json_object_set_new(o, mq_config_keys[i], json_string(val));
	return o;
}

/* ---- topics ---- */

int mq_client_topic_open(const char *addr, const char *name, struct mq_topic *t)
{
	struct mq_remote *r;
	struct mq_buf p = { 0 };
	json_t *j = NULL, *conf;
	const char *k;
	json_t *v;
	int rc = -1;

	memset(t, 0, sizeof *t);
	if (mq_remote_get(addr, &r) < 0 || path(&p, "/v1/topics/%s", name) < 0 ||
	    call(r, "GET", (char *)p.p, NULL, MQ_REQ_IDEMPOTENT, &j) < 0)
		goto out;
	mq_config_default(&t->conf);
	conf = json_object_get(j, "config");
	json_object_foreach(conf, k, v)
		if (json_is_string(v) && mq_config_set(&t->conf, k, json_string_value(v)) < 0)
			goto out;
	if (!(t->name = strdup(name)) || !(t->dir = strdup(addr))) {
		mq_syserr("cannot open topic '%s'", name);
		goto out;
	}
	t->remote = r;
	rc = 0;
out:
	if (rc < 0) {
		free(t->name);
		free(t->dir);
		t->name = t->dir = NULL;
	}
	json_decref(j);
	mq_buf_free(&p);
	return rc;
}

int mq_client_topic_list(const char *addr, char ***names, size_t *n)
{
	struct mq_remote *r;
	json_t *j = NULL, *a;
	size_t i;

	*names = NULL;
	*n = 0;
	if (mq_remote_get(addr, &r) < 0 || call(r, "GET", "/v1/topics", NULL, MQ_REQ_IDEMPOTENT, &j) < 0)
		return -1;
	a = json_object_get(j, "topics");
	if (!(*names = calloc(json_array_size(a) + 1, sizeof **names))) {
		json_decref(j);
		return mq_syserr("cannot list topics");
	}
	for (i = 0; i < json_array_size(a); i++)
		if (json_is_string(json_array_get(a, i)))
			(*names)[(*n)++] = strdup(json_string_value(json_array_get(a, i)));
	json_decref(j);
	return 0;
}

int mq_client_topic_create(const char *addr, const char *name, const struct mq_config *conf)
{
	struct mq_remote *r;
	struct mq_buf p = { 0 };
	json_t *body = json_object();
	int rc;

	if (conf)
		json_object_set_new(body, "config", config_json(conf));
	rc = mq_remote_get(addr, &r) < 0 || path(&p, "/v1/topics/%s", name) < 0 ||
	     call(r, "PUT", (char *)p.p, body, 0, NULL) < 0 ? -1 : 0;
	json_decref(body);
	mq_buf_free(&p);
	return rc;
}

int mq_client_topic_alter(struct mq_topic *t, const struct mq_config *conf)
{
	struct mq_buf p = { 0 };
	json_t *body = json_object();
	int rc;

	json_object_set_new(body, "config", config_json(conf));
	rc = path(&p, "/v1/topics/%s", t->name) < 0 ||
	     call(t->remote, "PATCH", (char *)p.p, body, 0, NULL) < 0 ? -1 : 0;
	if (rc == 0)
		t->conf = *conf;
	json_decref(body);
	mq_buf_free(&p);
	return rc;
}

int mq_client_topic_delete(const char *addr, const char *name)
{
	struct mq_remote *r;
	struct mq_buf p = { 0 };
	int rc;

	rc = mq_remote_get(addr, &r) < 0 || path(&p, "/v1/topics/%s", name) < 0 ||
	     call(r, "DELETE", (char *)p.p, NULL, 0, NULL) < 0 ? -1 : 0;
	mq_buf_free(&p);
	return rc;
}

static void info_from_json(json_t *o, struct mq_partition_info *pi)
{
	pi->log_start = jint(o, "log_start", 0);
	pi->log_end = jint(o, "log_end", 0);
	pi->high_watermark = jint(o, "high_watermark", pi->log_end);
	pi->bytes = jint(o, "bytes", 0);
	pi->first_timestamp = jint(o, "first_timestamp", -1);
	pi->last_timestamp = jint(o, "last_timestamp", -1);
	pi->nsegments = (size_t)jint(o, "segments", 0);
}

int mq_client_partition_info(const struct mq_topic *t, int32_t part, struct mq_partition_info *pi)
{
	struct mq_buf p = { 0 };
	json_t *j = NULL;
	int rc = -1;

	if (path(&p, "/v1/topics/%s/partitions/%d", t->name, part) == 0 &&
	    call(t->remote, "GET", (char *)p.p, NULL, MQ_REQ_IDEMPOTENT, &j) == 0) {
		info_from_json(j, pi);
		rc = 0;
	}
	json_decref(j);
	mq_buf_free(&p);
	return rc;
}

int mq_client_replicas(const struct mq_topic *t, int32_t part, struct mq_replica **out, size_t *n)
{
	struct mq_buf p = { 0 };
	json_t *j = NULL, *a;
	int rc = -1;

	*out = NULL;
	*n = 0;
	if (path(&p, "/v1/topics/%s/partitions/%d", t->name, part) == 0 &&
	    call(t->remote, "GET", (char *)p.p, NULL, MQ_REQ_IDEMPOTENT, &j) == 0) {
		a = json_object_get(j, "replicas");
		if ((*out = calloc(json_array_size(a) + 1, sizeof **out))) {
			for (size_t i = 0; i < json_array_size(a); i++) {
				json_t *e = json_array_get(a, i);
				const char *id = json_string_value(json_object_get(e, "id"));
				struct mq_replica *r = &(*out)[(*n)++];
				snprintf(r->id, sizeof r->id, "%s", id ? id : "");
				r->position = jint(e, "position", -1);
				r->time = jint(e, "time", -1);
				r->in_sync = json_is_true(json_object_get(e, "in_sync"));
			}
			rc = 0;
		} else {
			mq_syserr("cannot describe '%s'", t->name);
		}
	}
	json_decref(j);
	mq_buf_free(&p);
	return rc;
}

int mq_client_offset_for_time(const struct mq_topic *t, int32_t part, int64_t ts, int64_t *off)
{
	struct mq_buf p = { 0 };
	json_t *j = NULL;
	int rc = -1;

	if (path(&p, "/v1/topics/%s/partitions/%d/offset?time=%L", t->name, part, ts) == 0 &&
	    call(t->remote, "GET", (char *)p.p, NULL, MQ_REQ_IDEMPOTENT, &j) == 0) {
		*off = jint(j, "offset", 0);
		rc = 0;
	}
	json_decref(j);
	mq_buf_free(&p);
	return rc;
}

/* ---- records ---- */

int mq_client_produce(const struct mq_topic *t, int32_t part, const uint8_t *buf, size_t len,
		      int flags, int64_t timeout_ms, int64_t *first)
{
	struct mq_buf p = { 0 };
	struct mq_response resp = { 0 };
	json_t *j = NULL, *res;
	int rc = -1;

	if (path(&p, "/v1/topics/%s/partitions/%d/records?fsync=%d&acks=%s&timeout_ms=%L", t->name, part,
		 flags & MQ_PRODUCE_FSYNC ? 1 : 0, flags & MQ_PRODUCE_ACKS_ALL ? "all" : "1", timeout_ms) < 0)
		return -1;
	if (mq_remote_request(t->remote, "POST", (char *)p.p, "application/vnd.kafka.batch", buf, len,
			      0, 0, &resp) < 0)
		goto out;
	if (resp.status != 200) {
		mq_remote_fail(t->remote, "POST", (char *)p.p, &resp);
		goto out;
	}
	j = json_loadb((const char *)resp.body.p, resp.body.len, 0, NULL);
	res = json_array_get(json_object_get(j, "results"), 0);
	if (!res) {
		mq_error(MQ_EREMOTE, "%s: POST %s: bad answer", mq_remote_addr(t->remote), (char *)p.p);
		goto out;
	}
	*first = jint(res, "offset", -1);
	rc = 0;
out:
	json_decref(j);
	mq_response_free(&resp);
	mq_buf_free(&p);
	return rc;
}

int mq_client_fetch(const struct mq_topic *t, int32_t part, int64_t offset, int64_t max_bytes,
		    int64_t wait_ms, const char *replica, int64_t position, struct mq_response *resp)
{
	struct mq_buf p = { 0 };
	int rc;

	if (path(&p, "/v1/topics/%s/partitions/%d/batches?offset=%L&max_bytes=%L&wait_ms=%L",
		 t->name, part, offset, max_bytes, wait_ms) < 0)
		return -1;
	if (replica) {
		char pos[40] = "";
		if (position >= 0 && position != offset)
			snprintf(pos, sizeof pos, "&position=%lld", (long long)position);
		p.len--;
		mq_buf_append(&p, "&replica=", 9);
		mq_url_escape(&p, replica);
		mq_buf_append(&p, pos, strlen(pos) + 1);
	}
	rc = mq_remote_request(t->remote, "GET", (char *)p.p, NULL, NULL, 0, MQ_REQ_IDEMPOTENT,
			       wait_ms + 120000, resp);
	if (rc == 0 && resp->status != 200)
		rc = mq_remote_fail(t->remote, "GET", (char *)p.p, resp);
	mq_buf_free(&p);
	return rc;
}

int mq_client_wait(struct mq_remote *r, const struct mq_tp *tps, const int64_t *offsets, size_t n,
		   int64_t wait_ms, const char *replica)
{
	struct mq_buf p = { 0 };
	json_t *body = json_object(), *a = json_array(), *j = NULL;
	int rc;

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:s,s:i,s:I}", "topic", tps[i].topic, "partition",
						   tps[i].partition, "offset", (json_int_t)offsets[i]));
	json_object_set_new(body, "partitions", a);
	rc = path(&p, replica ? "/v1/wait?wait_ms=%L&replica=%s" : "/v1/wait?wait_ms=%L", wait_ms,
		  replica) < 0 ||
	     call(r, "POST", (char *)p.p, body, MQ_REQ_IDEMPOTENT, &j) < 0 ? -1 : 0;
	json_decref(body);
	json_decref(j);
	mq_buf_free(&p);
	return rc;
}

/* ---- groups ---- */

int mq_client_group_committed(const char *addr, const char *group, const char *topic, int32_t part,
			      int64_t *offset)
{
	struct mq_remote *r;
	struct mq_buf p = { 0 };
	json_t *j = NULL, *a;
	int rc = -1;

	if (mq_remote_get(addr, &r) < 0 || path(&p, "/v1/groups/%s/offsets/%s", group, topic) < 0 ||
	    call(r, "GET", (char *)p.p, NULL, MQ_REQ_IDEMPOTENT, &j) < 0)
		goto out;
	rc = 0;
	a = json_object_get(j, "partitions");
	for (size_t i = 0; i < json_array_size(a); i++)
		if (jint(json_array_get(a, i), "partition", -1) == part) {
			*offset = jint(json_array_get(a, i), "offset", 0);
			rc = 1;
		}
out:
	json_decref(j);
	mq_buf_free(&p);
	return rc;
}

static json_t *commits_json(const struct mq_commit_req *c, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:s,s:i,s:I,s:I}", "topic", c[i].topic, "partition",
						   c[i].partition, "offset", (json_int_t)c[i].offset,
						   "end", (json_int_t)c[i].end));
	return a;
}

int mq_client_group_commit_many(const char *addr, const char *group,
				const struct mq_commit_req *c, size_t n)
{
	struct mq_remote *r;
	struct mq_buf p = { 0 };
	json_t *body;
	int rc;

	if (n == 0)
		return 0;
	body = json_pack("{s:o}", "commits", commits_json(c, n));
	rc = mq_remote_get(addr, &r) < 0 || path(&p, "/v1/groups/%s/offsets", group) < 0 ||
	     call(r, "POST", (char *)p.p, body, MQ_REQ_IDEMPOTENT, NULL) < 0 ? -1 : 0;
	json_decref(body);
	mq_buf_free(&p);
	return rc;
}

int mq_client_group_heartbeat(const char *addr, const char *group, const char *member,
			      const struct mq_tp *tps, size_t n, int64_t session_ms,
			      const struct mq_commit_req *c, size_t nc,
			      int32_t *assigned, size_t *nassigned)
{
	struct mq_remote *r;
	struct mq_buf p = { 0 };
	json_t *a = json_array(), *body, *j = NULL, *as;
	int rc = -1;

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:s,s:i}", "topic", tps[i].topic, "partition",
						   tps[i].partition));
	body = json_pack("{s:o,s:I,s:o}", "partitions", a, "session_timeout_ms", (json_int_t)session_ms,
			 "commits", commits_json(c, nc));
	if (mq_remote_get(addr, &r) < 0 || path(&p, "/v1/groups/%s/members/%s", group, member) < 0 ||
	    call(r, "POST", (char *)p.p, body, 0, &j) < 0)
		goto out;
	/* assigned[i] is 1 when tps[i] is ours */
	memset(assigned, 0, n * sizeof *assigned);
	*nassigned = 0;
	as = json_object_get(j, "assigned");
	for (size_t k = 0; k < json_array_size(as); k++) {
		json_t *e = json_array_get(as, k);
		const char *topic = json_string_value(json_object_get(e, "topic"));
		int64_t part = jint(e, "partition", -1);
		for (size_t i = 0; topic && i < n; i++)
			if (tps[i].partition == part && !strcmp(tps[i].topic, topic) && !assigned[i]) {
				assigned[i] = 1;
				(*nassigned)++;
			}
	}
	rc = 0;
out:
	json_decref(body);
	json_decref(j);
	mq_buf_free(&p);
	return rc;
}

int mq_client_group_leave(const char *addr, const char *group, const char *member)
{
	struct mq_remote *r;
	struct mq_buf p = { 0 };
	int rc;

	rc = mq_remote_get(addr, &r) < 0 || path(&p, "/v1/groups/%s/members/%s", group, member) < 0 ||
	     call(r, "DELETE", (char *)p.p, NULL, MQ_REQ_IDEMPOTENT, NULL) < 0 ? -1 : 0;
	mq_buf_free(&p);
	return rc;
}

/* ---- lag ---- */

int mq_client_lag(const char *addr, char *const *groups, size_t ngroups,
		  const struct mq_lag_opts *o, struct mq_lag_report *rep)
{
	struct mq_remote *r;
	struct mq_buf p = { 0 };
	json_t *j = NULL, *rows;
	int rc = -1;

	memset(rep, 0, sizeof *rep);
	if (mq_remote_get(addr, &r) < 0 ||
	    path(&p, "/v1/lag?window_ms=%L&allowed_lag=%L", o->window_ms, o->allowed_lag) < 0)
		goto out;
	p.len--;
	for (size_t i = 0; i < ngroups; i++) {
		mq_buf_append(&p, "&group=", 7);
		mq_url_escape(&p, groups[i]);
	}
	if (o->topic) {
		mq_buf_append(&p, "&topic=", 7);
		mq_url_escape(&p, o->topic);
	}
	if (mq_buf_append(&p, "", 1) < 0 || call(r, "GET", (char *)p.p, NULL, MQ_REQ_IDEMPOTENT, &j) < 0)
		goto out;
	rows = json_object_get(j, "rows");
	if (!(rep->rows = calloc(json_array_size(rows) + 1, sizeof *rep->rows))) {
		mq_syserr("cannot gather lag");
		goto out;
	}
	rep->cap = json_array_size(rows) + 1;
	for (size_t i = 0; i < json_array_size(rows); i++) {
		json_t *e = json_array_get(rows, i);
		struct mq_lag_row *w = &rep->rows[rep->n++];
		const char *s;
		snprintf(w->group, sizeof w->group, "%s", (s = json_string_value(json_object_get(e, "group"))) ? s : "");
		snprintf(w->topic, sizeof w->topic, "%s", (s = json_string_value(json_object_get(e, "topic"))) ? s : "");
		snprintf(w->owner, sizeof w->owner, "%s", (s = json_string_value(json_object_get(e, "owner"))) ? s : "");
		w->partition = (int32_t)jint(e, "partition", 0);
		w->committed = jint(e, "committed", -1);
		w->start = jint(e, "start", 0);
		w->end = jint(e, "end", 0);
		w->lag = jint(e, "lag", 0);
		w->age_ms = jint(e, "age_ms", -1);
		w->last_commit = jint(e, "last_commit", -1);
		w->rate = json_number_value(json_object_get(e, "rate"));
		w->members = (int)jint(e, "members", 0);
		w->status = MQ_LAG_OK;
		s = json_string_value(json_object_get(e, "status"));
		for (int st = MQ_LAG_OK; s && st <= MQ_LAG_STOP; st++)
			if (!strcmp(s, mq_lag_status_name(st)))
				w->status = st;
	}
	rc = 0;
out:
	json_decref(j);
	mq_buf_free(&p);
	return rc;
}
