// {{name}}: a sluice source function in JavaScript, written the way Segment's are.
//
// onRequest gets each webhook request sent to the source and the source's settings. Its
// Segment.identify / track / page / screen / group / alias calls become the source's events,
// sent on only if onRequest ends without error. request.json() and request.text() read the
// body; request.headers and request.url are there too. Throw to refuse the request.
//
// As created it takes a made-up app's webhook, {"kind": "signup" | <other>, "user": ..., ...}:
// a signup becomes an identify (traits email and plan) and a track "Signed Up"; any other
// kind a track named after it, with the body's other fields as properties.
//
// Test it:  sluice run index.js requests.jsonl --kind source --expect expected.jsonl
// Deploy:   sluice functions deploy index.js --name {{name}} --type SOURCE

async function onRequest(request, settings) {
  const { kind, user, ...fields } = await request.json();
  if (!kind || !user) {
    throw new ValidationError('expected {"kind": ..., "user": ...}');
  }
  if (kind === 'signup') {
    Segment.identify({ userId: user, traits: { email: fields.email, plan: fields.plan } });
    Segment.track({ event: 'Signed Up', userId: user, properties: { plan: fields.plan } });
    return;
  }
  Segment.track({ event: titleCase(kind), userId: user, properties: fields });
}

// `order_paid` -> `Order Paid`.
function titleCase(kind) {
  return kind
    .split(/[_\s-]+/)
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join(' ');
}
