/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vpnpool.conf (libconfuse syntax) into a validated struct vp_config.
 *
 * Match variables a client controls: IV_* and UV_* (peer info, set by the
 * client), and username unless the server verifies it (auth-user-pass-verify
 * or a plugin); X509_* and common_name come from the verified certificate.
 * The loader allows all of them; vpnpool.conf(5) says which to trust.
 */
#ifndef VP_CONF_LOAD_H
#define VP_CONF_LOAD_H

#include <stddef.h>

#include "core/config.h"

/* Load and validate path into *out (zeroed first; vp_config_free() it).
 * 0, or -1 with err = "FILE:LINE: message" (the first problem found). */
int vp_conf_load(struct vp_config *out, const char *path, char *err, size_t errlen);
/* The same from text; name stands for the file in messages. */
int vp_conf_load_buf(struct vp_config *out, const char *text, const char *name, char *err,
		     size_t errlen);

#endif
