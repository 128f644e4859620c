/**
 * The `cacheness` command, as users run it: the BUILT bin (`dist/cli/main.js`) in a real child
 * process against real cache directories written by the library.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Schema from "effect/Schema"
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { type CacheKey, cacheness } from "../src/index.js"
import { pullThrough } from "../src/pullthrough/promise.js"
import * as SqlPullThrough from "../src/SqlPullThrough.js"
import { ensureBuilt, root } from "./support/build.js"
import { listFiles, makeTempDir } from "./support/tmp.js"

const bin = path.join(root, "dist/cli/main.js")

interface Run {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs the bin. Asynchronous, so a test can start independent runs together: process start-up
 * (loading Effect) dominates each run on this machine.
 */
const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Promise<Run> =>
  new Promise((resolve, reject) => {
    const { CACHENESS_DIR: _, ...inherited } = process.env
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: root,
      env: { ...inherited, CACHENESS_PROGRESS: "never", ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d))
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d))
    child.on("error", reject)
    child.on("close", (status) => resolve({ status, stdout, stderr }))
  })

const json = (run: Run): any => {
  assert.strictEqual(run.status, 0, run.stderr)
  return JSON.parse(run.stdout)
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A cache with known contents: small inline values, large blobs, namespaces, one expired entry. */
const seed = async (directory: string) => {
  const cache = cacheness({ directory, cleanupOnOpen: false })
  const keys = {
    scores: await cache.put({ model: "xgboost", version: "1.0" }, { results: [1, 2, 3] }, {
      description: "scores",
      namespace: "models",
      metadata: { owner: "ml" }
    }),
    blob1: await cache.put({ model: "rf", version: "2.0" }, new Uint8Array(randomBytes(40_000)), {
      namespace: "models"
    }),
    blob2: await cache.put({ dataset: "big", part: 1 }, randomBytes(30_000).toString("hex"), { namespace: "data" }),
    map: await cache.put({ n: 1n }, new Map([["k", 1n]])),
    expired: await cache.put({ url: "https://example.com/a" }, "page", { namespace: "http", ttl: 1 })
  }
  // The namespace is part of the key: the entry is read in its own.
  await cache.get({ model: "xgboost", version: "1.0" }, { namespace: "models" })
  await cache.get({ model: "xgboost", version: "1.0" }, { namespace: "models" })
  await cache.get({ model: "absent" })
  await cache.close()
  await sleep(5)
  return keys
}

const dirs: Array<string> = []
const freshDir = () => {
  const dir = makeTempDir()
  dirs.push(dir)
  return dir
}

beforeAll(ensureBuilt, 180_000)
afterAll(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true })
})

describe("cacheness CLI", () => {
  it("--help works at every level and lists every command; no command or a bad option is a usage error", async () => {
    const [help, listHelp, none, bogus, badSort] = await Promise.all([
      cli(["--help"]),
      cli(["list", "--help"]),
      cli([]),
      cli(["bogus"]),
      cli(["list", "--sort", "color"])
    ])
    assert.strictEqual(help.status, 0, help.stderr)
    for (
      const command of ["stats", "list", "inspect", "get", "verify", "cleanup", "prune", "clear", "pull-through stats"]
    ) {
      assert.include(help.stdout, `- ${command}`)
    }
    assert.strictEqual(listHelp.status, 0)
    assert.include(listHelp.stdout, "--sort")
    assert.strictEqual(none.status, 2)
    assert.include(none.stdout, "COMMANDS")
    assert.strictEqual(bogus.status, 2)
    assert.strictEqual(badSort.status, 2)
  })

  it("a directory without a cache is 'not found' (exit 3) and is not created", async () => {
    const missing = path.join(freshDir(), "nothing-here")
    const run = await cli(["stats", "--dir", missing])
    assert.strictEqual(run.status, 3)
    assert.include(run.stderr, `no cache at ${missing}`)
    assert.isFalse(fs.existsSync(missing))
  })

  describe("reading a cache", () => {
    let dir: string
    let keys: Awaited<ReturnType<typeof seed>>
    beforeAll(async () => {
      dir = freshDir()
      keys = await seed(dir)
    })

    it("stats: counts, sizes, hit rate, expired entries and breakdowns; --dir or CACHENESS_DIR", async () => {
      const [human, asJson] = await Promise.all([
        cli(["stats", "--dir", dir]),
        cli(["stats", "--json"], { CACHENESS_DIR: dir })
      ])
      assert.strictEqual(human.status, 0, human.stderr)
      assert.match(human.stdout, /^entries\s+5 \(1 expired: run `cacheness cleanup`\)$/m)
      assert.match(human.stdout, /^hit rate\s+66\.7%$/m)
      assert.match(human.stdout, /^size\s+\d+(\.\d)? KiB of 5\.0 GiB/m)
      assert.match(human.stdout, /^models\s+2\s+\d/m)
      const data = json(asJson)
      assert.strictEqual(data.entries, 5)
      assert.strictEqual(data.expired, 1)
      assert.strictEqual(data.hits, 2)
      assert.strictEqual(data.misses, 1)
      assert.strictEqual(data.directory, dir)
      assert.deepStrictEqual(data.byNamespace.map((g: any) => g.name).sort(), ["", "data", "http", "models"])
    })

    it("list: aligned table, sort, filters, limit, JSON", async () => {
      const runs = await Promise.all([
        cli(["list", "--dir", dir]),
        cli(["list", "--dir", dir, "--sort", "size", "--json"]),
        cli(["list", "--dir", dir, "--sort", "size", "--reverse", "--json"]),
        cli(["list", "--dir", dir, "-n", "models", "--json"]),
        cli(["list", "--dir", dir, "-p", "part=1", "-p", "dataset=big", "--json"]),
        cli(["list", "--dir", dir, "-p", "part=\"1\"", "--json"]),
        cli(["list", "--dir", dir, "--expired", "--json"]),
        cli(["list", "--dir", dir, "--limit", "2"]),
        cli(["list", "--dir", dir, "--param", "nonsense"])
      ])
      const [table, bySizeRun, reversedRun, modelsRun, paramsRun, stringParamRun, expiredRun, limited, badParam] = runs
      assert.strictEqual(table.status, 0, table.stderr)
      const lines = table.stdout.split("\n").filter((l) => /^[0-9a-f]{16} /.test(l) || l.startsWith("KEY"))
      assert.strictEqual(lines.length, 6)
      // SIZE is right-aligned: every row's size ends in the column where the header ends.
      const sizeEnd = lines[0].indexOf("SIZE") + 4
      for (const line of lines.slice(1)) assert.match(line.slice(0, sizeEnd), /\d (B|KiB)$/)
      assert.match(table.stdout, /5 entries, /)
      assert.match(table.stdout, /expired .+ ago/)

      const bySize = json(bySizeRun)
      assert.deepStrictEqual(
        bySize.map((e: any) => e.storedBytes),
        [...bySize.map((e: any) => e.storedBytes)].sort((a, b) => b - a)
      )
      assert.strictEqual(bySize[0].key, keys.blob2)
      assert.strictEqual(json(reversedRun).at(-1).key, keys.blob2)
      const models = json(modelsRun)
      assert.deepStrictEqual(models.map((e: any) => e.key).sort(), [keys.scores, keys.blob1].sort())
      const scores = models.find((e: any) => e.key === keys.scores)
      assert.deepStrictEqual(scores.params, { model: "xgboost", version: "1.0" })
      assert.deepStrictEqual(scores.metadata, { owner: "ml" })
      assert.strictEqual(scores.description, "scores")
      assert.deepStrictEqual(json(paramsRun).map((e: any) => e.key), [keys.blob2])
      assert.deepStrictEqual(json(stringParamRun), [])
      assert.deepStrictEqual(json(expiredRun).map((e: any) => e.key), [keys.expired])
      assert.strictEqual(limited.stdout.split("\n").filter((l) => /^[0-9a-f]{16} /.test(l)).length, 2)
      assert.include(limited.stdout, "(3 more not shown)")
      assert.strictEqual(badParam.status, 2)
      assert.include(badParam.stderr, "NAME=VALUE")
    })

    it("inspect: metadata, params and a value preview by key or unique prefix; exit 2 / 3 otherwise", async () => {
      const unknownPrefix = [..."0123456789abcdef"].map((c) => c.repeat(4)).find((p) =>
        !Object.values(keys).some((k) => k.startsWith(p))
      )!
      const [run, bytes, asJsonRun, notKey, absent, noPrefix, expired] = await Promise.all([
        cli(["inspect", keys.scores.slice(0, 8), "--dir", dir]),
        cli(["inspect", keys.blob1, "--dir", dir]),
        cli(["inspect", keys.map, "--dir", dir, "--json"]),
        cli(["inspect", "not-a-key", "--dir", dir]),
        cli(["inspect", "ffffffffffffffff", "--dir", dir]),
        cli(["inspect", unknownPrefix, "--dir", dir]),
        // an expired entry is gone as far as reads are concerned
        cli(["inspect", keys.expired, "--dir", dir])
      ])
      assert.strictEqual(run.status, 0, run.stderr)
      assert.match(run.stdout, new RegExp(`^key\\s+${keys.scores}$`, "m"))
      assert.match(run.stdout, /^description\s+scores$/m)
      assert.match(run.stdout, /^namespace\s+models$/m)
      assert.match(run.stdout, /"model": "xgboost"/)
      assert.match(run.stdout, /^value\s+\{ results: \[ 1, 2, 3 \] \}$/m)
      assert.match(bytes.stdout, /^value\s+40,000 bytes$/m)
      assert.match(bytes.stdout, /^\s+00000000 {2}([0-9a-f]{2} ){15}[0-9a-f]{2}/m)
      const asJson = json(asJsonRun)
      assert.deepStrictEqual(asJson.value, { k: "1" })
      assert.deepStrictEqual(asJson.params, { n: { $bigint: "1" } })
      assert.strictEqual(notKey.status, 2)
      assert.strictEqual(absent.status, 3)
      assert.strictEqual(noPrefix.status, 3)
      assert.strictEqual(expired.status, 3)
    })

    it("get: bytes to a file as they are, strings raw, other values as JSON on stdout; missing is exit 3", async () => {
      // no housekeeping: the other tests of this shared directory expect its expired entry
      const cache = cacheness({ directory: dir, cleanupOnOpen: false })
      const stored = (await cache.get(keys.blob1)) as Uint8Array
      await cache.close()
      const out = path.join(dir, "value.bin")
      const [toFile, scores, text, absent] = await Promise.all([
        cli(["get", keys.blob1, "--out", out, "--dir", dir]),
        cli(["get", keys.scores, "--dir", dir]),
        cli(["get", keys.blob2, "--dir", dir]),
        cli(["get", "ffffffffffffffff", "--dir", dir])
      ])
      assert.strictEqual(toFile.status, 0, toFile.stderr)
      assert.isTrue(Buffer.from(stored).equals(fs.readFileSync(out)))
      assert.deepStrictEqual(json(scores), { results: [1, 2, 3] })
      assert.strictEqual(text.stdout.length, 60_000)
      assert.strictEqual(absent.status, 3)
    })
  })

  it("inspect: an ambiguous prefix is a usage error naming the candidates", async () => {
    const dir = freshDir()
    const cache = cacheness({ directory: dir })
    const byPrefix = new Map<string, CacheKey>()
    let pair: [CacheKey, CacheKey] | undefined
    for (let i = 0; pair === undefined; i++) {
      const key = await cache.key({ i })
      const other = byPrefix.get(key.slice(0, 4))
      if (other !== undefined) {
        pair = [other, key]
        await cache.put(other, 1)
        await cache.put(key, 2)
      }
      byPrefix.set(key.slice(0, 4), key)
    }
    await cache.close()
    const run = await cli(["inspect", pair[0].slice(0, 4), "--dir", dir])
    assert.strictEqual(run.status, 2)
    assert.include(run.stderr, "ambiguous")
    assert.include(run.stderr, pair[0])
    assert.include(run.stderr, pair[1])
  })

  it("verify: exit 0 when clean, 1 with problems listed, --repair fixes them (progress on stderr)", async () => {
    const dir = freshDir()
    const keys = await seed(dir)
    assert.strictEqual((await cli(["verify", "--dir", dir])).status, 0)
    const blobs = listFiles(path.join(dir, "blobs"))
    assert.strictEqual(blobs.length, 2)
    const [first, second] = blobs.map((b) => path.join(dir, "blobs", b))
    const corrupt = fs.readFileSync(first)
    corrupt[100] ^= 0xff
    fs.writeFileSync(first, corrupt)
    fs.rmSync(second)
    fs.mkdirSync(path.join(dir, "blobs/ab/cd"), { recursive: true })
    fs.writeFileSync(path.join(dir, "blobs/ab/cd/abcd0000000000ff-orphan"), "left behind")
    // Older than the grace period that protects a put in flight (its row not committed yet).
    fs.utimesSync(
      path.join(dir, "blobs/ab/cd/abcd0000000000ff-orphan"),
      new Date(Date.now() - 2 * 3600_000),
      new Date(Date.now() - 2 * 3600_000)
    )

    const [found, asJson] = await Promise.all([cli(["verify", "--dir", dir]), cli(["verify", "--dir", dir, "--json"])])
    assert.strictEqual(found.status, 1)
    assert.match(found.stdout, /checked 5 entries: 3 problems/)
    assert.match(found.stdout, /checksum mismatch\s+[0-9a-f]{16}/)
    assert.match(found.stdout, /dangling \(blob missing\)\s+[0-9a-f]{16}/)
    assert.match(found.stdout, /orphan blob\s+abcd0000000000ff-orphan/)
    assert.include(found.stderr, "3 problems remain; run `cacheness verify --repair`")
    assert.strictEqual(asJson.status, 1)
    const report = JSON.parse(asJson.stdout)
    assert.strictEqual(report.remaining, 3)
    assert.deepStrictEqual([...report.checksumMismatches, ...report.dangling].sort(), [keys.blob1, keys.blob2].sort())

    const repaired = await cli(["verify", "--repair", "--dir", dir, "--json"], { CACHENESS_PROGRESS: "always" })
    assert.strictEqual(repaired.status, 0, repaired.stderr)
    assert.strictEqual(JSON.parse(repaired.stdout).repaired, 3)
    assert.match(repaired.stderr, /verify \[#+\] 100%\s+5\/5/)
    const [again, left] = await Promise.all([cli(["verify", "--dir", dir]), cli(["list", "--dir", dir, "--json"])])
    assert.strictEqual(again.status, 0)
    assert.deepStrictEqual(json(left).map((e: any) => e.key).sort(), [keys.scores, keys.map, keys.expired].sort())
  })

  it("cleanup removes expired entries only", async () => {
    const dir = freshDir()
    const keys = await seed(dir)
    const run = await cli(["cleanup", "--dir", dir])
    assert.strictEqual(run.status, 0, run.stderr)
    assert.include(run.stdout, "removed 1 entry (expired)")
    const [list, again] = await Promise.all([
      cli(["list", "--dir", dir, "--json"]),
      cli(["cleanup", "--dir", dir, "--json"])
    ])
    const left = json(list).map((e: any) => e.key)
    assert.strictEqual(left.length, 4)
    assert.notInclude(left, keys.expired)
    assert.deepStrictEqual(json(again), { removed: 0 })
  })

  it("prune --to SIZE evicts least-recently-used entries; a bad size changes nothing", async () => {
    const dir = freshDir()
    const keys = await seed(dir)
    const [bad, missing, nothing] = await Promise.all([
      cli(["prune", "--to", "lots", "--dir", dir]),
      cli(["prune", "--dir", dir]),
      cli(["prune", "--to", "1 GB", "--dir", dir])
    ])
    assert.strictEqual(bad.status, 2)
    assert.include(bad.stderr, "not a size")
    assert.strictEqual(missing.status, 2)
    assert.include(nothing.stdout, "nothing to evict")
    const entries = json(await cli(["list", "--dir", dir, "--json"]))
    assert.strictEqual(entries.length, 5)
    const total = entries.reduce((n: number, e: any) => n + e.storedBytes, 0)
    // blob1 is the least recently used (scores was put first, but read since): it goes alone
    const blob1 = entries.find((e: any) => e.key === keys.blob1)
    const result = json(await cli(["prune", "--to", String(total - blob1.storedBytes), "--dir", dir, "--json"]))
    assert.deepStrictEqual(result, { evicted: 1, bytes: blob1.storedBytes, totalBytes: total - blob1.storedBytes })
    const left = json(await cli(["list", "--dir", dir, "--json"])).map((e: any) => e.key)
    assert.sameMembers(left, [keys.scores, keys.blob2, keys.map, keys.expired])
    assert.strictEqual(listFiles(path.join(dir, "blobs")).length, 1)
  })

  it("clear needs --yes and otherwise changes nothing", async () => {
    const dir = freshDir()
    await seed(dir)
    const refused = await cli(["clear", "--dir", dir])
    assert.strictEqual(refused.status, 2)
    assert.include(refused.stderr, "refusing to remove 5 entries without --yes")
    assert.strictEqual(listFiles(path.join(dir, "blobs")).length, 2)
    const done = await cli(["clear", "--yes", "--dir", dir])
    assert.strictEqual(done.status, 0, done.stderr)
    assert.include(done.stdout, "removed 5 entries")
    assert.deepStrictEqual(listFiles(path.join(dir, "blobs")), [])
    assert.include((await cli(["list", "--dir", dir])).stdout, "the cache is empty")
  })

  it("pull-through stats reads any pull-through database's ledger", async () => {
    const dir = freshDir()
    const filename = path.join(dir, "prices.db")
    const Prices = SqlPullThrough.table({
      name: "prices",
      columns: Schema.Struct({ symbol: Schema.String, day: Schema.Number, close: Schema.Number }),
      primaryKey: ["symbol", "day"],
      range: { column: "day", step: 1 }
    })
    const prices = pullThrough({
      backend: "sqlite",
      filename,
      table: Prices,
      query: (q: { symbol: string; from: number; to: number }) => ({
        filters: { symbol: q.symbol },
        range: { start: q.from, end: q.to }
      }),
      fetch: ({ filters, range }) => {
        const rows = []
        for (let day = range.start; day <= range.end; day++) {
          rows.push({ symbol: filters.symbol!, day, close: day * 1.5 })
        }
        return rows
      }
    })
    await prices.get({ symbol: "AAPL", from: 1, to: 10 })
    await prices.get({ symbol: "AAPL", from: 20, to: 29 })
    await prices.get({ symbol: "MSFT", from: 1, to: 5 })
    await prices.close()
    fs.writeFileSync(path.join(dir, "data.bin"), "")

    const [run, asJson, noDb, absent, unknownEngine] = await Promise.all([
      cli(["pull-through", "stats", "--db", filename]),
      cli(["pull-through", "stats", "--db", filename, "--json"]),
      cli(["pull-through", "stats"]),
      cli(["pull-through", "stats", "--db", path.join(dir, "absent.db")]),
      cli(["pull-through", "stats", "--db", path.join(dir, "data.bin")])
    ])
    assert.strictEqual(run.status, 0, run.stderr)
    assert.match(run.stdout, /^TABLE\s+ROWS\s+INTERVALS\s+FRESH\s+FILTER SETS\s+LAST FETCH$/m)
    assert.match(run.stdout, /^prices\s+25\s+3\s+3\s+2\s+.+ ago$/m)
    const [stats] = json(asJson)
    assert.deepStrictEqual({ ...stats, lastFetchAt: typeof stats.lastFetchAt }, {
      table: "prices",
      rows: 25,
      intervals: 3,
      freshIntervals: 3,
      filterSets: 2,
      lastFetchAt: "string"
    })
    assert.strictEqual(noDb.status, 2)
    assert.strictEqual(absent.status, 3)
    assert.strictEqual(unknownEngine.status, 2)
  })
})
