/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The config lines handed to OpenVPN for a client (openvpn-plugin-vpnpool(8)). */
#ifndef VP_PLUGIN_LINES_H
#define VP_PLUGIN_LINES_H

#include "config.h"
#include "logfmt.h"
#include "space.h"

/* Append to out the ifconfig-push, ifconfig-ipv6-push, iroute, iroute-ipv6
 * and push "route ..." lines for a grant, each ending in '\n'.  Only
 * addresses formatted here reach the text: nothing a client sent. */
void vp_lines_build(struct vp_strbuf *out, const struct vp_grant *g,
		    const struct vp_server *server, const struct vp_config *config);

#endif
