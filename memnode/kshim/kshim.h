/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The few kernel definitions backend/reply.c uses, for building it in
 * userspace (fuzz_reply.c): forced in with -include, so that the kernel
 * sources carry no userspace conditionals.
 */
#ifndef RMAI_KSHIM_H
#define RMAI_KSHIM_H

#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

typedef uint32_t u32;
typedef uint64_t u64;

#define le16_to_cpu(x)		le16toh(x)
#define le32_to_cpu(x)		le32toh(x)
#define le64_to_cpu(x)		le64toh(x)
#define BIT(n)			(1U << (n))
#define BIT_ULL(n)		(1ULL << (n))
#define is_power_of_2(n)	((n) != 0 && ((n) & ((n) - 1)) == 0)

#endif /* RMAI_KSHIM_H */
