/**
 * Figure for docs/RESILIENCE.md: what a memoised call does with a stored value over its life,
 * under each of `refreshAhead`, `staleWhileRevalidate` and `staleIfError` (TTL 60 min, windows of
 * 10, 20 and 60 min). One lane per option: fresh, the option's window, then gone. The windows are
 * `planAt` in src/cache/cached.ts drawn as data; no measurement. Writes a hand-written SVG to
 * docs/figures/stale-timeline.svg.
 *
 * `npx tsx bench/figure-resilience.ts`
 */
import * as fs from "node:fs"
import { fileURLToPath } from "node:url"

const OUT = fileURLToPath(new URL("../docs/figures/stale-timeline.svg", import.meta.url))
const TTL = 60
const END = 130 // minutes shown

interface Segment {
  readonly from: number
  readonly to: number
  readonly color: string
  readonly label: string
}

const FRESH = "#4c9a2a"
const BACKGROUND = "#7fb2e5"
const STALE = "#f0b54a"
const GONE = "#d9d9d9"

const lanes: ReadonlyArray<
  { readonly name: string; readonly note: string; readonly segments: ReadonlyArray<Segment> }
> = [
  {
    name: "refreshAhead: 10 min",
    note: "a hit in the last 10 min answers and recomputes in the background: the key never expires",
    segments: [
      { from: 0, to: TTL - 10, color: FRESH, label: "fresh: served" },
      { from: TTL - 10, to: TTL, color: BACKGROUND, label: "served + refresh" },
      { from: TTL, to: END, color: GONE, label: "(replaced before the TTL when called)" }
    ]
  },
  {
    name: "staleWhileRevalidate: 20 min",
    note: "after the TTL: the stale value at once, one background recomputation (lease: one per key)",
    segments: [
      { from: 0, to: TTL, color: FRESH, label: "fresh: served" },
      { from: TTL, to: TTL + 20, color: BACKGROUND, label: "stale: served + refresh" },
      { from: TTL + 20, to: END, color: GONE, label: "gone: callers wait for the source" }
    ]
  },
  {
    name: "staleIfError: 60 min",
    note: "after the TTL a call recomputes; if the source fails (typed error) it gets the stale value",
    segments: [
      { from: 0, to: TTL, color: FRESH, label: "fresh: served" },
      { from: TTL, to: TTL + 60, color: STALE, label: "recompute; on failure: stale value" },
      { from: TTL + 60, to: END, color: GONE, label: "gone" }
    ]
  }
]

const width = 900
const left = 40
const right = 20
const laneHeight = 34
const laneGap = 46
const top = 50
const scale = (width - left - right) / END
const x = (minutes: number) => left + minutes * scale
const escape = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

const parts: Array<string> = []
parts.push(
  `<text x="${left}" y="24" font-size="16" font-weight="bold">A stored value over time (TTL 60 min), per option of cached</text>`
)
lanes.forEach((lane, i) => {
  const y = top + i * (laneHeight + laneGap)
  parts.push(`<text x="${left}" y="${y - 8}" font-size="13" font-weight="bold">${escape(lane.name)}</text>`)
  parts.push(
    `<text x="${x(END)}" y="${y - 8}" font-size="11" text-anchor="end" fill="#444">${escape(lane.note)}</text>`
  )
  for (const s of lane.segments) {
    const w = (s.to - s.from) * scale
    parts.push(
      `<rect x="${x(s.from).toFixed(1)}" y="${y}" width="${
        w.toFixed(1)
      }" height="${laneHeight}" fill="${s.color}" stroke="#fff"/>`
    )
    parts.push(
      `<text x="${(x(s.from) + w / 2).toFixed(1)}" y="${y + laneHeight / 2 + 4}" font-size="11" text-anchor="middle">${
        escape(s.label)
      }</text>`
    )
  }
})
const axisY = top + lanes.length * (laneHeight + laneGap) - laneGap + 16
parts.push(`<line x1="${x(0)}" y1="${axisY}" x2="${x(END)}" y2="${axisY}" stroke="#000"/>`)
for (let m = 0; m <= END; m += 10) {
  parts.push(`<line x1="${x(m)}" y1="${axisY}" x2="${x(m)}" y2="${axisY + 5}" stroke="#000"/>`)
  parts.push(`<text x="${x(m)}" y="${axisY + 18}" font-size="11" text-anchor="middle">${m}</text>`)
}
parts.push(
  `<line x1="${x(TTL)}" y1="${top - 4}" x2="${x(TTL)}" y2="${axisY}" stroke="#c00" stroke-dasharray="4 3"/>`,
  `<text x="${x(TTL) + 4}" y="${axisY - 4}" font-size="11" fill="#c00">TTL</text>`,
  `<text x="${x(END)}" y="${axisY + 34}" font-size="11" text-anchor="end">minutes since the value was stored</text>`
)
const height = axisY + 44
const svg =
  `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
${parts.join("\n")}
</svg>
`
fs.writeFileSync(OUT, svg)
console.log(`wrote ${OUT}`)
