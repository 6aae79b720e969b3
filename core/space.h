/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The address space of one OpenVPN server: pools, router pools, static
 * reservations and the lease table, with the policy of
 * openvpn-plugin-vpnpool(8) ("Order of choice") and every change persisted
 * through store.h before it returns.
 *
 * Knows nothing of OpenVPN and never prints: results are return codes,
 * grants and events (delivered to a callback, in order, during the call that
 * caused them).  Time comes from the clock in the options.
 */
#ifndef VP_SPACE_H
#define VP_SPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "config.h"
#include "store.h"

struct vp_space;

enum vp_event_type {
	VP_EV_RECLAIM,		/* identity took the lease of "from": its address
				 * and, of a router, its subnet4/subnet6 */
	VP_EV_WARN,		/* pool crossed percent upward */
	VP_EV_POOL_UNUSABLE,	/* pool outside the server's network: skipped */
	VP_EV_LEASE_DROPPED,	/* a stored lease no longer fits the config:
				 * its addresses and subnets, reason and message */
	VP_EV_STORE,		/* a write or compaction failed (error), or works
				 * again after failing (error 0); op says which */
	VP_EV_RESERVATION_UNUSABLE,	/* a client's reserved address is the
					 * server's own: that part is not used */
	VP_EV_CRASH_HELD,	/* an instance died (its lock is gone): this
				 * session of it ended; identity, address,
				 * address6, subnet4/6, pool, instance (its
				 * name), duration (since the session began);
				 * freed: an extra duplicate-cn session whose
				 * lease is freed (else the lease is held) */
};

/* What a VP_EV_STORE is about; each one fails and recovers on its own. */
enum vp_store_op {
	VP_STORE_OP_COMPACT,		/* rewriting the journal (also at open) */
	VP_STORE_OP_WRITE,		/* recording a disconnect or a dropped lease */
	VP_STORE_OP_SERVER_FILE,	/* the server file, for the command */
	VP_STORE_OP_COUNT
};

/* Reasons of VP_EV_LEASE_DROPPED, as the usage log writes them:
 *  no-pool         no pool's (or router pool's) network holds it now
 *  pool-unusable   its pool is not used (outside the server's network)
 *  reserved        its address or subnet is now reserved for another client
 *  server-address  it is one of the server's own addresses now
 *  outside-range   outside its pool's range now
 *  excluded        in its pool's exclude list now
 *  subnet-size     its router pool hands out subnets of another size now
 *  taken           another stored lease holds it (a duplicate) */

struct vp_event {
	enum vp_event_type type;
	const char *pool;			/* name, or NULL */
	const uint8_t *identity;		/* or NULL */
	size_t identity_len;
	const uint8_t *from;			/* reclaim: previous holder */
	size_t from_len;
	struct vp_addr address;			/* reclaim/dropped/reservation: the address */
	struct vp_addr address6;		/* dropped: the IPv6 address (family 0: none) */
	uint64_t in_use, size;
	unsigned percent;			/* warn: the threshold crossed */
	struct vp_prefix subnet4, subnet6;	/* reclaim/dropped: the routed subnets
						 * freed (family 0: none) */
	const char *message;			/* unusable/dropped/store: why */
	const char *reason;			/* dropped: a short token (VP_DROP_*) */
	enum vp_store_op op;			/* store: what failed or recovered */
	int error;				/* store: -errno, 0: works again */
	const char *instance;			/* crash: the dead instance's name */
	const char *dev;			/* crash: its tun device ("": unknown) */
	int64_t duration;			/* crash: seconds the session lasted */
	bool freed;				/* crash: an extra session's lease */
};

struct vp_space_options {
	const struct vp_config *config;		/* borrowed; must outlive the space */
	int64_t (*now)(void *ud);		/* seconds since the epoch */
	void (*on_event)(void *ud, const struct vp_event *ev);	/* may be NULL */
	void *ud;
	const struct vp_store_io *io;		/* NULL: real system calls; its clock
						 * is replaced by now above */
	uint64_t compact_min;			/* compact when appended records exceed
						 * max(compact_min, leases); 0: 65536.
						 * Closing compacts past leases / 4. */
	uint64_t compact_bg_min;		/* from this many leases on, compaction
						 * runs in the store's thread; 0: 4096 */
	const struct vp_store_ops *store_ops;	/* NULL: the journal (vp_journal_ops) */
	bool no_drops;				/* the command's writing: never drop a
						 * lease that does not fit (kept
						 * unplaced), and leave the server
						 * file, which only OpenVPN knows, alone */
	bool read_only;				/* the command's reading: see below */
};

/* What the server itself uses, learnt from OpenVPN. */
struct vp_server {
	enum vp_topology topology;		/* resolved: never VP_TOPO_AUTO */
	struct vp_addr local4;			/* ifconfig_local (family 0: unknown) */
	unsigned netbits4;			/* subnet topology: tun netmask length */
	struct vp_addr remote4;			/* net30/p2p: ifconfig_remote, if any */
	struct vp_addr local6;			/* ifconfig_ipv6_local (family 0: none) */
	unsigned netbits6;
};

/* The server as one line of text ("topology=subnet local4=10.8.0.1
 * netbits4=16 ..."), kept in the state directory for the command; and
 * back.  format returns the length (the text is cut at len - 1). */
size_t vp_server_format(const struct vp_server *server, char *buf, size_t len);
bool vp_server_parse(const char *text, struct vp_server *out);

/* Open the state directory and load the leases.  Other processes may have
 * it open (see "Several instances" below).  Online leases of instances that
 * are not alive (and of a journal of version 1) become held, their extra
 * duplicate-cn sessions end.  0 or -errno (*holder_pid is set to 0; kept
 * for old callers).  The report says what the load found (torn tail,
 * corruption). */
int vp_space_open(struct vp_space **out, const struct vp_space_options *opts,
		  struct vp_store_report *report, pid_t *holder_pid);
/*
 * Read only (options.read_only): the journal is replayed with
 * vp_store_read() (store_ops NULL: vp_journal_read_ops): no lock is taken,
 * nothing is created or written, a torn tail is skipped, a journal of a newer
 * version is refused (-EPROTONOSUPPORT).  It is a snapshot: online leases
 * stay online as written (also those of instances that are gone), and
 * vp_space_set_server() places every lease and drops none (one that does
 * not fit is kept unplaced: pool -1).  vp_space_connect, _disconnect,
 * _register, _release, _import and _sync fail with -EROFS.
 */

/* Close; a registered instance stops cleanly first: its sessions end (held;
 * extra ones freed) and its stop is recorded. */
void vp_space_close(struct vp_space *space);
/* For tests: drop the space as a process killed now would (no record, no
 * compaction; its locks go with its descriptors). */
void vp_space_abandon(struct vp_space *space);

/*
 * Several instances.  Every process that opens a state directory shares one
 * table of leases with the others: each change first catches up with what
 * they wrote.  A process that serves clients registers as an instance.
 */

/* Register as the instance name (its tun device's index and name, 0 and
 * "" if unknown).  0; -EADDRINUSE: an instance of that name is alive
 * (*live_pid: its pid); -EUSERS: VP_INSTANCE_MAX instances alive;
 * -EALREADY: registered; -EINVAL: an empty name or one of
 * VP_INSTANCE_NAME_MAX bytes or more (or a device name too long); -errno. */
int vp_space_register(struct vp_space *space, const char *name, int ifindex, const char *dev,
		      pid_t *live_pid);
/* This instance's name ("" before it registers). */
const char *vp_space_instance_name(const struct vp_space *space);
/* The name of the instance in slot (a lease's vp_lease_rec.instance), or
 * NULL when unknown. */
const char *vp_space_slot_name(const struct vp_space *space, uint16_t slot);
/* The last INSTANCE record of slot (its name, pid, tun device, when it
 * registered or stopped), or NULL. */
const struct vp_instance_rec *vp_space_instance(const struct vp_space *space, uint16_t slot);
/* Whether the instance in slot is alive now (its liveness lock is held; a
 * system call). */
bool vp_space_slot_alive(struct vp_space *space, uint16_t slot);
/* Whether an instance other than this one is alive now (a system call per
 * instance ever registered). */
bool vp_space_others_alive(struct vp_space *space);
/* How many instances (by name) have used the directory, as far as the
 * journal remembers: above 1, usage lines name the instance. */
size_t vp_space_instances_seen(const struct vp_space *space);
/* Visit this instance's online sessions (a walk of its list: no scan). */
int vp_space_each_online(const struct vp_space *space,
			 int (*fn)(void *ud, const struct vp_lease_rec *rec), void *ud);
/* Catch up with what the others wrote (and end the sessions of crashed
 * instances, VP_EV_CRASH_HELD) without changing a lease: for a process that
 * wants to notice a crash while idle.  0 or -errno. */
int vp_space_sync(struct vp_space *space);

/* End the identity's held lease now (the command).  0; -EBUSY: it is online;
 * -ENOENT: it has no lease; -errno from the store. */
int vp_space_release(struct vp_space *space, const uint8_t *id, size_t len);
/* Make a held lease (held since now) of the identity with these addresses
 * (a6 family 0: none; one is then given from the pool if it has IPv6), in
 * the pool whose network holds a4.  0; -EEXIST: the identity has a lease;
 * -EADDRINUSE: the address is leased to another identity; -EDOM: not an
 * address a pool may hand out, *why says which ("outside every pool",
 * "outside the pool's range", "excluded", "reserved for client X", "a
 * server address"; static storage or the space's, valid until the next
 * call); -EAGAIN: vp_space_set_server() not called; -ENOSPC: no IPv6
 * address left; -errno from the store. */
int vp_space_import(struct vp_space *space, const uint8_t *id, size_t len,
		    const struct vp_addr *a4, const struct vp_addr *a6, const char **why);

/* Build the allocators for the server's topology and addresses, exclude the
 * server's own addresses, and place every loaded lease; leases that no
 * longer fit are dropped (VP_EV_LEASE_DROPPED), pools outside the server
 * network are reported (VP_EV_POOL_UNUSABLE), and so is each reserved
 * address that is one of the server's own (VP_EV_RESERVATION_UNUSABLE: that
 * client then gets an address of that family from the pools, as any other).  Must be called before the
 * first connect; calling it again with the same server is a no-op, with
 * another one rebuilds.  0, -ENOMEM, -EIO. */
int vp_space_set_server(struct vp_space *space, const struct vp_server *server);
bool vp_space_has_server(const struct vp_space *space);

/* A connecting client. */
struct vp_request {
	const uint8_t *identity;
	size_t identity_len;
	/* The client's environment, for match lists: value of name or NULL. */
	const char *(*getvar)(void *ud, const char *name);
	void *getvar_ud;
	const char *real;			/* "ip:port", may be NULL */
};

/* What a client was given.  Pointers stay valid while the space lives. */
struct vp_grant {
	uint16_t slot;				/* pass back to vp_space_disconnect */
	const struct vp_pool_config *pool;	/* where addr4 comes from */
	const struct vp_router_config *router;	/* NULL unless a router pool */
	struct vp_addr addr4, addr6;		/* family 0: none */
	struct vp_addr peer4;			/* net30: the /30's server side;
						 * p2p: server's local4 */
	struct vp_prefix subnet4, subnet6;	/* routed subnets, family 0: none */
	bool is_static;				/* from a client reservation */
	bool sticky;				/* same address as last time */
	uint64_t in_use, size;			/* of pool, after this connect */
	int64_t since;				/* disconnect: when the session began */
};

/* Give the client an address (and subnet).  0 on success, with the lease
 * online and on disk.  Errors (nothing changed):
 *  -ENOSPC  every matching pool is full and nothing can be reclaimed;
 *           grant->pool/in_use/size name the last pool tried
 *  -ENOENT  no pool matches the client
 *  -EINVAL  empty or over-long identity
 *  -EAGAIN  vp_space_set_server() not called yet
 *  -EIO, -ENOSPC from the store (persisting failed): see *store_failed
 */
int vp_space_connect(struct vp_space *space, const struct vp_request *req,
		     struct vp_grant *grant, bool *store_failed);

/* End of the session (identity, slot): slot 0 becomes held (sticky), an
 * extra session's lease is freed.  0, -ENOENT (no such online session),
 * VP_DISCONNECT_MOVED: the lease is online on another instance now (the
 * client moved there): nothing changed, its address and routes are the
 * other session's.  When ended is not NULL, on 0 and VP_DISCONNECT_MOVED
 * it gets what the session had (its pool, addresses and subnets, as its
 * connect's grant said) and since, when it began; so a caller need not
 * keep them for the whole session. */
#define VP_DISCONNECT_MOVED 1
int vp_space_disconnect(struct vp_space *space, const uint8_t *identity, size_t identity_len,
			uint16_t slot, struct vp_grant *ended);

/* Usage figures of a pool (index into config->pools) or router pool. */
struct vp_pool_usage {
	uint64_t size, online, held, free;
	bool usable;
};
void vp_space_pool_usage(const struct vp_space *space, size_t pool, struct vp_pool_usage *u);
void vp_space_router_usage(const struct vp_space *space, size_t router, struct vp_pool_usage *u);

/* Number of leases (online and held). */
size_t vp_space_leases(const struct vp_space *space);
/* Visit every lease; stops early when fn returns non-zero (and returns it). */
int vp_space_each(const struct vp_space *space,
		  int (*fn)(void *ud, const struct vp_lease_rec *rec), void *ud);
/* How many leases are online and held (a walk over them all). */
void vp_space_count(const struct vp_space *space, uint64_t *online, uint64_t *held);
/* A lease and where it is placed (the command). */
struct vp_space_lease {
	struct vp_lease_rec rec;	/* its pointers: valid for the call */
	int pool, router;		/* index into config->pools / routers, -1:
					 * none (or not placed: it does not fit) */
	bool static4;			/* its IPv4 address is its reservation */
	bool static_subnet;		/* its subnet (either family) is */
};
/* Visit every lease with its place, after vp_space_set_server(): sorted
 * by pool (config order; none last), IPv4 address (none last), identity
 * and slot; or, faster, in no order.  Stops when fn returns non-zero and
 * returns it; -ENOMEM when the order cannot be made. */
int vp_space_each_placed(const struct vp_space *space, bool sorted,
			 int (*fn)(void *ud, const struct vp_space_lease *l), void *ud);
/* Bytes of memory held by allocators and lease table. */
size_t vp_space_memory(const struct vp_space *space);

/* Whether every match of a list holds for the client (empty list: true).
 * Globs are fnmatch(3) patterns; an unset variable matches nothing. */
bool vp_match_all(const struct vp_match *match, size_t n,
		  const char *(*getvar)(void *ud, const char *name), void *ud);

#endif
