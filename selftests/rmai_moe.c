// SPDX-License-Identifier: GPL-2.0
/*
 * rmai-moe - a Mixture-of-Experts decode loop whose expert weights live in
 * ordinary anonymous memory, so that a cgroup's memory.max sends them to
 * whatever swap device is active (zram, a disk, /dev/rmaiN) and every expert
 * that was evicted comes back through it.
 *
 *   rmai-moe [--experts N] [--expert-mib S | --hidden H --ffn F]
 *            [--dtype fp32|fp16|bf16] [--topk K] [--tokens T] [--zipf A]
 *            [--locality P] [--seed N] [--weights FILE] [--trace FILE]
 *            [--write-trace FILE] [--cgroup DIR] [--expect-digest HEX]
 *            [--corrupt-for-test] [--table]
 *
 * Model. Each expert is a SwiGLU FFN: up and gate (ffn x hidden) and down
 * (hidden x ffn), row-major, in that order, one page-aligned block per
 * expert in a single anonymous mapping. The weights come from the seed or
 * from --weights FILE (the experts' blobs back to back, exactly experts x
 * expert size bytes): they are read into the mapping, as runtimes that copy
 * weights out of their files do; mmap'ed files would never be swapped.
 *
 * Router. Per token, top-k distinct experts with gate weights summing to 1:
 * popularity is Zipf(A) over a seeded shuffle of the experts, and with
 * probability P a slot keeps the previous token's expert (temporal locality).
 * Seeded and reproducible; --trace replays a file instead, one token per
 * line of "expert[:gate]" words (--write-trace writes that format).
 *
 * Decode. Token t's activation is drawn from the seed; for each of its
 * experts: u = up.x, g = gate.x, h = silu(g) * u, y += gate_weight * down.h,
 * in fp32 (fp16 and bf16 weights are converted by table lookup). Every
 * weight byte of the expert is read on every pass, as in real decode.
 *
 * Check. When an expert is filled, each row's checksum sum(w[k] * (2k + 1))
 * mod 2^64 over its 32-bit words is taken from the values as they are
 * generated (or from the file while it is read), before memory pressure can
 * touch them. Every pass recomputes it from the very words it multiplied;
 * the odd factors make any change of one word, or a swap of two, change the
 * row sum, and the expert sum adds mix(row sum) over its rows, so a wrong
 * byte anywhere in an expert fails that pass. Experts never routed are
 * checked once at the end. The digest of every token's output is printed;
 * --expect-digest HEX, taken from a run without a memory limit on the same
 * machine, makes the output itself part of the check.
 *
 * Eviction. Before each pass, mincore() tells which of the expert's pages
 * are resident (or in the swap cache, which costs no I/O). A pass that
 * found at least half of them out is an expert load: its wall time (swap-in
 * plus the FFN) is the load latency; fewer is a partial pass.
 *
 * Prints one line of key=value pairs:
 *   experts= expert_mib= hidden= ffn= dtype= topk= tokens= zipf= locality=
 *   seed= fill_s= fill_swapout_mib= decode_s= tokens_per_s= passes= loads=
 *   partial= load_p50_ms= load_p99_ms= load_max_ms= hot_p50_ms= majflt=
 *   minflt= swapin_mib= swapout_mib= unused_experts= bad_passes= bad_unused=
 *   first_bad_expert= first_bad_token= corrupt_expert= output_digest=
 *   digest_ok= verified= rmai_read_mib= rmai_write_mib= rmai_sent_mib=
 *   rmai_elided_mib=
 * Faults, swap traffic, times and passes cover the decode phase only (the
 * fill's swap-out is fill_swapout_mib); swap MiB come from /proc/vmstat
 * pswpin/pswpout, so they count the whole machine; rmai_read_mib and
 * rmai_write_mib are what /dev/rmai0 itself moved in the decode loop (its
 * /sys/block/rmai0/rmai/io_stat), - without it. Latencies are 0 when
 * there were no such passes; digest_ok is - without --expect-digest.
 * Exit status: 0 when verified, 1 when a weight or the output came back
 * wrong, 2 on bad usage or a system error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_EXPERTS	24	/* 24 x 32 MiB: half fits the 4 GiB VM's */
#define DEFAULT_EXPERT_MIB 32	/* memory.max with room to spare */
#define DEFAULT_TOPK	2
#define DEFAULT_TOKENS	64
#define LANES		8	/* partial sums per dot product (SIMD width) */
#define DIM_ALIGN	16	/* hidden and ffn are multiples of this */
#define MAX_EXPERTS	4096
#define MAX_DIM		(1u << 20)
#define MAX_BAD_REPORTS	5	/* bad passes described on stderr */
#define MAX_TOPK	64
#define ZIPF_TRIES	1000	/* draws before taking the next free expert */
#define GOLDEN		0x9e3779b97f4a7c15ull

enum dtype { DT_FP32, DT_FP16, DT_BF16 };

static const char *const dtype_names[] = { "fp32", "fp16", "bf16" };

struct options {
	unsigned int experts;		/* E */
	double expert_mib;		/* requested expert size; 0: from dims */
	unsigned int hidden;		/* H; 0: derived */
	unsigned int ffn;		/* F; 0: derived */
	enum dtype dtype;		/* weight element type */
	unsigned int topk;		/* experts per token; 0: the trace's */
	unsigned int tokens;		/* tokens to decode; 0: default or trace */
	double zipf;			/* popularity skew, 0 is uniform */
	double locality;		/* chance a slot keeps the last expert */
	uint64_t seed;			/* weights, activations and router */
	const char *weights;		/* expert blobs to load, or NULL */
	const char *trace;		/* router trace to replay, or NULL */
	const char *write_trace;	/* where to save the trace, or NULL */
	const char *cgroup;		/* cgroup v2 directory to join, or NULL */
	uint64_t expect_digest;		/* the reference run's output digest */
	int expect_set;			/* --expect-digest was given */
	int corrupt;			/* flip one weight byte after the fill */
	int table;			/* human-readable table on stderr */
};

/* Dot product of @words weight words with @x; the row's checksum to @sum. */
typedef float (*dot_fn)(const uint32_t *w, const float *x, size_t words,
			uint64_t *sum);

struct model {
	unsigned int experts;		/* E */
	unsigned int hidden;		/* H: activation width */
	unsigned int ffn;		/* F: intermediate width */
	enum dtype dtype;		/* element type of the weights */
	size_t hidden_words;		/* 32-bit words in a row of up or gate */
	size_t ffn_words;		/* 32-bit words in a row of down */
	size_t rows;			/* rows per expert: 2F + H */
	size_t expert_bytes;		/* weights of one expert */
	size_t stride;			/* expert_bytes rounded up to a page */
	char *base;			/* all experts, anonymous memory */
	uint64_t *golden;		/* per-expert checksum taken at fill */
	dot_fn dot;			/* dot product for dtype */
};

struct routes {
	unsigned int tokens;		/* tokens to decode */
	unsigned int topk;		/* experts per token */
	unsigned int *expert;		/* [tokens][topk] expert ids */
	float *gate;			/* [tokens][topk] gate weights */
};

/* Working vectors of one token, reused: never evicted for long. */
struct scratch {
	float *x;			/* the token's activation, H */
	float *up;			/* up.x, then silu(gate.x) * up.x, F */
	float *gate;			/* gate.x, F */
	float *out;			/* one expert's output, H */
	float *y;			/* the token's output, H */
	unsigned char *vec;		/* mincore() vector of one expert */
};

struct pass {
	double ms;			/* wall time of one expert's FFN */
	size_t cold;			/* its pages not resident before */
};

struct results {
	double fill_s;			/* filling (or loading) all experts */
	uint64_t fill_swapout;		/* pages swapped out meanwhile */
	double decode_s;		/* the decode loop */
	long majflt, minflt;		/* faults in the decode loop */
	uint64_t swapin, swapout;	/* pages swapped in the decode loop */
	int64_t rmai_read, rmai_write;	/* bytes /dev/rmai0 moved then, or -1 */
	int64_t rmai_sent, rmai_elided;	/* bytes it sent, and did not have to */
	struct pass *passes;		/* [tokens][topk] */
	unsigned long bad_passes;	/* passes that read a wrong weight */
	unsigned int unused;		/* experts no token was routed to */
	unsigned int bad_unused;	/* of those, read back wrong */
	long first_bad_expert;		/* -1 when none */
	long first_bad_token;		/* -1 when none */
	long corrupt_expert;		/* expert --corrupt-for-test hit, or -1 */
	uint64_t digest;		/* of every token's output */
};

static size_t page_size;
static float half_table[1 << 16];	/* fp16 or bf16 pattern -> float */

/* --- numbers ---------------------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/* splitmix64: the one random stream type used here. */
static uint64_t next(uint64_t *state)
{
	*state += GOLDEN;
	return mix(*state);
}

static double unit(uint64_t *state)
{
	return (next(state) >> 11) * 0x1p-53;
}

static float f32_of(uint32_t bits)
{
	float f;

	memcpy(&f, &bits, sizeof(f));
	return f;
}

static uint32_t bits_of(float f)
{
	uint32_t bits;

	memcpy(&bits, &f, sizeof(bits));
	return bits;
}

static float fp16_to_float(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;

	if (exp == 0x1f)
		return f32_of(sign | 0x7f800000 | man << 13);
	if (exp)
		return f32_of(sign | (exp + 112) << 23 | man << 13);
	if (!man)
		return f32_of(sign);
	/* Subnormal: shift the leading one into the implicit bit. */
	for (exp = 113; !(man & 0x400); exp--)
		man <<= 1;
	return f32_of(sign | exp << 23 | (man & 0x3ff) << 13);
}

static void half_table_init(enum dtype dtype)
{
	uint32_t h;

	for (h = 0; h < 1 << 16; h++)
		half_table[h] = dtype == DT_FP16 ? fp16_to_float(h) : f32_of(h << 16);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* --- weights and their checksums ----------------------------------------- */

/*
 * Word @k's share of its row's checksum. The factor is odd, hence invertible
 * mod 2^64: a change d of one word (|d| < 2^32) moves the sum by d * (2k + 1),
 * never 0; swapping words i and j moves it by 2 (w_j - w_i)(i - j), never 0
 * for rows shorter than 2^31 words.
 */
static inline uint64_t row_term(uint32_t w, size_t k)
{
	return (uint64_t)w * (2 * k + 1);
}

/* Row @row's share of the expert's checksum: mix() is a bijection. */
static inline uint64_t row_fold(uint64_t row_sum, size_t row)
{
	return mix(row_sum + ((uint64_t)row << 32));
}

static float lanes_sum(const float *acc)
{
	float s = 0;
	int l;

	for (l = 0; l < LANES; l++)
		s += acc[l];
	return s;
}

static float dot_fp32(const uint32_t *w, const float *x, size_t words,
		      uint64_t *sum)
{
	float acc[LANES] = { 0 };
	uint64_t s = 0;
	size_t k;
	int l;

	for (k = 0; k < words; k += LANES)
		for (l = 0; l < LANES; l++) {
			acc[l] += f32_of(w[k + l]) * x[k + l];
			s += row_term(w[k + l], k + l);
		}
	*sum = s;
	return lanes_sum(acc);
}

/* fp16 and bf16: two elements per word, the low half first. */
static float dot_half(const uint32_t *w, const float *x, size_t words,
		      uint64_t *sum)
{
	float acc[LANES] = { 0 };
	uint64_t s = 0;
	size_t k;
	int l;

	for (k = 0; k < words; k += LANES)
		for (l = 0; l < LANES; l++) {
			uint32_t v = w[k + l];
			size_t i = 2 * (k + l);

			acc[l] += half_table[v & 0xffff] * x[i] +
				  half_table[v >> 16] * x[i + 1];
			s += row_term(v, k + l);
		}
	*sum = s;
	return lanes_sum(acc);
}

static size_t row_words(const struct model *m, size_t row)
{
	return row < 2 * (size_t)m->ffn ? m->hidden_words : m->ffn_words;
}

static uint32_t *expert_words(const struct model *m, unsigned int e)
{
	return (uint32_t *)(m->base + e * m->stride);
}

/* A 16-bit weight: random sign and mantissa, magnitude in [2^-8, 2^-4). */
static uint16_t fp16_weight(uint32_t r)
{
	return (r >> 31) << 15 | (10 - ((r >> 29) & 3)) << 10 | (r & 0x3ff);
}

static uint16_t bf16_weight(uint32_t r)
{
	return (r >> 31) << 15 | (122 - ((r >> 29) & 3)) << 7 | (r & 0x7f);
}

/* One word of weights drawn from @rng, of the scale of trained layers. */
static uint32_t weight_word(uint64_t *rng, enum dtype dtype)
{
	uint64_t r = next(rng);

	switch (dtype) {
	case DT_FP32:
		return (uint32_t)(r >> 63) << 31 |
		       (uint32_t)(122 - ((r >> 61) & 3)) << 23 |
		       (uint32_t)(r & 0x7fffff);
	case DT_FP16:
		return fp16_weight(r) | (uint32_t)fp16_weight(r >> 32) << 16;
	default:
		return bf16_weight(r) | (uint32_t)bf16_weight(r >> 32) << 16;
	}
}

/* Generate expert @e; its checksum comes from the values, not the memory. */
static void expert_generate(struct model *m, unsigned int e, uint64_t seed)
{
	uint64_t rng = mix(seed ^ GOLDEN * (e + 1)), csum = 0;
	uint32_t *w = expert_words(m, e);
	size_t row, k;

	for (row = 0; row < m->rows; row++) {
		size_t words = row_words(m, row);
		uint64_t s = 0;

		for (k = 0; k < words; k++) {
			uint32_t v = weight_word(&rng, m->dtype);

			w[k] = v;
			s += row_term(v, k);
		}
		csum += row_fold(s, row);
		w += words;
	}
	m->golden[e] = csum;
}

static uint64_t row_sum(const uint32_t *w, size_t words)
{
	uint64_t s = 0;
	size_t k;

	for (k = 0; k < words; k++)
		s += row_term(w[k], k);
	return s;
}

/* The checksum of expert @e as it is in memory now. */
static uint64_t expert_checksum(const struct model *m, unsigned int e)
{
	const uint32_t *w = expert_words(m, e);
	uint64_t csum = 0;
	size_t row;

	for (row = 0; row < m->rows; row++) {
		csum += row_fold(row_sum(w, row_words(m, row)), row);
		w += row_words(m, row);
	}
	return csum;
}

static int read_full(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

/*
 * Load expert @e from @fd row by row through @bounce (one row, rewritten
 * and checksummed right after each read), then copy it into place.
 */
static int expert_load(struct model *m, unsigned int e, int fd,
		       uint32_t *bounce)
{
	uint32_t *w = expert_words(m, e);
	uint64_t csum = 0;
	size_t row;

	for (row = 0; row < m->rows; row++) {
		size_t words = row_words(m, row);

		if (read_full(fd, bounce, words * 4))
			return -1;
		csum += row_fold(row_sum(bounce, words), row);
		memcpy(w, bounce, words * 4);
		w += words;
	}
	m->golden[e] = csum;
	return 0;
}

static int weights_load(struct model *m, const char *path)
{
	size_t max_words = m->hidden_words > m->ffn_words ?
			   m->hidden_words : m->ffn_words;
	uint32_t *bounce = NULL;
	struct stat st;
	unsigned int e;
	int fd, ret = -1;

	fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &st)) {
		fprintf(stderr, "rmai-moe: %s: %s\n", path, strerror(errno));
		goto out;
	}
	if ((uint64_t)st.st_size != (uint64_t)m->experts * m->expert_bytes) {
		fprintf(stderr, "rmai-moe: %s holds %jd bytes; %u experts of "
			"hidden %u, ffn %u, %s need %" PRIu64 "\n", path,
			(intmax_t)st.st_size, m->experts, m->hidden, m->ffn,
			dtype_names[m->dtype],
			(uint64_t)m->experts * m->expert_bytes);
		goto out;
	}
	bounce = malloc(max_words * 4);
	if (!bounce) {
		perror("rmai-moe: malloc");
		goto out;
	}
	for (e = 0; e < m->experts; e++)
		if (expert_load(m, e, fd, bounce)) {
			fprintf(stderr, "rmai-moe: %s: short read at expert %u\n",
				path, e);
			goto out;
		}
	ret = 0;
out:
	free(bounce);
	if (fd >= 0)
		close(fd);
	return ret;
}

/* --- the model -------------------------------------------------------------- */

static size_t dtype_bytes(enum dtype dtype)
{
	return dtype == DT_FP32 ? 4 : 2;
}

static int model_init(struct model *m, const struct options *o)
{
	size_t elem = dtype_bytes(o->dtype);

	*m = (struct model){
		.experts = o->experts, .hidden = o->hidden, .ffn = o->ffn,
		.dtype = o->dtype,
		.hidden_words = o->hidden * elem / 4,
		.ffn_words = o->ffn * elem / 4,
		.rows = 2 * (size_t)o->ffn + o->hidden,
		.dot = o->dtype == DT_FP32 ? dot_fp32 : dot_half,
	};
	m->expert_bytes = 3 * (size_t)o->hidden * o->ffn * elem;
	m->stride = (m->expert_bytes + page_size - 1) / page_size * page_size;
	m->golden = calloc(m->experts, sizeof(*m->golden));
	if (!m->golden) {
		perror("rmai-moe: calloc");
		return -1;
	}
	m->base = mmap(NULL, m->experts * m->stride, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m->base == MAP_FAILED) {
		fprintf(stderr, "rmai-moe: cannot map %zu MiB of experts: %s\n",
			(m->experts * m->stride) >> 20, strerror(errno));
		free(m->golden);
		return -1;
	}
	return 0;
}

static void model_free(struct model *m)
{
	munmap(m->base, m->experts * m->stride);
	free(m->golden);
}

/*
 * out[i] = row i of the @rows x @words matrix at @w times @in, rows
 * numbered on from *@row; each row's checksum goes into *@csum. Returns
 * the first word after the matrix.
 */
static const uint32_t *gemv(const struct model *m, const uint32_t *w,
			    unsigned int rows, size_t words, const float *in,
			    float *out, size_t *row, uint64_t *csum)
{
	uint64_t s;
	unsigned int i;

	for (i = 0; i < rows; i++, w += words) {
		out[i] = m->dot(w, in, words, &s);
		*csum += row_fold(s, (*row)++);
	}
	return w;
}

static float silu(float g)
{
	return g / (1.0f + expf(-g));
}

/* Expert @e's FFN over sc->x into sc->out; returns the weights' checksum. */
static uint64_t expert_ffn(const struct model *m, unsigned int e,
			   struct scratch *sc)
{
	const uint32_t *w = expert_words(m, e);
	uint64_t csum = 0;
	size_t row = 0;
	unsigned int i;

	w = gemv(m, w, m->ffn, m->hidden_words, sc->x, sc->up, &row, &csum);
	w = gemv(m, w, m->ffn, m->hidden_words, sc->x, sc->gate, &row, &csum);
	for (i = 0; i < m->ffn; i++)
		sc->up[i] *= silu(sc->gate[i]);
	gemv(m, w, m->hidden, m->ffn_words, sc->up, sc->out, &row, &csum);
	return csum;
}

/* --- the router ------------------------------------------------------------- */

static int routes_alloc(struct routes *rt, unsigned int tokens,
			unsigned int topk)
{
	rt->tokens = tokens;
	rt->topk = topk;
	rt->expert = calloc((size_t)tokens * topk, sizeof(*rt->expert));
	rt->gate = calloc((size_t)tokens * topk, sizeof(*rt->gate));
	if (rt->expert && rt->gate)
		return 0;
	perror("rmai-moe: calloc");
	return -1;
}

static void routes_free(struct routes *rt)
{
	free(rt->expert);
	free(rt->gate);
}

static int chosen(const unsigned int *slots, unsigned int n, unsigned int e)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (slots[i] == e)
			return 1;
	return 0;
}

/* Popularity: cdf[r] = P(rank <= r), rank r weighing 1 / (r + 1)^alpha. */
struct zipf {
	double *cdf;			/* [experts] */
	unsigned int *by_rank;		/* expert of each rank, shuffled */
	unsigned int experts;		/* E */
};

static int zipf_init(struct zipf *z, unsigned int experts, double alpha,
		     uint64_t *rng)
{
	double total = 0;
	unsigned int r;

	z->experts = experts;
	z->cdf = malloc(experts * sizeof(*z->cdf));
	z->by_rank = malloc(experts * sizeof(*z->by_rank));
	if (!z->cdf || !z->by_rank) {
		perror("rmai-moe: malloc");
		return -1;
	}
	for (r = 0; r < experts; r++) {
		total += pow(r + 1, -alpha);
		z->cdf[r] = total;
		z->by_rank[r] = r;
	}
	for (r = 0; r < experts; r++)
		z->cdf[r] /= total;
	for (r = experts - 1; r > 0; r--) {
		unsigned int j = next(rng) % (r + 1), tmp = z->by_rank[r];

		z->by_rank[r] = z->by_rank[j];
		z->by_rank[j] = tmp;
	}
	return 0;
}

static void zipf_free(struct zipf *z)
{
	free(z->cdf);
	free(z->by_rank);
}

/* An expert not among the @n in @slots, drawn by popularity. */
static unsigned int zipf_draw(const struct zipf *z, uint64_t *rng,
			      const unsigned int *slots, unsigned int n)
{
	unsigned int lo, hi, e, r, tries;

	for (tries = 0; tries < ZIPF_TRIES; tries++) {
		double u = unit(rng);

		for (lo = 0, hi = z->experts - 1; lo < hi;) {
			unsigned int mid = (lo + hi) / 2;

			if (z->cdf[mid] > u)
				hi = mid;
			else
				lo = mid + 1;
		}
		e = z->by_rank[lo];
		if (!chosen(slots, n, e))
			return e;
	}
	/* A skew so steep that the tail never comes up: the next free rank. */
	for (r = 0; chosen(slots, n, z->by_rank[r]); r++)
		;
	return z->by_rank[r];
}

static int routes_generate(struct routes *rt, const struct options *o)
{
	uint64_t rng = mix(o->seed ^ 0x726f75746572ull);	/* "router" */
	unsigned int t, j, k = rt->topk;
	struct zipf z;

	if (zipf_init(&z, o->experts, o->zipf, &rng)) {
		zipf_free(&z);
		return -1;
	}
	for (t = 0; t < rt->tokens; t++) {
		unsigned int *cur = rt->expert + (size_t)t * k;
		const unsigned int *prev = cur - k;
		float *gate = rt->gate + (size_t)t * k, total = 0;

		for (j = 0; j < k; j++) {
			if (t && unit(&rng) < o->locality && !chosen(cur, j, prev[j]))
				cur[j] = prev[j];
			else
				cur[j] = zipf_draw(&z, &rng, cur, j);
			gate[j] = 0.5f + (float)unit(&rng);
			total += gate[j];
		}
		for (j = 0; j < k; j++)
			gate[j] /= total;
	}
	zipf_free(&z);
	return 0;
}

/* Parse one trace line into @expert/@gate; returns the experts found. */
static int trace_parse_line(char *line, unsigned int experts,
			    unsigned int *expert, float *gate, unsigned int max)
{
	unsigned int n = 0;
	char *p = line, *end;

	for (;;) {
		unsigned long e;

		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '\n' || *p == '#')
			return n;
		if (n == max)
			return -1;
		e = strtoul(p, &end, 10);
		if (end == p || e >= experts || chosen(expert, n, e))
			return -1;
		expert[n] = e;
		gate[n] = 0;
		p = end;
		if (*p == ':') {
			gate[n] = strtof(p + 1, &end);
			if (end == p + 1 || !(gate[n] >= 0))
				return -1;
			p = end;
		}
		if (*p && *p != ' ' && *p != '\t' && *p != '\n')
			return -1;
		n++;
	}
}

static int routes_grow(struct routes *rt, unsigned int tokens,
		       unsigned int topk)
{
	size_t n = (size_t)tokens * topk;
	unsigned int *expert = realloc(rt->expert, n * sizeof(*expert));
	float *gate;

	if (expert)
		rt->expert = expert;
	gate = expert ? realloc(rt->gate, n * sizeof(*gate)) : NULL;
	if (!gate) {
		perror("rmai-moe: realloc");
		return -1;
	}
	rt->gate = gate;
	return 0;
}

/* Tokens without explicit gates weigh their experts equally. */
static void trace_default_gates(float *gate, unsigned int k)
{
	unsigned int j;

	for (j = 0; j < k; j++)
		if (gate[j] != 0)
			return;
	for (j = 0; j < k; j++)
		gate[j] = 1.0f / k;
}

/*
 * Read a trace: every token line holds the same number of experts, which
 * is the top-k (--topk, when given, must agree). --tokens takes the first
 * tokens; by default all of them.
 */
static int routes_read(struct routes *rt, const struct options *o)
{
	unsigned int cap = 0, n = 0, k = 0, lineno = 0;
	unsigned int ids[MAX_TOPK];
	float gates[MAX_TOPK];
	char *line = NULL;
	size_t len = 0;
	int ret = -1, got;
	FILE *f;

	f = fopen(o->trace, "r");
	if (!f) {
		fprintf(stderr, "rmai-moe: %s: %s\n", o->trace, strerror(errno));
		return -1;
	}
	*rt = (struct routes){ 0 };
	while (getline(&line, &len, f) > 0 && (!o->tokens || n < o->tokens)) {
		lineno++;
		got = trace_parse_line(line, o->experts, ids, gates, MAX_TOPK);
		if (!got)
			continue;
		if (got < 0) {
			fprintf(stderr, "rmai-moe: %s:%u: want expert[:gate] words, "
				"distinct experts below %u, at most %d\n",
				o->trace, lineno, o->experts, MAX_TOPK);
			goto out;
		}
		if (!k)
			k = o->topk ? o->topk : (unsigned int)got;
		if ((unsigned int)got != k) {
			fprintf(stderr, "rmai-moe: %s:%u: %d experts, want %u per "
				"token\n", o->trace, lineno, got, k);
			goto out;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 256;
			if (routes_grow(rt, cap, k))
				goto out;
		}
		trace_default_gates(gates, k);
		memcpy(rt->expert + (size_t)n * k, ids, k * sizeof(*ids));
		memcpy(rt->gate + (size_t)n * k, gates, k * sizeof(*gates));
		n++;
	}
	if (!n || (o->tokens && n < o->tokens)) {
		fprintf(stderr, "rmai-moe: %s: %u tokens, %u wanted\n", o->trace,
			n, o->tokens ? o->tokens : 1);
		goto out;
	}
	rt->tokens = n;
	rt->topk = k;
	ret = 0;
out:
	free(line);
	fclose(f);
	return ret;
}

static int routes_write(const struct routes *rt, const char *path)
{
	unsigned int t, j;
	FILE *f;

	f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "rmai-moe: %s: %s\n", path, strerror(errno));
		return -1;
	}
	fprintf(f, "# rmai-moe router trace: one token per line, "
		"expert:gate for each of its %u experts\n", rt->topk);
	for (t = 0; t < rt->tokens; t++)
		for (j = 0; j < rt->topk; j++) {
			size_t p = (size_t)t * rt->topk + j;

			fprintf(f, "%u:%.9g%c", rt->expert[p], rt->gate[p],
				j + 1 < rt->topk ? ' ' : '\n');
		}
	if (ferror(f) | fclose(f)) {
		fprintf(stderr, "rmai-moe: writing %s failed\n", path);
		return -1;
	}
	return 0;
}

/* --- decode ----------------------------------------------------------------- */

/* Token @t's activation: random sign, magnitude in [0.5, 2). */
static void activation(float *x, unsigned int hidden, uint64_t seed,
		       unsigned int t)
{
	uint64_t rng = mix(seed ^ 0x746f6b656eull ^ GOLDEN * ((uint64_t)t + 1));
	unsigned int i;

	for (i = 0; i < hidden; i++) {
		uint64_t r = next(&rng);

		x[i] = f32_of((uint32_t)(r >> 63) << 31 |
			      (uint32_t)(126 + ((r >> 62) & 1)) << 23 |
			      (uint32_t)(r & 0x7fffff));
	}
}

static uint64_t output_digest(uint64_t digest, const float *y, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		digest = mix(digest ^ bits_of(y[i]));
	return digest;
}

/* Swap traffic so far, in pages; 0 where /proc/vmstat does not say. */
static void vmstat_swap(uint64_t *in, uint64_t *out)
{
	unsigned long long v;
	char name[64];
	FILE *f;

	*in = *out = 0;
	f = fopen("/proc/vmstat", "r");
	if (!f)
		return;
	while (fscanf(f, "%63s %llu", name, &v) == 2) {
		if (!strcmp(name, "pswpin"))
			*in = v;
		else if (!strcmp(name, "pswpout"))
			*out = v;
	}
	fclose(f);
}

/*
 * The first @n columns of /sys/block/rmai0/rmai/@file; false without that
 * device.
 */
static bool rmai_columns(const char *file, uint64_t *v, int n)
{
	char path[64];
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "/sys/block/rmai0/rmai/%s", file);
	f = fopen(path, "r");
	if (!f)
		return false;
	for (i = 0; i < n && fscanf(f, "%" SCNu64, &v[i]) == 1; i++)
		;
	fclose(f);
	return i == n;
}


/* Pages of expert @e that are neither mapped nor in the swap cache. */
static int cold_pages(const struct model *m, unsigned int e,
		      unsigned char *vec, size_t *cold)
{
	size_t pages = m->stride / page_size, i, n = 0;

	if (mincore(expert_words(m, e), m->stride, vec)) {
		perror("rmai-moe: mincore");
		return -1;
	}
	for (i = 0; i < pages; i++)
		n += !(vec[i] & 1);
	*cold = n;
	return 0;
}

/* Count a wrong checksum; @t is -1 for the final check of unused experts. */
static void weights_wrong(struct results *res, unsigned int e, long t,
			  uint64_t got, uint64_t want)
{
	if (res->first_bad_expert < 0) {
		res->first_bad_expert = e;
		res->first_bad_token = t;
	}
	if (res->bad_passes + res->bad_unused < MAX_BAD_REPORTS)
		fprintf(stderr, "rmai-moe: expert %u read back wrong %s%ld: "
			"checksum %016" PRIx64 ", expected %016" PRIx64 "\n",
			e, t < 0 ? "in the final check" : "at token ",
			t < 0 ? 0 : t, got, want);
	if (t < 0)
		res->bad_unused++;
	else
		res->bad_passes++;
}

/* Expert @e over token @t's activation into sc->out, timed and checked. */
static int decode_pass(const struct model *m, unsigned int e, unsigned int t,
		       struct scratch *sc, struct pass *p, struct results *res)
{
	uint64_t csum;
	double t0;

	if (cold_pages(m, e, sc->vec, &p->cold))
		return -1;
	t0 = now();
	csum = expert_ffn(m, e, sc);
	p->ms = (now() - t0) * 1e3;
	if (csum != m->golden[e])
		weights_wrong(res, e, t, csum, m->golden[e]);
	return 0;
}

static int decode(const struct model *m, const struct routes *rt,
		  uint64_t seed, struct scratch *sc, struct results *res)
{
	/* io_stat: read_bytes, write_bytes; remote_stat: sent, elided bytes */
	uint64_t in0, out0, in1, out1, io0[7] = { 0 }, io1[7], rs0[4] = { 0 }, rs1[4];
	struct rusage ru0, ru1;
	unsigned int t, j, i;
	bool rmai;
	double t0;

	vmstat_swap(&in0, &out0);
	rmai = rmai_columns("io_stat", io0, 7) && rmai_columns("remote_stat", rs0, 4);
	getrusage(RUSAGE_SELF, &ru0);
	t0 = now();
	for (t = 0; t < rt->tokens; t++) {
		activation(sc->x, m->hidden, seed, t);
		memset(sc->y, 0, m->hidden * sizeof(*sc->y));
		for (j = 0; j < rt->topk; j++) {
			size_t p = (size_t)t * rt->topk + j;

			if (decode_pass(m, rt->expert[p], t, sc, &res->passes[p], res))
				return -1;
			for (i = 0; i < m->hidden; i++)
				sc->y[i] += rt->gate[p] * sc->out[i];
		}
		res->digest = output_digest(res->digest, sc->y, m->hidden);
	}
	res->decode_s = now() - t0;
	getrusage(RUSAGE_SELF, &ru1);
	vmstat_swap(&in1, &out1);
	res->majflt = ru1.ru_majflt - ru0.ru_majflt;
	res->minflt = ru1.ru_minflt - ru0.ru_minflt;
	res->swapin = in1 - in0;
	res->swapout = out1 - out0;
	res->rmai_read = res->rmai_write = res->rmai_sent = res->rmai_elided = -1;
	if (rmai && rmai_columns("io_stat", io1, 7) && rmai_columns("remote_stat", rs1, 4)) {
		res->rmai_read = io1[5] - io0[5];
		res->rmai_write = io1[6] - io0[6];
		res->rmai_sent = rs1[0] - rs0[0];
		res->rmai_elided = rs1[3] - rs0[3];
	}
	return 0;
}

/* Experts no token used were never checked by a pass: check them now. */
static void check_unused(const struct model *m, const struct routes *rt,
			 struct results *res)
{
	unsigned char used[MAX_EXPERTS] = { 0 };
	unsigned int e;
	size_t p;

	for (p = 0; p < (size_t)rt->tokens * rt->topk; p++)
		used[rt->expert[p]] = 1;
	for (e = 0; e < m->experts; e++) {
		uint64_t csum;

		if (used[e])
			continue;
		res->unused++;
		csum = expert_checksum(m, e);
		if (csum != m->golden[e])
			weights_wrong(res, e, -1, csum, m->golden[e]);
	}
}

static int fill(struct model *m, const struct options *o, struct results *res)
{
	uint64_t in0, out0, in1, out1;
	double t0 = now();
	unsigned int e;

	vmstat_swap(&in0, &out0);
	if (o->weights) {
		if (weights_load(m, o->weights))
			return -1;
	} else {
		for (e = 0; e < m->experts; e++)
			expert_generate(m, e, o->seed);
	}
	res->fill_s = now() - t0;
	vmstat_swap(&in1, &out1);
	res->fill_swapout = out1 - out0;
	return 0;
}

/* --corrupt-for-test: flip a byte of the first expert token 0 runs. */
static void corrupt_one_byte(const struct model *m, const struct routes *rt,
			     uint64_t seed, struct results *res)
{
	unsigned int e = rt->expert[0];
	size_t off = mix(seed ^ 0x6261646279746500ull) % m->expert_bytes;

	((unsigned char *)expert_words(m, e))[off] ^= 0xff;
	res->corrupt_expert = e;
}

static int scratch_alloc(struct scratch *sc, const struct model *m)
{
	size_t h = m->hidden, f = m->ffn;
	float *v = calloc(3 * h + 2 * f, sizeof(*v));

	sc->vec = malloc(m->stride / page_size);
	if (!v || !sc->vec) {
		perror("rmai-moe: calloc");
		free(v);
		return -1;
	}
	sc->x = v;
	sc->out = v + h;
	sc->y = v + 2 * h;
	sc->up = v + 3 * h;
	sc->gate = v + 3 * h + f;
	return 0;
}

static void scratch_free(struct scratch *sc)
{
	free(sc->x);
	free(sc->vec);
}

/* --- report ----------------------------------------------------------------- */

struct latency {
	size_t loads;			/* passes that found >= half out */
	size_t partial;			/* passes that found some pages out */
	size_t hot;			/* passes that found it all resident */
	double p50, p99, max;		/* load latency, ms */
	double hot_p50;			/* median resident pass, ms */
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile @pct of the sorted @v[@n]; 0 when empty. */
static double percentile(const double *v, size_t n, double pct)
{
	size_t rank = (size_t)ceil(pct / 100 * n);

	return n ? v[rank ? rank - 1 : 0] : 0;
}

static int latency_summary(const struct model *m, const struct pass *passes,
			   size_t n, struct latency *lat)
{
	size_t pages = m->stride / page_size, i;
	double *load = malloc(n * sizeof(*load));
	double *hot = malloc(n * sizeof(*hot));

	*lat = (struct latency){ 0 };
	if (!load || !hot) {
		perror("rmai-moe: malloc");
		free(load);
		free(hot);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (2 * passes[i].cold >= pages)
			load[lat->loads++] = passes[i].ms;
		else if (passes[i].cold)
			lat->partial++;
		else
			hot[lat->hot++] = passes[i].ms;
	}
	qsort(load, lat->loads, sizeof(*load), cmp_double);
	qsort(hot, lat->hot, sizeof(*hot), cmp_double);
	lat->p50 = percentile(load, lat->loads, 50);
	lat->p99 = percentile(load, lat->loads, 99);
	lat->max = percentile(load, lat->loads, 100);
	lat->hot_p50 = percentile(hot, lat->hot, 50);
	free(load);
	free(hot);
	return 0;
}

static double pages_mib(uint64_t pages)
{
	return (double)pages * page_size / (1 << 20);
}

/* @bytes as MiB into @buf, or "-" when unknown (negative). */
static const char *rmai_mib(char *buf, size_t len, int64_t bytes)
{
	if (bytes < 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f", bytes / 1048576.0);
	return buf;
}

static void report_line(const struct model *m, const struct routes *rt,
			const struct options *o, const struct results *res,
			const struct latency *lat, const char *digest_ok,
			int verified)
{
	char router[2][16] = { "-", "-" };	/* zipf, locality: - for a trace */
	char rmai_rd[24], rmai_wr[24];		/* MiB, or - without rmai0 */
	char rmai_se[24], rmai_el[24];

	if (!o->trace) {
		snprintf(router[0], sizeof(router[0]), "%.2f", o->zipf);
		snprintf(router[1], sizeof(router[1]), "%.2f", o->locality);
	}
	printf("experts=%u expert_mib=%.2f hidden=%u ffn=%u dtype=%s topk=%u "
	       "tokens=%u zipf=%s locality=%s seed=%" PRIu64 " "
	       "fill_s=%.2f fill_swapout_mib=%.1f decode_s=%.2f "
	       "tokens_per_s=%.2f passes=%zu loads=%zu partial=%zu "
	       "load_p50_ms=%.1f load_p99_ms=%.1f load_max_ms=%.1f "
	       "hot_p50_ms=%.1f majflt=%ld minflt=%ld swapin_mib=%.1f "
	       "swapout_mib=%.1f unused_experts=%u bad_passes=%lu "
	       "bad_unused=%u first_bad_expert=%ld first_bad_token=%ld "
	       "corrupt_expert=%ld output_digest=%016" PRIx64 " "
	       "digest_ok=%s verified=%d rmai_read_mib=%s rmai_write_mib=%s "
	       "rmai_sent_mib=%s rmai_elided_mib=%s\n",
	       m->experts, (double)m->expert_bytes / (1 << 20), m->hidden,
	       m->ffn, dtype_names[m->dtype], rt->topk, rt->tokens,
	       router[0], router[1], o->seed,
	       res->fill_s, pages_mib(res->fill_swapout), res->decode_s,
	       rt->tokens / res->decode_s, (size_t)rt->tokens * rt->topk,
	       lat->loads, lat->partial, lat->p50, lat->p99, lat->max,
	       lat->hot_p50, res->majflt, res->minflt, pages_mib(res->swapin),
	       pages_mib(res->swapout), res->unused, res->bad_passes,
	       res->bad_unused, res->first_bad_expert, res->first_bad_token,
	       res->corrupt_expert, res->digest, digest_ok, verified,
	       rmai_mib(rmai_rd, sizeof(rmai_rd), res->rmai_read),
	       rmai_mib(rmai_wr, sizeof(rmai_wr), res->rmai_write),
	       rmai_mib(rmai_se, sizeof(rmai_se), res->rmai_sent),
	       rmai_mib(rmai_el, sizeof(rmai_el), res->rmai_elided));
}

static void report_table(const struct model *m, const struct routes *rt,
			 const struct results *res, const struct latency *lat,
			 int verified)
{
	fprintf(stderr,
		"rmai-moe: %u experts x %.2f MiB %s (hidden %u, ffn %u), "
		"top-%u, %u tokens\n"
		"  fill                %.2f s, swapped out %.1f MiB\n"
		"  decode              %.2f s, %.2f tokens/s\n"
		"  expert passes       %zu: %zu loads, %zu partial, %zu resident\n"
		"  expert load ms      p50 %.1f  p99 %.1f  max %.1f\n"
		"  resident pass ms    p50 %.1f\n"
		"  page faults         %ld major, %ld minor\n"
		"  swap in / out       %.1f / %.1f MiB\n"
		"  check               %s (%lu bad passes, %u unused experts, "
		"%u bad)\n",
		m->experts, (double)m->expert_bytes / (1 << 20),
		dtype_names[m->dtype], m->hidden, m->ffn, rt->topk, rt->tokens,
		res->fill_s, pages_mib(res->fill_swapout), res->decode_s,
		rt->tokens / res->decode_s, (size_t)rt->tokens * rt->topk,
		lat->loads, lat->partial, lat->hot, lat->p50, lat->p99,
		lat->max, lat->hot_p50, res->majflt, res->minflt,
		pages_mib(res->swapin), pages_mib(res->swapout),
		verified ? "verified" : "FAILED", res->bad_passes, res->unused,
		res->bad_unused);
}

/* --- command line ------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rmai-moe [options]\n"
		"MoE decode over expert weights in anonymous memory; run it under a\n"
		"cgroup memory.max to make the experts swap. Prints one key=value line.\n"
		"  --experts N          experts (default %d)\n"
		"  --expert-mib S       MiB per expert, hidden and ffn derived (default %d)\n"
		"  --hidden H           activation width, a multiple of %d\n"
		"  --ffn F              expert intermediate width, a multiple of %d\n"
		"  --dtype T            fp32, fp16 or bf16 weights (default fp16)\n"
		"  --topk K             experts per token (default %d)\n"
		"  --tokens T           tokens to decode (default %d; with --trace all)\n"
		"  --zipf A             expert popularity skew, 0 = uniform (default 0.8)\n"
		"  --locality P         chance a slot keeps the previous token's expert (default 0.5)\n"
		"  --seed N             weights, activations and router (default 1)\n"
		"  --weights FILE       load the experts from FILE: each up, gate, down, row-major\n"
		"  --trace FILE         replay a router trace: per token, expert[:gate] words\n"
		"  --write-trace FILE   save the trace used\n"
		"  --cgroup DIR         join this cgroup v2 directory first\n"
		"  --expect-digest HEX  fail unless the output digest is HEX\n"
		"  --corrupt-for-test   flip one weight byte after the fill: must fail\n"
		"  --table              also print a readable table on stderr\n"
		"Exit status: 0 verified, 1 wrong weights or output, 2 usage or system error.\n",
		DEFAULT_EXPERTS, DEFAULT_EXPERT_MIB, DIM_ALIGN, DIM_ALIGN,
		DEFAULT_TOPK, DEFAULT_TOKENS);
}

static int parse_uint(const char *opt, const char *arg, unsigned int min,
		      unsigned int max, unsigned int *val)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || *arg == '-' || v < min || v > max) {
		fprintf(stderr, "rmai-moe: --%s takes an integer from %u to %u, "
			"not '%s'\n", opt, min, max, arg);
		return -1;
	}
	*val = v;
	return 0;
}

static int parse_double(const char *opt, const char *arg, double min,
			double max, double *val)
{
	char *end;
	double v;

	v = strtod(arg, &end);
	if (end == arg || *end || !(v >= min && v <= max)) {
		fprintf(stderr, "rmai-moe: --%s takes a number from %g to %g, "
			"not '%s'\n", opt, min, max, arg);
		return -1;
	}
	*val = v;
	return 0;
}

static int parse_dim(const char *opt, const char *arg, unsigned int *val)
{
	if (parse_uint(opt, arg, DIM_ALIGN, MAX_DIM, val))
		return -1;
	if (*val % DIM_ALIGN) {
		fprintf(stderr, "rmai-moe: --%s must be a multiple of %d\n", opt,
			DIM_ALIGN);
		return -1;
	}
	return 0;
}

/*
 * hidden and ffn from the expert size: hidden the largest power of two with
 * ffn >= 2 * hidden, ffn what fills the rest (rounded down to DIM_ALIGN).
 */
static int derive_dims(struct options *o)
{
	double mib = o->expert_mib ? o->expert_mib : DEFAULT_EXPERT_MIB;
	size_t elems = (size_t)(mib * (1 << 20)) / dtype_bytes(o->dtype);

	if (o->hidden && o->ffn) {
		if (!o->expert_mib)
			return 0;
		fprintf(stderr, "rmai-moe: give --expert-mib, or --hidden and "
			"--ffn, not all three\n");
		return -1;
	}
	if (!o->hidden && !o->ffn)
		for (o->hidden = DIM_ALIGN;
		     24 * (size_t)o->hidden * o->hidden <= elems;)
			o->hidden *= 2;
	else if (!o->hidden)
		o->hidden = elems / (3 * (size_t)o->ffn) / DIM_ALIGN * DIM_ALIGN;
	if (!o->ffn)
		o->ffn = elems / (3 * (size_t)o->hidden) / DIM_ALIGN * DIM_ALIGN;
	if (o->hidden < DIM_ALIGN || o->ffn < DIM_ALIGN ||
	    o->hidden > MAX_DIM || o->ffn > MAX_DIM) {
		fprintf(stderr, "rmai-moe: no %s expert of %g MiB with hidden "
			"and ffn multiples of %d up to %u\n",
			dtype_names[o->dtype], mib, DIM_ALIGN, MAX_DIM);
		return -1;
	}
	return 0;
}

static int parse_dtype(const char *arg, enum dtype *dtype)
{
	unsigned int i;

	for (i = 0; i < sizeof(dtype_names) / sizeof(dtype_names[0]); i++)
		if (!strcmp(arg, dtype_names[i])) {
			*dtype = i;
			return 0;
		}
	fprintf(stderr, "rmai-moe: --dtype takes fp32, fp16 or bf16, not '%s'\n",
		arg);
	return -1;
}

/* A 64-bit number in @base (0: C notation). */
static int parse_u64(const char *opt, const char *arg, int base, uint64_t *val)
{
	char *end;

	errno = 0;
	*val = strtoull(arg, &end, base);
	if (errno || end == arg || *end || *arg == '-') {
		fprintf(stderr, "rmai-moe: --%s takes a %s64-bit number, not '%s'\n",
			opt, base == 16 ? "hexadecimal " : "", arg);
		return -1;
	}
	return 0;
}

enum {
	OPT_EXPERTS = 256, OPT_EXPERT_MIB, OPT_HIDDEN, OPT_FFN, OPT_DTYPE,
	OPT_TOPK, OPT_TOKENS, OPT_ZIPF, OPT_LOCALITY, OPT_SEED, OPT_WEIGHTS,
	OPT_TRACE, OPT_WRITE_TRACE, OPT_CGROUP, OPT_EXPECT, OPT_CORRUPT,
	OPT_TABLE, OPT_HELP,
};

static int parse_one(int c, const char *arg, struct options *o)
{
	switch (c) {
	case OPT_EXPERTS:
		return parse_uint("experts", arg, 1, MAX_EXPERTS, &o->experts);
	case OPT_EXPERT_MIB:
		return parse_double("expert-mib", arg, 0.001, 65536, &o->expert_mib);
	case OPT_HIDDEN:
		return parse_dim("hidden", arg, &o->hidden);
	case OPT_FFN:
		return parse_dim("ffn", arg, &o->ffn);
	case OPT_DTYPE:
		return parse_dtype(arg, &o->dtype);
	case OPT_TOPK:
		return parse_uint("topk", arg, 1, MAX_TOPK, &o->topk);
	case OPT_TOKENS:
		return parse_uint("tokens", arg, 1, 1u << 24, &o->tokens);
	case OPT_ZIPF:
		return parse_double("zipf", arg, 0, 100, &o->zipf);
	case OPT_LOCALITY:
		return parse_double("locality", arg, 0, 1, &o->locality);
	case OPT_SEED:
		return parse_u64("seed", arg, 0, &o->seed);
	case OPT_WEIGHTS:
		o->weights = arg;
		return 0;
	case OPT_TRACE:
		o->trace = arg;
		return 0;
	case OPT_WRITE_TRACE:
		o->write_trace = arg;
		return 0;
	case OPT_CGROUP:
		o->cgroup = arg;
		return 0;
	case OPT_EXPECT:
		o->expect_set = 1;
		return parse_u64("expect-digest", arg, 16, &o->expect_digest);
	case OPT_CORRUPT:
		o->corrupt = 1;
		return 0;
	case OPT_TABLE:
		o->table = 1;
		return 0;
	default:
		return -1;
	}
}

/* 0 to run, 1 after --help, -1 on bad usage (already reported). */
static int parse(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "experts", required_argument, NULL, OPT_EXPERTS },
		{ "expert-mib", required_argument, NULL, OPT_EXPERT_MIB },
		{ "hidden", required_argument, NULL, OPT_HIDDEN },
		{ "ffn", required_argument, NULL, OPT_FFN },
		{ "dtype", required_argument, NULL, OPT_DTYPE },
		{ "topk", required_argument, NULL, OPT_TOPK },
		{ "tokens", required_argument, NULL, OPT_TOKENS },
		{ "zipf", required_argument, NULL, OPT_ZIPF },
		{ "locality", required_argument, NULL, OPT_LOCALITY },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "weights", required_argument, NULL, OPT_WEIGHTS },
		{ "trace", required_argument, NULL, OPT_TRACE },
		{ "write-trace", required_argument, NULL, OPT_WRITE_TRACE },
		{ "cgroup", required_argument, NULL, OPT_CGROUP },
		{ "expect-digest", required_argument, NULL, OPT_EXPECT },
		{ "corrupt-for-test", no_argument, NULL, OPT_CORRUPT },
		{ "table", no_argument, NULL, OPT_TABLE },
		{ "help", no_argument, NULL, OPT_HELP },
		{ }
	};
	int c;

	*o = (struct options){ .experts = DEFAULT_EXPERTS, .dtype = DT_FP16, .zipf = 0.8,
			       .locality = 0.5, .seed = 1 };
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == OPT_HELP) {
			usage(stdout);
			return 1;
		}
		if (parse_one(c, optarg, o))
			goto usage;
	}
	if (optind != argc) {
		fprintf(stderr, "rmai-moe: unexpected argument '%s'\n", argv[optind]);
		goto usage;
	}
	if (!o->topk && !o->trace)
		o->topk = DEFAULT_TOPK;
	if (o->topk > o->experts) {
		fprintf(stderr, "rmai-moe: --topk %u is more than the %u experts\n",
			o->topk, o->experts);
		goto usage;
	}
	if (derive_dims(o))
		goto usage;
	return 0;
usage:
	usage(stderr);
	return -1;
}

static int cgroup_join(const char *dir)
{
	char path[4096], pid[32];
	int fd, n;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	n = snprintf(pid, sizeof(pid), "%d\n", getpid());
	fd = open(path, O_WRONLY);
	if (fd < 0 || write(fd, pid, n) != n) {
		fprintf(stderr, "rmai-moe: cannot join cgroup %s: %s\n", dir,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int routes_build(struct routes *rt, const struct options *o)
{
	if (o->trace)
		return routes_read(rt, o);
	if (routes_alloc(rt, o->tokens ? o->tokens : DEFAULT_TOKENS, o->topk))
		return -1;
	return routes_generate(rt, o);
}

/* Everything after the command line; returns the exit status. */
static int run(const struct options *o)
{
	struct results res = { .first_bad_expert = -1, .first_bad_token = -1,
			       .corrupt_expert = -1 };
	struct routes rt = { 0 };
	struct scratch sc = { 0 };
	const char *digest_ok = "-";
	struct latency lat;
	struct model m;
	int ret = 2, verified;

	if (model_init(&m, o))
		return 2;
	if (routes_build(&rt, o) || scratch_alloc(&sc, &m))
		goto out;
	res.passes = calloc((size_t)rt.tokens * rt.topk, sizeof(*res.passes));
	if (!res.passes) {
		perror("rmai-moe: calloc");
		goto out;
	}
	if (fill(&m, o, &res) ||
	    (o->write_trace && routes_write(&rt, o->write_trace)))
		goto out;
	if (o->corrupt)
		corrupt_one_byte(&m, &rt, o->seed, &res);
	if (decode(&m, &rt, o->seed, &sc, &res))
		goto out;
	check_unused(&m, &rt, &res);
	if (latency_summary(&m, res.passes, (size_t)rt.tokens * rt.topk, &lat))
		goto out;
	verified = !res.bad_passes && !res.bad_unused;
	if (o->expect_set) {
		digest_ok = res.digest == o->expect_digest ? "1" : "0";
		verified &= res.digest == o->expect_digest;
		if (res.digest != o->expect_digest)
			fprintf(stderr, "rmai-moe: output digest %016" PRIx64
				", expected %016" PRIx64 "\n", res.digest,
				o->expect_digest);
	}
	report_line(&m, &rt, o, &res, &lat, digest_ok, verified);
	if (o->table)
		report_table(&m, &rt, &res, &lat, verified);
	ret = verified ? 0 : 1;
out:
	free(res.passes);
	scratch_free(&sc);
	routes_free(&rt);
	model_free(&m);
	return ret;
}

int main(int argc, char **argv)
{
	struct options o;
	int ret;

	page_size = sysconf(_SC_PAGESIZE);
	ret = parse(argc, argv, &o);
	if (ret)
		return ret > 0 ? 0 : 2;
	if (o.cgroup && cgroup_join(o.cgroup))
		return 2;
	if (o.dtype != DT_FP32)
		half_table_init(o.dtype);
	return run(&o);
}
