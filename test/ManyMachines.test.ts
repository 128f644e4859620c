// The many-machines rig: M = 3 simulated machines (each its own local directory and, per process,
// its own memory), N = 6 processes in all, sharing one PostgreSQL metadata schema and one S3
// bucket (s3rver in this process), for 20 s of mixed put / get / overwrite / invalidate / has /
// memoised calls with self-verifying values. Afterwards the logs are checked:
// - no operation failed and no read returned a value never written for its key ("wrong");
// - every read is allowed by the register semantics of its key (test/support/history.ts): it
//   returned what a put or invalidate that had begun before the read ended, and had not certainly
//   been replaced before it began, left — so no acknowledged write is lost and no stale value read;
// - every invalidation is seen by every other machine's next read of the key (when no put raced it);
// - each memoised key was computed once across all machines, and every call got that computation;
// - the final state of each key is one its last mutations left, and `verify` finds no row whose
//   object is missing or damaged.
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { cacheness } from "../src/index.js"
import { identify } from "./support/crashValues.js"
import { allowed, type Entry, mutationsByKey } from "./support/history.js"
import { pgDescribe, pgSchema, pgUrl } from "./support/postgres.js"
import { runRig, type WorkerLog } from "./support/rig.js"
import { bucket, credentials, type S3Server, startS3 } from "./support/s3.js"
import { recordFigures } from "./support/stress.js"
import { makeTempDir } from "./support/tmp.js"

const MACHINES = 3
const PROCESSES = 6
const KEYS = 24
const MEMO_KEYS = 40
const DURATION_MS = 20_000
const PREFIX = "rig/"

/** "machine 2 / process 5": who did an operation, for messages. */
const who = (w: WorkerLog) => `machine ${w.machine} / process ${w.writer}`
const show = ([op, key, start, end, result]: Entry) =>
  `${op} of key ${key} over [${start}, ${end}] µs returned ${JSON.stringify(result)}`

pgDescribe("many machines: PostgreSQL metadata + S3 blobs", () => {
  const schema = pgSchema("rig")
  let server: S3Server
  let root: string
  beforeAll(async () => {
    server = await startS3()
    root = makeTempDir()
  })
  afterAll(async () => {
    await server?.stop()
    if (root !== undefined) fs.rmSync(root, { recursive: true, force: true })
  })

  it(
    `${MACHINES} machines × ${PROCESSES} processes × ${
      DURATION_MS / 1000
    } s: nothing lost, nothing wrong, invalidations seen, memoised once`,
    async () => {
      const workers = await runRig({
        processes: PROCESSES,
        machines: MACHINES,
        keys: KEYS,
        memoKeys: MEMO_KEYS,
        durationMs: DURATION_MS,
        root,
        pgSchema: schema,
        s3Endpoint: server.endpoint,
        s3Prefix: PREFIX
      })
      const tagged = workers.flatMap((w) => w.log.map((entry) => ({ w, entry })))
      const entries = tagged.map((t) => t.entry)

      const errors = tagged.filter((t) => t.entry[0] === "error")
      assert.deepStrictEqual(errors.slice(0, 3).map((t) => `${who(t.w)}: ${t.entry[4]}`), [], "no operation failed")
      const wrong = tagged.filter((t) => t.entry[4] === "wrong")
      assert.deepStrictEqual(
        wrong.slice(0, 3).map((t) => `${who(t.w)}: ${show(t.entry)}`),
        [],
        "no call returned a value never written for its key"
      )

      // Reads against the register semantics of each key.
      const byKey = mutationsByKey(entries, KEYS)
      const bad: Array<string> = []
      let reads = 0
      for (const { entry, w } of tagged) {
        const [op, key, start, end, result] = entry
        if (op !== "get" && op !== "has") continue
        reads++
        const states = allowed(byKey[key], start, end)
        const ok = op === "get" ? states.has(result) : result === "true"
          ? [...states].some((s) => s !== "-")
          : states.has("-")
        if (!ok) bad.push(`${who(w)}: ${show(entry)}; allowed: ${[...states].join(", ")}`)
      }
      assert.deepStrictEqual(bad.slice(0, 5), [], `${bad.length} of ${reads} reads saw a lost or stale value`)

      // Each invalidation, by the next read of its key on every other machine.
      let invalidationChecks = 0
      const unseen: Array<string> = []
      const puts = tagged.filter((t) => t.entry[0] === "put")
      for (const inv of tagged.filter((t) => t.entry[0] === "invalidate")) {
        const [, key, invStart, invEnd] = inv.entry
        for (const other of workers.filter((w) => w.machine !== inv.w.machine)) {
          const next = other.log.find((e) => e[0] === "get" && e[1] === key && e[2] > invEnd)
          if (next === undefined) continue
          // A put of the key that began after the invalidation did (or overlapped it) may win.
          const raced = puts.some((p) => p.entry[1] === key && p.entry[2] < next[3] && p.entry[3] > invStart)
          if (raced) continue
          invalidationChecks++
          if (next[4] !== "-") {
            unseen.push(`${who(inv.w)} invalidated key ${key} at ${invEnd} µs; ${who(other)} then: ${show(next)}`)
          }
        }
      }
      assert.deepStrictEqual(unseen.slice(0, 5), [], `${unseen.length} invalidations not seen by another machine`)

      // Memoised calls: one computation per key across all machines, and every call returned it.
      const computed = new Map<number, Array<string>>()
      for (const { entry, w } of tagged) {
        if (entry[0] === "computed") computed.set(entry[1], [...(computed.get(entry[1]) ?? []), who(w)])
      }
      const twice = [...computed].filter(([, by]) => by.length > 1).map(([n, by]) => `key ${n}: ${by.join(", ")}`)
      assert.deepStrictEqual(twice.slice(0, 5), [], "a memoised key was computed more than once")
      const memoCalls = tagged.filter((t) => t.entry[0] === "memo")
      const mismatched = memoCalls.filter(({ entry }) => {
        const by = computed.get(entry[1])
        return by === undefined || !by[0].endsWith(`process ${entry[4]}`)
      })
      assert.deepStrictEqual(
        mismatched.slice(0, 3).map((t) => `${who(t.w)}: ${show(t.entry)}; computed by ${computed.get(t.entry[1])}`),
        [],
        "a memoised call returned another computation than the one stored"
      )

      // The final state of each key, read by a fresh cache: one a last mutation left.
      const cache = cacheness({
        metadataBackend: "postgres",
        postgres: { url: pgUrl, schema },
        blobs: "s3",
        s3: {
          bucket,
          prefix: PREFIX,
          endpoint: server.endpoint,
          forcePathStyle: true,
          credentials: { ...credentials }
        },
        maxSize: null,
        defaultTtl: null,
        cleanupOnOpen: false
      })
      try {
        for (let key = 0; key < KEYS; key++) {
          const got = await cache.get({ rig: key })
          const id = got === undefined ? null : identify(key, got)
          const state = got === undefined ? "-" : id === null ? "wrong" : `${id.writer}:${id.seq}`
          const states = allowed(byKey[key], Infinity, Infinity)
          if (byKey[key].length === 0) states.add("-")
          assert.isTrue(states.has(state), `key ${key} ends as ${state}; allowed: ${[...states].join(", ")}`)
        }
        const report = await cache.verify()
        assert.deepStrictEqual(
          { dangling: report.dangling, sizes: report.sizeMismatches, checksums: report.checksumMismatches },
          { dangling: [], sizes: [], checksums: [] },
          "every row's object is there and intact"
        )
      } finally {
        await cache.close()
      }

      const counts: Record<string, number> = {}
      for (const [op] of entries) counts[op] = (counts[op] ?? 0) + 1
      const operations = entries.filter((e) => e[0] !== "computed").length
      recordFigures("many-machines", {
        machines: MACHINES,
        processes: PROCESSES,
        seconds: DURATION_MS / 1000,
        keys: KEYS,
        memoKeys: MEMO_KEYS,
        operations,
        opsPerSecond: Math.round(operations / (DURATION_MS / 1000)),
        ...counts,
        reads,
        invalidationChecks,
        errors: errors.length
      })
      // The run did what it claims: enough of each kind to mean something.
      assert.isAbove(counts.put ?? 0, 100)
      assert.isAbove(counts.invalidate ?? 0, 20)
      assert.isAbove(counts.memo ?? 0, 50)
      assert.isAbove(invalidationChecks, 10)
      assert.isAbove(computed.size, MEMO_KEYS / 2)
      assert.isTrue(fs.existsSync(path.join(root, "machine-2")), "three machine directories")
    },
    180_000
  )
})

describe("the rig's checks", () => {
  it("a read after an invalidation that returns the old value is reported", () => {
    const history: Array<Entry> = [["put", 0, 0, 10, "1:1"], ["invalidate", 0, 20, 30, "true"], [
      "get",
      0,
      40,
      50,
      "1:1"
    ]]
    const [mutations] = mutationsByKey(history, 1)
    assert.isFalse(allowed(mutations, 40, 50).has("1:1"))
    assert.isTrue(allowed(mutations, 40, 50).has("-"))
  })
})
