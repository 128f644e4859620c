// A real full disk (a 3 MiB tmpfs; the test needs root to mount it and says so when it cannot):
// before the fix `stats`, `list`, `verify` and `invalidate` failed, because reads flushed the
// batched hit counts first and that write failed — so the cache could not free space itself. Now
// reads and removals work, a failed flush keeps its counts for later, and a full database fails
// a write with reason `NoSpace`, as a full blob directory does.
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Cache from "../src/Cache.js"
import { incompressible } from "../src/testing/CacheSuite.js"
import { captureWarnings } from "./support/logs.js"

const quiet = { cleanupOnOpen: false, cleanupInterval: "100000 days", maxSize: null, defaultTtl: null } as const

/** A small tmpfs of its own, unmounted when the scope closes; `null` when mounting is not allowed. */
const smallDisk = Effect.acquireRelease(
  Effect.sync(() => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cacheness-full-"))
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=3m", "tmpfs", dir], { stdio: "ignore" })
      return dir
    } catch {
      fs.rmdirSync(dir)
      return null
    }
  }),
  (dir) =>
    Effect.sync(() => {
      if (dir === null) return
      execFileSync("umount", ["-l", dir], { stdio: "ignore" })
      fs.rmSync(dir, { recursive: true, force: true })
    })
)

const canMount = (() => {
  try {
    return process.getuid?.() === 0 && (fs.existsSync("/bin/mount") || fs.existsSync("/usr/bin/mount"))
  } catch {
    return false
  }
})()
if (!canMount) console.warn("DiskFull.test.ts: skipped — mounting a tmpfs needs root and mount(8)")

describe.skipIf(!canMount)("a full disk", () => {
  it.scopedLive(
    "reads and removals work, writes fail with NoSpace, space freed by the cache is used again",
    () =>
      Effect.gen(function*() {
        const disk = yield* smallDisk
        if (disk === null) {
          console.warn("DiskFull.test.ts: tmpfs mount not permitted here; nothing tested")
          return
        }
        const directory = path.join(disk, "cache")
        const context = yield* Layer.build(Cache.layer({ directory, ...quiet }))
        const cache = Context.get(context, Cache.Cache)

        // Blobs until the blob directory is full.
        let blobs = 0
        for (;;) {
          const put = yield* Effect.either(cache.put({ blob: blobs }, incompressible(100_000)))
          if (put._tag === "Left") {
            assert.strictEqual(put.left._tag, "StorageError")
            assert.strictEqual((put.left as any).reason, "NoSpace")
            break
          }
          blobs++
          assert.isBelow(blobs, 100, "the disk never filled")
        }
        // Then inline values until the database cannot grow.
        let inline = 0
        for (;;) {
          const put = yield* Effect.either(cache.put({ inline: inline }, incompressible(500)))
          if (put._tag === "Left") {
            assert.strictEqual(put.left._tag, "MetadataError", put.left.message)
            assert.strictEqual((put.left as any).reason, "NoSpace", put.left.message)
            break
          }
          inline++
          assert.isBelow(inline, 100_000, "the database never filled")
        }
        assert.isAbove(blobs, 0)

        // Hits recorded in memory: every read below would flush them first.
        const { result, warnings } = yield* captureWarnings(Effect.gen(function*() {
          for (let i = 0; i < 20; i++) {
            assert.isTrue(Option.isSome(yield* cache.get({ inline: i % Math.max(1, inline) })))
          }
          const stats = yield* cache.stats()
          const listed = yield* cache.list({ limit: 10 })
          const report = yield* cache.verify()
          const removed = yield* cache.invalidate({ blob: 0 })
          const where = yield* cache.invalidateWhere({ params: { blob: 1 } })
          return { stats, listed, report, removed, where }
        }))
        assert.strictEqual(result.stats.entries, blobs + inline)
        assert.strictEqual(result.listed.length, 10)
        assert.strictEqual(result.report.checked, blobs + inline)
        assert.deepStrictEqual(
          [result.report.dangling, result.report.sizeMismatches, result.report.checksumMismatches],
          [[], [], []]
        )
        assert.isTrue(result.removed)
        assert.strictEqual(result.where, blobs > 1 ? 1 : 0)
        assert.isTrue(
          warnings.some((w) => w.includes("could not write batched hit counts")),
          "the failed flush is logged"
        )

        // The space freed is used again: a put succeeds and the kept hit counts are written.
        yield* cache.put({ after: 1 }, incompressible(50_000))
        assert.isTrue(Option.isSome(yield* cache.get({ after: 1 })))
        assert.strictEqual((yield* cache.stats()).entries, blobs + inline - (blobs > 1 ? 2 : 1) + 1)
      }),
    60_000
  )
})
