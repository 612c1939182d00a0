/**
 * WASM Hypervisor TypeScript SDK: encrypted sessions, verifiable execution with attestation
 * and receipts, and agents. See PROTOCOL.md for the wire format.
 * @module
 */
export * from './bytes.js';
export * from './crypto.js';
export * from './commitment.js';
export * from './jcs.js';
export * from './statements.js';
export * from './eventlog.js';
export * from './reference.js';
export * from './tdx.js';
export * from './verify.js';
export * from './owner.js';
export * from './program.js';
export * from './errors.js';
export * from './session.js';
export * from './payments.js';
export * from './cards.js';
export * from './ratls.js';
export * from './client.js';
export type * from './types.js';
