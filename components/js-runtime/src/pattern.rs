//! Natives under `URLPattern` (src/web/urlpattern.js): the URL Pattern Standard's parsing and
//! input processing through the `urlpattern` crate (Deno's implementation, which Firefox uses
//! too). The crate turns a pattern into one regular expression per URL component; the regular
//! expressions are ECMAScript ones, compiled and run by the engine's own `RegExp` on the
//! JavaScript side, so matching has the language's semantics exactly. The crate also needs to
//! run one (the constructor string parser tests the protocol against "special" schemes): that
//! one runs on `regress`, the engine's own regular expression crate.

use boa_engine::{Context, JsArgs, JsNativeError, JsResult, JsString, JsValue};
use urlpattern::quirks;
use urlpattern::regexp::RegExp;
use urlpattern::{RegexSyntax, UrlPatternInit, UrlPatternOptions};

use super::web::usv;

/// The crate's regular expressions, in ECMAScript syntax, on `regress`. One that does not
/// compile here is kept as text: the JavaScript side compiles every component's expression
/// with the engine's `RegExp` and refuses the pattern naming the component and the reason.
struct EngineRegExp {
    source: String,
    compiled: Option<regress::Regex>,
}

impl RegExp for EngineRegExp {
    fn syntax() -> RegexSyntax {
        RegexSyntax::EcmaScript
    }

    /// `flags` is the crate's `u` or `ui`; the Standard (since 2023) compiles with `v` (set
    /// operations in classes, and stricter escapes), as the JavaScript side does.
    fn parse(pattern: &str, flags: &str, _force_eval: bool) -> Result<Self, ()> {
        let flags = flags.replace('u', "v");
        Ok(Self {
            source: pattern.to_owned(),
            compiled: regress::Regex::with_flags(pattern, flags.as_str()).ok(),
        })
    }

    fn matches<'a>(&self, text: &'a str) -> Option<Vec<Option<&'a str>>> {
        let found = self.compiled.as_ref()?.find(text)?;
        Some(
            found
                .captures
                .iter()
                .map(|c| c.clone().and_then(|range| text.get(range)))
                .collect(),
        )
    }

    fn pattern_string(&self) -> &str {
        &self.source
    }
}

fn type_error(why: impl std::fmt::Display) -> JsNativeError {
    JsNativeError::typ().with_message(format!("URLPattern: {why}"))
}

/// An optional string argument: `undefined` is none.
fn optional_usv(args: &[JsValue], i: usize, context: &mut Context) -> JsResult<Option<String>> {
    match args.get_or_undefined(i) {
        v if v.is_undefined() => Ok(None),
        _ => usv(args, i, context).map(Some),
    }
}

/// A `URLPatternInit` the JavaScript side gave as JSON (only the members present).
fn init_arg(json: &str) -> JsResult<quirks::UrlPatternInit> {
    serde_json::from_str(json).map_err(|why| type_error(format!("bad init: {why}")).into())
}

/// `__hv_urlpattern_parse(input, isInit, baseURL, ignoreCase)`: the compiled pattern as JSON
/// (each component's pattern string, regular expression and group names, and whether any
/// group is a regular expression), or a `TypeError` naming what is wrong. `input` is the
/// constructor string, or with `isInit` the `URLPatternInit` as JSON.
pub fn parse(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let input = usv(args, 0, context)?;
    let is_init = args.get_or_undefined(1).to_boolean();
    let base = optional_usv(args, 2, context)?;
    let ignore_case = args.get_or_undefined(3).to_boolean();
    let init = if is_init {
        if base.is_some() {
            return Err(type_error(urlpattern::Error::BaseUrlWithInit).into());
        }
        let init = init_arg(&input)?;
        let base_url = init
            .base_url
            .as_deref()
            .map(url::Url::parse)
            .transpose()
            .map_err(|why| type_error(format!("baseURL: {why}")))?;
        UrlPatternInit {
            protocol: init.protocol,
            username: init.username,
            password: init.password,
            hostname: init.hostname,
            port: init.port,
            pathname: init.pathname,
            search: init.search,
            hash: init.hash,
            base_url,
        }
    } else {
        let base_url = base
            .as_deref()
            .map(url::Url::parse)
            .transpose()
            .map_err(|why| type_error(format!("baseURL: {why}")))?;
        UrlPatternInit::parse_constructor_string::<EngineRegExp>(&input, base_url)
            .map_err(type_error)?
    };
    let options = UrlPatternOptions {
        regex_syntax: RegexSyntax::EcmaScript,
        ignore_case,
    };
    let pattern = quirks::parse_pattern::<EngineRegExp>(init, options).map_err(type_error)?;
    let json = serde_json::to_string(&pattern).map_err(type_error)?;
    Ok(JsString::from(json.as_str()).into())
}

/// `__hv_urlpattern_input(input, isInit, baseURL)`: the eight components a match compares
/// (`[protocol, username, password, hostname, port, pathname, search, hash]`), or `null` when
/// the input is not a URL (no match); a `URLPatternInit` with a separate base URL is a
/// `TypeError`.
pub fn match_input(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let input = usv(args, 0, context)?;
    let is_init = args.get_or_undefined(1).to_boolean();
    let base = optional_usv(args, 2, context)?;
    let input = if is_init {
        quirks::StringOrInit::Init(init_arg(&input)?)
    } else {
        quirks::StringOrInit::String(input.into())
    };
    let Some((processed, _)) =
        quirks::process_match_input(input, base.as_deref()).map_err(type_error)?
    else {
        return Ok(JsValue::null());
    };
    let Some(parts) = quirks::parse_match_input(processed) else {
        return Ok(JsValue::null());
    };
    let parts = [
        parts.protocol,
        parts.username,
        parts.password,
        parts.hostname,
        parts.port,
        parts.pathname,
        parts.search,
        parts.hash,
    ];
    let array = boa_engine::object::builtins::JsArray::from_iter(
        parts
            .iter()
            .map(|p| JsValue::from(JsString::from(p.as_str()))),
        context,
    );
    Ok(array.into())
}
