/* SPDX-License-Identifier: GPL-2.0 */
/* Stands in for the kernel's <linux/mm.h>: kvmalloc and friends are in kshim.h. */
