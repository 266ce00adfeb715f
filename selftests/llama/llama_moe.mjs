#!/usr/bin/env node
// SPDX-License-Identifier: GPL-2.0
//
// llama_moe.mjs - decode a GGUF model greedily with llama.cpp, through
// node-llama-cpp, its weights copied into anonymous memory.
//
//   node llama_moe.mjs --model FILE [--tokens 64] [--prompt TEXT]
//                      [--threads 1] [--ctx N] [--no-bos] [--verbose]
//                      [--expect-digest HEX] [--node-modules DIR]
//
// The model is loaded with useMmap false, so that llama.cpp reads the
// file into anonymous memory (what a cgroup's memory.max can send to
// swap) instead of mapping it; CPU only (gpu false), from node-llama-cpp's
// prebuilt binaries (build "never": no compiler, no download). The prompt
// is tokenized without special tokens and, unless --no-bos, the model's
// BOS is put in front of it explicitly. Decoding is greedy: temperature 0,
// no repeat penalty, end-of-generation tokens decoded like any other, so
// that a run is exactly --tokens tokens and the token ids depend only on
// the model and the prompt.
//
// node-llama-cpp is not in the tree: scripts/deps installs the version
// pinned by package-lock.json beside this file into $RMAI_CACHE/node
// (default /var/cache/rmai/node). --node-modules DIR names another
// node_modules directory. NODE_PATH does not apply to ES modules, so the
// package is resolved with require's algorithm from DIR (which honours its
// "exports") and imported by absolute URL.
//
// Prints one line on stdout, progress and llama.cpp's log on stderr:
//   model= file_bytes= threads= prompt_tokens= tokens= distinct= load_ms=
//   ttft_ms= tokens_per_s= tok_p50_ms= tok_p99_ms= tok_max_ms=
//   rss_anon_before_load_kib= rss_anon_start_kib= rss_anon_end_kib=
//   majflt= digest= digest_ok= nlc=
// ttft_ms is from handing over the prompt to the first generated token;
// tok_*_ms are the gaps between the later tokens, and tokens_per_s is
// their rate (tokens after the first over the time after the first).
// digest is the first 16 hex digits of the SHA-256 of the token ids as
// decimal numbers joined by ","; distinct counts the different ids.
// RssAnon is read from /proc/self/status: before_load after llama.cpp's
// libraries are loaded, start right after the model, end after decoding.
// majflt counts the process's major faults (getrusage) from the end of the
// load to the end of decoding: the swap-ins the decode waited for.
//
// Exit status: 0; 1 on a failure or a digest other than --expect-digest;
// 2 on bad usage; 4 when node-llama-cpp is not installed.

import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const PROG = "llama_moe.mjs";
const cache = process.env.RMAI_CACHE || "/var/cache/rmai";

function die(code, msg) {
	process.stderr.write(`${PROG}: ${msg}\n`);
	process.exit(code);
}

function usage(msg) {
	die(2, `${msg} (usage: ${PROG} --model FILE [--tokens N] [--prompt TEXT] ` +
		"[--threads N] [--ctx N] [--no-bos] [--verbose] [--expect-digest HEX] " +
		"[--node-modules DIR])");
}

let opts;
try {
	opts = parseArgs({
		strict: true,
		allowPositionals: false,
		options: {
			model: { type: "string" },
			tokens: { type: "string", default: "64" },
			prompt: { type: "string",
				default: "The experts of a mixture swap to remote memory" },
			threads: { type: "string", default: "1" },
			ctx: { type: "string" },
			"no-bos": { type: "boolean", default: false },
			verbose: { type: "boolean", short: "v", default: false },
			"expect-digest": { type: "string" },
			"node-modules": { type: "string",
				default: path.join(cache, "node", "node_modules") },
			help: { type: "boolean", short: "h", default: false },
		},
	}).values;
} catch (e) {
	usage(e.message.split("\n")[0]);
}
if (opts.help)
	usage("help");

function positive(name, max = 1 << 20) {
	const s = opts[name];
	if (!/^[0-9]+$/.test(s) || +s < 1 || +s > max)
		usage(`--${name} must be an integer from 1 to ${max}, not "${s}"`);
	return +s;
}

if (!opts.model)
	usage("--model FILE is required");
const nTokens = positive("tokens");
const threads = positive("threads", 256);
const expect = opts["expect-digest"];
if (expect !== undefined && !/^[0-9a-f]{16}$/.test(expect))
	usage("--expect-digest takes the 16 lowercase hex digits of a digest");
let fileBytes;
try {
	fileBytes = statSync(opts.model).size;
} catch (e) {
	usage(`--model ${opts.model}: ${e.code === "ENOENT" ? "no such file" : e.message}`);
}

function rssAnonKib() {
	const m = /^RssAnon:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"));
	return m ? +m[1] : -1;
}

const log = (msg) => process.stderr.write(`${PROG}: ${msg}\n`);

// node-llama-cpp from --node-modules, and nowhere else.
const nm = path.resolve(opts["node-modules"]);
let entry, version;
try {
	entry = createRequire(path.join(nm, "noop.js")).resolve("node-llama-cpp");
	version = JSON.parse(readFileSync(path.join(nm, "node-llama-cpp", "package.json"), "utf8")).version;
} catch {
	entry = undefined;
}
if (!entry || !entry.startsWith(nm + path.sep))
	die(4, `node-llama-cpp is not installed in ${nm}: run scripts/deps ` +
		"(or pass --node-modules DIR)");
const { getLlama, LlamaLogLevel } = await import(pathToFileURL(entry).href);

try {
	const llama = await getLlama({
		gpu: false,
		build: "never",
		usePrebuiltBinaries: true,
		skipDownload: true,
		progressLogs: false,
		maxThreads: threads,
		logLevel: opts.verbose ? LlamaLogLevel.info : LlamaLogLevel.warn,
		logger: (level, message) => process.stderr.write(`llama.cpp ${level}: ${message.trimEnd()}\n`),
	});
	const rssBefore = rssAnonKib();

	log(`loading ${opts.model} (${(fileBytes / 1048576).toFixed(1)} MiB)`);
	let t = performance.now();
	const model = await llama.loadModel({
		modelPath: opts.model,
		gpuLayers: 0,
		useMmap: false,
		useDirectIo: false,
		useMlock: false,
	});
	const loadMs = performance.now() - t;
	const rssStart = rssAnonKib();
	const majfltStart = process.resourceUsage().majorPageFault;
	if (model.useMmap)
		throw new Error("the model was mapped, not copied into anonymous memory");

	const tokens = model.tokenize(opts.prompt, false);
	if (!opts["no-bos"] && model.tokens.bos != null)
		tokens.unshift(model.tokens.bos);
	if (tokens.length === 0)
		usage("the prompt gives no tokens: give --prompt or drop --no-bos");
	const need = tokens.length + nTokens + 1;
	let ctxSize = opts.ctx !== undefined ? positive("ctx") : Math.max(256, need);
	if (ctxSize < need)
		usage(`--ctx ${ctxSize} is less than the prompt and --tokens (${need})`);
	const context = await model.createContext({
		contextSize: ctxSize,
		batchSize: Math.min(512, ctxSize),
		sequences: 1,
		threads: { ideal: threads, min: threads },
		flashAttention: false,
	});
	const sequence = context.getSequence();
	log(`prompt token ids: ${tokens.join(" ")}`);
	log(`decoding ${nTokens} tokens on ${threads} thread(s)`);

	const ids = [];
	const gaps = [];
	let ttft = 0;
	t = performance.now();
	for await (const id of sequence.evaluate(tokens, {
		temperature: 0,
		yieldEogToken: true,
	})) {
		const now = performance.now();
		if (ids.length === 0)
			ttft = now - t;
		else
			gaps.push(now - t);
		t = now;
		ids.push(id);
		if (ids.length >= nTokens)
			break;
	}
	const rssEnd = rssAnonKib();
	const majflt = process.resourceUsage().majorPageFault - majfltStart;
	if (ids.length !== nTokens)
		throw new Error(`decoded ${ids.length} tokens, not ${nTokens}`);

	const digest = createHash("sha256").update(ids.join(",")).digest("hex").slice(0, 16);
	const sorted = gaps.slice().sort((a, b) => a - b);
	const pct = (p) => sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] : 0;
	const decodeMs = gaps.reduce((a, b) => a + b, 0);
	const f = (x, d = 2) => x.toFixed(d);
	const ok = expect === undefined ? "-" : (digest === expect ? 1 : 0);

	log(`token ids: ${ids.join(" ")}`);
	process.stdout.write([
		`model=${path.basename(opts.model)}`,
		`file_bytes=${fileBytes}`,
		`threads=${threads}`,
		`prompt_tokens=${tokens.length}`,
		`tokens=${ids.length}`,
		`distinct=${new Set(ids).size}`,
		`load_ms=${f(loadMs, 1)}`,
		`ttft_ms=${f(ttft)}`,
		`tokens_per_s=${f(decodeMs > 0 ? gaps.length * 1000 / decodeMs : 0)}`,
		`tok_p50_ms=${f(pct(0.5), 3)}`,
		`tok_p99_ms=${f(pct(0.99), 3)}`,
		`tok_max_ms=${f(sorted.length ? sorted[sorted.length - 1] : 0, 3)}`,
		`rss_anon_before_load_kib=${rssBefore}`,
		`rss_anon_start_kib=${rssStart}`,
		`rss_anon_end_kib=${rssEnd}`,
		`majflt=${majflt}`,
		`digest=${digest}`,
		`digest_ok=${ok}`,
		`nlc=${version}`,
	].join(" ") + "\n");

	await context.dispose();
	await model.dispose();
	await llama.dispose();
	if (ok === 0)
		die(1, `digest ${digest} is not the expected ${expect}`);
} catch (e) {
	die(1, e && e.message ? e.message : String(e));
}
