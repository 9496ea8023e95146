//! `deploy/`: no container runtime runs here, so the files are checked as data. Every YAML file
//! parses; the Kubernetes manifests and the compose file have what a safe rollout needs; their
//! `VORGANG_*` variables are real settings with valid values (the binary's own `config check`
//! judges them, so a typo fails here as it would fail the start); the Dockerfile is multi-stage,
//! non-root and listens on 0.0.0.0:8080.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failed assertion

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

const BIN: &str = env!("CARGO_BIN_EXE_vorgang-server");

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// Every `.yaml`/`.yml` file under `dir`, recursively, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Every document of every YAML file under deploy/, by file.
fn documents() -> Vec<(PathBuf, Vec<Yaml>)> {
    yaml_files(&deploy_dir())
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let docs = YamlLoader::load_from_str(&text)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
            assert!(!docs.is_empty(), "{} is empty", path.display());
            (path, docs)
        })
        .collect()
}

/// The Kubernetes objects of deploy/k8s by `kind/name`.
fn k8s_objects() -> BTreeMap<String, Yaml> {
    let mut objects = BTreeMap::new();
    for (path, docs) in documents() {
        if !path.starts_with(deploy_dir().join("k8s")) {
            continue;
        }
        for doc in docs {
            let kind = doc["kind"].as_str().unwrap().to_owned();
            if kind == "Kustomization" {
                continue;
            }
            let name = doc["metadata"]["name"].as_str().unwrap().to_owned();
            assert!(doc["apiVersion"].as_str().is_some(), "{kind}/{name}");
            objects.insert(format!("{kind}/{name}"), doc);
        }
    }
    objects
}

fn string(yaml: &Yaml) -> String {
    match yaml {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// The string map at `yaml` (`data`, `stringData`, compose `environment`).
fn string_map(yaml: &Yaml) -> BTreeMap<String, String> {
    yaml.as_hash()
        .unwrap_or_else(|| panic!("not a map: {yaml:?}"))
        .iter()
        .map(|(k, v)| (string(k), string(v)))
        .collect()
}

/// Runs `config check` with exactly `env` (nothing inherited) and returns the settings it
/// prints; fails with its problems otherwise.
fn config_check(env: &BTreeMap<String, String>) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args(["config", "check"])
        .env_clear()
        .envs(env)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "config check refuses the manifest's environment:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Values the test gives the Secret's placeholders, by variable name: the names are the
/// manifest's, the values are not committed anywhere.
fn secret_value(name: &str) -> String {
    match name {
        "VORGANG_DATABASE_URL" => "postgres://vorgang:pw@postgres.example:5432/vorgang".to_owned(),
        "VORGANG_KEY_ENCRYPTION_KEY" => {
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32])
        }
        _ => "test-value".to_owned(),
    }
}

#[test]
fn every_yaml_file_under_deploy_parses() {
    let files = documents();
    let names: Vec<String> = files
        .iter()
        .map(|(p, _)| p.strip_prefix(deploy_dir()).unwrap().display().to_string())
        .collect();
    for expected in [
        "compose.yaml",
        "k8s/deployment.yaml",
        "k8s/service.yaml",
        "k8s/pdb.yaml",
        "k8s/hpa.yaml",
        "k8s/configmap.yaml",
        "k8s/secret.example.yaml",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
}

#[test]
fn the_kubernetes_deployment_probes_drains_and_runs_unprivileged() {
    let objects = k8s_objects();
    let deployment = &objects["Deployment/vorgang-server"];
    let spec = &deployment["spec"];
    assert!(spec["replicas"].as_i64().unwrap() >= 2);
    let pod_labels = &spec["template"]["metadata"]["labels"];
    assert_eq!(spec["selector"]["matchLabels"], *pod_labels);
    let pod = &spec["template"]["spec"];
    let grace = pod["terminationGracePeriodSeconds"].as_i64().unwrap();
    let containers = pod["containers"].as_vec().unwrap();
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    let pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_i64()
        .unwrap_or(0);
    assert!(
        grace > 30 + pre_stop,
        "grace {grace} s must exceed the preStop pause ({pre_stop} s) and the 30 s drain"
    );
    // Docker-link variables (`VORGANG_SERVER_SERVICE_HOST`, …) would fail the strict settings.
    assert_eq!(pod["enableServiceLinks"].as_bool(), Some(false));

    // Non-root, read-only, no privilege.
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    assert!(pod["securityContext"]["runAsUser"].as_i64().unwrap() > 0);
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(security["capabilities"]["drop"][0].as_str(), Some("ALL"));
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                !container["resources"][kind][resource].is_badvalue(),
                "resources.{kind}.{resource}"
            );
        }
    }

    // The probes reach the port the service listens on.
    let port = &container["ports"][0];
    assert_eq!(port["containerPort"].as_i64(), Some(8080));
    let port_name = port["name"].as_str().unwrap();
    for (probe, path) in [
        ("readinessProbe", "/health/ready"),
        ("livenessProbe", "/health/live"),
        ("startupProbe", "/health/live"),
    ] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"].as_str(), Some(path), "{probe}");
        assert!(
            get["port"].as_str() == Some(port_name) || get["port"].as_i64() == Some(8080),
            "{probe} port"
        );
    }

    // The environment: its own variables, the ConfigMap and the Secret it references (both
    // present in the manifests), every name a real setting.
    let mut env = BTreeMap::new();
    for var in container["env"].as_vec().unwrap() {
        env.insert(string(&var["name"]), string(&var["value"]));
    }
    assert_eq!(env["VORGANG_LISTEN"], "0.0.0.0:8080");
    let mut sources = Vec::new();
    for source in container["envFrom"].as_vec().unwrap() {
        if let Some(name) = source["configMapRef"]["name"].as_str() {
            env.extend(string_map(&objects[&format!("ConfigMap/{name}")]["data"]));
            sources.push("ConfigMap");
        }
        if let Some(name) = source["secretRef"]["name"].as_str() {
            let secret = &objects[&format!("Secret/{name}")];
            for name in string_map(&secret["stringData"]).into_keys() {
                let value = secret_value(&name);
                env.insert(name, value);
            }
            sources.push("Secret");
        }
    }
    assert_eq!(sources, ["ConfigMap", "Secret"]);
    let settings = config_check(&env);
    assert_eq!(settings["listen"], "0.0.0.0:8080");
    assert!(
        settings["database_url"]
            .as_str()
            .unwrap()
            .starts_with("postgres://"),
        "PostgreSQL, not the SQLite default: {settings}"
    );
    assert!(
        settings["issuer"].is_string(),
        "one issuer for all replicas"
    );
    assert_eq!(settings["key_encryption_key"], "********");
    assert!(settings["europace"]["base_url"].is_string());
}

#[test]
fn service_pdb_and_autoscaler_select_the_deployment() {
    let objects = k8s_objects();
    let deployment = &objects["Deployment/vorgang-server"];
    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let port_name = deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"]
        .as_str()
        .unwrap();

    let service = &objects["Service/vorgang-server"];
    assert_eq!(service["spec"]["selector"], *pod_labels);
    let target = &service["spec"]["ports"][0]["targetPort"];
    assert!(target.as_str() == Some(port_name) || target.as_i64() == Some(8080));

    let pdb = &objects["PodDisruptionBudget/vorgang-server"];
    assert_eq!(pdb["spec"]["selector"]["matchLabels"], *pod_labels);
    let min_available = pdb["spec"]["minAvailable"].as_i64().unwrap();
    assert!(min_available >= 1);

    let hpa = &objects["HorizontalPodAutoscaler/vorgang-server"];
    assert_eq!(hpa["apiVersion"].as_str(), Some("autoscaling/v2"));
    let target = &hpa["spec"]["scaleTargetRef"];
    assert_eq!(target["kind"].as_str(), Some("Deployment"));
    assert_eq!(target["name"].as_str(), Some("vorgang-server"));
    let min = hpa["spec"]["minReplicas"].as_i64().unwrap();
    assert!(min >= 2 && min > min_available, "a drain keeps one serving");
    assert!(hpa["spec"]["maxReplicas"].as_i64().unwrap() >= min);
}

/// `${NAME}`, `${NAME:-default}` and `${NAME:?message}` as compose interpolates them, with
/// `given` for the variables the operator exports.
fn interpolate(value: &str, given: &BTreeMap<&str, String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap() + start;
        let expression = &rest[start + 2..end];
        let (name, default) = match expression.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (expression.split(":?").next().unwrap(), None),
        };
        match (given.get(name), default) {
            (Some(value), _) => out.push_str(value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => panic!("{name} must be exported"),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn compose_runs_two_replicas_on_postgres_sharing_issuer_and_key() {
    let text = std::fs::read_to_string(deploy_dir().join("compose.yaml")).unwrap();
    let compose = &YamlLoader::load_from_str(&text).unwrap()[0];
    let services = &compose["services"];
    assert!(!services["postgres"]["healthcheck"].is_badvalue());

    let vorgang = &services["vorgang"];
    assert!(vorgang["deploy"]["replicas"].as_i64().unwrap() >= 2);
    assert_eq!(
        vorgang["build"]["dockerfile"].as_str(),
        Some("deploy/Dockerfile")
    );
    assert_eq!(
        vorgang["depends_on"]["postgres"]["condition"].as_str(),
        Some("service_healthy")
    );
    let grace = vorgang["stop_grace_period"].as_str().unwrap();
    assert!(
        grace.trim_end_matches('s').parse::<u32>().unwrap() > 30,
        "{grace}"
    );

    // One definition for every replica: one issuer, one key-encryption key, one database.
    let raw = string_map(&vorgang["environment"]);
    assert!(raw.contains_key("VORGANG_ISSUER"));
    assert!(raw.contains_key("VORGANG_KEY_ENCRYPTION_KEY"));
    let kek = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [3u8; 32]);
    let given = BTreeMap::from([("VORGANG_KEY_ENCRYPTION_KEY", kek)]);
    let env: BTreeMap<String, String> = raw
        .iter()
        .map(|(k, v)| (k.clone(), interpolate(v, &given)))
        .collect();
    let settings = config_check(&env);
    assert_eq!(settings["listen"], "0.0.0.0:8080");
    assert_eq!(
        settings["database_url"],
        "postgres://vorgang:********@postgres:5432/vorgang"
    );
    assert_eq!(settings["key_encryption_key"], "********");
    assert!(settings["issuer"].is_string());

    // The load balancer publishes the one port and proxies to the replicas.
    let balancer = &services["loadbalancer"];
    assert_eq!(balancer["ports"][0].as_str(), Some("8080:8080"));
    let nginx = std::fs::read_to_string(deploy_dir().join("nginx.conf")).unwrap();
    assert!(nginx.contains("server vorgang:8080;"), "{nginx}");
}

#[test]
fn the_dockerfile_is_multi_stage_non_root_and_listens_on_all_interfaces() {
    let text = std::fs::read_to_string(deploy_dir().join("Dockerfile")).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let froms: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    assert!(
        froms[0].starts_with("FROM rust:1.95") && froms[0].ends_with(" AS builder"),
        "{froms:?}"
    );
    assert!(
        froms[1].contains("distroless") || froms[1].contains("slim"),
        "{froms:?}"
    );
    assert!(
        text.contains("cargo build --release --locked -p vorgang-server"),
        "{text}"
    );
    assert!(lines.iter().any(|l| l.starts_with("COPY --from=builder")));
    // The last USER (the runtime's) is not root.
    let runtime = &lines[lines.iter().rposition(|l| l.starts_with("FROM ")).unwrap()..];
    let user = runtime
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER in the runtime stage");
    let uid = user.split(':').next().unwrap();
    assert!(uid != "root" && uid != "0", "{user}");
    assert!(runtime.contains(&"ENV VORGANG_LISTEN=0.0.0.0:8080"));
    assert!(runtime.contains(&"EXPOSE 8080"));
    assert!(
        std::fs::read_to_string(deploy_dir().join("Dockerfile.dockerignore"))
            .unwrap()
            .lines()
            .any(|l| l.trim() == "target/"),
        "the build context leaves target/ out"
    );
}
