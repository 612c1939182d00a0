/**
 * Agents (§17, §21.1, §24): their cards, deployments, listings and search, clear and sealed
 * invocations, and the owner-signed requests on one agent (its logs, its removal) that the
 * owner operations build on. The {@link Client}'s methods delegate here.
 * @module
 */
import { fromHex, toHex, utf8 } from './bytes.js';
import { VerifiedCard, verifyCard } from './cards.js';
import { Role, sha256, type ClientKey } from './crypto.js';
import { handlerEventBytes, inputDigests, type InputDigests } from './commitment.js';
import { ProtocolError, VerifyError } from './errors.js';
import { asBytes, readExecution, verifyHost } from './executions.js';
import { arrayField, isObject, objectAnswer } from './json.js';
import { deployDetail, ownerSignature, type DeploySettings, type OwnerAction } from './owner.js';
import { settlementOf } from './payments.js';
import { jsSealedPlaintext, jsSourceSha256, type JsSource } from './program.js';
import type { Session } from './session.js';
import { errorOf, type Transport } from './transport.js';
import type { Agent, ClearInvocation, Execution, Limits, SearchHit } from './types.js';
import type { Policy } from './verify.js';

/** A deployment (§17): a `component`, or a JavaScript/TypeScript agent's `js` source (§24). */
export interface Deployment extends DeploySettings {
  name: string;
  /** The component (or RISC-V ELF) bytes. */
  component?: Uint8Array;
  /** A JavaScript/TypeScript agent's modules (§24), in place of `component`. */
  js?: JsSource;
  description?: string;
  tags?: string[];
  programKind?: 'wasm' | 'riscv';
  /** The media type an HTTP agent declares (not signed). */
  content_type?: string;
}

/** The host's A2A card (or agent `name`'s), verified (see {@link Client.agentCard}). */
export async function agentCard(t: Transport, name: string | undefined, policy: Policy): Promise<VerifiedCard> {
  const verified = await verifyHost(t, policy);
  const path = name === undefined ? '/.well-known/agent-card.json' : `/agents/${encodeURIComponent(name)}/.well-known/agent-card.json`;
  const card = await t.expect(200, 'GET', path);
  if (!isObject(card)) throw new VerifyError('Card', 'the agent card is not a JSON object');
  await verifyCard(card, verified);
  return new VerifiedCard(card, verified);
}

/** `POST /agent/deploy`, signed by `owner` (see {@link Client.deployAgent}). */
export async function deployAgent(t: Transport, owner: ClientKey, d: Deployment, options: { session?: Session }): Promise<Agent> {
  const audience = await t.audienceOf();
  const settings: DeploySettings = {};
  if (d.public !== undefined) settings.public = d.public;
  if (d.price !== undefined) settings.price = d.price;
  if (d.ttl_seconds !== undefined) settings.ttl_seconds = d.ttl_seconds;
  if (d.limits !== undefined) settings.limits = d.limits;
  if (d.charge !== undefined) settings.charge = d.charge;
  if (d.tariff !== undefined) settings.tariff = d.tariff;
  if (d.schemas !== undefined) settings.schemas = d.schemas;
  if (d.grants !== undefined) settings.grants = d.grants;
  if ((d.component === undefined) === (d.js === undefined)) throw new TypeError('a deployment has either a component or a JavaScript source');
  const codeHash = d.js !== undefined ? await jsSourceSha256(d.js) : toHex(await sha256(d.component!));
  const detail = await deployDetail(codeHash, settings);
  const signed = await ownerSignature(owner, audience, 'deploy', d.name, detail);
  const request: Record<string, unknown> = {
    name: d.name,
    public_key: owner.publicKeyHex,
    ...settings,
    ...signed,
  };
  if (d.description !== undefined) request['description'] = d.description;
  if (d.tags !== undefined) request['tags'] = d.tags;
  if (d.programKind !== undefined) request['program_kind'] = d.programKind;
  if (d.content_type !== undefined) request['content_type'] = d.content_type;
  let body: { json?: unknown; form?: FormData };
  if (options.session) {
    request['session_id'] = options.session.id;
    body = d.js !== undefined
      ? { json: { ...request, encrypted_js: toHex(options.session.seal(Role.AgentJs, 0, jsSealedPlaintext(d.js))) } }
      : t.bodyWith(request, 'encrypted_component', options.session.seal(Role.AgentComponent, 0, d.component!), 'hex');
  } else if (d.js !== undefined) {
    jsSealedPlaintext(d.js); // checks that main is among the modules
    const engine = d.js.engine === undefined || d.js.engine === 'boa' ? {} : { engine: d.js.engine };
    body = { json: { ...request, js: { main: d.js.main, modules: d.js.modules, ...engine } } };
  } else {
    body = t.bodyWith(request, 'component', d.component!, 'base64');
  }
  return objectAnswer(await t.expect(201, 'POST', '/agent/deploy', body), 'POST /agent/deploy') as Agent;
}

/** `GET /agents`: every agent with its latest version. */
export async function listAgents(t: Transport): Promise<Agent[]> {
  return arrayField(await t.expect(200, 'GET', '/agents'), 'agents', 'GET /agents') as Agent[];
}

/** `GET /agents/{name}`: the agent with every version. */
export async function getAgent(t: Transport, name: string): Promise<Agent> {
  const path = `/agents/${encodeURIComponent(name)}`;
  return objectAnswer(await t.expect(200, 'GET', path), `GET ${path}`) as Agent;
}

/** `POST /search`: agents matching `query`, best first. */
export async function searchAgents(t: Transport, query: string, limit: number | undefined): Promise<SearchHit[]> {
  const json: Record<string, unknown> = { query };
  if (limit !== undefined) json['limit'] = limit;
  return arrayField(await t.expect(200, 'POST', '/search', { json }), 'results', 'POST /search') as SearchHit[];
}

/** A clear invocation of a public handler or CLI agent (see {@link Client.invokeAgent}). */
export async function invokeAgent(
  t: Transport,
  name: string,
  input: { event?: unknown } | { args?: string[]; stdin?: string },
  options: { publicKey?: string; limits?: Limits },
): Promise<ClearInvocation> {
  const json: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input)) if (v !== undefined) json[k] = v;
  if (options.publicKey !== undefined) json['public_key'] = options.publicKey;
  if (options.limits !== undefined) json['limits'] = options.limits;
  const path = `/agents/${encodeURIComponent(name)}/invoke`;
  const a = await t.sendPayable('POST', path, { json });
  if (a.status !== 200) throw errorOf(a.status, a.body, a.headers);
  const answer = objectAnswer(a.body, `POST ${path}`) as ClearInvocation;
  const settlement = settlementOf(a.headers);
  if (settlement) answer.settlement = settlement;
  return answer;
}

/** The code hash a sealed invocation is checked against: `codeHash`, else the one the host lists. */
async function codeHashOf(t: Transport, name: string, codeHash: string | undefined): Promise<Uint8Array> {
  let h = codeHash;
  if (h === undefined) {
    const latest: unknown = (await getAgent(t, name))['latest'];
    const listed = isObject(latest) ? latest['code_hash'] : undefined;
    if (typeof listed !== 'string') throw new ProtocolError(`GET /agents/${encodeURIComponent(name)} lists no code hash`);
    h = listed;
  }
  try {
    return fromHex(h, 'code_hash', 32);
  } catch (e) {
    throw new VerifyError('Malformed', (e as Error).message);
  }
}

/** A sealed invocation of a handler agent (see {@link Client.invokeAgentSealed}). */
export async function invokeAgentSealed(
  t: Transport,
  session: Session,
  name: string,
  options: { event?: unknown; codeHash?: string; limits?: Limits },
): Promise<Execution> {
  const program = await codeHashOf(t, name, options.codeHash);
  const event = options.event === undefined ? new Uint8Array() : options.event instanceof Uint8Array ? options.event : utf8(JSON.stringify(options.event));
  const json: Record<string, unknown> = {
    encrypted_event: toHex(session.seal(Role.Event, 0, event)),
    public_key: session.clientKey.publicKeyHex,
    session_id: session.id,
  };
  if (options.limits !== undefined) json['limits'] = options.limits;
  const digests: InputDigests = { program, arguments: [], stdin: await sha256(handlerEventBytes(event)) };
  const a = await t.sendPayable('POST', `/agents/${encodeURIComponent(name)}/invoke`, { json });
  return readExecution(session, a.status, a.body, digests, a.headers);
}

/** A sealed invocation of a CLI agent (see {@link Client.invokeCommandSealed}). */
export async function invokeCommandSealed(
  t: Transport,
  session: Session,
  name: string,
  options: { args?: string[]; stdin?: Uint8Array | string; codeHash?: string; limits?: Limits },
): Promise<Execution> {
  const program = await codeHashOf(t, name, options.codeHash);
  const args = (options.args ?? []).map((x) => utf8(x));
  const stdin = asBytes(options.stdin ?? new Uint8Array());
  const json: Record<string, unknown> = {
    encrypted_arguments: args.map((x, i) => toHex(session.seal(Role.Argument, i, x))),
    encrypted_stdin: toHex(session.seal(Role.Stdin, 0, stdin)),
    public_key: session.clientKey.publicKeyHex,
    session_id: session.id,
  };
  if (options.limits !== undefined) json['limits'] = options.limits;
  const digests = await inputDigests(new Uint8Array(), args, stdin);
  digests.program = program;
  const a = await t.sendPayable('POST', `/agents/${encodeURIComponent(name)}/invoke`, { json });
  return readExecution(session, a.status, a.body, digests, a.headers);
}

/** The `x-agent-*` headers of an owner statement with an empty detail (§17). */
async function ownerHeaders(t: Transport, owner: ClientKey, action: OwnerAction, name: string): Promise<Record<string, string>> {
  const s = await ownerSignature(owner, await t.audienceOf(), action, name, '');
  return {
    'x-agent-signature': s.signature,
    'x-agent-signed-at': String(s.signed_at),
    'x-agent-sequence': String(s.sequence),
    'x-agent-owner': owner.publicKeyHex,
  };
}

/** An owner operation with an empty detail, signed in the `x-agent-*` headers (§17). */
export async function ownerRequest(t: Transport, method: string, owner: ClientKey, action: OwnerAction, name: string, path: string): Promise<unknown> {
  return t.expect(200, method, path, { headers: await ownerHeaders(t, owner, action, name) });
}

/** `/agents/{name}` and `rest`. */
export function agentPath(name: string, rest = ''): string {
  return `/agents/${encodeURIComponent(name)}${rest}`;
}

/** `GET /agents/{name}/logs`, signed by the owner: the newest 100 stderr entries. */
export async function agentLogs(t: Transport, owner: ClientKey, name: string): Promise<{ agent: string; logs: { execution_id: string; at_ms: number; stderr: string }[] }> {
  const path = `/agents/${encodeURIComponent(name)}/logs`;
  const answer = await ownerRequest(t, 'GET', owner, 'logs', name, path);
  arrayField(answer, 'logs', `GET ${path}`);
  return answer as { agent: string; logs: { execution_id: string; at_ms: number; stderr: string }[] };
}

/** `DELETE /agents/{name}`, signed by the owner. */
export async function deleteAgent(t: Transport, owner: ClientKey, name: string): Promise<void> {
  await ownerRequest(t, 'DELETE', owner, 'delete', name, `/agents/${encodeURIComponent(name)}`);
}
