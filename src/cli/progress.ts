/**
 * A progress bar on stderr for long operations (verify, prune). Shown when stderr is a terminal,
 * or always / never with `CACHENESS_PROGRESS=always|never`; stdout stays clean for pipes.
 *
 * @since 0.1.0
 */
import { formatCount } from "./format.js"

const WIDTH = 28

/**
 * @since 0.1.0
 * @category models
 */
export interface ProgressBar {
  readonly update: (progress: { readonly done: number; readonly total: number }) => void
  /** Ends the bar's line (when one was drawn). */
  readonly finish: () => void
}

/**
 * Whether progress bars are drawn in this process.
 *
 * @since 0.1.0
 * @category constructors
 */
export const enabled = (): boolean => {
  const mode = (process.env.CACHENESS_PROGRESS ?? "auto").toLowerCase()
  return mode === "always" || (mode !== "never" && process.stderr.isTTY === true)
}

/**
 * The bar as a line of text, e.g. `verify [##########··········] 50%  500/1,000`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const render = (label: string, done: number, total: number): string => {
  const ratio = total === 0 ? 1 : Math.min(1, done / total)
  const filled = Math.round(ratio * WIDTH)
  return `${label} [${"#".repeat(filled)}${"·".repeat(WIDTH - filled)}] ${
    String(Math.floor(ratio * 100)).padStart(3)
  }%  ${formatCount(done)}/${formatCount(total)}`
}

/**
 * A bar labelled `label`; redraws only when the whole percentage changes, so a million updates
 * cost a hundred writes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (label: string): ProgressBar => {
  if (!enabled()) return { update: () => {}, finish: () => {} }
  let drawn = -1
  return {
    update: ({ done, total }) => {
      const percent = total === 0 ? 100 : Math.floor((done / total) * 100)
      if (percent === drawn) return
      drawn = percent
      process.stderr.write(`\r${render(label, done, total)}`)
    },
    finish: () => {
      if (drawn >= 0) process.stderr.write("\n")
    }
  }
}
