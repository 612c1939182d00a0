// The x402 paywall's script (host/src/http/paywall.rs): pays the `exact` EVM requirement with
// the browser's wallet (EIP-1193 `window.ethereum`) by an EIP-3009 transferWithAuthorization
// signed with eth_signTypedData_v4, asks for the page again with the PAYMENT-SIGNATURE header,
// and shows the paid answer in place of this page.
(() => {
  "use strict";
  const required = JSON.parse(document.getElementById("x402-payment-required").textContent);
  const button = document.getElementById("pay");
  const status = document.getElementById("status");
  const say = (text) => { status.textContent = text; };
  const accept = (required.accepts || []).find(
    (a) => a.scheme === "exact" && /^eip155:\d+$/.test(a.network) && a.extra &&
      typeof a.extra.name === "string" && typeof a.extra.version === "string",
  );
  if (!accept) {
    say("No payment this page can make: pay with an x402 client.");
    return;
  }
  const wallet = window.ethereum;
  if (!wallet || typeof wallet.request !== "function") {
    say("No browser wallet found: install one, or pay with an x402 client.");
    return;
  }
  say("Ready to pay.");
  button.disabled = false;

  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  const base64 = (text) => {
    let binary = "";
    for (const b of new TextEncoder().encode(text)) binary += String.fromCharCode(b);
    return btoa(binary);
  };

  async function pay() {
    const chainId = Number(accept.network.slice("eip155:".length));
    say("Connecting to the wallet…");
    const [from] = await wallet.request({ method: "eth_requestAccounts" });
    if (!from) throw new Error("the wallet gave no account");
    const current = Number.parseInt(await wallet.request({ method: "eth_chainId" }), 16);
    if (current !== chainId) {
      say("Switching the wallet to " + accept.network + "…");
      await wallet.request({
        method: "wallet_switchEthereumChain",
        params: [{ chainId: "0x" + chainId.toString(16) }],
      });
    }
    const now = Math.floor(Date.now() / 1000);
    const authorization = {
      from,
      to: accept.payTo,
      value: String(accept.amount),
      validAfter: String(now - 600),
      validBefore: String(now + (accept.maxTimeoutSeconds || 60)),
      nonce: "0x" + hex(crypto.getRandomValues(new Uint8Array(32))),
    };
    const typed = {
      types: {
        EIP712Domain: [
          { name: "name", type: "string" },
          { name: "version", type: "string" },
          { name: "chainId", type: "uint256" },
          { name: "verifyingContract", type: "address" },
        ],
        TransferWithAuthorization: [
          { name: "from", type: "address" },
          { name: "to", type: "address" },
          { name: "value", type: "uint256" },
          { name: "validAfter", type: "uint256" },
          { name: "validBefore", type: "uint256" },
          { name: "nonce", type: "bytes32" },
        ],
      },
      primaryType: "TransferWithAuthorization",
      domain: {
        name: accept.extra.name,
        version: accept.extra.version,
        chainId,
        verifyingContract: accept.asset,
      },
      message: authorization,
    };
    say("Sign the payment in your wallet…");
    const signature = await wallet.request({
      method: "eth_signTypedData_v4",
      params: [from, JSON.stringify(typed)],
    });
    const payment = {
      x402Version: 2,
      resource: required.resource,
      accepted: accept,
      payload: { signature, authorization },
    };
    say("Paying…");
    const answer = await fetch(window.location.href, {
      headers: { "PAYMENT-SIGNATURE": base64(JSON.stringify(payment)) },
      credentials: "same-origin",
    });
    const type = answer.headers.get("content-type") || "";
    const body = await answer.text();
    if (answer.status === 402) {
      let reason = "the payment was refused";
      try {
        const refusal = JSON.parse(body);
        reason = refusal.message || refusal.code || refusal.error || reason;
      } catch (_) { /* not JSON: the generic reason */ }
      throw new Error(reason);
    }
    if (type.startsWith("text/html")) {
      document.open();
      document.write(body);
      document.close();
      return;
    }
    document.body.replaceChildren();
    const pre = document.createElement("pre");
    pre.id = "answer";
    pre.textContent = body;
    document.body.append(pre);
  }

  button.addEventListener("click", () => {
    button.disabled = true;
    pay().catch((e) => {
      say("Payment failed: " + (e && e.message ? e.message : String(e)));
      button.disabled = false;
    });
  });
})();
