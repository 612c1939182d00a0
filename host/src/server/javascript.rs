//! The JavaScript engines of JS/TS agents, loaded at start: the default runtime
//! (`javascript.component`) and StarlingMonkey's spliced engine (`javascript.starlingmonkey`).

use std::sync::Arc;

use crate::config::Config;
use crate::engine::{JsRuntime, StarlingMonkey};

/// Both engines, `None` where not offered (`javascript.enabled = false` turns both off).
///
/// # Errors
/// A configured file that cannot be read, or is not what it should be.
pub(super) async fn engines(
    config: &Config,
) -> anyhow::Result<(Option<Arc<JsRuntime>>, Option<Arc<StarlingMonkey>>)> {
    if !config.javascript.enabled {
        return Ok((None, None));
    }
    let path = &config.javascript.component;
    let bytes = crate::plugins::builtin::read_static(path)
        .await
        .map_err(|e| anyhow::anyhow!("javascript.component: {e}"))?;
    tracing::info!(component = %path.display(), "javascript runtime ready");
    let runtime = Arc::new(JsRuntime::new(bytes));
    Ok((Some(runtime), starlingmonkey(config).await?))
}

/// StarlingMonkey's spliced engine (`javascript.starlingmonkey`), if offered: a file that
/// cannot be read or is no spliced engine stops the start; the built-in one missing from this
/// binary (built before `scripts/build-programs.sh`) only turns the engine off, with a warning.
async fn starlingmonkey(config: &Config) -> anyhow::Result<Option<Arc<StarlingMonkey>>> {
    let path = &config.javascript.starlingmonkey;
    if path.as_os_str().is_empty() {
        return Ok(None);
    }
    let bytes = match crate::plugins::builtin::read_static(path).await {
        Ok(bytes) => bytes,
        Err(e) if path.starts_with(crate::plugins::builtin::PREFIX) => {
            tracing::warn!("javascript.starlingmonkey: {e}; agents cannot ask for StarlingMonkey");
            return Ok(None);
        }
        Err(e) => anyhow::bail!("javascript.starlingmonkey: {e}"),
    };
    let sm = StarlingMonkey::new(bytes, config)
        .map_err(|e| anyhow::anyhow!("javascript.starlingmonkey: {e}"))?;
    tracing::info!(
        engine = %path.display(),
        sha256 = %hex::encode(sm.hash()),
        componentize_js = sm.version(),
        "StarlingMonkey ready for JavaScript agents that ask for it"
    );
    Ok(Some(Arc::new(sm)))
}
