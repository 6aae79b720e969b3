/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "cli/cli.h"

int vp_cmd_usage(const struct vp_cli *cli, int argc, char **argv)
{
	(void)cli; (void)argc; (void)argv;
	vp_cli_error("usage: not yet");
	return VP_EXIT_FAIL;
}
