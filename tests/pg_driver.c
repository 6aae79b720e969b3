/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tests/pg_driver: a server of the PostgreSQL store without OpenVPN, for
 * tests/pg_cli.sh.  Registers NODE (instance INSTANCE), publishes the pools
 * of CONFIG for a subnet-topology server at SERVER4/NETBITS, then runs each
 * ACTION in order:
 *
 *   +ID    connect ID (prints "ID ADDRESS")
 *   -ID    disconnect ID's session of this run (its lease becomes held)
 *
 *   pg_driver CONFIG NODE INSTANCE SERVER4/NETBITS ACTION...
 *
 * Exit 0, or 1 with the reason on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/load.h"
#include "core/pgstore.h"

#define MAX_SESSIONS 256

struct session {
	const char *id;
	int64_t session;
	uint16_t slot;
};

static const char *no_var(void *ud, const char *name)
{
	(void)ud;
	(void)name;
	return NULL;
}

int main(int argc, char **argv)
{
	struct session sessions[MAX_SESSIONS];
	struct vp_server server = { .topology = VP_TOPO_SUBNET };
	struct vp_pg_options opts = { .create_schema = true };
	struct vp_config config;
	struct vp_prefix net;
	struct vp_pg *pg;
	char err[2048];
	size_t n = 0;
	int ret;

	if (argc < 5) {
		fprintf(stderr, "usage: pg_driver CONFIG NODE INSTANCE SERVER4/NETBITS ACTION...\n");
		return 2;
	}
	if (vp_conf_load(&config, argv[1], err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (!vp_prefix_parse(&net, argv[4], err) || net.addr.family != VP_INET) {
		fprintf(stderr, "pg_driver: bad server address %s\n", argv[4]);
		return 1;
	}
	server.local4 = net.addr;
	server.netbits4 = net.len;
	opts.config = &config;
	opts.node = argv[2];
	opts.instance = argv[3];
	ret = vp_pg_open(&pg, &opts);
	if (!ret)
		ret = vp_pg_start(pg, &server, NULL, NULL);
	if (ret) {
		fprintf(stderr, "pg_driver: start: %s\n", ret < 0 && pg ? vp_pg_error(pg) : "?");
		return 1;
	}
	for (int i = 5; i < argc; ++i) {
		const char *id = argv[i] + 1;

		if (argv[i][0] == '+' && n < MAX_SESSIONS) {
			struct vp_request req = { .identity = (const uint8_t *)id,
						  .identity_len = strlen(id), .getvar = no_var,
						  .real = "192.0.2.7:1194" };
			struct vp_pg_result res;
			char a[VP_ADDR_STRLEN];

			sessions[n] = (struct session){ .id = id, .session = 1000 + (int64_t)n };
			ret = vp_pg_connect(pg, &req, sessions[n].session, &res);
			if (ret) {
				fprintf(stderr, "pg_driver: connect %s: %d %s\n", id, ret, vp_pg_error(pg));
				return 1;
			}
			printf("%s %s\n", id, vp_addr_format(&res.grant.addr4, a));
			sessions[n].slot = res.grant.slot;
			n++;
		} else if (argv[i][0] == '-') {
			size_t k = n;

			while (k && strcmp(sessions[k - 1].id, id))
				k--;
			if (!k) {
				fprintf(stderr, "pg_driver: %s has no session\n", id);
				return 1;
			}
			ret = vp_pg_disconnect(pg, (const uint8_t *)id, strlen(id),
					       sessions[k - 1].slot, sessions[k - 1].session, NULL);
			if (ret) {
				fprintf(stderr, "pg_driver: disconnect %s: %d %s\n", id, ret,
					vp_pg_error(pg));
				return 1;
			}
		} else {
			fprintf(stderr, "pg_driver: bad action %s\n", argv[i]);
			return 2;
		}
	}
	vp_pg_close(pg);
	vp_config_free(&config);
	return fflush(stdout) ? 1 : 0;
}
