/**
 * The `cacheness` bin's own logging: a library warning reaches stderr once, and stdout carries
 * only the command's output (the runner's pretty logger used to print every warning on stdout
 * too, breaking `--json`).
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { cacheness } from "../src/index.js"
import { ensureBuilt, root } from "./support/build.js"
import { makeTempDir } from "./support/tmp.js"

const bin = path.join(root, "dist/cli/main.js")

const cli = (args: ReadonlyArray<string>): Promise<{ status: number; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    const { CACHENESS_DIR: _, ...env } = process.env
    execFile(
      process.execPath,
      [bin, ...args],
      { env: { ...env, CACHENESS_PROGRESS: "never" }, encoding: "utf8" },
      (error, stdout, stderr) => resolve({ status: error === null ? 0 : (error.code as number), stdout, stderr })
    )
  })

describe("cacheness CLI logging", () => {
  let dir: string
  beforeAll(ensureBuilt, 180_000)
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

  it("prints a library warning once, on stderr, and keeps --json output parseable", async () => {
    dir = makeTempDir()
    const cache = cacheness({ directory: dir })
    // Random doubles do not compress: the value goes to a blob file.
    const broken = await cache.put({ broken: true }, new Float64Array(50_000).map(() => Math.random()))
    const healthy = await cache.put({ healthy: true }, { ok: 1 })
    await cache.close()
    const blobs = path.join(dir, "blobs")
    const [blob] = (fs.readdirSync(blobs, { recursive: true }) as Array<string>).filter((f) =>
      fs.statSync(path.join(blobs, f)).isFile()
    )
    const fd = fs.openSync(path.join(blobs, blob!), "r+")
    fs.writeSync(fd, Buffer.from("garbage"), 0, 7, 1000)
    fs.closeSync(fd)

    const damaged = await cli(["inspect", broken, "--dir", dir, "--json"])
    const warnings = damaged.stderr.split("\n").filter((line) => line.includes("failed its checksum"))
    assert.strictEqual(warnings.length, 1, damaged.stderr)
    assert.strictEqual(damaged.stdout, "", "a log line on stdout")

    const ok = await cli(["inspect", healthy, "--dir", dir, "--json"])
    assert.strictEqual(ok.status, 0, ok.stderr)
    assert.deepStrictEqual(JSON.parse(ok.stdout).value, { ok: 1 })
  }, 120_000)
})
