//! Strict JSON: request bodies parsed so that a struct is only ever a JSON object.
//!
//! serde's derived `Deserialize` for a struct also accepts a JSON array of its fields in
//! order, so `["text"]` would parse as `{"query": "text"}` and `"limits": [1, 2, 3]` as a
//! `Limits`. A protocol that says "requests are JSON objects" must refuse both. [`from_slice`]
//! wraps `serde_json`'s deserializer in [`Strict`], which passes everything through unchanged
//! except that a struct given as an array is an "invalid type" error, at any depth: the wrapper
//! follows the parse into every element, map value and option. And an optional field is left
//! out or has a value: JSON `null` for an `Option` is an "invalid type" error too (a field whose
//! value is any JSON, such as an event, takes `null` as that value).

use std::fmt;

use serde::de::{
    DeserializeSeed, Deserializer, EnumAccess, Error as _, MapAccess, SeqAccess, Unexpected,
    Visitor,
};

/// Parses `bytes` as `T`, refusing an array wherever `T` (or any struct inside it) expects an
/// object. Otherwise exactly `serde_json::from_slice`.
///
/// # Errors
/// `serde_json`'s error; an array in place of an object is a data error
/// (`Category::Data`).
pub fn from_slice<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> serde_json::Result<T> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = T::deserialize(Strict(&mut de))?;
    de.end()?;
    Ok(value)
}

/// A deserializer that refuses a sequence where a struct is expected (see the module
/// documentation).
pub struct Strict<D>(pub D);

/// Forwards `deserialize_*` methods to the inner deserializer, wrapping the visitor.
macro_rules! forward {
    ($($method:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.0.$method(Wrap(visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Strict<D> {
    type Error = D::Error;

    forward!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any,
    );

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_option(NotNull(visitor))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_unit_struct(name, Wrap(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_newtype_struct(name, Wrap(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, Wrap(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple_struct(name, len, Wrap(visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_struct(name, fields, ObjectOnly(visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_enum(name, variants, Wrap(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// Wraps a seed so that what it deserializes is [`Strict`] too.
struct Seed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Strict(d))
    }
}

/// Wraps sequence access: every element is [`Strict`].
struct Seq<A>(A);

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Seq<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(Seed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

/// Wraps map access: every key and value is [`Strict`].
struct Map<A>(A);

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Map<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(Seed(seed))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.0.next_value_seed(Seed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

/// Forwards `visit_*` methods of scalars to the wrapped visitor.
macro_rules! visit {
    ($($method:ident: $ty:ty),* $(,)?) => {$(
        fn $method<E: serde::de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.0.$method(v)
        }
    )*};
}

/// Everything but sequences and `none`, passed to the wrapped visitor as is; maps, options and
/// newtypes are passed on wrapped.
macro_rules! visit_all_but_seq {
    () => {
        visit!(
            visit_bool: bool,
            visit_i8: i8,
            visit_i16: i16,
            visit_i32: i32,
            visit_i64: i64,
            visit_i128: i128,
            visit_u8: u8,
            visit_u16: u16,
            visit_u32: u32,
            visit_u64: u64,
            visit_u128: u128,
            visit_f32: f32,
            visit_f64: f64,
            visit_char: char,
            visit_str: &str,
            visit_borrowed_str: &'de str,
            visit_string: String,
            visit_bytes: &[u8],
            visit_borrowed_bytes: &'de [u8],
            visit_byte_buf: Vec<u8>,
        );

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            self.0.visit_unit()
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            self.0.visit_some(Strict(d))
        }

        fn visit_newtype_struct<D: Deserializer<'de>>(
            self,
            d: D,
        ) -> Result<Self::Value, D::Error> {
            self.0.visit_newtype_struct(Strict(d))
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            self.0.visit_map(Map(map))
        }

        fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
            // Enum variants of the protocol carry no structs; passed through unwrapped.
            self.0.visit_enum(data)
        }
    };
}

/// A visitor passed through, with everything it reads [`Strict`].
struct Wrap<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    visit_all_but_seq!();

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_none()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.0.visit_seq(Seq(seq))
    }
}

/// A struct's visitor: as [`Wrap`], but an array is an invalid type.
struct ObjectOnly<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for ObjectOnly<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)?;
        f.write_str(" (a JSON object)")
    }

    visit_all_but_seq!();

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_none()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<Self::Value, A::Error> {
        Err(A::Error::invalid_type(Unexpected::Seq, &self))
    }
}

/// An optional field's visitor: as [`Wrap`], but `null` is an invalid type. An optional field
/// is absent or has a value of its type; `null` is neither.
struct NotNull<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for NotNull<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)?;
        f.write_str(" (leave an optional field out rather than send null)")
    }

    visit_all_but_seq!();

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Err(E::invalid_type(Unexpected::Option, &self))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.0.visit_seq(Seq(seq))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::from_slice;
    use crate::agents::{InvokeRequest, SearchRequest};
    use crate::wire::ExecuteRequest;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Inner {
        a: u8,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Outer {
        inner: Option<Inner>,
        list: Vec<Inner>,
    }

    #[test]
    fn an_optional_field_is_absent_or_a_value_never_null() {
        assert!(
            serde_json::from_str::<ExecuteRequest>(
                r#"{"encrypted_wasm": "00", "public_key": "04", "session_id": null}"#
            )
            .is_ok()
        );
        for body in [
            r#"{"encrypted_wasm": "00", "public_key": "04", "session_id": null}"#,
            r#"{"encrypted_wasm": "00", "public_key": "04", "encrypted_stdin": null}"#,
            r#"{"encrypted_wasm": "00", "public_key": "04", "limits": {"fuel": null}}"#,
            r#"{"encrypted_wasm": "00", "public_key": "04", "limits": null}"#,
        ] {
            let err = from_slice::<ExecuteRequest>(body.as_bytes()).unwrap_err();
            assert!(err.is_data(), "{body}: {err}");
            assert!(err.to_string().contains("rather than send null"), "{err}");
        }
        let fine = from_slice::<ExecuteRequest>(
            br#"{"encrypted_wasm": "00", "public_key": "04", "limits": {"fuel": 5}}"#,
        )
        .unwrap();
        assert_eq!(fine.limits.and_then(|l| l.fuel), Some(5));
        // An event is any JSON: null is the value null.
        let invoke = from_slice::<InvokeRequest>(br#"{"event": null}"#).unwrap();
        assert_eq!(
            invoke.event.map(|e| e.get().to_string()).as_deref(),
            Some("null")
        );
        let invoke = from_slice::<InvokeRequest>(br#"{"event": {"a": [1, null]}}"#).unwrap();
        assert_eq!(
            invoke.event.map(|e| e.get().to_string()).as_deref(),
            Some(r#"{"a": [1, null]}"#)
        );
        assert!(from_slice::<InvokeRequest>(b"{}").unwrap().event.is_none());
    }

    #[test]
    fn a_struct_is_only_an_object_at_any_depth() {
        // serde_json alone takes arrays for structs; strict parsing does not.
        assert!(serde_json::from_str::<SearchRequest>(r#"["text"]"#).is_ok());
        let err = from_slice::<SearchRequest>(br#"["text"]"#).unwrap_err();
        assert!(err.is_data(), "{err}");
        assert!(err.to_string().contains("a JSON object"), "{err}");
        for nested in [
            r#"{"inner": [1], "list": []}"#,
            r#"{"inner": null, "list": [[1]]}"#,
        ] {
            assert!(serde_json::from_str::<Outer>(nested).is_ok());
            assert!(
                from_slice::<Outer>(nested.as_bytes())
                    .unwrap_err()
                    .is_data()
            );
        }
        assert_eq!(
            from_slice::<Outer>(br#"{"inner": {"a": 1}, "list": [{"a": 2}]}"#).unwrap(),
            Outer {
                inner: Some(Inner { a: 1 }),
                list: vec![Inner { a: 2 }]
            }
        );
        let err = from_slice::<ExecuteRequest>(
            br#"{"encrypted_wasm": "00", "public_key": "04", "limits": [1, 2, 3]}"#,
        )
        .unwrap_err();
        assert!(err.is_data(), "{err}");
    }

    #[test]
    fn everything_else_parses_as_serde_json_parses_it() {
        let req: InvokeRequest = from_slice(
            br#"{"event": {"x": [1, {"y": null}]}, "session_id": "0192f0e4-5a3c-7cc2-8f3c-6f4b2e1d0a99"}"#,
        )
        .unwrap();
        assert_eq!(
            req.event.unwrap().get(),
            r#"{"x": [1, {"y": null}]}"#,
            "the raw event is kept as sent"
        );
        assert!(req.session_id.is_some());
        // Trailing data and syntax errors are still what they are.
        assert!(
            from_slice::<SearchRequest>(br#"{"query": "a"} x"#)
                .unwrap_err()
                .is_syntax()
        );
        assert!(
            from_slice::<SearchRequest>(br#"{"query": "#)
                .unwrap_err()
                .is_eof()
        );
        // Unknown fields are still refused.
        assert!(
            from_slice::<SearchRequest>(br#"{"query": "a", "x": 1}"#)
                .unwrap_err()
                .is_data()
        );
    }
}
