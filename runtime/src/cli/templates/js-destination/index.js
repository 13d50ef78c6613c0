// {{name}}: a sluice destination function in JavaScript, written the way Segment's are.
//
// Each handler (onTrack, onIdentify, onPage, onScreen, onGroup, onAlias, onDelete) gets one
// event and the destination's settings, and sends the event out with fetch. A handler that
// resolves delivered the event. Throw RetryError to have sluice try again later (put
// `retry-after=<seconds>` in the message to say when); any other error makes the event a
// dead letter with the message. A handler you leave out means Segment's EventNotSupported:
// the event is skipped. The function reaches only the hosts in the setting allowedHosts.
// console.log / info / warn / error go to the function's logs.
//
// Test it:  sluice run index.js events.jsonl --kind destination --receiver \
//             --settings '{"url":"{{receiver}}/events"}' --expect expected.jsonl
// Deploy:   sluice functions deploy index.js --name {{name}} --type DESTINATION --setting url:STRING

async function onTrack(event, settings) {
  await send(settings, {
    type: 'track',
    user: event.userId ?? event.anonymousId,
    name: event.event,
    properties: event.properties ?? {},
  });
}

async function onIdentify(event, settings) {
  await send(settings, {
    type: 'identify',
    user: event.userId ?? event.anonymousId,
    traits: event.traits ?? {},
  });
}

// POSTs `body` as JSON to settings.url: a 429 or a 5xx is retried, any other failure is not.
async function send(settings, body) {
  const response = await fetch(settings.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (response.status === 429 || response.status >= 500) {
    const after = response.headers.get('retry-after') ?? '';
    throw new RetryError(`status ${response.status} retry-after=${after}`);
  }
  if (!response.ok) {
    throw new Error(`status ${response.status}: ${await response.text()}`);
  }
}
