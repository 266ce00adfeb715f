// SPDX-License-Identifier: GPL-2.0
/*
 * RMAI: a block device whose sectors live in remote memory nodes, reached by
 * one-sided RDMA, meant to be used as swap.
 *
 * Module parameters (all checked here, in one place), module init and exit
 * (the device itself: dev.c).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/inet.h>
#include <linux/module.h>
#include <linux/slab.h>

#include "rmai.h"

#define RMAI_MAX_MEMNODES	16
#define RMAI_MAX_QUEUES		64

static char *memnodes = "";
module_param(memnodes, charp, 0444);
MODULE_PARM_DESC(memnodes, "Memory nodes: ADDR[:PORT][,ADDR[:PORT]...], IPv6 as [ADDR]:PORT; port 7470 by default. Without it, no device is created");

static char *size = "";
module_param(size, charp, 0444);
MODULE_PARM_DESC(size, "Size of /dev/rmai0 with a K/M/G/T suffix, a multiple of 4K (required with memnodes=)");

static unsigned int nr_queues;
module_param(nr_queues, uint, 0444);
MODULE_PARM_DESC(nr_queues, "Data queues per memnode, one per blk-mq hardware queue (default 0: one per online CPU, at most 64)");

static unsigned int queue_depth = 64;
module_param(queue_depth, uint, 0444);
MODULE_PARM_DESC(queue_depth, "Requests in flight per hardware queue, 4-1024 (default 64)");

static unsigned int connect_timeout = 10;
module_param(connect_timeout, uint, 0444);
MODULE_PARM_DESC(connect_timeout, "Seconds a memnode connection may take, 1-600 (default 10)");

static unsigned int io_timeout = 30;
module_param(io_timeout, uint, 0444);
MODULE_PARM_DESC(io_timeout, "Seconds a request waits for a lost memnode to come back before it fails, 1-3600 (default 30)");

static unsigned int reconnect_delay = 1;
module_param(reconnect_delay, uint, 0444);
MODULE_PARM_DESC(reconnect_delay, "Seconds before the first reconnect attempt, doubling up to 30 s between attempts, 1-30 (default 1)");

static unsigned int keepalive = 5;
module_param(keepalive, uint, 0444);
MODULE_PARM_DESC(keepalive, "Seconds between keepalives to each memnode, 0 to disable, at most 3600 (default 5)");

static bool synchronous = true;
module_param(synchronous, bool, 0444);
MODULE_PARM_DESC(synchronous, "Tell swap the device is synchronous (large-folio swap-in, no swap cache on reads; default Y)");

static unsigned int vmr_kb = 256;
module_param(vmr_kb, uint, 0444);
MODULE_PARM_DESC(vmr_kb, "KiB a read miss fetches into the cache: a power of two, 64-2048 (default 256)");

static unsigned int cache_mb = 64;
module_param(cache_mb, uint, 0444);
MODULE_PARM_DESC(cache_mb, "MiB of local VMR cache, preallocated; 0 disables it (default 64)");

static unsigned int writeback_mb = 8;
module_param(writeback_mb, uint, 0444);
MODULE_PARM_DESC(writeback_mb, "MiB of staging for write-back of small writes, preallocated; 0 disables it (default 8)");

static bool elide = true;
module_param(elide, bool, 0444);
MODULE_PARM_DESC(elide, "Remap a written page whose content its memnode holds already (a clean page swapped out again) instead of sending it (default Y)");

static bool readahead = true;
module_param(readahead, bool, 0444);
MODULE_PARM_DESC(readahead, "A sequential read of a cached VMR fetches the next VMR of its slab, so that the link works while the pages are consumed (default Y)");

static unsigned int tag_bytes = PAGE_SIZE;
module_param(tag_bytes, uint, 0444);
MODULE_PARM_DESC(tag_bytes, "For tests only: bytes at the end of each page that its fingerprint covers, 1-4096 (default 4096). Less remaps pages that differ: the data checkers must catch it");

struct rmai_config rmai_cfg;
int rmai_major;
struct workqueue_struct *rmai_wq;

static struct rmai_dev *rmai_dev0;	/* the one device, if memnodes= */
static DEFINE_MUTEX(rmai_dev_lock);	/* rmai_dev0 vs RDMA device removal */

/* --- parameters ------------------------------------------------------------ */

/* One ADDR[:PORT] or [ADDR6][:PORT] entry of memnodes=. */
static int rmai_parse_memnode(char *entry, struct sockaddr_storage *ss)
{
	char port[8] = __stringify(RMAI_DEFAULT_PORT);
	char *host = entry, *colon;

	if (*entry == '[') {
		host = entry + 1;
		colon = strchr(host, ']');
		if (!colon || (colon[1] && colon[1] != ':'))
			return -EINVAL;
		*colon++ = '\0';
		colon = *colon ? colon : NULL;
	} else {
		colon = strrchr(entry, ':');
		if (colon && strchr(entry, ':') != colon)
			colon = NULL;	/* a bare IPv6 address */
	}
	if (colon) {
		*colon = '\0';
		if (!colon[1] || strscpy(port, colon + 1, sizeof(port)) < 0)
			return -EINVAL;
	}
	return inet_pton_with_scope(&init_net, AF_UNSPEC, host, port, ss);
}

static int rmai_parse_memnodes(void)
{
	char *list, *pos, *entry, *copy;
	int ret = 0;

	list = kstrdup(memnodes, GFP_KERNEL);
	if (!list)
		return -ENOMEM;
	rmai_cfg.memnodes = kcalloc(RMAI_MAX_MEMNODES, sizeof(*rmai_cfg.memnodes),
				    GFP_KERNEL);
	if (!rmai_cfg.memnodes) {
		ret = -ENOMEM;
		goto out;
	}
	pos = list;
	while ((entry = strsep(&pos, ","))) {
		if (rmai_cfg.nr_memnodes == RMAI_MAX_MEMNODES) {
			pr_err("memnodes=: at most %d memnodes\n", RMAI_MAX_MEMNODES);
			ret = -EINVAL;
			goto out;
		}
		copy = kstrdup(entry, GFP_KERNEL);	/* parsing cuts it up */
		if (!copy) {
			ret = -ENOMEM;
			goto out;
		}
		ret = rmai_parse_memnode(entry, &rmai_cfg.memnodes[rmai_cfg.nr_memnodes]);
		if (ret) {
			pr_err("memnodes=: '%s' is not ADDR[:PORT] (IPv4, or [IPv6]:PORT)\n",
			       copy);
			kfree(copy);
			ret = -EINVAL;
			goto out;
		}
		kfree(copy);
		rmai_cfg.nr_memnodes++;
	}
out:
	kfree(list);
	return ret;
}

static int rmai_check_range(const char *name, unsigned int val,
			    unsigned int min, unsigned int max)
{
	if (val >= min && val <= max)
		return 0;
	pr_err("%s=%u: must be %u..%u\n", name, val, min, max);
	return -EINVAL;
}

/*
 * Check every parameter and fill rmai_cfg. Return: 0, or -EINVAL after one
 * log line naming the parameter.
 */
static int rmai_parse_config(void)
{
	char *end;
	int ret;

	ret = rmai_check_range("queue_depth", queue_depth, 4, 1024) ?:
	      rmai_check_range("nr_queues", nr_queues, 0, RMAI_MAX_QUEUES) ?:
	      rmai_check_range("connect_timeout", connect_timeout, 1, 600) ?:
	      rmai_check_range("io_timeout", io_timeout, 1, 3600) ?:
	      rmai_check_range("reconnect_delay", reconnect_delay, 1, 30) ?:
	      rmai_check_range("keepalive", keepalive, 0, 3600) ?:
	      rmai_check_range("vmr_kb", vmr_kb, RMAI_VMR_MIN_KB, RMAI_VMR_MAX_KB) ?:
	      rmai_check_range("cache_mb", cache_mb, 0, 65536) ?:
	      rmai_check_range("writeback_mb", writeback_mb, 0, 1024) ?:
	      rmai_check_range("tag_bytes", tag_bytes, 1, PAGE_SIZE);
	if (ret)
		return ret;
	if (!is_power_of_2(vmr_kb)) {
		pr_err("vmr_kb=%u: must be a power of two\n", vmr_kb);
		return -EINVAL;
	}
	if (cache_mb && (cache_mb << 10) < vmr_kb) {
		pr_err("cache_mb=%u: smaller than one VMR (vmr_kb=%u)\n", cache_mb, vmr_kb);
		return -EINVAL;
	}
	rmai_cfg.vmr_shift = ilog2(vmr_kb) + 10;
	rmai_cfg.cache_mb = cache_mb;
	rmai_cfg.writeback_mb = writeback_mb;
	rmai_cfg.nr_queues = nr_queues ?: min(num_online_cpus(), RMAI_MAX_QUEUES);
	rmai_cfg.queue_depth = queue_depth;
	rmai_cfg.connect_timeout = connect_timeout * HZ;
	rmai_cfg.io_timeout = io_timeout * HZ;
	rmai_cfg.reconnect_delay = reconnect_delay * HZ;
	rmai_cfg.reconnect_max = 30 * HZ;
	rmai_cfg.keepalive = keepalive * HZ;
	rmai_cfg.synchronous = synchronous;
	rmai_cfg.elide = elide;
	rmai_cfg.readahead = readahead;
	rmai_cfg.tag_bytes = tag_bytes;
	if (tag_bytes < PAGE_SIZE)
		pr_warn("tag_bytes=%u: pages that differ will be remapped to each other: for tests only\n",
			tag_bytes);

	if (!*memnodes) {
		if (*size) {
			pr_err("size=%s: needs memnodes=\n", size);
			return -EINVAL;
		}
		return 0;
	}
	if (!*size) {
		pr_err("size=: required with memnodes=\n");
		return -EINVAL;
	}
	rmai_cfg.size = memparse(size, &end);
	if (*end || !rmai_cfg.size || !IS_ALIGNED(rmai_cfg.size, RMAI_BLOCK_SIZE)) {
		pr_err("size=%s: not a size in bytes with a K/M/G/T suffix, or not a multiple of 4K\n",
		       size);
		return -EINVAL;
	}
	if (rmai_cfg.size >> PAGE_SHIFT >= RMAI_PM_NONE) {
		pr_err("size=%s: more than the page map's 16 TiB\n", size);
		return -EINVAL;
	}
	return rmai_parse_memnodes();
}

/* An RDMA device goes away: nothing of ours may stay on it. */
static void rmai_remove_one(struct ib_device *ibdev, void *client_data)
{
	mutex_lock(&rmai_dev_lock);
	if (rmai_dev0)
		rmai_memnodes_remove_ibdev(rmai_dev0, ibdev);
	mutex_unlock(&rmai_dev_lock);
}

static struct ib_client rmai_ib_client = {
	.name	= "rmai",
	.remove	= rmai_remove_one,
};

/* --- module ---------------------------------------------------------------- */

static int __init rmai_init(void)
{
	struct rmai_dev *dev;
	int ret;

	/* Slabs, VMRs, staging and WRITE_ZEROES are cut in 4 KiB pages. */
	if (PAGE_SIZE != SZ_4K) {
		pr_err("needs 4 KiB pages; this kernel has %lu KiB pages\n", PAGE_SIZE >> 10);
		return -EINVAL;
	}
	ret = rmai_parse_config();
	if (ret)
		goto out_free_config;
	rmai_major = register_blkdev(0, "rmai");
	if (rmai_major < 0) {
		ret = rmai_major;
		goto out_free_config;
	}
	rmai_wq = alloc_workqueue("rmai_wq", WQ_MEM_RECLAIM | WQ_UNBOUND, 0);
	if (!rmai_wq) {
		ret = -ENOMEM;
		goto out_unregister_blkdev;
	}
	ret = ib_register_client(&rmai_ib_client);
	if (ret)
		goto out_destroy_wq;
	if (rmai_cfg.nr_memnodes) {
		ret = rmai_dev_create(0, &dev);
		if (ret)
			goto out_unregister_client;
		mutex_lock(&rmai_dev_lock);
		rmai_dev0 = dev;
		mutex_unlock(&rmai_dev_lock);
	} else {
		pr_info("no memnodes= given: no device created\n");
	}
	pr_info("loaded, major %d\n", rmai_major);
	return 0;

out_unregister_client:
	ib_unregister_client(&rmai_ib_client);
out_destroy_wq:
	destroy_workqueue(rmai_wq);
out_unregister_blkdev:
	unregister_blkdev(rmai_major, "rmai");
out_free_config:
	kfree(rmai_cfg.memnodes);
	return ret;
}

static void __exit rmai_exit(void)
{
	struct rmai_dev *dev;

	mutex_lock(&rmai_dev_lock);
	dev = rmai_dev0;
	rmai_dev0 = NULL;
	mutex_unlock(&rmai_dev_lock);
	if (dev)
		rmai_dev_destroy(dev);
	ib_unregister_client(&rmai_ib_client);
	destroy_workqueue(rmai_wq);
	unregister_blkdev(rmai_major, "rmai");
	kfree(rmai_cfg.memnodes);
	pr_info("unloaded\n");
}

module_init(rmai_init);
module_exit(rmai_exit);

MODULE_DESCRIPTION("RMAI: swap to remote memory nodes over RDMA");
MODULE_LICENSE("GPL");
