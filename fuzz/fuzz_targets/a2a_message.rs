//! A2A messages as the A2A front takes them (`hypervisor_protocol::a2a::model`): any JSON is a
//! 1.0 message, a 0.3 message (translated to 1.0), or an error, never a panic; a message read
//! in 1.0 renders in 0.3 and reads back from it; a part holds exactly one content.
#![no_main]

use hypervisor_protocol::a2a::model::{Content, Message, Shape, message_from_v03, to_v03};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(v1) = message_from_v03(&value) {
        let _ = serde_json::from_value::<Message>(v1);
    }
    let Ok(message) = serde_json::from_value::<Message>(value) else {
        return;
    };
    let v1 = serde_json::to_value(&message).expect("a message serialises");
    let v03 = to_v03(Shape::Message, &v1);
    let back = message_from_v03(&v03).expect("a rendered 0.3 message reads back");
    let back: Message = serde_json::from_value(back).expect("and parses");
    assert_eq!(back.parts.len(), message.parts.len());
    for (a, b) in message.parts.iter().zip(&back.parts) {
        match (&a.content, &b.content) {
            // 0.3 data parts are objects: other JSON travels as its text.
            (Content::Data(d), Content::Text(t)) => assert_eq!(&d.to_string(), t),
            (x, y) => assert_eq!(x, y),
        }
    }
});
