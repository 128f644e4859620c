/**
 * The published package, as a user gets it: `npm pack`, install the tarball into a fresh project
 * (offline, from the npm cache), run the quick start and the `cacheness` bin from `dist/` with
 * only the declared dependencies, and check that PostgreSQL stays optional.
 *
 * The fresh project installs from a lockfile derived from ours — the tarball plus every locked
 * package that is not dev-only — because resolving version ranges needs registry metadata that an
 * offline machine after `npm ci` does not have (`npm ci` fetches tarballs, not packuments).
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import * as fs from "node:fs"
import * as path from "node:path"
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

/** A project depending on the packed tarball, locked to the versions of our own lockfile. */
const writeProject = (project: string, tarball: string) => {
  const ours = JSON.parse(fs.readFileSync(path.join(root, "package-lock.json"), "utf8"))
  const manifest = ours.packages[""]
  const dependencies = { cacheness: `file:${tarball}` }
  const packages: Record<string, unknown> = {
    "": { name: "app", version: "1.0.0", dependencies },
    "node_modules/cacheness": {
      version: manifest.version,
      resolved: `file:${tarball}`,
      license: manifest.license,
      dependencies: manifest.dependencies,
      peerDependencies: manifest.peerDependencies,
      peerDependenciesMeta: manifest.peerDependenciesMeta,
      engines: manifest.engines,
      bin: { cacheness: "dist/cli/main.js" }
    }
  }
  for (const [location, entry] of Object.entries<Record<string, unknown>>(ours.packages)) {
    if (location === "" || entry.dev === true) continue
    // Needed by dev tooling *or* optionally at run time: optional for the app.
    const { devOptional, ...rest } = entry
    packages[location] = devOptional === true ? { ...rest, optional: true } : rest
  }
  fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", type: "module", private: true, dependencies }))
  fs.writeFileSync(path.join(project, "package-lock.json"), JSON.stringify({ name: "app", version: "1.0.0", lockfileVersion: 3, requires: true, packages }))
}

describe("npm package", () => {
  let project: string
  beforeAll(ensureBuilt, 180_000)
  afterAll(() => {
    if (project !== undefined) fs.rmSync(project, { recursive: true, force: true })
  })

  it("packs, installs offline into a fresh project, and runs the quick start and the bin from dist/", async () => {
    project = makeTempDir()
    const [packed] = JSON.parse(await npm(["pack", "--json", "--pack-destination", project], root))
    const files: Array<string> = packed.files.map((f: { path: string }) => f.path)
    assert.include(files, "dist/index.js")
    assert.include(files, "dist/cli/main.js")
    assert.include(files, "README.md")
    assert.isFalse(files.some((f) => f.startsWith("src/") || f.startsWith("test/") || f.startsWith(".tmp/")), files.join(" "))

    writeProject(project, packed.filename)
    // --offline: the tarballs come from the npm cache `npm ci` filled. --ignore-scripts: offline,
    // better-sqlite3's install script cannot fetch its prebuilt binary; we copy the one already
    // built for the same version below instead.
    await npm(["ci", "--offline", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], project)
    const modules = path.join(project, "node_modules")
    const version = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, "better-sqlite3/package.json"), "utf8")).version
    assert.strictEqual(version(modules), version(path.join(root, "node_modules")))
    fs.cpSync(path.join(root, "node_modules/better-sqlite3/build/Release/better_sqlite3.node"), path.join(modules, "better-sqlite3/build/Release/better_sqlite3.node"))

    // Optional for real: the PostgreSQL driver is an optional peer, not installed.
    assert.isFalse(fs.existsSync(path.join(modules, "@effect/sql-pg")))
    assert.isFalse(fs.existsSync(path.join(modules, "pg")))

    fs.writeFileSync(path.join(project, "quickstart.mjs"), quickstart)
    const run = await node(process.execPath, ["quickstart.mjs"], project, { ...process.env, CACHENESS_DIR: path.join(project, "effect_cache") })
    assert.strictEqual(run.status, 0, run.stderr)
    assert.include(run.stdout, `effect {"results":[1,2,3]} 1`)
    assert.include(run.stdout, `promise {"results":[1,2,3]} 10000`)
    assert.match(run.stdout, /pg SqlPullThroughError .*npm install @effect\/sql-pg/)

    // The bin, linked by npm with its shebang.
    const bin = await node(path.join(modules, ".bin/cacheness"), ["stats", "--json", "--dir", "my_cache"], project)
    assert.strictEqual(bin.status, 0, bin.stderr)
    assert.strictEqual(JSON.parse(bin.stdout).entries, 2)
  }, 120_000)
})
