// Prints an account's ERC-20 balance in atomic units.
//
// Usage: node balance.mjs --rpc URL --token 0xTOKEN --address 0xACCOUNT
// stdout: one line, the balance as a decimal integer (e.g. `99990000`)
// stderr: errors only. Exit status 0 on success, 1 on failure.
import { ERC20_BALANCE_ABI, checkAddress, connectChain, die, parseArgs } from "./common.mjs";

const SCOPE = "balance";
const USAGE = "node balance.mjs --rpc URL --token 0x.. --address 0x..";

async function main() {
  const args = parseArgs(
    process.argv.slice(2),
    { rpc: { required: true }, token: { required: true }, address: { required: true } },
    USAGE,
  );
  const token = checkAddress(args.token, "--token");
  const address = checkAddress(args.address, "--address");
  const { publicClient } = await connectChain(args.rpc);
  const code = await publicClient.getCode({ address: token });
  if (!code || code === "0x") throw new Error(`no contract at --token ${token}`);
  let balance;
  try {
    balance = await publicClient.readContract({ address: token, abi: ERC20_BALANCE_ABI, functionName: "balanceOf", args: [address] });
  } catch (e) {
    throw new Error(`balanceOf(${address}) on ${token} failed: ${e.shortMessage ?? e.message}`);
  }
  process.stdout.write(`${balance}\n`);
}

main().catch((e) => die(SCOPE, e.message));
