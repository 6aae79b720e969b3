/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The keeper: a small process that keeps the privileges OpenVPN had when it
 * opened the plugin, so that the plugin's files stay writable after OpenVPN
 * drops them (user, group, chroot).
 *
 * Started at plugin open while OpenVPN still runs as root, it is forked from
 * OpenVPN (twice: its parent is init, never OpenVPN, which is left no zombie
 * and whose --daemon does not matter) before anything else is opened, closes
 * every descriptor but its end of a socket pair (it never holds the state
 * directory's lock), and then only answers requests: open a file, rename,
 * unlink, mkdir -p, lstat; add, remove or flush a route (vp_keeper_routes()).
 * An opened file comes back as a descriptor (SCM_RIGHTS); every read and
 * write after that is the plugin's own, so the journal's appends never wait
 * for the keeper.  Paths are resolved by the keeper, outside any chroot.
 *
 * It serves only the files of one vpnpool.conf, the one named when it
 * started (it reads the file itself, again at each plugin open):
 *   - the state directory (mkdir -p; the directory itself read-only, for
 *     fsync) and the store's files directly in it (lock, server, server.tmp,
 *     leases.journal, leases.journal.tmp, leases.journal.corrupt-*; nothing
 *     else, for the directory may be shared with OpenVPN's own files);
 *   - the usage log and its directory (mkdir -p), appended to, never
 *     truncated;
 *   - the metrics file and its ".tmp" (written, renamed over it; modes as
 *     asked, under umask 022: another user reads it);
 *   - vpnpool.conf and OpenVPN's own config file, read-only.
 *   - renames within the state directory, or the metrics ".tmp" over it.
 * Everything else is refused with EPERM, and so are open flags beyond
 * reading, writing, creating, appending and syncing (O_PATH, O_TMPFILE...).
 * Paths are walked a component at a time: a symlink is followed only in a
 * directory only root can write to (else ELOOP), never as the last
 * component of a file (but for the two config files).  A file is opened
 * only when it is a regular file with a single link (EPERM otherwise: a
 * hard link to a file of root's, a FIFO), without blocking, truncated only
 * after those checks, and created without set-id or execute bits.
 *
 * The plugin waits at most a few seconds for an answer: a keeper that is
 * stopped or stuck makes that request fail with ETIMEDOUT, and the next
 * ones at once, until its late answer comes (it is dropped: replies carry
 * the request's number); it then serves again.  When it is gone (its end
 * closed), requests are made with the process's own calls.
 *
 * It lives as long as OpenVPN: a SIGHUP closes the plugin and opens it
 * again as the unprivileged user, which finds the keeper through the
 * environment variable VPNPOOL_KEEPER_FD; it ends when OpenVPN's end of the
 * socket closes, i.e. when OpenVPN exits.
 */
#ifndef VP_PLUGIN_KEEPER_H
#define VP_PLUGIN_KEEPER_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/fs.h"

#define VP_KEEPER_ENV "VPNPOOL_KEEPER_FD"

struct vp_keeper;

/*
 * The keeper for the vpnpool.conf at conf_path (and OpenVPN's own config at
 * server_conf, may be NULL): the one this process already has, when it
 * serves that same file and answers; else, when this process runs as root,
 * a new one.  0 with *out set; -EPERM when not root and there is none to
 * reuse (then use the direct fs); -errno.  *reused says which.
 */
int vp_keeper_get(struct vp_keeper **out, const char *conf_path, const char *server_conf,
		  bool *reused);

/* Its filesystem; valid until vp_keeper_put().  Safe from several threads
 * (one request at a time).  Its calls also fail with -ETIMEDOUT (above). */
const struct vp_fs *vp_keeper_fs(struct vp_keeper *k);
/* Its routes (plugin/routes.h): changed with the process's own rights
 * while the kernel lets it, else asked of the keeper, which changes a route
 * only through a tun device and only to a prefix inside one of the
 * config's networks (vp_keeper_allows_route()), and flushes only its
 * routes of vpnpool's protocol to such prefixes.  Valid until
 * vp_keeper_put(). */
struct vp_route_ops;
const struct vp_route_ops *vp_keeper_routes(struct vp_keeper *k);
/* The keeper process's pid. */
pid_t vp_keeper_pid(const struct vp_keeper *k);

/* Let go of the handle; the keeper process stays for the next plugin open
 * (a SIGHUP), unless another vpnpool.conf's keeper took its place in the
 * environment (then it ends).  NULL is fine. */
void vp_keeper_put(struct vp_keeper *k);

/* Whether the keeper would serve op on path under the rules above, for
 * config (its paths) and the two config files: the policy, for tests.
 * op: 'o' open (flags say how), 'r' rename source or target (each end on
 * its own; the keeper also checks them as a pair), 'u' unlink, 'm' mkdir -p,
 * 's' lstat. */
struct vp_config;
bool vp_keeper_allows(const struct vp_config *config, const char *conf_path,
		      const char *server_conf, char op, const char *path, int flags);

/* Whether the keeper would change a route to dst for config: dst lies
 * inside a pool's network or network6, a router pool's network or
 * network6, or a reservation's subnet or subnet6, or is the host route of
 * a reservation's address or address6.  (It also checks that the
 * interface is a tun device.) */
struct vp_prefix;
bool vp_keeper_allows_route(const struct vp_config *config, const struct vp_prefix *dst);

#endif
