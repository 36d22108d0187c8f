/*
 * serve.c: mq-serve's daemon, on libmicrohttpd.
 *
 * Transports.  TCP: libmicrohttpd listens and runs a thread per
 * connection, so a handler may block (a long-polling fetch) without
 * holding up anyone else; the connection limit bounds the threads.
 * --stdio (for ssh): one end of a socketpair is handed to the same
 * daemon as a connection, and two relay threads copy stdin into the other
 * end and what comes out of it to stdout; when standard input and output
 * are one socket already (inetd, systemd's Accept=yes, a local ssh
 * stand-in), that socket is handed over instead, with no relay.  Either
 * way every request goes through one handler (serve_api.c).
 *
 * Limits.  Request bodies past --max-body get 413 before they are read.
 * A watchdog (the main thread, ten times a second) shuts down any
 * connection that has spent longer than --timeout receiving a request,
 * so a client trickling headers or a body (slowloris) loses its
 * connection, and an idle keep-alive connection is closed after the same
 * time.  Responding is bounded by the long-poll limit and by
 * libmicrohttpd's own inactivity timeout.
 *
 * Tokens are serve_auth.c's.
 *
 * Shutdown.  When *stop is set the daemon stops accepting, long polls
 * return what they have, in-flight requests finish (up to ten seconds),
 * then appenders and group memberships are closed, which releases their
 * locks.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "serve_priv.h"

/* ---- answers ---- */

enum MHD_Result mq_srv_reply(struct srv_req *q, struct MHD_Connection *c, unsigned status,
			     struct MHD_Response *r)
{
	enum MHD_Result rc;

	if (!r)
		return MHD_NO;
	q->status = status;
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

enum MHD_Result mq_srv_json(struct srv_req *q, struct MHD_Connection *c, unsigned status,
			    void *json)
{
	char *text = json_dumps(json, JSON_COMPACT);
	struct MHD_Response *r;
	size_t n;

	json_decref(json);
	if (!text)
		return MHD_NO;
	n = strlen(text);
	text[n] = '\n';   /* json_dumps leaves room for its NUL: reuse it */
	r = MHD_create_response_from_buffer(n + 1, text, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", "application/json");
	q->bytes = n + 1;
	return mq_srv_reply(q, c, status, r);
}

enum MHD_Result mq_srv_error(struct srv_req *q, struct MHD_Connection *c, unsigned status,
			     int cls, const char *msg)
{
	json_t *j = json_pack("{s:s}", "error", msg);

	if (cls)
		json_object_set_new(j, "class", json_integer(cls));
	return mq_srv_json(q, c, status, j);
}

enum MHD_Result mq_srv_fail(struct srv_req *q, struct MHD_Connection *c)
{
	static const unsigned status[] = { 500, 409, 400, 404, 500, 500, 502 };
	int cls = mq_errclass();

	return mq_srv_error(q, c, status[cls >= 0 && cls <= 6 ? cls : 0], cls, mq_errmsg());
}

/* ---- change notification ---- */

static void *watcher(void *arg)
{
	struct srv *s = arg;
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));

	for (;;) {
		ssize_t n = read(s->ino, buf, sizeof buf);
		if (n <= 0 && errno != EINTR)
			return NULL;
		pthread_mutex_lock(&s->chg_lock);
		s->gen++;
		pthread_cond_broadcast(&s->chg);
		pthread_mutex_unlock(&s->chg_lock);
	}
}

void mq_srv_watch(struct srv *s, const char *dir)
{
	if (s->ino >= 0)
		inotify_add_watch(s->ino, dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO);
}

uint64_t mq_srv_gen(struct srv *s)
{
	uint64_t g;

	pthread_mutex_lock(&s->chg_lock);
	g = s->gen;
	pthread_mutex_unlock(&s->chg_lock);
	return g;
}

/* Has the client of connection fd gone (hung up, reset)? */
static int client_gone(int fd)
{
	struct pollfd pf = { .fd = fd, .events = POLLRDHUP };

	return fd >= 0 && poll(&pf, 1, 0) > 0 && (pf.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

int mq_srv_wait_change(struct srv *s, struct srv_req *q, uint64_t *gen, int64_t deadline)
{
	int fd = q && q->conn ? q->conn->fd : -1, gone = 0;

	pthread_mutex_lock(&s->chg_lock);
	while (*gen == s->gen && !s->stopping) {
		int64_t now = mq_mono_ms(), wait = deadline - now;
		if (wait <= 0)
			break;
		/* a client that left ends its long poll within a quarter second */
		if ((gone = client_gone(fd)))
			break;
		if (wait > 250)
			wait = 250;
		/* without inotify, look again every 20 ms */
		if (s->ino < 0 && wait > 20)
			wait = 20;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += wait / 1000;
		ts.tv_nsec += (wait % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (pthread_cond_timedwait(&s->chg, &s->chg_lock, &ts) == ETIMEDOUT && s->ino < 0)
			break;
	}
	*gen = s->gen;
	pthread_mutex_unlock(&s->chg_lock);
	return gone;
}

/* ---- connections and requests ---- */

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct srv *s = cls;
	struct srv_conn *k = *socket_context;

	pthread_mutex_lock(&s->lock);
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		if ((k = calloc(1, sizeof *k))) {
			k->fd = ci ? ci->connect_fd : -1;
			k->receiving = 1;
			k->since = mq_mono_ms();
			k->next = s->conns;
			if (s->conns)
				s->conns->prev = k;
			s->conns = k;
			s->nconns++;
		}
		*socket_context = k;
		s->started++;
	} else if (k) {
		if (k->prev)
			k->prev->next = k->next;
		else
			s->conns = k->next;
		if (k->next)
			k->next->prev = k->prev;
		s->nconns--;
		free(k);
		*socket_context = NULL;
		pthread_cond_broadcast(&s->closed);
	}
	pthread_mutex_unlock(&s->lock);
}

static void set_receiving(struct srv *s, struct srv_conn *k, int on)
{
	if (!k)
		return;
	pthread_mutex_lock(&s->lock);
	k->receiving = on;
	k->since = mq_mono_ms();
	pthread_mutex_unlock(&s->lock);
}

static void watchdog(struct srv *s)
{
	int64_t now = mq_mono_ms();

	if (s->o.timeout_ms > 0) {
		pthread_mutex_lock(&s->lock);
		for (struct srv_conn *k = s->conns; k; k = k->next)
			if (k->receiving && k->fd >= 0 && now - k->since > s->o.timeout_ms) {
				shutdown(k->fd, SHUT_RDWR);
				k->receiving = 0;
			}
		pthread_mutex_unlock(&s->lock);
	}
	mq_srv_expire_members(s, now, 0);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct srv *s = cls;
	struct srv_req *q = *con_cls;

	if (!q)
		return MHD_NO;
	if (!q->begun) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
		char uri[sizeof q->line];
		q->begun = 1;
		q->conn = ci ? ci->socket_context : NULL;
		snprintf(uri, sizeof uri, "%s", q->line);
		snprintf(q->line, sizeof q->line, "%.16s %.470s %.16s", method, uri, version);
		pthread_mutex_lock(&s->lock);
		s->active++;
		pthread_mutex_unlock(&s->lock);
		mq_srv_authenticate(q, c);
		if (cl && strtoll(cl, NULL, 10) > s->o.max_body)
			return mq_srv_error(q, c, 413, 0, "request body too large");
		return MHD_YES;
	}
	if (*upload_size) {
		if (q->body.len + *upload_size > (size_t)s->o.max_body) {
			q->too_big = 1;
		} else if (mq_buf_append(&q->body, upload, *upload_size) < 0) {
			return MHD_NO;
		}
		pthread_mutex_lock(&s->lock);
		s->bytes_in += *upload_size;
		pthread_mutex_unlock(&s->lock);
		*upload_size = 0;
		return MHD_YES;
	}
	set_receiving(s, q->conn, 0);
	if (q->too_big)
		return mq_srv_error(q, c, 413, 0, "request body too large");
	if (s->stopping)
		return mq_srv_error(q, c, 503, 0, "shutting down");
	return mq_srv_dispatch(q, c, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode why)
{
	struct srv *s = cls;
	struct srv_req *q = *con_cls;

	(void)why;
	if (!q)
		return;
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (s->o.log) {
		char host[INET6_ADDRSTRLEN] = "-", when[64], line[1024];
		time_t t = time(NULL);
		struct tm tm;
		if (ci && ci->client_addr && s->o.stdio == 0)
			getnameinfo(ci->client_addr, ci->client_addr->sa_family == AF_INET6 ?
				    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in),
				    host, sizeof host, NULL, 0, NI_NUMERICHOST);
		gmtime_r(&t, &tm);
		strftime(when, sizeof when, "%d/%b/%Y:%H:%M:%S +0000", &tm);
		snprintf(line, sizeof line, "%s - %s [%s] \"%s\" %u %llu %.3f", host, q->who, when,
			 q->line, q->status, (unsigned long long)q->bytes,
			 (double)(mq_mono_ms() - q->started) / 1000.0);
		s->o.log(s->o.arg, line);
	}
	pthread_mutex_lock(&s->lock);
	if (q->begun)
		s->active--;
	s->requests++;
	s->bytes_out += q->bytes;
	s->by_status[q->status >= 100 && q->status < 600 ? q->status / 100 : 0]++;
	pthread_mutex_unlock(&s->lock);
	set_receiving(s, q->conn, 1);
	mq_buf_free(&q->body);
	free(q);
	*con_cls = NULL;
}

/* A request begins: its state, with the URI as sent kept for the log. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct srv_req *q = calloc(1, sizeof *q);

	(void)c;
	if (q) {
		q->s = cls;
		q->started = mq_mono_ms();
		q->status = 500;
		snprintf(q->line, sizeof q->line, "%s", uri);
	}
	return q;
}

/* ---- --stdio ---- */

struct relay {
	int from, to;
	int shut;                 /* shutdown(to, SHUT_WR) at the end */
};

static void *relay(void *arg)
{
	struct relay *r = arg;

	mq_relay(r->from, r->to);
	if (r->shut)
		shutdown(r->to, SHUT_WR);
	return NULL;
}

/* Standard input and output as one stream socket: a descriptor of it
 * for the daemon, which then holds the only one (so that the peer sees
 * the connection close when the daemon closes it); -1 when they are not. */
static int stdio_socket(void)
{
	struct stat in, out;
	int type, fd, null;
	socklen_t len = sizeof type;

	if (fstat(0, &in) < 0 || fstat(1, &out) < 0 || !S_ISSOCK(in.st_mode) ||
	    in.st_dev != out.st_dev || in.st_ino != out.st_ino ||
	    getsockopt(0, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM)
		return -1;
	if ((null = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
		return -1;
	if ((fd = fcntl(0, F_DUPFD_CLOEXEC, 3)) >= 0 && (dup2(null, 0) < 0 || dup2(null, 1) < 0)) {
		close(fd);
		fd = -1;
	}
	close(null);
	return fd;
}

/* ---- the daemon ---- */

static int parse_listen(const char *l, struct sockaddr_storage *ss, int *v6)
{
	char host[256];
	const char *colon = strrchr(l, ':');
	long port;
	char *end;

	if (!colon || (size_t)(colon - l) >= sizeof host)
		return mq_error(MQ_EUSAGE, "invalid listen address '%s' (expected ADDR:PORT)", l);
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535 || colon[1] == '\0')
		return mq_error(MQ_EUSAGE, "invalid port in listen address '%s'", l);
	memcpy(host, l, (size_t)(colon - l));
	host[colon - l] = '\0';
	memset(ss, 0, sizeof *ss);
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		host[strlen(host) - 1] = '\0';
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		*v6 = 1;
		if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
			return mq_error(MQ_EUSAGE, "invalid address in '%s'", l);
		return 0;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)ss;
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	*v6 = 0;
	if (!host[0])
		a->sin_addr.s_addr = htonl(INADDR_ANY);
	else if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
		return mq_error(MQ_EUSAGE, "invalid address in '%s' (expected an IPv4 address or [IPv6])", l);
	return 0;
}

static void free_srv(struct srv *s)
{
	mq_srv_expire_members(s, 0, 1);
	mq_srv_close_logs(s, NULL);
	for (size_t i = 0; i < s->ntokens; i++) {
		free(s->tokens[i].token);
		for (size_t k = 0; k < s->tokens[i].npatterns; k++)
			free(s->tokens[i].patterns[k]);
		free(s->tokens[i].patterns);
	}
	free(s->tokens);
	if (s->ino >= 0) {
		close(s->ino);
		s->ino = -1;
	}
}

int mq_serve_run(const struct mq_serve_opts *o)
{
	struct srv s = { .o = *o, .ino = -1 };
	struct sockaddr_storage ss;
	struct sockaddr_in lo = { .sin_family = AF_INET };
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			 MHD_USE_POLL | MHD_USE_ITC;
	int v6 = 0, sv[2] = { -1, -1 }, rc = 0, direct = -1;
	struct relay in = { 0 }, out = { 0 };
	pthread_t tin, tout;
	struct rlimit rl;

	if (s.o.max_body <= 0)
		s.o.max_body = 64 << 20;
	if (s.o.max_connections == 0)
		s.o.max_connections = 4096;
	if (o->token_file && mq_srv_load_tokens(&s, o->token_file) < 0)
		goto fail;
	if (!o->stdio && parse_listen(o->listen ? o->listen : "127.0.0.1:8092", &ss, &v6) < 0)
		goto fail;
	/* a descriptor for each connection, and some for the files it reads */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	pthread_mutex_init(&s.lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s.closed, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&s.chg_lock, NULL);
	pthread_cond_init(&s.chg, NULL);
	pthread_mutex_init(&s.logs_lock, NULL);
	pthread_mutex_init(&s.groups_lock, NULL);
	s.ino = inotify_init1(IN_CLOEXEC);
	if (s.ino >= 0 && pthread_create(&s.ino_thread, NULL, watcher, &s) != 0) {
		close(s.ino);
		s.ino = -1;
	}
	if (o->stdio) {
		flags |= MHD_USE_NO_LISTEN_SOCKET;
		s.o.timeout_ms = 0;   /* an ssh session is its own limit */
	} else if (v6) {
		flags |= MHD_USE_IPv6;
	}
	s.d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, &s,
			       MHD_OPTION_NOTIFY_CONNECTION, on_connection, &s,
			       MHD_OPTION_NOTIFY_COMPLETED, on_completed, &s,
			       MHD_OPTION_URI_LOG_CALLBACK, on_uri, &s,
			       MHD_OPTION_CONNECTION_LIMIT, s.o.max_connections,
			       MHD_OPTION_CONNECTION_TIMEOUT,
			       (unsigned)(s.o.timeout_ms > 0 ? (s.o.timeout_ms + 999) / 1000 + 60 : 0),
			       MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
			       MHD_OPTION_THREAD_STACK_SIZE, (size_t)(1 << 20),
			       MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
			       o->stdio ? MHD_OPTION_END : MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
			       MHD_OPTION_END);
	if (!s.d) {
		if (o->stdio)
			mq_error(MQ_EIO, "cannot start the server");
		else
			mq_syserr("cannot listen on '%s'", o->listen ? o->listen : "127.0.0.1:8092");
		goto fail;
	}
	if (o->stdio)
		lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (o->stdio && (direct = stdio_socket()) >= 0) {
		/* answers must not wait (TCP) */
		int one = 1;
		setsockopt(direct, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (MHD_add_connection(s.d, direct, (struct sockaddr *)&lo, sizeof lo) != MHD_YES) {
			mq_error(MQ_EIO, "cannot serve standard input");
			goto fail;
		}
	} else if (o->stdio) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
			mq_syserr("cannot serve standard input");
			goto fail;
		}
		/* room for a whole fetch in flight between the daemon and the relay */
		int big = 4 << 20;
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
		setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
		/* when standard output is a TCP socket, answers must not wait */
		int one = 1;
		setsockopt(1, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		in = (struct relay){ .from = 0, .to = sv[1], .shut = 1 };
		out = (struct relay){ .from = sv[1], .to = 1 };
		if (MHD_add_connection(s.d, sv[0], (struct sockaddr *)&lo, sizeof lo) != MHD_YES) {
			mq_error(MQ_EIO, "cannot serve standard input");
			goto fail;
		}
		pthread_create(&tin, NULL, relay, &in);
		pthread_create(&tout, NULL, relay, &out);
	} else if (o->ready) {
		const union MHD_DaemonInfo *di = MHD_get_daemon_info(s.d, MHD_DAEMON_INFO_BIND_PORT);
		o->ready(o->arg, di ? di->port : 0);
	}
	int ended = 0;            /* --stdio: the connection closed */
	while (!*o->stop && !ended) {
		struct timespec ts = { 0, 100 * 1000000L };
		if (o->stdio) {
			/* the session ends as soon as ssh's side closes: the
			 * client waits for it at exit */
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += 100 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			if (direct >= 0) {
				pthread_mutex_lock(&s.lock);
				if (!s.started || s.nconns)
					pthread_cond_clockwait(&s.closed, &s.lock, CLOCK_MONOTONIC, &ts);
				ended = s.started && !s.nconns;
				pthread_mutex_unlock(&s.lock);
			} else {
				ended = pthread_clockjoin_np(tout, NULL, CLOCK_MONOTONIC, &ts) == 0;
			}
		} else {
			nanosleep(&ts, NULL);
		}
		watchdog(&s);
	}
	/* stop: no new connections, long polls return, in-flight ones end */
	s.stopping = 1;
	pthread_mutex_lock(&s.chg_lock);
	pthread_cond_broadcast(&s.chg);
	pthread_mutex_unlock(&s.chg_lock);
	if (!o->stdio)
		close(MHD_quiesce_daemon(s.d));
	for (int i = 0; i < 100; i++) {
		pthread_mutex_lock(&s.lock);
		unsigned active = s.active;
		pthread_mutex_unlock(&s.lock);
		if (!active)
			break;
		struct timespec ts = { 0, 100 * 1000000L };
		nanosleep(&ts, NULL);
	}
	MHD_stop_daemon(s.d);
	if (o->stdio && direct < 0) {
		close(sv[1]);
		pthread_cancel(tin);
		if (!ended)
			pthread_join(tout, NULL);
	}
	free_srv(&s);
	return rc;
fail:
	free_srv(&s);
	return -1;
}
