/**
 * Owner operations (§17, §18, §23): an agent's grants, calls, wallet, configuration and state,
 * and the execution records, each signed by the owner; secrets and state sealed to a session
 * of the owner's key (by default a new verifiable one, verified first). The {@link Client}'s
 * methods delegate here.
 * @module
 */
import { agentPath, ownerRequest } from './agents.js';
import { fromHex, toHex, utf8, uuidText } from './bytes.js';
import { Role, type ClientKey } from './crypto.js';
import { ProtocolError, VerifyError } from './errors.js';
import { createVerifiableSession } from './executions.js';
import { arrayField, isObject, isU64, objectAnswer, parseJson, show } from './json.js';
import { configDetail, grantsDetail, importDetail, ownerSignature, walletDetail, type Grants, type OwnerAction, type WalletPolicy } from './owner.js';
import type { Session } from './session.js';
import type { Transport } from './transport.js';

/** A configuration entry as the host lists it (§23.2): never the value, its hash. */
export interface ConfigEntry {
  name: string;
  /** {@link valueHash} of the value. */
  sha256: string;
  [field: string]: unknown;
}

/** An agent's exported state (§23.3): each bucket's keys and base64 values. */
export interface StateExport {
  agent: string;
  exported_at_ms: number;
  buckets: Record<string, Record<string, string>>;
  [field: string]: unknown;
}

/** Parses an opened state export (§23.3), refusing one that is not `agent`'s. */
export function parseStateExport(plaintext: Uint8Array, agent: string): StateExport {
  let doc: unknown;
  try {
    doc = parseJson(new TextDecoder('utf-8', { fatal: true }).decode(plaintext));
  } catch {
    throw new VerifyError('Malformed', 'the exported state is not JSON');
  }
  if (!isObject(doc) || doc['agent'] !== agent || !isObject(doc['buckets'])) {
    throw new VerifyError('Mismatch', "the exported state is not this agent's");
  }
  return doc as StateExport;
}

const viemAccounts = 'viem/accounts';

/** The EVM address of a secp256k1 key, by viem's `privateKeyToAccount` (imported lazily). */
export async function evmAddress(key: Uint8Array): Promise<string> {
  let mod: { privateKeyToAccount(k: string): { address: string } };
  try {
    mod = (await import(/* webpackIgnore: true */ viemAccounts)) as typeof mod;
  } catch (e) {
    throw new TypeError(`computing the wallet address needs viem (or pass options.address): ${(e as Error).message}`);
  }
  return mod.privateKeyToAccount(`0x${toHex(key)}`).address;
}

/** A signed body (§17): the owner's signature over `detail`, its time and sequence. */
async function signedBody(t: Transport, owner: ClientKey, action: OwnerAction, name: string, detail: string): Promise<Record<string, unknown>> {
  return { ...(await ownerSignature(owner, await t.audienceOf(), action, name, detail)) };
}

/**
 * The owner's session to seal secrets to: the one given (it must be the owner's key's),
 * else a new **verifiable** session of the owner's key, verified under the client's policy
 * before anything is sealed (§13: a client verifies the chain before sending anything; a
 * plain session's key could be anyone's on an unauthenticated path).
 */
async function ownerSession(t: Transport, owner: ClientKey, session: Session | undefined): Promise<Session> {
  if (session !== undefined && session.clientKey.publicKeyHex !== owner.publicKeyHex) {
    throw new TypeError("sealed owner operations go under a session of the owner's key");
  }
  return session ?? (await createVerifiableSession(t, { key: owner }));
}

/** The agent's grants (§18), signed `read-grants`. */
export async function grants(t: Transport, owner: ClientKey, name: string): Promise<{ grants: Grants; [k: string]: unknown }> {
  return objectAnswer(await ownerRequest(t, 'GET', owner, 'read-grants', name, agentPath(name, '/grants')), 'GET grants') as { grants: Grants };
}

/** Replaces the agent's grants (§18), signed over {@link grantsDetail}. */
export async function setGrants(t: Transport, owner: ClientKey, name: string, grants: Grants): Promise<{ grants: Grants; [k: string]: unknown }> {
  const body = await signedBody(t, owner, 'grants', name, await grantsDetail(grants));
  const answer = await t.expect(200, 'PUT', agentPath(name, '/grants'), {
    json: { ...body, grants },
    headers: { 'x-agent-owner': owner.publicKeyHex },
  });
  return objectAnswer(answer, 'PUT grants') as { grants: Grants };
}

/** The agent's outgoing calls, newest first (§18), signed `calls`. */
export async function calls(t: Transport, owner: ClientKey, name: string, limit: number | undefined): Promise<Record<string, unknown>[]> {
  const q = limit === undefined ? '' : `?limit=${limit}`;
  return arrayField(await ownerRequest(t, 'GET', owner, 'calls', name, agentPath(name, '/calls' + q)), 'calls', 'GET calls') as Record<string, unknown>[];
}

/** The agent's wallet without its key (§18), signed `read-wallet`. */
export async function wallet(t: Transport, owner: ClientKey, name: string): Promise<Record<string, unknown>> {
  return objectAnswer(await ownerRequest(t, 'GET', owner, 'read-wallet', name, agentPath(name, '/wallet')), 'GET wallet');
}

/** Attaches a wallet and its spending policy (§18; see {@link Client.setWallet}). */
export async function setWallet(
  t: Transport,
  owner: ClientKey,
  name: string,
  key: Uint8Array,
  policy: WalletPolicy,
  options: { address?: string; session?: Session },
): Promise<Record<string, unknown>> {
  if (key.length !== 32) throw new RangeError('a wallet key is a 32-byte secp256k1 scalar');
  const address = options.address ?? (await evmAddress(key));
  const session = await ownerSession(t, owner, options.session);
  const body = await signedBody(t, owner, 'wallet', name, walletDetail(address, policy));
  return objectAnswer(await t.expect(200, 'PUT', agentPath(name, '/wallet'), {
    json: {
      ...body,
      public_key: owner.publicKeyHex,
      session_id: session.id,
      encrypted_key: toHex(session.seal(Role.WalletKey, 0, key)),
      address,
      policy,
    },
    headers: { 'x-agent-owner': owner.publicKeyHex },
  }), 'PUT wallet');
}

/** The configuration's entries (§23.2): names, versions, value hashes; never values. */
export async function config(t: Transport, owner: ClientKey, name: string): Promise<ConfigEntry[]> {
  return arrayField(await ownerRequest(t, 'GET', owner, 'read-config', name, agentPath(name, '/config')), 'entries', 'GET config') as ConfigEntry[];
}

/** Sets and removes configuration values and secrets (§23.2; see {@link Client.setConfig}). */
export async function setConfig(
  t: Transport,
  owner: ClientKey,
  name: string,
  change: { set?: Record<string, string>; remove?: string[] },
  options: { session?: Session },
): Promise<ConfigEntry[]> {
  const session = await ownerSession(t, owner, options.session);
  const doc: Record<string, unknown> = {};
  if (change.set && Object.keys(change.set).length > 0) doc['set'] = change.set;
  if (change.remove && change.remove.length > 0) doc['remove'] = change.remove;
  const plain = utf8(JSON.stringify(doc));
  const body = await signedBody(t, owner, 'config', name, await configDetail(plain));
  const answer = await t.expect(200, 'PUT', agentPath(name, '/config'), {
    json: { ...body, public_key: owner.publicKeyHex, session_id: session.id, encrypted_config: toHex(session.seal(Role.AgentConfig, 0, plain)) },
    headers: { 'x-agent-owner': owner.publicKeyHex },
  });
  return arrayField(answer, 'entries', 'PUT config') as ConfigEntry[];
}

/** The agent's whole state (§23.3), sealed to the owner's session and opened here. */
export async function exportState(t: Transport, owner: ClientKey, name: string, options: { session?: Session }): Promise<StateExport> {
  const session = await ownerSession(t, owner, options.session);
  const body = await signedBody(t, owner, 'export-state', name, '');
  const answer = await t.expect(200, 'POST', agentPath(name, '/state/export'), {
    json: { ...body, public_key: owner.publicKeyHex, session_id: session.id },
    headers: { 'x-agent-owner': owner.publicKeyHex },
  });
  if (!isObject(answer) || typeof answer['encrypted_state'] !== 'string') throw new VerifyError('Malformed', 'an export without encrypted_state');
  let sealed: Uint8Array;
  try {
    sealed = fromHex(answer['encrypted_state'], 'encrypted_state');
  } catch (e) {
    throw new VerifyError('Malformed', (e as Error).message);
  }
  return parseStateExport(session.open(Role.StateExport, 0, sealed), name);
}

/** Puts an exported state back (§23.3), merged or replacing (see {@link Client.importState}). */
export async function importState(
  t: Transport,
  owner: ClientKey,
  name: string,
  state: StateExport,
  options: { replace?: boolean; session?: Session },
): Promise<{ keys: number; [k: string]: unknown }> {
  const replace = options.replace ?? false;
  const session = await ownerSession(t, owner, options.session);
  const plain = utf8(JSON.stringify(state));
  const body = await signedBody(t, owner, 'import-state', name, await importDetail(plain, replace));
  const answer = await t.expect(200, 'POST', agentPath(name, '/state/import'), {
    json: { ...body, public_key: owner.publicKeyHex, session_id: session.id, encrypted_state: toHex(session.seal(Role.StateImport, 0, plain)), replace },
    headers: { 'x-agent-owner': owner.publicKeyHex },
  });
  return objectAnswer(answer, 'POST state/import') as { keys: number };
}

/** Removes every key of every bucket (§23.3); the number removed. */
export async function wipeState(t: Transport, owner: ClientKey, name: string): Promise<number> {
  const removed = objectAnswer(await ownerRequest(t, 'DELETE', owner, 'wipe-state', name, agentPath(name, '/state')), 'DELETE state')['keys_removed'];
  if (!isU64(removed)) throw new ProtocolError(`DELETE state: keys_removed ${show(removed)} is not a count`);
  return removed;
}

/** One execution record (§17), signed `read-executions` by `reader`. */
export async function execution(t: Transport, reader: ClientKey, executionId: string): Promise<Record<string, unknown>> {
  const id = uuidText(executionId);
  return objectAnswer(await ownerRequest(t, 'GET', reader, 'read-executions', id, `/executions/${id}`), 'GET execution');
}

/** The execution records `reader` may read, oldest first. */
export async function executions(t: Transport, reader: ClientKey, options: { sinceMs?: number; limit?: number }): Promise<Record<string, unknown>[]> {
  const q = new URLSearchParams();
  if (options.sinceMs !== undefined) q.set('since_ms', String(options.sinceMs));
  if (options.limit !== undefined) q.set('limit', String(options.limit));
  const qs = q.toString();
  const path = '/executions' + (qs ? `?${qs}` : '');
  return arrayField(await ownerRequest(t, 'GET', reader, 'read-executions', '', path), 'executions', 'GET /executions') as Record<string, unknown>[];
}
