/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vpnpool.conf (libconfuse syntax) into a validated struct vp_config.
 * libconfuse stays behind this header.
 *
 * Match variables: the loader accepts any VARIABLE=GLOB whose variable is a
 * name of letters, digits and '_', but not every variable can be trusted.
 * The client controls IV_* and UV_* (its peer info: IV_PLAT, IV_GUI_VER,
 * pushed UV_ settings...), and username unless the server verifies it
 * (auth-user-pass-verify or an auth plugin).  common_name and X509_* come
 * from the certificate OpenVPN verified.  A pool matched only on
 * client-controlled variables is open to any client that says the words.
 */
#ifndef VP_CONF_LOAD_H
#define VP_CONF_LOAD_H

#include <stddef.h>

#include "core/config.h"

/*
 * Load and validate the file at path into *out, which is zeroed first.
 * Returns 0 (then vp_config_free() *out), or -1 with *out empty and err set
 * to the first problem found, as "FILE:LINE: message", or "FILE: cannot
 * open: REASON" when the file cannot be read.  Not reentrant: libconfuse's
 * lexer keeps global state, so load from one thread at a time.
 */
int vp_conf_load(struct vp_config *out, const char *path, char *err, size_t errlen);
/* The same, the file opened through fs (NULL: directly; see core/fs.h). */
struct vp_fs;
int vp_conf_load_fs(struct vp_config *out, const char *path, const struct vp_fs *fs, char *err,
		    size_t errlen);
/* The same from a NUL-terminated text; name stands for the file in
 * messages and in out->path. */
int vp_conf_load_buf(struct vp_config *out, const char *text, const char *name, char *err,
		     size_t errlen);

#endif
