//! The OpenAPI 3.1 document of the API, served at `/openapi.json`, generated from the code:
//! the request bodies of commands and the event payloads are the domain's own JSON Schemas
//! (`domain::command_schema()`, `domain::event_schemas()`), so the document cannot drift
//! from what the server accepts and emits.

use axum::Json;
use serde_json::{Map, Value, json};

use projections::dispatch::QUERY_NAMES;

/// Moves a schema's `$defs` into `components` and points its references there.
fn hoist(mut schema: Value, components: &mut Map<String, Value>) -> Value {
    if let Some(Value::Object(definitions)) = schema.as_object_mut().and_then(|o| o.remove("$defs"))
    {
        for (name, definition) in definitions {
            let definition = hoist(definition, components);
            components.entry(name).or_insert(definition);
        }
    }
    if let Some(object) = schema.as_object_mut() {
        object.remove("$schema");
    }
    rewrite_refs(&mut schema);
    schema
}

fn rewrite_refs(value: &mut Value) {
    match value {
        Value::Object(object) => {
            for (key, child) in object.iter_mut() {
                if key == "$ref"
                    && let Value::String(reference) = child
                    && let Some(name) = reference.strip_prefix("#/$defs/")
                {
                    *reference = format!("#/components/schemas/{name}");
                } else {
                    rewrite_refs(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

fn problem_responses(statuses: &[&str]) -> Map<String, Value> {
    statuses
        .iter()
        .map(|status| {
            (
                status.to_string(),
                json!({"description": "problem details (RFC 9457)", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}),
            )
        })
        .collect()
}

fn operation(
    summary: &str,
    ok: &str,
    body: Option<Value>,
    errors: &[&str],
    params: Value,
) -> Value {
    let mut responses = problem_responses(errors);
    responses.insert(
        ok.to_string(),
        json!({"description": "success", "content": {"application/json": {}}}),
    );
    let mut op = json!({"summary": summary, "responses": responses, "parameters": params});
    if let Some(schema) = body {
        op["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": schema}}});
    }
    op
}

fn query_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": "string"}})
}

/// The document.
pub fn build() -> Value {
    let mut components = Map::new();
    let command = serde_json::to_value(domain::command_schema()).unwrap_or(Value::Null);
    let command = hoist(command, &mut components);
    components.insert("Command".into(), command);
    let mut event_names = Vec::new();
    for (event_type, schema) in domain::event_schemas() {
        let schema = hoist(
            serde_json::to_value(schema).unwrap_or(Value::Null),
            &mut components,
        );
        let name = format!("{}V{}", event_type.name, event_type.version);
        event_names.push(json!({"$ref": format!("#/components/schemas/{name}")}));
        components.insert(name, schema);
    }
    components.insert("EventPayload".into(), json!({"oneOf": event_names}));
    components.insert(
        "Problem".into(),
        json!({"type": "object", "required": ["type", "title", "status", "rule"], "properties": {
            "type": {"type": "string", "description": "/problems/{rule}"},
            "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"},
            "rule": {"type": "string", "description": "the domain's rule name, stable"},
            "capability": {"type": "string", "description": "the missing capability, for missing-capability"},
            "retry_after_seconds": {"type": "integer"}}}),
    );
    let reads = json!([
        query_param("as_of", "a global position or an RFC 3339 time"),
        query_param("explain", "true to list the events behind the answer"),
        query_param(
            "min_position",
            "wait until the read models have applied this position"
        ),
    ]);
    let mut query_params = reads.as_array().cloned().unwrap_or_default();
    query_params.push(json!({"name": "what", "in": "path", "required": true, "schema": {"type": "string", "enum": QUERY_NAMES}}));
    for name in [
        "customer",
        "provider",
        "reseller",
        "partner",
        "user",
        "capability",
    ] {
        query_params.push(query_param(
            name,
            "an id (or a capability name) the query needs",
        ));
    }
    let mut history_params = reads.as_array().cloned().unwrap_or_default();
    history_params.push(json!({"name": "target", "in": "path", "required": true, "schema": {"type": "string"}, "description": "a partner, customer or user id, or a stream name"}));
    let feed_params = json!([
        query_param("from", "first position (inclusive); Last-Event-ID takes precedence"),
        query_param("types", "comma-separated event types"),
        query_param("stream_prefixes", "comma-separated stream name prefixes"),
        query_param("limit", "page size (pages only)"),
        {"name": "Last-Event-ID", "in": "header", "required": false, "schema": {"type": "string"}},
    ]);
    let command_params = json!([
        {"name": "Idempotency-Key", "in": "header", "required": false, "schema": {"type": "string", "format": "uuid"}, "description": "the command id; a retry returns the original outcome"},
        {"name": "X-Correlation-Id", "in": "header", "required": false, "schema": {"type": "string", "format": "uuid"}},
        {"name": "X-Directory-Token", "in": "header", "required": false, "schema": {"type": "string"}, "description": "a directory token (JWT) of the partner tenant's global admin: needed by add_reseller_program"},
    ]);
    let mut receipt_params = command_params.as_array().cloned().unwrap_or_default();
    receipt_params.push(json!({"name": "receipt", "in": "query", "required": false, "schema": {"type": "boolean"},
        "description": "wait for a signed checkpoint that includes the events and answer with their receipt: {checkpoint, tree_size, records: [{position, leaf_index, tree_size, leaf_hash, proof}]}"}));
    let receipt_params = Value::Array(receipt_params);
    let required = |name: &str, description: &str| json!({"name": name, "in": "query", "required": true, "description": description, "schema": {"type": "integer", "minimum": 0}});
    // The verifiable history is public (`policy::may_read_tree`): no credentials needed.
    let public = |mut op: Value, content_type: &str| {
        op["security"] = json!([]);
        op["responses"]["200"]["content"] = json!({content_type: {}});
        op
    };
    let tree_paths = json!({
        "/v1/checkpoint": {"get": public(operation("the latest signed checkpoint: a C2SP tlog-checkpoint as a C2SP signed note (Ed25519)", "200", None, &["503"], json!([])), "text/plain")},
        "/checkpoint": {"get": public(operation("the same, at the C2SP tlog-tiles path", "200", None, &["503"], json!([])), "text/plain")},
        "/v1/checkpoint/verifier-key": {"get": public(operation("the note verifier key of checkpoints (name+id+base64 key)", "200", None, &["503"], json!([])), "text/plain")},
        "/v1/proofs/inclusion": {"get": public(operation("RFC 9162 inclusion proof of the record at a log position in the tree of a size: {leaf_index, tree_size, leaf_hash, proof[]} (standard base64)", "200", None, &["400", "404", "503"],
            json!([required("position", "the record's log position"), required("size", "the tree size (a checkpoint's)")])), "application/json")},
        "/v1/proofs/consistency": {"get": public(operation("RFC 9162 consistency proof between two tree sizes: {from, to, proof[]} (standard base64)", "200", None, &["400", "404", "503"],
            json!([required("from", "the older tree size (> 0)"), required("to", "the newer tree size")])), "application/json")},
        "/tile/{path}": {"get": public(operation("a tile of hashes at its C2SP tlog-tiles path: <L>/<N>[.p/<W>]", "200", None, &["400", "404", "503"],
            json!([{"name": "path", "in": "path", "required": true, "schema": {"type": "string"}}])), "application/octet-stream")},
    });
    let obj = |properties: Value| json!({"type": "object", "additionalProperties": false, "properties": properties});
    let s = json!({"type": "string"});
    let mut document = json!({
        "openapi": "3.1.0",
        "info": {"title": "csp-ledger", "version": env!("CARGO_PKG_VERSION"),
            "description": "The event-sourced ledger of CSP channel relationships. Authenticate with `Authorization: Bearer <token or key>`."},
        "components": {"schemas": components, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": {"get": operation("liveness", "200", None, &[], json!([]))},
            "/readyz": {"get": operation("readiness: the read models have caught up with the log", "200", None, &["503"], json!([]))},
            "/openapi.json": {"get": operation("this document", "200", None, &[], json!([]))},
            "/v1/auth/sign-in": {"post": operation("partner user (or enrolling admin) signs in with email and password", "200",
                Some(obj(json!({"email": s, "password": s}))), &["400", "401", "429"], json!([]))},
            "/v1/auth/change-password": {"post": operation("change the (temporary) password; returns a full token", "200",
                Some(obj(json!({"current_password": s, "new_password": s}))), &["400", "401", "403", "422"], command_params.clone())},
            "/v1/auth/sign-out": {"post": operation("end the session", "204", None, &[], json!([]))},
            "/v1/auth/invitation": {"post": operation("a customer's global admin opens an invitation link; the bearer is a directory token (JWT) of the tenant's global admin, and the session is bound to that tenant", "200",
                Some(obj(json!({"invitation_id": s, "token": s}))), &["400", "401", "503"], json!([]))},
            "/v1/enrollments": {"post": operation("a tenant's global admin starts enrolling, choosing its password; the bearer is a directory token (JWT) of the tenant's global admin, whose tenant, email and name the enrollment takes", "201",
                Some(obj(json!({"password": s, "organization_name": s, "tenant_country": s}))),
                &["400", "401", "409", "422", "503"], command_params.clone())},
            "/v1/verifications": {"post": operation("the primary contact opens the verification link", "201",
                Some(obj(json!({"partner_id": s, "token": s}))), &["400", "403", "404", "409", "422"], command_params.clone())},
            "/v1/commands": {"post": operation("issue a command as the caller", "201",
                Some(json!({"$ref": "#/components/schemas/Command"})), &["400", "401", "403", "404", "409", "413", "415", "422"], receipt_params)},
            "/v1/events": {"get": operation("Server-Sent Events: catch-up then live; id = global position; each event carries leaf_index (its leaf in the Merkle tree) and record (base64 of its canonical bytes)", "200", None, &["400", "401", "403", "503"], feed_params.clone())},
            "/v1/events/page": {"get": operation("a page of events for batch consumers, each with leaf_index and record as in the feed", "200", None, &["400", "401", "403"], feed_params)},
            "/v1/history/{target}": {"get": operation("the events of a party, partnership or stream", "200", None, &["400", "401", "403", "404", "503"], Value::Array(history_params))},
            "/v1/queries/{what}": {"get": operation("a §5 query, as of any instant, explained", "200", None, &["400", "401", "403", "404", "503"], Value::Array(query_params))},
            "/dev-directory/token": {"post": operation("development directory only (serve --dev-directory, loopback): mint a directory token for a tenant and person", "200",
                Some(obj(json!({"tenant_id": s, "user_id": s, "email": s, "name": s, "global_admin": {"type": "boolean"}, "expires_in": {"type": "integer"}}))), &["400", "404"], json!([]))},
            "/v1/verify": {"get": operation("check every record and the hash chain (operator, auditors)", "200", None, &["401", "403"], json!([]))},
            "/v1/keys": {
                "post": operation("issue an auditor or service key (operator)", "201",
                    Some(obj(json!({"kind": {"type": "string", "enum": ["auditor", "service"]}, "name": s}))), &["400", "401", "403", "422"], json!([])),
                "get": operation("list keys, without secrets (operator)", "200", None, &["401", "403"], json!([]))},
            "/v1/keys/{id}": {"delete": operation("revoke a key (operator)", "204", None, &["401", "403", "404"],
                json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}]))},
        }
    });
    if let (Some(paths), Value::Object(tree)) = (document["paths"].as_object_mut(), tree_paths) {
        paths.extend(tree);
    }
    document
}

/// `GET /openapi.json`.
pub async fn document() -> Json<Value> {
    Json(build())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_reference_resolves() {
        let document = super::build();
        let schemas = &document["components"]["schemas"];
        let text = document.to_string();
        for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap_or_default();
            assert!(
                schemas.get(name).is_some(),
                "unresolved reference to {name}"
            );
        }
        assert!(!text.contains("#/$defs/"));
        assert!(schemas.get("Command").is_some());
    }
}
