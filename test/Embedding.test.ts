/**
 * The library inside someone else's program: real child processes that never call `close()` must
 * still exit (and what they wrote must be there for the next one), routine work prints nothing,
 * `cacheness()` looks where `CACHENESS_DIR` says, and a missing optional PostgreSQL driver is a
 * readable `ConfigError`.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { cacheness } from "../src/index.js"
import * as PgClientLoader from "../src/shared/pgClient.js"
import { root } from "./support/build.js"
import { makeTempDir } from "./support/tmp.js"

const index = path.join(root, "src/index.ts")
/** tsx by absolute URL: the scripts run outside the repository, where "tsx" does not resolve. */
const tsx = pathToFileURL(path.join(root, "node_modules/tsx/dist/loader.mjs")).href

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  readonly ms: number
}

/** Runs a TypeScript program (through tsx) in `cwd`; killed after `timeout` ms (then `code` is null). */
const runScript = (source: string, cwd: string, env: Record<string, string> = {}, timeout = 30_000): Promise<Run> => {
  const file = path.join(cwd, `script-${Math.random().toString(36).slice(2)}.mts`)
  fs.writeFileSync(file, source)
  const started = Date.now()
  return new Promise((resolve, reject) => {
    const { CACHENESS_DIR: _, ...inherited } = process.env
    const child = spawn(process.execPath, ["--import", tsx, file], {
      cwd,
      env: { ...inherited, ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d))
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeout)
    child.on("error", reject)
    child.on("close", (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr, ms: Date.now() - started })
    })
  })
}

const dirs: Array<string> = []
const tempDir = () => {
  const dir = makeTempDir()
  dirs.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true })
})

describe("a script that never closes its cache", () => {
  it("exits by itself after put/get, memoize and @memoized, and the next process reads what it wrote", async () => {
    const cwd = tempDir()
    const writer = `
import { cacheness, memoize, memoized } from ${JSON.stringify(index)}
const cache = cacheness({ directory: "./explicit", cleanupInterval: "1 second" })
await cache.put({ name: "a" }, { value: 1 })
await cache.put({ name: "big" }, new Float64Array(50_000).fill(2))
console.log("get", JSON.stringify(await cache.get({ name: "a" })))
const double = memoize(async (x: number) => x * 2, { name: "double" })
console.log("memo", await double(21), await double(21))
class Model {
  @memoized({ name: "fit" })
  async fit(n: number) { return n + 1 }
}
console.log("decorated", await new Model().fit(1))
`
    // The default cache of memoize is CACHENESS_DIR (here ./default).
    const first = await runScript(writer, cwd, { CACHENESS_DIR: path.join(cwd, "default") }, 45_000)
    assert.strictEqual(first.code, 0, `did not exit by itself (${first.ms} ms): ${first.stderr}`)
    assert.include(first.stdout, `get {"value":1}`)
    assert.include(first.stdout, "memo 42 42")
    assert.include(first.stdout, "decorated 2")

    const reader = `
import { cacheness, memoize } from ${JSON.stringify(index)}
const cache = cacheness({ directory: "./explicit" })
console.log("a", JSON.stringify(await cache.get({ name: "a" })), (await cache.get<Float64Array>({ name: "big" }))?.length)
// Hit counts are batched in memory: the exit hook must have written them.
console.log("hits", (await cache.stats()).hits)
let calls = 0
const double = memoize(async (x: number) => (calls++, x * 2), { name: "double" })
console.log("memo", await double(21), "calls", calls)
`
    const second = await runScript(reader, cwd, { CACHENESS_DIR: path.join(cwd, "default") }, 45_000)
    assert.strictEqual(second.code, 0, second.stderr)
    assert.include(second.stdout, `a {"value":1} 50000`)
    assert.match(second.stdout, /hits [1-9]/)
    assert.include(second.stdout, "memo 42 calls 0")
  }, 120_000)
})

describe("logging inside an app", () => {
  it("routine work prints nothing; logLevel shows it; a bad logLevel is a ConfigError", async () => {
    const cwd = tempDir()
    const source = (options: string) => `
import { cacheness } from ${JSON.stringify(index)}
const cache = cacheness({ directory: "./c", ${options} })
await cache.put({ a: 1 }, "short-lived", { ttl: "1 millis" })
await cache.put({ a: 2 }, "kept")
await new Promise((r) => setTimeout(r, 20))
await cache.cleanupExpired()
await cache.clear()
await cache.close()
// Reopened: the expired-entry cleanup on open runs too.
const again = cacheness({ directory: "./c", ${options} })
await again.put({ a: 3 }, "x", { ttl: "1 millis" })
await again.close()
await new Promise((r) => setTimeout(r, 20))
const third = cacheness({ directory: "./c", ${options} })
await third.stats()
await third.close()
console.log("done")
`
    const quiet = await runScript(source(""), cwd)
    assert.strictEqual(quiet.code, 0, quiet.stderr)
    assert.strictEqual(quiet.stdout, "done\n")
    assert.strictEqual(quiet.stderr, "")

    const verbose = await runScript(source(`logLevel: "Debug"`), cwd)
    assert.strictEqual(verbose.code, 0, verbose.stderr)
    assert.match(verbose.stdout, /level=DEBUG .*cleared 1 entries/)

    const bad = cacheness({ directory: path.join(cwd, "bad"), logLevel: "Loud" as any })
    const error: any = await bad.stats().then(() => undefined, (e) => e)
    assert.strictEqual(error?._tag, "ConfigError")
    assert.include(error.message, "logLevel")
    assert.isFalse(fs.existsSync(path.join(cwd, "bad")))

    const unknown = cacheness({ directory: path.join(cwd, "bad"), loglevel: "Debug" } as any)
    assert.strictEqual((await unknown.stats().then(() => undefined, (e) => e))?._tag, "ConfigError")
    assert.isFalse(fs.existsSync(path.join(cwd, "bad")))
  }, 120_000)
})

describe("cacheness()", () => {
  it("uses CACHENESS_DIR when no directory is given, and an explicit directory over it", async () => {
    const cwd = tempDir()
    const source = `
import { cacheness } from ${JSON.stringify(index)}
const cache = cacheness()
await cache.put({ k: 1 }, "v")
await cache.close()
const explicit = cacheness({ directory: "./explicit" })
await explicit.put({ k: 2 }, "w")
await explicit.close()
`
    const run = await runScript(source, cwd, { CACHENESS_DIR: path.join(cwd, "from-env") })
    assert.strictEqual(run.code, 0, run.stderr)
    assert.isTrue(fs.existsSync(path.join(cwd, "from-env", "cacheness.db")))
    assert.isFalse(fs.existsSync(path.join(cwd, ".cacheness")))
    assert.isTrue(fs.existsSync(path.join(cwd, "explicit", "cacheness.db")))
  }, 60_000)
})

describe("PostgreSQL without @effect/sql-pg installed", () => {
  it("is a ConfigError that names the Effect 3 line of the driver", async () => {
    PgClientLoader.unsafeSetSpecifier("@effect/sql-pg/NotInstalled")
    try {
      const cache = cacheness({
        metadataBackend: "postgres",
        blobs: "postgres",
        postgres: { url: "postgres://127.0.0.1:1/none" }
      })
      const error: any = await cache.stats().then(() => undefined, (e) => e)
      assert.strictEqual(error?._tag, "ConfigError", String(error))
      assert.include(error.message, "npm install @effect/sql-pg@^0.53")
    } finally {
      PgClientLoader.unsafeSetSpecifier("@effect/sql-pg/PgClient")
    }
  })
})

describe("daemonClock", () => {
  it("sleeps past setTimeout's 2^31 - 1 ms limit instead of waking at once", async () => {
    const { daemonClock } = await import("../src/shared/daemonClock.js")
    const Effect = await import("effect/Effect")
    const slept = await Effect.runPromise(
      Effect.sleep("100000 days").pipe(
        Effect.withClock(daemonClock),
        Effect.as(true),
        Effect.timeoutTo({ duration: "200 millis", onTimeout: () => false, onSuccess: (b) => b })
      )
    )
    assert.isFalse(slept)
  })
})
