//! What can be checked of `deploy/` without a container engine: the YAML
//! parses, every environment variable the files set is one the binaries read
//! (from their `--help`), the ones a member cannot run without are set, and the
//! example config files load.

use picket_shared::config::{NodeConfig, parse_with_file};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

const EXE: &str = env!("CARGO_BIN_EXE_picket-local");

/// Variables the files set for something other than Picket, and why.
const NOT_PICKET: &[&str] = &[
    "RUST_LOG",         // read by the tracing filter, not by clap
    "POD_NAMESPACE",    // only expanded into PICKET_NODE_HOST by Kubernetes
    "MARIADB_DATABASE", // the MariaDB image's own settings
    "MARIADB_USER",
    "MARIADB_PASSWORD",
    "MARIADB_RANDOM_ROOT_PASSWORD",
];

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// The `[env: NAME=]` names in a binary's `--help`.
fn env_in_help(role: &str) -> BTreeSet<String> {
    let out = Command::new(EXE).args([role, "--help"]).output().unwrap();
    assert!(out.status.success(), "{role} --help failed");
    let text = String::from_utf8(out.stdout).unwrap();
    text.split("[env: ")
        .skip(1)
        .map(|s| s.split(['=', ']']).next().unwrap().to_owned())
        .collect()
}

fn yaml_docs(path: &Path) -> Vec<serde_yaml_ng::Value> {
    use serde::Deserialize;
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| {
            serde_yaml_ng::Value::deserialize(d)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .collect()
}

/// Env names set in a compose service (merge keys resolved).
fn compose_env(doc: &serde_yaml_ng::Value, service: &str) -> BTreeSet<String> {
    let mut doc = doc.clone();
    doc.apply_merge().unwrap();
    let env = &doc["services"][service]["environment"];
    let mut env = env.clone();
    env.apply_merge().unwrap();
    env.as_mapping()
        .unwrap_or_else(|| panic!("{service} has an environment map"))
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect()
}

/// Env names set by `env: - name:` anywhere in a manifest.
fn k8s_env(v: &serde_yaml_ng::Value, out: &mut BTreeSet<String>) {
    match v {
        serde_yaml_ng::Value::Mapping(m) => {
            if let Some(serde_yaml_ng::Value::Sequence(items)) = m.get("env") {
                for i in items {
                    out.insert(i["name"].as_str().unwrap().to_owned());
                }
            }
            m.values().for_each(|v| k8s_env(v, out));
        }
        serde_yaml_ng::Value::Sequence(s) => s.iter().for_each(|v| k8s_env(v, out)),
        _ => {}
    }
}

fn env_file(path: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split('=').next().unwrap().trim().to_owned())
        .collect()
}

fn assert_read_by(set: &BTreeSet<String>, help: &BTreeSet<String>, what: &str) {
    for name in set {
        if NOT_PICKET.contains(&name.as_str()) {
            continue;
        }
        assert!(
            help.contains(name),
            "{what} sets {name}, which the binary does not read"
        );
    }
}

fn assert_sets(set: &BTreeSet<String>, required: &[&str], what: &str) {
    for r in required {
        assert!(set.contains(*r), "{what} does not set {r}");
    }
}

const NODE_REQUIRED: &[&str] = &[
    "DATABASE_URL",
    "PICKET_NODE_ID",
    "PICKET_NODE_HOST",
    "PICKET_API_TOKEN",
];
const LB_REQUIRED: &[&str] = &["DATABASE_URL", "PICKET_API_TOKEN"];

#[test]
fn compose_sets_only_variables_the_binaries_read() {
    let (node_help, lb_help) = (env_in_help("__node"), env_in_help("__lb"));
    let docs = yaml_docs(&deploy().join("docker-compose.yml"));
    let compose = &docs[0];
    for n in ["picket-node1", "picket-node2", "picket-node3"] {
        let env = compose_env(compose, n);
        assert_read_by(&env, &node_help, n);
        assert_sets(&env, NODE_REQUIRED, n);
    }
    let env = compose_env(compose, "picket-lb");
    assert_read_by(&env, &lb_help, "picket-lb");
    assert_sets(&env, LB_REQUIRED, "picket-lb");
    assert_eq!(
        compose["services"]["picket-lb"]["ports"][0].as_str(),
        Some("8084:8084")
    );
    assert!(compose["services"]["mariadb"]["healthcheck"].is_mapping());
}

#[test]
fn kubernetes_manifests_parse_and_set_what_the_binaries_read() {
    let (node_help, lb_help) = (env_in_help("__node"), env_in_help("__lb"));
    let k = deploy().join("kubernetes");
    let nodes = yaml_docs(&k.join("nodes.yaml"));
    assert!(nodes.iter().any(|d| d["kind"] == "StatefulSet"));
    assert!(
        nodes
            .iter()
            .any(|d| d["kind"] == "Service" && d["spec"]["clusterIP"] == "None")
    );
    let mut env = BTreeSet::new();
    nodes.iter().for_each(|d| k8s_env(d, &mut env));
    assert_read_by(&env, &node_help, "kubernetes/nodes.yaml");
    assert_sets(&env, NODE_REQUIRED, "kubernetes/nodes.yaml");

    let lb = yaml_docs(&k.join("lb.yaml"));
    assert!(lb.iter().any(|d| d["kind"] == "Deployment"));
    let mut env = BTreeSet::new();
    lb.iter().for_each(|d| k8s_env(d, &mut env));
    assert_read_by(&env, &lb_help, "kubernetes/lb.yaml");
    assert_sets(&env, LB_REQUIRED, "kubernetes/lb.yaml");

    let secret = yaml_docs(&k.join("secret.yaml"));
    let keys: BTreeSet<String> = secret[0]["stringData"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["DATABASE_URL".to_owned(), "PICKET_API_TOKEN".to_owned()])
    );
}

#[test]
fn systemd_env_files_and_example_configs_are_valid() {
    let (node_help, lb_help) = (env_in_help("__node"), env_in_help("__lb"));
    let s = deploy().join("systemd");
    let node = env_file(&s.join("node.env.example"));
    assert_read_by(&node, &node_help, "node.env.example");
    assert_sets(&node, NODE_REQUIRED, "node.env.example");
    let lb = env_file(&s.join("lb.env.example"));
    assert_read_by(&lb, &lb_help, "lb.env.example");
    assert_sets(&lb, LB_REQUIRED, "lb.env.example");

    let args = |file: &str| -> Vec<OsString> {
        ["x", "--config", deploy().join(file).to_str().unwrap()]
            .into_iter()
            .map(OsString::from)
            .collect()
    };
    let n: NodeConfig = parse_with_file(args("picket-node.example.toml")).unwrap();
    n.validate().unwrap();
    assert_eq!(n.node_id(), "node1");
    let l: picket_lb::config::LbConfig = parse_with_file(args("picket-lb.example.toml")).unwrap();
    l.validate().unwrap();
}

#[test]
fn dockerfile_builds_both_binaries_into_a_non_root_image_with_a_healthcheck() {
    let text = std::fs::read_to_string(deploy().join("Dockerfile")).unwrap();
    for needle in [
        "AS build",
        "cmake",
        "-p picket-node -p picket-lb",
        "ca-certificates",
        "USER picket",
        "HEALTHCHECK",
    ] {
        assert!(text.contains(needle), "Dockerfile lacks {needle}");
    }
}
