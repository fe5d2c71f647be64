//! The OpenAPI 3.1 document of the API, built from [`crate::api::ROUTES`] so it lists exactly the
//! routes the router serves.

use serde_json::{Map, Value, json};

use crate::api::ROUTES;

fn signed_headers() -> Value {
    let h = |name: &str, desc: &str| json!({ "name": name, "in": "header", "required": true, "description": desc, "schema": { "type": "string" } });
    json!([
        h("X-Hotkey", "the miner's SS58 hotkey (1-128 characters)"),
        h(
            "X-Signature",
            "hex sr25519 signature (optional 0x) of `{scope}:{hotkey}:{nonce}:{timestamp}:{sha256(body) hex}`; scope is prism, sn37 or datacomp"
        ),
        h("X-Nonce", "single-use, 1-128 characters"),
        h(
            "X-Timestamp",
            "Unix seconds, within ±300 s of the server's clock"
        ),
    ])
}

fn body_schema(path: &str) -> Option<Value> {
    match path {
        "/v1/submissions" => Some(json!({
            "type": "object", "required": ["code"],
            "properties": {
                "code": { "type": "string", "description": "the Python file, or a base64 ZIP bundle" },
                "filename": { "type": "string", "pattern": "^[A-Za-z0-9_.-]+\\.(py|zip)$", "default": "model.py" },
                "metadata": { "type": "object" }
            }
        })),
        "/v1/sn37/submissions" => Some(json!({
            "type": "object", "required": ["competition_id", "repo", "revision", "hash"],
            "properties": {
                "competition_id": { "type": "integer" }, "repo": { "type": "string", "description": "org/name on the Hugging Face hub" },
                "revision": { "type": "string" }, "hash": { "type": "string" }
            }
        })),
        "/v1/datacomp/submissions" => Some(json!({
            "type": "object", "required": ["data"],
            "properties": { "filename": { "type": "string", "default": "data.jsonl" }, "data": { "type": "string", "description": "JSONL rows" }, "metadata": { "type": "object" } }
        })),
        "/internal/v1/chain/blocks" => Some(json!({
            "oneOf": [ { "$ref": "#/components/schemas/Block" }, { "type": "array", "items": { "$ref": "#/components/schemas/Block" } } ]
        })),
        "/internal/v1/chain/commitments" => Some(json!({
            "type": "array", "items": { "type": "object", "required": ["pipeline", "hotkey", "block", "data"],
                "properties": { "pipeline": { "enum": ["sn37", "datacomp"] }, "hotkey": { "type": "string" }, "block": { "type": "integer" }, "data": { "type": "object" } } }
        })),
        _ => None,
    }
}

fn query_params(path: &str) -> Vec<Value> {
    let q = |name: &str, desc: &str| json!({ "name": name, "in": "query", "required": false, "description": desc, "schema": { "type": "integer" } });
    match path {
        "/v1/submissions/history" => vec![q("days", "1-366, default 90")],
        "/v1/leaderboard" => vec![q("epoch_id", ">= 0, default the current epoch")],
        "/v1/epochs" | "/v1/health/eval-jobs" => vec![q("limit", "1-200, default 50")],
        "/internal/v1/get_weights" => vec![
            json!({ "name": "pipeline", "in": "query", "required": false, "schema": { "type": "string", "default": "prism" } }),
        ],
        _ => Vec::new(),
    }
}

/// The document.
pub fn document(version: &str) -> Value {
    let mut paths = Map::new();
    for (method, path, summary) in ROUTES {
        let mut params = query_params(path);
        if path.contains("{submission_id}") {
            params.push(json!({ "name": "submission_id", "in": "path", "required": true, "schema": { "type": "string" } }));
        }
        let signed = *method == "post" && path.starts_with("/v1/");
        if signed {
            params.extend(signed_headers().as_array().cloned().unwrap_or_default());
        }
        let mut responses = Map::new();
        responses.insert("200".into(), json!({ "description": "OK" }));
        if signed {
            for (code, why) in [
                ("400", "timestamp is not an integer"),
                ("401", "stale timestamp or invalid signature"),
                ("403", "a validator hotkey may not submit"),
                ("409", "nonce already used"),
                ("413", "body or code too large"),
                ("422", "missing header or malformed body"),
                ("429", "rate limit of this hotkey exceeded"),
            ] {
                responses.insert(code.into(), json!({ "description": why }));
            }
        }
        if path.starts_with("/internal/") {
            responses.insert(
                "401".into(),
                json!({ "description": "invalid internal token" }),
            );
        }
        if path.contains("{submission_id}") {
            responses.insert("404".into(), json!({ "description": "not found" }));
        }
        let mut op = json!({ "summary": summary, "parameters": params, "responses": responses });
        if let Some(schema) = body_schema(path) {
            op["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": schema } } });
        }
        if path.starts_with("/internal/") {
            op["security"] = json!([{ "bearer": [] }]);
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "assay validator", "version": version,
                  "description": "PRISM-compatible public routes, SN37 and Datacomp intake, operator routes." },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": { "Block": { "type": "object", "required": ["number", "hash"],
                "properties": { "number": { "type": "integer" }, "hash": { "type": "string" } } } }
        }
    })
}
