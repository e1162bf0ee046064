//! Tags over the API and the dashboard, against a real node on SQLite and
//! MariaDB: made, renamed and refused by name and colour; put on monitors by
//! id or name with values, in the monitor's own write (an unknown tag
//! writes nothing); filtered by name or name:value; deleted everywhere.

use picket_testkit::api::Api;
use picket_testkit::db::backends;
use picket_testkit::node::spawn_node;
use serde_json::{Value, json};

#[tokio::test]
async fn tags_are_made_put_on_monitors_filtered_and_deleted_everywhere() {
    for t in backends().await {
        let label = t.label;
        let node = spawn_node(&t.url, "n1", &[]).await;
        let api = Api::new(node.addr);

        for (body, field) in [
            (json!({"name": "team"}), "color"),
            (json!({"name": "team", "color": "blue"}), "color"),
            (json!({"name": "a:b", "color": "#fff"}), "name"),
            (json!({"color": "#fff"}), "name"),
        ] {
            let (status, v) = api.post("/api/v1/tags", &body).await;
            assert_eq!(status, 400, "{label}: {body}");
            assert_eq!(v["errors"][0]["field"], field, "{label}: {v}");
        }
        let (status, team) = api
            .post("/api/v1/tags", &json!({"name": "team", "color": "#ABC"}))
            .await;
        assert_eq!(status, 201, "{label}: {team}");
        assert_eq!(team["data"]["color"], "#aabbcc");
        let team_id = team["data"]["id"].as_i64().unwrap();
        let (_, env) = api
            .post("/api/v1/tags", &json!({"name": "env", "color": "#2563eb"}))
            .await;
        let env_id = env["data"]["id"].as_i64().unwrap();
        let (status, dup) = api
            .post("/api/v1/tags", &json!({"name": "team", "color": "#000"}))
            .await;
        assert_eq!(
            (status, dup["errors"][0]["field"].as_str()),
            (400, Some("name")),
            "{label}"
        );

        // On monitors, by id or by name, with values.
        let mon = |name: &str, tags: Value| json!({"name": name, "type": "http", "url": "http://127.0.0.1:1/", "interval": 60, "tags": tags});
        let a = api
            .create_monitor(mon(
                "a",
                json!([{"tag_id": team_id, "value": "ops"}, {"name": "env", "value": "prod"}]),
            ))
            .await;
        let b = api
            .create_monitor(mon("b", json!([{"name": "team", "value": "web"}])))
            .await;
        let c = api.create_monitor(mon("c", json!([]))).await;
        let (status, v) = api
            .post("/api/v1/monitors", &mon("d", json!([{"name": "nope"}])))
            .await;
        assert_eq!(
            (status, v["errors"][0]["field"].as_str()),
            (400, Some("tags")),
            "{label}: {v}"
        );
        let (status, v) = api.post("/api/v1/monitors", &mon("d", json!("team"))).await;
        assert_eq!(
            (status, v["errors"][0]["field"].as_str()),
            (400, Some("tags")),
            "{label}: {v}"
        );
        let (_, all) = api.get("/api/v1/monitors").await;
        assert_eq!(
            all["data"].as_array().unwrap().len(),
            3,
            "{label}: nothing written for d"
        );

        let (_, one) = api.get(&format!("/api/v1/monitors/{a}")).await;
        let shown: Vec<(String, String)> = one["data"]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["name"].as_str().unwrap().to_owned(),
                    t["value"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("env".to_owned(), "prod".to_owned()),
                ("team".to_owned(), "ops".to_owned())
            ],
            "{label}"
        );

        let names = |v: &Value| -> Vec<String> {
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["name"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            names(&api.get("/api/v1/monitors?tag=team").await.1),
            ["a", "b"],
            "{label}"
        );
        assert_eq!(
            names(&api.get("/api/v1/monitors?tag=team:web").await.1),
            ["b"],
            "{label}"
        );
        assert_eq!(
            names(&api.get("/api/v1/monitors?tag=env").await.1),
            ["a"],
            "{label}"
        );

        // An update replaces the tags; leaving them out keeps them.
        let (status, _) = api
            .put(
                &format!("/api/v1/monitors/{c}"),
                &json!({"tags": [{"tag_id": env_id}]}),
            )
            .await;
        assert_eq!(status, 200, "{label}");
        let (status, _) = api
            .put(&format!("/api/v1/monitors/{b}"), &json!({"name": "b2"}))
            .await;
        assert_eq!(status, 200, "{label}");
        assert_eq!(
            names(&api.get("/api/v1/monitors?tag=env").await.1),
            ["a", "c"],
            "{label}"
        );
        assert_eq!(
            names(&api.get("/api/v1/monitors?tag=team:web").await.1),
            ["b2"],
            "{label}"
        );

        // Renamed, then deleted: off every monitor.
        let (status, v) = api
            .put(
                &format!("/api/v1/tags/{team_id}"),
                &json!({"name": "squad"}),
            )
            .await;
        assert_eq!(
            (status, v["data"]["color"].as_str()),
            (200, Some("#aabbcc")),
            "{label}"
        );
        assert_eq!(
            names(&api.get("/api/v1/monitors?tag=squad").await.1),
            ["a", "b2"],
            "{label}"
        );
        let (status, _) = api
            .send("DELETE", &format!("/api/v1/tags/{team_id}"), None)
            .await;
        assert_eq!(status, 200, "{label}");
        assert!(
            names(&api.get("/api/v1/monitors?tag=squad").await.1).is_empty(),
            "{label}"
        );
        let (_, one) = api.get(&format!("/api/v1/monitors/{a}")).await;
        assert_eq!(
            one["data"]["tags"].as_array().unwrap().len(),
            1,
            "{label}: env stays"
        );
        let (status, _) = api.get(&format!("/api/v1/tags/{team_id}")).await;
        assert_eq!(status, 404, "{label}");

        // Deleting a monitor takes its tags with it.
        api.send("DELETE", &format!("/api/v1/monitors/{a}"), None)
            .await;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM monitor_tag WHERE monitor_id = ?")
            .bind(a)
            .fetch_one(t.db.pool())
            .await
            .unwrap();
        assert_eq!(n, 0, "{label}");
    }
}
