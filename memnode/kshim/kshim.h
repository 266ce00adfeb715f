/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The few kernel definitions backend/reply.c and backend/pagemap.c use,
 * for building them in userspace (fuzz_reply.c, test_pagemap.c): forced in
 * with -include, so that the kernel sources carry no userspace
 * conditionals. The host tests are single-threaded: a spinlock is nothing.
 */
#ifndef RMAI_KSHIM_H
#define RMAI_KSHIM_H

#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

#define U32_MAX			UINT32_MAX

#define le16_to_cpu(x)		le16toh(x)
#define le32_to_cpu(x)		le32toh(x)
#define le64_to_cpu(x)		le64toh(x)
#define BIT(n)			(1U << (n))
#define BIT_ULL(n)		(1ULL << (n))
#define is_power_of_2(n)	((n) != 0 && ((n) & ((n) - 1)) == 0)

static inline u32 roundup_pow_of_two(u32 n)
{
	return n <= 1 ? 1 : 1U << (32 - __builtin_clz(n - 1));
}

#define GFP_KERNEL			0
#define kcalloc(n, size, gfp)		calloc(n, size)
#define kvcalloc(n, size, gfp)		calloc(n, size)
#define kvmalloc_array(n, size, gfp)	calloc(n, size)
#define kfree(p)			free(p)
#define kvfree(p)			free(p)

typedef struct { int unused; } spinlock_t;
#define spin_lock_init(lock)			((void)(lock))
#define spin_lock_irqsave(lock, flags)		((void)(lock), (flags) = 0)
#define spin_unlock_irqrestore(lock, flags)	((void)(lock), (void)(flags))

#endif /* RMAI_KSHIM_H */
