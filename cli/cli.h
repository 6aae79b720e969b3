/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The vpnpool command: one function per subcommand. */
#ifndef VP_CLI_H
#define VP_CLI_H

#include <stdbool.h>
#include <stddef.h>

#define VP_DEFAULT_CONFIG "/etc/openvpn/vpnpool.conf"

/* Exit codes: 0 fine, 1 config or state problem, 2 wrong usage. */
enum { VP_EXIT_OK = 0, VP_EXIT_FAIL = 1, VP_EXIT_USAGE = 2 };

struct vp_cli {
	const char *config_path;
	const char *prog;
	bool exits;			/* the process ends after the command: the
					 * state it read need not be freed */
};

struct vp_command {
	const char *name;
	int (*run)(const struct vp_cli *cli, int argc, char **argv);
	const char *summary;
	const char *help;		/* printed by "vpnpool CMD --help" */
};

int vp_cmd_check(const struct vp_cli *cli, int argc, char **argv);
int vp_cmd_status(const struct vp_cli *cli, int argc, char **argv);
int vp_cmd_leases(const struct vp_cli *cli, int argc, char **argv);
int vp_cmd_usage(const struct vp_cli *cli, int argc, char **argv);
int vp_cmd_release(const struct vp_cli *cli, int argc, char **argv);
int vp_cmd_import(const struct vp_cli *cli, int argc, char **argv);
int vp_cmd_schema(const struct vp_cli *cli, int argc, char **argv);

/* The same commands against a PostgreSQL store (config->store set): cli/pg.c.
 * Each opens the store as a command (no node, the schema never created),
 * prints its messages and returns an exit code. */
struct vp_config;
struct vp_pg;
int vp_cli_pg_status(const struct vp_config *config, bool json);
int vp_cli_pg_leases(const struct vp_config *config, bool json, int state, const char *pool,
		     const char *glob);
int vp_cli_pg_release(const struct vp_config *config, const char *id);
/* import: the store opened (0; -1 with the message printed), and a failed
 * vp_pg_import() reported, naming the store. */
int vp_cli_pg_import_open(struct vp_pg **out, const struct vp_config *config);
void vp_cli_pg_import_failed(struct vp_pg *pg, const struct vp_config *config, int ret,
			     unsigned imported);
/* What release says of ret (released; online; no lease): false for any
 * other error, which the caller says. */
bool vp_cli_release_said(const char *id, int ret);
/* Whether argv holds -h or --help (before a "--"). */
bool vp_cli_wants_help(int argc, char **argv);
/* Print "vpnpool: " and the message to stderr. */
void vp_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
