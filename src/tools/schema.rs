//! Keep `tools/list` small: schemas as schemars writes them carry `$schema`,
//! `["T","null"]` unions for optional fields and `$defs` used once. This
//! rewrites them into the equivalent compact form, and drops descriptions
//! from output schemas (the input docs and the text answer carry the meaning).

use std::collections::HashMap;
use std::sync::Arc;

use rmcp::model::JsonObject;
use serde_json::{Map, Value};

/// Compact an input schema: each argument keeps its own description; the
/// descriptions nested inside it (enum variants, sub-fields) are dropped, as
/// the argument's description already says what it accepts.
pub fn compact_input(schema: &JsonObject) -> Arc<JsonObject> {
    let mut out = compact(schema, false);
    // Unknown arguments are still refused when parsed (deny_unknown_fields).
    out.remove("additionalProperties");
    if let Some(Value::Object(props)) = out.get_mut("properties") {
        for v in props.values_mut() {
            if let Value::Object(o) = v {
                o.remove("format");
                // Examples are for the error messages (`check_input`); tools/list stays small.
                o.remove("examples");
                for child in o
                    .iter_mut()
                    .filter(|(k, _)| k.as_str() != "description")
                    .map(|(_, c)| c)
                {
                    strip_descriptions(child);
                }
            }
        }
    }
    Arc::new(out)
}

/// The schema arguments are checked against before a tool reads them (`tools::lenient::check`):
/// the compact input schema with what it leaves out for size put back, so that error messages
/// can name it: each argument's `examples`, and the range of fixed-width integers (`format`
/// `uint32`, `int64`, ...) as `minimum` and `maximum` (serde refuses a `u32` above 4294967295,
/// and `1e12` or `-1` should be told the range, not "expected u32").
pub fn check_input(schema: &JsonObject) -> Arc<JsonObject> {
    let mut out = Value::Object(compact(schema, false));
    bound_formats(&mut out);
    match out {
        Value::Object(o) => Arc::new(o),
        _ => Arc::new(JsonObject::new()),
    }
}

fn bound_formats(v: &mut Value) {
    match v {
        Value::Object(o) => {
            let range: Option<(Value, Value)> = match o.get("format").and_then(Value::as_str) {
                Some("uint8") => Some((0.into(), u8::MAX.into())),
                Some("uint16") => Some((0.into(), u16::MAX.into())),
                Some("uint32") => Some((0.into(), u32::MAX.into())),
                Some("uint64" | "uint") => Some((0.into(), u64::MAX.into())),
                Some("int8") => Some((i8::MIN.into(), i8::MAX.into())),
                Some("int16") => Some((i16::MIN.into(), i16::MAX.into())),
                Some("int32") => Some((i32::MIN.into(), i32::MAX.into())),
                Some("int64" | "int") => Some((i64::MIN.into(), i64::MAX.into())),
                _ => None,
            };
            if let Some((min, max)) = range {
                o.entry("minimum").or_insert(min);
                o.entry("maximum").or_insert(max);
            }
            o.values_mut().for_each(bound_formats);
        }
        Value::Array(a) => a.iter_mut().for_each(bound_formats),
        _ => {}
    }
}

fn strip_descriptions(v: &mut Value) {
    match v {
        Value::Object(o) => {
            o.remove("description");
            o.values_mut().for_each(strip_descriptions);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_descriptions),
        _ => {}
    }
}

/// The output schema clients see: an object. Every tool answers a JSON object
/// (`structuredContent`), so clients that need the declaration have it; the
/// fields are documented in the README and shown in each text answer, and
/// `tools/list` stays under 8 KB for the whole tool set.
pub fn compact_output(_schema: &JsonObject) -> Arc<JsonObject> {
    let mut out = JsonObject::new();
    out.insert("type".into(), Value::String("object".into()));
    Arc::new(out)
}

fn compact(schema: &JsonObject, strip_descriptions: bool) -> JsonObject {
    let mut root = Value::Object(schema.clone());
    let defs = root
        .as_object_mut()
        .and_then(|o| o.remove("$defs"))
        .and_then(|d| d.as_object().cloned())
        .unwrap_or_default();
    if let Some(o) = root.as_object_mut() {
        o.remove("$schema");
        o.remove("title");
    }
    let mut uses: HashMap<String, usize> = HashMap::new();
    count_refs(&root, &defs, &mut uses);
    let mut kept = Map::new();
    let out = rewrite(root, &defs, &uses, strip_descriptions, &mut kept);
    let mut obj = match out {
        Value::Object(o) => o,
        _ => JsonObject::new(),
    };
    if !kept.is_empty() {
        obj.insert("$defs".into(), Value::Object(kept));
    }
    obj
}

fn ref_name(v: &Value) -> Option<&str> {
    v.get("$ref")?.as_str()?.strip_prefix("#/$defs/")
}

fn count_refs(v: &Value, defs: &Map<String, Value>, uses: &mut HashMap<String, usize>) {
    match v {
        Value::Object(o) => {
            if let Some(name) = ref_name(v) {
                let n = uses.entry(name.to_string()).or_default();
                *n += 1;
                if *n == 1
                    && let Some(d) = defs.get(name)
                {
                    count_refs(d, defs, uses);
                }
            }
            o.values().for_each(|c| count_refs(c, defs, uses));
        }
        Value::Array(a) => a.iter().for_each(|c| count_refs(c, defs, uses)),
        _ => {}
    }
}

fn rewrite(
    v: Value,
    defs: &Map<String, Value>,
    uses: &HashMap<String, usize>,
    strip: bool,
    kept: &mut Map<String, Value>,
) -> Value {
    match v {
        Value::Object(mut o) => {
            // anyOf [X, {type: null}] -> X (with this node's other keys)
            if let Some(Value::Array(alts)) = o.get("anyOf")
                && alts.len() == 2
                && alts
                    .iter()
                    .any(|a| a.get("type") == Some(&Value::String("null".into())))
            {
                let other = alts
                    .iter()
                    .find(|a| a.get("type") != Some(&Value::String("null".into())))
                    .cloned();
                if let Some(Value::Object(other)) = other {
                    o.remove("anyOf");
                    for (k, val) in other {
                        o.entry(k).or_insert(val);
                    }
                }
            }
            // type: [T, "null"] -> T
            if let Some(Value::Array(types)) = o.get("type") {
                let non_null: Vec<Value> = types
                    .iter()
                    .filter(|t| t.as_str() != Some("null"))
                    .cloned()
                    .collect();
                if non_null.len() == 1 {
                    o.insert("type".into(), non_null[0].clone());
                }
            }
            if strip {
                o.remove("description");
                o.remove("format");
                o.remove("minimum");
            }
            if let Some(name) = o
                .get("$ref")
                .and_then(|r| r.as_str())
                .and_then(|r| r.strip_prefix("#/$defs/"))
                .map(str::to_string)
                && let Some(def) = defs.get(&name)
            {
                if uses.get(&name).copied().unwrap_or(0) <= 1 {
                    o.remove("$ref");
                    if let Value::Object(d) = rewrite(def.clone(), defs, uses, strip, kept) {
                        for (k, val) in d {
                            o.entry(k).or_insert(val);
                        }
                    }
                } else if !kept.contains_key(&name) {
                    kept.insert(name.clone(), Value::Null);
                    let r = rewrite(def.clone(), defs, uses, strip, kept);
                    kept.insert(name, r);
                }
            }
            Value::Object(
                o.into_iter()
                    .map(|(k, c)| {
                        let c = rewrite(c, defs, uses, strip, kept);
                        (k, c)
                    })
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(
            a.into_iter()
                .map(|c| rewrite(c, defs, uses, strip, kept))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inlines_single_use_defs_and_drops_null_unions() {
        let s = json!({
            "$schema": "x", "type": "object",
            "$defs": {"G": {"type": "string", "enum": ["a", "b"]}, "Twice": {"type": "integer"}},
            "properties": {
                "g": {"anyOf": [{"$ref": "#/$defs/G"}, {"type": "null"}], "description": "pick"},
                "n": {"type": ["string", "null"]},
                "t1": {"$ref": "#/$defs/Twice"}, "t2": {"$ref": "#/$defs/Twice"}
            }
        });
        let out = Value::Object(compact(s.as_object().unwrap(), false));
        assert_eq!(
            out["properties"]["g"],
            json!({"type": "string", "enum": ["a", "b"], "description": "pick"})
        );
        assert_eq!(out["properties"]["n"], json!({"type": "string"}));
        assert_eq!(out["properties"]["t1"], json!({"$ref": "#/$defs/Twice"}));
        assert_eq!(out["$defs"], json!({"Twice": {"type": "integer"}}));
        assert!(out.get("$schema").is_none());
        let stripped = Value::Object(compact(s.as_object().unwrap(), true));
        assert!(stripped["properties"]["g"].get("description").is_none());
        let minimal = Value::Object((*compact_output(s.as_object().unwrap())).clone());
        assert_eq!(minimal, json!({"type": "object"}));
    }
}
