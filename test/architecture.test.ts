// The rules of the house, read from the imports of src/: no cycles, the engine imports no backend,
// a lower folder never imports a higher one, and src/index.ts only re-exports.
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
const src = path.join(root, "src")

/** Folders from the bottom up: a folder may import its own and lower ones only. */
const LAYERS: ReadonlyArray<ReadonlyArray<string>> = [
  ["errors.ts", "shared"],
  ["schema"],
  ["metadata", "blob"],
  ["codec"],
  ["key"],
  // the configuration and custom tables name services and their handlers
  ["schema/CacheConfig.ts", "schema/MetadataTable.ts"],
  ["cache"],
  ["pullthrough"],
  [
    "Cache.ts",
    "Hasher.ts",
    "Codec.ts",
    "MetadataStore.ts",
    "BlobStore.ts",
    "SqlPullThrough.ts",
    "Key.ts",
    "CacheMetrics.ts"
  ],
  ["promise.ts", "testing.ts", "testing", "keyv.ts", "adapters"],
  ["cli", "index.ts"]
]

/** Modules that must not import these (the engine composes services, never backends). */
const FORBIDDEN: ReadonlyArray<{ readonly from: RegExp; readonly to: RegExp; readonly why: string }> = [
  {
    from: /^cache\/(?!layer\.ts$|cached\.ts$)[^/]+\.ts$/,
    to: /^(metadata\/(sqlite|json|pg|memory)|blob\/(fileSystem|memory|pg|s3)|key\/xxhash|codec\/registry)\.ts$/,
    why: "the engine depends on the service tags only; src/cache/layer.ts picks backends"
  },
  {
    from: /^(metadata|blob|codec|key)\/service\.ts$/,
    to: /^(metadata|blob|codec|key)\/(?!service\.ts$)/,
    why: "a service module declares the contract and imports no implementation"
  }
]

const walk = (dir: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith(".ts") ? [path.join(dir, e.name)] : []
  )

const IMPORT = /(?:^|[^\w.])(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g

/** Each src module (relative to src/) with the src modules it imports. */
const graph = (): Map<string, Array<string>> => {
  const modules = new Map<string, Array<string>>()
  for (const file of walk(src)) {
    const text = fs.readFileSync(file, "utf8")
    const targets: Array<string> = []
    for (const m of text.matchAll(IMPORT)) {
      const resolved = path.resolve(path.dirname(file), m[1]).replace(/\.js$/, ".ts")
      if (resolved.startsWith(src + path.sep) && fs.existsSync(resolved)) targets.push(path.relative(src, resolved))
    }
    modules.set(path.relative(src, file), targets)
  }
  return modules
}

/** A module's layer: its own entry in LAYERS when it has one, else its top folder's. */
const layerOf = (module: string): number => {
  const own = LAYERS.findIndex((names) => names.includes(module))
  return own !== -1 ? own : LAYERS.findIndex((names) => names.includes(module.split("/")[0]))
}

describe("architecture", () => {
  const modules = graph()

  it("src has no import cycles", () => {
    const state = new Map<string, "visiting" | "done">()
    const cycles: Array<string> = []
    const visit = (module: string, trail: Array<string>) => {
      if (state.get(module) === "done") return
      if (state.get(module) === "visiting") {
        cycles.push([...trail.slice(trail.indexOf(module)), module].join(" → "))
        return
      }
      state.set(module, "visiting")
      for (const next of modules.get(module) ?? []) visit(next, [...trail, module])
      state.set(module, "done")
    }
    for (const module of modules.keys()) visit(module, [])
    assert.deepStrictEqual(cycles, [], `import cycles:\n${cycles.join("\n")}`)
  })

  it("no module imports a higher layer", () => {
    const problems: Array<string> = []
    for (const [module, targets] of modules) {
      const own = layerOf(module)
      if (own === -1) continue
      for (const target of targets) {
        const theirs = layerOf(target)
        if (theirs > own) problems.push(`${module} imports ${target} (layer ${theirs} above ${own})`)
      }
    }
    assert.deepStrictEqual(problems, [])
  })

  it("the engine and the service contracts import no backend", () => {
    const problems: Array<string> = []
    for (const [module, targets] of modules) {
      for (const rule of FORBIDDEN) {
        if (!rule.from.test(module)) continue
        for (const target of targets) {
          if (rule.to.test(target)) problems.push(`${module} imports ${target}: ${rule.why}`)
        }
      }
    }
    assert.deepStrictEqual(problems, [])
  })

  it("src/index.ts only re-exports", () => {
    const text = fs.readFileSync(path.join(src, "index.ts"), "utf8")
    const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "")
    const REEXPORT = /export\s+(?:type\s+)?(?:\*(?:\s+as\s+\w+)?|\{[^}]*\})\s+from\s+"[^"]+";?/g
    assert.strictEqual(code.replace(REEXPORT, "").trim(), "")
  })
})
