//! `GET /openapi.json`: the OpenAPI 3.1 description of every route,
//! hand-written in `server/openapi.json` (each engineer adds the paths of
//! the routes they add; a test checks that every route of the router is
//! described there).

use axum::http::header;
use axum::response::IntoResponse;

/// The document, as shipped in the binary.
pub const DOCUMENT: &str = include_str!("../../openapi.json");

pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::Value;

    /// Every `.route("path", get(..).post(..))` in the crate's sources,
    /// as (path, methods).
    fn routes_in_sources() -> Vec<(String, Vec<String>)> {
        fn walk(dir: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(std::fs::read_to_string(&p).unwrap());
                }
            }
        }
        let mut sources = Vec::new();
        walk(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut sources,
        );
        let mut routes = Vec::new();
        for src in &sources {
            let src: String = src.split_whitespace().collect::<Vec<_>>().join("");
            for piece in src.split(".route(\"").skip(1) {
                let Some((path, rest)) = piece.split_once('"') else {
                    continue;
                };
                if !path.starts_with('/') {
                    continue; // this comment's own example
                }
                // The method router runs to the `)` that closes `.route(`.
                let mut depth = 1;
                let mut end = rest.len();
                for (i, c) in rest.char_indices() {
                    match c {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                end = i;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let methods = ["get", "post", "put", "delete", "patch"]
                    .into_iter()
                    .filter(|m| {
                        let r = &rest[..end];
                        r.starts_with(&format!(",{m}("))
                            || r.contains(&format!(".{m}("))
                            || r.contains(&format!("::{m}("))
                    })
                    .map(str::to_owned)
                    .collect();
                routes.push((path.to_owned(), methods));
            }
        }
        routes
    }

    #[test]
    fn document_is_openapi_3_1_and_describes_every_route() {
        let doc: Value = serde_json::from_str(super::DOCUMENT).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let routes = routes_in_sources();
        assert!(
            routes
                .iter()
                .any(|(p, m)| p == "/v1/events" && m.len() == 2),
            "the scan finds the router's routes: {routes:?}"
        );
        for (path, methods) in routes {
            let item = &doc["paths"][&path];
            assert!(item.is_object(), "route {path} is not in openapi.json");
            assert!(!methods.is_empty(), "no method found for route {path}");
            for m in methods {
                assert!(
                    item[&m].is_object(),
                    "{} {path} is not in openapi.json",
                    m.to_uppercase()
                );
                assert!(
                    item[&m]["responses"].is_object(),
                    "{} {path} has no responses",
                    m.to_uppercase()
                );
            }
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc: Value = serde_json::from_str(super::DOCUMENT).unwrap();
        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r.clone());
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let pointer = r.strip_prefix('#').unwrap();
            assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
        }
    }
}
