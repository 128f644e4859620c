/**
 * `npm run bench`: every benchmark, one after another, each printing its table beside the
 * relevant limits (raw fs, raw SQLite, raw LZ4) and a peer where one exists.
 * `npm run bench -- core` runs only the named ones.
 */
const suites: ReadonlyArray<readonly [string, () => Promise<{ run: () => Promise<void> }>]> = [
  ["core", () => import("./core.js")],
  ["pullthrough", () => import("./pullthrough.js")],
  ["formats", () => import("./formats.js")],
  ["paths", () => import("./paths.js")],
  ["cached", () => import("./cached.js")],
  ["metrics", () => import("./metrics.js")],
  ["management", () => import("./management.js")],
  ["processes", () => import("./processes.js")],
  ["s3", () => import("./s3.js")],
  ["rig", () => import("./rig.js")],
  ["tier", () => import("./tier.js")],
  ["batch", () => import("./batch.js")]
]

const only = process.argv.slice(2)
console.log(`cacheness benchmarks — node ${process.version}, ${new Date().toISOString()}`)
for (const [name, load] of suites) {
  if (only.length > 0 && !only.includes(name)) continue
  await (await load()).run()
}
