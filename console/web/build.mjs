// Bundle src/main.ts and src/console.css into ../static, where the service serves them from.
// `node build.mjs --check` builds in memory and fails when ../static differs from the sources
// (the built files are committed so that the Python package needs no Node.js).
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = path.join(here, "..", "static");
const check = process.argv.includes("--check");

const result = await esbuild.build({
  entryPoints: { console: path.join(here, "src", "main.ts") },
  bundle: true,
  minify: true,
  format: "esm",
  target: ["chrome110", "firefox110", "safari16"],
  outdir,
  write: false,
  legalComments: "none",
  logLevel: "warning",
});

let stale = [];
for (const file of result.outputFiles) {
  const name = path.relative(outdir, file.path);
  if (check) {
    const current = await readFile(file.path).catch(() => Buffer.alloc(0));
    if (!current.equals(Buffer.from(file.contents))) stale.push(name);
  } else {
    await writeFile(file.path, file.contents);
    console.log(`wrote console/static/${name} (${file.contents.length} bytes)`);
  }
}
if (stale.length) {
  console.error(`console/static is out of date (${stale.join(", ")}): run \`make console\``);
  process.exit(1);
}
