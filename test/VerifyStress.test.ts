// verify({ repair: true }) runs continuously (alternating with a plain verify) against 3 writer
// processes re-storing values of their own keys — mostly identical bytes, sometimes a new
// version — on one cache directory, for ~4 s (30 s under `npm run test:stress`). Nothing is
// damaged, so every problem reported or repaired is a false one: 0 allowed. Afterwards each key
// must hold exactly the value its writer last acknowledged: 0 acknowledged puts lost.
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { cacheness } from "../src/index.js"
import { bundle, spawnBundled } from "./support/bundle.js"
import { isValue } from "./support/repairValues.js"
import { recordFigures, stress } from "./support/stress.js"
import { makeTempDir } from "./support/tmp.js"

const WRITERS = 3
const KEYS = 40
const DURATION_MS = stress ? 30_000 : 4_000

interface WriterLog {
  readonly acked: ReadonlyArray<number>
  readonly puts: number
  readonly restores: number
  readonly errors: ReadonlyArray<string>
  readonly errorCount: number
}

describe("verify repair under write load", () => {
  let file: string
  let directory: string
  beforeAll(async () => {
    file = await bundle("test/support/repairWriter.ts")
    directory = makeTempDir()
  })
  afterAll(() => {
    fs.rmSync(directory, { recursive: true, force: true })
    fs.rmSync(file, { force: true })
  })

  it(
    `repair runs continuously against ${WRITERS} writers × ${
      DURATION_MS / 1000
    } s: no acknowledged put lost, no false repair`,
    async () => {
      const logs = Array.from({ length: WRITERS }, (_, w) => path.join(directory, `writer-${w + 1}.json`))
      const children = logs.map((log, w) =>
        spawnBundled(file, [directory, String(w + 1), String(KEYS), String(DURATION_MS), log])
      )
      const outputs = children.map((child) => {
        let stdout = ""
        let stderr = ""
        child.stdout!.on("data", (d) => (stdout += d))
        child.stderr!.on("data", (d) => (stderr += d))
        const ready = new Promise<void>((resolve) =>
          child.stdout!.on("data", () => stdout.includes("ready") && resolve())
        )
        const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
        return { ready, exited, stderr: () => stderr }
      })
      const cache = cacheness({ directory, maxSize: null, defaultTtl: null, cleanupOnOpen: false })
      const figures = {
        writers: WRITERS,
        seconds: DURATION_MS / 1000,
        keys: WRITERS * KEYS,
        verifyRuns: 0,
        repairRuns: 0,
        entriesChecked: 0,
        falseReports: 0,
        falseRepairs: 0,
        puts: 0,
        restores: 0,
        writeErrors: 0,
        lost: 0
      }
      const falseFindings: Array<string> = []
      try {
        await Promise.all(outputs.map((o) => o.ready))
        for (const child of children) child.stdin!.end("go\n")
        let running = true
        const all = Promise.all(outputs.map((o) => o.exited)).then((codes) => {
          running = false
          return codes
        })
        for (let run = 0; running; run++) {
          const repair = run % 2 === 0
          const report = await cache.verify({ repair })
          figures.entriesChecked += report.checked
          const found = report.orphans.length + report.dangling.length + report.sizeMismatches.length +
            report.checksumMismatches.length
          if (repair) {
            figures.repairRuns++
            figures.falseRepairs += report.repaired
          } else figures.verifyRuns++
          figures.falseReports += found
          if (found > 0 || report.repaired > 0) {
            falseFindings.push(
              JSON.stringify({ run, repair, ...report, checked: undefined })
            )
          }
        }
        const codes = await all
        codes.forEach((code, w) => assert.strictEqual(code, 0, outputs[w]!.stderr()))
      } finally {
        for (const child of children) child.kill("SIGKILL")
      }
      try {
        for (let w = 0; w < WRITERS; w++) {
          const log = JSON.parse(fs.readFileSync(logs[w]!, "utf8")) as WriterLog
          figures.puts += log.puts
          figures.restores += log.restores
          figures.writeErrors += log.errorCount
          assert.deepStrictEqual(log.errors, [], `writer ${w + 1}: no put failed`)
          for (let key = 0; key < KEYS; key++) {
            const version = log.acked[key]!
            if (version === 0) continue
            const got = await cache.get({ repair: w + 1, key })
            if (!isValue(got, w + 1, key, version)) figures.lost++
          }
        }
        const final = await cache.verify()
        assert.deepStrictEqual([final.orphans, final.dangling, final.sizeMismatches, final.checksumMismatches], [
          [],
          [],
          [],
          []
        ])
        const stats = await cache.stats()
        assert.strictEqual(stats.entries, (await cache.list()).length, "counters agree with the rows")
      } finally {
        await cache.close()
      }
      recordFigures("verify-repair", figures)
      assert.deepStrictEqual(falseFindings.slice(0, 3), [], "no false report or repair")
      assert.strictEqual(figures.lost, 0, "no acknowledged put lost")
      assert.isAtLeast(figures.repairRuns, 1)
      assert.isAbove(figures.restores, 20)
    },
    stress ? 180_000 : 90_000
  )
})
