/**
 * Scale of the reliability tests: `npm test` runs short versions, `npm run test:stress`
 * (CACHENESS_STRESS=1) the long ones. Each test records its figures in `.tmp/reliability/` so
 * docs/RELIABILITY.md can quote the last run.
 */
import * as fs from "node:fs"
import * as path from "node:path"

/** `true` under `npm run test:stress`. */
export const stress: boolean = process.env.CACHENESS_STRESS === "1"

const dir = path.resolve(import.meta.dirname, "../../.tmp/reliability")

/** Writes one test's figures (and prints them, so they show in the test output). */
export const recordFigures = (name: string, figures: Record<string, unknown>): void => {
  fs.mkdirSync(dir, { recursive: true })
  const line = { name, mode: stress ? "stress" : "normal", at: new Date().toISOString(), ...figures }
  fs.writeFileSync(path.join(dir, `${name}-${stress ? "stress" : "normal"}.json`), JSON.stringify(line, null, 2) + "\n")
  console.log(`[reliability] ${JSON.stringify(line)}`)
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
