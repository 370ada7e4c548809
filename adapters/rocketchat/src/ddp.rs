//! The DDP frames the realtime API speaks: what the adapter sends, and a
//! classification of what it receives. Anything unexpected parses into
//! [`Frame::Other`] or an error, never a panic.

use serde_json::{Value, json};

/// Largest frame read at all; larger ones are skipped unparsed.
pub(crate) const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// A frame from the server.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Frame {
    /// The session is open.
    Connected,
    /// The server does not speak our DDP version.
    Failed,
    /// The server pings; answer with a pong carrying the same id.
    Ping(Option<String>),
    /// An answer to our ping.
    Pong,
    /// Answer to a method call.
    Result { id: String, result: Value, error: Option<String> },
    /// Subscriptions are ready.
    Ready(Vec<String>),
    /// A subscription was refused or ended.
    NoSub { id: String, error: Option<String> },
    /// A stream event: `collection` is the stream, `event` its event name.
    Stream { collection: String, event: String, args: Vec<Value> },
    /// Anything else (added, removed, updated, unknown `msg` types).
    Other(String),
}

/// Parses one text frame.
pub(crate) fn parse(text: &str) -> Result<Frame, String> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(format!("a frame of {} bytes is over the limit", text.len()));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let obj = value.as_object().ok_or("a frame that is not an object")?;
    // Pre-1.0 servers greet with `{"server_id": "0"}`: nothing to do.
    let Some(kind) = obj.get("msg").and_then(Value::as_str) else {
        return Ok(Frame::Other("no msg".into()));
    };
    let text_of = |key: &str| obj.get(key).and_then(Value::as_str).map(str::to_owned);
    let error_of = |key: &str| {
        obj.get(key).filter(|e| !e.is_null()).map(|e| {
            e.get("error")
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                .or_else(|| e.get("reason").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| "error".into())
        })
    };
    Ok(match kind {
        "connected" => Frame::Connected,
        "failed" => Frame::Failed,
        "ping" => Frame::Ping(text_of("id")),
        "pong" => Frame::Pong,
        "result" => Frame::Result {
            id: text_of("id").ok_or("a result without id")?,
            result: obj.get("result").cloned().unwrap_or(Value::Null),
            error: error_of("error"),
        },
        "ready" => Frame::Ready(
            obj.get("subs")
                .and_then(Value::as_array)
                .map(|s| s.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default(),
        ),
        "nosub" => Frame::NoSub { id: text_of("id").ok_or("a nosub without id")?, error: error_of("error") },
        "changed" => {
            let collection = text_of("collection").ok_or("a changed frame without collection")?;
            let fields = obj.get("fields").and_then(Value::as_object).ok_or("a changed frame without fields")?;
            let event = fields.get("eventName").and_then(Value::as_str).ok_or("a changed frame without eventName")?;
            let args = fields.get("args").and_then(Value::as_array).cloned().unwrap_or_default();
            Frame::Stream { collection, event: event.to_owned(), args }
        }
        other => Frame::Other(other.chars().take(40).collect()),
    })
}

/// The opening frame.
pub(crate) fn connect() -> String {
    json!({"msg": "connect", "version": "1", "support": ["1"]}).to_string()
}

/// Login with a token (`{resume: token}`).
pub(crate) fn login(id: &str, token: &str) -> String {
    json!({"msg": "method", "method": "login", "id": id, "params": [{"resume": token}]}).to_string()
}

/// A subscription to a stream event.
pub(crate) fn sub(id: &str, stream: &str, event: &str) -> String {
    json!({"msg": "sub", "id": id, "name": stream, "params": [event, false]}).to_string()
}

/// Our keepalive ping.
pub(crate) fn ping(id: &str) -> String {
    json!({"msg": "ping", "id": id}).to_string()
}

/// The answer to the server's ping.
pub(crate) fn pong(id: Option<&str>) -> String {
    match id {
        Some(id) => json!({"msg": "pong", "id": id}),
        None => json!({"msg": "pong"}),
    }
    .to_string()
}

/// A method call.
pub(crate) fn method(id: &str, name: &str, params: Value) -> String {
    json!({"msg": "method", "method": name, "id": id, "params": params}).to_string()
}

/// A user's typing notice in a room (`stream-notify-room` `<rid>/user-activity`).
pub(crate) fn typing(id: &str, rid: &str, username: &str, typing: bool) -> String {
    let activities: &[&str] = if typing { &["user-typing"] } else { &[] };
    method(id, "stream-notify-room", json!([format!("{rid}/user-activity"), username, activities, {}]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_frames_are_classified() {
        assert_eq!(parse(r#"{"msg":"connected","session":"s"}"#).unwrap(), Frame::Connected);
        assert_eq!(parse(r#"{"msg":"ping","id":"7"}"#).unwrap(), Frame::Ping(Some("7".into())));
        assert_eq!(parse(r#"{"msg":"ping"}"#).unwrap(), Frame::Ping(None));
        assert_eq!(parse(r#"{"server_id":"0"}"#).unwrap(), Frame::Other("no msg".into()));
        assert_eq!(parse(r#"{"msg":"ready","subs":["a","b"]}"#).unwrap(), Frame::Ready(vec!["a".into(), "b".into()]));
        let login = parse(r#"{"msg":"result","id":"1","result":{"id":"u","token":"t"}}"#).unwrap();
        assert!(matches!(login, Frame::Result { ref id, error: None, .. } if id == "1"));
        let refused = parse(
            r#"{"msg":"result","id":"1","error":{"error":403,"reason":"You've been logged out by the server."}}"#,
        )
        .unwrap();
        assert!(matches!(refused, Frame::Result { error: Some(ref e), .. } if e == "403"));
        let nosub =
            parse(r#"{"msg":"nosub","id":"s1","error":{"error":"not-allowed","reason":"Not allowed"}}"#).unwrap();
        assert_eq!(nosub, Frame::NoSub { id: "s1".into(), error: Some("not-allowed".into()) });
        let stream = parse(
            r#"{"msg":"changed","collection":"stream-room-messages","id":"id","fields":{"eventName":"__my_messages__","args":[{"_id":"m"}]}}"#,
        )
        .unwrap();
        assert!(
            matches!(stream, Frame::Stream { ref event, ref args, .. } if event == "__my_messages__" && args.len() == 1)
        );
    }

    #[test]
    fn hostile_frames_are_errors_or_other() {
        assert!(parse("{not json").is_err());
        assert!(parse("[1,2]").is_err());
        assert!(parse(r#"{"msg":"result"}"#).is_err());
        assert!(parse(r#"{"msg":"changed","collection":"x","fields":{"args":[]}}"#).is_err());
        assert!(parse(r#"{"msg":"changed","collection":"x"}"#).is_err());
        assert_eq!(parse(r#"{"msg":"teleport"}"#).unwrap(), Frame::Other("teleport".into()));
        assert_eq!(parse(r#"{"msg":7}"#).unwrap(), Frame::Other("no msg".into()));
        let huge = format!(r#"{{"msg":"ping","pad":"{}"}}"#, "x".repeat(MAX_FRAME_BYTES));
        assert!(parse(&huge).unwrap_err().contains("over the limit"));
    }

    #[test]
    fn client_frames_have_the_documented_shape() {
        let login: Value = serde_json::from_str(&login("1", "tok")).unwrap();
        assert_eq!(login["params"][0]["resume"], "tok");
        assert_eq!(login["method"], "login");
        let sub: Value = serde_json::from_str(&sub("s", "stream-room-messages", "__my_messages__")).unwrap();
        assert_eq!(sub["name"], "stream-room-messages");
        assert_eq!(sub["params"], serde_json::json!(["__my_messages__", false]));
        let typing: Value = serde_json::from_str(&typing("t1", "r1", "bob", true)).unwrap();
        assert_eq!(typing["method"], "stream-notify-room");
        assert_eq!(typing["params"], serde_json::json!(["r1/user-activity", "bob", ["user-typing"], {}]));
        let pong: Value = serde_json::from_str(&pong(Some("9"))).unwrap();
        assert_eq!(pong, serde_json::json!({"msg": "pong", "id": "9"}));
    }
}
