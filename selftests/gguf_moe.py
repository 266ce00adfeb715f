#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""gguf_moe.py - write a Mixtral-style Mixture-of-Experts model as GGUF.

  gguf_moe.py --out FILE [--experts 8] [--experts-used 2] [--layers 4]
              [--embd 256] [--ffn 2048 | --size-mib S] [--heads 4]
              [--heads-kv H] [--vocab-extra 0] [--ctx 4096]
              [--dtype f16|f32|q8_0] [--seed 1]

The model is what llama.cpp loads as architecture "llama" with experts:
per layer an RMS norm, attention (q, k, v, output; RoPE over the whole head),
an RMS norm, a router (ffn_gate_inp) and the experts' SwiGLU FFNs stacked
in three tensors, ffn_gate_exps and ffn_up_exps (embd x ffn x experts in
ggml order) and ffn_down_exps (ffn x embd x experts); then output_norm and
output. Nobody trained it: its weights are seeded noise, scaled by
1/sqrt(fan-in) so that activations stay finite, with a router scaled up so
that each token picks its experts decisively and different tokens pick
different ones. Greedy decoding therefore gives varied, reproducible
tokens, not text.

Weights. SHAKE-256 of (seed, tensor name, chunk number) gives the random
bits of each 1 MiB chunk, so the file depends only on the arguments: the
same arguments give a byte-identical file on any machine and Python 3.
f16 and f32 values keep the random sign and mantissa and the two low bits
of the exponent, and get a fixed exponent base per tensor: magnitudes are
spread over four octaves under a top that sets the tensor's RMS. q8_0 is
ggml's block format: blocks of 32 weights, each an f16 scale followed by
32 int8, random int8 under a per-tensor scale. Norm weights are 1.0 and,
like the router, f32 whatever --dtype says, as llama.cpp's converters
write them.

Vocabulary. SentencePiece-style ("llama" tokenizer): <unk>, <s>, </s>, the
256 byte tokens <0x00>..<0xFF> (so any text tokenizes by byte fallback),
the printable ASCII characters, and the pieces of a small English word
list, each word with every prefix so that SentencePiece's pairwise merges
can reach it; --vocab-extra N adds N more pieces.

--size-mib S picks --ffn, a multiple of 32, so that the file is about S MiB.

Prints one line on stdout:
  file= bytes= mib= ffn= experts= experts_used= layers= embd= heads=
  heads_kv= vocab= dtype= seed= expert_bytes= expert_fraction=
"""

import argparse
import hashlib
import math
import os
import struct
import sys

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
ALIGNMENT = 32
CHUNK = 1 << 20

# GGUF metadata value types
T_UINT32, T_INT32, T_FLOAT32, T_BOOL, T_STRING, T_ARRAY = 4, 5, 6, 7, 8, 9

# ggml tensor types: (id, bytes per block, weights per block), and the
# general.file_type ("mostly") that a file of that --dtype declares.
GGML_TYPES = {
    "f32": (0, 4, 1),
    "f16": (1, 2, 1),
    "q8_0": (8, 34, 32),
}
FILE_TYPE = {"f32": 0, "f16": 1, "q8_0": 7}

# llama.cpp's token types
TOK_NORMAL, TOK_UNKNOWN, TOK_CONTROL, TOK_BYTE = 1, 2, 3, 6

SPACE = "\u2581"  # SentencePiece's visible space

WORDS = """the of and to in is that it for was on are as with his they at be
this from have or by one had not but what all were when we there can an your
which their said if do will each about how up out them then she many some so
these would other into has more her two like him see time could no make than
first been its who now people my made over did down only way find use may
water long little very after words called just where most know get through
back much before go good new write our used me man too any day same right
look think also around another came come work three word must because does
part even place well such here take why things help put years different
away again off went old number great tell men say small every found still
between name should home big give air line set own under read last never us
left end along while might next sound below saw something thought both few
those always looked show large often together asked house world going want
school important until form food keep children feet land side without boy
once animals life enough took sometimes four head above kind began almost
live page got earth need far hand high year mother light parts country
father let night following picture being study second eyes soon times story
boys since white days ever paper hard near sentence better best across
during today others however sure means knew try told young miles sun ways
thing whole hear example heard several change answer room sea against top
turned learn point city play toward five using himself usually memory
remote expert experts model token tokens swap page pages node nodes network
kernel module daemon mixture layer layers weight weights router attention
""".split()


def die(msg):
    print(f"gguf_moe.py: {msg}", file=sys.stderr)
    sys.exit(2)


# --- GGUF encoding -----------------------------------------------------------

def gguf_str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def gguf_value(vtype, v):
    if vtype == T_UINT32:
        return struct.pack("<I", v)
    if vtype == T_INT32:
        return struct.pack("<i", v)
    if vtype == T_FLOAT32:
        return struct.pack("<f", v)
    if vtype == T_BOOL:
        return struct.pack("<?", bool(v))
    if vtype == T_STRING:
        return gguf_str(v)
    raise ValueError(vtype)


def gguf_kv(key, vtype, v, elem=None):
    out = gguf_str(key) + struct.pack("<I", vtype)
    if vtype == T_ARRAY:
        out += struct.pack("<IQ", elem, len(v))
        if elem == T_FLOAT32:
            out += struct.pack(f"<{len(v)}f", *v)
        elif elem == T_INT32:
            out += struct.pack(f"<{len(v)}i", *v)
        else:
            out += b"".join(gguf_value(elem, x) for x in v)
        return out
    return out + gguf_value(vtype, v)


def pad(n, align=ALIGNMENT):
    return (align - n % align) % align


# --- the vocabulary ----------------------------------------------------------

def vocabulary(extra):
    """(tokens, scores, types) of a SentencePiece-style vocabulary."""
    toks = ["<unk>", "<s>", "</s>"]
    types = [TOK_UNKNOWN, TOK_CONTROL, TOK_CONTROL]
    toks += [f"<0x{b:02X}>" for b in range(256)]
    types += [TOK_BYTE] * 256
    pieces = [SPACE] + [chr(c) for c in range(0x21, 0x7F)]
    for w in WORDS:
        s = SPACE + w
        pieces += [s[:i] for i in range(2, len(s) + 1)]
    seen = set(toks)
    for p in pieces:
        if p not in seen:
            seen.add(p)
            toks.append(p)
            types.append(TOK_NORMAL)
    # --vocab-extra: made-up but stable pieces of syllables.
    cons, vow = "bdfgklmnprstvz", "aeiou"
    i = 0
    while extra > 0:
        n, p = i, SPACE
        while True:
            p += cons[n % len(cons)] + vow[n // len(cons) % len(vow)]
            n //= len(cons) * len(vow)
            if n == 0:
                break
        i += 1
        if p not in seen:
            seen.add(p)
            toks.append(p)
            types.append(TOK_NORMAL)
            extra -= 1
    # Scores rank the pieces for SentencePiece's merges; specials score 0.
    scores = [0.0] * 259 + [-float(i) for i in range(len(toks) - 259)]
    return toks, scores, types


# --- the weights -------------------------------------------------------------

_masks = {}


def _mask(nwords, word_bytes, keep, add):
    key = (nwords, word_bytes, keep, add)
    m = _masks.get(key)
    if m is None:
        fmt = "<H" if word_bytes == 2 else "<I"
        m = (int.from_bytes(struct.pack(fmt, keep) * nwords, "little"),
             int.from_bytes(struct.pack(fmt, add) * nwords, "little"))
        if len(_masks) > 8:
            _masks.clear()
        _masks[key] = m
    return m


def random_bytes(seed, name, chunk_no, n):
    h = hashlib.shake_256()
    h.update(b"rmai-gguf-moe\0" + struct.pack("<QQ", seed, chunk_no))
    h.update(name.encode() + b"\0")
    return h.digest(n)


# RMS of the values below with an exponent base of 0: random sign, mantissa
# uniform in [1, 2), exponent base + 0..3: sqrt(85/4 * 7/3).
RMS_UNIT = math.sqrt(85 / 4 * 7 / 3)


def float_chunk(rnd, dtype, rms):
    """Random floats of RMS about rms, from the random bytes rnd."""
    e = round(math.log2(rms / RMS_UNIT))
    if dtype == "f16":
        base = 15 + e
        if not 1 <= base <= 27:
            die(f"a weight RMS of {rms} does not fit f16")
        # keep sign, exponent bits 1..0 and mantissa; add the base exponent
        keep, add, wb = 0x8FFF, base << 10, 2
    else:
        base = 127 + e
        if not 1 <= base <= 251:
            die(f"a weight RMS of {rms} does not fit f32")
        keep, add, wb = 0x81FFFFFF, base << 23, 4
    nwords = len(rnd) // wb
    k, a = _mask(nwords, wb, keep, add)
    v = (int.from_bytes(rnd, "little") & k) + a
    return v.to_bytes(len(rnd), "little")


def q8_0_chunk(rnd, rms):
    """q8_0 blocks (f16 scale, 32 int8) from 32 random bytes per block."""
    nblk = len(rnd) // 32
    # RMS of uniform int8 in [-128, 127] is about 73.9
    d = struct.pack("<e", rms / 73.9)
    out = bytearray(nblk * 34)
    out[0::34] = d[0:1] * nblk
    out[1::34] = d[1:2] * nblk
    for j in range(32):
        out[2 + j::34] = rnd[j::32]
    return bytes(out)


class Tensor:
    def __init__(self, name, ne, dtype, rms=None):
        self.name, self.ne, self.dtype, self.rms = name, ne, dtype, rms
        tid, bsize, bw = GGML_TYPES[dtype]
        self.type_id = tid
        n = math.prod(ne)
        if ne[0] % bw:
            die(f"{name}: {ne[0]} is not a multiple of {bw} for {dtype}")
        self.nbytes = n // bw * bsize
        self.offset = 0

    def info(self):
        return (gguf_str(self.name) + struct.pack("<I", len(self.ne)) +
                struct.pack(f"<{len(self.ne)}Q", *self.ne) +
                struct.pack("<IQ", self.type_id, self.offset))

    def write(self, f, seed):
        if self.rms is None:  # a norm: ones
            one = struct.pack("<f", 1.0)
            f.write(one * (self.nbytes // 4))
            return
        _, bsize, bw = GGML_TYPES[self.dtype]
        # whole blocks per chunk; the random bytes per chunk are one per
        # byte of f16/f32 output and one per int8 of q8_0
        blocks = max(1, CHUNK // bsize)
        nblocks = self.nbytes // bsize
        chunk_no = 0
        for first in range(0, nblocks, blocks):
            nb = min(blocks, nblocks - first)
            nrnd = nb * (bw if self.dtype == "q8_0" else bsize)
            rnd = random_bytes(seed, self.name, chunk_no, nrnd)
            if self.dtype == "q8_0":
                f.write(q8_0_chunk(rnd, self.rms))
            else:
                f.write(float_chunk(rnd, self.dtype, self.rms))
            chunk_no += 1


# --- the model ---------------------------------------------------------------

def tensors(a, n_vocab):
    E, F, X = a.embd, a.ffn, a.experts
    hd = E // a.heads
    kv = hd * a.heads_kv
    dt = a.dtype
    s_e = 1 / math.sqrt(E)
    out = [Tensor("token_embd.weight", [E, n_vocab], dt, 1.0)]
    for i in range(a.layers):
        b = f"blk.{i}."
        out += [
            Tensor(b + "attn_norm.weight", [E], "f32"),
            Tensor(b + "attn_q.weight", [E, E], dt, s_e),
            Tensor(b + "attn_k.weight", [E, kv], dt, s_e),
            Tensor(b + "attn_v.weight", [E, kv], dt, s_e),
            Tensor(b + "attn_output.weight", [E, E], dt, s_e),
            Tensor(b + "ffn_norm.weight", [E], "f32"),
            # router logits with an RMS of about 4: decisive top-k
            Tensor(b + "ffn_gate_inp.weight", [E, X], "f32", 4 * s_e),
            Tensor(b + "ffn_gate_exps.weight", [E, F, X], dt, s_e),
            Tensor(b + "ffn_up_exps.weight", [E, F, X], dt, s_e),
            Tensor(b + "ffn_down_exps.weight", [F, E, X], dt,
                   1 / math.sqrt(F)),
        ]
    out += [Tensor("output_norm.weight", [E], "f32"),
            Tensor("output.weight", [E, n_vocab], dt, s_e)]
    return out


def metadata(a, toks, scores, types):
    arch = "llama"
    hd = a.embd // a.heads
    kvs = [
        gguf_kv("general.architecture", T_STRING, arch),
        gguf_kv("general.name", T_STRING,
                f"rmai-moe-{a.experts}x{a.ffn}-{a.layers}l-{a.dtype}"),
        gguf_kv("general.alignment", T_UINT32, ALIGNMENT),
        gguf_kv("general.file_type", T_UINT32, FILE_TYPE[a.dtype]),
        gguf_kv("general.quantization_version", T_UINT32, 2),
        gguf_kv(f"{arch}.vocab_size", T_UINT32, len(toks)),
        gguf_kv(f"{arch}.context_length", T_UINT32, a.ctx),
        gguf_kv(f"{arch}.embedding_length", T_UINT32, a.embd),
        gguf_kv(f"{arch}.block_count", T_UINT32, a.layers),
        gguf_kv(f"{arch}.feed_forward_length", T_UINT32, a.ffn),
        gguf_kv(f"{arch}.attention.head_count", T_UINT32, a.heads),
        gguf_kv(f"{arch}.attention.head_count_kv", T_UINT32, a.heads_kv),
        gguf_kv(f"{arch}.rope.dimension_count", T_UINT32, hd),
        gguf_kv(f"{arch}.rope.freq_base", T_FLOAT32, 10000.0),
        gguf_kv(f"{arch}.attention.layer_norm_rms_epsilon", T_FLOAT32, 1e-5),
        gguf_kv(f"{arch}.expert_count", T_UINT32, a.experts),
        gguf_kv(f"{arch}.expert_used_count", T_UINT32, a.experts_used),
        gguf_kv("tokenizer.ggml.model", T_STRING, "llama"),
        gguf_kv("tokenizer.ggml.tokens", T_ARRAY, toks, T_STRING),
        gguf_kv("tokenizer.ggml.scores", T_ARRAY, scores, T_FLOAT32),
        gguf_kv("tokenizer.ggml.token_type", T_ARRAY, types, T_INT32),
        gguf_kv("tokenizer.ggml.unknown_token_id", T_UINT32, 0),
        gguf_kv("tokenizer.ggml.bos_token_id", T_UINT32, 1),
        gguf_kv("tokenizer.ggml.eos_token_id", T_UINT32, 2),
        gguf_kv("tokenizer.ggml.add_bos_token", T_BOOL, True),
        gguf_kv("tokenizer.ggml.add_eos_token", T_BOOL, False),
        gguf_kv("tokenizer.ggml.add_space_prefix", T_BOOL, True),
        gguf_kv("rmai.generator", T_STRING,
                f"gguf_moe.py seed={a.seed} vocab_extra={a.vocab_extra}"),
    ]
    return kvs


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="gguf_moe.py",
        description="Write a seeded Mixtral-style MoE model as GGUF.")
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--experts", type=int, default=8)
    p.add_argument("--experts-used", type=int, default=2)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--embd", type=int, default=256)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--ffn", type=int, help="FFN width per expert (2048)")
    g.add_argument("--size-mib", type=float,
                   help="pick --ffn for a file of about this size")
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--heads-kv", type=int, help="(default: --heads)")
    p.add_argument("--vocab-extra", type=int, default=0)
    p.add_argument("--ctx", type=int, default=4096)
    p.add_argument("--dtype", choices=sorted(GGML_TYPES), default="f16")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    if a.heads_kv is None:
        a.heads_kv = a.heads
    for k in ("experts", "experts_used", "layers", "embd", "heads",
              "heads_kv", "ctx"):
        if getattr(a, k) < 1:
            p.error(f"--{k.replace('_', '-')} must be at least 1")
    if a.experts_used > a.experts:
        p.error("--experts-used must not exceed --experts")
    if a.embd % a.heads or (a.embd // a.heads) % 2:
        p.error("--embd must be an even multiple of --heads (RoPE)")
    if a.heads % a.heads_kv:
        p.error("--heads must be a multiple of --heads-kv")
    if a.vocab_extra < 0 or not 0 <= a.seed < 1 << 64:
        p.error("--vocab-extra and --seed must be non-negative")
    if a.dtype == "q8_0" and a.embd % 32:
        p.error("q8_0 needs --embd a multiple of 32")
    if a.ffn is not None and (a.ffn < 1 or (a.dtype == "q8_0" and a.ffn % 32)):
        p.error("--ffn must be positive (a multiple of 32 for q8_0)")
    return a


def main(argv):
    a = parse_args(argv)
    toks, scores, types = vocabulary(a.vocab_extra)
    if a.ffn is None:
        a.ffn = 2048
        if a.size_mib is not None:
            # everything but the experts, then 32 FFN columns at a time
            a.ffn = 32
            fixed = sum(t.nbytes for t in tensors(a, len(toks))
                        if "_exps" not in t.name)
            _, bsize, bw = GGML_TYPES[a.dtype]
            per32 = a.layers * 3 * a.embd * 32 * a.experts * bsize // bw
            want = a.size_mib * (1 << 20) - fixed
            a.ffn = 32 * max(1, round(want / per32))
    ts = tensors(a, len(toks))
    kvs = metadata(a, toks, scores, types)

    off = 0
    for t in ts:
        t.offset = off
        off += t.nbytes + pad(t.nbytes)
    head = (GGUF_MAGIC + struct.pack("<IQQ", GGUF_VERSION, len(ts), len(kvs))
            + b"".join(kvs) + b"".join(t.info() for t in ts))
    head += b"\0" * pad(len(head))
    total = len(head) + off

    tmp = f"{a.out}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(head)
            for t in ts:
                t.write(f, a.seed)
                f.write(b"\0" * pad(t.nbytes))
            if f.tell() != total:
                raise RuntimeError(f"wrote {f.tell()} bytes, meant {total}")
        os.replace(tmp, a.out)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    exp = sum(t.nbytes for t in ts if "_exps" in t.name)
    print(f"file={a.out} bytes={total} mib={total / (1 << 20):.1f} "
          f"ffn={a.ffn} experts={a.experts} experts_used={a.experts_used} "
          f"layers={a.layers} embd={a.embd} heads={a.heads} "
          f"heads_kv={a.heads_kv} vocab={len(toks)} dtype={a.dtype} "
          f"seed={a.seed} expert_bytes={exp} "
          f"expert_fraction={exp / total:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
