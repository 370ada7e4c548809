//! Checks the double's responses against JSON Schemas generated from
//! `@microsoft/microsoft-graph-types` by `cargo xtask test` (see
//! xtask/src/graph_schemas.rs).
//!
//! The generated schemas are stricter than Graph in three ways this loader
//! relaxes, each for a documented reason:
//! - OData annotations (`@odata.type`, `@odata.id`, ...) are not in the
//!   TypeScript types; every object may carry properties starting with `@`.
//! - OData derived types: the typings flatten `extends`, so a base type such
//!   as `identity` rejects the fields of `teamworkUserIdentity` that Graph
//!   sends with `@odata.type`. A base is widened to "base or one of its
//!   derived types" for the pairs listed in `DERIVED`.
//! - `resourceData` of a change notification is an OData open type; the
//!   typings model it as an empty object. Its documented `id` is allowed.

use serde_json::{Value, json};
use std::path::PathBuf;

/// The environment variable `cargo xtask test` sets.
const ENV_VAR: &str = "BRYGGA_GRAPH_SCHEMAS";

/// Base type to the derived types (each generated into its own file) Graph sends in its place.
const DERIVED: &[(&str, &[&str])] = &[
    ("Identity", &["TeamworkUserIdentity"]),
    ("EventMessageDetail", &["MembersAddedEventMessageDetail", "MembersDeletedEventMessageDetail"]),
];

fn dir() -> PathBuf {
    std::env::var_os(ENV_VAR)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/graph-schemas"))
}

fn load(ty: &str) -> Value {
    let path = dir().join(format!("{ty}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("Graph schema {} missing ({e}): run `cargo xtask test` once to generate it", path.display())
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Lets every object schema carry `@...` annotations.
fn allow_annotations(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.get("additionalProperties") == Some(&Value::Bool(false)) {
                map.insert("patternProperties".into(), json!({ "^@": {} }));
            }
            map.values_mut().for_each(allow_annotations);
        }
        Value::Array(items) => items.iter_mut().for_each(allow_annotations),
        _ => {}
    }
}

/// The schema of `ty`, relaxed as the module documentation says.
pub fn schema(ty: &str) -> Value {
    let mut root = load(ty);
    let defs = root["definitions"].as_object_mut().expect("generated schemas have definitions");
    for (base, derived) in DERIVED {
        let Some(original) = defs.get(*base).cloned() else { continue };
        let mut options = vec![original];
        for d in *derived {
            let other = load(d);
            for (name, def) in other["definitions"].as_object().expect("definitions") {
                defs.entry(name.clone()).or_insert_with(|| def.clone());
            }
            options.push(json!({ "$ref": format!("#/definitions/{d}") }));
        }
        defs.insert((*base).to_owned(), json!({ "anyOf": options }));
    }
    if let Some(resource_data) = defs.get_mut("ResourceData") {
        resource_data["properties"] = json!({ "id": { "type": "string" } });
    }
    allow_annotations(&mut root);
    root
}

/// Panics unless `value` is a valid `ty`, listing every violation.
pub fn assert_valid(ty: &str, value: &Value) {
    let schema = schema(ty);
    let validator = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("the {ty} schema compiles: {e}"));
    let errors: Vec<String> = validator.iter_errors(value).map(|e| format!("- {} at {}", e, e.instance_path)).collect();
    assert!(errors.is_empty(), "response does not match Graph's {ty} type:\n{}\nin {value:#}", errors.join("\n"));
}

/// Validates every item of a collection response's `value`.
pub fn assert_collection(ty: &str, body: &Value) {
    let items = body["value"].as_array().unwrap_or_else(|| panic!("a collection needs a value array: {body}"));
    for item in items {
        assert_valid(ty, item);
    }
}
