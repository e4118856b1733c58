// ort-bench.js — ONNX Runtime (onnxruntime-node) as the benchmark peer of
// `osprey bench --compare-ort`. Times InferenceSession.run on random input of
// a given shape and prints one JSON object, so that osprey and ORT are
// measured the same way (same model file, batch, threads, wall-clock
// per-batch latency, nearest-rank percentiles).
//
// One-shot:  node ort-bench.js --model M --batch B --threads T [--seconds S]
//                [--warmup N] [--input NAME:DTYPE:D0xD1x...]...
// Serve mode (--serve), used by osprey to interleave the two engines:
//   prints {"event":"ready","load_ms":...} after load + warm-up, then reads
//   commands on stdin: "run S" (time runs for S seconds, reply
//   {"event":"ran","iterations":n}) and "done" (print the summary JSON over
//   all timed runs, exit). Between commands ORT is idle, so it does not
//   compete with osprey for the CPUs.
// Exit codes: 0 ok, 2 usage, 3 onnxruntime-node missing, 4 model/run error.
'use strict';

function usage(msg) {
  if (msg) process.stderr.write(`ort-bench: ${msg}\n`);
  process.stderr.write('usage: node ort-bench.js --model PATH --batch N --threads N ' +
    '[--seconds S] [--warmup N] [--input NAME:DTYPE:D0xD1x...]... [--serve]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const o = { model: null, batch: 1, threads: 1, seconds: 5, warmup: 3, inputs: [], serve: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => { if (i + 1 >= argv.length) usage(`${a} needs a value`); return argv[++i]; };
    if (a === '--model') o.model = val();
    else if (a === '--batch') o.batch = parseInt(val(), 10);
    else if (a === '--threads') o.threads = parseInt(val(), 10);
    else if (a === '--seconds') o.seconds = parseFloat(val());
    else if (a === '--warmup') o.warmup = parseInt(val(), 10);
    else if (a === '--input') o.inputs.push(parseInputSpec(val()));
    else if (a === '--serve') o.serve = true;
    else if (a === '-h' || a === '--help') usage();
    else usage(`unknown option ${a}`);
  }
  if (!o.model) usage('--model is required');
  if (!(o.batch >= 1) || !(o.threads >= 1) || !(o.seconds >= 0) || !(o.warmup >= 0))
    usage('--batch and --threads must be >= 1, --seconds and --warmup >= 0');
  return o;
}

// NAME:DTYPE:D0xD1x... — the exact input osprey fed its own engine.
function parseInputSpec(s) {
  const m = /^(.*):([a-z0-9]+):([0-9x]+)$/.exec(s);
  if (!m) usage(`bad --input '${s}' (want NAME:DTYPE:D0xD1x...)`);
  return { name: m[1], dtype: m[2], dims: m[3].split('x').map((d) => parseInt(d, 10)) };
}

// Deterministic xorshift32 + Box-Muller: the input values do not matter for
// timing, but a reproducible run is easier to debug.
function makeRng(seed) {
  let x = seed >>> 0 || 1;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 4294967296; };
}

function makeTensor(ort, spec, rng) {
  const n = spec.dims.reduce((a, b) => a * b, 1);
  let data;
  switch (spec.dtype) {
    case 'float32': case 'f32': {
      data = new Float32Array(n);
      for (let i = 0; i < n; i += 2) {
        const u = Math.max(rng(), 1e-12), v = rng(), r = Math.sqrt(-2 * Math.log(u));
        data[i] = r * Math.cos(2 * Math.PI * v);
        if (i + 1 < n) data[i + 1] = r * Math.sin(2 * Math.PI * v);
      }
      return new ort.Tensor('float32', data, spec.dims);
    }
    case 'uint8': case 'u8':
      data = new Uint8Array(n); for (let i = 0; i < n; i++) data[i] = (rng() * 256) | 0;
      return new ort.Tensor('uint8', data, spec.dims);
    case 'int8': case 's8':
      data = new Int8Array(n); for (let i = 0; i < n; i++) data[i] = ((rng() * 256) | 0) - 128;
      return new ort.Tensor('int8', data, spec.dims);
    case 'int64': case 's64':
      return new ort.Tensor('int64', new BigInt64Array(n), spec.dims);
    case 'int32': case 's32':
      return new ort.Tensor('int32', new Int32Array(n), spec.dims);
    default:
      throw new Error(`input ${spec.name}: dtype ${spec.dtype} not supported by ort-bench`);
  }
}

// Declared inputs from the session when the caller gave none: symbolic or
// negative dims become the batch (first dim) and are otherwise refused.
function inputsFromSession(session, batch) {
  const meta = session.inputMetadata;
  return session.inputNames.map((name, idx) => {
    const m = Array.isArray(meta) ? meta[idx] : (meta && meta[name]);
    const shape = m && m.shape ? m.shape : [batch, 3, 224, 224];
    const type = m && m.type ? m.type : 'float32';
    const dims = shape.map((d, k) => {
      if (k === 0) return batch;
      if (typeof d === 'number' && d > 0) return d;
      throw new Error(`input ${name} has dynamic dim ${k}; pass --input`);
    });
    return { name, dtype: type, dims };
  });
}

// Nearest-rank percentile (same definition as osprey bench).
function pct(sorted, q) {
  if (sorted.length === 0) return 0;
  const r = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[r];
}

async function timedRuns(session, feeds, seconds, times) {
  const deadline = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  let n = 0;
  // At least one run per request so a very short slot still yields samples.
  do {
    const a = process.hrtime.bigint();
    await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - a) / 1e6);
    n++;
  } while (process.hrtime.bigint() < deadline);
  return n;
}

function summary(o, ort, loadMs, times, specs) {
  const sorted = times.slice().sort((a, b) => a - b);
  const total = times.reduce((a, b) => a + b, 0);
  let version = null;
  try { version = ort.env && ort.env.versions && ort.env.versions.node; } catch (e) { version = null; }
  return {
    engine: 'onnxruntime-node',
    ort_version: version || null,
    model: o.model,
    batch: o.batch,
    threads: o.threads,
    inputs: specs.map((s) => `${s.name}:${s.dtype}:${s.dims.join('x')}`),
    iterations: times.length,
    seconds: total / 1000,
    img_per_s: total > 0 ? (o.batch * times.length * 1000) / total : 0,
    p50_ms: pct(sorted, 0.5),
    p99_ms: pct(sorted, 0.99),
    mean_ms: times.length ? total / times.length : 0,
    load_ms: loadMs,
    // resourceUsage().maxRSS is in KiB: peak of the whole node process
    // (includes the JS runtime, ~40 MB).
    rss_mb: process.resourceUsage().maxRSS / 1024,
  };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  let ort;
  try {
    ort = require('onnxruntime-node');
  } catch (e) {
    process.stderr.write('ort-bench: cannot load onnxruntime-node (' + e.message.split('\n')[0] + ');\n' +
      'ort-bench: install it with scripts/setup-venv.sh (npm install --ignore-scripts in bench/ort) or set NODE_PATH\n');
    process.exit(3);
  }
  let session, specs, feeds;
  const t0 = process.hrtime.bigint();
  try {
    session = await ort.InferenceSession.create(o.model, {
      intraOpNumThreads: o.threads, interOpNumThreads: 1,
      graphOptimizationLevel: 'all', executionMode: 'sequential',
    });
  } catch (e) {
    process.stderr.write(`ort-bench: loading ${o.model}: ${e.message}\n`);
    process.exit(4);
  }
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  try {
    specs = o.inputs.length ? o.inputs : inputsFromSession(session, o.batch);
    const rng = makeRng(12345);
    feeds = {};
    specs.forEach((s, i) => { feeds[session.inputNames[i] || s.name] = makeTensor(ort, s, rng); });
    for (let i = 0; i < o.warmup; i++) await session.run(feeds);
  } catch (e) {
    process.stderr.write(`ort-bench: running ${o.model}: ${e.message}\n`);
    process.exit(4);
  }

  const times = [];
  if (!o.serve) {
    await timedRuns(session, feeds, o.seconds, times);
    process.stdout.write(JSON.stringify(summary(o, ort, loadMs, times, specs)) + '\n');
    return;
  }
  process.stdout.write(JSON.stringify({ event: 'ready', load_ms: loadMs }) + '\n');
  const rl = require('readline').createInterface({ input: process.stdin, terminal: false });
  for await (const line of rl) {
    const [cmd, arg] = line.trim().split(/\s+/);
    if (cmd === 'run') {
      const n = await timedRuns(session, feeds, parseFloat(arg) || 0, times);
      process.stdout.write(JSON.stringify({ event: 'ran', iterations: n }) + '\n');
    } else if (cmd === 'done') {
      break;
    } else if (cmd) {
      process.stderr.write(`ort-bench: unknown command '${cmd}'\n`);
    }
  }
  rl.close();
  process.stdout.write(JSON.stringify(summary(o, ort, loadMs, times, specs)) + '\n');
}

main().catch((e) => { process.stderr.write(`ort-bench: ${e.stack || e}\n`); process.exit(4); });
