//! One operation of the document: what the route table says beside each handler.

use serde_json::{json, Map, Value};

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Probes and scrapers: no credentials ever.
    Open,
    /// Any authenticated caller (RBAC decides per agent).
    Caller,
    /// The admin role (management API).
    Admin,
}

/// An operation: method, id, words, access, parameters, body and answers.
#[derive(Debug, Clone)]
pub(crate) struct Op {
    pub method: &'static str,
    pub id: String,
    pub summary: String,
    pub tag: &'static str,
    pub access: Access,
    pub query: Vec<(&'static str, Value, &'static str)>,
    pub body: Option<Value>,
    /// Success status and its response object.
    pub ok: (u16, Value),
    /// Error statuses worth naming (every other one is the `default` error answer).
    pub errors: Vec<u16>,
    /// A package app's route: its answers, errors included, are the package's own.
    pub passthrough: bool,
}

impl Op {
    pub(crate) fn new(method: &'static str, id: &str, tag: &'static str, summary: &str) -> Self {
        Op {
            method,
            id: id.to_string(),
            summary: summary.to_string(),
            tag,
            access: Access::Caller,
            query: Vec::new(),
            body: None,
            ok: (200, json_answer("OK", json!({"type": "object"}))),
            errors: Vec::new(),
            passthrough: false,
        }
    }

    /// Answers pass through from a package's app, any status and body.
    pub(crate) fn passthrough(mut self) -> Self {
        self.passthrough = true;
        self
    }

    pub(crate) fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    pub(crate) fn query(mut self, name: &'static str, schema: Value, about: &'static str) -> Self {
        self.query.push((name, schema, about));
        self
    }

    /// A request body: content type → schema.
    pub(crate) fn body(mut self, content: Value) -> Self {
        self.body = Some(json!({"required": true, "content": content}));
        self
    }

    pub(crate) fn ok(mut self, status: u16, response: Value) -> Self {
        self.ok = (status, response);
        self
    }

    /// The JSON answer of a success.
    pub(crate) fn answers(self, status: u16, schema: Value) -> Self {
        self.ok(status, json_answer("OK", schema))
    }

    pub(crate) fn errors(mut self, statuses: &[u16]) -> Self {
        self.errors.extend_from_slice(statuses);
        self
    }

    pub(crate) fn to_json(&self, auth_off: bool) -> Value {
        let mut responses = Map::new();
        responses.insert(self.ok.0.to_string(), self.ok.1.clone());
        for status in self.statuses() {
            let reference = json!({"$ref": format!("#/components/responses/Error{status}")});
            responses.insert(status.to_string(), reference);
        }
        let default = if self.passthrough {
            json!({"description": "The package app's answer, or a runtime error"})
        } else {
            json!({"$ref": "#/components/responses/Error"})
        };
        responses.insert("default".into(), default);
        let mut op = json!({
            "operationId": self.id,
            "summary": self.summary,
            "tags": [self.tag],
            "responses": responses,
            "security": security(self.access, auth_off),
        });
        if !self.query.is_empty() {
            op["parameters"] = self
                .query
                .iter()
                .map(|(name, schema, about)| {
                    json!({"name": name, "in": "query", "required": false,
                           "schema": schema, "description": about})
                })
                .collect();
        }
        if let Some(body) = &self.body {
            op["requestBody"] = body.clone();
        }
        op
    }

    /// The error statuses named: the operation's own plus what access control adds.
    fn statuses(&self) -> Vec<u16> {
        if self.passthrough {
            return Vec::new();
        }
        let mut statuses = self.errors.clone();
        if self.access != Access::Open {
            statuses.extend([401, 403]);
        }
        if self.access == Access::Admin || self.method != "get" {
            statuses.push(403); // the site guard (foreign Host/Origin)
        }
        statuses.retain(|s| super::components::ERROR_STATUSES.contains(s));
        statuses.sort_unstable();
        statuses.dedup();
        statuses
    }
}

/// Open operations need nothing; the others take a bearer token or an API key, or
/// nothing at all when this server runs with auth off.
fn security(access: Access, auth_off: bool) -> Value {
    if access == Access::Open {
        return json!([{}]);
    }
    let mut options = vec![json!({"bearer": []}), json!({"apiKey": []})];
    if auth_off {
        options.push(json!({}));
    }
    Value::Array(options)
}

pub(crate) fn json_answer(description: &str, schema: Value) -> Value {
    json!({"description": description,
           "content": {"application/json": {"schema": schema}}})
}

/// `{name}` segments of a path template as required path parameters (strings, but for
/// the load ids of `/runtime/loads/{id}`, which are integers).
pub(crate) fn path_parameters(path: &str) -> Vec<Value> {
    let segments: Vec<&str> = path.split('/').collect();
    segments
        .iter()
        .enumerate()
        .filter_map(|(i, segment)| {
            let name = segment.strip_prefix('{')?.strip_suffix('}')?;
            let schema = if i > 0 && segments[i - 1] == "loads" {
                json!({"type": "integer", "minimum": 0})
            } else {
                json!({"type": "string", "minLength": 1})
            };
            let name = name.trim_start_matches('*');
            Some(json!({"name": name, "in": "path", "required": true, "schema": schema}))
        })
        .collect()
}

/// The invoke operation of one mounted agent, carrying its declared input schema.
pub(crate) fn agent_invoke(id: &str, description: &str, schema: Value) -> Op {
    let summary = if description.is_empty() {
        format!("Invoke {id}")
    } else {
        format!("Invoke {id}: {description}")
    };
    Op::new("post", &format!("invoke_{id}"), "mounted agents", &summary)
        .body(json!({"application/json": {"schema": schema}}))
        .ok(200, super::components::invoke_success())
        .errors(&[400, 404, 413, 422, 500, 502, 503, 504])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_templates_become_required_parameters() {
        let params = path_parameters("/runtime/packages/{name}/{version}");
        let names: Vec<&str> = params.iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["name", "version"]);
        assert!(path_parameters("/agents").is_empty());
        let load = path_parameters("/runtime/loads/{id}");
        assert_eq!(load[0]["schema"]["type"], "integer");
    }

    #[test]
    fn credentials_are_optional_only_when_auth_is_off() {
        let op = Op::new("get", "x", "t", "s").access(Access::Admin);
        assert_eq!(op.to_json(false)["security"].as_array().unwrap().len(), 2);
        assert_eq!(op.to_json(true)["security"][2], json!({}));
        assert!(op.to_json(false)["responses"]["401"].is_object());
        let open = Op::new("get", "y", "t", "s").access(Access::Open);
        assert!(open.to_json(false)["responses"].get("401").is_none());
    }
}
