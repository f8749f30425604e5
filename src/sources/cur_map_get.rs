//! `m['k']` on CUR 2.0's string maps (`product['model']`, `tags['iamPrincipal/team']`).
//!
//! DataFusion plans a map lookup as `get_field`, which builds its answer one
//! row at a time through `MutableArrayData`. [`MapGet`] answers the same
//! question (the value of the first entry whose key equals `k`; NULL when no
//! entry has it) with one pass over the keys and one `take` of the values:
//! on `Utf8View` values (see `cur_scan`) that copies 16-byte views, not
//! strings. [`MapGetPlanner`] plans `m['k']` with it when `m` is a map and `k`
//! a string literal; anything else is left to DataFusion's own planners.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, MapArray, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{DFSchema, Result, ScalarValue, exec_err};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawFieldAccessExpr};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, ExpressionPlacement, GetFieldAccess, ReturnFieldArgs,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, lit,
};

/// `cur_map_get(map, 'key')`: the value of the first entry with that key, else NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MapGet {
    signature: Signature,
}

impl Default for MapGet {
    fn default() -> Self {
        MapGet {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

/// The value field of a map type, nullable (a missing key gives NULL), as `get_field` has it.
fn value_field(map: &DataType) -> Result<FieldRef> {
    match map {
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                Ok(Arc::new(kv[1].as_ref().clone().with_nullable(true)))
            }
            other => exec_err!("map entries must be a struct of key and value, got {other}"),
        },
        other => exec_err!("cur_map_get needs a map, got {other}"),
    }
}

impl ScalarUDFImpl for MapGet {
    fn name(&self) -> &str {
        "cur_map_get"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args.first() {
            Some(map) => Ok(value_field(map)?.data_type().clone()),
            None => exec_err!("cur_map_get takes a map and a key"),
        }
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        match args.arg_fields.first() {
            Some(map) => value_field(map.data_type()),
            None => exec_err!("cur_map_get takes a map and a key"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [map, key] = args.args.as_slice() else {
            return exec_err!("cur_map_get takes a map and a key");
        };
        let key = match key {
            ColumnarValue::Scalar(
                ScalarValue::Utf8(Some(k))
                | ScalarValue::LargeUtf8(Some(k))
                | ScalarValue::Utf8View(Some(k)),
            ) => k.as_bytes(),
            other => return exec_err!("cur_map_get needs a string literal key, got {other:?}"),
        };
        match map {
            ColumnarValue::Array(a) => Ok(ColumnarValue::Array(lookup(a.as_map(), key)?)),
            ColumnarValue::Scalar(s) => {
                let a = s.to_array()?;
                let out = lookup(a.as_map(), key)?;
                Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
            }
        }
    }

    fn placement(&self, args: &[ExpressionPlacement]) -> ExpressionPlacement {
        // As `get_field`: a lookup on a column with a literal key may move to the scan.
        match args {
            [base, key]
                if matches!(
                    base,
                    ExpressionPlacement::Column | ExpressionPlacement::MoveTowardsLeafNodes
                ) && *key == ExpressionPlacement::Literal =>
            {
                ExpressionPlacement::MoveTowardsLeafNodes
            }
            _ => ExpressionPlacement::KeepInPlace,
        }
    }
}

/// Per row, the index of the first entry whose key is `key`.
fn first_match<'a>(map: &MapArray, key_at: impl Fn(usize) -> &'a [u8], key: &[u8]) -> UInt32Array {
    let offsets = map.value_offsets();
    (0..map.len())
        .map(|row| {
            let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
            (start..end).find(|&i| key_at(i) == key).map(|i| i as u32)
        })
        .collect()
}

/// `map['key']` for every row: the first matching entry's value, else NULL.
pub fn lookup(map: &MapArray, key: &[u8]) -> Result<ArrayRef> {
    let keys = map.keys();
    let indices = match keys.data_type() {
        DataType::Utf8 => {
            let k = keys.as_string::<i32>();
            let (offsets, bytes) = (k.value_offsets(), k.value_data());
            first_match(
                map,
                |i| &bytes[offsets[i] as usize..offsets[i + 1] as usize],
                key,
            )
        }
        DataType::LargeUtf8 => {
            let k = keys.as_string::<i64>();
            first_match(map, |i| k.value(i).as_bytes(), key)
        }
        DataType::Utf8View => {
            let k = keys.as_string_view();
            first_match(map, |i| k.value(i).as_bytes(), key)
        }
        other => return exec_err!("cur_map_get needs string keys, got {other}"),
    };
    Ok(take(map.values().as_ref(), &indices, None)?)
}

/// Plans `m['k']` on a map with a string literal key as [`MapGet`].
#[derive(Debug, Default)]
pub struct MapGetPlanner;

impl ExprPlanner for MapGetPlanner {
    fn plan_field_access(
        &self,
        expr: RawFieldAccessExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawFieldAccessExpr>> {
        // `m['k']` comes as a named field access, `m[expr]` as an index.
        let key = match &expr.field_access {
            GetFieldAccess::NamedStructField {
                name: ScalarValue::Utf8(Some(k)),
            } => Some(k.clone()),
            GetFieldAccess::ListIndex { key } => match key.as_ref() {
                Expr::Literal(ScalarValue::Utf8(Some(k)), _) => Some(k.clone()),
                _ => None,
            },
            _ => None,
        };
        let Some(key) = key else {
            return Ok(PlannerResult::Original(expr));
        };
        if !matches!(expr.expr.get_type(schema)?, DataType::Map(_, _)) {
            return Ok(PlannerResult::Original(expr));
        }
        Ok(PlannerResult::Planned(Expr::ScalarFunction(
            ScalarFunction::new_udf(
                Arc::new(ScalarUDF::from(MapGet::default())),
                vec![expr.expr, lit(key)],
            ),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{MapBuilder, StringBuilder, StringViewBuilder};

    #[test]
    fn lookup_matches_get_field_semantics() {
        // Rows: {model: A, servicename: S}, {servicename: S}, NULL map, {}, {model: NULL},
        // {model: B, model: C} (first entry wins).
        let mut b = MapBuilder::new(None, StringBuilder::new(), StringViewBuilder::new());
        for (k, v) in [("model", Some("A")), ("servicename", Some("S"))] {
            b.keys().append_value(k);
            b.values().append_option(v);
        }
        b.append(true).unwrap();
        b.keys().append_value("servicename");
        b.values().append_value("S");
        b.append(true).unwrap();
        b.append(false).unwrap();
        b.append(true).unwrap();
        b.keys().append_value("model");
        b.values().append_null();
        b.append(true).unwrap();
        for v in ["B", "C"] {
            b.keys().append_value("model");
            b.values().append_value(v);
        }
        b.append(true).unwrap();
        let map = b.finish();
        let out = lookup(&map, b"model").unwrap();
        let out = out.as_string_view();
        let got: Vec<Option<&str>> = (0..out.len())
            .map(|i| (!out.is_null(i)).then(|| out.value(i)))
            .collect();
        assert_eq!(got, vec![Some("A"), None, None, None, None, Some("B")]);
        // A slice keeps its rows' entries.
        let sliced = map.slice(5, 1);
        let out = lookup(&sliced, b"model").unwrap();
        assert_eq!(out.as_string_view().value(0), "B");
    }
}
