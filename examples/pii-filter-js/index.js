// PII filter: redacts personal data in `properties`, `traits` and `context`.
//
// The JavaScript twin of the Rust example `examples/pii-filter`: for the same event and the
// same settings it gives the same output, field for field. The detection rules are those of
// `guest-sdk/src/pii.rs` (read its module comment for the full specification); this file ports
// them one scanner at a time, in the same order and with the same names.
//
// Settings (all optional):
//   dropFields  array of dotted paths removed before redaction, e.g. ["context.ip", "properties.phone"]
//   hashUserId  true: replace `userId` with its SHA-256 hex digest (default false)
//   redaction   "mask" (default: "[EMAIL]", "[PHONE]", "[CARD]", "[IP]", "[SSN]") or "hash"
//               (SHA-256 hex of the normalised value, so the same person still joins across events)
//
// Return the event to forward it; returning null (or nothing) would drop it.

async function onTrack(event, settings) {
  return filter(event, settings);
}

async function onIdentify(event, settings) {
  return filter(event, settings);
}

async function onPage(event, settings) {
  return filter(event, settings);
}

async function onScreen(event, settings) {
  return filter(event, settings);
}

async function onGroup(event, settings) {
  return filter(event, settings);
}

async function onAlias(event, settings) {
  return filter(event, settings);
}

// A user-deletion request must reach the destinations, so that they delete the user too.
async function onDelete(event, settings) {
  return filter(event, settings);
}

// ---------------------------------------------------------------------------------------------
// The filter

const SECTIONS = ['properties', 'traits', 'context'];

function filter(event, settings) {
  settings = isObject(settings) ? settings : {};
  checkShape(event);
  const how = settings.redaction === 'hash' ? 'hash' : 'mask';
  if (Array.isArray(settings.dropFields)) {
    for (const path of settings.dropFields) {
      if (typeof path === 'string') dropPath(event, path);
    }
  }
  for (const section of SECTIONS) {
    if (isObject(event[section])) redactStrings(event[section], how);
  }
  // Only a real boolean counts: "true" (a string) leaves the id alone, as in Rust.
  if (settings.hashUserId === true && typeof event.userId === 'string') {
    event.userId = crypto.sha256(event.userId);
  }
  return writtenLikeRust(event);
}

// Removes `section.key.key...`; unknown sections, missing keys and non-object parents are
// ignored. Arrays are not walked into: `properties.items.0` removes nothing.
function dropPath(event, path) {
  const [section, ...keys] = path.split('.');
  if (!SECTIONS.includes(section) || keys.length === 0) return;
  const last = keys.pop();
  let current = event[section];
  if (!isObject(current)) return;
  for (const key of keys) {
    current = Object.hasOwn(current, key) ? current[key] : undefined;
    if (!isObject(current)) return;
  }
  delete current[last];
}

// Redacts every string inside `root` (nested objects and arrays too; keys, numbers and booleans
// are left alone). An explicit stack rather than recursion, as in Rust, so deeply nested input
// cannot exhaust the call stack.
function redactStrings(root, how) {
  const stack = [root];
  while (stack.length > 0) {
    const container = stack.pop();
    for (const key of Object.keys(container)) {
      const value = container[key];
      if (typeof value === 'string') {
        container[key] = redactText(value, how);
      } else if (value !== null && typeof value === 'object') {
        stack.push(value);
      }
    }
  }
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------------
// The event as the Rust SDK reads and writes it (guest-sdk/src/event.rs)
//
// A Rust function receives a typed event: the fields below must be strings (null means absent),
// the four maps must be objects (null reads as {}), and anything else is refused before the
// handler runs. Written back, absent fields and *empty maps* are left out. Doing the same here
// keeps the two filters' output identical, e.g. when `dropFields` empties `properties`.

const STRING_FIELDS = ['messageId', 'userId', 'anonymousId', 'event', 'name', 'groupId',
  'previousId', 'timestamp'];
const MAP_FIELDS = ['properties', 'traits', 'context', 'integrations'];

function checkShape(event) {
  for (const field of STRING_FIELDS) {
    const value = event[field];
    if (value != null && typeof value !== 'string') {
      throw new InvalidEventPayload(`the event is not a valid Segment event: ${field} is not a string`);
    }
  }
  for (const field of MAP_FIELDS) {
    const value = event[field];
    if (value != null && !isObject(value)) {
      throw new InvalidEventPayload(`the event is not a valid Segment event: ${field} is not an object`);
    }
  }
}

function writtenLikeRust(event) {
  for (const field of STRING_FIELDS) {
    if (event[field] === null) delete event[field];
  }
  for (const field of MAP_FIELDS) {
    const value = event[field];
    if (value === null || (isObject(value) && Object.keys(value).length === 0)) delete event[field];
  }
  return event;
}

// ---------------------------------------------------------------------------------------------
// Finding PII
//
// The Rust scanners read UTF-8 bytes; JavaScript strings are UTF-16 code units. The two agree
// because every rule is about ASCII only: a digit is 0-9, a word character is [A-Za-z0-9_],
// and everything else non-ASCII (é, ☕, an emoji's two surrogates, a non-breaking space, Arabic
// digits) belongs to no class at all. A non-ASCII character is 2-4 bytes in UTF-8 and 1-2 code
// units in UTF-16, but all of them are "no class", and no rule counts how many such units stand
// in a row. So both versions see the same sequence of classes, find the same matches (which are
// all ASCII, so never split a character) and produce the same text.
//
// That is also why the scanners compare character codes, and the regular expression below that
// finds where they could match spells its classes out: `\s`, `\b`, `\w` or Unicode-aware classes
// would make non-ASCII text behave differently from Rust.

const LABELS = { email: 'EMAIL', ssn: 'SSN', card: 'CARD', phone: 'PHONE', ipv6: 'IP', ipv4: 'IP' };

const SPACE = 0x20, PLUS = 0x2b, DASH = 0x2d, DOT = 0x2e, ZERO = 0x30, COLON = 0x3a,
  AT = 0x40, OPEN = 0x28, CLOSE = 0x29, UNDERSCORE = 0x5f, PERCENT = 0x25;

// The code unit at `i`, or 0 outside the text: 0 is in no class, so the edges of the text
// behave like any other boundary.
function at(s, i) {
  return i >= 0 && i < s.length ? s.charCodeAt(i) : 0;
}

function before(s, i) {
  return at(s, i - 1);
}

function isDigit(c) {
  return c >= 0x30 && c <= 0x39;
}

function isLetter(c) {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

function isHex(c) {
  return isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function isWord(c) {
  return isDigit(c) || isLetter(c) || c === UNDERSCORE;
}

function isLocal(c) {
  return isDigit(c) || isLetter(c) || c === DOT || c === UNDERSCORE || c === PERCENT ||
    c === PLUS || c === DASH;
}

function isLabel(c) {
  return isDigit(c) || isLetter(c) || c === DASH;
}

function isV6(c) {
  return isHex(c) || c === COLON || c === DOT;
}

// Where a match could start. Each alternative is a necessary condition for one kind to match
// at the position where the regular expression's match starts (spelled with ASCII classes, so
// non-ASCII text is "no class" as in Rust; no `\d`, `\w` or `i`):
//   email  a run of local characters, "@", a label character (the scanner then checks the rest);
//   ssn    ddd-dd-dddd;
//   card   13 digits joined by at most one space or dash;
//   phone  an optional "+" and "(", then 10 digits with at most two of " .()-" between two;
//   ipv6   two colons within the 46 characters an address can have;
//   ipv4   four dotted runs of 1-3 digits.
// The leftmost match of the alternation is the first position where any kind could match, so
// the scan below jumps there instead of testing every character: a position it skips can start
// nothing, and the scanners (a port of the Rust ones) still decide every match, so the output is
// the Rust filter's. `u`: strings with emoji are searched by the engine's compiled matcher too.
const CANDIDATE =
  /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]|[0-9]{3}-[0-9]{2}-[0-9]{4}|[0-9](?:[ -]?[0-9]){12}|\+?\(?[0-9](?:[ .()-]{0,2}[0-9]){9}|[0-9A-Fa-f.]{0,44}:[0-9A-Fa-f.]{0,44}:|[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]/gu;
// The same without e-mail: inside a local run whose e-mail already failed, so that a long run
// is searched once, not once per character.
const CANDIDATE_NO_EMAIL =
  /[0-9]{3}-[0-9]{2}-[0-9]{4}|[0-9](?:[ -]?[0-9]){12}|\+?\(?[0-9](?:[ .()-]{0,2}[0-9]){9}|[0-9A-Fa-f.]{0,44}:[0-9A-Fa-f.]{0,44}:|[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]/gu;

const NOTHING_FOUND = Object.freeze([]);

// The first position at or after `pos` where a match could start, or -1. Before
// `emailDeadUntil` no e-mail is tried, so only the other kinds count there.
function nextCandidate(text, pos, emailDeadUntil) {
  if (pos < emailDeadUntil) {
    CANDIDATE_NO_EMAIL.lastIndex = pos;
    const found = CANDIDATE_NO_EMAIL.exec(text);
    if (found !== null && found.index < emailDeadUntil) return found.index;
    pos = emailDeadUntil;
  }
  CANDIDATE.lastIndex = pos;
  const found = CANDIDATE.exec(text);
  return found === null ? -1 : found.index;
}

// Every match in `text`, left to right and non-overlapping: at each position the kinds are
// tried in the order email, ssn, card, phone, ipv6, ipv4 and the first that matches wins.
function findPii(text) {
  // Most strings hold nothing that could be PII: one search says so.
  let pos = nextCandidate(text, 0, 0);
  if (pos < 0) return NOTHING_FOUND;
  const found = [];
  const hasAt = text.includes('@');
  // An IPv6 address has at least two colons; a URL's one colon must not make every hex
  // letter a candidate.
  const firstColon = text.indexOf(':');
  const hasColon = firstColon >= 0 && text.indexOf(':', firstColon + 1) >= 0;
  let lastEnd = 0;
  // A failed e-mail local part fails the same way from any later start inside it, so it is
  // not tried again (this keeps long runs of local characters linear).
  let emailDeadUntil = 0;

  function matchAt(i) {
    const c = at(text, i);
    const emailStart = i === lastEnd || !isLocal(before(text, i));
    if (hasAt && isLocal(c) && emailStart && i >= emailDeadUntil) {
      const result = email(text, i);
      if (result.end >= 0) return { kind: 'email', start: result.start, end: result.end };
      emailDeadUntil = result.runEnd;
    }
    const digit = isDigit(c);
    let end;
    if (digit) {
      if ((end = ssn(text, i)) >= 0) return { kind: 'ssn', start: i, end };
      if ((end = card(text, i)) >= 0) return { kind: 'card', start: i, end };
    }
    if ((digit || c === PLUS || c === OPEN) && (end = phone(text, i)) >= 0) {
      return { kind: 'phone', start: i, end };
    }
    if (hasColon && isV6(c) && (end = ipv6(text, i)) >= 0) return { kind: 'ipv6', start: i, end };
    if (digit && (end = ipv4(text, i)) >= 0) return { kind: 'ipv4', start: i, end };
    return null;
  }

  while (pos >= 0 && pos < text.length) {
    const c = text.charCodeAt(pos);
    // The scan's own filter, as in Rust: characters that start nothing cost one test.
    const mayStart = isDigit(c) || c === PLUS || c === OPEN || (hasAt && isLocal(c)) ||
      (hasColon && isV6(c));
    const match = mayStart ? matchAt(pos) : null;
    if (match) {
      found.push(match);
      pos = lastEnd = match.end;
    } else {
      pos += 1;
    }
    pos = nextCandidate(text, pos, emailDeadUntil);
  }
  return found;
}

// An e-mail address starting in the local run at `i`: `{start, end}` (end -1 when there is
// none) and `runEnd`, the end of the local run, so the caller can skip it.
function email(s, i) {
  let j = i;
  while (isLocal(at(s, j))) j++;
  // Leading dots are not part of the address ("...grace@example.com").
  let start = i;
  while (start < j && at(s, start) === DOT) start++;
  const none = { start: -1, end: -1, runEnd: j };
  if (start === j || at(s, j) !== AT) return none;
  let p = j + 1;
  let labels = 0;
  let end = -1;
  for (;;) {
    const label = p;
    while (isLabel(at(s, p))) p++;
    if (p === label) break;
    // A label's trailing dashes are never part of the top-level domain.
    let t = p;
    while (t > label && at(s, t - 1) === DASH) t--;
    // The address ends after the last label, other than the first, of 2+ letters.
    if (labels > 0 && t - label >= 2 && allLetters(s, label, t)) end = t;
    labels++;
    if (at(s, p) === DOT && isLabel(at(s, p + 1))) {
      p++;
    } else {
      break;
    }
  }
  return end >= 0 ? { start, end, runEnd: j } : none;
}

function allLetters(s, from, to) {
  for (let k = from; k < to; k++) {
    if (!isLetter(at(s, k))) return false;
  }
  return true;
}

// ddd-dd-dddd, neither preceded nor followed by a word character or a dash. Area numbers the
// SSA never issues (000, 666, 9dd) count too: ITINs and test data use them.
function ssn(s, i) {
  if (i + 11 > s.length) return -1;
  for (let k = 0; k < 11; k++) {
    const c = at(s, i + k);
    if (k === 3 || k === 6 ? c !== DASH : !isDigit(c)) return -1;
  }
  const edge = (c) => isWord(c) || c === DASH;
  if (edge(before(s, i)) || edge(at(s, i + 11))) return -1;
  return i + 11;
}

// 13 to 19 digits in groups joined by one space or dash; the longest prefix that ends a group,
// is not followed by a word character and passes the Luhn checksum.
function card(s, i) {
  if (isWord(before(s, i))) return -1;
  // Luhn sums for every prefix at once: sums[x] doubles the digits whose index has parity x;
  // a prefix of n digits doubles parity n % 2, because its last digit stays single.
  const sums = [0, 0];
  let n = 0;
  let p = i;
  let best = -1;
  for (;;) {
    while (isDigit(at(s, p))) {
      if (n === 19) return best;
      const d = at(s, p) - ZERO;
      sums[n % 2] += d > 4 ? 2 * d - 9 : 2 * d;
      sums[1 - (n % 2)] += d;
      n++;
      p++;
    }
    if (n >= 13 && !isWord(at(s, p)) && sums[n % 2] % 10 === 0) best = p;
    const sep = at(s, p);
    if ((sep === SPACE || sep === DASH) && isDigit(at(s, p + 1))) {
      p++;
    } else {
      return best;
    }
  }
}

// Reads one phone group at `p` into `g`: a digit run, or (once per number) "(" digits ")".
// Returns the group's end, or -1 when there is no group at `p`. A bare digit run stops past
// 15 digits, as the number is rejected anyway; a "(" run is read to its end to learn whether
// it is a group at all.
function readGroup(g, s, p) {
  const open = at(s, p) === OPEN && !g.paren;
  const start = p + (open ? 1 : 0);
  let q = start;
  while (isDigit(at(s, q)) && (open || g.digits <= 15)) {
    q++;
    g.digits++;
  }
  if (q === start || (open && at(s, q) !== CLOSE)) return -1;
  g.count++;
  g.longest = Math.max(g.longest, q - start);
  g.paren = g.paren || open;
  return q + (open ? 1 : 0);
}

// An optional "+", then groups joined by one space, dash or dot (or by nothing next to the
// "(...)" group), 10 to 15 digits in all. Not a decimal ("12345678.90"), not IPv4-shaped
// ("999.999.999.999"), not followed by a word character or a clock time ("...:07").
function phone(s, i) {
  const prev = before(s, i);
  if (isWord(prev) || prev === PLUS || prev === DASH || prev === DOT) return -1;
  const plus = at(s, i) === PLUS;
  let g = { digits: 0, count: 0, dots: 0, longest: 0, paren: false };
  let p = readGroup(g, s, i + (plus ? 1 : 0));
  if (p < 0) return -1;
  while (g.digits <= 15) {
    const sep = at(s, p);
    const joined = sep === SPACE || sep === DASH || sep === DOT ? 1 : 0;
    // Read into a copy: a separator not followed by a group ends the number before it.
    const next = { ...g };
    const end = readGroup(next, s, p + joined);
    if (end < 0) break;
    if (sep === DOT && joined === 1) next.dots++;
    g = next;
    p = end;
  }
  const after = at(s, p);
  const clock = after === COLON && isDigit(at(s, p + 1));
  const decimal = g.count === 2 && g.dots === 1;
  const ipv4Shaped = g.count === 4 && g.dots === 3 && g.longest <= 3 && !plus && !g.paren;
  const ok = g.digits >= 10 && g.digits <= 15 && !isWord(after) && !clock;
  return ok && !decimal && !ipv4Shaped ? p : -1;
}

// A maximal run of [0-9A-Fa-f:.] that parses as an IPv6 address (or does once a trailing "."
// or ":" is left out).
function ipv6(s, i) {
  const prev = before(s, i);
  if (isV6(prev) || isWord(prev)) return -1;
  let j = i;
  while (isV6(at(s, j))) {
    j++;
    // The longest valid form is 45 characters, plus one trimmable one.
    if (j - i > 46) return -1;
  }
  const run = s.slice(i, j);
  let colons = 0;
  let hex = false;
  for (let k = i; k < j; k++) {
    if (at(s, k) === COLON) colons++;
    if (isHex(at(s, k))) hex = true;
  }
  if (isWord(at(s, j)) || colons < 2 || !hex) return -1;
  if (parsesAsIpv6(run)) return j;
  if ((run.endsWith('.') || run.endsWith(':')) && parsesAsIpv6(run.slice(0, -1))) return j - 1;
  return -1;
}

// Whether `text` (ASCII) is an IPv6 address as Rust's `std::net::Ipv6Addr` parses it: up to 8
// groups of 1-4 hex digits, one "::" for one or more zero groups, an optional trailing dotted
// IPv4 (no leading zeros, in place of the last two groups), no zone. A port of the standard
// library's parser, so that edge cases ("1::2:3:4:5:6:7", "::1.2.3.4") agree.
function parsesAsIpv6(text) {
  let pos = 0;
  // Runs a reader; on failure (null) puts the position back where it was.
  const atomically = (read) => {
    const saved = pos;
    const result = read();
    if (result === null) pos = saved;
    return result;
  };
  const readChar = (ch) => atomically(() => (text[pos] === ch ? (pos++, true) : null));
  const readSeparator = (sep, index, inner) =>
    atomically(() => (index > 0 && readChar(sep) === null ? null : inner()));
  const digitValue = (c, radix) => {
    if (isDigit(c)) return c - ZERO;
    if (radix === 16 && isHex(c)) return (c | 0x20) - 0x61 + 10;
    return -1;
  };
  // At most `maxDigits` digits and a value of at most `max` (the u8 or u16 it is read into).
  const readNumber = (radix, maxDigits, max, allowZeroPrefix) => atomically(() => {
    const leadingZero = text[pos] === '0';
    let value = 0;
    let digits = 0;
    let d;
    while ((d = digitValue(at(text, pos), radix)) >= 0) {
      pos++;
      value = value * radix + d;
      digits++;
      if (digits > maxDigits) return null;
    }
    if (digits === 0 || (!allowZeroPrefix && leadingZero && digits > 1) || value > max) return null;
    return value;
  });
  const readIpv4 = () => atomically(() => {
    for (let i = 0; i < 4; i++) {
      if (readSeparator('.', i, () => readNumber(10, 3, 255, false)) === null) return null;
    }
    return true;
  });
  // Reads up to `limit` groups; returns [how many, whether the last two were an IPv4].
  const readGroups = (limit) => {
    for (let i = 0; i < limit; i++) {
      if (i < limit - 1 && readSeparator(':', i, readIpv4) !== null) return [i + 2, true];
      if (readSeparator(':', i, () => readNumber(16, 4, 0xffff, true)) === null) return [i, false];
    }
    return [limit, false];
  };

  const [head, headIpv4] = readGroups(8);
  let ok = true;
  if (head < 8) {
    // An IPv4 part is not allowed before "::", and with fewer than 8 groups "::" must follow.
    if (headIpv4 || readChar(':') === null || readChar(':') === null) {
      ok = false;
    } else {
      readGroups(8 - (head + 1));
    }
  }
  return ok && pos === text.length;
}

// Four octets 0-255 joined by dots, no leading zeros; not part of a longer dotted number
// ("1.2.3.4.5", "v1.2.3.4").
function ipv4(s, i) {
  const prev = before(s, i);
  if (isWord(prev) || (prev === DOT && isDigit(before(s, i - 1)))) return -1;
  let p = i;
  for (let octet = 0; octet < 4; octet++) {
    if (octet > 0) {
      if (at(s, p) !== DOT) return -1;
      p++;
    }
    const start = p;
    let value = 0;
    while (isDigit(at(s, p)) && p - start < 4) {
      value = value * 10 + (at(s, p) - ZERO);
      p++;
    }
    const len = p - start;
    if (len === 0 || len > 3 || value > 255 || (len > 1 && at(s, start) === ZERO)) return -1;
  }
  const after = at(s, p);
  const dottedOn = after === DOT && isDigit(at(s, p + 1));
  return !isWord(after) && !dottedOn ? p : -1;
}

// ---------------------------------------------------------------------------------------------
// Replacing what was found

// `text` with every match replaced by its mask or its hash; text between matches is unchanged.
function redactText(text, how) {
  const matches = findPii(text);
  if (matches.length === 0) return text;
  let out = '';
  let copied = 0;
  for (const m of matches) {
    out += text.slice(copied, m.start);
    const found = text.slice(m.start, m.end);
    out += how === 'hash' ? crypto.sha256(normalised(m.kind, found)) : `[${LABELS[m.kind]}]`;
    copied = m.end;
  }
  return out + text.slice(copied);
}

// What is hashed: an e-mail in lowercase; phone, card and SSN numbers as their digits only (a
// phone keeps its leading "+"); IP addresses as written.
function normalised(kind, found) {
  switch (kind) {
    case 'email':
      // Matches are ASCII, so this is the same as Rust's to_ascii_lowercase().
      return found.toLowerCase();
    case 'ipv4':
    case 'ipv6':
      return found;
    default: {
      let digits = kind === 'phone' && found.startsWith('+') ? '+' : '';
      for (const ch of found) {
        if (ch >= '0' && ch <= '9') digits += ch;
      }
      return digits;
    }
  }
}
