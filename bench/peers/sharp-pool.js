#!/usr/bin/env node
// Peers 1 and 2 of the benchmark: the original design's pipeline on Node's sharp.
//
//   node sharp-pool.js --settings seed|imgspool --out DIR [--workers 4] FILE...
//
// As the original design (shared/seeds/003) did it: a pool of worker_threads (4) fed from a
// queue in the main thread, one photo per message; the worker runs one sharp() pipeline per
// output, one after the other, each starting from the file, .rotate() first (EXIF orientation).
// Outputs of the web profile land in DIR/<photo stem>/<variant>.<ext>: small/medium/large cover
// crops (150/400/800, centre) in the source's format and as WebP, plus the re-encoded original.
//   --settings seed      JPEG {quality 85, mozjpeg, progressive}, PNG {compressionLevel 9}, WebP {quality 85}
//   --settings imgspool  imgspool's web-profile encoders (imgspool-settings.json beside this file)
//   --settings lossless  the same crops, each once, as PNG: the reference the quality scores use
// Prints one JSON line {images, outputs, failed}; exit 1 if any photo failed.
'use strict';

const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const path = require('node:path');
const fs = require('node:fs');

const SIZES = [
  ['small', 150],
  ['medium', 400],
  ['large', 800],
];
const EXT = { jpeg: 'jpg', png: 'png', webp: 'webp' };

function encoderSettings(name) {
  if (name === 'seed') {
    return {
      jpeg: { quality: 85, mozjpeg: true, progressive: true },
      png: { compressionLevel: 9 },
      webp: { quality: 85 },
    };
  }
  if (name === 'imgspool') {
    return JSON.parse(fs.readFileSync(path.join(__dirname, 'imgspool-settings.json'), 'utf8')).sharp;
  }
  if (name === 'lossless') return { lossless: true, png: { compressionLevel: 1 } };
  throw new Error(`unknown --settings '${name}' (seed, imgspool or lossless)`);
}

async function renderPhoto(sharp, file, outDir, enc) {
  const { format } = await sharp(file).metadata();
  if (!EXT[format]) throw new Error(`${file}: unsupported format ${format}`);
  const dir = path.join(outDir, path.parse(file).name);
  fs.mkdirSync(dir, { recursive: true });
  const outputs = [];
  const formats = enc.lossless ? ['png'] : [...new Set([format, 'webp'])];
  for (const [name, size] of SIZES) {
    for (const fmt of formats) {
      outputs.push({
        file: path.join(dir, `${name}.${EXT[fmt]}`),
        fmt,
        resize: [size, size, { fit: 'cover', position: 'centre' }],
      });
    }
  }
  const originalFormat = enc.lossless ? 'png' : format;
  outputs.push({ file: path.join(dir, `original.${EXT[originalFormat]}`), fmt: originalFormat, resize: null });
  for (const out of outputs) {
    let pipeline = sharp(file).rotate();
    if (out.resize) pipeline = pipeline.resize(...out.resize);
    await pipeline.toFormat(out.fmt, enc[out.fmt]).toFile(out.file);
  }
  return outputs.length;
}

function runWorker() {
  const sharp = require('sharp');
  const enc = encoderSettings(workerData.settings);
  parentPort.on('message', async ({ jobId, file }) => {
    try {
      const outputs = await renderPhoto(sharp, file, workerData.outDir, enc);
      parentPort.postMessage({ jobId, outputs });
    } catch (err) {
      parentPort.postMessage({ jobId, error: err.message });
    }
  });
}

class Pool {
  constructor(size, data) {
    this.queue = [];
    this.active = new Map();
    this.nextId = 0;
    this.workers = Array.from({ length: size }, () => {
      const slot = { worker: new Worker(__filename, { workerData: data }), busy: false };
      slot.worker.on('message', (msg) => this.finished(slot, msg));
      slot.worker.on('error', (err) => {
        console.error(`sharp-pool: worker died: ${err.message}`);
        process.exit(1);
      });
      return slot;
    });
  }

  run(file) {
    return new Promise((resolve, reject) => {
      this.queue.push({ file, resolve, reject });
      this.dispatch();
    });
  }

  dispatch() {
    for (const slot of this.workers) {
      if (slot.busy || this.queue.length === 0) continue;
      const job = this.queue.shift();
      const jobId = this.nextId++;
      slot.busy = true;
      this.active.set(jobId, job);
      slot.worker.postMessage({ jobId, file: job.file });
    }
  }

  finished(slot, msg) {
    const job = this.active.get(msg.jobId);
    this.active.delete(msg.jobId);
    slot.busy = false;
    if (msg.error) job.reject(new Error(msg.error));
    else job.resolve(msg.outputs);
    this.dispatch();
  }

  close() {
    return Promise.all(this.workers.map((s) => s.worker.terminate()));
  }
}

async function main() {
  const args = process.argv.slice(2);
  const opts = { settings: null, out: null, workers: 4 };
  const files = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--settings') opts.settings = args[++i];
    else if (a === '--out') opts.out = args[++i];
    else if (a === '--workers') opts.workers = Number(args[++i]);
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else files.push(a);
  }
  if (!opts.settings || !opts.out || files.length === 0 || !(opts.workers >= 1)) {
    console.error('usage: sharp-pool.js --settings seed|imgspool --out DIR [--workers 4] FILE...');
    process.exit(2);
  }
  encoderSettings(opts.settings); // fail early on a bad name or settings file
  fs.mkdirSync(opts.out, { recursive: true });
  const pool = new Pool(opts.workers, { settings: opts.settings, outDir: path.resolve(opts.out) });
  let outputs = 0;
  let failed = 0;
  await Promise.all(
    files.map((f) =>
      pool.run(path.resolve(f)).then(
        (n) => (outputs += n),
        (err) => {
          failed++;
          console.error(`sharp-pool: ${err.message}`);
        },
      ),
    ),
  );
  await pool.close();
  console.log(JSON.stringify({ images: files.length, outputs, failed }));
  process.exitCode = failed ? 1 : 0;
}

if (isMainThread) {
  main().catch((err) => {
    console.error(`sharp-pool: ${err.message}`);
    process.exit(2);
  });
} else {
  runWorker();
}
