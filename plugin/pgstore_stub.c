/* SPDX-License-Identifier: GPL-2.0-or-later */
/* TEMPORARY: core/pgstore.h answered "not built" until the real store is
 * merged (branch pg-store).  Removed at that merge. */
#include <errno.h>

#include "core/pgstore.h"

struct vp_pg {
	int unused;
};

int vp_pg_open(struct vp_pg **out, const struct vp_pg_options *opts)
{
	(void)opts;
	*out = NULL;
	return -ENOSYS;
}

void vp_pg_close(struct vp_pg *pg)
{
	(void)pg;
}

const char *vp_pg_error(const struct vp_pg *pg)
{
	(void)pg;
	return "not built";
}

int vp_pg_start(struct vp_pg *pg, const struct vp_server *server,
		void (*on_ended)(void *ud, const struct vp_pg_ended *e), void *ud)
{
	(void)pg, (void)server, (void)on_ended, (void)ud;
	return -ENOSYS;
}

int vp_pg_heartbeat(struct vp_pg *pg, void (*on_ended)(void *ud, const struct vp_pg_ended *e),
		    void *ud)
{
	(void)pg, (void)on_ended, (void)ud;
	return -ENOSYS;
}

int vp_pg_connect(struct vp_pg *pg, const struct vp_request *req, int64_t session,
		  struct vp_pg_result *result)
{
	(void)pg, (void)req, (void)session, (void)result;
	return -ENOSYS;
}

int vp_pg_disconnect(struct vp_pg *pg, const uint8_t *identity, size_t len, uint16_t slot,
		     int64_t session, struct vp_grant *ended)
{
	(void)pg, (void)identity, (void)len, (void)slot, (void)session, (void)ended;
	return -ENOSYS;
}

int vp_pg_abort(struct vp_pg *pg, const uint8_t *identity, size_t len, int64_t session)
{
	(void)pg, (void)identity, (void)len, (void)session;
	return -ENOSYS;
}
