/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the fuzz targets share.  Each target is one LLVMFuzzerTestOneInput;
 * built with --enable-fuzzing it links libFuzzer, built normally it links
 * replay.c, which feeds it the committed corpus and the crash regressions
 * (make check).  A broken property aborts, as a sanitizer would.
 */
#ifndef VP_FUZZ_H
#define VP_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort with the property that failed and where. */
#define FUZZ_CHECK(cond)                                                              \
	do {                                                                          \
		if (!(cond))                                                          \
			fuzz_fail(__FILE__, __LINE__, #cond);                         \
	} while (0)
_Noreturn void fuzz_fail(const char *file, int line, const char *what);

/* data as a NUL-terminated copy (malloc'ed; aborts when out of memory). */
char *fuzz_strndup(const uint8_t *data, size_t size);

/* A scratch directory made once per process under TMPDIR and removed at
 * exit; fuzz_dir_clear() empties it (one level of subdirectories too). */
const char *fuzz_dir(void);
void fuzz_dir_clear(const char *dir);
/* Write len bytes to dir/name; aborts on failure. */
void fuzz_write_file(const char *dir, const char *name, const void *data, size_t len);
/* The whole file as a NUL-terminated string (NULL if missing); *len set. */
char *fuzz_read_file(const char *path, size_t *len);

#endif
