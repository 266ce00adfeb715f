// SPDX-License-Identifier: GPL-2.0
/*
 * RMAI: the one copy between a request's pages and an array of whole pages
 * (a VMR's, a staged write's). A bio_vec may start anywhere in a page and
 * be longer than what is left of the page on the other side (O_DIRECT from
 * a buffer at a 512-byte offset gives 3584 + 4096 + 512 bytes), so every
 * piece is cut at the page boundaries of both sides.
 */
#include <linux/highmem.h>

#include "rmai.h"

/**
 * rmai_copy_rq() - copy between @rq's data and @pages
 * @rq: a READ or WRITE
 * @pages: pages holding the bytes from @off on
 * @off: byte offset of the request's first byte in @pages
 * @to_rq: copy into the request (a read), else out of it (a write)
 */
void rmai_copy_rq(struct request *rq, struct page **pages, u32 off, bool to_rq)
{
	struct req_iterator iter;
	struct bio_vec bv;
	u32 done, n;

	rq_for_each_segment(bv, rq, iter) {
		for (done = 0; done < bv.bv_len; done += n, off += n) {
			n = min_t(u32, bv.bv_len - done, PAGE_SIZE - offset_in_page(off));
			if (to_rq)
				memcpy_page(bv.bv_page, bv.bv_offset + done,
					    pages[off >> PAGE_SHIFT], offset_in_page(off), n);
			else
				memcpy_page(pages[off >> PAGE_SHIFT], offset_in_page(off),
					    bv.bv_page, bv.bv_offset + done, n);
		}
	}
}
