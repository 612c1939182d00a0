//! Events in and results out with JavaScript's own JSON: `JSON.parse` of the event's text and
//! `JSON.stringify` of the handler's result, the engine's original functions (captured at
//! set-up, before an agent's code could replace them). So an object's keys keep their order,
//! numbers their formatting and strings their escapes, byte for byte as `JSON.stringify` makes
//! them, in both directions.

use boa_engine::{Context, JsError, JsObject, JsResult, JsString, JsValue, js_string};

/// The engine's `JSON.parse` and `JSON.stringify`.
pub struct Json {
    parse: JsObject,
    stringify: JsObject,
}

/// Why a result cannot be sent.
pub enum NotJson {
    /// A value `JSON.stringify` leaves out: its JavaScript type.
    Unrepresentable(&'static str),
    /// `JSON.stringify` threw (a BigInt, a cycle, a throwing `toJSON`).
    Threw(JsError),
}

impl Json {
    /// Takes the global `JSON`'s functions.
    ///
    /// # Errors
    /// If they are missing (a bug: nothing has run yet).
    pub fn capture(context: &mut Context) -> JsResult<Self> {
        let json = context
            .global_object()
            .get(js_string!("JSON"), context)?
            .to_object(context)?;
        let function = |name: JsString, context: &mut Context| -> JsResult<JsObject> {
            json.get(name, context)?.to_object(context)
        };
        Ok(Self {
            parse: function(js_string!("parse"), context)?,
            stringify: function(js_string!("stringify"), context)?,
        })
    }

    /// `JSON.parse(text)`.
    ///
    /// # Errors
    /// The `SyntaxError` of text that is not JSON.
    pub fn parse(&self, text: &str, context: &mut Context) -> JsResult<JsValue> {
        self.parse.call(
            &JsValue::undefined(),
            &[JsString::from(text).into()],
            context,
        )
    }

    /// `JSON.stringify(value)` as UTF-8. `undefined` (a handler that returns nothing) is `null`.
    ///
    /// # Errors
    /// [`NotJson`]: a function or a symbol, or what `JSON.stringify` threw.
    pub fn stringify(&self, value: &JsValue, context: &mut Context) -> Result<Vec<u8>, NotJson> {
        if value.is_undefined() {
            return Ok(b"null".to_vec());
        }
        let text = self
            .stringify
            .call(&JsValue::undefined(), std::slice::from_ref(value), context)
            .map_err(NotJson::Threw)?;
        match text.as_string() {
            // JSON.stringify escapes lone surrogates, so its text is always valid UTF-16.
            Some(text) => Ok(text.to_std_string_lossy().into_bytes()),
            None if value.is_symbol() => Err(NotJson::Unrepresentable("a symbol")),
            None if value.is_callable() => Err(NotJson::Unrepresentable("a function")),
            None => Err(NotJson::Unrepresentable("a value JSON cannot carry")),
        }
    }
}
