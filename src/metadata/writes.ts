/**
 * The MetadataStore members that change entries and are effects: what a wrapper that must notice
 * every write wraps (the memory tier's check after this process's own writes, PostgreSQL's change
 * count). One list for both, so a new write cannot be counted by one and missed by the other (until
 * 2026-12-02 PostgreSQL's count missed `upsertMany`). `clear` is an effect value, not a function:
 * each wrapper adds it. The synchronous fast paths (`unsafeUpsert`, `unsafeUpsertMany`) are not
 * effects: a wrapper changes or drops them itself (see `MetadataStore.Service`).
 *
 * @since 0.1.0
 * @internal
 */
import type { MetadataStore } from "./service.js"

/** @internal */
export const WRITES = [
  "upsert",
  "upsertMany",
  "remove",
  "removeCounted",
  "touch",
  "evict",
  "repairSize"
] as const satisfies ReadonlyArray<keyof MetadataStore.Service>
