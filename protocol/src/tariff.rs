//! A metered agent's tariff (x402 `upto`, `docs/PROTOCOL.md` §6c): what one run costs, from
//! what the host measured of it. The agent's `price` is the most a run may cost (the maximum
//! the payer signs for); the tariff says how the charge up to it is computed:
//!
//! ```text
//! charge = min(maximum, fixed + ceil(fuel × per_million_fuel / 1 000 000)
//!                             + ms × per_ms
//!                             + ceil(output_bytes × per_kib_out / 1024))
//! ```
//!
//! The meter ([`Meter`]) is taken by the host inside the TEE, and the signed receipt states it
//! with the tariff and the charge, so a payer recomputes the charge with [`Tariff::charge`].
//! Amounts are decimal strings of the asset's atomic units, as prices are.

use serde::{Deserialize, Serialize};

/// The largest amount a tariff may name (each rate and its maximum): 2^128 - 1, far beyond
/// any token supply, so that every charge is computed exactly in `u128`.
pub const MAX_TARIFF_AMOUNT: u128 = u128::MAX;

/// How a metered agent charges a run (all in the payment asset's atomic units).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tariff {
    /// Charged for every run.
    #[serde(default = "zero")]
    pub fixed: String,
    /// Per million units of fuel the run consumed (rounded up).
    #[serde(default = "zero")]
    pub per_million_fuel: String,
    /// Per millisecond of wall time the run took (whole milliseconds, rounded down).
    #[serde(default = "zero")]
    pub per_ms: String,
    /// Per KiB of the answer (its bytes × rate / 1024, rounded up).
    #[serde(default = "zero")]
    pub per_kib_out: String,
}

fn zero() -> String {
    "0".into()
}

impl Default for Tariff {
    /// Every rate `0` (as absent fields read).
    fn default() -> Self {
        Self {
            fixed: zero(),
            per_million_fuel: zero(),
            per_ms: zero(),
            per_kib_out: zero(),
        }
    }
}

/// What the host measured of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Meter {
    /// Fuel consumed (wasmtime fuel units).
    pub fuel: u64,
    /// Wall time of the run, whole milliseconds.
    pub ms: u64,
    /// Bytes of the answer given to the caller (the result's JSON, or a command's output
    /// document, before any encryption).
    pub output_bytes: u64,
}

/// A tariff with its amounts parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    /// [`Tariff::fixed`].
    pub fixed: u128,
    /// [`Tariff::per_million_fuel`].
    pub per_million_fuel: u128,
    /// [`Tariff::per_ms`].
    pub per_ms: u128,
    /// [`Tariff::per_kib_out`].
    pub per_kib_out: u128,
}

/// Parses a canonical decimal amount: digits, no sign, no leading zero (but `0`), at most
/// [`MAX_TARIFF_AMOUNT`].
pub fn parse_amount(s: &str) -> Option<u128> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

impl Tariff {
    /// The parsed rates.
    ///
    /// # Errors
    /// A message naming the field that is not a canonical decimal amount.
    pub fn rates(&self) -> Result<Rates, String> {
        let field = |name: &str, v: &str| {
            parse_amount(v).ok_or_else(|| {
                format!(
                    "tariff.{name} must be a decimal integer of atomic units without sign or \
                     leading zeros, at most 2^128-1 (got {v:?})"
                )
            })
        };
        Ok(Rates {
            fixed: field("fixed", &self.fixed)?,
            per_million_fuel: field("per_million_fuel", &self.per_million_fuel)?,
            per_ms: field("per_ms", &self.per_ms)?,
            per_kib_out: field("per_kib_out", &self.per_kib_out)?,
        })
    }

    /// Checks the tariff against the agent's `price` (its maximum): every amount canonical,
    /// the maximum within [`MAX_TARIFF_AMOUNT`], the fixed part below the maximum, and some
    /// rate non-zero (else it is a fixed price: deploy it with `price` alone).
    ///
    /// # Errors
    /// A message naming what is wrong.
    pub fn check(&self, maximum: &str) -> Result<(Rates, u128), String> {
        let rates = self.rates()?;
        let maximum = parse_amount(maximum).filter(|m| *m > 0).ok_or_else(|| {
            "a tariff needs `price`, the most one run may cost, a positive integer of at most \
             2^128-1 atomic units"
                .to_string()
        })?;
        if rates.fixed >= maximum {
            return Err(format!(
                "tariff.fixed ({}) must be below the price, the most a run may cost ({maximum})",
                rates.fixed
            ));
        }
        if rates.per_million_fuel == 0 && rates.per_ms == 0 && rates.per_kib_out == 0 {
            return Err(
                "a tariff charges by the meter: at least one of per_million_fuel, per_ms and \
                 per_kib_out must be positive (a fixed price is `price` without a tariff)"
                    .into(),
            );
        }
        Ok((rates, maximum))
    }

    /// The signed detail line (`tariff=` of [`crate::agents::deploy_detail`]):
    /// `<fixed>,<per_million_fuel>,<per_ms>,<per_kib_out>` as sent.
    pub fn detail(&self) -> String {
        format!(
            "{},{},{},{}",
            self.fixed, self.per_million_fuel, self.per_ms, self.per_kib_out
        )
    }

    /// What a payer is told of it (402 descriptions, A2A skills, MCP tools): the rates that
    /// are charged, and the maximum.
    pub fn describe(&self, maximum: &str) -> String {
        let mut parts = vec![format!("{} fixed", self.fixed)];
        for (rate, unit) in [
            (&self.per_million_fuel, "per million fuel"),
            (&self.per_ms, "per ms"),
            (&self.per_kib_out, "per KiB of answer"),
        ] {
            if rate != "0" {
                parts.push(format!("{rate} {unit}"));
            }
        }
        format!(
            "metered (x402 upto): {}, at most {maximum} atomic units per run",
            parts.join(" + ")
        )
    }

    /// The charge of a run with this meter, at most `maximum` (see the module's formula).
    ///
    /// # Errors
    /// A message when the tariff's amounts do not parse.
    pub fn charge(&self, meter: &Meter, maximum: u128) -> Result<u128, String> {
        Ok(self.rates()?.charge(meter, maximum))
    }
}

/// `ceil(a × b / d)`, or `None` when it exceeds `u128`.
fn ceil_mul_div(a: u128, b: u128, d: u128) -> Option<u128> {
    let product = a.checked_mul(b)?;
    Some(product / d + u128::from(product % d != 0))
}

impl Rates {
    /// The charge of a run with this meter, at most `maximum`. Exact: any intermediate sum
    /// that would exceed `u128` is above every maximum, so it charges `maximum`.
    pub fn charge(&self, meter: &Meter, maximum: u128) -> u128 {
        let total = (|| {
            let fuel = ceil_mul_div(u128::from(meter.fuel), self.per_million_fuel, 1_000_000)?;
            let time = u128::from(meter.ms).checked_mul(self.per_ms)?;
            let out = ceil_mul_div(u128::from(meter.output_bytes), self.per_kib_out, 1024)?;
            self.fixed
                .checked_add(fuel)?
                .checked_add(time)?
                .checked_add(out)
        })();
        total.map_or(maximum, |t| t.min(maximum))
    }

    /// The most fuel a run may consume before its fuel alone costs more than `maximum`: a run
    /// stopped there is charged `maximum`. `None` when fuel is free.
    pub fn fuel_cap(&self, maximum: u128) -> Option<u64> {
        if self.per_million_fuel == 0 {
            return None;
        }
        let budget = maximum.saturating_sub(self.fixed);
        // The largest fuel f with ceil(f × rate / 1e6) ≤ budget: f = budget × 1e6 / rate.
        let fuel = budget.saturating_mul(1_000_000) / self.per_million_fuel;
        Some(u64::try_from(fuel).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tariff(fixed: &str, fuel: &str, ms: &str, kib: &str) -> Tariff {
        Tariff {
            fixed: fixed.into(),
            per_million_fuel: fuel.into(),
            per_ms: ms.into(),
            per_kib_out: kib.into(),
        }
    }

    #[test]
    fn the_charge_follows_the_formula_and_rounds_up() {
        let t = tariff("100", "7", "3", "10");
        let meter = Meter {
            fuel: 2_500_001,
            ms: 12,
            output_bytes: 1025,
        };
        // 100 + ceil(17.500007) + 36 + ceil(10.0097…) = 100 + 18 + 36 + 11.
        assert_eq!(t.charge(&meter, 10_000).unwrap(), 165);
        assert_eq!(t.charge(&meter, 150).unwrap(), 150, "capped at the maximum");
        assert_eq!(t.charge(&Meter::default(), 10_000).unwrap(), 100);
        let exact = Meter {
            fuel: 1_000_000,
            ms: 0,
            output_bytes: 1024,
        };
        assert_eq!(t.charge(&exact, 10_000).unwrap(), 100 + 7 + 10);
    }

    #[test]
    fn overflow_charges_the_maximum() {
        let t = tariff("0", &u128::MAX.to_string(), "0", "0");
        let meter = Meter {
            fuel: u64::MAX,
            ms: 0,
            output_bytes: 0,
        };
        assert_eq!(t.charge(&meter, 5).unwrap(), 5);
        let t = tariff("1", "0", &u128::MAX.to_string(), "0");
        let meter = Meter {
            fuel: 0,
            ms: 1,
            output_bytes: 0,
        };
        assert_eq!(t.charge(&meter, u128::MAX).unwrap(), u128::MAX);
    }

    #[test]
    fn the_fuel_cap_is_the_maximums_worth() {
        let rates = tariff("100", "7", "0", "0").rates().unwrap();
        let cap = rates.fuel_cap(1000).unwrap();
        assert_eq!(cap, 900 * 1_000_000 / 7);
        let at_cap = Meter {
            fuel: cap,
            ..Meter::default()
        };
        assert!(rates.charge(&at_cap, u128::MAX) <= 1000);
        let beyond = Meter {
            fuel: cap + 1,
            ..Meter::default()
        };
        assert!(rates.charge(&beyond, u128::MAX) > 1000);
        assert_eq!(
            tariff("0", "0", "1", "0").rates().unwrap().fuel_cap(9),
            None
        );
        let huge = tariff("0", "1", "0", "0").rates().unwrap();
        assert_eq!(huge.fuel_cap(u128::MAX), Some(u64::MAX));
    }

    #[test]
    fn checks_name_the_problem() {
        assert!(tariff("1", "1", "0", "0").check("10").is_ok());
        assert!(
            tariff("01", "1", "0", "0")
                .check("10")
                .unwrap_err()
                .contains("tariff.fixed")
        );
        assert!(
            tariff("1", "-1", "0", "0")
                .check("10")
                .unwrap_err()
                .contains("per_million_fuel")
        );
        assert!(
            tariff("10", "1", "0", "0")
                .check("10")
                .unwrap_err()
                .contains("below the price")
        );
        assert!(
            tariff("0", "0", "0", "0")
                .check("10")
                .unwrap_err()
                .contains("at least one")
        );
        assert!(
            tariff("0", "1", "0", "0")
                .check("0")
                .unwrap_err()
                .contains("needs `price`")
        );
        let two_to_the_128 = "340282366920938463463374607431768211456";
        assert!(tariff("0", "1", "0", "0").check(two_to_the_128).is_err());
        assert!(
            tariff("0", "1", "0", "0")
                .check(&u128::MAX.to_string())
                .is_ok()
        );
        assert_eq!(tariff("1", "2", "3", "4").detail(), "1,2,3,4");
        assert_eq!(
            tariff("100", "7", "0", "3").describe("5000"),
            "metered (x402 upto): 100 fixed + 7 per million fuel + 3 per KiB of answer, at most \
             5000 atomic units per run"
        );
    }

    #[test]
    fn absent_rates_are_zero() {
        let t: Tariff = serde_json::from_str(r#"{"per_ms": "5"}"#).unwrap();
        assert_eq!(t, tariff("0", "0", "5", "0"));
        assert!(serde_json::from_str::<Tariff>(r#"{"per_hour": "5"}"#).is_err());
    }
}
