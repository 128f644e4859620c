/**
 * Key parameters hashed by content: `Key.file(path)`, `Key.dir(path)` (and `file:` URLs).
 *
 * @since 0.1.0
 */
export * from "./key/pathKey.js"
