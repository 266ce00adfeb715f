// SPDX-License-Identifier: GPL-2.0
/*
 * RMAI: a block device whose sectors live in remote memory nodes, reached by
 * one-sided RDMA, meant to be used as swap.
 *
 * Module init and exit.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blkdev.h>
#include <linux/module.h>

#include "compat.h"

static int rmai_major;		/* dynamic block major of all /dev/rmaiN */

static int __init rmai_init(void)
{
	rmai_major = register_blkdev(0, "rmai");
	if (rmai_major < 0)
		return rmai_major;
	pr_info("loaded, major %d\n", rmai_major);
	return 0;
}

static void __exit rmai_exit(void)
{
	unregister_blkdev(rmai_major, "rmai");
	pr_info("unloaded\n");
}

module_init(rmai_init);
module_exit(rmai_exit);

MODULE_DESCRIPTION("RMAI: swap to remote memory nodes over RDMA");
MODULE_LICENSE("GPL");
