/**
 * The published package, as a user gets it: `npm pack` once, install the tarball into fresh
 * projects, run the quick start, `require("cacheness")` and the `cacheness` bin from `dist/` with
 * only the declared dependencies, and check that PostgreSQL stays optional and that `effect` is a
 * peer: an app on another Effect gets an ERESOLVE, not a second, nested copy.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { promisify } from "node:util"
import { ensureBuilt, root } from "./support/build.js"
import { makeTempDir } from "./support/tmp.js"

const exec = promisify(execFile)

/** Asynchronous child processes: a worker blocked for seconds misses vitest's RPC deadlines. */
const npm = async (args: ReadonlyArray<string>, cwd: string): Promise<string> =>
  (await exec("npm", [...args], { cwd, encoding: "utf8", timeout: 120_000 })).stdout

const node = (file: string, args: ReadonlyArray<string>, cwd: string, env: NodeJS.ProcessEnv = process.env) =>
  exec(file, [...args], { cwd, env, encoding: "utf8", timeout: 60_000 }).then(
    ({ stdout, stderr }) => ({ status: 0, stdout, stderr }),
    (error) => ({ status: error.code as number, stdout: error.stdout as string, stderr: error.stderr as string })
  )

const quickstart = `
import { Effect, Layer, Option } from "effect"
import { Cache, CacheLive, cacheness, SqlPullThrough } from "cacheness"

// Effect
const program = Effect.gen(function* () {
  const cache = yield* Cache.Cache
  const key = { model: "xgboost", dataset: "customer_data", version: "1.0" }
  yield* cache.put(key, { results: [1, 2, 3] }, { ttl: "48 hours", description: "scores" })
  const hit = yield* cache.get(key)
  console.log("effect", JSON.stringify(Option.getOrUndefined(hit)), (yield* cache.stats()).entries)
})
await Effect.runPromise(program.pipe(Effect.provide(CacheLive)))

// Promise
const cache = cacheness({ directory: "./my_cache", defaultTtl: "48 hours" })
await cache.put({ model: "xgboost", version: "1.0" }, { results: [1, 2, 3] })
await cache.put({ big: true }, new Float64Array(10_000).map((_, i) => Math.sin(i)))
console.log("promise", JSON.stringify(await cache.get({ model: "xgboost", version: "1.0" })), (await cache.get({ big: true })).length)
await cache.close()

// PostgreSQL is optional: without @effect/sql-pg its layer fails with a typed, readable error.
const pg = await Effect.runPromise(Effect.flip(Effect.scoped(Layer.build(SqlPullThrough.layerPg({ url: "postgres://localhost/x" })))))
console.log("pg", pg._tag, pg.message)
`

/**
 * A fresh project depending on the packed tarball (plus `extra`). npm installs the peers itself —
 * `effect` and the `@effect/*` packages — at versions the package accepts, from the npm cache
 * where it can (`--prefer-offline`), else from the registry. `--ignore-scripts`: better-sqlite3's
 * install script would fetch a prebuilt binary; the one already built here is copied instead.
 */
const install = (project: string, tarball: string, extra: Record<string, string> = {}) => {
  const dependencies = { cacheness: `file:${tarball}`, ...extra }
  fs.writeFileSync(
    path.join(project, "package.json"),
    JSON.stringify({ name: "app", version: "1.0.0", type: "module", private: true, dependencies })
  )
  return npm(
    ["install", "--prefer-offline", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
    project
  )
}

describe("npm package", () => {
  let project: string
  afterAll(() => {
    if (project !== undefined) fs.rmSync(project, { recursive: true, force: true })
  })

  let tarball: string
  let files: Array<string>
  beforeAll(async () => {
    await ensureBuilt()
    project = makeTempDir()
    const [packed] = JSON.parse(await npm(["pack", "--json", "--pack-destination", project], root))
    tarball = path.join(project, packed.filename)
    files = packed.files.map((f: { path: string }) => f.path)
  }, 240_000)

  it("ships dist, its sources for the source maps, README and LICENSE, and no tests", () => {
    for (
      const file of [
        "dist/index.js",
        "dist/index.js.map",
        "dist/cli/main.js",
        "dist/testing.js",
        "dist/testing.d.ts",
        "src/index.ts",
        "README.md",
        "LICENSE",
        "package.json"
      ]
    ) {
      assert.include(files, file)
    }
    assert.isFalse(
      files.some((f) => f.startsWith("test/") || f.startsWith(".tmp/") || f.startsWith("bench/")),
      files.join(" ")
    )
    // Every map points at a shipped source.
    for (const map of files.filter((f) => f.endsWith(".map"))) {
      const { sources } = JSON.parse(fs.readFileSync(path.join(root, map), "utf8"))
      for (const source of sources) assert.include(files, path.posix.join(path.posix.dirname(map), source), map)
    }
  })

  it("refuses an app on another Effect rather than nesting a second copy", async () => {
    const app = path.join(project, "effect-3.10")
    fs.mkdirSync(app)
    const error: any = await install(app, tarball, { effect: "3.10.0" }).then(() => undefined, (e) => e)
    assert.isDefined(error, "npm installed cacheness beside effect 3.10")
    assert.include(error.stderr, "ERESOLVE")
    assert.match(error.stderr, /peer effect@"\^3\.22/)
    assert.isFalse(fs.existsSync(path.join(app, "node_modules/cacheness/node_modules/effect")))
  }, 180_000)

  it("installs into a fresh project, and runs the quick start, require() and the bin from dist/", async () => {
    const app = path.join(project, "app")
    fs.mkdirSync(app)
    await install(app, tarball)
    const modules = path.join(app, "node_modules")
    // One Effect, the app's, at the top level.
    assert.match(JSON.parse(fs.readFileSync(path.join(modules, "effect/package.json"), "utf8")).version, /^3\./)
    assert.isFalse(fs.existsSync(path.join(modules, "cacheness/node_modules/effect")))
    const version = (dir: string) =>
      JSON.parse(fs.readFileSync(path.join(dir, "better-sqlite3/package.json"), "utf8")).version
    assert.strictEqual(version(modules), version(path.join(root, "node_modules")))
    fs.mkdirSync(path.join(modules, "better-sqlite3/build/Release"), { recursive: true })
    fs.cpSync(
      path.join(root, "node_modules/better-sqlite3/build/Release/better_sqlite3.node"),
      path.join(modules, "better-sqlite3/build/Release/better_sqlite3.node")
    )

    // Optional for real: the PostgreSQL driver is an optional peer, not installed.
    assert.isFalse(fs.existsSync(path.join(modules, "@effect/sql-pg")))
    assert.isFalse(fs.existsSync(path.join(modules, "pg")))

    fs.writeFileSync(path.join(app, "quickstart.mjs"), quickstart)
    const run = await node(process.execPath, ["quickstart.mjs"], app, {
      ...process.env,
      CACHENESS_DIR: path.join(app, "effect_cache")
    })
    assert.strictEqual(run.status, 0, run.stderr)
    assert.include(run.stdout, `effect {"results":[1,2,3]} 1`)
    assert.include(run.stdout, `promise {"results":[1,2,3]} 10000`)
    assert.match(run.stdout, /pg SqlPullThroughError .*npm install @effect\/sql-pg@\^0\.53/)

    // CommonJS: where Node can require() ES modules (20.19+, 22.12+) it loads (no top-level
    // await in the graph); elsewhere Node's own error says the package is an ES module.
    const required = await node(process.execPath, [
      "-e",
      `const { cacheness } = require("cacheness"); console.log("require", typeof cacheness)`
    ], app)
    if (process.features.require_module === true) {
      assert.strictEqual(required.status, 0, required.stderr)
      assert.include(required.stdout, "require function")
    } else {
      assert.notStrictEqual(required.status, 0)
      assert.match(required.stderr, /ERR_REQUIRE_ESM|ES Module/)
    }

    // The bin, linked by npm with its shebang.
    const bin = await node(path.join(modules, ".bin/cacheness"), ["stats", "--json", "--dir", "my_cache"], app)
    assert.strictEqual(bin.status, 0, bin.stderr)
    assert.strictEqual(JSON.parse(bin.stdout).entries, 2)
  }, 300_000)
})
