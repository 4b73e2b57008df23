/*
 * verify: checking that a stored object of a backup is what its manifest
 * says, without restoring it anywhere (`coffer verify`).
 *
 * Two depths:
 * - stored (no identity needed, so a backup host holding only the public
 *   recipients can run it): the object exists, has the recorded size and
 *   SHA-256 (a full streamed read), and its age header has one X25519
 *   stanza per recorded recipient;
 * - content (with an identity): also decrypted (every age chunk
 *   authenticated) and decompressed to the end, through the restore stream,
 *   and the plaintext checked for its format: a tar read entry by entry to
 *   its end by libarchive (each file's size as its header says; a
 *   Kubernetes archive's manifests parsed as YAML), a pg_dump custom archive
 *   read by `pg_restore --list` (its header only without pg_restore), a SQL
 *   dump's completion line, an RDB's header, EOF opcode and CRC-64, a SQLite
 *   database's PRAGMA integrity_check (on a copy in the process's private
 *   temporary folder: the one check that needs disk, as much as the
 *   database), a mongodump archive's magic number.
 *
 * Memory is bounded by the stream's buffers, never by the object's size.
 * Every error names the object's key; the caller adds backup and target.
 */
#ifndef COFFER_VERIFY_H
#define COFFER_VERIFY_H

#include "catalog/catalog.h"
#include "crypto/crypto.h"
#include "storage/storage.h"

/*
 * Checks object obj of backup b in st: stored only when ids is NULL, else
 * content too. *bytes gets the stored bytes read. Errors: CF_ERR_INTEGRITY
 * (missing, size, SHA-256, age header, plaintext size), CF_ERR_FORMAT (the
 * plaintext is not what its format says), the age errors
 * (CF_ERR_AGE_NOMATCH: the identity is not a recipient, CF_ERR_AGE_HMAC,
 * CF_ERR_AGE_PAYLOAD), CF_ERR_COMPRESS, CF_ERR_STORAGE, CF_ERR_NOMEM,
 * CF_ERR_INTERRUPTED.
 */
int verify_object(struct storage *st, const struct catalog_backup *b,
                  const struct catalog_object *obj, const struct age_identities *ids,
                  uint64_t *bytes);

#endif
