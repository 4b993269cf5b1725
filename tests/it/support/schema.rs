//! The JSON Schemas of what detbal writes as JSON (`schema/*.schema.json`, draft 2020-12), and
//! the key tree of JSON documents that `report_schema` snapshots.

use jsonschema::Validator;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// A schema of `schema/`.
#[derive(Clone, Copy, Debug)]
pub enum Schema {
    /// `report.json` of `detbal analyze` (and of each group).
    Report,
    /// `detbal compare --json`.
    Compare,
}

impl Schema {
    pub const ALL: [Schema; 2] = [Schema::Report, Schema::Compare];

    /// The schema document.
    pub fn document(self) -> Value {
        let name = match self {
            Schema::Report => "schema/report.schema.json",
            Schema::Compare => "schema/compare.schema.json",
        };
        let bytes = std::fs::read(super::repo(name)).unwrap();
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// The compiled schema, built once.
    fn validator(self) -> &'static Validator {
        static VALIDATORS: [OnceLock<Validator>; 2] = [const { OnceLock::new() }; 2];
        VALIDATORS[self as usize].get_or_init(|| {
            jsonschema::draft202012::new(&self.document())
                .unwrap_or_else(|e| panic!("{self:?} schema: {e}"))
        })
    }

    /// Every way `value` departs from the schema, as `/instance/path: message` (`/`: the root).
    pub fn errors(self, value: &Value) -> Vec<String> {
        self.validator()
            .iter_errors(value)
            .map(|e| {
                let at = e.instance_path().to_string();
                format!("{}: {e}", if at.is_empty() { "/" } else { &at })
            })
            .collect()
    }
}

/// Fails, listing every departure, unless `value` (read from `what`) matches `schema`.
pub fn assert_valid(schema: Schema, value: &Value, what: &str) {
    let errors = schema.errors(value);
    assert!(
        errors.is_empty(),
        "{what} does not match the {schema:?} schema:\n  {}",
        errors.join("\n  ")
    );
}

/// Every path of `documents` (`a.b`, arrays collapsed to `a[]`) with the JSON types found there
/// across all of them (`integer` for numbers written without a fraction or exponent), one
/// path a line, sorted.
pub fn key_tree<'a>(documents: impl IntoIterator<Item = &'a Value>) -> String {
    fn walk(value: &Value, path: String, tree: &mut BTreeMap<String, BTreeSet<&'static str>>) {
        let kind = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_f64() => "number",
            Value::Number(_) => "integer",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        match value {
            Value::Object(fields) => {
                for (key, field) in fields {
                    let sub = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    walk(field, sub, tree);
                }
            }
            Value::Array(items) => {
                for item in items {
                    walk(item, format!("{path}[]"), tree);
                }
            }
            _ => {}
        }
        tree.entry(path).or_default().insert(kind);
    }
    let mut tree = BTreeMap::new();
    for document in documents {
        walk(document, String::new(), &mut tree);
    }
    tree.remove("");
    tree.iter()
        .map(|(path, kinds)| {
            let kinds: Vec<&str> = kinds.iter().copied().collect();
            format!("{path}: {}\n", kinds.join(" | "))
        })
        .collect()
}
