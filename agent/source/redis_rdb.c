/*
 * redis_rdb: the completeness check of a streamed RDB snapshot. See
 * redis_rdb.h.
 *
 * An RDB file is "REDIS" + four version digits, the records, the EOF opcode
 * 0xFF and the CRC-64 of everything before the checksum, little-endian (zero
 * when the server runs with rdbchecksum no). The filter passes bytes on as
 * they come but always holds back the last REDIS_RDB_HOLD: enough for the
 * checksum plus an EOF mark, so a stream can be cut at its true end.
 */
#include "agent/source/redis_rdb.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The reflected Jones polynomial (0xad93d23594c935a9 bit-reversed). */
#define REDIS_RDB_POLY 0x95ac9329ac4bc9b5ULL
#define REDIS_RDB_MAGIC 9   /* "REDIS0011" */
#define REDIS_RDB_TRAILER 9 /* 0xFF + 8-byte checksum */
#define REDIS_RDB_HOLD (REDIS_RDB_MARK + 8)

static uint64_t redis_rdb_table[8][256];
static pthread_once_t redis_rdb_once = PTHREAD_ONCE_INIT;

static void redis_rdb_table_init(void)
{
	for (unsigned i = 0; i < 256; i++) {
		uint64_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ REDIS_RDB_POLY : c >> 1;
		redis_rdb_table[0][i] = c;
	}
	for (unsigned i = 0; i < 256; i++)
		for (int k = 1; k < 8; k++)
			redis_rdb_table[k][i] =
			    (redis_rdb_table[k - 1][i] >> 8) ^
			    redis_rdb_table[0][redis_rdb_table[k - 1][i] & 0xff];
}

static uint64_t redis_rdb_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* Slicing-by-8: eight bytes per step, so the check keeps up with zstd. */
uint64_t redis_rdb_crc64(uint64_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;
	const uint64_t(*t)[256] = redis_rdb_table;

	pthread_once(&redis_rdb_once, redis_rdb_table_init);
	while (len >= 8) {
		crc ^= redis_rdb_le64(p);
		crc = t[7][crc & 0xff] ^ t[6][(crc >> 8) & 0xff] ^ t[5][(crc >> 16) & 0xff] ^
		      t[4][(crc >> 24) & 0xff] ^ t[3][(crc >> 32) & 0xff] ^
		      t[2][(crc >> 40) & 0xff] ^ t[1][(crc >> 48) & 0xff] ^ t[0][crc >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

struct redis_rdb {
	struct filter *out; /* not owned */
	uint64_t crc;       /* of the bytes passed on */
	uint64_t passed;    /* bytes passed on */
	uint8_t last;       /* the last byte passed on */
	uint8_t magic[REDIS_RDB_MAGIC];
	size_t magic_len;
	uint8_t hold[REDIS_RDB_HOLD]; /* the stream's last bytes, not passed on yet */
	size_t held;
};

static int redis_rdb_pass(struct redis_rdb *r, const uint8_t *data, size_t len)
{
	if (len == 0)
		return 0;
	r->crc = redis_rdb_crc64(r->crc, data, len);
	r->passed += len;
	r->last = data[len - 1];
	return filter_write(r->out, data, len);
}

static int redis_rdb_check_magic(struct redis_rdb *r, const uint8_t *data, size_t len)
{
	size_t n = REDIS_RDB_MAGIC - r->magic_len;

	if (n == 0)
		return 0;
	if (n > len)
		n = len;
	memcpy(r->magic + r->magic_len, data, n);
	r->magic_len += n;
	if (r->magic_len < REDIS_RDB_MAGIC)
		return 0;
	if (memcmp(r->magic, "REDIS", 5) != 0)
		return error_set(CF_ERR_FORMAT,
		                 "the stream is not an RDB file (it does not start with REDIS)");
	for (int i = 5; i < REDIS_RDB_MAGIC; i++)
		if (r->magic[i] < '0' || r->magic[i] > '9')
			return error_set(CF_ERR_FORMAT,
			                 "the stream is not an RDB file (bad version)");
	return 0;
}

static int redis_rdb_write(struct filter *f, const uint8_t *data, size_t len)
{
	struct redis_rdb *r = f->ctx;
	size_t release, from_hold;
	int rc;

	rc = redis_rdb_check_magic(r, data, len);
	if (rc)
		return rc;
	if (r->held + len <= REDIS_RDB_HOLD) {
		memcpy(r->hold + r->held, data, len);
		r->held += len;
		return 0;
	}
	/* Pass on all but the last REDIS_RDB_HOLD bytes of hold + data. */
	release = r->held + len - REDIS_RDB_HOLD;
	from_hold = release < r->held ? release : r->held;
	rc = redis_rdb_pass(r, r->hold, from_hold);
	if (rc)
		return rc;
	memmove(r->hold, r->hold + from_hold, r->held - from_hold);
	r->held -= from_hold;
	rc = redis_rdb_pass(r, data, release - from_hold);
	if (rc)
		return rc;
	data += release - from_hold;
	len -= release - from_hold;
	memcpy(r->hold + r->held, data, len);
	r->held += len;
	f->bytes_out = r->passed;
	return 0;
}

static void redis_rdb_free(struct filter *f)
{
	free(f->ctx);
}

static const struct filter_ops redis_rdb_ops = {"rdb-check", redis_rdb_write, NULL, redis_rdb_free};

int redis_rdb_filter_new(struct filter *out, struct filter **f)
{
	struct redis_rdb *r = calloc(1, sizeof(*r));

	if (!r)
		return error_set(CF_ERR_NOMEM, "out of memory");
	r->out = out;
	*f = filter_new(&redis_rdb_ops, r);
	return *f ? 0 : CF_ERR_NOMEM;
}

/* Whether the RDB can end at n (of the stream's len bytes): EOF opcode and
 * checksum in place. Sets *stored to the stored checksum. */
static int redis_rdb_trailer_ok(const struct redis_rdb *r, uint64_t n, uint64_t *stored,
                                uint64_t *computed)
{
	uint64_t len = r->passed + r->held;
	uint8_t eof;

	if (n < REDIS_RDB_MAGIC + REDIS_RDB_TRAILER || n > len || n - 8 < r->passed ||
	    n - REDIS_RDB_TRAILER + 1 < r->passed)
		return 0;
	eof = n - REDIS_RDB_TRAILER >= r->passed ? r->hold[n - REDIS_RDB_TRAILER - r->passed]
	                                         : r->last;
	*stored = redis_rdb_le64(r->hold + (n - 8 - r->passed));
	*computed = redis_rdb_crc64(r->crc, r->hold, (size_t)(n - 8 - r->passed));
	return eof == 0xff;
}

/* Whether the stream's bytes after n are exactly an EOF mark (hex digits). */
static int redis_rdb_mark_after(const struct redis_rdb *r, uint64_t n)
{
	uint64_t len = r->passed + r->held;

	if (n < r->passed || len - n != REDIS_RDB_MARK)
		return 0;
	for (uint64_t i = n; i < len; i++) {
		uint8_t c = r->hold[i - r->passed];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return 0;
	}
	return 1;
}

int redis_rdb_filter_end(struct filter *f, long long rdb_len, int *checksummed)
{
	struct redis_rdb *r = f->ctx;
	uint64_t len = r->passed + r->held, n, stored = 0, computed = 0;
	int ok;

	if (len < REDIS_RDB_MAGIC + REDIS_RDB_TRAILER)
		return error_set(CF_ERR_FORMAT, "the RDB stream is truncated (%llu bytes)",
		                 (unsigned long long)len);
	if (rdb_len >= 0) {
		n = (uint64_t)rdb_len;
		if (n != len && !(n + REDIS_RDB_MARK == len && redis_rdb_mark_after(r, n)))
			return error_set(
			    CF_ERR_FORMAT,
			    "the RDB stream has %llu bytes where redis-cli reported %llu",
			    (unsigned long long)len, (unsigned long long)n);
		ok = redis_rdb_trailer_ok(r, n, &stored, &computed);
	} else {
		n = len;
		ok = redis_rdb_trailer_ok(r, n, &stored, &computed);
		if (!ok && redis_rdb_mark_after(r, len - REDIS_RDB_MARK)) {
			n = len - REDIS_RDB_MARK;
			ok = redis_rdb_trailer_ok(r, n, &stored, &computed);
		}
	}
	if (!ok)
		return error_set(CF_ERR_FORMAT,
		                 "the RDB stream is truncated or corrupt: it does not end with the "
		                 "end-of-file opcode and checksum (%llu bytes)",
		                 (unsigned long long)len);
	if (stored != 0 && stored != computed)
		return error_set(CF_ERR_FORMAT,
		                 "the RDB stream is corrupt: checksum %016llx, computed %016llx",
		                 (unsigned long long)stored, (unsigned long long)computed);
	*checksummed = stored != 0;
	/* The RDB's last bytes go on; the EOF mark, if any, does not. */
	return filter_write(r->out, r->hold, (size_t)(n - r->passed));
}
