/*
 * pgphys_restore: a postgres-physical base backup's files laid down in a
 * folder: for `restore --to-datadir` (restore_pitr.c) and the drill of such
 * a backup (source_pgphys.c).
 */
#ifndef COFFER_PGPHYS_RESTORE_H
#define COFFER_PGPHYS_RESTORE_H

#include "agent/agent.h"

/* Whether dir exists (*exists); fails unless it is missing or an empty
 * folder. Errors: CF_ERR_EXISTS (not empty, or not a folder: named), CF_ERR_IO. */
int pgphys_dir_empty(const char *dir, int *exists);

/* What pgphys_lay_down() put outside its folder: the tablespace folders it
 * created (made) and those that existed empty (filled, a mount point for
 * example). pgphys_undo() removes the first, empties the second, and frees
 * both lists: a failed restore leaves them as they were. */
struct pgphys_outside {
	struct strv made, filled;
};
void pgphys_undo(struct pgphys_outside *o);

/*
 * Lays base backup b down: its base object into dir, the server's
 * backup_manifest beside it, and each tablespace into a location (with
 * ts_root, ts_root/OID; else its NEW in tsmap, "OLD=NEW" strings; else its
 * own), which must be new or empty, the pg_tblspc link in dir pointing
 * there; out receives what it wrote there. Errors: those of
 * the restore stream (the storage's, age's, zstd's, CF_ERR_INTEGRITY),
 * CF_ERR_EXISTS, CF_ERR_FORMAT (a tablespace object without its location),
 * CF_ERR_IO, CF_ERR_NOSPACE.
 */
int pgphys_lay_down(struct storage *st, const struct catalog_backup *b,
                    const struct age_identities *ids, const char *dir, const struct strv *tsmap,
                    const char *ts_root, int progress, struct pgphys_outside *out);

#endif
