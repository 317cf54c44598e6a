//! The typed middle of a plain-export call: the JSON input as the
//! function's arguments, and its returned value as output text, bounded.

use serde_json::Value;
use wasmtime::component::Val;

use super::ExportFunc;
use super::shape::Shape;
use super::values::{Json, as_text, fields_to_vals};
use crate::lift;
use crate::outcome::{Outcome, ToolErrorKind};

/// The call's arguments, in parameter order, from the input object.
pub(crate) fn arguments(func: &ExportFunc, input: &str) -> Result<Vec<Val>, String> {
    let value: Value =
        serde_json::from_str(input).map_err(|e| format!("the input is not valid JSON: {e}"))?;
    let object = value
        .as_object()
        .ok_or_else(|| "the input must be a JSON object with one key per parameter".to_string())?;
    let fields = func
        .params
        .iter()
        .map(|(name, shape)| (name.as_str(), shape));
    let vals = fields_to_vals(fields, object, "").map_err(|e| e.to_string())?;
    Ok(vals.into_iter().map(|(_, val)| val).collect())
}

/// The output text of a returned value, refused past `cap` bytes while it is
/// written straight from the lifted value (no JSON tree is built); the `err`
/// of a `result` return is a tool error whose message is the error value (as
/// text if it is a string, else as JSON), cut to `cap`.
pub(crate) fn output(
    shape: Option<&Shape>,
    returned: Option<Val>,
    cap: usize,
) -> Result<String, Outcome> {
    let value = match (shape, returned.as_ref()) {
        (Some(Shape::Result(..)), Some(Val::Result(Ok(ok)))) => ok.as_deref(),
        (Some(Shape::Result(..)), Some(Val::Result(Err(err)))) => {
            let message = match err.as_deref() {
                Some(value) => as_text(value).unwrap_or_else(|| {
                    lift::json_text(&Json(value), cap).unwrap_or_else(|_| {
                        format!(
                            "the function returned an error value over the limit of {cap} bytes"
                        )
                    })
                }),
                None => "the function returned an error".to_string(),
            };
            return Err(Outcome::ToolError {
                error: ToolErrorKind::Failed,
                message: lift::cap_text(message, cap),
            });
        }
        (_, value) => value,
    };
    match value {
        Some(value) => lift::json_text(&Json(value), cap),
        None => lift::json_text(&Value::Null, cap),
    }
}
