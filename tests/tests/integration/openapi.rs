//! The OpenAPI document at `/api/v1.0/openapi.json`: OpenAPI 3.1, every route of the
//! terminal API, the administrator's API and the cloud API in it, nothing in it that the server does not serve,
//! and every reference in it resolvable. (tests/schemathesis.sh checks the answers.)

use reqwest::Method;
use serde_json::Value;
use std::collections::BTreeSet;
use thindesk_tests::{ADMIN, TestServer, basic};

/// Every route of the v1.0 terminal API, the administrator's API and the cloud API,
/// with its methods.
const ROUTES: [(&str, &str); 49] = [
    ("get", "/api/v1.0/token"),
    ("delete", "/api/v1.0/token"),
    ("post", "/api/v1.0/token"),
    ("get", "/api/v1.0/users/me/reset_password"),
    ("post", "/api/v1.0/users/me/reset_password"),
    ("put", "/api/v1.0/users/me/reset_password"),
    ("get", "/api/v1.0/users/me/desktops"),
    ("get", "/api/v1.0/users/me/is_administrator"),
    ("post", "/api/v1.0/desktops/{id}/action"),
    ("get", "/api/v1.0/places"),
    ("post", "/api/v1.0/terminals/registration"),
    ("get", "/api/v1.0/terminals/{mac}"),
    ("get", "/api/v1.0/openapi.json"),
    ("post", "/cloud_api"),
    ("get", "/api/v1.0/admin/users"),
    ("post", "/api/v1.0/admin/users"),
    ("post", "/api/v1.0/admin/users/import"),
    ("delete", "/api/v1.0/admin/users/{name}"),
    ("post", "/api/v1.0/admin/users/{name}/password"),
    ("put", "/api/v1.0/admin/users/{name}/password"),
    ("get", "/api/v1.0/admin/places"),
    ("post", "/api/v1.0/admin/places"),
    ("delete", "/api/v1.0/admin/places/{name}"),
    ("get", "/api/v1.0/admin/terminals"),
    ("get", "/api/v1.0/admin/terminals/pending"),
    ("delete", "/api/v1.0/admin/terminals/{mac}"),
    ("post", "/api/v1.0/admin/terminals/{mac}/approve"),
    ("post", "/api/v1.0/admin/terminals/{mac}/reject"),
    ("post", "/api/v1.0/admin/terminals/{mac}/move"),
    ("put", "/api/v1.0/admin/terminals/{mac}/move"),
    ("get", "/api/v1.0/admin/settings"),
    ("post", "/api/v1.0/admin/settings"),
    ("put", "/api/v1.0/admin/settings"),
    ("get", "/api/v1.0/admin/images"),
    ("post", "/api/v1.0/admin/images"),
    ("delete", "/api/v1.0/admin/images/{name}"),
    ("get", "/api/v1.0/admin/flavors"),
    ("post", "/api/v1.0/admin/flavors"),
    ("delete", "/api/v1.0/admin/flavors/{name}"),
    ("get", "/api/v1.0/admin/desktops"),
    ("post", "/api/v1.0/admin/desktops"),
    ("delete", "/api/v1.0/admin/desktops/{id}"),
    ("post", "/api/v1.0/admin/desktops/{id}/assign"),
    ("put", "/api/v1.0/admin/desktops/{id}/assign"),
    ("post", "/api/v1.0/admin/desktops/{id}/action"),
    ("post", "/api/v1.0/admin/desktops/{id}/ticket"),
    ("get", "/api/v1.0/admin/instances"),
    ("delete", "/api/v1.0/admin/instances/{id}"),
    ("get", "/api/v1.0/admin/audit"),
];

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

async fn document(server: &TestServer) -> Value {
    let response = server.http.get(server.url("/api/v1.0/openapi.json")).send().await.expect("request sent");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"));
    response.json().await.expect("the document is JSON")
}

/// The documented operations, as (method, path).
fn operations(document: &Value) -> BTreeSet<(String, String)> {
    let paths = document["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|method| item.get(**method).is_some())
                .map(|method| (method.to_string(), path.clone()))
        })
        .collect()
}

#[tokio::test]
async fn the_document_is_openapi_3_1_served_without_credentials() {
    let server = TestServer::start().await;
    let document = document(&server).await;
    let version = document["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1."), "{version}");
    assert!(document["info"]["title"].is_string());
    assert!(document["info"]["version"].is_string());
}

#[tokio::test]
async fn every_route_is_documented_and_nothing_else() {
    let server = TestServer::start().await;
    let documented = operations(&document(&server).await);
    let expected: BTreeSet<(String, String)> =
        ROUTES.iter().map(|(method, path)| (method.to_string(), path.to_string())).collect();
    assert_eq!(documented, expected);
}

#[tokio::test]
async fn every_documented_operation_is_served() {
    let server = TestServer::start().await;
    let admin = basic(ADMIN.0, ADMIN.1);
    for (method, path) in operations(&document(&server).await) {
        let path_filled = path.replace("{id}", "no-such-desktop").replace("{mac}", "08:00:20:0A:8C:6D");
        let url = server.url(&path_filled.replace("{name}", "nobody"));
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
        let response = server
            .http
            .request(method.clone(), url)
            .header("Authorization", &admin)
            .header("Content-Type", "application/json")
            .body("{}")
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("a JSON answer");
        // An unknown route answers 404 with `path`, a wrong method 405.
        assert!(status != 405 && body["data"]["path"].is_null(), "{method} {path} is not served: {status} {body}");
    }
}

/// Follows `#/components/...` references.
fn resolve<'a>(document: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str() {
        Some(reference) => {
            let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("not a local reference: {reference}"));
            let target = document.pointer(pointer).unwrap_or_else(|| panic!("{reference} does not resolve"));
            resolve(document, target)
        }
        None => value,
    }
}

fn references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            if let Some(Value::String(reference)) = fields.get("$ref") {
                found.push(reference.clone());
            }
            fields.values().for_each(|v| references(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, found)),
        _ => {}
    }
}

#[tokio::test]
async fn every_reference_and_security_scheme_resolves() {
    let server = TestServer::start().await;
    let document = document(&server).await;
    let mut found = Vec::new();
    references(&document, &mut found);
    assert!(found.len() > 20, "{found:?}");
    for reference in &found {
        let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("not a local reference: {reference}"));
        assert!(document.pointer(pointer).is_some(), "{reference} does not resolve");
    }
    let schemes = document["components"]["securitySchemes"].as_object().expect("security schemes");
    for (method, path) in operations(&document) {
        for requirement in document["paths"][&path][&method]["security"].as_array().into_iter().flatten() {
            for name in requirement.as_object().expect("a requirement").keys() {
                assert!(schemes.contains_key(name), "{method} {path} names no scheme {name}");
            }
        }
    }
}

#[tokio::test]
async fn the_credential_forms_are_security_schemes() {
    let server = TestServer::start().await;
    let document = document(&server).await;
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["basic"]["type"], "http");
    assert_eq!(schemes["basic"]["scheme"], "basic");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["authorization"]["type"], "apiKey");
    assert_eq!(schemes["authorization"]["in"], "header");
    assert_eq!(schemes["authorization"]["name"], "Authorization");
    let token = &document["paths"]["/api/v1.0/token"]["get"]["security"];
    assert_eq!(token.as_array().map(Vec::len), Some(3), "{token}");
    let places = &document["paths"]["/api/v1.0/places"]["get"];
    assert!(places.get("security").is_none(), "places need no credentials: {places}");
}

/// Each v1.0 answer is the JSend envelope of its class: `success` for 2xx, `fail` for
/// 4xx, `error` for 5xx; the cloud API answers 200 with `ret_code`.
#[tokio::test]
async fn each_status_has_the_envelope_of_its_class() {
    let server = TestServer::start().await;
    let document = document(&server).await;
    let mut statuses = BTreeSet::new();
    for (method, path) in operations(&document) {
        let responses = document["paths"][&path][&method]["responses"].as_object().expect("responses");
        for (status, response) in responses {
            statuses.insert(status.clone());
            let response = resolve(&document, response);
            let schema = resolve(&document, &response["content"]["application/json"]["schema"]);
            if path == "/cloud_api" {
                assert_eq!(status, "200");
                let first = resolve(&document, &schema["anyOf"][0]);
                assert_eq!(first["required"], serde_json::json!(["ret_code", "description"]), "{schema}");
                continue;
            }
            if path.ends_with("openapi.json") {
                continue;
            }
            let class = match status.chars().next() {
                Some('2') => "success",
                Some('4') => "fail",
                Some('5') => "error",
                _ => panic!("{method} {path}: unexpected status {status}"),
            };
            assert_eq!(schema["properties"]["status"]["enum"], serde_json::json!([class]), "{method} {path} {status}");
        }
    }
    for status in ["200", "400", "401", "403", "404", "405", "409", "413", "415", "429", "500", "503"] {
        assert!(statuses.contains(status), "no operation documents {status}");
    }
}
