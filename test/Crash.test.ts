// Crash safety: a child process writing to the cache is killed with SIGKILL at random moments;
// after every kill the cache must open, show only whole values that were written for their key,
// keep every acknowledged write (a process crash is not a power loss), and `verify` must find at
// most orphan blobs, which `verify({ repair: true })` removes. 8 kills in `npm test`, 100 under
// `npm run test:stress`.
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import * as BlobStoreFileSystem from "../src/blob/fileSystem.js"
import { cacheness } from "../src/index.js"
import { bundle, spawnBundled } from "./support/bundle.js"
import { identify } from "./support/crashValues.js"
import { recordFigures, sleep, stress } from "./support/stress.js"
import { listFiles, makeTempDir } from "./support/tmp.js"

const TRIALS = stress ? 100 : 8
const KEYS = 24

/** What a key holds: a value (writer = trial, seq) or nothing. */
type State = { readonly writer: number; readonly seq: number } | null

interface Op {
  readonly op: "put" | "invalidate"
  readonly key: number
  readonly seq: number
  acked: boolean
}

/**
 * Starts a writer, which loads and then waits; `killAfter` lets it open the cache and work, then
 * kills it and returns the operations it began (acknowledged or not).
 */
const startWriter = (file: string, directory: string, trial: number) => {
  const child = spawnBundled(file, [directory, String(trial), String(KEYS)])
  const ops: Array<Op> = []
  let buffered = ""
  let ready = false
  let stderr = ""
  const readyAt = new Promise<void>((resolve) => {
    child.stdout!.on("data", (chunk: Buffer) => {
      buffered += chunk.toString()
      const lines = buffered.split("\n")
      buffered = lines.pop()!
      for (const line of lines) {
        if (line === "ready") {
          ready = true
          resolve()
        } else if (line === "a") ops[ops.length - 1].acked = true
        else {
          const [, op, key, seq] = line.split(" ")
          ops.push({ op: op as Op["op"], key: Number(key), seq: Number(seq), acked: false })
        }
      }
    })
  })
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)))
  const killAfter = async () => {
    child.stdin!.write("go\n")
    // One trial in ten is killed while the cache is still opening (migrations, first statements).
    if (trial % 10 === 3) await Promise.race([readyAt, sleep(Math.random() * 300)])
    else {
      await Promise.race([readyAt, exited])
      await sleep(Math.random() * 300)
    }
    child.kill("SIGKILL")
    const signal = await exited
    assert.strictEqual(signal, "SIGKILL", `writer exited before it was killed: ${stderr}`)
    return { ops, ready }
  }
  return { killAfter, kill: () => child.kill("SIGKILL") }
}

describe("crash safety (SIGKILL during writes)", () => {
  let file: string
  let directory: string
  beforeAll(async () => {
    file = await bundle("test/support/crashWriter.ts")
    directory = makeTempDir()
  })
  afterAll(() => {
    fs.rmSync(directory, { recursive: true, force: true })
    fs.rmSync(file, { force: true })
  })

  it(
    `${TRIALS} kills: every visible entry is whole and was written for its key; no acknowledged write lost`,
    async () => {
      const model: Array<State> = Array.from({ length: KEYS }, () => null)
      const figures = {
        trials: TRIALS,
        killedWhileOpening: 0,
        operations: 0,
        acknowledged: 0,
        inFlightApplied: 0,
        inFlightLost: 0,
        orphanBlobs: 0,
        tempFiles: 0,
        lost: 0,
        wrong: 0
      }
      let next = startWriter(file, directory, 1)
      try {
        for (let trial = 1; trial <= TRIALS; trial++) {
          const { ops, ready } = await next.killAfter()
          // The next writer loads while this one's results are checked; it touches nothing until "go".
          if (trial < TRIALS) next = startWriter(file, directory, trial + 1)
          if (!ready) figures.killedWhileOpening++
          figures.operations += ops.length
          const inFlight = ops.find((op) => !op.acked)
          for (const op of ops) {
            if (!op.acked) break
            figures.acknowledged++
            model[op.key] = op.op === "put" ? { writer: trial, seq: op.seq } : null
          }

          const cache = cacheness({ directory, maxSize: null, defaultTtl: null, cleanupOnOpen: false })
          try {
            const listed = (await cache.list()).length
            let visible = 0
            for (let key = 0; key < KEYS; key++) {
              const got = await cache.get({ crash: key })
              let state: State = null
              if (got !== undefined) {
                visible++
                const id = identify(key, got)
                if (id === null) {
                  figures.wrong++
                  assert.fail(`trial ${trial}: key ${key} holds a value never written for it`)
                }
                state = { writer: id.writer, seq: id.seq }
              }
              const same = (a: State, b: State) =>
                a === null ? b === null : b !== null && a.writer === b.writer && a.seq === b.seq
              const fromInFlight: State | undefined = inFlight?.key === key
                ? inFlight.op === "put" ? { writer: trial, seq: inFlight.seq } : null
                : undefined
              if (same(state, model[key])) {
                if (fromInFlight !== undefined && !same(fromInFlight, model[key])) figures.inFlightLost++
              } else if (fromInFlight !== undefined && same(state, fromInFlight)) {
                figures.inFlightApplied++
              } else {
                figures.lost++
                assert.fail(
                  `trial ${trial}: key ${key} shows ${JSON.stringify(state)}, expected ${
                    JSON.stringify(model[key])
                  } (acknowledged) or the in-flight ${JSON.stringify(fromInFlight)}`
                )
              }
              model[key] = state
            }
            assert.strictEqual(
              visible,
              listed,
              `trial ${trial}: every listed entry must read back (none dropped as broken)`
            )

            // The killed writer is gone: its blobs are aged past the grace period that protects a put
            // in flight, so verify judges them now.
            const longAgo = new Date(Date.now() - 2 * 3600_000)
            for (
              const file of listFiles(path.join(directory, "blobs")).filter((f) => !path.basename(f).startsWith("."))
            ) {
              fs.utimesSync(path.join(directory, "blobs", file), longAgo, longAgo)
            }
            const report = await cache.verify()
            assert.deepStrictEqual(
              [report.dangling, report.sizeMismatches, report.checksumMismatches],
              [[], [], []],
              `trial ${trial}`
            )
            figures.orphanBlobs += report.orphans.length
            await cache.verify({ repair: true })
            const clean = await cache.verify()
            assert.deepStrictEqual(clean.orphans, [], `trial ${trial}: repair removes orphans`)

            const blobs = path.join(directory, "blobs")
            const temps = await Effect.runPromise(
              Effect.provide(BlobStoreFileSystem.tempFiles(blobs), NodeFileSystem.layer)
            )
            figures.tempFiles += temps.length
            await Effect.runPromise(Effect.provide(BlobStoreFileSystem.cleanupTemp(blobs, 0), NodeFileSystem.layer))
            assert.deepStrictEqual(
              await Effect.runPromise(Effect.provide(BlobStoreFileSystem.tempFiles(blobs), NodeFileSystem.layer)),
              []
            )

            const db = new Database(path.join(directory, "cacheness.db"), { readonly: true })
            try {
              assert.strictEqual(db.pragma("integrity_check", { simple: true }), "ok", `trial ${trial}`)
              const actual = db.prepare(
                "SELECT count(*) AS entries, coalesce(sum(stored_bytes), 0) AS bytes FROM cacheness_entries"
              ).get()
              const counted = db.prepare(
                // The counters row counts the rows up to its mark, the rows above it are added on reading.
                "SELECT c.entries + (SELECT count(*) FROM cacheness_entries WHERE rowid > c.counted_through) AS entries, " +
                  "c.bytes + (SELECT coalesce(sum(stored_bytes), 0) FROM cacheness_entries WHERE rowid > c.counted_through) AS bytes " +
                  "FROM cacheness_counters c"
              ).get()
              assert.deepStrictEqual(counted, actual, `trial ${trial}: counters match the rows`)
            } finally {
              db.close()
            }
          } finally {
            await cache.close()
          }
        }
      } finally {
        next.kill()
      }
      recordFigures("crash", figures)
      assert.strictEqual(figures.lost + figures.wrong, 0)
      // The test must actually have crashed writers mid-work, not only idle ones.
      assert.isAbove(figures.acknowledged, TRIALS)
    },
    stress ? 600_000 : 120_000
  )
})
