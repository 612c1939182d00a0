// What a web app paying with the official x402 SDK bundles beside this SDK (test/browser.test.js
// serves it as /payer.js): the x402 client, its EVM scheme and viem's local account.
export { x402Client, x402HTTPClient } from '@x402/core/client';
export { ExactEvmScheme } from '@x402/evm';
export { privateKeyToAccount } from 'viem/accounts';
