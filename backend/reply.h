/* SPDX-License-Identifier: GPL-2.0 */
/*
 * RMAI: the checks of what a memnode answers (reply.c). Pure functions of
 * the bytes received, built into rmai.ko and, against the same protocol
 * header with memnode/kshim.h standing in for the kernel's, into a
 * userspace fuzzer (memnode/fuzz_reply.c).
 */
#ifndef RMAI_REPLY_H
#define RMAI_REPLY_H

#include <linux/types.h>

#include "rmai_proto.h"

#define RMAI_MIN_SLAB_SIZE	BIT_ULL(21)	/* a whole largest request */
#define RMAI_MAX_SLAB_SIZE	BIT_ULL(40)	/* no real memnode leases more */
#define RMAI_MAX_POOL_SLABS	BIT(24)		/* nor more slabs than this */
#define RMAI_MAX_GRACE		86400		/* seconds, a day */

/**
 * struct rmai_accept - a memnode's accept, checked
 * @token: the session's lease token, non-zero
 * @slab_size: bytes per slab
 * @nr_slabs: slabs in its pool
 * @nr_free: free slabs, at most @nr_slabs
 * @nr_held: slabs the session holds, at most @nr_slabs
 * @lease_grace: seconds a lost session keeps its lease
 * @liveness: seconds the memnode takes to notice a vanished client
 */
struct rmai_accept {
	u64 token;
	u64 slab_size;
	u32 nr_slabs;
	u32 nr_free;
	u32 nr_held;
	u32 lease_grace;
	u32 liveness;
};

/**
 * struct rmai_slab_info - a slab descriptor of a reply, checked, host order
 * @addr: remote address of its first byte
 * @rkey: its remote key
 * @index: its number in the memnode's pool
 */
struct rmai_slab_info {
	u64 addr;
	u32 rkey;
	u32 index;
};

int rmai_check_accept(const void *data, size_t len, struct rmai_accept *acc,
		      const char **why);
int rmai_check_slabs(const struct rmai_msg *rep, u32 max, const struct rmai_accept *acc,
		     struct rmai_slab_info *desc, u32 *count, const char **why);

#endif /* RMAI_REPLY_H */
