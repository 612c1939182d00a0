//! A task written straight in A2A 0.3's shapes, borrowed from the neutral model: what
//! [`super::model::to_v03`] makes of a task's 1.0 value, without building either value.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use super::model::{Artifact, Content, Message, Part, Role, TaskStatus, TaskView};

/// A task in 0.3's shape (`kind` last, as the translation appends it).
pub struct Task03<'a>(pub(super) TaskView<'a>);

impl Serialize for Task03<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let t = &self.0;
        let mut out = ser.serialize_map(None)?;
        out.serialize_entry("id", t.id)?;
        out.serialize_entry("contextId", t.context_id)?;
        out.serialize_entry("status", &Status03(t.status))?;
        if !t.artifacts.is_empty() {
            out.serialize_entry("artifacts", &Each(t.artifacts, Artifact03))?;
        }
        if !t.history.is_empty() {
            out.serialize_entry("history", &Each(t.history, Message03))?;
        }
        if let Some(m) = t.metadata {
            out.serialize_entry("metadata", m)?;
        }
        out.serialize_entry("kind", "task")?;
        out.end()
    }
}

/// A sequence of `T`s, each written as `wrap` makes it.
struct Each<'a, T, W>(&'a [T], fn(&'a T) -> W);

impl<'a, T, W: Serialize> Serialize for Each<'a, T, W> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_seq(self.0.iter().map(self.1))
    }
}

struct Status03<'a>(&'a TaskStatus);

impl Serialize for Status03<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let s = self.0;
        let mut out = ser.serialize_map(None)?;
        out.serialize_entry("state", s.state.v03_name())?;
        if let Some(m) = &s.message {
            out.serialize_entry("message", &Message03(m))?;
        }
        out.serialize_entry("timestamp", &s.timestamp)?;
        out.end()
    }
}

struct Message03<'a>(&'a Message);

impl Serialize for Message03<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        let mut out = ser.serialize_map(None)?;
        out.serialize_entry("messageId", &m.message_id)?;
        if let Some(c) = &m.context_id {
            out.serialize_entry("contextId", c)?;
        }
        if let Some(t) = &m.task_id {
            out.serialize_entry("taskId", t)?;
        }
        let role = match m.role {
            Role::User => "user",
            Role::Agent => "agent",
        };
        out.serialize_entry("role", role)?;
        out.serialize_entry("parts", &Each(&m.parts, Part03))?;
        if let Some(meta) = &m.metadata {
            out.serialize_entry("metadata", meta)?;
        }
        if !m.extensions.is_empty() {
            out.serialize_entry("extensions", &m.extensions)?;
        }
        if !m.reference_task_ids.is_empty() {
            out.serialize_entry("referenceTaskIds", &m.reference_task_ids)?;
        }
        out.serialize_entry("kind", "message")?;
        out.end()
    }
}

struct Artifact03<'a>(&'a Artifact);

impl Serialize for Artifact03<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let a = self.0;
        let mut out = ser.serialize_map(None)?;
        out.serialize_entry("artifactId", &a.artifact_id)?;
        if let Some(n) = &a.name {
            out.serialize_entry("name", n)?;
        }
        if let Some(d) = &a.description {
            out.serialize_entry("description", d)?;
        }
        out.serialize_entry("parts", &Each(&a.parts, Part03))?;
        if let Some(m) = &a.metadata {
            out.serialize_entry("metadata", m)?;
        }
        out.end()
    }
}

/// A part: `kind` first; a data part whose value is not an object (0.3 requires one) as a
/// text part holding its JSON; raw bytes and URLs as `file` parts.
struct Part03<'a>(&'a Part);

impl Serialize for Part03<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let p = self.0;
        let mut out = ser.serialize_map(None)?;
        match &p.content {
            Content::Text(t) => {
                out.serialize_entry("kind", "text")?;
                out.serialize_entry("text", t)?;
            }
            Content::Data(d @ Value::Object(_)) => {
                out.serialize_entry("kind", "data")?;
                out.serialize_entry("data", d)?;
            }
            Content::Data(other) => {
                out.serialize_entry("kind", "text")?;
                out.serialize_entry("text", &other.to_string())?;
            }
            Content::Raw(bytes) => {
                out.serialize_entry("kind", "file")?;
                out.serialize_entry("file", &File03("bytes", bytes, p))?;
            }
            Content::Url(uri) => {
                out.serialize_entry("kind", "file")?;
                out.serialize_entry("file", &File03("uri", uri, p))?;
            }
        }
        if let Some(m) = &p.metadata {
            out.serialize_entry("metadata", m)?;
        }
        out.end()
    }
}

struct File03<'a>(&'static str, &'a str, &'a Part);

impl Serialize for File03<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut out = ser.serialize_map(None)?;
        out.serialize_entry(self.0, self.1)?;
        if let Some(m) = &self.2.media_type {
            out.serialize_entry("mimeType", m)?;
        }
        if let Some(n) = &self.2.filename {
            out.serialize_entry("name", n)?;
        }
        out.end()
    }
}

/// A 0.3 message value turned, in place, into 1.0's shape (see
/// [`super::model::message_from_v03`]).
pub(super) fn message_into_v1(v03: Value) -> Result<Value, String> {
    let Value::Object(mut obj) = v03 else {
        return Err("the message must be an object".into());
    };
    obj.remove("kind");
    let role = match obj.get("role").and_then(Value::as_str) {
        Some("user") => "ROLE_USER",
        Some("agent") => "ROLE_AGENT",
        _ => return Err("message.role must be \"user\" or \"agent\"".into()),
    };
    obj.insert("role".into(), Value::from(role));
    let Some(Value::Array(parts)) = obj.get_mut("parts") else {
        return Err("message.parts must be an array".into());
    };
    for part in parts.iter_mut() {
        *part = part_into_v1(std::mem::take(part))?;
    }
    Ok(Value::Object(obj))
}

fn part_into_v1(part: Value) -> Result<Value, String> {
    let Value::Object(mut obj) = part else {
        return Err("a part must be an object".into());
    };
    let mut out = Map::new();
    match obj.get("kind").and_then(Value::as_str) {
        Some("text") => match obj.remove("text") {
            Some(text @ Value::String(_)) => {
                out.insert("text".into(), text);
            }
            _ => return Err("a text part needs text".into()),
        },
        Some("data") => {
            out.insert(
                "data".into(),
                obj.remove("data").ok_or("a data part needs data")?,
            );
        }
        Some("file") => {
            let Some(Value::Object(mut file)) = obj.remove("file") else {
                return Err("a file part needs file".into());
            };
            match (file.remove("bytes"), file.remove("uri")) {
                (Some(b), None) => out.insert("raw".into(), b),
                (None, Some(u)) => out.insert("url".into(), u),
                _ => return Err("a file holds exactly one of bytes or uri".into()),
            };
            if let Some(m) = file.remove("mimeType") {
                out.insert("mediaType".into(), m);
            }
            if let Some(n) = file.remove("name") {
                out.insert("filename".into(), n);
            }
        }
        _ => return Err("part.kind must be text, data or file".into()),
    }
    if let Some(m) = obj.remove("metadata") {
        out.insert("metadata".into(), m);
    }
    Ok(Value::Object(out))
}
