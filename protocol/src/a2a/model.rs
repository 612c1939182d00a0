//! The neutral model of messages, parts, tasks and artifacts, serialised in A2A 1.0's shapes
//! (ProtoJSON, camelCase), with the translation to and from 0.3's shapes ([`to_v03`],
//! [`message_from_v03`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::wire03::Task03;
use super::{TaskState, Version};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// The client.
    #[serde(rename = "ROLE_USER")]
    User,
    /// The agent.
    #[serde(rename = "ROLE_AGENT")]
    Agent,
}

/// What a part holds: exactly one of these.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// Text.
    Text(String),
    /// Any JSON value.
    Data(Value),
    /// Bytes, base64 (standard alphabet, as ProtoJSON writes bytes).
    Raw(String),
    /// A link to the content.
    Url(String),
}

/// One part of a message or artifact.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "WirePart")]
pub struct Part {
    /// The content.
    pub content: Content,
    /// Its media type.
    pub media_type: Option<String>,
    /// A file name.
    pub filename: Option<String>,
    /// Free metadata.
    pub metadata: Option<Map<String, Value>>,
}

impl Part {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        Self::of(Content::Text(text.into()))
    }

    /// A data part.
    pub fn data(value: Value) -> Self {
        Self::of(Content::Data(value))
    }

    fn of(content: Content) -> Self {
        Self {
            content,
            media_type: None,
            filename: None,
            metadata: None,
        }
    }
}

/// A part as 1.0 writes it: one object, no `kind`, one content field (read through this;
/// written by [`Part`]'s own `Serialize`, in this order, without copying the part).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePart {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    raw: Option<String>,
    #[serde(default)]
    url: Option<String>,
    /// Present (even `null`) or absent.
    #[serde(default, deserialize_with = "present")]
    data: Option<Value>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl TryFrom<WirePart> for Part {
    type Error = String;

    fn try_from(w: WirePart) -> Result<Self, String> {
        let content = match (w.text, w.raw, w.url, w.data) {
            (Some(t), None, None, None) => Content::Text(t),
            (None, Some(r), None, None) => Content::Raw(r),
            (None, None, Some(u), None) => Content::Url(u),
            (None, None, None, Some(d)) => Content::Data(d),
            _ => return Err("a part holds exactly one of text, raw, url or data".into()),
        };
        Ok(Self {
            content,
            media_type: w.media_type,
            filename: w.filename,
            metadata: w.metadata,
        })
    }
}

impl Serialize for Part {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let fields = 1
            + usize::from(self.media_type.is_some())
            + usize::from(self.filename.is_some())
            + usize::from(self.metadata.is_some());
        let mut out = ser.serialize_struct("Part", fields)?;
        match &self.content {
            Content::Text(t) => out.serialize_field("text", t)?,
            Content::Raw(r) => out.serialize_field("raw", r)?,
            Content::Url(u) => out.serialize_field("url", u)?,
            Content::Data(d) => out.serialize_field("data", d)?,
        }
        if let Some(m) = &self.media_type {
            out.serialize_field("mediaType", m)?;
        }
        if let Some(f) = &self.filename {
            out.serialize_field("filename", f)?;
        }
        if let Some(m) = &self.metadata {
            out.serialize_field("metadata", m)?;
        }
        out.end()
    }
}

/// A message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// Its id, chosen by the writer.
    pub message_id: String,
    /// The conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_id: Option<String>,
    /// The task it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// Who wrote it.
    pub role: Role,
    /// Its content.
    pub parts: Vec<Part>,
    /// Free metadata (the x402 keys travel here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// Extensions it uses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<String>,
    /// Tasks it refers to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_task_ids: Vec<String>,
}

impl Message {
    /// A message from the agent on `task`, with id `message_id`.
    pub fn agent(
        task: &Task,
        message_id: String,
        parts: Vec<Part>,
        metadata: Option<Map<String, Value>>,
    ) -> Self {
        Self {
            message_id,
            context_id: Some(task.context_id.clone()),
            task_id: Some(task.id.clone()),
            role: Role::Agent,
            parts,
            metadata,
            extensions: Vec::new(),
            reference_task_ids: Vec::new(),
        }
    }

    /// A metadata value.
    pub fn meta(&self, key: &str) -> Option<&Value> {
        self.metadata.as_ref().and_then(|m| m.get(key))
    }
}

/// A task's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatus {
    /// The state.
    #[serde(with = "state_v1")]
    pub state: TaskState,
    /// The agent's message about it (the x402 keys are in its metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    /// When it was entered, RFC 3339 (UTC).
    pub timestamp: String,
}

mod state_v1 {
    use super::TaskState;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(s: &TaskState, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(s.v1_name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TaskState, D::Error> {
        let name = String::deserialize(d)?;
        TaskState::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown task state {name}")))
    }
}

/// An output of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// Its id.
    pub artifact_id: String,
    /// A name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its content.
    pub parts: Vec<Part>,
    /// Free metadata (the host's receipt travels here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// A task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// Its id.
    pub id: String,
    /// The conversation.
    pub context_id: String,
    /// Where it stands.
    pub status: TaskStatus,
    /// What it produced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<Artifact>,
    /// The messages exchanged, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Message>,
    /// Free metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

impl Task {
    /// The task as `version` writes it, with at most `history` messages of history (the
    /// newest; `None` keeps all) and, when `artifacts` is false, none of its artifacts.
    pub fn wire(&self, version: Version, history: Option<usize>, artifacts: bool) -> Value {
        let v1 = serde_json::to_value(self.view(history, artifacts)).unwrap_or(Value::Null);
        match version {
            Version::V1_0 => v1,
            Version::V0_3 => into_v03(Shape::Task, v1),
        }
    }

    /// [`Task::wire`] as something that serialises itself, straight from the task in either
    /// version's shapes (nothing copied, no intermediate value).
    pub fn wire_view(&self, version: Version, history: Option<usize>, artifacts: bool) -> Wire<'_> {
        match version {
            Version::V1_0 => Wire::V1(self.view(history, artifacts)),
            Version::V0_3 => Wire::V03(Task03(self.view(history, artifacts))),
        }
    }

    fn view(&self, history: Option<usize>, artifacts: bool) -> TaskView<'_> {
        let skip = history.map_or(0, |n| self.history.len().saturating_sub(n));
        TaskView {
            id: &self.id,
            context_id: &self.context_id,
            status: &self.status,
            artifacts: if artifacts { &self.artifacts } else { &[] },
            history: &self.history[skip..],
            metadata: self.metadata.as_ref(),
        }
    }
}

/// A task in 1.0's shape, borrowed: serialised as [`Task`] is.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskView<'a> {
    pub(super) id: &'a str,
    pub(super) context_id: &'a str,
    pub(super) status: &'a TaskStatus,
    #[serde(skip_serializing_if = "<[Artifact]>::is_empty")]
    pub(super) artifacts: &'a [Artifact],
    #[serde(skip_serializing_if = "<[Message]>::is_empty")]
    pub(super) history: &'a [Message],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) metadata: Option<&'a Map<String, Value>>,
}

/// A task as a version writes it ([`Task::wire_view`]), borrowed.
pub enum Wire<'a> {
    /// 1.0: the task itself.
    V1(TaskView<'a>),
    /// 0.3: written in its shapes as it goes.
    V03(Task03<'a>),
}

impl Serialize for Wire<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::V1(view) => view.serialize(ser),
            Self::V03(value) => value.serialize(ser),
        }
    }
}

/// What a 1.0 JSON value is, for [`to_v03`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A [`Task`].
    Task,
    /// A [`Message`].
    Message,
    /// A `TaskStatusUpdateEvent` (`final` is added: 0.3 requires it).
    StatusUpdate {
        /// Whether it is the stream's last event.
        last: bool,
    },
    /// A `TaskArtifactUpdateEvent`.
    ArtifactUpdate,
}

/// A 1.0 value in 0.3's shapes: `kind` on tasks, messages, parts and events; kebab-case
/// states; lower-case roles; `file` parts for raw bytes and URLs; a data part whose value is
/// not an object (0.3 requires one) as a text part holding its JSON.
pub fn to_v03(shape: Shape, v1: &Value) -> Value {
    into_v03(shape, v1.clone())
}

/// [`to_v03`], taking the value (translated in place, nothing copied).
pub fn into_v03(shape: Shape, mut v1: Value) -> Value {
    v03_in_place(shape, &mut v1);
    v1
}

fn v03_in_place(shape: Shape, value: &mut Value) {
    let Some(obj) = value.as_object_mut() else {
        return;
    };
    match shape {
        Shape::Task => {
            obj.insert("kind".into(), json!("task"));
            status_to_v03(obj.get_mut("status"));
            if let Some(Value::Array(history)) = obj.get_mut("history") {
                for m in history {
                    v03_in_place(Shape::Message, m);
                }
            }
            if let Some(Value::Array(artifacts)) = obj.get_mut("artifacts") {
                artifacts.iter_mut().for_each(artifact_to_v03);
            }
        }
        Shape::Message => {
            obj.insert("kind".into(), json!("message"));
            let role = match obj.get("role").and_then(Value::as_str) {
                Some("ROLE_AGENT") => "agent",
                _ => "user",
            };
            obj.insert("role".into(), json!(role));
            parts_to_v03(obj.get_mut("parts"));
        }
        Shape::StatusUpdate { last } => {
            obj.insert("kind".into(), json!("status-update"));
            obj.insert("final".into(), json!(last));
            status_to_v03(obj.get_mut("status"));
        }
        Shape::ArtifactUpdate => {
            obj.insert("kind".into(), json!("artifact-update"));
            if let Some(a) = obj.get_mut("artifact") {
                artifact_to_v03(a);
            }
        }
    }
}

fn status_to_v03(status: Option<&mut Value>) {
    let Some(Value::Object(status)) = status else {
        return;
    };
    if let Some(state) = status
        .get("state")
        .and_then(Value::as_str)
        .and_then(TaskState::parse)
    {
        status.insert("state".into(), json!(state.v03_name()));
    }
    if let Some(m) = status.get_mut("message") {
        v03_in_place(Shape::Message, m);
    }
}

fn artifact_to_v03(artifact: &mut Value) {
    if let Some(a) = artifact.as_object_mut() {
        parts_to_v03(a.get_mut("parts"));
    }
}

fn parts_to_v03(parts: Option<&mut Value>) {
    let Some(Value::Array(parts)) = parts else {
        return;
    };
    for part in parts {
        let taken = std::mem::take(part);
        let p = match Part::deserialize(&taken) {
            Ok(p) => p,
            Err(_) => {
                *part = taken;
                continue;
            }
        };
        drop(taken);
        let mut v03 = Map::new();
        match p.content {
            Content::Text(t) => {
                v03.insert("kind".into(), json!("text"));
                v03.insert("text".into(), json!(t));
            }
            Content::Data(d @ Value::Object(_)) => {
                v03.insert("kind".into(), json!("data"));
                v03.insert("data".into(), d);
            }
            Content::Data(other) => {
                v03.insert("kind".into(), json!("text"));
                v03.insert("text".into(), json!(other.to_string()));
            }
            Content::Raw(bytes) => {
                v03.insert("kind".into(), json!("file"));
                v03.insert(
                    "file".into(),
                    file_v03("bytes", bytes, p.media_type, p.filename),
                );
            }
            Content::Url(uri) => {
                v03.insert("kind".into(), json!("file"));
                v03.insert(
                    "file".into(),
                    file_v03("uri", uri, p.media_type, p.filename),
                );
            }
        }
        if let Some(m) = p.metadata {
            v03.insert("metadata".into(), Value::Object(m));
        }
        *part = Value::Object(v03);
    }
}

fn file_v03(key: &str, value: String, mime: Option<String>, name: Option<String>) -> Value {
    let mut file = Map::new();
    file.insert(key.into(), json!(value));
    if let Some(m) = mime {
        file.insert("mimeType".into(), json!(m));
    }
    if let Some(n) = name {
        file.insert("name".into(), json!(n));
    }
    Value::Object(file)
}

/// A 0.3 message (`kind`, lower-case role, `kind`ed parts) in 1.0's shape, ready for
/// [`Message`]'s deserialisation.
///
/// # Errors
/// What is wrong with it, for the client.
pub fn message_from_v03(v03: &Value) -> Result<Value, String> {
    message_into_v1(v03.clone())
}

/// [`message_from_v03`], taking the value (translated in place, nothing copied).
///
/// # Errors
/// What is wrong with it, for the client.
pub fn message_into_v1(v03: Value) -> Result<Value, String> {
    super::wire03::message_into_v1(v03)
}

/// RFC 3339 (UTC, milliseconds) of a Unix time in milliseconds.
pub fn timestamp(unix_ms: u64) -> String {
    let nanos = i128::from(unix_ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_holds_exactly_one_content() {
        let p: Part = serde_json::from_value(json!({"text": "hi"})).unwrap();
        assert_eq!(p.content, Content::Text("hi".into()));
        let p: Part = serde_json::from_value(json!({"data": null})).unwrap();
        assert_eq!(p.content, Content::Data(Value::Null));
        assert!(serde_json::from_value::<Part>(json!({"text": "a", "url": "b"})).is_err());
        assert!(serde_json::from_value::<Part>(json!({})).is_err());
        assert_eq!(
            serde_json::to_value(Part::data(json!([1]))).unwrap(),
            json!({"data": [1]})
        );
    }

    #[test]
    fn v03_messages_translate_both_ways() {
        let v03 = json!({
            "kind": "message", "messageId": "m1", "role": "user",
            "parts": [
                {"kind": "text", "text": "hello"},
                {"kind": "data", "data": {"a": 1}},
                {"kind": "file", "file": {"uri": "https://x/y", "mimeType": "text/plain"}}
            ]
        });
        let v1 = message_from_v03(&v03).unwrap();
        let m: Message = serde_json::from_value(v1.clone()).unwrap();
        assert_eq!(m.role, Role::User);
        assert_eq!(m.parts[2].content, Content::Url("https://x/y".into()));
        assert_eq!(m.parts[2].media_type.as_deref(), Some("text/plain"));
        assert_eq!(to_v03(Shape::Message, &v1), v03);
        assert!(message_from_v03(&json!({"role": "user", "parts": [{"kind": "x"}]})).is_err());
    }

    #[test]
    fn tasks_render_in_each_version() {
        let task = Task {
            id: "t".into(),
            context_id: "c".into(),
            status: TaskStatus {
                state: TaskState::Completed,
                message: None,
                timestamp: timestamp(0),
            },
            artifacts: vec![Artifact {
                artifact_id: "a".into(),
                name: None,
                description: None,
                parts: vec![Part::data(json!(3))],
                metadata: None,
            }],
            history: Vec::new(),
            metadata: None,
        };
        let v1 = task.wire(Version::V1_0, None, true);
        assert_eq!(v1["status"]["state"], "TASK_STATE_COMPLETED");
        assert_eq!(v1["status"]["timestamp"], "1970-01-01T00:00:00Z");
        assert_eq!(v1["artifacts"][0]["parts"][0], json!({"data": 3}));
        let v03 = task.wire(Version::V0_3, None, true);
        assert_eq!(v03["kind"], "task");
        assert_eq!(v03["status"]["state"], "completed");
        assert_eq!(
            v03["artifacts"][0]["parts"][0],
            json!({"kind": "text", "text": "3"})
        );
        assert!(
            task.wire(Version::V1_0, None, false)
                .get("artifacts")
                .is_none()
        );
        let back: Task = serde_json::from_value(v1).unwrap();
        assert_eq!(back, task);
    }

    fn message(id: &str, parts: Vec<Part>) -> Message {
        Message {
            message_id: id.into(),
            context_id: Some("c".into()),
            task_id: Some("t".into()),
            role: Role::User,
            parts,
            metadata: None,
            extensions: Vec::new(),
            reference_task_ids: Vec::new(),
        }
    }

    #[test]
    fn a_part_is_written_in_one_order_with_only_the_fields_it_has() {
        let part = Part {
            content: Content::Raw("AQI=".into()),
            media_type: Some("application/octet-stream".into()),
            filename: Some("b.bin".into()),
            metadata: Some([("k".to_string(), json!(1))].into_iter().collect()),
        };
        assert_eq!(
            serde_json::to_string(&part).unwrap(),
            r#"{"raw":"AQI=","mediaType":"application/octet-stream","filename":"b.bin","metadata":{"k":1}}"#
        );
        assert_eq!(
            serde_json::to_string(&Part::text("hi")).unwrap(),
            r#"{"text":"hi"}"#
        );
        let url = Part::of(Content::Url("https://x".into()));
        assert_eq!(
            serde_json::to_string(&url).unwrap(),
            r#"{"url":"https://x"}"#
        );
        let back: Part = serde_json::from_str(&serde_json::to_string(&part).unwrap()).unwrap();
        assert_eq!(back, part);
    }

    #[test]
    fn a_tasks_wire_view_writes_what_its_wire_value_holds() {
        let task = Task {
            id: "t".into(),
            context_id: "c".into(),
            status: TaskStatus {
                state: TaskState::Working,
                message: Some(message("s", vec![Part::text("on it")])),
                timestamp: timestamp(1_700_000_000_123),
            },
            artifacts: vec![Artifact {
                artifact_id: "a".into(),
                name: Some("result".into()),
                description: None,
                parts: vec![Part::data(json!({"x": [1, 2]})), Part::data(json!("s"))],
                metadata: Some([("m".to_string(), json!(true))].into_iter().collect()),
            }],
            history: vec![
                message("1", vec![Part::text("one")]),
                message("2", vec![Part::data(json!({"two": 2}))]),
                message(
                    "3",
                    vec![
                        Part::text("three"),
                        Part {
                            content: Content::Raw("AQI=".into()),
                            media_type: Some("image/png".into()),
                            filename: Some("a.png".into()),
                            metadata: Some([("p".to_string(), json!(1))].into_iter().collect()),
                        },
                        Part::of(Content::Url("https://x/y".into())),
                        Part::data(json!([1])),
                    ],
                ),
            ],
            metadata: Some([("k".to_string(), json!("v"))].into_iter().collect()),
        };
        for version in [Version::V1_0, Version::V0_3] {
            for history in [None, Some(0), Some(2), Some(9)] {
                for artifacts in [true, false] {
                    let view = serde_json::to_string(&task.wire_view(version, history, artifacts));
                    let view: Value = serde_json::from_str(&view.unwrap()).unwrap();
                    let value = task.wire(version, history, artifacts);
                    assert_eq!(view, value, "{version:?} {history:?} {artifacts}");
                }
            }
        }
        // The whole task, unchanged, is the task itself.
        let whole = task.wire_view(Version::V1_0, None, true);
        assert_eq!(
            serde_json::to_value(&whole).unwrap(),
            serde_json::to_value(&task).unwrap()
        );
        let two = task.wire(Version::V1_0, Some(2), false);
        assert_eq!(two["history"][0]["messageId"], "2");
        assert_eq!(two["history"].as_array().map(Vec::len), Some(2));
        assert!(
            task.wire(Version::V1_0, Some(0), true)
                .get("history")
                .is_none()
        );
    }
}
