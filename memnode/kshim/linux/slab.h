/* SPDX-License-Identifier: GPL-2.0 */
/* Stands in for the kernel's <linux/slab.h>: kcalloc and kfree are in kshim.h. */
