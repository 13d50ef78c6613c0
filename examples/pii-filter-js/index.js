// PII filter: redacts personal data in `properties`, `traits` and `context`.
//
// The JavaScript twin of the Rust example `examples/pii-filter`: for the same event and the
// same settings it gives the same output, field for field. The detection rules are those of
// `guest-sdk/src/pii.rs` (read its module comment for the full specification): one regular
// expression (`PII`) decides the common kinds, and a port of the Rust scanners (same order, same
// names) decides the rest.
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
        // Most strings hold nothing that could be PII: one search, and no call.
        PII.lastIndex = 0;
        const m = PII.exec(value);
        if (m !== null) container[key] = redactFrom(value, m, how);
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
// That is also why the scanners compare character codes, and the regular expression below spells
// its classes out: `\s` (a non-breaking space), `\w` with `i` or Unicode-aware classes would make
// non-ASCII text behave differently from Rust. Its `\b` is JavaScript's, which is about the ASCII
// word characters [A-Za-z0-9_] only: the rules' word byte exactly.

const LABELS = { email: 'EMAIL', ssn: 'SSN', card: 'CARD', phone: 'PHONE', ipv6: 'IP', ipv4: 'IP' };

const SPACE = 0x20, PLUS = 0x2b, DASH = 0x2d, DOT = 0x2e, ZERO = 0x30, COLON = 0x3a,
  OPEN = 0x28, CLOSE = 0x29, UNDERSCORE = 0x5f;

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

function isV6(c) {
  return isHex(c) || c === COLON || c === DOT;
}

// One regular expression (`PII`) finds every match, and for the common kinds it also decides
// them. Its alternatives, in this order (a regular expression takes, at the leftmost position
// where any alternative matches, the first alternative that matches there, which is the order
// the kinds are tried in):
//   1. email: exactly the Rust rule (groups 1 and 2: leading dots, the address). A run of local
//      characters from here, with at least one that is not a dot, then "@", labels joined by a
//      dot that a label character follows, and a last label, not the first, of 2+ letters (its
//      trailing dashes left out) that ends the label; the greedy repetition makes it the last
//      such label. So an e-mail matches here iff this alternative does.
//   2. ssn: exactly the rule (group 3), but for "not after a dash", checked below.
//   3. card: 13 digits joined by at most one space or dash (the Luhn check is the scanner's).
//   4. phone, the common shapes (group 4): "+1-555-922-5727", "555.922.5727" (any of " .-"
//      between groups), followed by nothing that could extend the number ("(", or a separator
//      before a digit or "(") or make it a clock time. Such a number has 10-13 digits in 3 or 4
//      groups, so it is neither decimal- nor IPv4-shaped: the phone rule holds iff the character
//      before is allowed, checked below; the card alternative comes first, so no card starts
//      here.
//   5. ipv4 (group 5): four octets 0-255 without leading zeros, followed by nothing that could
//      extend a phone number or an IPv6 run (":"), or make a longer dotted number. No card
//      starts here (a dot within the first four characters), no phone (four dotted groups of
//      at most 3 digits are IPv4-shaped) and no IPv6 (a run that starts with a dotted quad does
//      not parse: the IPv4 part must come last): so it is an IPv4 address iff the character
//      before is allowed, checked below.
//   6-8. phone, IPv6 and IPv4 in any other shape: necessary conditions only (10 digits with at
//      most two of " .()-" between two; an IPv6 address starts with "::" or with a group of 1-4
//      hex digits, ":", at most 4 more and ":", as its dots can only be in an IPv4 tail after
//      the last colon; four dotted runs of 1-3 digits), decided by the scanners (`scanAt`).
//      A short IPv6 condition also keeps the engine's automaton small: this search is most of
//      the function's cost, and it runs on every string.
// A kind that needs "not after a word character" starts with `\b` (or, before ":", `\B`):
// JavaScript's `\b` is about ASCII word characters [A-Za-z0-9_], which is the rules' word byte
// exactly, so positions inside a word are skipped by the engine and not by the scanners.
// Where a kind may not be followed by something, the alternative reads one more character (no
// lookahead: it would leave the compiled engine), and the match's end comes from its group.
// Every class is spelled out in ASCII (no `\d`, `\w`, `\s` or `i`), so non-ASCII text is "no
// class" as in Rust. `u`: strings with emoji are searched by the compiled engine too.
const PII = new RegExp([
  String.raw`(\.*)([A-Za-z0-9_%+-][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})-*(?:[^A-Za-z0-9-]|$)`,
  String.raw`\b([0-9]{3}-[0-9]{2}-[0-9]{4})(?:[^A-Za-z0-9_-]|$)`,
  String.raw`\b[0-9](?:[ -]?[0-9]){12}`,
  String.raw`(\+[0-9]{1,3}[ .-][0-9]{3}[ .-][0-9]{3}[ .-][0-9]{4}|\b[0-9]{3}[ .-][0-9]{3}[ .-][0-9]{4})(?:[^A-Za-z0-9_(:. -]|[:. -](?:[^0-9(]|$)|$)`,
  String.raw`\b((?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3})(?:[^A-Za-z0-9_(:. -]|[. -](?:[^0-9(]|$)|$)`,
  String.raw`(?:\+\(?|\(|\b)[0-9](?:[ .()-]{0,2}[0-9]){9}`,
  String.raw`\b[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{0,4}:|\B::`,
  String.raw`\b[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]`,
].join('|'), 'gu');

// What the scanners find at `i` where the expression could not decide (`PII`'s alternatives
// 3 and 6-8, or a rule's "not after" failing): `{kind, end}`, or null. No e-mail starts
// here: the expression's first alternative would have matched.
function scanAt(text, i) {
  const c = text.charCodeAt(i);
  const digit = isDigit(c);
  let end;
  if (digit) {
    if ((end = ssn(text, i)) >= 0) return { kind: 'ssn', end };
    if ((end = card(text, i)) >= 0) return { kind: 'card', end };
  }
  if ((digit || c === PLUS || c === OPEN) && (end = phone(text, i)) >= 0) {
    return { kind: 'phone', end };
  }
  if (isV6(c) && (end = ipv6(text, i)) >= 0) return { kind: 'ipv6', end };
  if (digit && (end = ipv4(text, i)) >= 0) return { kind: 'ipv4', end };
  return null;
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

// `text` with every match replaced by its mask or its hash, given `m`, the first match of `PII`
// (searched from 0; `redactStrings` runs that search itself, so that a string without PII,
// most of them, costs one search and no call). Text between matches is unchanged. Matches are
// found left to right and do not overlap: at each position the kinds are tried in the order
// email, ssn, card, phone, ipv6, ipv4 and the first that matches wins, as in Rust.
function redactFrom(text, m, how) {
  let out = '';
  let copied = 0;
  do {
    const p = m.index;
    let kind = null;
    let start = p;
    let end = -1;
    if (m[2] !== undefined) {
      kind = 'email';
      start = p + m[1].length;
      end = start + m[2].length;
    } else if (m[4] !== undefined) {
      if (phoneMayFollow(before(text, p))) {
        kind = 'phone';
        end = p + m[4].length;
      }
    } else if (m[5] !== undefined) {
      if (ipv4MayFollow(text, p)) {
        kind = 'ipv4';
        end = p + m[5].length;
      }
    } else if (m[3] !== undefined && before(text, p) !== DASH) {
      kind = 'ssn';
      end = p + 11;
    }
    if (kind === null) {
      const found = scanAt(text, p);
      if (found !== null) {
        kind = found.kind;
        end = found.end;
      }
    }
    if (kind === null) {
      // Nothing starts here: search again from the next character.
      PII.lastIndex = p + 1;
    } else {
      const value = text.slice(start, end);
      out += text.slice(copied, start) +
        (how === 'hash' ? crypto.sha256(normalised(kind, value)) : `[${LABELS[kind]}]`);
      copied = end;
      PII.lastIndex = end;
    }
  } while ((m = PII.exec(text)) !== null);
  return copied === 0 ? text : out + text.slice(copied);
}

// The phone rule's "before": not a word character, "+", "-" or ".".
function phoneMayFollow(c) {
  return !isWord(c) && c !== PLUS && c !== DASH && c !== DOT;
}

// The IPv4 rule's "before": not a word character, nor a dot after a digit.
function ipv4MayFollow(s, i) {
  const c = before(s, i);
  return !isWord(c) && !(c === DOT && isDigit(before(s, i - 1)));
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
