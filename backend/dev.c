// SPDX-License-Identifier: GPL-2.0
/*
 * RMAI: the life of a device. Negotiate with the memnodes first (connect,
 * lease), then build what the data path needs from what they answered
 * (write-back pools, the VMR cache, the disk), then go live; take it all
 * down in the exact reverse order.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/random.h>
#include <linux/slab.h>

#include "rmai.h"

/* A memnode is back, or DOWN: staged writes go out (or are dropped) first. */
static void rmai_dev_memnode_changed(struct rmai_memnode *mn)
{
	rmai_wb_memnode_changed(mn);
	rmai_blk_memnode_changed(mn);
}

static void rmai_dev_memnode_expired(struct rmai_memnode *mn)
{
	rmai_wb_memnode_expired(mn);
	rmai_blk_memnode_expired(mn);
}

static const struct rmai_mn_ops rmai_dev_mn_ops = {
	.changed	= rmai_dev_memnode_changed,
	.expired	= rmai_dev_memnode_expired,
};

/* Work requests per transfer, from the SGE limits the queues agreed on. */
static void rmai_dev_geometry(struct rmai_dev *dev)
{
	unsigned int sge = min(dev->lim.sge_read, dev->lim.sge_write);

	dev->wrs_per_cmd = rmai_xfer_max_wrs(RMAI_MAX_SEGMENTS, sge);
	/* Each run of a fetch may end a work request early. */
	dev->wrs_per_vmr = rmai_xfer_max_wrs(dev->vmr_pages, dev->lim.sge_read) +
			   RMAI_VMR_MAX_RUNS;
}

/**
 * rmai_dev_create() - connect, lease, and add /dev/rmai@id
 * @id: the device number
 * @devp: set to the device
 *
 * Return: 0, or a negative errno with nothing left behind.
 */
int rmai_dev_create(int id, struct rmai_dev **devp)
{
	struct rmai_dev *dev;
	int ret;

	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev)
		return -ENOMEM;
	dev->id = id;
	dev->size = rmai_cfg.size;
	get_random_bytes(dev->client_id, sizeof(dev->client_id));
	dev->vmr_shift = rmai_cfg.vmr_shift;
	dev->vmr_pages = 1U << (dev->vmr_shift - PAGE_SHIFT);
	dev->cmd_ops = &rmai_blk_cmd_ops;
	rmai_order_init(&dev->order);
	dev->stats = alloc_percpu(struct rmai_stats);
	if (!dev->stats) {
		ret = -ENOMEM;
		goto out_free_dev;
	}
	ret = rmai_memnodes_connect(dev, &rmai_dev_mn_ops);
	if (ret)
		goto out_free_stats;
	rmai_dev_geometry(dev);
	ret = rmai_remote_dev_init(dev);
	if (ret)
		goto out_disconnect;
	ret = rmai_wb_init(dev);
	if (ret)
		goto out_remote_exit;
	ret = rmai_cache_init(dev);
	if (ret)
		goto out_wb_exit;
	ret = rmai_blk_alloc(dev);
	if (ret)
		goto out_cache_exit;
	rmai_memnodes_go_live(dev);
	ret = rmai_blk_add(dev);
	if (ret)
		goto out_stop_recovery;
	pr_info("%s: %llu MiB on %u memnode(s) in %u slabs of %u MiB, %u queues of %u; VMRs of %u KiB, cache %u MiB, write-back %u MiB\n",
		dev->disk->disk_name, dev->size >> 20, dev->nr_memnodes,
		dev->nr_slabs, 1U << (dev->slab_shift - 20), rmai_cfg.nr_queues,
		rmai_cfg.queue_depth, 1U << (dev->vmr_shift - 10), rmai_cfg.cache_mb,
		rmai_cfg.writeback_mb);
	*devp = dev;
	return 0;

out_stop_recovery:
	rmai_memnodes_stop_recovery(dev);
	rmai_blk_free(dev);
out_cache_exit:
	rmai_cache_exit(dev);
out_wb_exit:
	rmai_wb_exit(dev);
out_remote_exit:
	rmai_remote_dev_exit(dev);
out_disconnect:
	rmai_memnodes_disconnect(dev);
out_free_stats:
	free_percpu(dev->stats);
out_free_dev:
	kfree(dev);
	return ret;
}

/**
 * rmai_dev_destroy() - the reverse of rmai_dev_create()
 * @dev: the device, not open
 *
 * Deleting the disk ends every request (those waiting for a memnode that
 * is away fail within io_timeout); staged writes get io_timeout to land.
 * The cache and the staging pools go only once the queues are drained: a
 * VMR fetch, or a staged write, may still be in flight after its request
 * completed.
 */
void rmai_dev_destroy(struct rmai_dev *dev)
{
	unsigned int i;

	rmai_blk_del(dev);
	if (!rmai_wb_drain(dev, rmai_cfg.io_timeout))
		pr_warn("%s: staged writes did not land in time; dropped\n",
			dev->disk->disk_name);
	rmai_memnodes_stop_recovery(dev);
	for (i = 0; i < dev->nr_memnodes; i++)
		rmai_wb_drop(&dev->memnodes[i]);
	rmai_blk_free(dev);
	rmai_memnodes_disconnect(dev);
	rmai_cache_exit(dev);
	rmai_wb_exit(dev);
	rmai_remote_dev_exit(dev);
	free_percpu(dev->stats);
	kfree(dev);
}
