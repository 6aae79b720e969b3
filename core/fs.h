/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The filesystem as the plugin's modules reach it: opening, renaming,
 * removing and creating files and directories by path.  Every module that
 * touches a file by its path (the store, the usage log, the metrics file,
 * the config loaders) goes through one of these, never through open(2)
 * itself, so that:
 *  - after OpenVPN drops its privileges (user, group, chroot) the plugin
 *    asks a process that kept them (plugin/keeper.h), which hands back open
 *    file descriptors, and every read and write after that is the plugin's
 *    own, on its descriptor;
 *  - tests can inject faults.
 * Functions return a descriptor or 0 on success, -errno on failure (through
 * the keeper also -ETIMEDOUT: it did not answer in time).
 */
#ifndef VP_FS_H
#define VP_FS_H

#include <sys/stat.h>
#include <sys/types.h>

struct vp_fs {
	/* open(2): a new descriptor (O_CLOEXEC is always added), or -errno. */
	int (*open)(void *ud, const char *path, int flags, mode_t mode);
	/* rename(2). */
	int (*rename)(void *ud, const char *from, const char *to);
	/* unlink(2). */
	int (*unlink)(void *ud, const char *path);
	/* mkdir -p: path and each missing parent, created with mode. */
	int (*mkdirs)(void *ud, const char *path, mode_t mode);
	/* lstat(2): a symlink is described, not followed. */
	int (*lstat)(void *ud, const char *path, struct stat *st);
	void *ud;
};

/* This process's own system calls.  Never NULL; static storage. */
const struct vp_fs *vp_fs_direct(void);

/* fs, or the direct one when fs is NULL. */
static inline const struct vp_fs *vp_fs_or_direct(const struct vp_fs *fs)
{
	return fs ? fs : vp_fs_direct();
}

/* The directory part of path into out: "." when path has no '/', "/" for
 * a file at the root.  0, or -ENAMETOOLONG (out empty). */
int vp_fs_dirname(const char *path, char *out, size_t len);

/* mkdir -p with the process's own calls (what the direct fs does). */
int vp_fs_mkdirs_direct(const char *path, mode_t mode);

#endif
