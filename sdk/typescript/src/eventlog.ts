/**
 * Event logs (§12c): parse dstack's JSON form, recompute runtime digests, replay RTMR0-3 and
 * read the application identity.
 * @module
 */
import { concat, ctEqual, fromHex, toHex, u32le, utf8 } from './bytes.js';
import { sha384 } from './crypto.js';
import { VerifyError } from './errors.js';
import { canonicalJsonBytes } from './jcs.js';
import { hasLoneSurrogate, parseJson, show } from './json.js';

/** dstack's runtime event type, `0x08000001`. */
export const RUNTIME_EVENT_TYPE = 0x08000001;
const MAX_TEXT = 4 * 1024 * 1024;
const MAX_EVENTS = 4096;
const MAX_NAME = 256;
const MAX_PAYLOAD = 64 * 1024;

/** One parsed event, its digest recomputed for runtime events. */
export interface Event {
  imr: number;
  eventType: number;
  /** The digest extended (48 bytes): recomputed for runtime events, as supplied for others. */
  digest: Uint8Array;
  name: string;
  payload: Uint8Array;
  /** Whether it is a runtime event (`imr` 3 and type `0x08000001`). */
  runtime: boolean;
}

/** The application identity read from a replayed log (§12c). */
export interface Identity {
  composeHash?: Uint8Array;
  appId?: Uint8Array;
  instanceId?: Uint8Array;
  keyProvider?: Uint8Array;
  osImageHash?: Uint8Array;
  /** The launcher's `hypervisor-host-sha256` payload (32 bytes). */
  hostSha256?: Uint8Array;
}

function bad(message: string): never {
  throw new VerifyError('EventLog', message);
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

/** The v1 runtime digest: `SHA384(le32(type) || ":" || name || ":" || payload)`. */
export async function runtimeDigestV1(name: string, payload: Uint8Array): Promise<Uint8Array> {
  return sha384(runtimePreimageV1(name, payload));
}

function runtimePreimageV1(name: string, payload: Uint8Array): Uint8Array {
  return concat(u32le(RUNTIME_EVENT_TYPE), utf8(':'), utf8(name), utf8(':'), payload);
}

function runtimePreimageV2(name: string, payload: Uint8Array): Uint8Array {
  return canonicalJsonBytes({ name, payload: toHex(payload), type: RUNTIME_EVENT_TYPE });
}

/**
 * Parses an event log in the JSON form (the text of `event_log`, or the array itself) and
 * recomputes every runtime event's digest.
 * @throws VerifyError (`EventLog`) naming the event and field.
 */
export async function parseEventLog(log: string | unknown[]): Promise<Event[]> {
  let items: unknown;
  if (typeof log === 'string') {
    if (utf8(log).length > MAX_TEXT) bad('the event log is over 4 MiB');
    try {
      items = parseJson(log);
    } catch {
      bad('the event log is not JSON');
    }
  } else {
    items = log;
  }
  if (!Array.isArray(items)) bad('the event log is not a JSON array');
  if (items.length > MAX_EVENTS) bad(`the event log has ${items.length} events (at most ${MAX_EVENTS})`);
  const events: Event[] = [];
  for (let i = 0; i < items.length; i++) {
    const e = items[i] as Record<string, unknown>;
    const at = `event ${i}`;
    if (typeof e !== 'object' || e === null || Array.isArray(e)) bad(`${at} is not an object`);
    const imr = e['imr'];
    if (!isInt(imr) || imr < 0 || imr > 3) bad(`${at}: \`imr\` must be an integer 0-3`);
    const eventType = e['event_type'];
    if (!isInt(eventType) || eventType < 0) bad(`${at}: \`event_type\` must be an integer`);
    const name = e['event'];
    if (typeof name !== 'string') bad(`${at}: \`event\` must be a string`);
    if (hasLoneSurrogate(name)) bad(`${at}: \`event\` is not valid UTF-8 text (a lone surrogate)`);
    if (utf8(name).length > MAX_NAME) bad(`${at}: \`event\` is over ${MAX_NAME} bytes`);
    const payloadHex = e['event_payload'];
    if (typeof payloadHex !== 'string') bad(`${at}: \`event_payload\` must be hex`);
    let payload: Uint8Array;
    let supplied: Uint8Array;
    try {
      payload = fromHex(payloadHex, 'event_payload');
      const d = e['digest'];
      if (d !== undefined && d !== null && typeof d !== 'string') throw new TypeError('`digest` is not hex');
      supplied = fromHex(typeof d === 'string' ? d : '', 'digest');
    } catch (err) {
      bad(`${at}: ${(err as Error).message}`);
    }
    if (payload.length > MAX_PAYLOAD) bad(`${at}: \`event_payload\` is over 64 KiB`);
    if (supplied.length !== 0 && supplied.length !== 48) bad(`${at}: \`digest\` must be 48 bytes or empty`);
    const runtime = imr === 3 && eventType === RUNTIME_EVENT_TYPE;
    if (imr === 3 && !runtime) {
      bad(`${at}: an RTMR3 event must be a runtime event (type 0x08000001), not type ${eventType}`);
    }
    let digest: Uint8Array;
    if (runtime) {
      const version = e['version'];
      let preimage: Uint8Array;
      if (version === undefined || version === null || version === 1) {
        if (name.includes(':')) bad(`${at}: a v1 runtime event name cannot hold \`:\``);
        preimage = runtimePreimageV1(name, payload);
      } else if (version === 2) {
        preimage = runtimePreimageV2(name, payload);
      } else {
        bad(`${at}: runtime event version ${show(version)} (expected 1 or 2)`);
      }
      const pre = e['preimage'];
      if (pre !== undefined && pre !== null) {
        let given: Uint8Array;
        try {
          given = fromHex(pre as string, 'preimage');
        } catch (err) {
          bad(`${at}: ${(err as Error).message}`);
        }
        if (!ctEqual(given, preimage)) bad(`${at} (${name}): \`preimage\` is not the bytes its digest hashes`);
      }
      digest = await sha384(preimage);
      if (supplied.length !== 0 && !ctEqual(supplied, digest)) {
        bad(`${at} (${name}): the supplied digest ${toHex(supplied)} is not the recomputed ${toHex(digest)}`);
      }
    } else {
      if (supplied.length !== 48) bad(`${at}: \`digest\` must be 48 bytes for a non-runtime event`);
      digest = supplied;
    }
    events.push({ imr, eventType, digest, name, payload, runtime });
  }
  return events;
}

/** Replays `events`: RTMR0-3, each from 48 zero bytes, `RTMR = SHA384(RTMR || digest)`. */
export async function replay(events: Event[]): Promise<Uint8Array[]> {
  const rtmrs = [0, 1, 2, 3].map(() => new Uint8Array(48) as Uint8Array);
  for (const e of events) rtmrs[e.imr] = await sha384(concat(rtmrs[e.imr]!, e.digest));
  return rtmrs;
}

/** Which registers the log has at least one event for. */
export function covered(events: Event[]): boolean[] {
  const c = [false, false, false, false];
  for (const e of events) c[e.imr] = true;
  return c;
}

/**
 * The application identity: among runtime events, the first `compose-hash`, `app-id`,
 * `instance-id`, `key-provider`, `os-image-hash`, `hypervisor-host-sha256`, stopping at the
 * first `system-ready`.
 * @throws VerifyError (`EventLog`) when the first `hypervisor-host-sha256` is not 32 bytes.
 */
export function identity(events: Event[]): Identity {
  const id: Identity = {};
  const keys: Record<string, keyof Identity> = {
    'compose-hash': 'composeHash',
    'app-id': 'appId',
    'instance-id': 'instanceId',
    'key-provider': 'keyProvider',
    'os-image-hash': 'osImageHash',
    'hypervisor-host-sha256': 'hostSha256',
  };
  for (const e of events) {
    if (!e.runtime) continue;
    if (e.name === 'system-ready') break;
    const k = keys[e.name];
    if (k !== undefined && id[k] === undefined) id[k] = e.payload;
  }
  if (id.hostSha256 !== undefined && id.hostSha256.length !== 32) {
    bad(`the first hypervisor-host-sha256 event's payload is ${id.hostSha256.length} bytes, not 32`);
  }
  return id;
}

/**
 * Replays `log` and checks it against the evidence's registers (§12a step 4): RTMR3 always,
 * RTMR0-2 when the log has an event for them. Returns the identity.
 * @throws VerifyError (`EventLog`) naming the register and both values.
 */
export async function replayAgainst(log: string | unknown[], rtmrs: Uint8Array[]): Promise<Identity> {
  const events = await parseEventLog(log);
  const replayed = await replay(events);
  const c = covered(events);
  for (let i = 0; i < 4; i++) {
    if ((i === 3 || c[i]) && !ctEqual(replayed[i]!, rtmrs[i]!)) {
      bad(
        `the event log replays RTMR${i} to ${toHex(replayed[i]!)}, but the evidence's RTMR${i} is ${toHex(rtmrs[i]!)} ` +
          '(the log was altered, reordered or is another machine\'s)',
      );
    }
  }
  return identity(events);
}
