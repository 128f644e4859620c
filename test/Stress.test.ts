// Multi-process stress: 4 processes share one cache directory and hammer overlapping keys with
// put/get/invalidate/touch/has for ~3 s (20 s under `npm run test:stress`), logging every
// operation with start and end times. Afterwards the logs are checked against the register
// semantics of each key: no read returned a value never written for that key or one already
// superseded before the read began, no acknowledged write vanished unless a later put or
// invalidate may have replaced it, and the final state is one a last writer left.
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { cacheness } from "../src/index.js"
import { bundle, spawnBundled } from "./support/bundle.js"
import { identify } from "./support/crashValues.js"
import { allowed, type Entry, mutationsByKey } from "./support/history.js"
import { recordFigures, stress } from "./support/stress.js"
import { makeTempDir } from "./support/tmp.js"

const WORKERS = 4
const KEYS = 32
const DURATION_MS = stress ? 20_000 : 3_000

describe("the history checker", () => {
  // [op, key, start, end, result]: a put by writer 1 (seq 1) over [0, 10], then writer 2 (seq 2) over [20, 30].
  const history: Array<Entry> = [["put", 0, 0, 10, "1:1"], ["put", 0, 20, 30, "2:2"], ["invalidate", 0, 25, 40, "true"]]
  const [mutations] = mutationsByKey(history, 1)
  it("allows the values a read overlapping or following a mutation may see, and nothing older", () => {
    assert.deepStrictEqual([...allowed(mutations, 5, 8)].sort(), ["-", "1:1"]) // during the first put
    assert.deepStrictEqual([...allowed(mutations, 12, 15)].sort(), ["1:1"]) // between the puts
    assert.deepStrictEqual([...allowed(mutations, 22, 28)].sort(), ["-", "1:1", "2:2"]) // put and invalidate in flight
    assert.deepStrictEqual([...allowed(mutations, 50, 60)].sort(), ["-", "2:2"]) // after both: either order
    const [later] = mutationsByKey([...history, ["put", 0, 45, 46, "3:3"]], 1)
    assert.deepStrictEqual([...allowed(later, 50, 60)], ["3:3"]) // a put after both replaced them
  })
})

describe("multi-process stress", () => {
  let file: string
  let directory: string
  beforeAll(async () => {
    file = await bundle("test/support/stressWorker.ts")
    directory = makeTempDir()
  })
  afterAll(() => {
    fs.rmSync(directory, { recursive: true, force: true })
    fs.rmSync(file, { force: true })
  })

  it(
    `${WORKERS} processes × ${DURATION_MS / 1000} s of mixed operations on ${KEYS} shared keys: no lost or wrong value`,
    async () => {
      const logs = Array.from({ length: WORKERS }, (_, w) => path.join(directory, `log-${w}.json`))
      const children = logs.map((log, w) =>
        spawnBundled(file, [directory, String(w + 1), String(KEYS), String(DURATION_MS), log])
      )
      const outputs = children.map((child) => {
        let stdout = ""
        let stderr = ""
        child.stdout!.on("data", (d) => (stdout += d))
        child.stderr!.on("data", (d) => (stderr += d))
        const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
        // A worker that exits before it is ready fails the test with what it printed, not a timeout.
        const ready = new Promise<void>((resolve, reject) => {
          child.stdout!.on("data", () => stdout.includes("ready") && resolve())
          void exited.then((code) => reject(new Error(`worker exited (${code}) before ready: ${stderr}`)))
        })
        return { ready, exited, stderr: () => stderr }
      })
      try {
        // Start together, so the workers really overlap.
        await Promise.all(outputs.map((o) => o.ready))
        for (const child of children) child.stdin!.end("go\n")
        // A worker still running long after its time names itself and what it printed, not a timeout.
        let late: ReturnType<typeof setTimeout> | undefined
        const codes = await Promise.race([
          Promise.all(outputs.map((o) => o.exited)),
          new Promise<never>((_, reject) => {
            late = setTimeout(() => {
              const running = children.flatMap((c, w) => c.exitCode === null && c.signalCode === null ? [w] : [])
              reject(
                new Error(
                  `workers ${running.join(", ")} still running 60 s after their time: ${
                    running.map((w) => outputs[w].stderr()).join(" | ")
                  }`
                )
              )
            }, DURATION_MS + 60_000)
          })
        ]).finally(() => clearTimeout(late))
        codes.forEach((code, w) => assert.strictEqual(code, 0, outputs[w].stderr()))
      } finally {
        for (const child of children) child.kill("SIGKILL")
      }

      const entries: Array<Entry> = logs.flatMap((log) => JSON.parse(fs.readFileSync(log, "utf8")) as Array<Entry>)
      const errors = entries.filter((e) => e[0] === "error")
      assert.deepStrictEqual(errors.slice(0, 3), [], "no operation failed")
      const wrong = entries.filter((e) => e[4] === "wrong")
      assert.strictEqual(wrong.length, 0, "no read returned a value never written for its key")

      const byKey = mutationsByKey(entries, KEYS)

      let reads = 0
      let stale = 0
      const counts: Record<string, number> = {}
      for (const [op, key, start, end, result] of entries) {
        counts[op] = (counts[op] ?? 0) + 1
        if (op !== "get" && op !== "touch" && op !== "has") continue
        reads++
        const states = allowed(byKey[key], start, end)
        const ok = op === "get"
          ? states.has(result)
          : result === "true"
          ? [...states].some((s) => s !== "-")
          : states.has("-")
        if (!ok) {
          stale++
          assert.fail(
            `${op} of key ${key} over [${start}, ${end}] returned ${result}; allowed: ${[...states].join(", ")}`
          )
        }
      }

      // The final state of each key is one a last mutation left: acknowledged writes are not lost.
      const cache = cacheness({ directory, maxSize: null, defaultTtl: null, cleanupOnOpen: false })
      let lost = 0
      try {
        for (let key = 0; key < KEYS; key++) {
          const got = await cache.get({ stress: key })
          const id = got === undefined ? null : identify(key, got)
          const state = got === undefined ? "-" : id === null ? "wrong" : `${id.writer}:${id.seq}`
          const states = allowed(byKey[key], Infinity, Infinity)
          if (byKey[key].length === 0) states.add("-")
          if (!states.has(state)) lost++
          assert.isTrue(states.has(state), `key ${key} ends as ${state}; allowed: ${[...states].join(", ")}`)
        }
        const report = await cache.verify()
        assert.deepStrictEqual([report.orphans, report.dangling, report.sizeMismatches, report.checksumMismatches], [
          [],
          [],
          [],
          []
        ])
      } finally {
        await cache.close()
      }
      recordFigures("stress", {
        workers: WORKERS,
        seconds: DURATION_MS / 1000,
        keys: KEYS,
        operations: entries.length,
        ...counts,
        reads,
        staleOrWrongReads: stale + wrong.length,
        errors: errors.length,
        lost
      })
      assert.isAbove(counts.put ?? 0, 100)
    },
    stress ? 180_000 : 90_000
  )
})
