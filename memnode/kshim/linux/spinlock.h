/* SPDX-License-Identifier: GPL-2.0 */
/* Stands in for the kernel's <linux/spinlock.h>: kshim.h has a spinlock that is nothing. */
