/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin/env.h"

const char *vp_env_get(const char *const *envp, const char *name)
{
	size_t len = strlen(name);

	for (; envp && *envp; ++envp)
		if (!strncmp(*envp, name, len) && (*envp)[len] == '=')
			return *envp + len + 1;
	return NULL;
}

const char *vp_env_getvar(void *ud, const char *name)
{
	return vp_env_get(ud, name);
}

static bool parse_bits(const char *text, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!text || *text < '0' || *text > '9')
		return false;
	v = strtoul(text, &end, 10);
	if (*end || v > max)
		return false;
	*out = (unsigned)v;
	return true;
}

static bool parse_v4(const char *const *envp, const char *name, struct vp_addr *out,
		     char *err, size_t errlen)
{
	const char *v = vp_env_get(envp, name);
	char why[VP_ERRLEN];

	if (!v)
		return true;
	if (!vp_addr_parse(out, v, why)) {
		snprintf(err, errlen, "OpenVPN's %s is not an IPv4 address: %s", name, why);
		return false;
	}
	if (out->family != VP_INET) {
		char text[VP_ADDR_STRLEN];

		snprintf(err, errlen, "OpenVPN's %s is not an IPv4 address: `%s' is IPv6", name,
			 vp_addr_format(out, text));
		return false;
	}
	return true;
}

bool vp_env_server(const char *const *envp, enum vp_topology configured,
		   enum vp_topology auto_without_netmask, struct vp_server *out, char *err,
		   size_t errlen)
{
	struct vp_addr mask = { 0 };
	const char *v6 = vp_env_get(envp, "ifconfig_ipv6_local");

	memset(out, 0, sizeof(*out));
	if (!vp_env_get(envp, "ifconfig_local")) {
		snprintf(err, errlen, "OpenVPN did not report ifconfig_local (no tun address yet)");
		return false;
	}
	if (!parse_v4(envp, "ifconfig_local", &out->local4, err, errlen) ||
	    !parse_v4(envp, "ifconfig_remote", &out->remote4, err, errlen) ||
	    !parse_v4(envp, "ifconfig_netmask", &mask, err, errlen))
		return false;
	if (mask.family) {
		int len = vp_netmask4_len(vp_addr_to_v4(&mask));

		if (len < 0) {
			snprintf(err, errlen, "OpenVPN's ifconfig_netmask %s is not a netmask",
				 vp_env_get(envp, "ifconfig_netmask"));
			return false;
		}
		out->netbits4 = (unsigned)len;
	}
	out->topology = configured != VP_TOPO_AUTO ? configured :
			mask.family ? VP_TOPO_SUBNET :
			auto_without_netmask == VP_TOPO_P2P ? VP_TOPO_P2P : VP_TOPO_NET30;
	if (out->topology == VP_TOPO_SUBNET && !mask.family) {
		snprintf(err, errlen, "topology subnet, but OpenVPN reports no ifconfig_netmask");
		return false;
	}
	if (v6) {
		char why[VP_ERRLEN];

		if (!vp_addr_parse(&out->local6, v6, why)) {
			/* why quotes the value, escaped. */
			snprintf(err, errlen, "OpenVPN's ifconfig_ipv6_local does not parse: %s", why);
			return false;
		}
		if (out->local6.family != VP_INET6 ||
		    !parse_bits(vp_env_get(envp, "ifconfig_ipv6_netbits"), 128, &out->netbits6)) {
			snprintf(err, errlen,
				 "OpenVPN's ifconfig_ipv6_local is not IPv6 or ifconfig_ipv6_netbits is not 0..128");
			return false;
		}
	}
	return true;
}

void vp_env_real(const char *const *envp, char *buf, size_t len)
{
	const char *ip = vp_env_get(envp, "trusted_ip");
	const char *port = vp_env_get(envp, "trusted_port");

	if (!ip) {
		ip = vp_env_get(envp, "trusted_ip6");
		port = port ? port : vp_env_get(envp, "trusted_port");
	}
	if (!ip)
		snprintf(buf, len, "%s", "");
	else if (strchr(ip, ':'))
		snprintf(buf, len, "[%s]:%s", ip, port ? port : "");
	else
		snprintf(buf, len, "%s:%s", ip, port ? port : "");
}

bool vp_env_request(const char *const *envp, const char *identity_var, struct vp_request *req,
		    char real[VP_REAL_MAX])
{
	const char *id = vp_env_get(envp, identity_var);

	vp_env_real(envp, real, VP_REAL_MAX);
	*req = (struct vp_request){
		.identity = (const uint8_t *)id, .identity_len = id ? strlen(id) : 0,
		.getvar = vp_env_getvar, .getvar_ud = (void *)envp, .real = real,
	};
	return id && *id;
}
