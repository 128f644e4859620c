import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { promisify } from "node:util"

/** The repository root. */
export const root = path.resolve(import.meta.dirname, "../..")

const stamp = path.join(root, ".tmp", "build-stamp")
const lock = path.join(root, ".tmp", "build.lock")

const newestSource = (): number => {
  let newest = 0
  const visit = (file: string) => {
    const stat = fs.statSync(file)
    if (stat.isDirectory()) { for (const name of fs.readdirSync(file)) visit(path.join(file, name)) }
    else newest = Math.max(newest, stat.mtimeMs)
  }
  for (const name of ["src", "package.json", "tsconfig.json", "tsconfig.build.json"]) visit(path.join(root, name))
  return newest
}

const isFresh = () => fs.existsSync(stamp) && fs.statSync(stamp).mtimeMs >= newestSource()

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Builds `dist/` (`npm run build`) unless it is newer than every source. Test files that need the
 * built package call this; a lock directory keeps parallel test files from building at once.
 */
export const ensureBuilt = async (): Promise<void> => {
  fs.mkdirSync(path.dirname(lock), { recursive: true })
  for (let waited = 0;; waited += 200) {
    try {
      fs.mkdirSync(lock)
      break
    } catch {
      // Another test file is building; a lock older than five minutes is from a crashed run.
      if (fs.existsSync(lock) && Date.now() - fs.statSync(lock).mtimeMs > 300_000) {
        fs.rmSync(lock, { recursive: true, force: true })
      }
      await sleep(200)
    }
  }
  try {
    if (isFresh()) return
    const started = Date.now()
    // Asynchronous: a worker blocked for the whole build misses vitest's RPC deadlines.
    await promisify(execFile)(process.execPath, [
      path.join(root, "node_modules/typescript/bin/tsc"),
      "-p",
      "tsconfig.build.json"
    ], { cwd: root })
    // The stamp records the start: a source edited during the build makes the next call rebuild.
    fs.writeFileSync(stamp, "")
    fs.utimesSync(stamp, started / 1000, started / 1000)
  } finally {
    fs.rmSync(lock, { recursive: true, force: true })
  }
}
