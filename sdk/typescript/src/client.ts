/**
 * The HTTP client: sessions (§3, §13), execution (§6, §6a, §6c), results (§7, §8), receipts
 * (§14) and agents (§17). Uses only `fetch` and WebCrypto.
 *
 * {@link Client} is the public class; its methods delegate to one module per concern:
 * `transport.ts` (fetch with bounded answers, the TLS channel binding, paying `402`s, the
 * audience), `executions.ts` (sessions and executions), `agents.ts` (deployments and
 * invocations) and `owner-ops.ts` (grants, wallet, configuration, state, records).
 * @module
 */
import type { VerifiedCard } from './cards.js';
import type { ClientKey } from './crypto.js';
import type { Grants, WalletPolicy } from './owner.js';
import type { BoundChannel } from './ratls.js';
import type { Session } from './session.js';
import type { Agent, Attestation, ClearInvocation, Execution, Limits, SearchHit } from './types.js';
import type { Policy, VerifiedKey } from './verify.js';
import * as agents from './agents.js';
import * as executions from './executions.js';
import * as ownerOps from './owner-ops.js';
import { DEFAULT_UPLOAD_THRESHOLD, Transport, type ClientOptions } from './transport.js';
import type { Deployment } from './agents.js';
import type { RunOptions } from './executions.js';
import type { ConfigEntry, StateExport } from './owner-ops.js';

export { MAX_RESPONSE_BYTES, errorOf, isPaymentChallenge, type ClientOptions } from './transport.js';
export { readExecution, type RunOptions } from './executions.js';
export type { Deployment } from './agents.js';
export { evmAddress, parseStateExport, type ConfigEntry, type StateExport } from './owner-ops.js';

/** A client of one WASM Hypervisor host. */
export class Client {
  /** The host's base URL, without a trailing slash. */
  readonly baseUrl: string;
  /** Binary fields above this many bytes travel as multipart (§6c). */
  binaryUploadsAbove: number;
  /** The audience pinned by the caller, if any. */
  readonly expectedAudience: string | undefined;
  readonly #t: Transport;

  constructor(baseUrl: string, options: ClientOptions = {}) {
    this.#t = new Transport(baseUrl, options, () => this.binaryUploadsAbove);
    this.baseUrl = this.#t.baseUrl;
    this.expectedAudience = this.#t.expectedAudience;
    this.binaryUploadsAbove = options.binaryUploadsAbove ?? DEFAULT_UPLOAD_THRESHOLD;
  }

  /**
   * The verified channel binding of an `https://` host (§19), once the first request bound it
   * (`undefined` before, and for `http://` hosts or `tlsBinding: false`).
   */
  get channel(): BoundChannel | undefined {
    return this.#t.channel;
  }

  /**
   * Closes the pinned connections of a bound `https://` host (they are kept alive between
   * requests, and would keep a Node process running until the host closes them). The binding
   * is kept: a later request opens new connections, pinned to the same certificate (and binds
   * again first if the host's key, hence its certificate, has rotated since).
   */
  close(): void {
    this.#t.close();
  }

  /**
   * `GET /host`: audience, provider, version, as the host answers them now (unauthenticated).
   * Owner statements do not take their audience from here: see
   * {@link ClientOptions.expectedAudience}.
   */
  async host(): Promise<{ audience: string; provider: string; version: string; [k: string]: unknown }> {
    return executions.host(this.#t);
  }

  /** `GET /attestation` (unverified: see {@link verifyHost}). */
  async attestation(): Promise<{ provider: string; attestation: Attestation | null }> {
    return executions.attestation(this.#t);
  }

  /** Reads `GET /attestation` and verifies it under `policy` (default: the client's). */
  async verifyHost(policy: Policy = this.#t.policy): Promise<VerifiedKey> {
    return executions.verifyHost(this.#t, policy);
  }

  /**
   * The host's A2A card (or agent `name`'s), its detached JWS verified under the host's
   * attested key (§21.1), which is verified first under `policy` (default: the client's;
   * {@link verifyHost}). Hand `card` (or `url`) to the official A2A SDK. Throws `VerifyError`
   * (kind `Card` for the card itself).
   */
  async agentCard(name?: string, policy: Policy = this.#t.policy): Promise<VerifiedCard> {
    return agents.agentCard(this.#t, name, policy);
  }

  /** The MCP endpoint (§20) named by the host's verified card (see {@link agentCard}). */
  async mcpUrl(policy: Policy = this.#t.policy): Promise<string> {
    return (await this.agentCard(undefined, policy)).mcpUrl;
  }

  /** `POST /encrypt/create_keypair`: a plain session (not attested). */
  async createSession(options: { key?: ClientKey } = {}): Promise<Session> {
    return executions.createSession(this.#t, options);
  }

  /**
   * `POST /verifiable/encrypt/create_keypair`: a verifiable session, verified (§12a, §13)
   * under `policy` (default: the client's) **before** it is returned. Throws `VerifyError` on
   * any failure.
   */
  async createVerifiableSession(options: { key?: ClientKey; policy?: Policy } = {}): Promise<Session> {
    return executions.createVerifiableSession(this.#t, options);
  }

  /**
   * Runs a WebAssembly component (or RISC-V ELF) in `session` (§6): on a verifiable session
   * through `/verifiable/execute/wasm`, its receipt verified (§14). Throws
   * {@link GuestStoppedError} (with the checked partial result) when the guest is stopped.
   */
  async executeWasm(session: Session, wasm: Uint8Array, opts: RunOptions = {}): Promise<Execution> {
    return executions.executeWasm(this.#t, session, wasm, opts);
  }

  /**
   * Runs a Python script (§6a): `/test/policy/unsafe/python`, or `…/attest` on a verifiable
   * session (with a verified receipt). What `main(ARGS)` returned is `result.returned`.
   */
  async executePython(session: Session, source: string | Uint8Array, opts: Omit<RunOptions, 'programKind'> = {}): Promise<Execution> {
    return executions.executePython(this.#t, session, source, opts);
  }

  // ---- Agents (§17) ----

  /**
   * `POST /agent/deploy`, signed by `owner` over the component's SHA-256 and the settings.
   * With `session` the component is sealed to it (role agent-component); the session must
   * belong to `owner`'s key (the host answers `session_key_mismatch` otherwise). A
   * JavaScript/TypeScript agent (`js`, §24) is signed over its source hash and, sealed, travels
   * as `encrypted_js` (role agent-js). Without it
   * the component is sent in the clear (public by default). Components above
   * {@link binaryUploadsAbove} travel as multipart (§6c).
   */
  async deployAgent(owner: ClientKey, d: Deployment, options: { session?: Session } = {}): Promise<Agent> {
    return agents.deployAgent(this.#t, owner, d, options);
  }

  /** `GET /agents`: every agent with its latest version. */
  async listAgents(): Promise<Agent[]> {
    return agents.listAgents(this.#t);
  }

  /** `GET /agents/{name}`: the agent with every version. */
  async getAgent(name: string): Promise<Agent> {
    return agents.getAgent(this.#t, name);
  }

  /** `POST /search`: agents matching `query`, best first. */
  async searchAgents(query: string, limit?: number): Promise<SearchHit[]> {
    return agents.searchAgents(this.#t, query, limit);
  }

  /**
   * A clear invocation of a public handler (`{event}`) or CLI (`{args, stdin}`) agent.
   * Returns the host's answer (`ok` false when the handler returned an error).
   */
  async invokeAgent(
    name: string,
    input: { event?: unknown } | { args?: string[]; stdin?: string },
    options: { publicKey?: string; limits?: Limits } = {},
  ): Promise<ClearInvocation> {
    return agents.invokeAgent(this.#t, name, input, options);
  }

  /**
   * A sealed invocation of a handler agent: the event (JSON value, or raw bytes) sealed to
   * `session` (role event); the result checked against the agent's code hash and the event
   * (§8 table) and, on a verifiable session, its receipt.
   *
   * **Pass `codeHash`**, the code you expect (your deployment's answer, an audit): the
   * commitment and the receipt then prove the result is that code's, and other code is
   * detected. Without it the SDK trusts the code hash the host lists for the agent's latest
   * version (an unauthenticated `GET /agents/{name}`): the result is then proven to be the
   * listed code's, not that the listing is the code you meant to run.
   */
  async invokeAgentSealed(
    session: Session,
    name: string,
    options: { event?: unknown; codeHash?: string; limits?: Limits } = {},
  ): Promise<Execution> {
    return agents.invokeAgentSealed(this.#t, session, name, options);
  }

  /**
   * A sealed invocation of a CLI agent (arguments and stdin sealed), checked as
   * {@link invokeAgentSealed}. **Pass `codeHash`** to detect other code: without it the code
   * hash the host lists is trusted.
   */
  async invokeCommandSealed(
    session: Session,
    name: string,
    options: { args?: string[]; stdin?: Uint8Array | string; codeHash?: string; limits?: Limits } = {},
  ): Promise<Execution> {
    return agents.invokeCommandSealed(this.#t, session, name, options);
  }

  /** `GET /agents/{name}/logs`, signed by the owner: the newest 100 stderr entries. */
  async agentLogs(owner: ClientKey, name: string): Promise<{ agent: string; logs: { execution_id: string; at_ms: number; stderr: string }[] }> {
    return agents.agentLogs(this.#t, owner, name);
  }

  /** `DELETE /agents/{name}`, signed by the owner. */
  async deleteAgent(owner: ClientKey, name: string): Promise<void> {
    return agents.deleteAgent(this.#t, owner, name);
  }

  // ---- Owner operations (§18, §23): signed by `owner`; sealed values go under `session`, by
  // default a new verifiable session of the owner's key verified under the client's policy ----

  /** The agent's grants (§18), signed `read-grants`. */
  async grants(owner: ClientKey, name: string): Promise<{ grants: Grants; [k: string]: unknown }> {
    return ownerOps.grants(this.#t, owner, name);
  }

  /** Replaces the agent's grants (§18), signed over {@link grantsDetail}. */
  async setGrants(owner: ClientKey, name: string, grants: Grants): Promise<{ grants: Grants; [k: string]: unknown }> {
    return ownerOps.setGrants(this.#t, owner, name, grants);
  }

  /** The agent's outgoing calls, newest first (§18), signed `calls`. */
  async calls(owner: ClientKey, name: string, limit?: number): Promise<Record<string, unknown>[]> {
    return ownerOps.calls(this.#t, owner, name, limit);
  }

  /** The agent's wallet without its key: address, policy, spends (§18), signed `read-wallet`. */
  async wallet(owner: ClientKey, name: string): Promise<Record<string, unknown>> {
    return ownerOps.wallet(this.#t, owner, name);
  }

  /**
   * Attaches a secp256k1 wallet (32-byte key, sealed to the owner's session, role wallet-key)
   * and its spending policy (§18), signed over {@link walletDetail}. Without `options.session`
   * the key is sealed to a new verifiable session of the owner's key, verified under the
   * client's policy first (`VerifyError`, nothing sent, when it does not verify). `address` defaults to the
   * key's EVM address, computed by `viem` (an optional peer dependency, imported only then).
   */
  async setWallet(
    owner: ClientKey,
    name: string,
    key: Uint8Array,
    policy: WalletPolicy,
    options: { address?: string; session?: Session } = {},
  ): Promise<Record<string, unknown>> {
    return ownerOps.setWallet(this.#t, owner, name, key, policy, options);
  }

  /** The configuration's entries (§23.2): names, versions, value hashes; never values. */
  async config(owner: ClientKey, name: string): Promise<ConfigEntry[]> {
    return ownerOps.config(this.#t, owner, name);
  }

  /**
   * Sets and removes configuration values and secrets (§23.2): the change sealed to the owner's
   * session (role agent-config), signed over the SHA-256 of its plaintext. Returns the entries
   * (value hashes only: compare with {@link valueHash}). Without `options.session` the change is
   * sealed to a new verifiable session of the owner's key, verified under the client's policy
   * first (`VerifyError`, nothing sent, when it does not verify).
   */
  async setConfig(
    owner: ClientKey,
    name: string,
    change: { set?: Record<string, string>; remove?: string[] },
    options: { session?: Session } = {},
  ): Promise<ConfigEntry[]> {
    return ownerOps.setConfig(this.#t, owner, name, change, options);
  }

  /**
   * The agent's whole state (§23.3), sealed to the owner's session (role state-export) and
   * opened here; without `options.session`, a new verifiable session of the owner's key.
   */
  async exportState(owner: ClientKey, name: string, options: { session?: Session } = {}): Promise<StateExport> {
    return ownerOps.exportState(this.#t, owner, name, options);
  }

  /**
   * Puts an exported state back (§23.3), merged or replacing: sealed (role state-import) as the
   * export's compact JSON, signed over its SHA-256 and `replace=`; without `options.session`,
   * to a new verifiable session of the owner's key.
   */
  async importState(
    owner: ClientKey,
    name: string,
    state: StateExport,
    options: { replace?: boolean; session?: Session } = {},
  ): Promise<{ keys: number; [k: string]: unknown }> {
    return ownerOps.importState(this.#t, owner, name, state, options);
  }

  /** Removes every key of every bucket (§23.3); the number removed. */
  async wipeState(owner: ClientKey, name: string): Promise<number> {
    return ownerOps.wipeState(this.#t, owner, name);
  }

  /** One execution record (§17), readable by the key that ran it and the agent's owner (signed `read-executions`). */
  async execution(reader: ClientKey, executionId: string): Promise<Record<string, unknown>> {
    return ownerOps.execution(this.#t, reader, executionId);
  }

  /** The execution records `reader` may read, oldest first. */
  async executions(reader: ClientKey, options: { sinceMs?: number; limit?: number } = {}): Promise<Record<string, unknown>[]> {
    return ownerOps.executions(this.#t, reader, options);
  }
}

export type { VerifiedKey };
