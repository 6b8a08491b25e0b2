//! Typed reads from a JSON object that name the field on error (`ipam.ipRanges[1].range`), since
//! serde's own messages do not say where in a nested CNI configuration the problem is.

use serde_json::{Map, Value};

use ipam::{FieldError, FieldProblem};

/// A JSON object and the path it was found at.
pub(crate) struct Obj<'a> {
    pub map: &'a Map<String, Value>,
    pub path: String,
}

impl<'a> Obj<'a> {
    /// Wraps `value` found at `path`, which must be an object.
    pub fn new(value: &'a Value, path: &str) -> Result<Obj<'a>, FieldError> {
        match value {
            Value::Object(map) => Ok(Obj { map, path: path.to_string() }),
            other => Err(wrong_type(path, other, "an object")),
        }
    }

    pub fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value of `key` unless absent or null.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub fn string(&self, key: &str) -> Result<Option<String>, FieldError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(wrong_type(&self.field(key), other, "a string")),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, FieldError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(wrong_type(&self.field(key), other, "true or false")),
        }
    }

    pub fn number(&self, key: &str) -> Result<Option<f64>, FieldError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(other) => Err(wrong_type(&self.field(key), other, "a number")),
        }
    }

    pub fn array(&self, key: &str) -> Result<&'a [Value], FieldError> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(wrong_type(&self.field(key), other, "a list")),
        }
    }

    pub fn strings(&self, key: &str) -> Result<Vec<String>, FieldError> {
        self.array(key)?
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(wrong_type(&format!("{}[{i}]", self.field(key)), other, "a string")),
            })
            .collect()
    }

    pub fn object(&self, key: &str) -> Result<Option<Obj<'a>>, FieldError> {
        self.get(key).map(|v| Obj::new(v, &self.field(key))).transpose()
    }
}

pub(crate) fn wrong_type(field: &str, value: &Value, expected: &str) -> FieldError {
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    FieldError::new(field, value.to_string(), FieldProblem::WrongType(format!("expected {expected}, found {kind}")))
}
