/* SPDX-License-Identifier: GPL-2.0 */
/* Stands in for the kernel's <linux/string.h>. */
#include <string.h>
