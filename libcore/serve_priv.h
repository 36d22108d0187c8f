/*
 * serve_priv.h: what serve.c (the daemon: connections, tokens, timeouts,
 * shutdown, --stdio) and serve_api.c (the /v1 handlers) share.
 */
#ifndef MQ_SERVE_PRIV_H
#define MQ_SERVE_PRIV_H

#include <microhttpd.h>
#include <pthread.h>

#include "mq.h"

struct srv_token {
	char *token;
	char name[16];            /* what the request log shows */
	int rw;
	char **patterns;          /* topic globs; none: every topic */
	size_t npatterns;
};

/* One connection, for the watchdog: a connection that spends longer than
 * the timeout receiving a request (headers and body) is shut down. */
struct srv_conn {
	int fd;
	int receiving;            /* between requests, or reading one */
	int64_t since;            /* when the current phase began */
	struct srv_conn *prev, *next;
};

/* An appender kept open between produce requests. */
struct srv_log {
	char dir[4096];
	int fsync;
	struct mq_config conf;
	struct mq_log *log;
	pthread_mutex_t lock;
	struct srv_log *next;
};

/* A remote consumer-group member (POST /v1/groups/G/members/ID). */
struct srv_member {
	char group[256], id[128];
	struct mq_group *g;
	struct mq_tp *subs;       /* topics strdup'd */
	size_t nsubs;
	int64_t last, timeout;
	struct srv_member *next;
};

struct srv {
	struct mq_serve_opts o;
	struct MHD_Daemon *d;
	struct srv_token *tokens;
	size_t ntokens;
	int auth;                 /* a token file was given */
	volatile int stopping;

	pthread_mutex_t lock;     /* what follows, up to the next comment */
	struct srv_conn *conns;
	unsigned nconns, active;
	unsigned started;         /* connections ever */
	pthread_cond_t closed;    /* a connection closed */
	uint64_t bytes_in, bytes_out, requests;
	uint64_t by_status[6];    /* 1xx..5xx, [0] other */
	int64_t rr;               /* round-robin for unkeyed produce */

	/* data changed: the inotify thread bumps gen and broadcasts */
	int ino;
	pthread_t ino_thread;
	pthread_mutex_t chg_lock;
	pthread_cond_t chg;
	uint64_t gen;

	pthread_mutex_t logs_lock;
	struct srv_log *logs;

	pthread_mutex_t groups_lock;
	struct srv_member *members;
};

/* One request (MHD's con_cls). */
struct srv_req {
	struct srv *s;
	struct srv_conn *conn;
	struct mq_buf body;
	int too_big;
	int begun;
	int64_t started;
	char line[512];           /* "GET /v1/topics HTTP/1.1" for the log */
	unsigned status;
	uint64_t bytes;
	char who[16];             /* token name for the log, "-" */
	int rw;                   /* the token may write */
	const struct srv_token *tok;
};

/* serve_api.c */
enum MHD_Result mq_srv_dispatch(struct srv_req *q, struct MHD_Connection *c, const char *url,
				const char *method);
/* serve_api.c, for the other handlers */
const char *mq_srv_arg(struct MHD_Connection *c, const char *k);
int64_t mq_srv_arg_int(struct MHD_Connection *c, const char *k, int64_t dflt, int64_t max);
/* Checks the name, the token, and opens the topic; -1 with *res queued. */
int mq_srv_open_topic(struct srv_req *q, struct MHD_Connection *c, const char *name, int write,
		      struct mq_topic *t, enum MHD_Result *res);
int32_t mq_srv_partition_of(struct MHD_Connection *c, const struct mq_topic *t, const char *s);

/* serve_produce.c: POST .../records (ps: the partition, or NULL) */
enum MHD_Result mq_srv_produce(struct srv_req *q, struct MHD_Connection *c, const char *name,
			       const char *ps);

/* serve_groups.c: groups, lag and metrics; seg[0] is "groups" or "lag" */
enum MHD_Result mq_srv_groups(struct srv_req *q, struct MHD_Connection *c, char **seg, size_t n,
			      const char *method);
enum MHD_Result mq_srv_metrics(struct srv_req *q, struct MHD_Connection *c);
/* Ends the memberships silent past their session timeout (all: every one). */
void mq_srv_expire_members(struct srv *s, int64_t now, int all);
void mq_srv_close_logs(struct srv *s, const char *prefix);

/* serve_auth.c */
int mq_srv_load_tokens(struct srv *s, const char *path);
/* Sets q->tok, q->who and q->rw from the Authorization header. */
void mq_srv_authenticate(struct srv_req *q, struct MHD_Connection *c);

/* serve.c */
enum MHD_Result mq_srv_reply(struct srv_req *q, struct MHD_Connection *c, unsigned status,
			     struct MHD_Response *r);
enum MHD_Result mq_srv_json(struct srv_req *q, struct MHD_Connection *c, unsigned status,
			    void *json);
enum MHD_Result mq_srv_error(struct srv_req *q, struct MHD_Connection *c, unsigned status,
			     int cls, const char *msg);
/* The current mq error as an answer, its status from its class. */
enum MHD_Result mq_srv_fail(struct srv_req *q, struct MHD_Connection *c);
/* 0 when the token may read (write) topic (NULL: no topic); otherwise
 * the answer was queued and the caller returns *res. */
int mq_srv_allowed(struct srv_req *q, struct MHD_Connection *c, int write, const char *topic,
		   enum MHD_Result *res);
/* The check alone: 1 when the token may. */
int mq_srv_may(const struct srv_req *q, int write, const char *topic);
void mq_srv_watch(struct srv *s, const char *dir);
/* Waits until something watched changes after *gen, or until deadline
 * (mq_mono_ms() time), or the client of q left (then 1); updates *gen.
 * Returns at once when stopping. */
int mq_srv_wait_change(struct srv *s, struct srv_req *q, uint64_t *gen, int64_t deadline);
uint64_t mq_srv_gen(struct srv *s);

#endif
