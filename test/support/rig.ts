/**
 * The many-machines rig, shared by test/ManyMachines.test.ts and bench/rig.ts: P processes spread
 * over M simulated machines (process w runs on machine w mod M, each machine with its own local
 * directory), all on one PostgreSQL schema and one S3 bucket prefix, started together, each running
 * test/support/machineWorker.ts for a fixed time. Returns every process's log.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { bundle, spawnBundled } from "./bundle.js"
import type { Entry } from "./history.js"

export interface RigOptions {
  readonly processes: number
  readonly machines: number
  readonly keys: number
  readonly memoKeys: number
  readonly durationMs: number
  /** Where the machines' directories and the logs go. */
  readonly root: string
  readonly pgSchema: string
  readonly s3Endpoint: string
  readonly s3Prefix: string
}

export interface WorkerLog {
  readonly machine: number
  readonly writer: number
  readonly log: ReadonlyArray<Entry>
}

let bundled: Promise<string> | undefined
/** The worker, bundled once per process (plain `node` starts it in ~0.5 s; tsx takes seconds). */
export const workerBundle = (): Promise<string> => (bundled ??= bundle("test/support/machineWorker.ts"))

export const runRig = async (options: RigOptions): Promise<ReadonlyArray<WorkerLog>> => {
  const file = await workerBundle()
  const workers = Array.from({ length: options.processes }, (_, w) => {
    const machine = w % options.machines
    const directory = path.join(options.root, `machine-${machine}`)
    fs.mkdirSync(directory, { recursive: true })
    const logFile = path.join(options.root, `log-${w + 1}.json`)
    const child = spawnBundled(file, [
      directory,
      String(machine),
      String(w + 1),
      String(options.keys),
      String(options.memoKeys),
      String(options.durationMs),
      logFile,
      options.pgSchema,
      options.s3Endpoint,
      options.s3Prefix
    ])
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (d) => (stdout += d))
    child.stderr!.on("data", (d) => (stderr += d))
    const ready = new Promise<void>((resolve, reject) => {
      child.stdout!.on("data", () => stdout.includes("ready") && resolve())
      child.on("exit", (code) => reject(new Error(`worker ${w + 1} exited (${code}) before it was ready:\n${stderr}`)))
    })
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
    return { child, ready, exited, logFile, stderr: () => stderr }
  })
  try {
    // Start together, so the processes really overlap.
    await Promise.all(workers.map((w) => w.ready))
    for (const w of workers) w.child.stdin!.end("go\n")
    const codes = await Promise.all(workers.map((w) => w.exited))
    codes.forEach((code, w) => {
      if (code !== 0) throw new Error(`worker ${w + 1} exited with ${code}:\n${workers[w].stderr()}`)
    })
  } finally {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill("SIGKILL")
  }
  return workers.map((w) => JSON.parse(fs.readFileSync(w.logFile, "utf8")) as WorkerLog)
}
