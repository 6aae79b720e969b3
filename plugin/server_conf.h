/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the plugin reads from OpenVPN's own config file (the "config" of
 * open_v3's env): only "topology", which OpenVPN's env does not tell for
 * net30 and p2p (tests/e2e/NOTES.md, 2).
 */
#ifndef VP_PLUGIN_SERVER_CONF_H
#define VP_PLUGIN_SERVER_CONF_H

#include <stddef.h>

#include "config.h"
#include "core/fs.h"

#define VP_SERVER_CONF_MAX (16u << 20)	/* bytes of server.conf read, at most */

/* The topology that the text of a server.conf sets: the last line whose
 * first word is "topology" (or "--topology") and whose only other word is
 * subnet, net30 or p2p, bare or quoted.  Lines whose first word starts with
 * '#' or ';', and the contents of inline blocks (<ca> ... </ca>), are not
 * read; another value is ignored (OpenVPN refuses it).  VP_TOPO_NET30,
 * OpenVPN's default, when no line sets it.  Any bytes, NUL included.
 * Neither "config" lines (files included) nor the command line are seen. */
enum vp_topology vp_server_conf_topology(const char *text, size_t len);

/* What the plugin takes from OpenVPN's config: the topology as above, and
 * how OpenVPN runs once started ("user", "group", "chroot": the last line
 * of each; "" when none). */
struct vp_server_conf {
	enum vp_topology topology;
	char user[64], group[64];
	char chroot[1024];
};
void vp_server_conf_parse(const char *text, size_t len, struct vp_server_conf *out);

/* vp_server_conf_parse of the regular file at path, opened through fs (NULL:
 * directly), of its first VP_SERVER_CONF_MAX bytes.  0, -EFBIG (a longer
 * file: *out from its start), -errno (-EINVAL: not a regular file; *out
 * untouched). */
int vp_server_conf_read(const char *path, const struct vp_fs *fs, struct vp_server_conf *out);

/* vp_server_conf_topology of the regular file at path, of its first
 * VP_SERVER_CONF_MAX bytes.  0 with *out set; -EFBIG with *out set from
 * the first VP_SERVER_CONF_MAX bytes of a longer file; else -errno (-EINVAL:
 * not a regular file) and *out untouched. */
int vp_server_conf_read_topology(const char *path, enum vp_topology *out);

#endif
