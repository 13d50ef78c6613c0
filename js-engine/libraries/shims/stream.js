// node's `stream`: sax asks for it only for its streaming API, which xml2js does not use, and
// falls back to a plain function when `Stream` is missing.
export {};
