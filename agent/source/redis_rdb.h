/*
 * redis_rdb: checks that a Redis RDB snapshot streamed by `redis-cli --rdb -`
 * is complete before the redis source commits it: the "REDISnnnn" magic at
 * the start, the end-of-file opcode (0xFF) and the CRC-64 (Jones) of
 * everything before the checksum at the end.
 *
 * It also removes what redis-cli 7.0 leaves after the RDB when it writes a
 * diskless ("EOF-marked") transfer to a pipe: the 40-character EOF mark,
 * which it only truncates away when writing to a file.
 *
 * It does not parse the RDB's records; redis-check-rdb does that.
 */
#ifndef COFFER_REDIS_RDB_H
#define COFFER_REDIS_RDB_H

#include "common/common.h"

/* The length of the EOF mark of a diskless transfer (Redis' RDB_EOF_MARK_SIZE). */
#define REDIS_RDB_MARK 40

/* CRC-64/Jones as Redis computes it (reflected, init crc, no final xor):
 * redis_rdb_crc64(0, "123456789", 9) == 0xe9c6d914c4b8d9ca. */
uint64_t redis_rdb_crc64(uint64_t crc, const void *data, size_t len);

/*
 * A filter that passes an RDB stream on to out (not owned, not finished by
 * it) while holding back its last bytes, which may be the checksum or an EOF
 * mark. Writes fail when the stream does not start like an RDB file.
 * Errors: CF_ERR_NOMEM; writes: CF_ERR_FORMAT, and whatever out returns.
 */
int redis_rdb_filter_new(struct filter *out, struct filter **f);

/*
 * Ends the stream of f: decides where the RDB ends (at rdb_len when the tool
 * reported it, else by finding a valid trailer at the end or just before a
 * trailing EOF mark), checks its trailer and passes the held-back bytes of the
 * RDB (not the mark) on to out. *checksummed is set to 0 when the RDB was
 * written with rdbchecksum no (its stored checksum is zero), else 1.
 * Errors: CF_ERR_FORMAT (truncated, no EOF opcode, checksum mismatch, a
 * length that does not fit), and whatever out returns.
 */
int redis_rdb_filter_end(struct filter *f, long long rdb_len, int *checksummed);

#endif
