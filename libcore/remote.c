/*
 * remote.c: talking to an mq-serve, the client half of DESIGN.md §5.
 *
 * A remote data directory is an address instead of a path:
 *
 *   http://HOST:PORT[/PREFIX]     an mq-serve listening there (https too)
 *   ssh://[USER@]HOST[:PORT][/DIR] "ssh HOST mq-serve --stdio -d DIR"
 *
 * and a remote topic is such an address followed by "/NAME".  Both
 * transports speak the same HTTP/1.1 through one libcurl handle per
 * address, kept for the life of the process so that requests reuse the
 * connection.  For ssh, libcurl's socket is one end of a socketpair whose
 * other end is the standard input and output of an ssh child: curl
 * believes it talks to 127.0.0.1, and every new connection it opens is a
 * new ssh.  MQ_SSH replaces "ssh" (run through /bin/sh, so it may carry
 * options), MQ_SERVE the remote "mq-serve".
 *
 * The plumbing for ssh: libcurl is told the server is at a loopback port
 * this process listens on.  Each time it opens a connection, a child is
 * forked that accepts that one connection (checking it comes from the
 * socket just handed to libcurl), puts it on its standard input and
 * output and becomes ssh.  (A socketpair handed over as "already
 * connected" would be simpler, but libcurl 7.88 connects it anyway.)
 *
 * Tokens: MQ_TOKEN, else the first word of the first line of the token
 * file (--token-file or MQ_TOKEN_FILE) is sent as a bearer token.
 *
 * Errors: an answer the server classified ({"error":..., "class":N})
 * keeps its message and class, so a missing topic is exit 3 remotely as
 * locally.  Everything else (no connection, 401/403, 5xx, garbage) is
 * MQ_EREMOTE naming the address, the request and the status.  Requests
 * marked idempotent are retried on connection failures and 503, with a
 * backoff from 100 ms doubling over five tries.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mq.h"

#define MQ_RETRIES 5
#define MQ_SSH_EXIT_MS 5000

struct mq_remote {
	char *addr;               /* as given, without a trailing slash */
	char *base;               /* URL prefix of requests */
	CURL *curl;
	struct curl_slist *hdrs;
	char errbuf[CURL_ERROR_SIZE];
	/* ssh */
	int ssh;
	char *host, *port, *dir;
	int lfd;                  /* where libcurl connects to reach an ssh */
	struct { int fd; pid_t pid; } kids[8];
	size_t nkids;
	int child_status;         /* of the last ssh that ended, -1 none */
	struct mq_response *resp; /* being filled */
	int interruptible;        /* begun before the stop flag was set */
	struct mq_remote *next;
};

static struct mq_remote *remotes;
static volatile sig_atomic_t *stop_flag;
static long last_status;
static char *token;
static int token_loaded;

int mq_remote_is(const char *s)
{
	return s && (!strncmp(s, "http://", 7) || !strncmp(s, "https://", 8) ||
		     !strncmp(s, "ssh://", 6));
}

int mq_address_split(const char *arg, char **dir, char **name)
{
	const char *slash, *hostpart;

	if (!mq_remote_is(arg))
		return 0;
	hostpart = strstr(arg, "://") + 3;
	slash = strrchr(hostpart, '/');
	if (!slash || slash == hostpart || !slash[1])
		return mq_error(MQ_EUSAGE, "no topic name in address '%s' (expected %.*s/NAME)",
				arg, (int)(slash && !slash[1] ? slash - arg : (long)strlen(arg)), arg);
	if (!(*dir = strndup(arg, (size_t)(slash - arg))) || !(*name = strdup(slash + 1)))
		return mq_syserr("cannot parse address '%s'", arg);
	return 1;
}

int mq_remote_token_file(const char *path)
{
	char *text, *p;
	size_t len;

	if (mq_read_file(path, 1 << 16, &text, &len) < 0)
		return mq_syserr("cannot read token file '%s'", path);
	for (p = strtok(text, "\n"); p; p = strtok(NULL, "\n")) {
		p += strspn(p, " \t");
		if (*p && *p != '#')
			break;
	}
	if (!p || !*p) {
		free(text);
		return mq_error(MQ_EUSAGE, "no token in '%s'", path);
	}
	p[strcspn(p, " \t\r")] = '\0';
	free(token);
	token = strdup(p);
	token_loaded = 1;
	free(text);
	return token ? 0 : mq_syserr("cannot read token file '%s'", path);
}

static int load_token(void)
{
	const char *e;

	if (token_loaded)
		return 0;
	token_loaded = 1;
	if ((e = getenv("MQ_TOKEN")) && *e)
		return (token = strdup(e)) ? 0 : mq_syserr("cannot read MQ_TOKEN");
	if ((e = getenv("MQ_TOKEN_FILE")) && *e)
		return mq_remote_token_file(e);
	return 0;
}

/* ---- ssh as a socket ---- */

/* Appends s to cmd quoted for a POSIX shell. */
static void shell_quote(struct mq_buf *cmd, const char *s)
{
	mq_buf_append(cmd, "'", 1);
	for (; *s; s++)
		if (*s == '\'')
			mq_buf_append(cmd, "'\\''", 4);
		else
			mq_buf_append(cmd, s, 1);
	mq_buf_append(cmd, "'", 1);
}

/* Collects the ssh processes whose connections were closed (fd -1) and
 * have ended, waiting up to wait_ms for them; a closed connection's ssh
 * may take a moment to end, and nobody waits for it unless an error
 * needs its exit status. */
static void reap(struct mq_remote *r, int wait_ms)
{
	for (int64_t deadline = mq_now_ms() + wait_ms;;) {
		int left = 0;
		for (size_t i = 0; i < r->nkids;) {
			int st;
			pid_t w = r->kids[i].fd >= 0 ? 0 : waitpid(r->kids[i].pid, &st, WNOHANG);
			if (w == r->kids[i].pid || (w < 0 && errno == ECHILD)) {
				if (w > 0)
					r->child_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
				r->kids[i] = r->kids[--r->nkids];
				continue;
			}
			left += r->kids[i].fd < 0;
			i++;
		}
		if (!left || mq_now_ms() >= deadline)
			return;
		struct timespec ts = { 0, 5 * 1000000L };
		nanosleep(&ts, NULL);
	}
}

/* The child: accepts the connection from our port only (anyone on this
 * host may connect to the listener, and must not get our ssh), makes it
 * its standard input and output, and runs ssh. */
static void ssh_child(struct mq_remote *r, uint16_t port, const char *cmd)
{
	const char *ssh = getenv("MQ_SSH");
	char script[512];
	struct sockaddr_in peer;
	socklen_t plen;
	int c;

	/* hold nothing of the parent's (its locks above all) while waiting */
	for (int fd = 3; fd < 1024; fd++)
		if (fd != r->lfd)
			close(fd);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
	alarm(60);   /* libcurl gave up before connecting */
	for (;;) {
		plen = sizeof peer;
		if ((c = accept(r->lfd, (struct sockaddr *)&peer, &plen)) < 0)
			_exit(127);
		if (peer.sin_family == AF_INET && peer.sin_port == port)
			break;
		close(c);
	}
	alarm(0);
	/* requests and answers are small writes that must not wait */
	int one = 1;
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	dup2(c, 0);
	dup2(c, 1);
	if (c > 1)
		close(c);
	snprintf(script, sizeof script, "exec %s \"$@\"", ssh && *ssh ? ssh : "ssh");
	if (r->port)
		execl("/bin/sh", "sh", "-c", script, "sh", "-p", r->port, "--", r->host, cmd, (char *)NULL);
	else
		execl("/bin/sh", "sh", "-c", script, "sh", "--", r->host, cmd, (char *)NULL);
	_exit(127);
}

static curl_socket_t ssh_open(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
	struct mq_remote *r = arg;
	struct mq_buf cmd = { 0 };
	const char *serve = getenv("MQ_SERVE");
	struct sockaddr_in me = { .sin_family = AF_INET };
	socklen_t mlen = sizeof me;
	int fd;
	pid_t pid;

	(void)purpose;
	(void)addr;
	reap(r, 0);
	if (r->nkids == sizeof r->kids / sizeof *r->kids)
		return CURL_SOCKET_BAD;
	/* bound first, so the child knows which connection is ours */
	me.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&me, sizeof me) < 0 ||
	    getsockname(fd, (struct sockaddr *)&me, &mlen) < 0) {
		if (fd >= 0)
			close(fd);
		return CURL_SOCKET_BAD;
	}
	/* mq-serve --stdio [-d 'DIR'], as one word for the remote shell */
	serve = serve && *serve ? serve : "mq-serve";
	mq_buf_append(&cmd, serve, strlen(serve));
	mq_buf_append(&cmd, " --stdio", 8);
	if (r->dir && *r->dir) {
		mq_buf_append(&cmd, " -d ", 4);
		shell_quote(&cmd, r->dir);
	}
	if (mq_buf_append(&cmd, "", 1) < 0 || (pid = fork()) < 0) {
		mq_buf_free(&cmd);
		close(fd);
		return CURL_SOCKET_BAD;
	}
	if (pid == 0)
		ssh_child(r, me.sin_port, (const char *)cmd.p);
	mq_buf_free(&cmd);
	r->kids[r->nkids].fd = fd;
	r->kids[r->nkids++].pid = pid;
	r->child_status = -1;
	return fd;
}

static int ssh_close(void *arg, curl_socket_t fd)
{
	struct mq_remote *r = arg;

	close(fd);
	for (size_t i = 0; i < r->nkids; i++)
		if (r->kids[i].fd == fd)
			r->kids[i].fd = -1;
	reap(r, 0);
	return 0;
}

/* A listener on a loopback port for libcurl to connect to. */
static int ssh_listen(struct mq_remote *r)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof a;
	char base[64];

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (r->lfd < 0 || bind(r->lfd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    listen(r->lfd, 8) < 0 || getsockname(r->lfd, (struct sockaddr *)&a, &len) < 0)
		return -1;
	snprintf(base, sizeof base, "http://127.0.0.1:%u", ntohs(a.sin_port));
	return (r->base = strdup(base)) ? 0 : -1;
}

/* ---- requests ---- */

void mq_remote_set_stop(volatile sig_atomic_t *stop)
{
	stop_flag = stop;
}

long mq_remote_last_status(void)
{
	return last_status;
}

/* A signal (SIGINT, SIGTERM) ends a long poll at once.  The requests
 * made after it (the last commit, leaving the group) go through. */
static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct mq_remote *r = arg;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return r->interruptible && stop_flag && *stop_flag;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct mq_remote *r = arg;

	if (mq_buf_append(&r->resp->body, p, size * n) < 0)
		return 0;
	return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct mq_remote *r = arg;
	size_t len = size * n;
	static const struct { const char *name; size_t off; } hs[] = {
		{ "x-mq-log-start:", offsetof(struct mq_response, log_start) },
		{ "x-mq-log-end:", offsetof(struct mq_response, log_end) },
		{ "x-mq-high-watermark:", offsetof(struct mq_response, high_watermark) },
		{ "x-mq-segment-base:", offsetof(struct mq_response, seg_base) },
	};

	for (size_t i = 0; i < sizeof hs / sizeof *hs; i++) {
		size_t k = strlen(hs[i].name);
		if (len > k && !strncasecmp(p, hs[i].name, k))
			*(int64_t *)((char *)r->resp + hs[i].off) = strtoll(p + k, NULL, 10);
	}
	return len;
}

static int parse_addr(struct mq_remote *r, const char *addr)
{
	size_t n = strlen(addr);

	while (n > 0 && addr[n - 1] == '/')
		n--;
	if (!(r->addr = strndup(addr, n)))
		return -1;
	if (strncmp(addr, "ssh://", 6)) {
		r->base = strdup(r->addr);
		return r->base ? 0 : -1;
	}
	/* ssh://[USER@]HOST[:PORT][/DIR] */
	const char *h = r->addr + 6, *slash = strchr(h, '/'), *at, *colon;
	size_t hl = slash ? (size_t)(slash - h) : strlen(h);
	r->ssh = 1;
	r->dir = strdup(slash ? slash : "");
	at = memchr(h, '@', hl);
	colon = memrchr(at ? at : h, ':', hl - (size_t)(at ? at - h : 0));
	if (colon && !memchr(colon, ']', hl - (size_t)(colon - h))) {
		r->port = strndup(colon + 1, hl - (size_t)(colon + 1 - h));
		hl = (size_t)(colon - h);
	}
	r->host = strndup(h, hl);
	if (!r->host || !r->dir || (colon && !r->port) || ssh_listen(r) < 0)
		return -1;
	if (!*r->host || (at && at == h + hl - 1))
		return errno = EINVAL, -1;
	return 0;
}

int mq_remote_get(const char *addr, struct mq_remote **rp)
{
	struct mq_remote *r;
	static int global;

	for (r = remotes; r; r = r->next)
		if (!strcmp(r->addr, addr)) {
			*rp = r;
			return 0;
		}
	if (load_token() < 0)
		return -1;
	if (!global) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT))
			return mq_error(MQ_EREMOTE, "cannot initialise libcurl");
		global = 1;
		atexit(mq_remote_close_all);
	}
	if (!(r = calloc(1, sizeof *r)))
		return mq_syserr("cannot connect to '%s'", addr);
	r->child_status = -1;
	r->lfd = -1;
	if (parse_addr(r, addr) < 0 || !(r->curl = curl_easy_init())) {
		mq_remote_free(r);
		return mq_error(errno == EINVAL ? MQ_EUSAGE : MQ_EIO, "invalid address '%s'", addr);
	}
	if (token) {
		char h[4096];
		snprintf(h, sizeof h, "Authorization: Bearer %s", token);
		r->hdrs = curl_slist_append(r->hdrs, h);
	}
	r->hdrs = curl_slist_append(r->hdrs, "Expect:");
	CURL *c = r->curl;
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->hdrs);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, r);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	if (getenv("MQ_CURL_VERBOSE"))
		curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "mq/" MQ_VERSION);
	if (r->ssh) {
		curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, ssh_open);
		curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, r);
		curl_easy_setopt(c, CURLOPT_CLOSESOCKETFUNCTION, ssh_close);
		curl_easy_setopt(c, CURLOPT_CLOSESOCKETDATA, r);
		/* a slow ssh login is not a dead server */
		curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 60000L);
	}
	r->next = remotes;
	remotes = r;
	*rp = r;
	return 0;
}

/* Also at exit: the remote mq-serve of each ssh ends when its connection
 * closes, and is waited for, so that what it still does (closing logs
 * and memberships) is over when the program is. */
void mq_remote_free(struct mq_remote *r)
{
	if (!r)
		return;
	if (r->curl)
		curl_easy_cleanup(r->curl);   /* closes the ssh socket too */
	reap(r, MQ_SSH_EXIT_MS);
	if (r->lfd >= 0)
		close(r->lfd);
	curl_slist_free_all(r->hdrs);
	free(r->addr);
	free(r->base);
	free(r->host);
	free(r->port);
	free(r->dir);
	free(r);
}

void mq_remote_close_all(void)
{
	while (remotes) {
		struct mq_remote *r = remotes;
		remotes = r->next;
		mq_remote_free(r);
	}
}

const char *mq_remote_addr(const struct mq_remote *r)
{
	return r->addr;
}

static int transient(CURLcode rc)
{
	return rc == CURLE_COULDNT_CONNECT || rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR ||
	       rc == CURLE_GOT_NOTHING || rc == CURLE_PARTIAL_FILE || rc == CURLE_COULDNT_RESOLVE_HOST;
}

int mq_remote_request(struct mq_remote *r, const char *method, const char *path,
		      const char *ctype, const void *body, size_t len, int flags,
		      long timeout_ms, struct mq_response *resp)
{
	char url[8192], ct[256];
	struct curl_slist *h = NULL;
	CURLcode rc = CURLE_OK;
	CURL *c = r->curl;

	snprintf(url, sizeof url, "%s%s", r->base, path);
	r->interruptible = !(stop_flag && *stop_flag);
	for (int attempt = 0;; attempt++) {
		resp->status = 0;
		resp->body.len = 0;
		resp->log_start = resp->log_end = resp->high_watermark = resp->seg_base = -1;
		r->resp = resp;
		r->errbuf[0] = '\0';
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 0L);
		if (body || !strcmp(method, "POST") || !strcmp(method, "PUT") || !strcmp(method, "PATCH")) {
			curl_easy_setopt(c, CURLOPT_POST, 1L);
			curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
			curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
		} else {
			curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, strcmp(method, "GET") ? method : NULL);
			curl_easy_setopt(c, CURLOPT_NOBODY, !strcmp(method, "HEAD") ? 1L : 0L);
		}
		h = NULL;
		if (ctype) {
			snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
			h = curl_slist_append(NULL, ct);
			for (struct curl_slist *s = r->hdrs; s && h; s = s->next)
				h = curl_slist_append(h, s->data);
		}
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h ? h : r->hdrs);
		rc = curl_easy_perform(c);
		curl_slist_free_all(h);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->hdrs);
		r->resp = NULL;
		if (rc == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
		last_status = rc == CURLE_OK ? resp->status : 0;
		if (rc == CURLE_ABORTED_BY_CALLBACK)
			return mq_error(MQ_EREMOTE, "%s: %s %s: interrupted", r->addr, method, path);
		int again = (rc != CURLE_OK && transient(rc)) || (rc == CURLE_OK && resp->status == 503);
		if (!again || !(flags & MQ_REQ_IDEMPOTENT) || attempt + 1 >= MQ_RETRIES)
			break;
		struct timespec ts = { 0, (100L << attempt) * 1000000L };
		while (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		nanosleep(&ts, NULL);
	}
	if (rc != CURLE_OK) {
		char why[512];
		if (r->ssh)
			reap(r, 2000);   /* for ssh's exit status */
		snprintf(why, sizeof why, "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
		if (r->ssh && r->child_status > 0)
			return mq_error(MQ_EREMOTE, "%s: %s %s: ssh to '%s' failed (exit status %d)",
					r->addr, method, path, r->host, r->child_status);
		if (r->ssh && (rc == CURLE_GOT_NOTHING || rc == CURLE_RECV_ERROR))
			return mq_error(MQ_EREMOTE, "%s: %s %s: ssh to '%s' closed the connection",
					r->addr, method, path, r->host);
		return mq_error(MQ_EREMOTE, "%s: %s %s: %s", r->addr, method, path, why);
	}
	return 0;
}

int mq_remote_fail(struct mq_remote *r, const char *method, const char *path,
		   const struct mq_response *resp)
{
	json_t *j = NULL, *e, *cl;
	int cls = 0;
	char msg[1024] = "";

	if (resp->body.len && resp->body.len < 65536) {
		j = json_loadb((const char *)resp->body.p, resp->body.len, 0, NULL);
		if (j && (e = json_object_get(j, "error")) && json_is_string(e))
			snprintf(msg, sizeof msg, "%s", json_string_value(e));
		if (j && (cl = json_object_get(j, "class")) && json_is_integer(cl))
			cls = (int)json_integer_value(cl);
		json_decref(j);
	}
	if (cls >= MQ_ENEG && cls <= MQ_EIO && resp->status != 401 && resp->status != 403 && *msg)
		return mq_error(cls, "%s", msg);
	return mq_error(MQ_EREMOTE, "%s: %s %s: HTTP %ld%s%s", r->addr, method, path,
			resp->status, *msg ? " " : "", msg);
}

void mq_response_free(struct mq_response *resp)
{
	mq_buf_free(&resp->body);
}

int mq_url_escape(struct mq_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			if (mq_buf_append(b, s, 1) < 0)
				return -1;
		} else {
			char e[3] = { '%', hex[ch >> 4], hex[ch & 15] };
			if (mq_buf_append(b, e, 3) < 0)
				return -1;
		}
	}
	return 0;
}
