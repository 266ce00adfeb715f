// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for the module's checks of memnode replies
 * (backend/reply.c, built here against the same protocol header, with
 * kshim/ standing in for the kernel's headers). The first byte picks the
 * check: an accept, or the slab list of an ALLOC/LIST reply checked against
 * an accept that passed. Whatever passes must satisfy what the module then
 * relies on; anything else aborts, as do ASan and UBSan.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"

#define CHECK(cond)	do { if (!(cond)) abort(); } while (0)

static void accept_case(const uint8_t *data, size_t size)
{
	struct rmai_accept acc;
	const char *why = NULL;

	if (rmai_check_accept(data, size, &acc, &why)) {
		CHECK(why != NULL);
		return;
	}
	CHECK(size >= sizeof(struct rmai_cm_rep));
	CHECK(is_power_of_2(acc.slab_size));
	CHECK(acc.slab_size >= RMAI_MIN_SLAB_SIZE && acc.slab_size <= RMAI_MAX_SLAB_SIZE);
	CHECK(acc.nr_slabs && acc.nr_slabs <= RMAI_MAX_POOL_SLABS);
	CHECK(acc.nr_free <= acc.nr_slabs && acc.nr_held <= acc.nr_slabs);
	CHECK(acc.token && acc.lease_grace && acc.lease_grace <= RMAI_MAX_GRACE);
	/* The module shifts by log2(slab_size) and sizes arrays by nr_slabs. */
	CHECK(__builtin_ctzll(acc.slab_size) < 64);
}

static void slabs_case(const uint8_t *data, size_t size)
{
	struct rmai_accept acc = { .slab_size = 1ULL << 22, .nr_slabs = 64 };
	struct rmai_slab_info desc[RMAI_MSG_MAX_SLABS];
	struct rmai_msg msg;
	const char *why = NULL;
	uint32_t max, count = 0xdead, i, j;

	if (size < 2)
		return;
	max = data[0] % (RMAI_MSG_MAX_SLABS + 2);
	acc.nr_slabs = 1 + data[1];
	data += 2;
	size -= 2;
	memset(&msg, 0, sizeof(msg));
	memcpy(&msg, data, size < sizeof(msg) ? size : sizeof(msg));
	memset(desc, 0xa5, sizeof(desc));
	if (rmai_check_slabs(&msg, max, &acc, desc, &count, &why)) {
		CHECK(why != NULL);
		return;
	}
	CHECK(count <= max && count <= RMAI_MSG_MAX_SLABS);
	for (i = 0; i < count; i++) {
		CHECK(desc[i].index < acc.nr_slabs);
		CHECK(desc[i].addr && desc[i].addr + acc.slab_size - 1 >= desc[i].addr);
		for (j = 0; j < i; j++)
			CHECK(desc[j].index != desc[i].index);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	if (data[0] & 1)
		accept_case(data + 1, size - 1);
	else
		slabs_case(data + 1, size - 1);
	return 0;
}
