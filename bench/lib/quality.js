#!/usr/bin/env node
// quality.js: perceptual scores of encoded outputs against lossless references.
//
//   node quality.js < pairs.json > scores.json
//
// pairs.json: [{ "id": ..., "test": FILE, "own_ref": PNG, "common_ref": PNG,
//                "crop": null | { "left", "top", "width", "height" } }, ...]
// For each pair, on the same (optionally cropped) pixels:
//   butteraugli  Debian's `butteraugli` (lower is better; < 1 invisible, > 2 clearly visible)
//                between `own_ref` (the same system's lossless render of this crop, so only the
//                encoder's damage counts) and `test`;
//   ssim_own     mean SSIM of the luma (Gaussian window 11, sigma 1.5; 1 = identical) between
//                `own_ref` and `test`: the encoder's damage again, on another scale;
//   ssim         the same between `common_ref` (one libvips render from the fully decoded source,
//                shared by every system) and `test`, so resampling shortcuts count too (and so
//                does a sub-pixel shift of the crop, which the eye does not see).
// Decoding is done here (sharp); butteraugli reads PNGs written here, so WebP works too.
'use strict';

const path = require('node:path');
const fs = require('node:fs');
const os = require('node:os');
const { execFile } = require('node:child_process');

const sharp = require(require.resolve('sharp', { paths: [path.join(__dirname, '..', 'peers')] }));

async function decode(file, crop) {
  let img = sharp(file, { limitInputPixels: false }).removeAlpha();
  if (crop) img = img.extract(crop);
  const { data, info } = await img.toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

function luma(img) {
  const n = img.width * img.height;
  const out = new Float32Array(n);
  const c = img.channels;
  for (let i = 0; i < n; i++) {
    const p = i * c;
    out[i] = c >= 3 ? 0.299 * img.data[p] + 0.587 * img.data[p + 1] + 0.114 * img.data[p + 2] : img.data[p];
  }
  return out;
}

const KERNEL = (() => {
  const k = [];
  let sum = 0;
  for (let i = -5; i <= 5; i++) {
    const v = Math.exp(-(i * i) / (2 * 1.5 * 1.5));
    k.push(v);
    sum += v;
  }
  return k.map((v) => v / sum);
})();

// Separable Gaussian blur, 'valid' region only: output is (w-10) x (h-10).
function blur(src, w, h) {
  const tmp = new Float32Array((w - 10) * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w - 10; x++) {
      let s = 0;
      for (let k = 0; k < 11; k++) s += KERNEL[k] * src[y * w + x + k];
      tmp[y * (w - 10) + x] = s;
    }
  }
  const ow = w - 10;
  const out = new Float32Array(ow * (h - 10));
  for (let y = 0; y < h - 10; y++) {
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let k = 0; k < 11; k++) s += KERNEL[k] * tmp[(y + k) * ow + x];
      out[y * ow + x] = s;
    }
  }
  return out;
}

function ssim(a, b, w, h) {
  const n = w * h;
  const aa = new Float32Array(n);
  const bb = new Float32Array(n);
  const ab = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    aa[i] = a[i] * a[i];
    bb[i] = b[i] * b[i];
    ab[i] = a[i] * b[i];
  }
  const [ma, mb, saa, sbb, sab] = [a, b, aa, bb, ab].map((x) => blur(x, w, h));
  const c1 = (0.01 * 255) ** 2;
  const c2 = (0.03 * 255) ** 2;
  let total = 0;
  for (let i = 0; i < ma.length; i++) {
    const va = saa[i] - ma[i] * ma[i];
    const vb = sbb[i] - mb[i] * mb[i];
    const cov = sab[i] - ma[i] * mb[i];
    total += ((2 * ma[i] * mb[i] + c1) * (2 * cov + c2)) / ((ma[i] ** 2 + mb[i] ** 2 + c1) * (va + vb + c2));
  }
  return total / ma.length;
}

function butteraugli(refPng, testPng) {
  return new Promise((resolve, reject) => {
    execFile('butteraugli', [refPng, testPng], (err, stdout, stderr) => {
      const score = parseFloat(stdout);
      if (err || !Number.isFinite(score)) reject(new Error(`butteraugli ${refPng} ${testPng}: ${stderr || err}`));
      else resolve(score);
    });
  });
}

async function writePng(img, file) {
  await sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels } })
    .png({ compressionLevel: 0 })
    .toFile(file);
}

async function score(pair, tmp, index) {
  const test = await decode(pair.test, pair.crop);
  const own = await decode(pair.own_ref, pair.crop);
  const common = await decode(pair.common_ref, pair.crop);
  for (const [name, ref] of [
    ['own_ref', own],
    ['common_ref', common],
  ]) {
    if (ref.width !== test.width || ref.height !== test.height) {
      throw new Error(`${pair.test} is ${test.width}x${test.height}, ${name} ${pair[name]} is ${ref.width}x${ref.height}`);
    }
  }
  const testLuma = luma(test);
  const result = {
    id: pair.id,
    ssim_own: ssim(luma(own), testLuma, test.width, test.height),
    ssim: ssim(luma(common), testLuma, test.width, test.height),
  };
  const refPng = path.join(tmp, `r${index}.png`);
  const testPng = path.join(tmp, `t${index}.png`);
  await writePng(own, refPng);
  await writePng(test, testPng);
  result.butteraugli = await butteraugli(refPng, testPng);
  fs.rmSync(refPng);
  fs.rmSync(testPng);
  return result;
}

async function main() {
  const pairs = JSON.parse(fs.readFileSync(0, 'utf8'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-quality.'));
  const results = new Array(pairs.length);
  let next = 0;
  const lanes = Math.max(1, Number(process.env.JOBS) || os.cpus().length);
  try {
    await Promise.all(
      Array.from({ length: lanes }, async () => {
        while (next < pairs.length) {
          const i = next++;
          results[i] = await score(pairs[i], tmp, i);
        }
      }),
    );
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(results, null, 1) + '\n');
}

main().catch((err) => {
  console.error(`quality: ${err.message}`);
  process.exit(1);
});
