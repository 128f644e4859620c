/**
 * Stale-while-revalidate across processes (issue 19): two real processes sharing a cache directory
 * read the same stale key at the same instant; both answer at once with the stale value, and the
 * lease lets exactly one of them recompute it in the background.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { cacheness } from "../src/index.js"
import { runChild } from "./support/child.js"
import { tempDir } from "./support/tmp.js"

const lines = (file: string) =>
  fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim().split("\n").filter(Boolean) : []

describe("stale-while-revalidate across processes", () => {
  it.live(
    "two processes read a stale key: both get the stale value, one recomputation in total",
    () =>
      Effect.gen(function*() {
        const directory = yield* tempDir
        const countFile = path.join(directory, "runs.txt")
        // The seed: stored by this process, stale a second later.
        yield* Effect.promise(async () => {
          const cache = cacheness({ directory })
          const lookup = cache.memoize(async (n: number) => ({ answer: n * 6, by: "seed" }), {
            name: "stale-shared",
            ttl: 1_000,
            staleWhileRevalidate: "5 minutes"
          })
          assert.deepStrictEqual(await lookup(7), { answer: 42, by: "seed" })
          await cache.close()
        })
        yield* Effect.sleep("1200 millis")
        // Both read at once: each says when its cache is open, and the start comes after both have.
        const goFile = path.join(directory, "go")
        const children = [0, 1].map(() => runChild("test/support/staleWorker.ts", [directory, countFile, goFile]))
        const waitUntil = Date.now() + 60_000
        while (lines(`${countFile}.ready`).length < 2 && Date.now() < waitUntil) yield* Effect.sleep("10 millis")
        fs.writeFileSync(goFile, "")
        const results = yield* Effect.promise(() => Promise.all(children))
        const recomputedBy = lines(countFile)
        assert.strictEqual(recomputedBy.length, 1, `one recomputation in total, got: ${recomputedBy.join(", ")}`)
        for (const r of results) {
          assert.strictEqual(r.code, 0, r.stderr)
          const { first, latest } = JSON.parse(r.stdout.trim())
          assert.deepStrictEqual(first, { answer: 42, by: "seed" }, "answered at once with the stale value")
          assert.deepStrictEqual(latest, { answer: 42, by: recomputedBy[0] }, "then the value the other recomputed")
        }
      }).pipe(Effect.scoped),
    90_000
  )
})
