//! Limits: the operator sets defaults and maxima; a request may ask for less than the maximum,
//! never more (asking for more is an error that names the maximum, not a silent clamp).

use std::time::Duration;

use hypervisor_protocol::wire::Limits;

use crate::config::LimitsConfig;
use crate::engine::RunLimits;
use crate::error::ApiError;

/// Resolves requested limits against the configuration.
///
/// # Errors
/// [`ApiError::LimitExceedsMaximum`] or [`ApiError::FuelNotEnabled`], or
/// [`ApiError::InvalidRequest`] for a zero limit.
pub fn resolve_limits(
    asked: Option<&Limits>,
    config: &LimitsConfig,
    fuel_enabled: bool,
) -> Result<RunLimits, ApiError> {
    let asked = asked.copied().unwrap_or_default();
    let pick = |name: &str, asked: Option<u64>, default: u64, max: u64| match asked {
        None => Ok(default),
        Some(0) => Err(ApiError::InvalidRequest(format!(
            "limits.{name} must be greater than 0"
        ))),
        Some(v) if v > max => Err(ApiError::LimitExceedsMaximum(format!(
            "limits.{name} = {v} exceeds this host's maximum of {max}"
        ))),
        Some(v) => Ok(v),
    };
    let time_ms = pick(
        "time_ms",
        asked.time_ms,
        config.default_time_ms,
        config.max_time_ms,
    )?;
    let memory_bytes = pick(
        "memory_bytes",
        asked.memory_bytes,
        config.default_memory_bytes,
        config.max_memory_bytes,
    )?;
    let fuel = if fuel_enabled {
        Some(pick(
            "fuel",
            asked.fuel,
            config.default_fuel,
            config.max_fuel,
        )?)
    } else if asked.fuel.is_some() {
        return Err(ApiError::FuelNotEnabled);
    } else {
        None
    };
    Ok(RunLimits {
        time: Duration::from_millis(time_ms),
        memory_bytes,
        fuel,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_less_and_more() {
        let c = LimitsConfig::default();
        let d = resolve_limits(None, &c, false).unwrap();
        assert_eq!(d.time, Duration::from_millis(c.default_time_ms));
        assert_eq!(d.fuel, None);
        let less = Limits {
            time_ms: Some(5),
            memory_bytes: Some(1 << 20),
            fuel: None,
        };
        let r = resolve_limits(Some(&less), &c, true).unwrap();
        assert_eq!(
            (r.time, r.memory_bytes, r.fuel),
            (Duration::from_millis(5), 1 << 20, Some(c.default_fuel))
        );
        let more = Limits {
            time_ms: Some(c.max_time_ms + 1),
            ..Limits::default()
        };
        assert!(matches!(
            resolve_limits(Some(&more), &c, false),
            Err(ApiError::LimitExceedsMaximum(_))
        ));
        let fuel = Limits {
            fuel: Some(1),
            ..Limits::default()
        };
        assert!(matches!(
            resolve_limits(Some(&fuel), &c, false),
            Err(ApiError::FuelNotEnabled)
        ));
        let zero = Limits {
            memory_bytes: Some(0),
            ..Limits::default()
        };
        assert!(matches!(
            resolve_limits(Some(&zero), &c, false),
            Err(ApiError::InvalidRequest(_))
        ));
    }
}
