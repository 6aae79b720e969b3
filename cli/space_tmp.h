/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * TEMPORARY (branch cliw): a stand-in for the engine's writer that is not an
 * instance, until core/space.h has it.  Delete this file and
 * cli/space_tmp.c when the engine lands; cli/change.c's writer_open() and
 * writer_close() then call the engine instead.
 *
 * Unlike the engine's, this one takes the state directory's lock for as long
 * as it is open (vp_store_open): -EBUSY while an OpenVPN instance runs.
 */
#ifndef VP_CLI_SPACE_TMP_H
#define VP_CLI_SPACE_TMP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/config.h"
#include "core/space.h"

int vp_tmp_writer_open(struct vp_space **out, const struct vp_config *config, pid_t *holder);
void vp_tmp_writer_close(struct vp_space *space);

/* The signatures core/space.h will declare. */
int vp_space_release(struct vp_space *space, const uint8_t *id, size_t len);
int vp_space_import(struct vp_space *space, const uint8_t *id, size_t len,
		    const struct vp_addr *a4, const struct vp_addr *a6, const char **why);

#endif
