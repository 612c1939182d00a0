//! The x402 payment options shared by the subcommands that pay (`exec`, `a2a send`), and the
//! wallet and limit they make.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use hypervisor_client::x402::{PaymentLimit, Wallet};

/// How to pay, if at all.
#[derive(Args, Clone, Default)]
pub struct PayArgs {
    /// Pay with x402 (the /x402_* routes, priced agents): a file holding the hex secp256k1
    /// private key of the paying account. When the server asks for payment (a 402, or an A2A
    /// task waiting for payment) the client signs an EIP-3009 authorization for the offered
    /// price, if it is within --max-price (required), and sends it.
    #[arg(long, value_name = "FILE", env = "HYPERVISOR_WALLET_KEY_FILE")]
    pub pay_with: Option<PathBuf>,
    /// With --pay-with (required there): the most to pay, in atomic units of the token the
    /// server names (USDC: 10000 = 0.01 USDC). A higher price is refused before anything is
    /// signed. There is no default: the server names the price.
    #[arg(long, value_name = "ATOMIC_UNITS")]
    pub max_price: Option<u128>,
    /// With --pay-with: pay only this recipient address (the operator's `payTo`); any other
    /// is refused before signing.
    #[arg(long, value_name = "ADDRESS")]
    pub pay_to: Option<alloy_primitives::Address>,
    /// With --pay-with: pay only in this token contract (e.g. the USDC address of the
    /// network); any other is refused before signing. Without it, --max-price counts atomic
    /// units of whatever token the server names.
    #[arg(long, value_name = "ADDRESS")]
    pub asset: Option<alloy_primitives::Address>,
}

impl PayArgs {
    /// The paying wallet from `--pay-with` and its limit from `--max-price`, `--pay-to` and
    /// `--asset`; none without `--pay-with`.
    pub fn payer(&self) -> anyhow::Result<Option<(Wallet, PaymentLimit)>> {
        let Some(path) = &self.pay_with else {
            if self.max_price.is_some() || self.pay_to.is_some() || self.asset.is_some() {
                anyhow::bail!("--max-price, --pay-to and --asset need --pay-with");
            }
            return Ok(None);
        };
        let Some(max_price) = self.max_price else {
            anyhow::bail!(
                "--pay-with needs --max-price ATOMIC_UNITS: the most to pay (the server names the price)"
            );
        };
        let mut limit = PaymentLimit::new(max_price);
        limit.pay_to = self.pay_to;
        limit.asset = self.asset;
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        );
        let wallet = Wallet::from_hex(&text)?;
        eprintln!(
            "[paying from {}, at most {max_price} atomic units]",
            wallet.address().to_checksum(None)
        );
        Ok(Some((wallet, limit)))
    }
}
