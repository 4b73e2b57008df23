/*
 * config_ini: the strict reader of coffer.conf's INI syntax (the rules are in
 * README "Configuration"; config.c gives them meaning).
 *
 * One pass, one line in memory at a time (at most CONFIG_INI_LINE_MAX bytes),
 * linear in the file's size. Each [section] header and each key = value line
 * is handed to a callback with its line number; anything the rules do not
 * allow is an error naming FILE:LINE, never a guess:
 *  - a line longer than CONFIG_INI_LINE_MAX, a NUL byte;
 *  - a header without its closing ']', or with text after it;
 *  - a line that is neither a comment, a header nor key = value;
 *  - a key that is not [a-z0-9_] (so "paths = X" followed by an indented
 *    "exclude = Y" are two keys: there are no continuation lines);
 *  - a ';' or '#' after a blank inside a value, behind a quote that is
 *    never closed (it is unclear whether it starts a comment).
 */
#ifndef COFFER_CONFIG_INI_H
#define COFFER_CONFIG_INI_H

#include <stdio.h>

#define CONFIG_INI_LINE_MAX (64 * 1024)

/* One event: a header (key == NULL; section is the text between the
 * brackets, blanks trimmed and runs of blanks made one space) or a key line
 * (key and value, comment and surrounding blanks removed; quotes are kept in
 * the value, whose reader interprets them). */
struct config_ini_item {
	int line;
	const char *section; /* the current header's text, "" before the first */
	const char *key;
	const char *value;
};

/* Returns 0 to go on, or a CF_ERR_ code (with error_set()) to stop. */
typedef int (*config_ini_fn)(void *ctx, const struct config_ini_item *item);

/*
 * Reads fp to its end, calling fn for each header and key line in order.
 * file names the input in errors ("FILE:LINE: ..."). Errors: CF_ERR_CONFIG
 * (the syntax), CF_ERR_IO (reading; a folder given as the file), CF_ERR_NOMEM,
 * or fn's code.
 */
int config_ini_parse(FILE *fp, const char *file, config_ini_fn fn, void *ctx);

#endif
