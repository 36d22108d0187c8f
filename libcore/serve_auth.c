/*
 * serve_auth.c: mq-serve's tokens.
 *
 * A token file holds "TOKEN ro|rw [GLOB...]" lines: ro tokens read (and
 * consume in groups), rw tokens also write; globs limit a token to the
 * topics they match.  Tokens are compared in time independent of where
 * they differ, and every token is compared, so timing tells nothing.
 * 401 and 403 answers say no more than "unauthorized" and "forbidden".
 */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve_priv.h"

/* ---- tokens ---- */

int mq_srv_load_tokens(struct srv *s, const char *path)
{
	char *text, *line, *save = NULL;
	size_t len, lineno = 0;

	if (mq_read_file(path, 1 << 20, &text, &len) < 0)
		return mq_syserr("cannot read token file '%s'", path);
	s->auth = 1;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[64], *w, *ws = NULL;
		size_t nf = 0;
		lineno++;
		for (w = strtok_r(line, " \t\r", &ws); w && nf < 64; w = strtok_r(NULL, " \t\r", &ws))
			f[nf++] = w;
		if (nf == 0 || f[0][0] == '#')
			continue;
		if (nf < 2 || (strcmp(f[1], "ro") && strcmp(f[1], "rw"))) {
			free(text);
			return mq_error(MQ_EUSAGE, "token file '%s' line %zu: expected 'TOKEN ro|rw [TOPIC-GLOB...]'",
					path, lineno);
		}
		struct srv_token *nt = realloc(s->tokens, (s->ntokens + 1) * sizeof *nt);
		if (!nt)
			goto nomem;
		s->tokens = nt;
		struct srv_token *t = &s->tokens[s->ntokens++];
		memset(t, 0, sizeof *t);
		t->rw = !strcmp(f[1], "rw");
		snprintf(t->name, sizeof t->name, "%.4s...", f[0]);
		if (!(t->token = strdup(f[0])) || !(t->patterns = calloc(nf, sizeof *t->patterns)))
			goto nomem;
		for (size_t i = 2; i < nf; i++)
			if (!(t->patterns[t->npatterns++] = strdup(f[i])))
				goto nomem;
	}
	free(text);
	return 0;
nomem:
	free(text);
	return mq_syserr("cannot read token file '%s'", path);
}

/* Compares all of a and b whatever they hold: 1 when equal. */
static int same(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), n = la > lb ? la : lb;
	unsigned char d = la != lb;

	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)((i < la ? a[i] : 0) ^ (i < lb ? b[i] : 0));
	return d == 0;
}

void mq_srv_authenticate(struct srv_req *q, struct MHD_Connection *c)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");

	strcpy(q->who, "-");
	q->rw = !q->s->o.read_only;
	if (!q->s->auth)
		return;
	q->rw = 0;
	if (!h || strncasecmp(h, "Bearer ", 7))
		return;
	h += 7;
	for (size_t i = 0; i < q->s->ntokens; i++)
		if (same(h, q->s->tokens[i].token) && !q->tok)
			q->tok = &q->s->tokens[i];
	if (q->tok) {
		snprintf(q->who, sizeof q->who, "%s", q->tok->name);
		q->rw = q->tok->rw && !q->s->o.read_only;
	}
}

int mq_srv_may(const struct srv_req *q, int write, const char *topic)
{
	int ok = !write || q->rw;

	if (ok && topic && q->tok && q->tok->npatterns) {
		ok = 0;
		for (size_t i = 0; i < q->tok->npatterns; i++)
			if (fnmatch(q->tok->patterns[i], topic, 0) == 0)
				ok = 1;
	}
	return ok;
}

int mq_srv_allowed(struct srv_req *q, struct MHD_Connection *c, int write, const char *topic,
		   enum MHD_Result *res)
{
	if (q->s->auth && !q->tok) {
		struct MHD_Response *r = MHD_create_response_from_buffer(
			strlen("{\"error\":\"unauthorized\"}\n"), "{\"error\":\"unauthorized\"}\n",
			MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
		q->bytes = strlen("{\"error\":\"unauthorized\"}\n");
		MHD_add_response_header(r, "Content-Type", "application/json");
		*res = mq_srv_reply(q, c, 401, r);
		return -1;
	}
	if (write && q->s->o.read_only) {
		*res = mq_srv_error(q, c, 403, 0, "read-only server");
		return -1;
	}
	if (!mq_srv_may(q, write, topic)) {
		*res = mq_srv_error(q, c, 403, 0, "forbidden");
		return -1;
	}
	return 0;
}
