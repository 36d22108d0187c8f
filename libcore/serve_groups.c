/*
 * serve_groups.c: mq-serve's consumer-group, lag and metrics requests.
 *
 * A remote consumer joins a group by heartbeating
 * (POST /v1/groups/G/members/ID): the first heartbeat opens a real
 * membership here (group.c: an flock'd member file held by this
 * process), each one commits what the consumer delivered, then
 * rebalances and answers with the partitions the member owns now.
 * Committing before rebalancing means a partition moves to another
 * member only after what was delivered from it is committed.  A member
 * that stops heartbeating for its session timeout is closed by the
 * watchdog, which releases its partitions to the others exactly as the
 * kernel does for a local consumer that dies.  A commit of partitions a
 * member owns counts as a heartbeat, so that a long --exec batch, which
 * commits but does not come back for the next batch, keeps them.  The membership names the
 * consumer (the pid and host in its member ID) as the owner of what it
 * holds, as a local member's names itself.
 *
 * Group requests are reads as far as tokens go (a read-only token may
 * consume in a group, as Kafka's READ on a group allows), but a
 * --read-only server writes nothing, group state included.
 */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve_priv.h"

#define SESSION_DEFAULT_MS 10000
#define SESSION_MIN_MS 1000
#define SESSION_MAX_MS 300000

typedef enum MHD_Result result;

static int64_t jint(json_t *o, const char *k, int64_t dflt)
{
	json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

/* Commit requests from a JSON array; topics point into the JSON. */
static int parse_commits(struct srv_req *q, struct MHD_Connection *c, json_t *a,
			 struct mq_commit_req **out, size_t *n, result *res)
{
	size_t k = json_array_size(a);

	*n = 0;
	if (!(*out = calloc(k + 1, sizeof **out)))
		return mq_syserr("cannot commit");
	for (size_t i = 0; i < k; i++) {
		json_t *e = json_array_get(a, i);
		const char *t = json_string_value(json_object_get(e, "topic"));
		int64_t p = jint(e, "partition", -1), off = jint(e, "offset", -1);
		if (!t || p < 0 || p > INT32_MAX || off < 0) {
			*res = mq_srv_error(q, c, 400, MQ_EUSAGE, "invalid commit");
			return -1;
		}
		if (mq_topic_name_check(t) < 0) {
			*res = mq_srv_fail(q, c);
			return -1;
		}
		if (mq_srv_allowed(q, c, 0, t, res) < 0)
			return -1;
		(*out)[(*n)++] = (struct mq_commit_req){ t, (int32_t)p, off, jint(e, "end", off) };
	}
	return 0;
}

static json_t *body_json(struct srv_req *q)
{
	return q->body.len ? json_loadb((const char *)q->body.p, q->body.len, 0, NULL) : json_object();
}

static result offsets_get(struct srv_req *q, struct MHD_Connection *c, const char *group,
			  const char *topic)
{
	struct mq_group_offsets go;
	struct mq_topic t;
	json_t *a;
	result res;

	if (mq_topic_name_check(topic) < 0)
		return mq_srv_fail(q, c);
	if (mq_srv_allowed(q, c, 0, topic, &res) < 0)
		return res;
	if (mq_topic_open(q->s->o.datadir, topic, &t) < 0)
		return mq_srv_fail(q, c);
	if (mq_group_offsets_load(q->s->o.datadir, group, topic, &go) < 0) {
		mq_topic_close(&t);
		return mq_srv_fail(q, c);
	}
	a = json_array();
	for (int32_t p = 0; p < t.conf.partitions; p++) {
		const struct mq_commit *h;
		size_t n = mq_group_offsets_get(&go, p, &h);
		if (n)
			json_array_append_new(a, json_pack("{s:i,s:I,s:I,s:I}", "partition", p, "offset",
							   (json_int_t)h[n - 1].offset, "time",
							   (json_int_t)h[n - 1].time, "end", (json_int_t)h[n - 1].end));
	}
	mq_group_offsets_free(&go);
	mq_topic_close(&t);
	return mq_srv_json(q, c, 200, json_pack("{s:o}", "partitions", a));
}

/* A member committing is alive (a long --exec batch heartbeats no other
 * way): the owners of the partitions committed keep their session. */
static void refresh_owners(struct srv *s, const char *group, const struct mq_commit_req *r, size_t n)
{
	int64_t now = mq_mono_ms();

	pthread_mutex_lock(&s->groups_lock);
	for (struct srv_member *m = s->members; m; m = m->next) {
		size_t owned;
		struct mq_tp *tps;
		if (strcmp(m->group, group) || !(owned = mq_group_owned(m->g, NULL, 0)) ||
		    !(tps = calloc(owned, sizeof *tps)))
			continue;
		owned = mq_group_owned(m->g, tps, owned);
		for (size_t i = 0; i < owned; i++)
			for (size_t k = 0; k < n; k++)
				if (tps[i].partition == r[k].partition && !strcmp(tps[i].topic, r[k].topic))
					m->last = now;
		free(tps);
	}
	pthread_mutex_unlock(&s->groups_lock);
}

static result offsets_post(struct srv_req *q, struct MHD_Connection *c, const char *group)
{
	struct mq_commit_req *r = NULL;
	size_t n;
	json_t *j = body_json(q);
	result res;

	if (!j)
		return mq_srv_error(q, c, 400, MQ_EUSAGE, "invalid JSON body");
	if (parse_commits(q, c, json_object_get(j, "commits"), &r, &n, &res) < 0) {
		free(r);
		json_decref(j);
		return res;
	}
	int rc = mq_group_commit_many(q->s->o.datadir, group, r, n);
	if (rc == 0)
		refresh_owners(q->s, group, r, n);
	free(r);
	json_decref(j);
	if (rc < 0)
		return mq_srv_fail(q, c);
	return mq_srv_reply(q, c, 204, MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT));
}

/* ---- members ---- */

static void member_free(struct srv_member *m)
{
	mq_group_close(m->g);
	for (size_t i = 0; i < m->nsubs; i++)
		free((char *)m->subs[i].topic);
	free(m->subs);
	free(m);
}

void mq_srv_expire_members(struct srv *s, int64_t now, int all)
{
	struct srv_member **pp = &s->members;

	pthread_mutex_lock(&s->groups_lock);
	while (*pp) {
		struct srv_member *m = *pp;
		if (all || now - m->last > m->timeout) {
			*pp = m->next;
			member_free(m);
		} else {
			pp = &m->next;
		}
	}
	pthread_mutex_unlock(&s->groups_lock);
}

/* Takes the subscription from the body unless it is the one held. */
static int subscribe(struct srv_member *m, json_t *a)
{
	size_t n = json_array_size(a), same = n == m->nsubs;
	struct mq_tp *subs;

	for (size_t i = 0; same && i < n; i++) {
		json_t *e = json_array_get(a, i);
		const char *t = json_string_value(json_object_get(e, "topic"));
		same = t && !strcmp(t, m->subs[i].topic) && jint(e, "partition", -1) == m->subs[i].partition;
	}
	if (same && m->subs)
		return 0;
	if (!(subs = calloc(n + 1, sizeof *subs)))
		return mq_syserr("cannot join group");
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(a, i);
		const char *t = json_string_value(json_object_get(e, "topic"));
		int64_t p = jint(e, "partition", -1);
		if (!t || mq_topic_name_check(t) < 0 || p < 0 || p > INT32_MAX) {
			for (size_t k = 0; k < i; k++)
				free((char *)subs[k].topic);
			free(subs);
			return mq_error(MQ_EUSAGE, "invalid partition list");
		}
		subs[i] = (struct mq_tp){ strdup(t), (int32_t)p };
	}
	if (mq_group_subscribe(m->g, subs, n) < 0) {
		for (size_t k = 0; k < n; k++)
			free((char *)subs[k].topic);
		free(subs);
		return -1;
	}
	for (size_t i = 0; i < m->nsubs; i++)
		free((char *)m->subs[i].topic);
	free(m->subs);
	m->subs = subs;
	m->nsubs = n;
	return 0;
}

static result heartbeat(struct srv_req *q, struct MHD_Connection *c, const char *group,
			const char *id)
{
	struct srv *s = q->s;
	struct srv_member *m;
	struct mq_commit_req *r = NULL;
	size_t n;
	json_t *j = body_json(q), *a;
	result res;
	int64_t now = mq_mono_ms();

	if (!j)
		return mq_srv_error(q, c, 400, MQ_EUSAGE, "invalid JSON body");
	a = json_object_get(j, "partitions");
	for (size_t i = 0; i < json_array_size(a); i++) {
		const char *t = json_string_value(json_object_get(json_array_get(a, i), "topic"));
		if (t && mq_srv_allowed(q, c, 0, t, &res) < 0) {
			json_decref(j);
			return res;
		}
	}
	if (parse_commits(q, c, json_object_get(j, "commits"), &r, &n, &res) < 0) {
		free(r);
		json_decref(j);
		return res;
	}
	pthread_mutex_lock(&s->groups_lock);
	for (m = s->members; m; m = m->next)
		if (!strcmp(m->group, group) && !strcmp(m->id, id))
			break;
	if (!m) {
		if (!(m = calloc(1, sizeof *m)) ||
		    mq_group_open_member(&m->g, s->o.datadir, group, id) < 0) {
			if (m)
				free(m);
			else
				mq_syserr("cannot join group '%s'", group);
			goto fail;
		}
		snprintf(m->group, sizeof m->group, "%s", group);
		snprintf(m->id, sizeof m->id, "%s", id);
		m->next = s->members;
		s->members = m;
	}
	m->last = now;
	m->timeout = jint(j, "session_timeout_ms", SESSION_DEFAULT_MS);
	if (m->timeout < SESSION_MIN_MS)
		m->timeout = SESSION_MIN_MS;
	if (m->timeout > SESSION_MAX_MS)
		m->timeout = SESSION_MAX_MS;
	if (mq_group_commit_many(s->o.datadir, group, r, n) < 0 || subscribe(m, a) < 0 ||
	    mq_group_rebalance(m->g, 1, NULL, NULL, NULL) < 0)
		goto fail;
	size_t owned = mq_group_owned(m->g, NULL, 0);
	struct mq_tp *tps = calloc(owned + 1, sizeof *tps);
	json_t *as = json_array();
	if (tps) {
		owned = mq_group_owned(m->g, tps, owned);
		for (size_t i = 0; i < owned; i++)
			json_array_append_new(as, json_pack("{s:s,s:i}", "topic", tps[i].topic, "partition",
							    tps[i].partition));
	}
	free(tps);
	pthread_mutex_unlock(&s->groups_lock);
	free(r);
	json_decref(j);
	return mq_srv_json(q, c, 200, json_pack("{s:o}", "assigned", as));
fail:
	pthread_mutex_unlock(&s->groups_lock);
	free(r);
	json_decref(j);
	return mq_srv_fail(q, c);
}

static result leave(struct srv_req *q, struct MHD_Connection *c, const char *group, const char *id)
{
	struct srv *s = q->s;
	struct srv_member **pp;

	pthread_mutex_lock(&s->groups_lock);
	for (pp = &s->members; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->group, group) && !strcmp((*pp)->id, id)) {
			struct srv_member *m = *pp;
			*pp = m->next;
			member_free(m);
			break;
		}
	pthread_mutex_unlock(&s->groups_lock);
	return mq_srv_reply(q, c, 204, MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT));
}

/* ---- lag ---- */

struct groups_arg {
	char *v[64];
	size_t n;
};

static enum MHD_Result collect_group(void *cls, enum MHD_ValueKind kind, const char *key,
				     const char *value)
{
	struct groups_arg *g = cls;

	(void)kind;
	if (!strcmp(key, "group") && value && g->n < 64)
		g->v[g->n++] = (char *)value;
	return MHD_YES;
}

static json_t *lag_rows(struct srv_req *q, const struct mq_lag_report *rep)
{
	json_t *a = json_array();

	for (size_t i = 0; i < rep->n; i++) {
		const struct mq_lag_row *w = &rep->rows[i];
		if (!mq_srv_may(q, 0, w->topic))
			continue;   /* a token limited to some topics sees only those */
		json_array_append_new(a, json_pack(
			"{s:s,s:s,s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:s,s:i,s:s}",
			"group", w->group, "topic", w->topic, "partition", w->partition,
			"committed", (json_int_t)w->committed, "start", (json_int_t)w->start,
			"end", (json_int_t)w->end, "lag", (json_int_t)w->lag, "age_ms", (json_int_t)w->age_ms,
			"last_commit", (json_int_t)w->last_commit, "rate", w->rate,
			"status", mq_lag_status_name(w->status), "members", w->members, "owner", w->owner));
	}
	return a;
}

static result lag(struct srv_req *q, struct MHD_Connection *c)
{
	struct groups_arg g = { .n = 0 };
	struct mq_lag_report rep;
	const char *v;
	struct mq_lag_opts o = { .window_ms = 600000 };
	result res;

	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_group, &g);
	for (size_t i = 0; i < g.n; i++)
		if (mq_group_name_check(g.v[i]) < 0)
			return mq_srv_fail(q, c);
	if ((v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "topic"))) {
		if (mq_topic_name_check(v) < 0)
			return mq_srv_fail(q, c);
		o.topic = v;
	}
	if (mq_srv_allowed(q, c, 0, o.topic, &res) < 0)
		return res;
	if ((v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "window_ms")))
		o.window_ms = strtoll(v, NULL, 10);
	if ((v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "allowed_lag")))
		o.allowed_lag = strtoll(v, NULL, 10);
	if (mq_lag_gather(q->s->o.datadir, g.v, g.n, &o, &rep) < 0)
		return mq_srv_fail(q, c);
	json_t *rows = lag_rows(q, &rep);
	mq_lag_report_free(&rep);
	return mq_srv_json(q, c, 200, json_pack("{s:o}", "rows", rows));
}

enum MHD_Result mq_srv_groups(struct srv_req *q, struct MHD_Connection *c, char **seg, size_t n,
			      const char *method)
{
	int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
	result res;

	if (!strcmp(seg[0], "lag"))
		return n == 1 && get ? lag(q, c) : mq_srv_error(q, c, 404, MQ_ENOTFOUND, "no such endpoint");
	if (n == 1 && get) {
		char **names;
		size_t k;
		if (mq_srv_allowed(q, c, 0, NULL, &res) < 0)
			return res;
		if (mq_group_list(q->s->o.datadir, &names, &k) < 0)
			return mq_srv_fail(q, c);
		json_t *a = json_array();
		for (size_t i = 0; i < k; i++)
			json_array_append_new(a, json_string(names[i]));
		mq_strv_free(names, k);
		return mq_srv_json(q, c, 200, json_pack("{s:o}", "groups", a));
	}
	if (n < 3 || mq_group_name_check(seg[1]) < 0)
		return n < 3 ? mq_srv_error(q, c, 404, MQ_ENOTFOUND, "no such endpoint") : mq_srv_fail(q, c);
	if (!get && q->s->o.read_only)
		return mq_srv_error(q, c, 403, 0, "read-only server");
	if (mq_srv_allowed(q, c, 0, NULL, &res) < 0)
		return res;
	if (!strcmp(seg[2], "offsets")) {
		if (n == 4 && get)
			return offsets_get(q, c, seg[1], seg[3]);
		if (n == 3 && post)
			return offsets_post(q, c, seg[1]);
	} else if (!strcmp(seg[2], "members") && n == 4) {
		if (mq_group_name_check(seg[3]) < 0)
			return mq_srv_fail(q, c);
		if (post)
			return heartbeat(q, c, seg[1], seg[3]);
		if (!strcmp(method, "DELETE"))
			return leave(q, c, seg[1], seg[3]);
	}
	return mq_srv_error(q, c, 404, MQ_ENOTFOUND, "no such endpoint");
}

/* ---- metrics ---- */

static void line(struct mq_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(struct mq_buf *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n > 0)
		mq_buf_append(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

enum MHD_Result mq_srv_metrics(struct srv_req *q, struct MHD_Connection *c)
{
	struct srv *s = q->s;
	struct mq_buf b = { 0 };
	char **names = NULL, dir[PATH_MAX];
	size_t nt = 0;
	static const char *cls[] = { "other", "1xx", "2xx", "3xx", "4xx", "5xx" };

	pthread_mutex_lock(&s->lock);
	line(&b, "# HELP mq_serve_requests_total Requests answered, by status class.\n"
		 "# TYPE mq_serve_requests_total counter\n");
	for (int i = 1; i < 6; i++)
		line(&b, "mq_serve_requests_total{code=\"%s\"} %llu\n", cls[i],
		     (unsigned long long)s->by_status[i]);
	line(&b, "# HELP mq_serve_bytes_in_total Request body bytes received.\n"
		 "# TYPE mq_serve_bytes_in_total counter\nmq_serve_bytes_in_total %llu\n"
		 "# HELP mq_serve_bytes_out_total Response body bytes sent.\n"
		 "# TYPE mq_serve_bytes_out_total counter\nmq_serve_bytes_out_total %llu\n"
		 "# HELP mq_serve_connections Open connections.\n"
		 "# TYPE mq_serve_connections gauge\nmq_serve_connections %u\n",
		 (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out, s->nconns);
	pthread_mutex_unlock(&s->lock);
	if (mq_topic_list(s->o.datadir, &names, &nt) == 0) {
		line(&b, "# HELP mq_topic_partition_end_offset Log end offset of the partition.\n"
			 "# TYPE mq_topic_partition_end_offset gauge\n");
		for (size_t i = 0; i < nt; i++) {
			struct mq_topic t;
			if (!mq_srv_may(q, 0, names[i]) || mq_topic_open(s->o.datadir, names[i], &t) < 0)
				continue;
			for (int32_t p = 0; p < t.conf.partitions; p++) {
				struct mq_partition_info pi;
				mq_topic_partition_dir(&t, p, dir, sizeof dir);
				if (mq_partition_info(dir, &pi) == 0)
					line(&b, "mq_topic_partition_end_offset{topic=\"%s\",partition=\"%d\"} %lld\n",
					     t.name, p, (long long)pi.log_end);
			}
			mq_topic_close(&t);
		}
		mq_strv_free(names, nt);
	}
	struct mq_lag_report rep;
	struct mq_lag_opts lo = { .window_ms = 600000 };
	if (mq_lag_gather(s->o.datadir, NULL, 0, &lo, &rep) == 0) {
		line(&b, "# HELP mq_group_lag Records between a group's committed offset and the log end.\n"
			 "# TYPE mq_group_lag gauge\n");
		for (size_t i = 0; i < rep.n; i++)
			if (mq_srv_may(q, 0, rep.rows[i].topic))
				line(&b, "mq_group_lag{group=\"%s\",topic=\"%s\",partition=\"%d\"} %lld\n",
				     rep.rows[i].group, rep.rows[i].topic, rep.rows[i].partition,
				     (long long)rep.rows[i].lag);
		mq_lag_report_free(&rep);
	}
	struct MHD_Response *r = MHD_create_response_from_buffer(b.len, b.p, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
	q->bytes = b.len;
	return mq_srv_reply(q, c, 200, r);
}
