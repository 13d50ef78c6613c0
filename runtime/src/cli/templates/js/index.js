// {{name}}: a sluice insert function in JavaScript, written the way Segment's are.
//
// Each handler (onTrack, onIdentify, onPage, onScreen, onGroup, onAlias, onDelete) gets the
// event and the instance's settings. Return the event (changed or not) to send it on, or
// null to drop it. Throw ValidationError, InvalidEventPayload, EventNotSupported, RetryError
// or DropEvent as in Segment. A handler you leave out answers EventNotSupported.
// console.log / info / warn / error go to the function's logs (`sluice functions logs`).
//
// Try it:   sluice run index.js events.jsonl
// Test it:  sluice run index.js events.jsonl --expect expected.jsonl
// Deploy:   sluice functions deploy index.js --name {{name}}

const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g;

async function onTrack(event, settings) {
  // Drop the test events some SDKs send.
  if (event.event === 'Test Event') {
    return null;
  }
  if (!event.userId && !event.anonymousId) {
    throw new ValidationError('a track event needs a userId or anonymousId');
  }
  const redacted = maskEmails(event.properties || {});
  if (redacted > 0) {
    console.log(`redacted ${redacted} values`);
  }
  return event;
}

// Replaces e-mail addresses in the object's string values with [EMAIL]; returns how many.
function maskEmails(object) {
  let count = 0;
  for (const key of Object.keys(object)) {
    const value = object[key];
    if (typeof value === 'string') {
      object[key] = value.replace(EMAIL, () => {
        count += 1;
        return '[EMAIL]';
      });
    }
  }
  return count;
}
