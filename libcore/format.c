/*
 * format.c: records printed through kcat-style format strings, the
 * default output of mq-consume (DESIGN.md §6):
 *
 *   mq-consume -f '%t/%p@%o %k=%s\n' logs
 *   logs/0@42 host1=GET /
 *
 * Tokens: %t topic, %p partition, %o offset, %k key, %s value, %S value
 * size, %K key size, %T timestamp (epoch ms), %D timestamp as ISO 8601
 * UTC, %h headers as "k=v,k2=v2" (a null value shows as just "k"), %% a
 * percent sign.  Escapes: \n \t \r \0 \\ \xNN.  Null keys and values
 * print as nothing and their sizes as -1.  Keys and values are copied as
 * they are, NUL bytes and all.
 *
 * This is the consumer's hot path, so the string is compiled once into
 * an array of ops (literal spans with escapes already applied, and
 * tokens), and formatting a record is one pass over that array writing
 * straight into the output buffer.  The buffer is grown at most once per
 * record, to an upper bound computed up front: the literals and the
 * fixed-width tokens are a constant of the format, to which the record
 * adds the key, value, topic and encoded headers times the number of
 * times each appears (a header prints in no more bytes than it takes
 * encoded), plus a little slack so that short literals can be copied as
 * one fixed-size move.  Short keys are copied inline, and integers are
 * written two digits at a time in 32-bit arithmetic, not with snprintf.
 * '%s\n' costs a few ns per record beyond the memcpy of the value.
 */
#include <stdlib.h>
#include <string.h>

#include "mq.h"

enum {
	OP_LIT, OP_LIT16, OP_TOPIC, OP_PARTITION, OP_OFFSET, OP_KEY, OP_VALUE,
	OP_VALUE_SIZE, OP_KEY_SIZE, OP_TIMESTAMP, OP_DATE, OP_HEADERS,
};

#define INT_MAX_CHARS 20   /* "-9223372036854775808" */
#define DATE_MAX_CHARS 64  /* mq_format_time: 24 up to year 9999, ~30 at most */
/* Literals of at most SLACK bytes are copied as one fixed-size SLACK-byte
 * move (OP_LIT16): the bytes past the literal land in room reserved for
 * that and are overwritten by what follows or left past out->len. */
#define SLACK 16

struct op {
	int kind;
	size_t len;             /* OP_LIT, OP_LIT16 */
	const uint8_t *lit;     /* into mq_format.lits, SLACK bytes readable */
};

struct mq_format {
	struct op *ops;
	size_t nops;
	size_t fixed;           /* bytes every record takes at most, apart from: */
	size_t ntopic, nkey, nvalue, nheaders;   /* uses of each */
	uint8_t *lits;          /* literal bytes, escapes applied */
};

/* Adds one literal byte, extending the literal op in progress or
 * starting one.  The literal bytes of consecutive ops are contiguous in
 * f->lits, so extending is a length increment. */
static void add_lit(struct mq_format *f, size_t *nlit, uint8_t c)
{
	if (f->nops == 0 || f->ops[f->nops - 1].kind != OP_LIT) {
		f->ops[f->nops].kind = OP_LIT;
		f->ops[f->nops].len = 0;
		f->ops[f->nops].lit = f->lits + *nlit;
		f->nops++;
	}
	f->lits[(*nlit)++] = c;
	f->ops[f->nops - 1].len++;
	f->fixed++;
}

static int token(char c)
{
	switch (c) {
	case 't': return OP_TOPIC;
	case 'p': return OP_PARTITION;
	case 'o': return OP_OFFSET;
	case 'k': return OP_KEY;
	case 's': return OP_VALUE;
	case 'S': return OP_VALUE_SIZE;
	case 'K': return OP_KEY_SIZE;
	case 'T': return OP_TIMESTAMP;
	case 'D': return OP_DATE;
	case 'h': return OP_HEADERS;
	default: return -1;
	}
}

/* Compiles fmt.  0 with *out set, or -1 with MQ_EUSAGE naming the
 * problem ("unknown format token '%q'", "invalid escape '\q' in format",
 * "format ends inside an escape", "format ends with a lone '%'"), or
 * MQ_EIO when out of memory. */
int mq_format_compile(const char *fmt, struct mq_format **out)
{
	struct mq_format *f;
	size_t n = strlen(fmt), nlit = 0;
	const char *p;
	int kind;

	/* Every op consumes at least one character of fmt, and escapes only
	 * shrink, so n bounds both arrays. */
	if (!(f = calloc(1, sizeof *f)) ||
	    !(f->ops = malloc((n + 1) * sizeof *f->ops)) ||
	    !(f->lits = calloc(1, n + SLACK))) {
		mq_format_free(f);
		return mq_error(MQ_EIO, "out of memory");
	}
	for (p = fmt; *p; p++) {
		if (*p == '%') {
			if (p[1] == '\0') {
				mq_format_free(f);
				return mq_error(MQ_EUSAGE, "format ends with a lone '%%'");
			}
			p++;
			if (*p == '%') {
				add_lit(f, &nlit, '%');
				continue;
			}
			if ((kind = token(*p)) < 0) {
				mq_format_free(f);
				return mq_error(MQ_EUSAGE, "unknown format token '%%%c'", *p);
			}
			f->ops[f->nops].kind = kind;
			f->ops[f->nops].len = 0;
			f->ops[f->nops].lit = NULL;
			f->nops++;
			switch (kind) {
			case OP_TOPIC: f->ntopic++; break;
			case OP_KEY: f->nkey++; break;
			case OP_VALUE: f->nvalue++; break;
			case OP_HEADERS: f->nheaders++; break;
			case OP_DATE: f->fixed += DATE_MAX_CHARS; break;
			default: f->fixed += INT_MAX_CHARS; break;
			}
		} else if (*p == '\\') {
			int c = mq_escape(&p);
			if (c == -2)
				goto ends;
			if (c < 0) {
				mq_format_free(f);
				if (p[1] == 'x')
					return mq_error(MQ_EUSAGE, "invalid escape '\\x%c%c' in format",
							p[2], p[3]);
				return mq_error(MQ_EUSAGE, "invalid escape '\\%c' in format", p[1]);
			}
			add_lit(f, &nlit, (uint8_t)c);
		} else {
			add_lit(f, &nlit, (uint8_t)*p);
		}
	}
	for (size_t i = 0; i < f->nops; i++)
		if (f->ops[i].kind == OP_LIT && f->ops[i].len <= SLACK)
			f->ops[i].kind = OP_LIT16;
	f->fixed += SLACK;
	*out = f;
	return 0;
ends:
	mq_format_free(f);
	return mq_error(MQ_EUSAGE, "format ends inside an escape");
}

void mq_format_free(struct mq_format *f)
{
	if (!f)
		return;
	free(f->ops);
	free(f->lits);
	free(f);
}

static const char digits2[201] =
	"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

static unsigned ndigits32(uint32_t v)
{
	if (v < 10) return 1;
	if (v < 100) return 2;
	if (v < 1000) return 3;
	if (v < 10000) return 4;
	if (v < 100000) return 5;
	if (v < 1000000) return 6;
	if (v < 10000000) return 7;
	if (v < 100000000) return 8;
	if (v < 1000000000) return 9;
	return 10;
}

/* Writes the last n digits of v backwards from end (32-bit arithmetic:
 * cheaper than 64-bit, and enough for offsets below 2^32 and for the
 * 8-digit groups of larger numbers). */
static void put_digits32(uint8_t *end, uint32_t v, unsigned n)
{
	while (n >= 2) {
		unsigned d = v % 100 * 2;
		v /= 100;
		*--end = (uint8_t)digits2[d + 1];
		*--end = (uint8_t)digits2[d];
		n -= 2;
	}
	if (n)
		*--end = (uint8_t)('0' + v % 10);
}

static size_t put_u64(uint8_t *p, uint64_t u)
{
	size_t n;

	if (u <= UINT32_MAX) {
		n = ndigits32((uint32_t)u);
		put_digits32(p + n, (uint32_t)u, (unsigned)n);
		return n;
	}
	n = put_u64(p, u / 100000000);
	put_digits32(p + n + 8, (uint32_t)(u % 100000000), 8);
	return n + 8;
}

/* Writes v in decimal at p; returns the length. */
static size_t put_i64(uint8_t *p, int64_t v)
{
	if (v < 0) {
		*p = '-';
		return 1 + put_u64(p + 1, 0 - (uint64_t)v);
	}
	return put_u64(p, (uint64_t)v);
}

/* memcpy with the short lengths of keys done inline (no call). */
static inline uint8_t *put_bytes(uint8_t *p, const uint8_t *s, size_t n)
{
	if (n >= 8) {
		if (n > 16) {
			memcpy(p, s, n);
		} else {
			memcpy(p, s, 8);
			memcpy(p + n - 8, s + n - 8, 8);
		}
	} else if (n >= 4) {
		memcpy(p, s, 4);
		memcpy(p + n - 4, s + n - 4, 4);
	} else if (n > 0) {
		p[0] = s[0];
		p[n / 2] = s[n / 2];
		p[n - 1] = s[n - 1];
	}
	return p + n;
}

/* Writes the timestamp as ISO 8601 at p; returns the length. */
static __attribute__((noinline)) size_t put_date(uint8_t *p, int64_t ms)
{
	char date[DATE_MAX_CHARS];
	size_t n;

	mq_format_time(ms, date, sizeof date);
	n = strlen(date);
	memcpy(p, date, n);
	return n;
}

/* Writes the headers as "k=v,k2=v2" at p; returns the length, or -1
 * when they are malformed. */
static __attribute__((noinline)) ssize_t put_headers(uint8_t *p, const struct mq_record *r)
{
	struct mq_header h;
	size_t pos = 0;
	uint8_t *q = p;
	int32_t i;
	int rc;

	if (r->headers_len == 0)
		return 0;
	for (i = 0; i < r->header_count; i++) {
		if ((rc = mq_header_next(r, &pos, &h)) < 0)
			return -1;
		if (rc == 0)
			break;
		if (i > 0)
			*q++ = ',';
		q = put_bytes(q, h.key, (size_t)h.key_len);
		if (h.value_len >= 0) {
			*q++ = '=';
			q = put_bytes(q, h.value, (size_t)h.value_len);
		}
	}
	return q - p;
}

/* Writes the tokens other than keys, values and literals at p; returns
 * the length, or -1 when the headers are malformed.  Out of line, so that
 * the loop below stays small. */
static __attribute__((noinline)) ssize_t put_token(uint8_t *p, int kind, const char *topic,
						   size_t tlen, int32_t partition,
						   const struct mq_record *r)
{
	switch (kind) {
	case OP_TOPIC:
		return put_bytes(p, (const uint8_t *)topic, tlen) - p;
	case OP_PARTITION:
		return (ssize_t)put_i64(p, partition);
	case OP_OFFSET:
		return (ssize_t)put_i64(p, r->offset);
	case OP_VALUE_SIZE:
		return (ssize_t)put_i64(p, r->value_len < 0 ? -1 : r->value_len);
	case OP_KEY_SIZE:
		return (ssize_t)put_i64(p, r->key_len < 0 ? -1 : r->key_len);
	case OP_TIMESTAMP:
		return (ssize_t)put_i64(p, r->timestamp);
	case OP_DATE:
		return (ssize_t)put_date(p, r->timestamp);
	case OP_HEADERS:
		return put_headers(p, r);
	}
	return 0;
}

/* Appends the record formatted to out.  0, or -1: MQ_EIO when out of
 * memory, MQ_ECORRUPT when the record's headers are malformed (out is
 * left as it was in both cases). */
int mq_format_record(struct mq_buf *out, const struct mq_format *f, const char *topic,
		     int32_t partition, const struct mq_record *r)
{
	size_t klen = r->key_len > 0 ? (size_t)r->key_len : 0;
	size_t vlen = r->value_len > 0 ? (size_t)r->value_len : 0;
	size_t tlen = f->ntopic && topic ? strlen(topic) : 0;
	/* Each term is below 2^31 times the format's length: no overflow. */
	uint64_t need = f->fixed + f->nvalue * (uint64_t)vlen + f->nkey * (uint64_t)klen +
			f->ntopic * (uint64_t)tlen +
			(f->nheaders ? f->nheaders * (uint64_t)r->headers_len : 0);
	const struct op *op, *end = f->ops + f->nops;
	uint8_t *p;
	ssize_t n;

	if (out->cap - out->len < need) {
		if (need > SIZE_MAX)
			return mq_error(MQ_EIO, "out of memory");
		if (mq_buf_reserve(out, (size_t)need) < 0)
			return -1;
	}
	p = out->p + out->len;
	for (op = f->ops; op < end; op++) {
		if (op->kind == OP_LIT16) {
			memcpy(p, op->lit, SLACK);
			p += op->len;
		} else if (op->kind == OP_VALUE) {
			p = put_bytes(p, r->value, vlen);
		} else if (op->kind == OP_KEY) {
			p = put_bytes(p, r->key, klen);
		} else if (op->kind == OP_LIT) {
			memcpy(p, op->lit, op->len);
			p += op->len;
		} else {
			if ((n = put_token(p, op->kind, topic, tlen, partition, r)) < 0)
				return -1;
			p += n;
		}
	}
	out->len = (size_t)(p - out->p);
	return 0;
}
