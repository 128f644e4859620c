import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "../..")

export interface ChildResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs a TypeScript file in a real child process (through tsx) and collects its output. */
export const runChild = (
  script: string,
  args: ReadonlyArray<string>,
  env: Record<string, string> = {}
): Promise<ChildResult> => startChild(script, args, env).done

/** Like `runChild`, with the process itself (to kill it). */
export const startChild = (
  script: string,
  args: ReadonlyArray<string>,
  env: Record<string, string> = {}
): { readonly child: ChildProcess; readonly done: Promise<ChildResult> } => {
  let child!: ChildProcess
  const done = new Promise<ChildResult>((resolve, reject) => {
    child = spawn(process.execPath, ["--import", "tsx", path.resolve(root, script), ...args], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (d) => (stdout += d))
    child.stderr!.on("data", (d) => (stderr += d))
    child.on("error", reject)
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
  return { child, done }
}
