/**
 * 4 processes × 2,500 puts into one directory at once, each worker printing its own put latencies
 * (p50, p99, max, how many took over 1 ms and how long those took): where the wall time of the
 * processes bench goes. `npx tsx bench/processLatency.ts`.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { cacheness } from "../src/index.js"
import { valueOf } from "./support.js"
if (process.argv[2] === "--w") {
  const cache = cacheness({ directory: process.argv[3], maxSize: null })
  await cache.has({ w: 1 })
  const p = Number(process.argv[4])
  // crude barrier: start at the given wall time
  while (Date.now() < Number(process.argv[5])) await new Promise((r) => setTimeout(r, 1))
  const lat: number[] = []
  const t0 = performance.now()
  for (let i = 0; i < 2500; i++) {
    const t = performance.now()
    await cache.put({ proc: p, i }, valueOf(i))
    lat.push(performance.now() - t)
  }
  const total = performance.now() - t0
  lat.sort((a, b) => a - b)
  const slow = lat.filter((x) => x > 1)
  console.log(
    JSON.stringify({
      p,
      total: total.toFixed(0),
      p50: (lat[1250] * 1000).toFixed(0) + "µs",
      p99: lat[2475].toFixed(2) + "ms",
      max: lat[2499].toFixed(0) + "ms",
      over1ms: slow.length,
      inSlow: slow.reduce((a, b) => a + b, 0).toFixed(0) + "ms"
    })
  )
  await cache.close()
  process.exit(0)
} else {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "pw-"))
  await cacheness({ directory: d, maxSize: null }).close()
  const at = Date.now() + 3000
  await Promise.all([0, 1, 2, 3].map((p) =>
    new Promise((r) => {
      const c = spawn(process.execPath, [
        ...process.execArgv,
        fileURLToPath(import.meta.url),
        "--w",
        d,
        String(p),
        String(at)
      ], { stdio: ["ignore", "inherit", "inherit"] })
      c.on("exit", r)
    })
  ))
  fs.rmSync(d, { recursive: true, force: true })
}
