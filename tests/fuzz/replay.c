/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Replays inputs through a fuzz target without libFuzzer: every file given,
 * every file in every directory given, or with no arguments the target's
 * committed corpus and crash regressions (tests/fuzz/{corpus,regressions}/
 * VP_FUZZ_TARGET under VP_FUZZ_SRCDIR).  Files run in name order, so a
 * failure reproduces the same way.  Exit 0 when every input ran through.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int run_file(const char *path)
{
	size_t len;
	char *data = fuzz_read_file(path, &len);

	if (!data) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	LLVMFuzzerTestOneInput((const uint8_t *)data, len);
	free(data);
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Run path (a file, or the files of a directory); returns inputs run or -1. */
static long run_path(const char *path, bool missing_ok)
{
	struct dirent **names;
	struct stat st;
	long count = 0;
	int n;

	if (stat(path, &st)) {
		if (missing_ok && errno == ENOENT)
			return 0;
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return run_file(path) ? -1 : 1;
	n = scandir(path, &names, NULL, by_name);
	if (n < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; ++i) {
		char file[PATH_MAX];

		snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name);
		if (names[i]->d_name[0] != '.' && count >= 0 &&
		    !stat(file, &st) && S_ISREG(st.st_mode))
			count = run_file(file) ? -1 : count + 1;
		free(names[i]);
	}
	free(names);
	return count;
}

int main(int argc, char **argv)
{
	long total = 0, n;

	if (argc > 1) {
		for (int i = 1; i < argc; ++i) {
			n = run_path(argv[i], false);
			if (n < 0)
				return 1;
			total += n;
		}
	} else {
		static const char *const kinds[] = { "corpus", "regressions" };

		for (int k = 0; k < 2; ++k) {
			char dir[PATH_MAX];

			snprintf(dir, sizeof(dir), "%s/%s/%s", VP_FUZZ_SRCDIR, kinds[k],
				 VP_FUZZ_TARGET);
			n = run_path(dir, k == 1);
			if (n < 0)
				return 1;
			printf("%s: %ld inputs replayed\n", dir, n);
			total += n;
		}
		/* A corpus that went missing must not pass as "nothing failed". */
		if (total == 0) {
			fprintf(stderr, "fuzz_%s: no inputs found under %s\n", VP_FUZZ_TARGET,
				VP_FUZZ_SRCDIR);
			return 1;
		}
	}
	printf("fuzz_%s: %ld inputs, all passed\n", VP_FUZZ_TARGET, total);
	return 0;
}
