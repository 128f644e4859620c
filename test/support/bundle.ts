/**
 * Child processes that start fast. `runChild` goes through tsx, which on a loaded 2-core machine
 * takes seconds per start (it loads hundreds of TypeScript and ESM files). Tests that start a
 * child a hundred times (crash safety) bundle the script once with esbuild — effect and the
 * library inlined, native modules left external — and start it with plain `node` (~0.5 s).
 */
import * as esbuild from "esbuild"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "../..")
const outDir = path.join(root, ".tmp", "bundles")

/** Native or optional packages that cannot be inlined. */
const external = ["better-sqlite3", "lz4-napi", "@duckdb/*", "nodejs-polars", "pg-native"]

/** Bundles `script` (relative to the repository root) and returns the path of the bundle. */
export const bundle = async (script: string): Promise<string> => {
  fs.mkdirSync(outDir, { recursive: true })
  // Unique per call: test files run in parallel and must not overwrite each other's bundle.
  const outfile = path.join(
    outDir,
    `${path.basename(script, ".ts")}-${process.pid}-${Math.random().toString(36).slice(2, 8)}.mjs`
  )
  await esbuild.build({
    entryPoints: [path.resolve(root, script)],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    external,
    logLevel: "error",
    // Bundled CommonJS dependencies call `require`, which an ES module does not have.
    banner: {
      js:
        "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);"
    }
  })
  return outfile
}

/** Starts a bundled script with plain node; stdin, stdout and stderr are piped. */
export const spawnBundled = (file: string, args: ReadonlyArray<string>): ChildProcess =>
  spawn(process.execPath, [file, ...args], { cwd: root, stdio: ["pipe", "pipe", "pipe"] })
