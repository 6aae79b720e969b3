/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Reading OpenVPN's environment (envp arrays of "NAME=VALUE"). */
#ifndef VP_PLUGIN_ENV_H
#define VP_PLUGIN_ENV_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "space.h"

/* Value of name in envp, or NULL. */
const char *vp_env_get(const char *const *envp, const char *name);
/* vp_request.getvar over an envp passed as ud. */
const char *vp_env_getvar(void *ud, const char *name);

/* The server's topology and tunnel addresses from ifconfig_local,
 * ifconfig_netmask, ifconfig_remote, ifconfig_ipv6_local and
 * ifconfig_ipv6_netbits.  configured is the config's topology; auto means
 * subnet when OpenVPN reports a netmask, else auto_without_netmask (net30 or
 * p2p: OpenVPN's env cannot tell them apart, its config file can, see
 * vp_server_conf_topology).  false with err set when ifconfig_local is
 * missing or a value does not parse. */
bool vp_env_server(const char *const *envp, enum vp_topology configured,
		   enum vp_topology auto_without_netmask, struct vp_server *out, char *err,
		   size_t errlen);

/* The request of a client's connect, from its environment: req->identity is
 * the value of identity_var (pointing into envp, not copied), its match lists
 * read envp, req->real is real, filled by vp_env_real().  envp and real must
 * outlive req.  Returns false when envp has no identity_var or it is empty
 * (req->identity is then NULL or ""); the identity's length is the space's
 * to judge (vp_space_connect). */
bool vp_env_request(const char *const *envp, const char *identity_var, struct vp_request *req,
		    char real[VP_REAL_MAX]);

/* "ip:port" of the client (trusted_ip or trusted_ip6), "" if unknown. */
void vp_env_real(const char *const *envp, char *buf, size_t len);

#endif
