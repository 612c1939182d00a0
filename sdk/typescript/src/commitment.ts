/**
 * The result commitment (§8).
 * @module
 */
import { concat, toHex, u32be, u64be, utf8, uuidBytes } from './bytes.js';
import { sha256 } from './crypto.js';

const LABEL = utf8('wasm-hypervisor/v1/result-commitment');

/** SHA-256s of the plaintext inputs a commitment binds. */
export interface InputDigests {
  /** SHA-256 of the program (or an agent's code hash). */
  program: Uint8Array;
  /** SHA-256 of each argument, in order (none for a handler agent). */
  arguments: Uint8Array[];
  /** SHA-256 of stdin (of the empty string without one; of the event for a handler agent). */
  stdin: Uint8Array;
}

/** Hashes the plaintext inputs of a run. */
export async function inputDigests(program: Uint8Array, args: Uint8Array[], stdin: Uint8Array | undefined): Promise<InputDigests> {
  return {
    program: await sha256(program),
    arguments: await Promise.all(args.map((a) => sha256(a))),
    stdin: await sha256(stdin ?? new Uint8Array()),
  };
}

/** The handler event's plaintext as the commitment binds it: an empty event is `null` (§17). */
export function handlerEventBytes(event: Uint8Array): Uint8Array {
  return event.length === 0 ? utf8('null') : event;
}

/** `result_commitment` (§8) over the exact result plaintext, as 32 bytes. */
export async function resultCommitment(sessionId: string, digests: InputDigests, result: Uint8Array): Promise<Uint8Array> {
  for (const h of [digests.program, digests.stdin, ...digests.arguments]) {
    if (h.length !== 32) throw new TypeError('every input hash is 32 bytes');
  }
  return sha256(
    concat(
      LABEL,
      uuidBytes(sessionId),
      digests.program,
      u32be(digests.arguments.length),
      ...digests.arguments,
      digests.stdin,
      u64be(result.length),
      result,
    ),
  );
}

/** As {@link resultCommitment}, in hex. */
export async function resultCommitmentHex(sessionId: string, digests: InputDigests, result: Uint8Array): Promise<string> {
  return toHex(await resultCommitment(sessionId, digests, result));
}
