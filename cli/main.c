/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vpnpool: check the config, show pools and leases read from the state
 * directory, summarise the usage log, and release or import leases.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct vp_command commands[] = {
	{ "check", vp_cmd_check, "validate the config; print pools and the server.conf lines",
	  "usage: vpnpool [-c FILE] check\n"
	  "\n"
	  "Validate the config exactly as the plugin does.  Print each pool (network,\n"
	  "range, size after exclusions, IPv6 part, match rules), each router pool,\n"
	  "the static reservations and the server.conf lines the setup needs.\n"
	  "Errors are printed as FILE:LINE: message, with exit status 1.\n" },
	{ "status", vp_cmd_status, "per pool: size, online, held, free, percent",
	  "usage: vpnpool [-c FILE] status [--json]\n"
	  "\n"
	  "Read the state directory (no lock: fine while OpenVPN runs) and print, per\n"
	  "pool and router pool, its size after exclusions and how many leases are\n"
	  "online, held (disconnected, kept for the client) and free; then the\n"
	  "OpenVPN instances running on it: name, pid, tun device, since when.\n"
	  "\n"
	  "With a store = \"postgresql://...\" in the config, the pools are read from\n"
	  "the database, and the servers registered there follow (NODE, INSTANCE,\n"
	  "PID, LIVE, HEARTBEAT, SINCE, ONLINE).\n"
	  "\n"
	  "  --json   one JSON document (see vpnpool(8) for the fields)\n" },
	{ "leases", vp_cmd_leases, "the leases: who has which address since when",
	  "usage: vpnpool [-c FILE] leases [--json] [--online|--held] [--pool NAME] [IDENTITY-GLOB]\n"
	  "\n"
	  "Print the leases the plugin has written: identity, state, instance (the\n"
	  "OpenVPN process of its session, or of its last one), pool, addresses,\n"
	  "routed subnets, since when, the client's real address and its sessions.\n"
	  "With a store = \"postgresql://...\", the leases of the database, with\n"
	  "the NODE (and INSTANCE) of each lease's session instead.\n"
	  "\n"
	  "  --json         one JSON document\n"
	  "  --online       only leases of connected clients\n"
	  "  --held         only leases kept for disconnected clients\n"
	  "  --pool NAME    only leases of this pool or router pool\n"
	  "  IDENTITY-GLOB  only identities matching this fnmatch(3) pattern\n" },
	{ "usage", vp_cmd_usage, "from the usage log: sessions, time and bytes per identity",
	  "usage: vpnpool [-c FILE] usage [--json] [--since TIME] [--log FILE] [--rotated]\n"
	  "\n"
	  "Summarise the usage log per identity: sessions, time online, bytes\n"
	  "received and sent, last seen; then refusals and pool warnings.\n"
	  "\n"
	  "  --json         one JSON document\n"
	  "  --since TIME   only events from TIME on: 2026-11-25, \"2026-11-25 04:00\",\n"
	  "                 2026-11-25T04:00:00Z, @UNIXTIME, or an age: 90m, 12h, 7d\n"
	  "  --log FILE     read FILE instead of the configured usage-log\n"
	  "  --rotated      also read the rotated files FILE.1, FILE.2.gz, ... (oldest first)\n" },
	{ "release", vp_cmd_release, "end an identity's held lease now",
	  "usage: vpnpool [-c FILE] release IDENTITY\n"
	  "\n"
	  "End the held lease(s) of IDENTITY now: its addresses and subnets are free\n"
	  "for anyone, and it gets a new address when it connects again.\n"
	  "Exit status 0 when released; 1, with nothing changed, when IDENTITY is\n"
	  "online or has no lease.  An IDENTITY starting with '-' follows \"--\".\n" },
	{ "import", vp_cmd_import, "leases from OpenVPN's ifconfig-pool-persist file",
	  "usage: vpnpool [-c FILE] import FILE\n"
	  "\n"
	  "Make each line of OpenVPN's ifconfig-pool-persist FILE (CN,IPv4[,IPv6])\n"
	  "a held lease of that identity, held since now, so that moving from\n"
	  "OpenVPN's own pool renumbers nobody.  A line that is malformed, whose\n"
	  "address no pool may hand out, whose address is leased to another identity\n"
	  "or whose identity already has a lease is reported as FILE:LINE: why and\n"
	  "skipped.  Exit status 0 when every line was imported, 1 when any was\n"
	  "reported (the others are imported all the same).\n" },
	{ "schema", vp_cmd_schema, "print the SQL of the PostgreSQL store",
	  "usage: vpnpool schema\n"
	  "\n"
	  "Print the SQL that creates the schema of the PostgreSQL store (store =\n"
	  "\"postgresql://...\"), for a DBA to apply as the role owning the database\n"
	  "when the servers' role may not create it:  vpnpool schema | psql URI\n"
	  "Needs no config file.\n" },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

void vp_cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("vpnpool: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

bool vp_cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); ++i)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return true;
	return false;
}

static void usage_all(FILE *out)
{
	fputs("usage: vpnpool [-c FILE] COMMAND [ARGS]\n"
	      "\n"
	      "The address-space manager of an OpenVPN server (openvpn-plugin-vpnpool).\n"
	      "\n"
	      "  -c FILE   the config file (default " VP_DEFAULT_CONFIG ")\n"
	      "\n"
	      "Commands:\n", out);
	for (size_t i = 0; i < N_COMMANDS; ++i)
		fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fputs("  help     this text, or \"vpnpool help COMMAND\"\n"
	      "\n"
	      "\"vpnpool COMMAND --help\" explains a command; see also vpnpool(8).\n", out);
}

static const struct vp_command *command_find(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; ++i)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static int help(int argc, char **argv)
{
	const struct vp_command *cmd;

	if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "--help")) {
		usage_all(stdout);
		return VP_EXIT_OK;
	}
	cmd = command_find(argv[1]);
	if (!cmd) {
		vp_cli_error("no command `%s'; try vpnpool help", argv[1]);
		return VP_EXIT_USAGE;
	}
	fputs(cmd->help, stdout);
	return VP_EXIT_OK;
}

int main(int argc, char **argv)
{
	struct vp_cli cli = { .config_path = VP_DEFAULT_CONFIG, .prog = "vpnpool", .exits = true };
	const struct vp_command *cmd;
	int i = 1;

	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "-c") && i + 1 < argc) {
			cli.config_path = argv[i + 1];
			i += 2;
		} else if (!strncmp(argv[i], "-c", 2) && argv[i][2]) {
			cli.config_path = argv[i] + 2;
			i++;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage_all(stdout);
			return VP_EXIT_OK;
		} else {
			vp_cli_error("unknown option `%s'", argv[i]);
			usage_all(stderr);
			return VP_EXIT_USAGE;
		}
	}
	if (i == argc) {
		usage_all(stderr);
		return VP_EXIT_USAGE;
	}
	if (!strcmp(argv[i], "help"))
		return help(argc - i, argv + i);
	cmd = command_find(argv[i]);
	if (!cmd) {
		vp_cli_error("no command `%s'; try vpnpool help", argv[i]);
		return VP_EXIT_USAGE;
	}
	if (vp_cli_wants_help(argc - i, argv + i)) {
		fputs(cmd->help, stdout);
		return VP_EXIT_OK;
	}
	return cmd->run(&cli, argc - i, argv + i);
}
