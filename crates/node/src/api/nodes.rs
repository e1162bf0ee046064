//! `/api/v1/nodes*`: the cluster's node registry.

use super::monitors::monitor_json;
use super::{ApiError, ApiResult, AppState, JsonBody, ok};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use picket_shared::NodeId;
use picket_shared::addr::check_host_port;
use picket_shared::model::Node;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn node_json(n: &Node, counts: &BTreeMap<NodeId, usize>) -> Value {
    let mut v = serde_json::to_value(n).unwrap_or_else(|_| json!({}));
    v["monitor_count"] = json!(counts.get(&n.node_id).copied().unwrap_or(0));
    v
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeInput {
    node_id: Option<String>,
    #[serde(alias = "nodeName", alias = "name")]
    node_name: Option<String>,
    host: Option<String>,
}

fn parse_input(body: Value) -> Result<NodeInput, ApiError> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        ApiError::field(StatusCode::BAD_REQUEST, &field, e.into_inner().to_string())
    })
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

pub async fn list(State(st): State<AppState>) -> ApiResult {
    let counts = st.0.db.owner_counts().await?;
    let nodes = st.0.db.nodes().await?;
    ok(
        "",
        nodes
            .iter()
            .map(|n| node_json(n, &counts))
            .collect::<Vec<_>>(),
    )
}

pub async fn create(State(st): State<AppState>, JsonBody(body): JsonBody) -> ApiResult {
    let input = parse_input(body)?;
    let mut errors = Vec::new();
    let id = input.node_id.unwrap_or_default();
    if !valid_id(&id) {
        errors.push(picket_shared::monitor::FieldError::new(
            "node_id",
            "is required: 1-64 characters of letters, digits, '-', '_' or '.'",
        ));
    }
    let host = input.host.unwrap_or_default();
    if let Err(msg) = check_host_port(&host) {
        errors.push(picket_shared::monitor::FieldError::new("host", msg));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let name = input.node_name.unwrap_or_else(|| id.clone());
    let node = st.0.db.create_node(&NodeId(id), &name, &host).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"ok": true, "msg": "Added Successfully.", "data": node_json(&node, &BTreeMap::new())})),
    )
        .into_response())
}

async fn load(st: &AppState, id: &str) -> Result<Node, ApiError> {
    st.0.db
        .node(&NodeId::from(id))
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("node {id} not found")))
}

pub async fn get_one(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let node = load(&st, &id).await?;
    let counts = st.0.db.owner_counts().await?;
    ok("", node_json(&node, &counts))
}

pub async fn update(
    State(st): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let input = parse_input(body)?;
    if input.node_id.as_deref().is_some_and(|n| n != id) {
        return Err(ApiError::field(
            StatusCode::BAD_REQUEST,
            "node_id",
            "cannot be changed",
        ));
    }
    if let Some(Err(msg)) = input.host.as_deref().map(check_host_port) {
        return Err(ApiError::field(StatusCode::BAD_REQUEST, "host", msg));
    }
    let node =
        st.0.db
            .update_node(
                &NodeId::from(id.as_str()),
                input.node_name.as_deref(),
                input.host.as_deref(),
            )
            .await?;
    let counts = st.0.db.owner_counts().await?;
    ok("Saved.", node_json(&node, &counts))
}

pub async fn delete(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult {
    st.0.db.delete_node(&NodeId::from(id.as_str())).await?;
    ok("Deleted Successfully.", json!({"node_id": id}))
}

pub async fn monitors(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let node = load(&st, &id).await?;
    let recs = st.0.db.monitors(Some(&node.node_id)).await?;
    ok("", recs.iter().map(monitor_json).collect::<Vec<_>>())
}
