// PII scrub: replaces e-mail addresses, payment card numbers (Luhn-checked), phone numbers and
// IPv4 addresses in every string of `properties` and `context`, then forwards the event.
//
// Written the way most Segment users write one: a few regular expressions applied to every
// string of the event. It is the benchmark's model of a typical JavaScript insert function
// (tests/benches/javascript.rs runs it in sluice and, unchanged, in isolated-vm), so it stays
// plain: no settings, no sluice-only globals.

const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g;
const CARD = /\b(?:\d[ -]?){12,18}\d\b/g;
const PHONE = /(?:\+\d{1,3}[-. ]?)?\(?\d{3}\)?[-. ]?\d{3}[-. ]?\d{4}\b/g;
const IPV4 = /\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b/g;

// The Luhn checksum of a string of digits: true for a plausible card number.
function luhn(digits) {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

function scrubString(text) {
  return text
    .replace(EMAIL, '[EMAIL]')
    .replace(CARD, (match) => (luhn(match.replace(/\D/g, '')) ? '[CARD]' : match))
    .replace(IPV4, '[IP]')
    .replace(PHONE, '[PHONE]');
}

// Every string inside `value` (nested objects and arrays included), scrubbed in place.
function scrub(value) {
  if (typeof value === 'string') return scrubString(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = scrub(value[i]);
  } else if (value !== null && typeof value === 'object') {
    for (const key of Object.keys(value)) value[key] = scrub(value[key]);
  }
  return value;
}

function scrubEvent(event) {
  if (event.properties) event.properties = scrub(event.properties);
  if (event.context) event.context = scrub(event.context);
  return event;
}

async function onTrack(event) {
  return scrubEvent(event);
}

async function onIdentify(event) {
  return scrubEvent(event);
}

async function onPage(event) {
  return scrubEvent(event);
}

async function onScreen(event) {
  return scrubEvent(event);
}

async function onGroup(event) {
  return scrubEvent(event);
}

async function onAlias(event) {
  return scrubEvent(event);
}
