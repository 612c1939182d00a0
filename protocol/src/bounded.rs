//! Sequences whose length is bounded while they are parsed.
//!
//! A request body is at most `http.max_body_bytes`, but its shape decides what parsing it
//! costs: `["","",…]` is three bytes per element on the wire and a 24-byte `String` (plus the
//! vector's growth) in memory. Every list a client sends is parsed through [`vec`] or
//! [`option_vec`] with its bound, which fail on the first element past it, so a long list costs
//! no more than its bound.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, Error, SeqAccess, Visitor};

/// The most arguments a request may carry on the wire, encrypted or clear (the host's
/// `limits.max_arguments`, at most this, is checked afterwards).
pub const MAX_ARGUMENTS: usize = 65_536;

/// Deserializes a sequence of at most `N` elements.
///
/// # Errors
/// The deserializer's error, or an invalid length as soon as element `N + 1` appears.
pub fn vec<'de, D, T, const N: usize>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    d.deserialize_seq(Bounded::<T, N>(PhantomData))
}

/// Deserializes `null` as `None` and a sequence of at most `N` elements as `Some` (use with
/// `#[serde(default)]` for an absent field).
///
/// # Errors
/// As [`vec`].
pub fn option_vec<'de, D, T, const N: usize>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    d.deserialize_option(Optional::<T, N>(PhantomData))
}

struct Bounded<T, const N: usize>(PhantomData<T>);

impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for Bounded<T, N> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of at most {N} elements")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(N).min(64));
        while let Some(item) = seq.next_element()? {
            if out.len() == N {
                return Err(A::Error::invalid_length(N + 1, &self));
            }
            out.push(item);
        }
        Ok(out)
    }
}

struct Optional<T, const N: usize>(PhantomData<T>);

impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for Optional<T, N> {
    type Value = Option<Vec<T>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "null or a list of at most {N} elements")
    }

    fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        vec::<D, T, N>(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Lists {
        #[serde(default, deserialize_with = "super::vec::<_, _, 2>")]
        some: Vec<u8>,
        #[serde(default, deserialize_with = "super::option_vec::<_, _, 2>")]
        maybe: Option<Vec<String>>,
    }

    #[test]
    fn lists_up_to_the_bound_parse_and_longer_ones_fail_at_the_first_element_past_it() {
        let parse = |s: &str| serde_json::from_str::<Lists>(s);
        assert_eq!(
            parse(r#"{"some": [1, 2], "maybe": ["a"]}"#).unwrap(),
            Lists {
                some: vec![1, 2],
                maybe: Some(vec!["a".into()])
            }
        );
        assert_eq!(parse(r#"{"maybe": null}"#).unwrap().maybe, None);
        assert_eq!(parse("{}").unwrap().maybe, None);
        let err = parse(r#"{"some": [1, 2, 3]}"#).unwrap_err().to_string();
        assert!(err.contains("at most 2 elements"), "{err}");
        // The error comes at the third element: what follows is never parsed.
        let err = parse(r#"{"maybe": ["a", "b", "c", not json"#).unwrap_err();
        assert!(err.is_data(), "{err}");
    }
}
