/*
 * storage_intern: the driver vtable. Only storage.c and the drivers include
 * this; callers use storage.h.
 */
#ifndef COFFER_STORAGE_INTERN_H
#define COFFER_STORAGE_INTERN_H

#include "storage/storage.h"

struct storage_driver {
	const char *name;
	uint32_t features;
	/* Each function has the contract of its storage_* twin; drv is the
	 * driver's own state returned by open, wctx a write's state. */
	int (*open)(const struct storage_options *opts, void **drv);
	void (*free)(void *drv);
	const char *(*describe)(void *drv);
	int (*write_new)(void *drv, const char *key, void **wctx);
	int (*write_data)(void *wctx, const void *data, size_t len);
	int (*write_commit)(void *wctx);
	void (*write_abort)(void *wctx);
	int (*read)(void *drv, const char *key, uint64_t offset, uint64_t length,
	            storage_read_cb cb, void *ctx);
	int (*list)(void *drv, const char *prefix, storage_list_cb cb, void *ctx);
	int (*head)(void *drv, const char *key, struct storage_info *info);
	int (*remove)(void *drv, const char *key);
	/* Optional: NULL makes storage_delete_many() call remove per key. */
	int (*remove_many)(void *drv, const char *const *keys, size_t n);
	int (*cleanup)(void *drv, const char *prefix, int64_t older_than_ms, int64_t now_ms,
	               unsigned *removed);
	/* Optional: a server-side copy from src (the same driver) into drv;
	 * NULL makes storage_copy() CF_ERR_UNSUPPORTED. */
	int (*copy)(void *drv, void *src, const char *key, uint64_t size);
};

extern const struct storage_driver storage_posix_driver;
extern const struct storage_driver storage_s3_driver;

#endif
