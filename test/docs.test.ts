// Every code block of README.md and docs/*.md, checked as a reader would use it.
//
// - ```ts blocks are type-checked, all in ONE tsc run over generated files in .tmp/docblocks/,
//   with the project's tsconfig (strict) and "cacheness" resolved to this checkout's src/. The
//   unused-name lints (noUnusedLocals/Parameters) are off: a snippet may show a value it leaves
//   unused (`const data = await cache.get(...)  // value or undefined`).
// - A ts block is a complete program unless marked as a fragment; a program is also run, as a
//   child process (tsx) in a fresh temporary directory, and must exit 0 before a timeout.
// - A fragment is marked by the info string (```ts fragment) or by an HTML comment right above
//   the fence that starts with "fragment". The rest of that comment is the fragment's context:
//   TypeScript declarations placed before the block (imports, `declare const cache: ...`). A line
//   `/* block */` in the context says where the block goes, e.g. inside `Effect.gen(function* () {`
//   … `})` for a block that uses `yield*`; the block's own imports are then moved to the module's
//   top level. Fragments are type-checked, never run.
// - Shell, text and other non-code blocks are exempt (json blocks must parse); a block without a
//   language or with one this file does not know fails, so nothing escapes checking silently.
import { assert, describe, it } from "@effect/vitest"
import { execFile, spawn } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { promisify } from "node:util"
import ts from "typescript"
import { afterAll } from "vitest"

const root = path.resolve(import.meta.dirname, "..")
const require = createRequire(import.meta.url)

const checkedLanguages = new Set(["ts", "typescript"])
const exemptLanguages = new Set([
  "sh",
  "bash",
  "shell",
  "console",
  "zsh",
  "text",
  "txt",
  "json",
  "jsonc",
  "sql",
  "diff",
  "yaml",
  "yml",
  "toml",
  "ini",
  "csv"
])
const blockMarker = "/* block */"
const runTimeoutMs = 60_000

interface Block {
  readonly doc: string // relative to the root
  readonly line: number // 1-based line of the first content line
  readonly heading: string
  readonly language: string
  readonly fragment: boolean
  readonly context: string | undefined
  readonly contextLine: number | undefined
  readonly code: string
}

const docs = (): Array<string> => [
  "README.md",
  ...fs.readdirSync(path.join(root, "docs")).filter((name) => name.endsWith(".md")).sort().map((name) => `docs/${name}`)
]

/** The fenced code blocks of a markdown file, with the fragment comment above each (if any). */
const blocksOf = (doc: string, text = fs.readFileSync(path.join(root, doc), "utf8")): Array<Block> => {
  const lines = text.split("\n")
  const blocks: Array<Block> = []
  let heading = ""
  for (let i = 0; i < lines.length; i++) {
    const headingMatch = /^#{1,6}\s+(.*)$/.exec(lines[i])
    if (headingMatch) heading = headingMatch[1].trim()
    const open = /^(\s*)(`{3,}|~{3,})(.*)$/.exec(lines[i])
    if (!open) continue
    const [, indent, fence, info] = open
    const start = i + 1
    let end = start
    while (end < lines.length) {
      const close = /^\s*(`{3,}|~{3,})\s*$/.exec(lines[end])
      if (close && close[1][0] === fence[0] && close[1].length >= fence.length) break
      end++
    }
    const code = lines.slice(start, end).map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l)).join("\n")
    const words = info.trim().split(/\s+/).filter((w) => w.length > 0)
    // An HTML comment right above the fence (blank lines allowed) may mark a fragment.
    let context: string | undefined
    let contextLine: number | undefined
    let fromComment = false
    let above = i - 1
    while (above >= 0 && lines[above].trim() === "") above--
    if (above >= 0 && lines[above].trim().endsWith("-->")) {
      let first = above
      while (first >= 0 && !lines[first].includes("<!--")) first--
      if (first >= 0) {
        const comment = lines.slice(first, above + 1).join("\n")
        const body = comment.slice(comment.indexOf("<!--") + 4, comment.lastIndexOf("-->"))
        const fragmentMatch = /^\s*fragment\b[^\n]*\n?/.exec(body)
        if (fragmentMatch) {
          fromComment = true
          context = body.slice(fragmentMatch[0].length)
          // the context's first line in the markdown file
          contextLine = first + 1 +
            (comment.slice(0, comment.indexOf("<!--") + 4 + fragmentMatch[0].length).split("\n").length - 1)
          if (context.trim() === "") context = undefined
        }
      }
    }
    blocks.push({
      doc,
      line: start + 1,
      heading,
      language: (words[0] ?? "").toLowerCase(),
      fragment: fromComment || words.slice(1).includes("fragment"),
      context,
      contextLine,
      code
    })
    i = end
  }
  return blocks
}

const allBlocks = docs().flatMap((doc) => blocksOf(doc))
const tsBlocks = allBlocks.filter((b) => checkedLanguages.has(b.language))
const name = (b: Block) => `${b.doc}:${b.line}${b.heading ? ` (${b.heading})` : ""}`

// "cacheness" and its subpaths resolve to src/, through the package's exports (dist/x.js → src/x.js).
const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"))
const resolveCacheness = (specifier: string, fromDir: string): string | undefined => {
  const sub = specifier === "cacheness" ? "." : `.${specifier.slice("cacheness".length)}`
  let target = pkg.exports?.[sub]
  if (target && typeof target === "object") target = target.import ?? target.default
  if (typeof target !== "string") return undefined
  const source = target.replace(/^\.\/dist\//, "./src/")
  const relative = path.relative(fromDir, path.join(root, source)).split(path.sep).join("/")
  return relative.startsWith(".") ? relative : `./${relative}`
}
const rewriteImports = (code: string, fromDir: string): string =>
  code.replace(
    /((?:from|import)\s*\(?\s*)(["'])(cacheness(?:\/[^"']*)?)\2/g,
    (all, lead: string, quote: string, specifier: string) => {
      const resolved = resolveCacheness(specifier, fromDir)
      return resolved === undefined ? all : `${lead}${quote}${resolved}${quote}`
    }
  )

/** Blanks the block's import declarations (keeping its lines) and returns them, to be hoisted. */
const hoistImports = (code: string): { readonly body: string; readonly imports: string } => {
  const source = ts.createSourceFile("block.ts", code, ts.ScriptTarget.ES2022, true)
  let body = code
  const imports: Array<string> = []
  for (const statement of source.statements) {
    if (!ts.isImportDeclaration(statement)) continue
    const start = statement.getStart(source)
    const text = code.slice(start, statement.end)
    imports.push(text)
    body = body.slice(0, start) + text.replace(/[^\n]/g, " ") + body.slice(statement.end)
  }
  return { body, imports: imports.join("\n") }
}

interface Generated {
  readonly block: Block
  readonly file: string
  /** Line of the generated file where the block starts (1-based) and how many lines it has. */
  readonly blockStart: number
  readonly blockLines: number
}

const generate = (blocks: ReadonlyArray<Block>, dir: string): Array<Generated> =>
  blocks.map((block, index) => {
    const file = path.join(dir, `${block.doc.replace(/[^A-Za-z0-9]+/g, "_")}_L${block.line}_${index}.ts`)
    let before = ""
    let after = ""
    let body = block.code
    let hoisted = ""
    if (block.fragment && block.context !== undefined) {
      const at = block.context.indexOf(blockMarker)
      if (at === -1) {
        before = block.context.endsWith("\n") ? block.context : `${block.context}\n`
      } else {
        const lineStart = block.context.lastIndexOf("\n", at) + 1
        const lineEnd = block.context.indexOf("\n", at)
        before = block.context.slice(0, lineStart)
        after = lineEnd === -1 ? "" : block.context.slice(lineEnd + 1)
        const split = hoistImports(block.code)
        body = split.body
        hoisted = split.imports
      }
    }
    // ES imports may stand anywhere at a module's top level: hoisted ones go last, so the block's
    // lines keep their numbers.
    const text = `${before}${body}\n${after}\n${hoisted}\nexport {}\n`
    fs.writeFileSync(file, rewriteImports(text, dir))
    return { block, file, blockStart: before.split("\n").length, blockLines: block.code.split("\n").length }
  })

/** Runs one tsc over every generated file; diagnostics per file, mapped back to the markdown. */
const typecheck = async (generated: ReadonlyArray<Generated>, dir: string): Promise<Map<string, Array<string>>> => {
  const tsconfig = path.join(dir, "tsconfig.json")
  fs.writeFileSync(
    tsconfig,
    JSON.stringify(
      {
        extends: path.relative(dir, path.join(root, "tsconfig.json")),
        compilerOptions: { noEmit: true, noUnusedLocals: false, noUnusedParameters: false, moduleDetection: "force" },
        include: [],
        files: generated.map((g) => path.basename(g.file))
      },
      null,
      2
    )
  )
  const output = await promisify(execFile)(process.execPath, [
    path.join(root, "node_modules/typescript/bin/tsc"),
    "-p",
    tsconfig,
    "--pretty",
    "false"
  ], { cwd: root, maxBuffer: 64 * 1024 * 1024 })
    .then((r) => r.stdout, (e: { stdout?: string; message: string }) => e.stdout || e.message)
  const byFile = new Map<string, Array<string>>()
  const unattributed: Array<string> = []
  for (const line of output.split("\n")) {
    if (line.trim() === "") continue
    const m = /^(.*?)\((\d+),(\d+)\): (.*)$/.exec(line)
    const g = m && generated.find((x) => path.resolve(root, m[1]) === x.file)
    if (!m || !g) {
      // a continuation line of the previous message, or a problem outside the blocks
      if (byFile.size > 0 && /^\s/.test(line)) [...byFile.values()].at(-1)!.push(line)
      else unattributed.push(line)
      continue
    }
    const genLine = Number(m[2])
    const offset = genLine - g.blockStart
    const where = offset >= 0 && offset < g.blockLines
      ? `${g.block.doc}:${g.block.line + offset}:${m[3]}`
      : `${g.block.doc}: the fragment's context (comment above line ${g.block.line - 1}${
        g.block.contextLine ? `, context from line ${g.block.contextLine}` : ""
      }), generated line ${genLine}`
    const list = byFile.get(g.file) ?? []
    list.push(`${where}: ${m[4]}`)
    byFile.set(g.file, list)
  }
  if (unattributed.length > 0) byFile.set("", unattributed)
  return byFile
}

const tsxLoader = pathToFileURL(require.resolve("tsx")).href

interface RunResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  readonly timedOut: boolean
}

/** Runs a generated program in `cwd` (a fresh temporary directory) with a timeout. */
const runProgram = (file: string, cwd: string): Promise<RunResult> =>
  new Promise((resolve, reject) => {
    const env: Record<string, string | undefined> = { ...process.env }
    // The program sees a clean environment: paths like ./my_cache and CacheLive's ./.cacheness land in cwd.
    for (const key of Object.keys(env)) if (key.startsWith("CACHENESS_")) delete env[key]
    const child = spawn(process.execPath, ["--import", tsxLoader, file], {
      cwd,
      env,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill("SIGKILL")
    }, runTimeoutMs)
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("error", (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, timedOut })
    })
  })

/** What particular programs must also do, beyond exiting 0, by "doc#heading". */
const expectations: Record<string, (result: RunResult, cwd: string) => void> = {
  "README.md#Quick start (Effect)": (result, cwd) => {
    assert.include(result.stdout, "{ results: [ 1, 2, 3 ] }")
    assert.match(result.stdout, /entries: 1/)
    assert.isTrue(fs.existsSync(path.join(cwd, ".cacheness", "cacheness.db")), "CacheLive stored into ./.cacheness")
  },
  "README.md#Quick start (Promise)": (_result, cwd) => {
    assert.isTrue(fs.existsSync(path.join(cwd, "my_cache", "CACHEDIR.TAG")), "stored into ./my_cache")
  },
  // both blocks of the section: computed once, then a hit
  "README.md#Memoise functions and Effects": (result) => {
    assert.include(result.stdout, "{ hits: 1, misses: 1, entries: 1 }")
  },
  // two programs: memory metadata + file blobs, then a store written with BlobStore.make
  "README.md#Compose your own": (result, cwd) => {
    assert.match(result.stdout, /^(\{ accuracy: 0\.93 \} 2|true \[ '[0-9a-f]{16}-[0-9a-z]+' \])$/m)
    if (result.stdout.includes("accuracy")) {
      assert.strictEqual(
        fs.readdirSync(path.join(cwd, "blobs"), { recursive: true, withFileTypes: true }).filter((e) => e.isFile())
          .length,
        1,
        "one blob file under ./blobs"
      )
    }
  },
  "docs/CUSTOM_METADATA.md#Declare, register, attach, query": (result) => {
    assert.match(result.stdout, /^[0-9a-f]{16} .*exp_001.* 0\.94$/m)
  }
}

describe("docs: every code block", () => {
  it("has a language this test knows (ts is checked; shell, text, json … are exempt)", () => {
    const unknown = allBlocks.filter((b) => !checkedLanguages.has(b.language) && !exemptLanguages.has(b.language))
    assert.deepStrictEqual(
      unknown.map((b) =>
        `${name(b)}: ${
          b.language === "" ? "no language on the fence (e.g. ```text)" : `unknown language "${b.language}"`
        }`
      ),
      []
    )
  })

  it("json blocks parse", () => {
    const bad = allBlocks.filter((b) => b.language === "json").flatMap((b) => {
      try {
        JSON.parse(b.code)
        return []
      } catch (e) {
        return [`${name(b)}: ${(e as Error).message}`]
      }
    })
    assert.deepStrictEqual(bad, [])
  })

  it("the harness reads fences, fragment marks and their context", () => {
    const text = [
      "# T", // 1
      "```ts", // 2
      "const a = 1", // 3
      "```", // 4
      "<!-- fragment: why", // 5
      "declare const b: number", // 6
      "-->", // 7
      "", // 8
      "```typescript", // 9
      "b", // 10
      "```", // 11
      "## U", // 12
      "- item", // 13
      "  ````ts fragment", // 14
      "  ```", // 15
      "  ````", // 16
      "```", // 17
      "x", // 18
      "```" // 19
    ].join("\n")
    const blocks = blocksOf("x.md", text)
    assert.deepStrictEqual(
      blocks.map((b) => [b.line, b.heading, b.language, b.fragment, b.context, b.contextLine, b.code]),
      [
        [3, "T", "ts", false, undefined, undefined, "const a = 1"],
        [10, "T", "typescript", true, "declare const b: number\n", 6, "b"],
        [15, "U", "ts", true, undefined, undefined, "```"],
        [18, "U", "", false, undefined, undefined, "x"]
      ]
    )
  })

  it("the harness finds the docs' TypeScript", () => {
    assert.isAtLeast(tsBlocks.length, 10)
    assert.isTrue(tsBlocks.some((b) => b.doc === "README.md" && !b.fragment), "README has complete programs")
  })
})

describe("docs: TypeScript blocks", () => {
  const dir = path.join(root, ".tmp", "docblocks", String(process.pid))
  let generated: Array<Generated> = []
  let diagnostics: Promise<Map<string, Array<string>>> | undefined
  const checked = () => {
    if (diagnostics === undefined) {
      fs.rmSync(dir, { recursive: true, force: true })
      fs.mkdirSync(dir, { recursive: true })
      generated = generate(tsBlocks, dir)
      diagnostics = typecheck(generated, dir)
    }
    return diagnostics
  }

  it("tsc reports nothing outside the blocks", async () => {
    const byFile = await checked()
    assert.deepStrictEqual(byFile.get("") ?? [], [])
  }, 180_000)

  for (const [index, block] of tsBlocks.entries()) {
    it(`${name(block)} type-checks${block.fragment ? " (fragment)" : ""}`, async () => {
      const byFile = await checked()
      assert.deepStrictEqual(byFile.get(generated[index].file) ?? [], [])
    }, 180_000)
  }

  for (const [index, block] of tsBlocks.entries()) {
    if (block.fragment) continue
    it(`${name(block)} runs as a program in a fresh directory`, async () => {
      await checked()
      const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "cacheness-docs-"))
      try {
        const result = await runProgram(generated[index].file, cwd)
        assert.isFalse(
          result.timedOut,
          `still running after ${runTimeoutMs} ms (a program must exit by itself)\n${result.stdout}\n${result.stderr}`
        )
        assert.strictEqual(
          result.code,
          0,
          `exit ${result.code} ${result.signal ?? ""}\n${result.stdout}\n${result.stderr}`
        )
        expectations[`${block.doc}#${block.heading}`]?.(result, cwd)
      } finally {
        fs.rmSync(cwd, { recursive: true, force: true })
      }
    }, 180_000)
  }

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
})
