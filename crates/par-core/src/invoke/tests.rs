//! Unit tests of `invoke.rs`.

use super::*;

#[test]
fn main_agent_body_passes_unchanged() {
    let body = br#" {"a": true, "b": null} "#;
    assert_eq!(
        &*handler_payload(body, None).unwrap(),
        br#"{"a": true, "b": null}"#
    );
}

#[test]
fn sub_agent_body_gets_action() {
    let out = handler_payload(br#"{"action":"x","t":1}"#, Some("sub")).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["action"], "sub");
    assert_eq!(v["t"], 1);
}

#[test]
fn the_dispatched_action_is_found_only_as_a_top_level_string() {
    assert_eq!(
        dispatched_action(br#"{"a":1,"action":"secret-sum"}"#).as_deref(),
        Some("secret-sum")
    );
    assert_eq!(dispatched_action(br#"{"x":{"action":"y"}}"#), None);
    assert_eq!(dispatched_action(br#"{"action":3}"#), None);
    assert_eq!(dispatched_action(br#"{"text":"no action here"}"#), None);
    assert_eq!(dispatched_action(b"{"), None);
}

#[test]
fn json_python_cannot_parse_is_the_callers_error() {
    let deep = format!(
        "{{\"a\":{}{}}}",
        "[".repeat(MAX_JSON_DEPTH),
        "]".repeat(MAX_JSON_DEPTH)
    );
    let err = handler_payload(deep.as_bytes(), None).unwrap_err();
    assert_eq!(err.code, ErrorCode::BadRequest);
    assert!(err.message.contains("nests deeper"), "{}", err.message);
    let fits = format!(
        "{{\"a\":{}{}}}",
        "[".repeat(MAX_JSON_DEPTH - 1),
        "]".repeat(MAX_JSON_DEPTH - 1)
    );
    assert!(handler_payload(fits.as_bytes(), None).is_ok());
    let long = format!("{{\"n\":{}}}", "9".repeat(MAX_NUMBER_CHARS + 1));
    let err = handler_payload(long.as_bytes(), None).unwrap_err();
    assert!(err.message.contains("number"), "{}", err.message);
    let ok = format!("{{\"n\":{}}}", "9".repeat(MAX_NUMBER_CHARS));
    assert!(handler_payload(ok.as_bytes(), None).is_ok());
    // Brackets and digits inside strings are text, not structure.
    let text = format!("{{\"s\":\"{}{}\\\"\"}}", "[".repeat(500), "1".repeat(5000));
    assert!(handler_payload(text.as_bytes(), None).is_ok(), "{text}");
}

#[test]
fn non_objects_are_bad_requests() {
    for body in [&b"[1]"[..], b"42", b"\"s\"", b"{", b""] {
        let err = handler_payload(body, None).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadRequest, "{body:?}");
    }
}

#[test]
fn usage_reports_merge_numbers_and_replace_the_rest() {
    let mut usage = serde_json::Map::new();
    merge_usage(
        &mut usage,
        br#"{"tokens_in": 10, "model": "a", "cost": 0.5}"#,
    );
    merge_usage(
        &mut usage,
        br#"{"tokens_in": 5, "model": "b", "cost": 0.25}"#,
    );
    merge_usage(&mut usage, b"[1]");
    assert_eq!(
        serde_json::Value::Object(usage),
        serde_json::json!({"tokens_in": 15, "model": "b", "cost": 0.75})
    );
}

#[test]
fn items_join_into_an_array() {
    let items = [Bytes::from_static(b"1"), Bytes::from_static(b"{\"a\":2}")];
    assert_eq!(&json_array(&items)[..], b"[1,{\"a\":2}]");
    assert_eq!(&json_array(&[])[..], b"[]");
}

#[test]
fn a_sub_agent_body_must_be_an_object_too() {
    for body in [&b"[1]"[..], b"null", b"not json"] {
        let err = handler_payload(body, Some("sub")).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadRequest, "{body:?}");
    }
    assert!(handler_payload(b"[1]", None)
        .unwrap_err()
        .message
        .contains("JSON object"));
}

#[test]
fn the_sub_agent_name_overrides_an_action_the_caller_sent() {
    let out = handler_payload(br#"{"action":"admin-only"}"#, Some("public-sub")).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v, serde_json::json!({"action": "public-sub"}));
}

#[test]
fn an_action_word_inside_values_is_no_dispatch() {
    assert_eq!(
        dispatched_action(br#"{"note":"action","x":{"action":"y"}}"#),
        None
    );
    assert_eq!(
        dispatched_action(br#"{"x":{"action":"y"},"action":"top"}"#).as_deref(),
        Some("top")
    );
}

#[test]
fn integer_and_float_usage_add_up_as_a_float() {
    let mut usage = serde_json::Map::new();
    merge_usage(&mut usage, br#"{"cost": 1}"#);
    merge_usage(&mut usage, br#"{"cost": 0.5}"#);
    assert_eq!(usage["cost"], serde_json::json!(1.5));
}

#[test]
fn usage_counts_past_the_integer_range_still_add_up() {
    let mut usage = serde_json::Map::new();
    merge_usage(
        &mut usage,
        format!(r#"{{"tokens": {}}}"#, i64::MAX).as_bytes(),
    );
    merge_usage(&mut usage, br#"{"tokens": 1}"#);
    let total = usage["tokens"].as_f64().unwrap();
    assert!(total >= i64::MAX as f64, "lost the earlier count: {total}");
}

#[test]
fn an_agent_cannot_report_the_runtimes_own_usage_keys() {
    let mut usage = serde_json::Map::new();
    merge_usage(&mut usage, br#"{"par.egress_bytes_up": 9, "tokens": 2}"#);
    assert_eq!(
        serde_json::Value::Object(usage),
        serde_json::json!({"tokens": 2})
    );
}

#[test]
fn a_usage_value_that_stops_being_a_number_is_replaced() {
    let mut usage = serde_json::Map::new();
    merge_usage(&mut usage, br#"{"model": 3}"#);
    merge_usage(&mut usage, br#"{"model": "gpt"}"#);
    merge_usage(&mut usage, br#"{"model": 2}"#);
    assert_eq!(usage["model"], serde_json::json!(2));
}

#[test]
fn a_nested_call_carries_the_request_and_extends_the_chain() {
    let outer = CallMeta {
        request_id: "req-1".into(),
        ..CallMeta::default()
    };
    assert_eq!(outer.caller_agent(), None);
    let inner = outer.nested("a").nested("b");
    assert_eq!(inner.request_id, "req-1");
    assert_eq!(inner.chain, ["a", "b"]);
    assert_eq!(inner.caller_agent(), Some("b"));
    assert_eq!(inner.trace.trace_id, outer.trace.trace_id);
    assert_ne!(inner.trace.span_id, outer.trace.span_id);
}

#[test]
fn worker_failures_map_to_contract_codes() {
    let error = |code: Option<&str>| {
        Reply::Error(par_worker::AgentFailure {
            kind: "ValueError".into(),
            message: "bad input".into(),
            code: code.map(str::to_string),
        })
    };
    let raised = failure(error(None));
    assert_eq!(raised.code, ErrorCode::AgentError);
    assert_eq!(raised.message, "ValueError: bad input");
    assert_eq!(
        failure(error(Some("result_too_large"))).code,
        ErrorCode::ResultTooLarge
    );
    assert_eq!(failure(Reply::Crashed).code, ErrorCode::WorkerCrashed);
    let oversized = failure(Reply::Oversized { len: 20, limit: 10 });
    assert_eq!(oversized.code, ErrorCode::ResultTooLarge);
    assert!(oversized.message.contains("20") && oversized.message.contains("10"));
    assert_eq!(failure(Reply::End).code, ErrorCode::Internal);
}

#[test]
fn a_timeout_names_its_limit() {
    let err = timeout_error(Duration::from_millis(1500));
    assert_eq!(err.code, ErrorCode::Timeout);
    assert_eq!(err.message, "the call did not finish within 1.5 s");
}
