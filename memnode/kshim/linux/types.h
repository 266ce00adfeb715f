/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Stands in for the kernel's <linux/types.h>: the userspace one (the
 * __le32 and friends of rmai_proto.h), with u16, u32 and u64 in kshim.h.
 */
#include_next <linux/types.h>
