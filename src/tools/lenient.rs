//! Arguments as models really send them. Some clients and models pass arrays and objects as
//! JSON text (`"group_by": "[\"tag:team\"]"`), numbers as strings (`"top_n": "5"`), or a single
//! string where a list is expected; peers answer those with schema errors that agents retry in a
//! loop (awslabs/mcp#1160, #1186, #1211). Before a tool reads its input, each argument whose
//! value is a string while the tool's input schema wants another type is converted when the
//! conversion is unambiguous; anything else is left for the tool's own validation, which names
//! the accepted forms.

//!
//! Then [`check`] holds the arguments against the tool's input schema (`tools::schema::
//! check_input`): every refusal names the argument's path (`top_n`, `period.end`), what is wrong,
//! the forms it takes (type, range, allowed values, the branches of an `anyOf`, required keys,
//! from the schema) and an example (the schema's `examples`, else made from it).

use serde_json::{Map, Value};

/// Convert arguments to the types `schema` (a tool's input schema) declares, where the
/// conversion is unambiguous: JSON text or a comma list in a string, a number in a string, a
/// whole number written as a float (`5.0`, `1e3`), and `null` for an optional argument (what
/// the tool reads as "not given"). Anything else is left for [`check`] to name.
pub fn coerce(args: &mut Map<String, Value>, schema: &Map<String, Value>) {
    let Some(Value::Object(props)) = schema.get("properties") else {
        return;
    };
    let required = required(schema);
    args.retain(|k, v| !(v.is_null() && props.contains_key(k) && !required.contains(&k.as_str())));
    for (name, value) in args.iter_mut() {
        let Some(Value::Object(prop)) = props.get(name) else {
            continue;
        };
        let converted = match value {
            Value::String(s) => convert(s, prop),
            Value::Number(n) => whole(n, prop),
            _ => None,
        };
        if let Some(v) = converted {
            *value = v;
        }
    }
}

/// A float with no fraction, for an argument that takes whole numbers.
fn whole(n: &serde_json::Number, prop: &Map<String, Value>) -> Option<Value> {
    let types = types(prop);
    if !types.contains(&"integer") || types.contains(&"number") || !n.is_f64() {
        return None;
    }
    let f = n.as_f64()?;
    if f.fract() != 0.0 || !f.is_finite() {
        return None;
    }
    if (0.0..18_446_744_073_709_551_616.0).contains(&f) {
        Some(Value::from(f as u64))
    } else if (-9_223_372_036_854_775_808.0..0.0).contains(&f) {
        Some(Value::from(f as i64))
    } else {
        None
    }
}

fn required(schema: &Map<String, Value>) -> Vec<&str> {
    match schema.get("required") {
        Some(Value::Array(r)) => r.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

/// Check `args` against `schema` (a tool's input schema, `tools::schema::check_input`). The
/// error names each wrong argument, the forms it takes and an example.
pub fn check(args: &Map<String, Value>, schema: &Map<String, Value>) -> Result<(), String> {
    let Some(Value::Object(props)) = schema.get("properties") else {
        return Ok(());
    };
    let mut problems = Vec::new();
    for r in required(schema) {
        if !args.contains_key(r)
            && let Some(Value::Object(prop)) = props.get(r)
        {
            problems.push(format!("{r} is required; {}", explain(r, prop, schema)));
        }
    }
    for (name, value) in args {
        match props.get(name) {
            Some(Value::Object(prop)) => {
                if let Some((path, why)) = problem(value, prop, schema, name.clone()) {
                    let why = match (value, &why) {
                        // "top_n must be a whole number ... (got the string "five")"
                        (Value::String(s), Why::Type(_)) if path == *name => format!(
                            "{name} must be {} (got the string {})",
                            forms(prop, schema, false),
                            Value::String(s.chars().take(80).collect())
                        ),
                        _ => format!("{path}{}", why.text(lookup(value, &path, name))),
                    };
                    problems.push(format!("{why}; {}", explain(name, prop, schema)));
                }
            }
            _ if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                problems.push(unknown(name, props));
            }
            _ => {}
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Name the argument serde refused (`path`, from `serde_path_to_error`) with the forms it
/// takes: the last net, for what the schema let through but the tool's type did not.
pub fn explain_serde(path: &str, error: &str, schema: &Map<String, Value>) -> String {
    let top = path.split(['.', '[']).next().unwrap_or(path);
    let prop = schema
        .get("properties")
        .and_then(|p| p.get(top))
        .and_then(Value::as_object);
    match prop {
        Some(prop) if !top.is_empty() && top != "?" => {
            format!("{path}: {error}; {}", explain(top, prop, schema))
        }
        _ => match schema.get("properties").and_then(Value::as_object) {
            Some(props) => format!(
                "{error}; the arguments are {}",
                props.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
            None => error.to_string(),
        },
    }
}

fn unknown(name: &str, props: &Map<String, Value>) -> String {
    let close = props
        .keys()
        .map(|k| {
            (
                crate::domain::pricing::distance(
                    &k.to_ascii_lowercase(),
                    &name.to_ascii_lowercase(),
                ),
                k,
            )
        })
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min();
    format!(
        "{name}: unknown field (not an argument of this tool){}; the arguments are {}",
        close
            .map(|(_, k)| format!("; did you mean {k}?"))
            .unwrap_or_default(),
        props.keys().cloned().collect::<Vec<_>>().join(", ")
    )
}

/// The value at `path` (for the message), starting at the argument `name`.
fn lookup<'a>(value: &'a Value, path: &str, name: &str) -> Option<&'a Value> {
    let rest = path.strip_prefix(name)?;
    let mut v = value;
    for part in rest.split(['.', '[']).filter(|p| !p.is_empty()) {
        v = match part.strip_suffix(']') {
            Some(i) => v.get(i.parse::<usize>().ok()?)?,
            None => v.get(part)?,
        };
    }
    Some(v)
}

/// What is wrong at a path.
enum Why {
    /// Not of an accepted JSON type (the accepted ones, in words).
    Type(String),
    /// A required key of an object is missing.
    Missing,
    /// Several required keys of an object are missing.
    MissingKeys(Vec<String>),
    /// Not one of the allowed values.
    NotAllowed,
    /// Outside the range.
    Range,
    /// A key the object does not take.
    UnknownKey(Vec<String>),
    /// None of the forms of an `anyOf` (and no form of the value's type).
    NoForm,
}

impl Why {
    fn text(&self, got: Option<&Value>) -> String {
        let got = got.map(shown).unwrap_or_default();
        match self {
            Why::Type(expected) => format!(": expected {expected}, got {got}"),
            Why::Missing => " is missing".to_string(),
            Why::MissingKeys(keys) => format!(" is missing {}", keys.join(" and ")),
            Why::NotAllowed => format!(": {got} is not one of the accepted values"),
            Why::Range => format!(": {got} is out of range"),
            Why::UnknownKey(keys) => format!(
                " is not a key this object takes (keys: {})",
                keys.join(", ")
            ),
            Why::NoForm => format!(": {got} is none of the accepted forms"),
        }
    }
}

/// A value as shown in a message (strings quoted, long values cut).
fn shown(v: &Value) -> String {
    let s = match v {
        Value::String(s) => format!("the string {}", Value::String(s.clone())),
        Value::Array(_) => format!("the list {v}"),
        Value::Object(_) => format!("the object {v}"),
        Value::Bool(_) => format!("the boolean {v}"),
        Value::Null => "null".to_string(),
        Value::Number(_) => v.to_string(),
    };
    if s.chars().count() > 120 {
        format!("{}...", s.chars().take(117).collect::<String>())
    } else {
        s
    }
}

/// Follow a `$ref` into the schema's `$defs`.
fn deref<'a>(node: &'a Map<String, Value>, root: &'a Map<String, Value>) -> &'a Map<String, Value> {
    node.get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .and_then(|n| root.get("$defs")?.get(n)?.as_object())
        .unwrap_or(node)
}

/// The JSON type of a value, as JSON Schema names it.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_ok(v: &Value, types: &[&str]) -> bool {
    let k = kind(v);
    types.is_empty() || types.contains(&k) || (k == "integer" && types.contains(&"number"))
}

/// The first thing wrong with `v` against `node`: its path (from `path`) and why.
fn problem(
    v: &Value,
    node: &Map<String, Value>,
    root: &Map<String, Value>,
    path: String,
) -> Option<(String, Why)> {
    let node = deref(node, root);
    if let Some(Value::Array(branches)) = node.get("anyOf") {
        let branches: Vec<&Map<String, Value>> = branches
            .iter()
            .filter_map(Value::as_object)
            .map(|b| deref(b, root))
            .collect();
        let mut same_type = None;
        for b in &branches {
            match problem(v, b, root, path.clone()) {
                None => return None,
                Some(p) if type_ok(v, &own_types(b)) && same_type.is_none() => same_type = Some(p),
                Some(_) => {}
            }
        }
        return Some(same_type.unwrap_or((path, Why::NoForm)));
    }
    let types = own_types(node);
    if !type_ok(v, &types) {
        return Some((path, Why::Type(forms_of_type(node, root))));
    }
    if let Some(Value::Array(allowed)) = node.get("enum")
        && !allowed.contains(v)
    {
        return Some((path, Why::NotAllowed));
    }
    match v {
        Value::Number(n) => {
            let below = node.get("minimum").is_some_and(|m| cmp(n, m).is_lt());
            let above = node.get("maximum").is_some_and(|m| cmp(n, m).is_gt());
            if below || above {
                return Some((path, Why::Range));
            }
        }
        Value::Array(items) => {
            if let Some(Value::Object(item)) = node.get("items") {
                for (i, x) in items.iter().enumerate() {
                    if let Some(p) = problem(x, item, root, format!("{path}[{i}]")) {
                        return Some(p);
                    }
                }
            }
        }
        Value::Object(o) => {
            let missing: Vec<&str> = required(node)
                .into_iter()
                .filter(|r| !o.contains_key(*r))
                .collect();
            match missing.as_slice() {
                [] => {}
                [one] => return Some((format!("{path}.{one}"), Why::Missing)),
                many => {
                    return Some((
                        path,
                        Why::MissingKeys(
                            many.iter().map(std::string::ToString::to_string).collect(),
                        ),
                    ));
                }
            }
            let props = node.get("properties").and_then(Value::as_object);
            for (k, x) in o {
                match (
                    props.and_then(|p| p.get(k)),
                    node.get("additionalProperties"),
                ) {
                    (Some(Value::Object(p)), _) => {
                        if let Some(p) = problem(x, p, root, format!("{path}.{k}")) {
                            return Some(p);
                        }
                    }
                    (_, Some(Value::Object(extra))) => {
                        if let Some(p) = problem(x, extra, root, format!("{path}.{k}")) {
                            return Some(p);
                        }
                    }
                    (_, Some(Value::Bool(false))) => {
                        return Some((
                            format!("{path}.{k}"),
                            Why::UnknownKey(
                                props
                                    .map(|p| p.keys().cloned().collect())
                                    .unwrap_or_default(),
                            ),
                        ));
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    None
}

/// Compare a number with a bound, exactly for whole numbers.
fn cmp(n: &serde_json::Number, bound: &Value) -> std::cmp::Ordering {
    let exact = |x: &serde_json::Number| -> Option<i128> {
        x.as_i64()
            .map(i128::from)
            .or_else(|| x.as_u64().map(i128::from))
    };
    match (bound, exact(n)) {
        (Value::Number(b), Some(a)) if exact(b).is_some() => a.cmp(&exact(b).unwrap_or_default()),
        (Value::Number(b), _) => n
            .as_f64()
            .unwrap_or(f64::NAN)
            .partial_cmp(&b.as_f64().unwrap_or(f64::NAN))
            .unwrap_or(std::cmp::Ordering::Equal),
        _ => std::cmp::Ordering::Equal,
    }
}

/// The types `node` itself declares (not its `anyOf` branches).
fn own_types(node: &Map<String, Value>) -> Vec<&str> {
    match node.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

/// "`name` takes <forms> (<its description>); e.g. "name": <example>".
fn explain(name: &str, prop: &Map<String, Value>, root: &Map<String, Value>) -> String {
    let prop_d = deref(prop, root);
    let desc = prop
        .get("description")
        .or_else(|| prop_d.get("description"))
        .and_then(Value::as_str)
        .map(|d| format!(". {name}: {}", one_line(d)))
        .unwrap_or_default();
    let examples = examples(prop, root)
        .into_iter()
        .take(2)
        .map(|e| format!("\"{name}\": {e}"))
        .collect::<Vec<_>>()
        .join(" or ");
    format!(
        "{name} takes {}; e.g. {examples}{desc}",
        forms(prop, root, false)
    )
}

/// A description on one line, without its closing full stop.
fn one_line(d: &str) -> String {
    d.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_end_matches('.')
        .to_string()
}

/// The forms a schema node accepts, in words.
fn forms(node: &Map<String, Value>, root: &Map<String, Value>, nested: bool) -> String {
    let node = deref(node, root);
    if nested && let Some(Value::String(d)) = node.get("description") {
        // A branch or item that says what it is (a period word, a date range).
        return format!("{} ({})", forms_of_type(node, root), one_line(d));
    }
    if let Some(Value::Array(branches)) = node.get("anyOf") {
        return branches
            .iter()
            .filter_map(Value::as_object)
            .filter(|b| own_types(deref(b, root)) != ["null"])
            .map(|b| forms(b, root, true))
            .collect::<Vec<_>>()
            .join(", or ");
    }
    forms_of_type(node, root)
}

fn forms_of_type(node: &Map<String, Value>, root: &Map<String, Value>) -> String {
    if let Some(Value::Array(allowed)) = node.get("enum") {
        return format!(
            "one of {}",
            allowed
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let range = |noun: &str| match (node.get("minimum"), node.get("maximum")) {
        (Some(a), Some(b)) => format!("{noun} from {a} to {b}"),
        (Some(a), None) => format!("{noun} of at least {a}"),
        (None, Some(b)) => format!("{noun} of at most {b}"),
        (None, None) => noun.to_string(),
    };
    let words: Vec<String> = own_types(node)
        .into_iter()
        .filter(|t| *t != "null")
        .map(|t| match t {
            "integer" => range("a whole number"),
            "number" => range("a number"),
            "boolean" => "a boolean (true or false)".to_string(),
            "string" => "a string".to_string(),
            "array" => match node.get("items").and_then(Value::as_object) {
                Some(item) => format!("a list of {}", plural(item, root)),
                None => "a list".to_string(),
            },
            "object" => match (
                node.get("properties").and_then(Value::as_object),
                node.get("additionalProperties").and_then(Value::as_object),
            ) {
                (Some(props), _) => {
                    let req = required(node);
                    let keys: Vec<String> = props.keys().map(|k| format!("\"{k}\"")).collect();
                    let optional: Vec<String> = props
                        .keys()
                        .filter(|k| !req.contains(&k.as_str()))
                        .map(|k| format!("\"{k}\""))
                        .collect();
                    let note = if optional.is_empty() {
                        " (all required)".to_string()
                    } else if req.is_empty() {
                        String::new()
                    } else {
                        format!(" ({} optional)", optional.join(", "))
                    };
                    format!("an object with keys {}{note}", keys.join(", "))
                }
                (None, Some(extra)) => {
                    format!("an object mapping names to {}", forms(extra, root, false))
                }
                (None, None) => "an object".to_string(),
            },
            other => other.to_string(),
        })
        .collect();
    words.join(" or ")
}

/// The items of a list, in words ("strings", "values from ...").
fn plural(item: &Map<String, Value>, root: &Map<String, Value>) -> String {
    let item = deref(item, root);
    if item.get("enum").is_some() {
        return format!("values, each {}", forms(item, root, false));
    }
    match own_types(item).as_slice() {
        ["string"] => "strings".to_string(),
        ["integer"] => "whole numbers".to_string(),
        _ => format!("items, each {}", forms(item, root, false)),
    }
}

/// Example values for a node: its `examples`, else its `default`, else made from the schema.
fn examples(node: &Map<String, Value>, root: &Map<String, Value>) -> Vec<Value> {
    if let Some(Value::Array(e)) = node.get("examples")
        && !e.is_empty()
    {
        return e.clone();
    }
    let node = deref(node, root);
    if let Some(Value::Array(e)) = node.get("examples")
        && !e.is_empty()
    {
        return e.clone();
    }
    if let Some(d) = node.get("default") {
        return vec![d.clone()];
    }
    vec![example(node, root, 0)]
}

fn example(node: &Map<String, Value>, root: &Map<String, Value>, depth: usize) -> Value {
    let node = deref(node, root);
    if let Some(e) = node.get("examples").and_then(|e| e.get(0)) {
        return e.clone();
    }
    if let Some(e) = node.get("enum").and_then(|e| e.get(0)) {
        return e.clone();
    }
    if depth > 4 {
        return Value::Null;
    }
    if let Some(Value::Array(b)) = node.get("anyOf")
        && let Some(first) = b
            .iter()
            .filter_map(Value::as_object)
            .find(|b| own_types(deref(b, root)) != ["null"])
    {
        return example(first, root, depth + 1);
    }
    let num = |x: i64| -> Value {
        let lo = node
            .get("minimum")
            .and_then(Value::as_f64)
            .unwrap_or(f64::MIN);
        let hi = node
            .get("maximum")
            .and_then(Value::as_f64)
            .unwrap_or(f64::MAX);
        Value::from((x as f64).clamp(lo, hi) as i64)
    };
    match own_types(node).first().copied() {
        Some("integer" | "number") => num(10),
        Some("boolean") => Value::Bool(true),
        Some("array") => match node.get("items").and_then(Value::as_object) {
            Some(item) => Value::Array(vec![example(item, root, depth + 1)]),
            None => Value::Array(vec![]),
        },
        Some("object") => {
            let mut o = Map::new();
            if let Some(Value::Object(props)) = node.get("properties") {
                for r in required(node) {
                    if let Some(Value::Object(p)) = props.get(r) {
                        o.insert(r.to_string(), example(p, root, depth + 1));
                    }
                }
            } else if let Some(Value::Object(extra)) = node.get("additionalProperties") {
                o.insert("key".into(), example(extra, root, depth + 1));
            }
            Value::Object(o)
        }
        _ => Value::String("text".into()),
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
        coerce(&mut m, &schema());
        Value::Object(m)
    }

    #[test]
    fn unreadable_strings_name_the_argument_and_type() {
        let mut m = json!({"top_n": "five", "chart": "yes", "cursor": "x", "period": "{oops"})
            .as_object()
            .unwrap()
            .clone();
        coerce(&mut m, &schema());
        let e = check(&m, &schema()).unwrap_err();
        assert!(
            e.contains("top_n must be a whole number of at least 0 (got the string \"five\")"),
            "{e}"
        );
        assert!(e.contains("chart must be a boolean (true or false)"), "{e}");
        assert!(!e.contains("cursor") && !e.contains("period"), "{e}");
    }

    fn bounded() -> Map<String, Value> {
        crate::tools::schema::check_input(
            json!({"type": "object", "additionalProperties": false,
                "$defs": {"P": {"anyOf": [
                    {"type": "string", "description": "One of `last_month`, `this_month`."},
                    {"type": "object", "description": "Explicit range.", "properties": {
                        "start": {"type": "string"}, "end": {"type": "string"}}, "required": ["start", "end"]}
                ]}},
                "properties": {
                    "top_n": {"type": ["integer", "null"], "format": "uint32", "minimum": 0, "description": "Largest N."},
                    "period": {"anyOf": [{"$ref": "#/$defs/P"}, {"type": "null"}], "examples": ["last_month"]},
                    "kind": {"type": "string", "enum": ["user", "role"]},
                    "keys": {"type": "array", "items": {"type": "string"}}
                },
                "required": ["keys"]
            })
            .as_object()
            .unwrap(),
        )
        .as_ref()
        .clone()
    }

    fn refused(args: Value) -> String {
        let mut m = args.as_object().unwrap().clone();
        coerce(&mut m, &bounded());
        check(&m, &bounded()).unwrap_err()
    }

    #[test]
    fn numbers_out_of_range_say_the_range() {
        for bad in [json!(-1), json!(1e12), json!(4294967296u64), json!(2.5)] {
            let e = refused(json!({"keys": [], "top_n": bad}));
            assert!(e.contains("top_n"), "{e}");
            assert!(e.contains("from 0 to 4294967295"), "{e}");
            assert!(e.contains("e.g. \"top_n\": 10"), "{e}");
        }
        let mut ok = json!({"keys": [], "top_n": 5.0, "period": null})
            .as_object()
            .unwrap()
            .clone();
        coerce(&mut ok, &bounded());
        assert_eq!(Value::Object(ok.clone()), json!({"keys": [], "top_n": 5}));
        assert!(check(&ok, &bounded()).is_ok());
    }

    #[test]
    fn a_period_without_end_names_the_missing_key_and_the_forms() {
        let e = refused(json!({"keys": [], "period": {"start": "2026-11-01"}}));
        assert!(e.contains("period.end is missing"), "{e}");
        assert!(
            e.contains("last_month") && e.contains("\"end\", \"start\" (all required)"),
            "{e}"
        );
        let e = refused(json!({"keys": [], "period": 5}));
        assert!(e.contains("period: 5 is none of the accepted forms"), "{e}");
    }

    #[test]
    fn enums_required_unknown_and_items_are_named() {
        let e = refused(json!({"kind": "group"}));
        assert!(e.contains("keys is required"), "{e}");
        assert!(
            e.contains("kind: the string \"group\" is not one of the accepted values"),
            "{e}"
        );
        assert!(e.contains("one of \"user\", \"role\""), "{e}");
        let e = refused(json!({"keys": ["a", 5]}));
        assert!(e.contains("keys[1]: expected a string, got 5"), "{e}");
        let e = refused(json!({"keys": [], "top": 5}));
        assert!(
            e.contains("top: unknown field") && e.contains("did you mean top_n?"),
            "{e}"
        );
    }

    #[test]
    fn serde_errors_are_named_by_their_path() {
        let e = explain_serde(
            "top_n",
            "invalid value: integer `-1`, expected u32",
            &bounded(),
        );
        assert!(
            e.starts_with("top_n: invalid value") && e.contains("from 0 to 4294967295"),
            "{e}"
        );
        let e = explain_serde("", "missing field `keys`", &bounded());
        assert!(e.contains("the arguments are") && e.contains("keys"), "{e}");
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
