//! Every code-list value the sample generator emits is one the SS 12000 reference OpenAPI
//! allows (its `enum`s, inline or by `$ref`), so sample data pushed to Skolverket's APIs or
//! served to a strict client is never refused for a value no spec has. The OpenAPI is the
//! repository's copy of Skolverket's (`tests/data/`).

use serde_json::Value;
use ss12000::Collection;
use ss12000::sample::{SampleSpec, generate};

fn openapi() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/ss12000-reference-api.openapi.yml"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_norway::from_str(&text).unwrap()
}

/// `schema` with a `$ref` resolved against the document's components.
fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap();
            &spec["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// Checks `value` against `schema`'s enums, recursing into properties, items and `allOf`;
/// returns the violations as `path: value`.
fn check(
    spec: &Value,
    schema: &Value,
    value: &Value,
    path: &str,
    out: &mut Vec<String>,
    depth: usize,
) {
    if depth > 8 {
        return;
    }
    let schema = resolve(spec, schema);
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        out.push(format!("{path}: {value} is not one of {allowed:?}"));
    }
    for part in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        check(spec, part, value, path, out, depth + 1);
    }
    if let (Some(properties), Some(object)) = (
        schema.get("properties").and_then(Value::as_object),
        value.as_object(),
    ) {
        for (name, member) in object {
            if let Some(property) = properties.get(name) {
                check(
                    spec,
                    property,
                    member,
                    &format!("{path}.{name}"),
                    out,
                    depth + 1,
                );
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (index, item) in array.iter().enumerate() {
            check(
                spec,
                items,
                item,
                &format!("{path}[{index}]"),
                out,
                depth + 1,
            );
        }
    }
}

#[test]
fn every_generated_code_list_value_is_in_the_reference_openapi() {
    let spec = openapi();
    let mut violations = Vec::new();
    let mut checked = 0;
    for (collection, object) in generate(&SampleSpec {
        school_units: 3,
        persons: 400,
        seed: 11,
    }) {
        let schema_name = match collection {
            Collection::Persons => "Person",
            Collection::Groups => "Group",
            Collection::Duties => "Duty",
            Collection::Activities => "Activity",
            Collection::Organisations => "Organisation",
            _ => continue,
        };
        let value: Value = serde_json::from_str(object.json()).unwrap();
        let schema = &spec["components"]["schemas"][schema_name];
        assert!(schema.is_object(), "no schema {schema_name}");
        check(
            &spec,
            schema,
            &value,
            &format!("{collection}/{}", object.id()),
            &mut violations,
            0,
        );
        checked += 1;
    }
    assert!(checked > 400, "{checked}");
    violations.sort();
    violations.dedup_by(|a, b| a.split(": ").nth(1) == b.split(": ").nth(1));
    assert!(violations.is_empty(), "{violations:#?}");
}
