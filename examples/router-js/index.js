// Router: sends track events to destinations the Segment way, by editing `integrations`.
//
// The JavaScript twin of the Rust example `examples/router`: for the same event and the same
// settings it gives the same output.
//
// Settings:
//   routes        object from a track event's name to the one destination (name or id) that
//                 should receive it, e.g. {"Order Completed": "Warehouse"}
//   dropUnrouted  true: drop track events that no route names (default false)
//
// A routed event gets `integrations = {"All": false, "<destination>": true}`, which tells
// sluice (and Segment) to deliver it to that destination only. Other events pass unchanged.

async function onTrack(event, settings) {
  checkShape(event);
  const routes = settings && isObject(settings.routes) ? settings.routes : {};
  const name = event.event;
  const destination =
    typeof name === 'string' && Object.hasOwn(routes, name) ? routes[name] : undefined;

  if (typeof destination === 'string') {
    console.info(`routing ${JSON.stringify(name)} to ${destination}`);
    // Replaces whatever the sender put in `integrations`: only this destination receives it.
    event.integrations = { All: false, [destination]: true };
    return writtenLikeRust(event);
  }
  if (settings && settings.dropUnrouted === true) {
    // Returning null drops the event: it is counted as dropped, not as an error.
    // (`throw new DropEvent('unrouted')` would drop it too, but is reported as an error kind.)
    return null;
  }
  return writtenLikeRust(event);
}

async function onIdentify(event) {
  checkShape(event);
  return writtenLikeRust(event);
}

async function onPage(event) {
  checkShape(event);
  return writtenLikeRust(event);
}

async function onScreen(event) {
  checkShape(event);
  return writtenLikeRust(event);
}

async function onGroup(event) {
  checkShape(event);
  return writtenLikeRust(event);
}

async function onAlias(event) {
  checkShape(event);
  return writtenLikeRust(event);
}

async function onDelete(event) {
  checkShape(event);
  return writtenLikeRust(event);
}

// ---------------------------------------------------------------------------------------------
// The event as the Rust SDK reads and writes it (guest-sdk/src/event.rs)
//
// A Rust function receives a typed event: the fields below must be strings (null means absent),
// the four maps must be objects (null reads as {}), and anything else is refused before the
// handler runs. Written back, absent fields and empty maps are left out. Doing the same here
// keeps the two routers' output identical even for events that "pass unchanged".

const STRING_FIELDS = ['messageId', 'userId', 'anonymousId', 'event', 'name', 'groupId',
  'previousId', 'timestamp'];
const MAP_FIELDS = ['properties', 'traits', 'context', 'integrations'];

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

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
