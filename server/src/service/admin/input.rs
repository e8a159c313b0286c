//! The fields of an administrative request, whichever face it came through: a JSON
//! body (the admin API), an HTML form (the console) or command-line arguments (the
//! CLI). Each face only gathers the fields; reading them — and the messages for what
//! is missing or malformed — happens here, once, so the same wrong input gets the
//! same field error everywhere.

use crate::service::FieldErrors;
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::BTreeSet;

/// Field name → value. Forms and arguments give text; JSON may give any type, and
/// numbers and flags are also accepted as text (a form has no other way to send them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Input {
    fields: Map<String, Value>,
    /// The names decoders asked for, so that the API's document can be checked
    /// against what is really read.
    read: RefCell<BTreeSet<String>>,
}

impl Input {
    /// A JSON body's fields; anything but an object has none (so each required field
    /// is reported missing by name).
    pub fn from_json(body: Value) -> Self {
        match body {
            Value::Object(fields) => Self { fields, read: RefCell::default() },
            _ => Self::default(),
        }
    }

    /// Text fields, as forms, query strings and command lines give them.
    pub fn from_text<K: Into<String>, V: Into<String>>(fields: impl IntoIterator<Item = (K, V)>) -> Self {
        let fields = fields.into_iter().map(|(k, v)| (k.into(), Value::String(v.into()))).collect();
        Self { fields, read: RefCell::default() }
    }

    /// Adds (or replaces) a field, e.g. a path segment that names the target.
    pub fn with(mut self, field: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(field.to_owned(), value.into());
        self
    }

    /// Adds a text field only when there is a value.
    pub fn with_some(self, field: &str, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(value) => self.with(field, Value::String(value.into())),
            None => self,
        }
    }

    /// The other fields as a JSON object, for rules written over whole bodies.
    pub fn without(&self, field: &str) -> Value {
        let mut fields = self.fields.clone();
        fields.remove(field);
        Value::Object(fields)
    }

    fn get(&self, field: &str) -> Option<&Value> {
        self.read.borrow_mut().insert(field.to_owned());
        self.fields.get(field).filter(|v| !v.is_null())
    }

    /// Every field a decoder has asked for so far.
    pub fn fields_read(&self) -> BTreeSet<String> {
        self.read.borrow().clone()
    }

    pub fn has(&self, field: &str) -> bool {
        self.get(field).is_some()
    }

    /// A required text field, as given (callers trim where the rule says so).
    pub fn text(&self, field: &str, errors: &mut FieldErrors) -> String {
        match self.get(field) {
            Some(Value::String(value)) => value.clone(),
            None => {
                errors.add(field, "is required");
                String::new()
            }
            Some(_) => {
                errors.add(field, "must be a string");
                String::new()
            }
        }
    }

    pub fn optional_text(&self, field: &str, errors: &mut FieldErrors) -> Option<String> {
        self.has(field).then(|| self.text(field, errors))
    }

    /// A text filter: absent, or blank text, is no filter.
    pub fn filter(&self, field: &str, errors: &mut FieldErrors) -> Option<String> {
        self.optional_text(field, errors).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// Absent is false; `true`/`false` as JSON or as text.
    pub fn flag(&self, field: &str, errors: &mut FieldErrors) -> bool {
        match self.get(field) {
            None => false,
            Some(Value::Bool(value)) => *value,
            Some(Value::String(text)) if matches!(text.trim(), "true" | "false") => text.trim() == "true",
            Some(_) => {
                errors.add(field, "must be true or false");
                false
            }
        }
    }

    /// A required whole number, as JSON or as text.
    pub fn whole_number(&self, field: &str, errors: &mut FieldErrors) -> u32 {
        let number = match self.get(field) {
            Some(Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            Some(Value::String(text)) => text.trim().parse::<u32>().ok(),
            None => {
                errors.add(field, "is required");
                return 0;
            }
            Some(_) => None,
        };
        number.unwrap_or_else(|| {
            errors.add(field, "must be a whole number");
            0
        })
    }

    /// A seat number is text ("01" and "1" are different seats), but a JSON number
    /// plainly means that number.
    pub fn seat(&self, field: &str, errors: &mut FieldErrors) -> String {
        match self.get(field) {
            Some(Value::Number(n)) if n.is_u64() => n.to_string(),
            _ => self.text(field, errors),
        }
    }

    /// A list of names: a JSON array of strings.
    pub fn names(&self, field: &str, errors: &mut FieldErrors) -> Vec<String> {
        let names = match self.get(field) {
            Some(Value::Array(items)) => items.iter().map(|u| u.as_str().map(str::to_owned)).collect(),
            _ => None,
        };
        names.unwrap_or_else(|| {
            errors.add(field, "must be a list of user names");
            Vec::new()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_and_flags_read_the_same_from_json_and_from_text() {
        let json = Input::from_json(json!({ "vcpus": 2, "admin": true }));
        let text = Input::from_text([("vcpus", "2"), ("admin", "true")]);
        for input in [json, text] {
            let mut errors = FieldErrors::default();
            assert_eq!(input.whole_number("vcpus", &mut errors), 2);
            assert!(input.flag("admin", &mut errors));
            assert!(errors.is_empty(), "{errors:?}");
        }
    }

    #[test]
    fn each_wrong_field_is_named_with_its_problem() {
        let input = Input::from_json(json!({ "vcpus": "two", "ram": -1, "name": 7, "admin": "yes" }));
        let mut errors = FieldErrors::default();
        input.whole_number("vcpus", &mut errors);
        input.whole_number("ram", &mut errors);
        input.whole_number("disk", &mut errors);
        input.text("name", &mut errors);
        input.flag("admin", &mut errors);
        assert_eq!(errors.0["vcpus"], ["must be a whole number"]);
        assert_eq!(errors.0["ram"], ["must be a whole number"]);
        assert_eq!(errors.0["disk"], ["is required"]);
        assert_eq!(errors.0["name"], ["must be a string"]);
        assert_eq!(errors.0["admin"], ["must be true or false"]);
    }

    #[test]
    fn a_body_that_is_not_an_object_has_no_fields() {
        let mut errors = FieldErrors::default();
        Input::from_json(json!([1, 2])).text("name", &mut errors);
        assert_eq!(errors.0["name"], ["is required"]);
    }
}
