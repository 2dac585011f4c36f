// After `ng build`: writes a Brotli (.br) and a gzip (.gz) copy of every text file of the build, at
// the highest levels, once; the node serves them to clients that accept them (nodes/gateway/src/web.rs).
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const TEXT = /\.(js|mjs|css|html|json|svg|txt|map)$/;
const dir = process.argv[2] ?? 'dist/banter-web/browser';
let files = 0;
let before = 0;
let after = 0;

function walk(d) {
  for (const name of readdirSync(d)) {
    const path = join(d, name);
    if (statSync(path).isDirectory()) {
      walk(path);
    } else if (TEXT.test(name)) {
      const data = readFileSync(path);
      const br = brotliCompressSync(data, {
        params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: data.length },
      });
      writeFileSync(`${path}.br`, br);
      writeFileSync(`${path}.gz`, gzipSync(data, { level: 9 }));
      files++;
      before += data.length;
      after += br.length;
    }
  }
}

walk(dir);
console.error(`compress.mjs: ${files} files, ${before} bytes, ${after} with Brotli`);
