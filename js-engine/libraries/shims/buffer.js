// Injected into bundles whose code uses node's global `Buffer` (uuidv5): the `buffer` package,
// node's Buffer in plain JavaScript. Seen only by the bundle; never a global of the function.
export { Buffer } from "buffer";
