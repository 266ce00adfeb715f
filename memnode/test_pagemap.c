// SPDX-License-Identifier: GPL-2.0
/*
 * Host tests of the module's page map (backend/pagemap.c, built against
 * kshim/), with the kselftest harness: a few cases by hand, then a long
 * random run of writes, reads, frees and completions in any order, checked
 * against a model of what every logical page must read back and against
 * the map's own books after every step.
 *
 * Contents are small numbers (0 is a page of zeros); a tag is a function of
 * the number, standing in for the module's keyed PRF.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"

#include "pagemap.h"

static const u64 zero_tag[2] = { 0x5a5a, 0 };

static void tag_of(unsigned int content, u64 tag[2])
{
	if (!content) {
		tag[0] = zero_tag[0];
		tag[1] = zero_tag[1];
		return;
	}
	/* Contents 16 apart share tag[0]: only the whole tag tells them apart. */
	tag[0] = (content % 16 + 1) * 0x9e3779b97f4a7c15ULL;
	tag[1] = content;
}

/*
 * Write @content to logical page @lpn and let it land. Return: the remote
 * page it was sent to, RMAI_PM_NONE when it was not sent.
 */
static u32 landed(struct rmai_pagemap *pm, u32 lpn, unsigned int content)
{
	u64 tag[2];
	u32 rpn;

	tag_of(content, tag);
	if (rmai_pm_write(pm, lpn, tag, &rpn) != RMAI_PM_SEND)
		return RMAI_PM_NONE;
	rmai_pm_written(pm, rpn, 1, true);
	return rpn;
}

TEST(fresh_map_reads_zeros)
{
	struct rmai_pagemap pm;
	u32 rpn;

	ASSERT_EQ(0, rmai_pm_init(&pm, 32, 3, 2, zero_tag));
	EXPECT_EQ(32, rmai_pm_get_run(&pm, 0, 32, &rpn));
	EXPECT_EQ(RMAI_PM_NONE, rpn);
	EXPECT_EQ(16, pm.zones[0].nr_free);
	EXPECT_EQ(16, pm.zones[1].nr_free);
	rmai_pm_exit(&pm);
}

/* A page read back, freed and written again unchanged goes nowhere. */
TEST(clean_page_is_not_sent_twice)
{
	struct rmai_pagemap pm;
	u64 tag[2];
	u32 rpn, got;

	ASSERT_EQ(0, rmai_pm_init(&pm, 32, 3, 2, zero_tag));
	ASSERT_EQ(3, landed(&pm, 3, 7));	/* its own page first */
	tag_of(7, tag);
	EXPECT_EQ(1, rmai_pm_get_run(&pm, 3, 1, &got));
	EXPECT_EQ(3, got);
	rmai_pm_put_run(&pm, got, 1);
	rmai_pm_free(&pm, 3, 1);	/* swap freed the slot on swap-in */
	/* Evicted again unchanged, to another slot of the same zone. */
	EXPECT_EQ(RMAI_PM_ELIDED, rmai_pm_write(&pm, 17, tag, &rpn));
	EXPECT_EQ(1, rmai_pm_get_run(&pm, 17, 1, &got));
	EXPECT_EQ(3, got);
	rmai_pm_put_run(&pm, got, 1);
	/* Not to a slot of the other zone: that is another memnode. */
	EXPECT_EQ(8, landed(&pm, 8, 7));
	rmai_pm_exit(&pm);
}

/* A new write does not take its own page from content that may come back. */
TEST(candidates_are_not_taken_first)
{
	struct rmai_pagemap pm;
	u64 tag[2];
	u32 rpn;

	ASSERT_EQ(0, rmai_pm_init(&pm, 32, 3, 1, zero_tag));
	ASSERT_EQ(3, landed(&pm, 3, 7));
	rmai_pm_free(&pm, 3, 1);
	rpn = landed(&pm, 3, 9);
	ASSERT_NE(RMAI_PM_NONE, rpn);
	EXPECT_NE(3, rpn);
	tag_of(7, tag);
	EXPECT_EQ(RMAI_PM_ELIDED, rmai_pm_write(&pm, 20, tag, &rpn));
	EXPECT_EQ(3, pm.l2p[20]);
	rmai_pm_exit(&pm);
}

TEST(zeros_map_to_nothing)
{
	struct rmai_pagemap pm;
	u64 tag[2];
	u32 rpn;

	ASSERT_EQ(0, rmai_pm_init(&pm, 32, 3, 1, zero_tag));
	ASSERT_NE(RMAI_PM_NONE, landed(&pm, 4, 5));
	EXPECT_EQ(31, pm.zones[0].nr_free);
	tag_of(0, tag);
	EXPECT_EQ(RMAI_PM_ZEROED, rmai_pm_write(&pm, 4, tag, &rpn));
	EXPECT_EQ(RMAI_PM_NONE, pm.l2p[4]);
	EXPECT_EQ(32, pm.zones[0].nr_free);
	rmai_pm_exit(&pm);
}

/* A page being read is not reused until the read ends; the writer waits. */
TEST(pinned_pages_are_not_reused)
{
	struct rmai_pagemap pm;
	u64 tag[2];
	u32 rpn, i, got;

	ASSERT_EQ(0, rmai_pm_init(&pm, 8, 3, 1, zero_tag));
	for (i = 0; i < 8; i++)
		ASSERT_NE(RMAI_PM_NONE, landed(&pm, i, 10 + i));
	ASSERT_EQ(8, rmai_pm_get_run(&pm, 0, 8, &got));
	ASSERT_EQ(0, got);
	/* Page 0 is read and rewritten: its old page is busy, none is free. */
	tag_of(99, tag);
	EXPECT_EQ(RMAI_PM_FULL, rmai_pm_write(&pm, 0, tag, &rpn));
	EXPECT_EQ(0, pm.l2p[0]);
	rmai_pm_free(&pm, 5, 1);	/* freed while being read: still busy */
	EXPECT_EQ(0, pm.zones[0].nr_free);
	rmai_pm_put_run(&pm, got, 8);
	EXPECT_EQ(1, pm.zones[0].nr_free);
	EXPECT_EQ(RMAI_PM_SEND, rmai_pm_write(&pm, 0, tag, &rpn));
	EXPECT_EQ(0, rpn);		/* not shared, not busy: in place */
	rmai_pm_written(&pm, rpn, 1, true);
	rmai_pm_exit(&pm);
}

TEST(runs_stop_at_slabs_and_holes)
{
	struct rmai_pagemap pm;
	u32 i, got;

	ASSERT_EQ(0, rmai_pm_init(&pm, 32, 3, 1, zero_tag));
	for (i = 4; i < 14; i++)
		ASSERT_EQ(i, landed(&pm, i, i));
	EXPECT_EQ(4, rmai_pm_get_run(&pm, 0, 16, &got));
	EXPECT_EQ(RMAI_PM_NONE, got);
	EXPECT_EQ(4, rmai_pm_get_run(&pm, 4, 12, &got));	/* slab ends at 8 */
	EXPECT_EQ(4, got);
	rmai_pm_put_run(&pm, got, 4);
	EXPECT_EQ(6, rmai_pm_get_run(&pm, 8, 8, &got));	/* zeros from 14 */
	EXPECT_EQ(8, got);
	rmai_pm_put_run(&pm, got, 6);
	rmai_pm_exit(&pm);
}

/* --- the random run ------------------------------------------------------- */

#define NR_PAGES	64
#define SLAB_SHIFT	3
#define NR_ZONES	2
#define MAX_OPS		32	/* transfers in flight */

struct op {
	bool write;
	u32 lpn;		/* first logical page */
	u32 rpn;		/* first remote page (RMAI_PM_NONE: zeros) */
	u32 nr;
	unsigned int content;	/* write: what lands */
	bool tagged;		/* write: with its tag */
	bool in_place;		/* write: to the page the logical page is on */
	unsigned int old;	/* write: what the logical page held before */
	bool old_unknown;
	unsigned int seq[8];	/* read: each page's write count at issue */
	unsigned int want[8];	/* read: what each page must read */
};

struct model {
	struct rmai_pagemap pm;
	unsigned int content[NR_PAGES];		/* what each logical page holds */
	unsigned int seq[NR_PAGES];		/* writes and frees of it so far */
	bool writing[NR_PAGES];			/* a write of it is in flight */
	bool unknown[NR_PAGES];			/* its last write failed */
	int remote[NR_PAGES];			/* what each remote page holds */
	struct op ops[MAX_OPS];
	unsigned int nr_ops;
	unsigned long verdicts[4];
	unsigned long moved_early;		/* new pages mapped before landing */
	unsigned long reads_checked;
};

/* The map's books agree with themselves after every step. */
static int books_ok(struct model *m)
{
	struct rmai_pagemap *pm = &m->pm;
	u32 refs[NR_PAGES] = { 0 }, pins[NR_PAGES] = { 0 };
	u32 i, j, rpn, nr_free[NR_ZONES] = { 0 };
	bool on_list[NR_PAGES] = { false }, hashed[NR_PAGES] = { false };

	for (i = 0; i < NR_PAGES; i++) {
		rpn = pm->l2p[i];
		if (rpn == RMAI_PM_NONE)
			continue;
		if ((rpn >> SLAB_SHIFT) % NR_ZONES != (i >> SLAB_SHIFT) % NR_ZONES)
			return 0;	/* on another memnode */
		refs[rpn]++;
	}
	for (i = 0; i < m->nr_ops; i++)
		if (m->ops[i].rpn != RMAI_PM_NONE)
			for (j = 0; j < m->ops[i].nr; j++)
				pins[m->ops[i].rpn + j]++;
	for (i = 0; i < NR_ZONES; i++) {
		u32 prev = RMAI_PM_NONE;

		for (rpn = pm->zones[i].head; rpn != RMAI_PM_NONE; rpn = pm->rp[rpn].fnext) {
			if (on_list[rpn] || pm->rp[rpn].fprev != prev ||
			    ((rpn >> SLAB_SHIFT) % NR_ZONES) != i)
				return 0;
			on_list[rpn] = true;
			nr_free[i]++;
			prev = rpn;
		}
		if (pm->zones[i].tail != prev || pm->zones[i].nr_free != nr_free[i])
			return 0;
	}
	for (i = 0; i < NR_PAGES; i++) {
		struct rmai_rpage *rp = &pm->rp[i];

		if (rp->refs != refs[i] || rp->pins != pins[i] ||
		    on_list[i] != (!refs[i] && !pins[i]))
			return 0;
	}
	/* Tagged pages: hashed once, in their bucket, tagged with what they hold. */
	for (i = 0; i <= pm->bucket_mask; i++)
		for (rpn = pm->bucket[i]; rpn != RMAI_PM_NONE; rpn = pm->rp[rpn].hnext) {
			u64 tag[2];

			if (!(pm->rp[rpn].flags & RMAI_RP_TAGGED) ||
			    (pm->rp[rpn].tag[0] & pm->bucket_mask) != i || m->remote[rpn] < 0)
				return 0;
			tag_of(m->remote[rpn], tag);
			if (tag[0] != pm->rp[rpn].tag[0] || tag[1] != pm->rp[rpn].tag[1])
				return 0;
			if (hashed[rpn])
				return 0;
			hashed[rpn] = true;
		}
	for (i = 0; i < NR_PAGES; i++)
		if (!!(pm->rp[i].flags & RMAI_RP_TAGGED) != hashed[i])
			return 0;
	/* Every page not being written reads back what was last written. */
	for (i = 0; i < NR_PAGES; i++) {
		if (m->writing[i] || m->unknown[i])
			continue;
		rpn = pm->l2p[i];
		if ((rpn == RMAI_PM_NONE ? 0 : m->remote[rpn]) != (int)m->content[i])
			return 0;
	}
	return 1;
}

static void start_write(struct model *m, u32 lpn, unsigned int content, bool tagged)
{
	unsigned int old_content;
	enum rmai_pm_verdict v;
	bool old_unknown;
	struct op *op;
	u64 tag[2];
	u32 rpn, old;

	if (m->writing[lpn])
		return;		/* order.c: overlapping writes wait */
	tag_of(content, tag);
	old = m->pm.l2p[lpn];
	v = rmai_pm_write(&m->pm, lpn, tagged ? tag : NULL, &rpn);
	m->verdicts[v]++;
	if (v == RMAI_PM_FULL)
		return;
	old_content = m->content[lpn];
	old_unknown = m->unknown[lpn];
	m->content[lpn] = content;
	m->unknown[lpn] = false;
	m->seq[lpn]++;
	if (v != RMAI_PM_SEND)
		return;
	op = &m->ops[m->nr_ops++];
	memset(op, 0, sizeof(*op));
	op->write = true;
	op->lpn = lpn;
	op->rpn = rpn;
	op->nr = 1;
	op->content = content;
	op->tagged = tagged;
	op->in_place = rpn == old;
	op->old = old_content;
	op->old_unknown = old_unknown;
	op->seq[0] = m->seq[lpn];
	/* Until it lands, the logical page stays where it was. */
	if (!op->in_place && m->pm.l2p[lpn] != old)
		m->moved_early++;
	m->writing[lpn] = true;
	m->remote[rpn] = -1;	/* torn until it lands */
}

static void start_read(struct model *m, u32 lpn, u32 nr)
{
	struct op *op = &m->ops[m->nr_ops++];
	u32 i;

	memset(op, 0, sizeof(*op));
	op->lpn = lpn;
	op->nr = rmai_pm_get_run(&m->pm, lpn, nr, &op->rpn);
	for (i = 0; i < op->nr; i++) {
		op->seq[i] = m->seq[lpn + i];
		/* Being written, or its write failed: any answer will do. */
		op->want[i] = m->unknown[lpn + i] || m->writing[lpn + i] ? ~0U : m->content[lpn + i];
	}
}

/* End op @i; returns 0 when a read saw what it must not. */
static int end_op(struct model *m, unsigned int i)
{
	struct op op = m->ops[i];
	bool landed;
	u32 j;

	m->ops[i] = m->ops[--m->nr_ops];
	if (op.write) {
		/* Now and then the write fails: what landed is unknown. */
		landed = random() % 50;
		m->remote[op.rpn] = landed ? (int)op.content : -1;
		rmai_pm_written(&m->pm, op.rpn, 1, landed);
		if (!landed && m->seq[op.lpn] == op.seq[0]) {
			/* In place, what it holds is unknown; else it did not move. */
			m->unknown[op.lpn] = op.in_place || op.old_unknown;
			m->content[op.lpn] = op.old;
		} else if (landed && m->seq[op.lpn] != op.seq[0] &&
			   m->pm.l2p[op.lpn] == op.rpn) {
			/* Freed while in flight, from nothing: the write may win. */
			m->content[op.lpn] = op.content;
			m->unknown[op.lpn] = false;
		}
		m->writing[op.lpn] = false;
		return 1;
	}
	for (j = 0; j < op.nr; j++) {
		int got = op.rpn == RMAI_PM_NONE ? 0 : m->remote[op.rpn + j];

		/* Written or freed meanwhile: any answer will do, for that page. */
		if (m->seq[op.lpn + j] != op.seq[j] || m->writing[op.lpn + j] || op.want[j] == ~0U)
			continue;
		if (got != (int)op.want[j]) {
			fprintf(stderr, "# lpn %u rpn %u: read %d, not %u\n", op.lpn + j,
				op.rpn + j, got, op.want[j]);
			return 0;
		}
		m->reads_checked++;
	}
	rmai_pm_put_run(&m->pm, op.rpn, op.nr);
	return 1;
}

FIXTURE(random_run) {
	struct model m;
};

/*
 * Few contents and many frees, so that writes find their twins; or many
 * contents and few frees, so that the map fills up.
 */
FIXTURE_VARIANT(random_run) {
	unsigned int nr_contents;
	unsigned int free_pct;
};

FIXTURE_VARIANT_ADD(random_run, twins) { .nr_contents = 24, .free_pct = 10 };
FIXTURE_VARIANT_ADD(random_run, full) { .nr_contents = 100000, .free_pct = 1 };

FIXTURE_SETUP(random_run)
{
	memset(&self->m, 0, sizeof(self->m));
	ASSERT_EQ(0, rmai_pm_init(&self->m.pm, NR_PAGES, SLAB_SHIFT, NR_ZONES, zero_tag));
}

FIXTURE_TEARDOWN(random_run)
{
	rmai_pm_exit(&self->m.pm);
}

TEST_F(random_run, against_a_model)
{
	struct model *m = &self->m;
	unsigned long step;
	u32 i;

	srandom(12);
	for (step = 0; step < 400000; step++) {
		u32 lpn = random() % NR_PAGES;
		unsigned int dice = random() % 100;

		if (m->nr_ops == MAX_OPS || (m->nr_ops && dice < 35)) {
			ASSERT_TRUE(end_op(m, random() % m->nr_ops));
		} else if (dice < 70) {
			start_write(m, lpn, random() % variant->nr_contents, dice % 13);
		} else if (dice < 100 - variant->free_pct) {
			start_read(m, lpn, 1 + random() % (NR_PAGES - lpn < 8 ? NR_PAGES - lpn : 8));
		} else {
			u32 nr = 1 + random() % 4;

			if (lpn + nr > NR_PAGES)
				nr = NR_PAGES - lpn;
			rmai_pm_free(&m->pm, lpn, nr);
			for (i = lpn; i < lpn + nr; i++) {
				m->content[i] = 0;
				m->unknown[i] = false;
				m->seq[i]++;
			}
		}
		if (!books_ok(m)) {
			TH_LOG("books wrong after step %lu", step);
			ASSERT_TRUE(0);
		}
	}
	while (m->nr_ops)
		ASSERT_TRUE(end_op(m, 0));
	ASSERT_TRUE(books_ok(m));
	rmai_pm_free(&m->pm, 0, NR_PAGES);
	memset(m->content, 0, sizeof(m->content));
	memset(m->unknown, 0, sizeof(m->unknown));
	ASSERT_TRUE(books_ok(m));
	TH_LOG("sent %lu, elided %lu, zeroed %lu, full %lu; reads checked %lu",
	       m->verdicts[RMAI_PM_SEND], m->verdicts[RMAI_PM_ELIDED],
	       m->verdicts[RMAI_PM_ZEROED], m->verdicts[RMAI_PM_FULL], m->reads_checked);
	if (variant->nr_contents < NR_PAGES) {
		EXPECT_LT(10000, m->verdicts[RMAI_PM_ELIDED]);
	} else {
		EXPECT_LT(1000, m->verdicts[RMAI_PM_FULL]);
	}
	EXPECT_LT(10000, m->reads_checked);
	EXPECT_EQ(0, m->moved_early);
	for (i = 0; i < NR_ZONES; i++)
		EXPECT_EQ(NR_PAGES / NR_ZONES, m->pm.zones[i].nr_free);
}

TEST_HARNESS_MAIN
