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
 * encoded).  Integers are written with a two-digits-at-a-time itoa, not
 * snprintf.
 */
#include <stdlib.h>
#include <string.h>

#include "mq.h"

/* Until these move to mq.h. */
struct mq_format;
int mq_format_compile(const char *fmt, struct mq_format **out);
void mq_format_free(struct mq_format *f);
int mq_format_record(struct mq_buf *out, const struct mq_format *f, const char *topic,
		     int32_t partition, const struct mq_record *r);

enum {
	OP_LIT, OP_TOPIC, OP_PARTITION, OP_OFFSET, OP_KEY, OP_VALUE,
	OP_VALUE_SIZE, OP_KEY_SIZE, OP_TIMESTAMP, OP_DATE, OP_HEADERS,
};

#define INT_MAX_CHARS 20   /* "-9223372036854775808" */
#define DATE_MAX_CHARS 64  /* mq_format_time: 24 up to year 9999, ~30 at most */

struct op {
	int kind;
	size_t len;             /* OP_LIT */
	const uint8_t *lit;     /* OP_LIT: into mq_format.lits */
};

struct mq_format {
	struct op *ops;
	size_t nops;
	size_t fixed;           /* bytes every record takes at most, apart from: */
	size_t ntopic, nkey, nvalue, nheaders;   /* uses of each */
	uint8_t *lits;          /* literal bytes, escapes applied */
};

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

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
	int kind, hi, lo;

	/* Every op consumes at least one character of fmt, and escapes only
	 * shrink, so n bounds both arrays. */
	if (!(f = calloc(1, sizeof *f)) ||
	    !(f->ops = malloc((n + 1) * sizeof *f->ops)) ||
	    !(f->lits = malloc(n + 1))) {
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
			switch (*++p) {
			case 'n': add_lit(f, &nlit, '\n'); break;
			case 't': add_lit(f, &nlit, '\t'); break;
			case 'r': add_lit(f, &nlit, '\r'); break;
			case '0': add_lit(f, &nlit, '\0'); break;
			case '\\': add_lit(f, &nlit, '\\'); break;
			case 'x':
				if (p[1] == '\0' || p[2] == '\0')
					goto ends;
				if ((hi = hexval((unsigned char)p[1])) < 0 ||
				    (lo = hexval((unsigned char)p[2])) < 0) {
					mq_format_free(f);
					return mq_error(MQ_EUSAGE, "invalid escape '\\x%c%c' in format",
							p[1], p[2]);
				}
				add_lit(f, &nlit, (uint8_t)(hi << 4 | lo));
				p += 2;
				break;
			case '\0':
				goto ends;
			default:
				mq_format_free(f);
				return mq_error(MQ_EUSAGE, "invalid escape '\\%c' in format", *p);
			}
		} else {
			add_lit(f, &nlit, (uint8_t)*p);
		}
	}
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

static unsigned ndigits(uint64_t v)
{
	unsigned n = 1;

	for (;;) {
		if (v < 10) return n;
		if (v < 100) return n + 1;
		if (v < 1000) return n + 2;
		if (v < 10000) return n + 3;
		v /= 10000;
		n += 4;
	}
}

/* Writes v in decimal at p; returns the length. */
static size_t put_i64(uint8_t *p, int64_t v)
{
	uint64_t u = (uint64_t)v;
	size_t neg = 0, n;
	uint8_t *q;

	if (v < 0) {
		*p++ = '-';
		u = 0 - u;
		neg = 1;
	}
	n = ndigits(u);
	q = p + n;
	while (u >= 100) {
		unsigned d = (unsigned)(u % 100) * 2;
		u /= 100;
		*--q = (uint8_t)digits2[d + 1];
		*--q = (uint8_t)digits2[d];
	}
	if (u >= 10) {
		*--q = (uint8_t)digits2[u * 2 + 1];
		*--q = (uint8_t)digits2[u * 2];
	} else {
		*--q = (uint8_t)('0' + u);
	}
	return neg + n;
}

/* Writes the headers as "k=v,k2=v2" at p; returns the length, or -1
 * when they are malformed. */
static ssize_t put_headers(uint8_t *p, const struct mq_record *r)
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
		memcpy(q, h.key, (size_t)h.key_len);
		q += h.key_len;
		if (h.value_len >= 0) {
			*q++ = '=';
			if (h.value_len > 0)
				memcpy(q, h.value, (size_t)h.value_len);
			q += h.value_len;
		}
	}
	return q - p;
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
	uint64_t need = f->fixed + f->nvalue * (uint64_t)vlen + f->nkey * (uint64_t)klen +
			f->ntopic * (uint64_t)tlen + f->nheaders * (uint64_t)r->headers_len;
	const struct op *op, *end = f->ops + f->nops;
	uint8_t *p;
	ssize_t hn;
	char date[DATE_MAX_CHARS];
	size_t dn;

	if (need > SIZE_MAX)
		return mq_error(MQ_EIO, "out of memory");
	if (out->cap - out->len < need && mq_buf_reserve(out, (size_t)need) < 0)
		return -1;
	p = out->p + out->len;
	for (op = f->ops; op < end; op++) {
		switch (op->kind) {
		case OP_LIT:
			memcpy(p, op->lit, op->len);
			p += op->len;
			break;
		case OP_VALUE:
			if (vlen)
				memcpy(p, r->value, vlen);
			p += vlen;
			break;
		case OP_KEY:
			if (klen)
				memcpy(p, r->key, klen);
			p += klen;
			break;
		case OP_TOPIC:
			if (tlen)
				memcpy(p, topic, tlen);
			p += tlen;
			break;
		case OP_PARTITION:
			p += put_i64(p, partition);
			break;
		case OP_OFFSET:
			p += put_i64(p, r->offset);
			break;
		case OP_VALUE_SIZE:
			p += put_i64(p, r->value_len < 0 ? -1 : r->value_len);
			break;
		case OP_KEY_SIZE:
			p += put_i64(p, r->key_len < 0 ? -1 : r->key_len);
			break;
		case OP_TIMESTAMP:
			p += put_i64(p, r->timestamp);
			break;
		case OP_DATE:
			mq_format_time(r->timestamp, date, sizeof date);
			dn = strlen(date);
			memcpy(p, date, dn);
			p += dn;
			break;
		case OP_HEADERS:
			if ((hn = put_headers(p, r)) < 0)
				return -1;
			p += hn;
			break;
		}
	}
	out->len = (size_t)(p - out->p);
	return 0;
}
