// The README's quick starts, run exactly as written (with "cacheness" resolved to this checkout),
// each in a child process inside a fresh directory.
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { runChild } from "./support/child.js"
import { makeTempDir } from "./support/tmp.js"

const root = path.resolve(import.meta.dirname, "..")
const readme = fs.readFileSync(path.join(root, "README.md"), "utf8")

/** The ```ts blocks under a heading. */
const blocksUnder = (heading: string): Array<string> => {
  const start = readme.indexOf(`## ${heading}`)
  assert.isAtLeast(start, 0, `README has a "${heading}" section`)
  const end = readme.indexOf("\n## ", start + 3)
  const section = readme.slice(start, end === -1 ? undefined : end)
  return Array.from(section.matchAll(/```ts\n([\s\S]*?)```/g), (m) => m[1])
}

const runSnippet = async (name: string, code: string, cwd: string) => {
  // Written inside the checkout so `effect` resolves from node_modules; run with the cache directory as cwd.
  const dir = path.join(root, ".tmp")
  fs.mkdirSync(dir, { recursive: true })
  const file = path.join(dir, `readme-${name}-${process.pid}.ts`)
  const source = code.replaceAll(`from "cacheness"`, `from ${JSON.stringify(path.join(root, "src/index.js"))}`)
  // top-level await needs a module; the Promise snippet uses it
  fs.writeFileSync(file, `${source}\nexport {}\n`)
  try {
    return await runChild(path.relative(root, file), [], { CACHENESS_DIR: path.join(cwd, ".cacheness") })
  } finally {
    fs.rmSync(file, { force: true })
  }
}

describe("README", () => {
  it("Quick start (Effect) runs and prints the cached value and stats", async () => {
    const cwd = makeTempDir()
    try {
      const [code] = blocksUnder("Quick start (Effect)")
      const result = await runSnippet("effect", code, cwd)
      assert.strictEqual(result.code, 0, result.stderr)
      assert.include(result.stdout, "{ results: [ 1, 2, 3 ] }")
      assert.match(result.stdout, /entries: 1/)
      assert.isTrue(fs.existsSync(path.join(cwd, ".cacheness", "cacheness.db")), "CacheLive used CACHENESS_DIR")
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true })
    }
  }, 60_000)

  it("Quick start (Promise) runs and stores into ./my_cache", async () => {
    const cwd = makeTempDir()
    try {
      const [code] = blocksUnder("Quick start (Promise)")
      const result = await runSnippet("promise", code.replace(`"./my_cache"`, JSON.stringify(path.join(cwd, "my_cache"))) + `\nconsole.log(JSON.stringify(data))\n`, cwd)
      assert.strictEqual(result.code, 0, result.stderr)
      assert.include(result.stdout, `{"results":[1,2,3]}`)
      assert.isTrue(fs.existsSync(path.join(cwd, "my_cache", "CACHEDIR.TAG")))
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true })
    }
  }, 60_000)
})
