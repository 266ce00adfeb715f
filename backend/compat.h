/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one place where RMAI meets differences between the kernels it supports
 * (Debian's 6.12 and 6.1). Each shim is keyed by the feature it papers over
 * and names the upstream change that introduced the difference.
 */
#ifndef RMAI_COMPAT_H
#define RMAI_COMPAT_H

#include <linux/version.h>

#endif /* RMAI_COMPAT_H */
