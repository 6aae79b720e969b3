/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"

static int direct_open(void *ud, const char *path, int flags, mode_t mode)
{
	int fd;

	(void)ud;
	do
		fd = open(path, flags | O_CLOEXEC, mode);
	while (fd < 0 && errno == EINTR);
	return fd < 0 ? -errno : fd;
}

static int direct_rename(void *ud, const char *from, const char *to)
{
	(void)ud;
	return rename(from, to) ? -errno : 0;
}

static int direct_unlink(void *ud, const char *path)
{
	(void)ud;
	return unlink(path) ? -errno : 0;
}

int vp_fs_mkdirs_direct(const char *dir, mode_t mode)
{
	char path[PATH_MAX];
	size_t len = strlen(dir);

	if (!len)
		return -ENOENT;
	if (len >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, len + 1);
	for (char *p = path + 1; ; ++p) {
		if (*p && *p != '/')
			continue;
		if (p[-1] != '/') {
			char c = *p;

			*p = '\0';
			if (mkdir(path, mode) && errno != EEXIST)
				return -errno;
			*p = c;
		}
		if (!*p)
			return 0;
	}
}

int vp_fs_dirname(const char *path, char *out, size_t len)
{
	const char *slash = strrchr(path, '/');
	size_t n = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);

	if (!len || n >= len) {
		if (len)
			out[0] = '\0';
		return -ENAMETOOLONG;
	}
	memcpy(out, !slash ? "." : slash == path ? "/" : path, n);
	out[n] = '\0';
	return 0;
}

static int direct_mkdirs(void *ud, const char *path, mode_t mode)
{
	(void)ud;
	return vp_fs_mkdirs_direct(path, mode);
}

static int direct_lstat(void *ud, const char *path, struct stat *st)
{
	(void)ud;
	return lstat(path, st) ? -errno : 0;
}

static const struct vp_fs direct = {
	.open = direct_open,
	.rename = direct_rename,
	.unlink = direct_unlink,
	.mkdirs = direct_mkdirs,
	.lstat = direct_lstat,
};

const struct vp_fs *vp_fs_direct(void)
{
	return &direct;
}
