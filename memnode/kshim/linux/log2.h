/* SPDX-License-Identifier: GPL-2.0 */
/* Stands in for the kernel's <linux/log2.h>: kshim.h has is_power_of_2(). */
