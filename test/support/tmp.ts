import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

/** A fresh temporary directory, removed when the scope closes. */
export const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "cacheness-test-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 }))
)

/** A fresh temporary directory for synchronous code; the caller removes it. */
export const makeTempDir = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "cacheness-test-"))

/** Every regular file below `dir`, relative, sorted. */
export const listFiles = (dir: string): Array<string> => {
  if (!fs.existsSync(dir)) return []
  return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as Array<fs.Dirent>)
    .filter((d) => d.isFile())
    .map((d) => path.relative(dir, path.join(d.parentPath ?? (d as any).path, d.name)))
    .sort()
}
