// node decode.js HASH WIDTH HEIGHT: the reference decoder's WIDTH x HEIGHT image of HASH as raw
// 8-bit RGB rows on stdout; an invalid hash exits 1 with the decoder's reason on stderr.
const { decode, isBlurhashValid } = require("blurhash");

const [hash, width, height] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const valid = isBlurhashValid(hash || "");
if (!valid.result) {
  process.stderr.write(`invalid BlurHash: ${valid.errorReason}\n`);
  process.exit(1);
}
const rgba = decode(hash, width, height);
const rgb = Buffer.alloc(width * height * 3);
for (let i = 0; i < width * height; i++) {
  rgb[3 * i] = rgba[4 * i];
  rgb[3 * i + 1] = rgba[4 * i + 1];
  rgb[3 * i + 2] = rgba[4 * i + 2];
}
process.stdout.write(rgb);
