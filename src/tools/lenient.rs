//! Arguments as models really send them. Some clients and models pass arrays and objects as
//! JSON text (`"group_by": "[\"tag:team\"]"`), numbers as strings (`"top_n": "5"`), or a single
//! string where a list is expected; peers answer those with schema errors that agents retry in a
//! loop (awslabs/mcp#1160, #1186, #1211). Before a tool reads its input, each argument whose
//! value is a string while the tool's input schema wants another type is converted when the
//! conversion is unambiguous; anything else is left for the tool's own validation, which names
//! the accepted forms.

use serde_json::{Map, Value};

/// Convert string arguments to the types `schema` (a tool's input schema) declares. A string
/// that cannot be read as a declared non-string type is an error naming the argument and the
/// type it needs (serde's own message names neither).
pub fn coerce(args: &mut Map<String, Value>, schema: &Map<String, Value>) -> Result<(), String> {
    let Some(Value::Object(props)) = schema.get("properties") else {
        return Ok(());
    };
    let mut wrong = Vec::new();
    for (name, value) in args.iter_mut() {
        let Some(Value::Object(prop)) = props.get(name) else {
            continue;
        };
        let Value::String(s) = value else { continue };
        match convert(s, prop) {
            Some(v) => *value = v,
            None => {
                let types = types(prop);
                if !types.is_empty() && !types.contains(&"string") {
                    wrong.push(format!(
                        "{name} must be {} (got the string {})",
                        types
                            .iter()
                            .map(|t| match *t {
                                "integer" => "a whole number",
                                "number" => "a number",
                                "boolean" => "true or false",
                                "array" => "a list",
                                "object" => "an object",
                                other => other,
                            })
                            .collect::<Vec<_>>()
                            .join(" or "),
                        Value::String(s.clone())
                    ));
                }
            }
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
}

/// The types a property accepts: its `type`, or those of its `anyOf` branches.
fn types(prop: &Map<String, Value>) -> Vec<&str> {
    let mut out = Vec::new();
    match prop.get("type") {
        Some(Value::String(t)) => out.push(t.as_str()),
        Some(Value::Array(ts)) => out.extend(ts.iter().filter_map(Value::as_str)),
        _ => {}
    }
    if let Some(Value::Array(branches)) = prop.get("anyOf") {
        for b in branches {
            if let Value::Object(b) = b {
                out.extend(types(b));
            }
        }
    }
    out
}

fn convert(s: &str, prop: &Map<String, Value>) -> Option<Value> {
    let types = types(prop);
    if types.contains(&"string") && !s.trim_start().starts_with('{') {
        // A string is acceptable as it is (JSON object text is read below when allowed).
        return None;
    }
    let t = s.trim();
    if types.contains(&"object") && t.starts_with('{') {
        return serde_json::from_str::<Value>(t)
            .ok()
            .filter(Value::is_object);
    }
    if types.contains(&"array") {
        if t.starts_with('[') {
            return serde_json::from_str::<Value>(t)
                .ok()
                .filter(Value::is_array);
        }
        // "tag:team, model": a comma-separated list (no list item of ours holds a comma).
        let items: Vec<Value> = t
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(|i| Value::String(i.to_string()))
            .collect();
        return (!items.is_empty()).then_some(Value::Array(items));
    }
    if types.contains(&"integer") {
        return t.parse::<i64>().ok().map(Value::from);
    }
    if types.contains(&"number") {
        return t
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number));
    }
    if types.contains(&"boolean") {
        return match t {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Map<String, Value> {
        json!({"type": "object", "properties": {
            "group_by": {"type": "array", "items": {"type": "string"}},
            "period": {"anyOf": [{"type": "string"}, {"type": "object", "properties": {"start": {"type": "string"}}}]},
            "filter": {"type": "object"},
            "top_n": {"type": "integer", "minimum": 0},
            "cost_usd": {"type": "number"},
            "chart": {"type": "boolean"},
            "cursor": {"type": "string"}
        }})
        .as_object()
        .unwrap()
        .clone()
    }

    fn run(args: Value) -> Value {
        let mut m = args.as_object().unwrap().clone();
        let _ = coerce(&mut m, &schema());
        Value::Object(m)
    }

    #[test]
    fn unreadable_strings_name_the_argument_and_type() {
        let mut m = json!({"top_n": "five", "chart": "yes", "cursor": "x", "period": "{oops"})
            .as_object()
            .unwrap()
            .clone();
        let e = coerce(&mut m, &schema()).unwrap_err();
        assert!(
            e.contains("top_n must be a whole number (got the string \"five\")"),
            "{e}"
        );
        assert!(e.contains("chart must be true or false"), "{e}");
        assert!(!e.contains("cursor") && !e.contains("period"), "{e}");
    }

    #[test]
    fn json_text_and_strings_become_the_declared_types() {
        assert_eq!(
            run(json!({
                "group_by": "[\"tag:team\", \"model\"]",
                "period": "{\"start\": \"2026-10-01\", \"end\": \"2026-11-01\"}",
                "filter": "{\"team\": [\"ml\"]}",
                "top_n": " 5 ",
                "cost_usd": "12.5",
                "chart": "true"
            })),
            json!({
                "group_by": ["tag:team", "model"],
                "period": {"start": "2026-10-01", "end": "2026-11-01"},
                "filter": {"team": ["ml"]},
                "top_n": 5,
                "cost_usd": 12.5,
                "chart": true
            })
        );
        assert_eq!(
            run(json!({"group_by": "tag:team, model"})),
            json!({"group_by": ["tag:team", "model"]})
        );
        assert_eq!(
            run(json!({"group_by": "principal"})),
            json!({"group_by": ["principal"]})
        );
    }

    #[test]
    fn native_values_strings_and_unparseable_text_are_left_alone() {
        let native = json!({"group_by": ["a"], "period": "last_month", "top_n": 3, "cursor": "[x"});
        assert_eq!(run(native.clone()), native);
        // Left for the tool's validation to name the accepted forms.
        for bad in [
            json!({"top_n": "five"}),
            json!({"chart": "yes"}),
            json!({"filter": "{not json"}),
            json!({"group_by": "[1, "}),
            json!({"cost_usd": "NaN"}),
            json!({"unknown": "[1]"}),
        ] {
            assert_eq!(run(bad.clone()), bad);
        }
        // A period string that is not JSON stays a string (a period word or a date).
        assert_eq!(run(json!({"period": "{oops"})), json!({"period": "{oops"}));
    }
}
