// SPDX-License-Identifier: GPL-2.0
/*
 * RMAI: what a memnode answers is checked as strictly as the memnode checks
 * what it is asked. A memnode is trusted with the data it stores, not with
 * the module's memory: a field that would size a shift, an array or a
 * remote run is refused before anything uses it, with a reason for the log.
 */
#include <linux/errno.h>
#include <linux/log2.h>
#include <linux/string.h>

#include "reply.h"

/**
 * rmai_check_accept() - check the private data of a memnode's accept
 * @data: the bytes received
 * @len: how many
 * @acc: filled in when they pass
 * @why: set to the reason when they do not
 *
 * Return: 0, or -EPROTO.
 */
int rmai_check_accept(const void *data, size_t len, struct rmai_accept *acc,
		      const char **why)
{
	struct rmai_cm_rep copy, *rep = &copy;	/* private data may be unaligned */
	unsigned int i;

	if (!data || len < sizeof(*rep))
		goto foreign;
	memcpy(rep, data, sizeof(*rep));
	if (le32_to_cpu(rep->magic) != RMAI_PROTO_MAGIC ||
	    le16_to_cpu(rep->version) != RMAI_PROTO_VERSION)
		goto foreign;
	for (i = 0; i < sizeof(rep->reserved); i++)
		if (rep->reserved[i])
			goto bad;
	acc->token = le64_to_cpu(rep->token);
	acc->slab_size = le64_to_cpu(rep->slab_size);
	acc->nr_slabs = le32_to_cpu(rep->nr_slabs);
	acc->nr_free = le32_to_cpu(rep->nr_free);
	acc->nr_held = le32_to_cpu(rep->nr_held);
	acc->lease_grace = le32_to_cpu(rep->lease_grace);
	acc->liveness = le32_to_cpu(rep->liveness);
	if (rep->status || !acc->token ||
	    !is_power_of_2(acc->slab_size) || acc->slab_size < RMAI_MIN_SLAB_SIZE ||
	    acc->slab_size > RMAI_MAX_SLAB_SIZE ||
	    !acc->nr_slabs || acc->nr_slabs > RMAI_MAX_POOL_SLABS ||
	    acc->nr_free > acc->nr_slabs || acc->nr_held > acc->nr_slabs ||
	    !acc->lease_grace || acc->lease_grace > RMAI_MAX_GRACE ||
	    acc->liveness > RMAI_MAX_GRACE)
		goto bad;
	return 0;
foreign:
	*why = "the accept is not an RMAI reply of this version";
	return -EPROTO;
bad:
	*why = "the accept has a field out of range";
	return -EPROTO;
}

/**
 * rmai_check_slabs() - check the slab descriptors of an ALLOC or LIST reply
 * @rep: the reply, its header already checked
 * @max: descriptors the request allows (at most RMAI_MSG_MAX_SLABS)
 * @acc: the memnode's checked accept
 * @desc: filled with the descriptors, in host order, when they pass
 * @count: set to their number
 * @why: set to the reason when they do not
 *
 * Every descriptor must name a slab of the pool, once, at an address whose
 * whole slab fits in 64 bits. For LIST, the total must fit the pool too.
 *
 * Return: 0, or -EPROTO.
 */
int rmai_check_slabs(const struct rmai_msg *rep, u32 max, const struct rmai_accept *acc,
		     struct rmai_slab_info *desc, u32 *count, const char **why)
{
	u32 n = le32_to_cpu(rep->slabs.count), i, j;
	u64 addr;

	if (n > max || n > RMAI_MSG_MAX_SLABS) {
		*why = "the reply lists more slabs than asked for";
		return -EPROTO;
	}
	if (le32_to_cpu(rep->slabs.total) > acc->nr_slabs) {
		*why = "the reply holds more slabs than the pool has";
		return -EPROTO;
	}
	for (i = 0; i < n; i++) {
		addr = le64_to_cpu(rep->slabs.desc[i].addr);
		desc[i].addr = addr;
		desc[i].rkey = le32_to_cpu(rep->slabs.desc[i].rkey);
		desc[i].index = le32_to_cpu(rep->slabs.desc[i].index);
		if (desc[i].index >= acc->nr_slabs || !addr ||
		    addr + acc->slab_size - 1 < addr) {
			*why = "a slab of the reply is out of range";
			return -EPROTO;
		}
		for (j = 0; j < i; j++)
			if (desc[j].index == desc[i].index) {
				*why = "the reply lists a slab twice";
				return -EPROTO;
			}
	}
	*count = n;
	return 0;
}
