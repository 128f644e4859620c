/**
 * The python-diskcache peer of the benchmarks (`bench/peer/diskcache_bench.py` through
 * `diskcachePeer`): a workload's JSON comes back, and anything that cannot run is skipped with
 * the visible note rather than failing the bench. Real Python, real diskcache (Debian's
 * python3-diskcache / python3-numpy); the result checks skip when they are not installed.
 */
import { assert, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { diskcachePeer } from "../bench/support.js"

const installed = spawnSync("/usr/bin/python3", ["-c", "import diskcache, numpy"]).status === 0

const withLog = <A>(f: (directory: string) => A): { result: A; log: Array<string> } => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), "cacheness-benchpeer-"))
  const log: Array<string> = []
  const original = console.log
  console.log = (...args: Array<unknown>) => void log.push(args.join(" "))
  try {
    return { result: f(directory), log }
  } finally {
    console.log = original
    const left = fs.readdirSync(directory)
    fs.rmSync(directory, { recursive: true, force: true })
    assert.deepStrictEqual(left, [], "the peer's directory is removed")
  }
}

describe("diskcachePeer", () => {
  it("skips an unknown workload with the visible note and returns undefined", () => {
    const { log, result } = withLog((directory) => diskcachePeer("no-such-workload", directory))
    assert.strictEqual(result, undefined)
    assert.strictEqual(log.length, 1)
    assert.match(log[0]!, /^python-diskcache peer skipped: no-such-workload: /)
  })

  it.runIf(installed)("returns a workload's figures (throughput of a 4 KiB numpy array)", () => {
    const { log, result } = withLog((directory) =>
      diskcachePeer<Array<{ size: number; put: number; get: number }>>("throughput", directory, ["4096,16384", "3,3"])
    )
    assert.deepStrictEqual(log, [])
    assert.deepStrictEqual(result?.map((p) => p.size), [4096, 16384])
    for (const p of result!) assert.isTrue(p.put > 0 && p.get > 0)
  })
})
