//! Issue #19's `observability/` folder (Grafana provisioning and dashboards, alert rules, the
//! OpenTelemetry Collector config), checked against itself and against running nodes:
//!
//! - the files agree: each parses; each dashboard has a uid, a title, the `$node` variable, and
//!   names only data sources `banter.yaml` provisions (uid and type); the data sources link to each
//!   other (Tempo → Loki and Prometheus, Loki → Tempo, exemplars → Tempo); each alert has `for`, a
//!   severity and its annotations; the collector's pipelines name only components it defines;
//! - `promtool check rules` passes on the alert rules, and on every Prometheus query of the
//!   dashboards (each made a recording rule, the Grafana variables filled in);
//! - on the full stack (MariaDB, a tansu broker, two cluster members exporting OTLP to a sink of
//!   the test), after one message delivered across nodes and a SEND refused,
//!   `promtool check metrics` passes on each node's `/metrics`, and every metric the dashboards,
//!   rules and data sources name is a family there (`_bucket` needs a histogram; `_sum`, `_count`
//!   a histogram or summary): a node exports every series at zero from the start, so that a rate
//!   or an alert has one before the first event.
//!
//! Tools: `promtool` (`BANTER_PROMTOOL_BIN`, else `$HOME/.cache/banter/tools/bin/promtool` where
//! `scripts/promtool.sh install` puts it; missing, the tests skip, or fail under
//! `BANTER_REQUIRE_KAFKA=1` as for the broker), and PyYAML from the test venv (`BANTER_PYTHON`;
//! schemathesis depends on it) to read YAML: the workspace has no YAML crate.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use banter_tests::kafka::REQUIRE_KAFKA_VAR;
use banter_tests::stomp::room_dest;
use banter_tests::{Node, Otlp, StompClient, eventually, unique};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;

use super::durable::support::{check, prerequisites};
use super::third_party::{PYTHON_VAR, REQUIRE_VAR as REQUIRE_PY_VAR, python};

/// Variable naming the promtool binary.
const PROMTOOL_VAR: &str = "BANTER_PROMTOOL_BIN";
const DATASOURCES: &str = "grafana/provisioning/datasources/banter.yaml";
const DASHBOARD_PROVIDER: &str = "grafana/provisioning/dashboards/banter.yaml";
const DASHBOARDS: &str = "grafana/dashboards";
const RULES: &str = "prometheus/rules/banter.yml";
const COLLECTOR: &str = "collector/otelcol.yaml";
/// The data sources, uid → type.
const PROVISIONED: [(&str, &str); 3] = [
    ("loki", "loki"),
    ("prometheus", "prometheus"),
    ("tempo", "tempo"),
];
/// The Loki derived field that finds a trace id in a JSON log line.
const TRACE_ID_REGEX: &str = r#""trace_id":"(\w+)""#;
/// The links between the data sources: from a data source, at a JSON pointer in its `jsonData`,
/// the value wanted.
const LINKS: [(&str, &str, &str); 5] = [
    ("tempo", "/tracesToLogsV2/datasourceUid", "loki"),
    ("tempo", "/tracesToMetrics/datasourceUid", "prometheus"),
    ("loki", "/derivedFields/0/datasourceUid", "tempo"),
    ("loki", "/derivedFields/0/matcherRegex", TRACE_ID_REGEX),
    (
        "prometheus",
        "/exemplarTraceIdDestinations/0/datasourceUid",
        "tempo",
    ),
];

/// Returns the path of `rel` inside `observability/`.
fn observability(rel: &str) -> PathBuf {
    banter_tests::util::manifest_dir()
        .join("../observability")
        .join(rel)
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("failed to read {}", path.display()))
}

/// Returns `problems`, each prefixed with the file it is in.
fn prefixed(file: &str, problems: Vec<String>) -> Vec<String> {
    problems
        .into_iter()
        .map(|p| format!("{file}: {p}"))
        .collect()
}

/// Returns the string `v` holds, empty when it holds none.
fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// Returns `found`, or `None` after a skip notice; panics when it is `None` and `require` is `1`.
fn tool_or_skip(test: &str, found: Option<PathBuf>, require: &str, what: &str) -> Option<PathBuf> {
    if found.is_none() {
        if std::env::var(require).as_deref() == Ok("1") {
            panic!("{test}: {what} is missing but {require}=1");
        }
        eprintln!("SKIPPED {test}: {what} is missing");
    }
    found
}

/// Returns the promtool binary (see the module's doc), or `None` after a skip notice.
fn promtool_or_skip(test: &str) -> Option<PathBuf> {
    let bin = match std::env::var_os(PROMTOOL_VAR) {
        Some(bin) if !bin.is_empty() => Some(PathBuf::from(bin)),
        _ => std::env::var_os("HOME")
            .map(|home| PathBuf::from(home).join(".cache/banter/tools/bin/promtool")),
    };
    let what = format!("promtool ({PROMTOOL_VAR}, or scripts/promtool.sh install)");
    tool_or_skip(test, bin.filter(|b| b.is_file()), REQUIRE_KAFKA_VAR, &what)
}

/// Returns the venv's Python, or `None` after a skip notice.
fn python_or_skip(test: &str) -> Option<PathBuf> {
    let what = format!("the venv's Python ({PYTHON_VAR}; scripts/test.sh prepares it)");
    tool_or_skip(test, python(), REQUIRE_PY_VAR, &what)
}

/// Runs `program` with `args` and `stdin`; returns its stdout, or fails with its output.
async fn run(program: &Path, args: &[&OsStr], stdin: &str) -> Result<String> {
    let what = format!("{} {args:?}", program.display());
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("failed to run {what}"))?;
    let mut pipe = child.stdin.take().context("no stdin")?;
    pipe.write_all(stdin.as_bytes()).await?;
    drop(pipe);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .with_context(|| format!("{what} did not finish within 60 s"))??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}{stderr}",
        out.status
    );
    Ok(stdout.into_owned())
}

/// Parses YAML files with the venv's PyYAML; returns each as JSON.
async fn load_yaml(python: &Path, files: &[PathBuf]) -> Result<Vec<Value>> {
    const SCRIPT: &str = "import json, sys, yaml\n\
        json.dump([yaml.safe_load(open(p, encoding='utf-8')) for p in sys.argv[1:]], sys.stdout)";
    let mut args: Vec<&OsStr> = vec!["-c".as_ref(), SCRIPT.as_ref()];
    args.extend(files.iter().map(|f| f.as_os_str()));
    let out = run(python, &args, "")
        .await
        .context("failed to parse the YAML files")?;
    serde_json::from_str(&out).context("PyYAML's JSON")
}

/// Returns every dashboard: its file name and its JSON.
fn dashboards() -> Result<Vec<(String, Value)>> {
    let dir = observability(DASHBOARDS);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("failed to list {dir:?}"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let name = name.into_owned();
            let json = serde_json::from_str(&read(&path)?).with_context(|| name.clone())?;
            files.push((name, json));
        }
    }
    ensure!(!files.is_empty(), "no dashboard in {}", dir.display());
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

/// Calls `f` on every object in `value` that has key `key`, with that key's value.
fn each_keyed<'a>(value: &'a Value, key: &str, f: &mut impl FnMut(&'a Value, &'a Value)) {
    match value {
        Value::Object(map) => {
            if let Some(v) = map.get(key) {
                f(value, v);
            }
            map.values().for_each(|v| each_keyed(v, key, f));
        }
        Value::Array(items) => items.iter().for_each(|v| each_keyed(v, key, f)),
        _ => {}
    }
}

/// Every panel of a dashboard, those inside rows included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    each_keyed(dashboard, "gridPos", &mut |panel, _| out.push(panel));
    out
}

/// The PromQL of a dashboard's Prometheus targets.
fn prometheus_exprs(dashboard: &Value) -> Vec<String> {
    let mut exprs = Vec::new();
    for panel in panels(dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if target["datasource"]["uid"] == "prometheus" {
                exprs.push(text(&target["expr"]).to_owned());
            }
        }
    }
    exprs
}

/// Checks a dashboard on its own and against the provisioned data sources.
fn check_dashboard(file: &str, json: &Value, provisioned: &BTreeMap<&str, &str>) -> Vec<String> {
    let mut problems = Vec::new();
    let uid = text(&json["uid"]);
    if uid.is_empty() || uid.len() > 40 || text(&json["title"]).is_empty() {
        problems.push(format!("uid {uid:?} (1 to 40 characters) or no title"));
    }
    let variables = json["templating"]["list"].as_array();
    if !variables.into_iter().flatten().any(|v| v["name"] == "node") {
        problems.push("no $node template variable".to_owned());
    }
    each_keyed(json, "datasource", &mut |owner, ds| {
        let owner = ["title", "name", "refId"]
            .iter()
            .map(|k| text(&owner[*k]))
            .find(|t| !t.is_empty())
            .unwrap_or("?");
        if provisioned.get(text(&ds["uid"])) != Some(&text(&ds["type"])) {
            problems.push(format!("{owner:?} names data source {ds}, not provisioned"));
        }
    });
    let mut ids = BTreeSet::new();
    for panel in panels(json) {
        let title = text(&panel["title"]);
        if !ids.insert(panel["id"].as_u64()) {
            problems.push(format!("{title:?}: missing or repeated panel id"));
        }
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = text(&target["expr"]);
            if target["datasource"]["uid"] == "prometheus" && !expr.contains("$node") {
                problems.push(format!("{title:?}: query not filtered by $node: {expr}"));
            }
        }
    }
    prefixed(file, problems)
}

/// Checks the data sources file: the three uids, the links between them, and the `$` escapes.
fn check_datasources(ds: &Value, raw: &str) -> Vec<String> {
    let list = ds["datasources"].as_array().cloned().unwrap_or_default();
    let mut found: Vec<_> = list
        .iter()
        .map(|d| (text(&d["uid"]), text(&d["type"])))
        .collect();
    found.sort();
    let mut problems = Vec::new();
    if found != PROVISIONED {
        problems.push(format!("data sources {found:?}, wanted {PROVISIONED:?}"));
    }
    let data = |uid: &str| {
        list.iter()
            .find(|d| d["uid"] == uid)
            .map(|d| &d["jsonData"])
    };
    for (from, at, to) in LINKS {
        if data(from).and_then(|d| d.pointer(at)?.as_str()) != Some(to) {
            problems.push(format!("{from}: {at} is not {to:?}"));
        }
    }
    each_keyed(ds, "datasourceUid", &mut |_, uid| {
        if !PROVISIONED.iter().any(|(u, _)| uid == u) {
            problems.push(format!("a link to data source {uid}, not provisioned"));
        }
    });
    // Grafana expands $VAR and ${VAR} in provisioning files: a `$` for Grafana itself is `$$`.
    if raw.replace("$$", "").contains('$') {
        problems.push("a `$` not written `$$`: Grafana expands it as a variable".to_owned());
    }
    prefixed(DATASOURCES, problems)
}

/// Checks the alert rules beyond promtool: group `banter`, and on each alert `for`, a severity
/// and both annotations.
fn check_rules(rules: &Value) -> Vec<String> {
    let groups = rules["groups"].as_array().into_iter().flatten();
    let mut problems = Vec::new();
    if !groups.clone().any(|g| g["name"] == "banter") {
        problems.push("no group `banter`".to_owned());
    }
    for rule in groups.flat_map(|g| g["rules"].as_array().into_iter().flatten()) {
        let name = text(&rule["alert"]);
        let severity = text(&rule["labels"]["severity"]);
        if text(&rule["for"]).is_empty() || !["critical", "warning"].contains(&severity) {
            problems.push(format!(
                "{name:?}: no `for:`, or severity not critical/warning"
            ));
        }
        for annotation in ["summary", "description"] {
            if text(&rule["annotations"][annotation]).is_empty() {
                problems.push(format!("{name:?}: no {annotation} annotation"));
            }
        }
    }
    prefixed(RULES, problems)
}

/// Checks the collector: a pipeline per signal, each naming only components it defines, with
/// `memory_limiter` first.
fn check_collector(config: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let pipelines = config["service"]["pipelines"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for signal in ["traces", "metrics", "logs"] {
        if !pipelines.contains_key(signal) {
            problems.push(format!("no {signal} pipeline"));
        }
    }
    for (name, pipeline) in &pipelines {
        for kind in ["receivers", "processors", "exporters"] {
            for component in pipeline[kind].as_array().into_iter().flatten() {
                if config[kind].get(text(component)).is_none() {
                    problems.push(format!("pipeline {name}: {kind} {component} undefined"));
                }
            }
        }
        if pipeline["processors"][0] != "memory_limiter" {
            problems.push(format!("pipeline {name}: memory_limiter must come first"));
        }
    }
    prefixed(COLLECTOR, problems)
}

#[tokio::test]
async fn the_provisioning_the_dashboards_and_the_rules_agree() {
    let test = "the_provisioning_the_dashboards_and_the_rules_agree";
    let Some(python) = python_or_skip(test) else {
        return;
    };
    check(files_agree(&python).await);
}

async fn files_agree(python: &Path) -> Result<()> {
    let files = [DATASOURCES, DASHBOARD_PROVIDER, RULES, COLLECTOR].map(observability);
    let [datasources, provider, rules, collector]: [Value; 4] = load_yaml(python, &files)
        .await?
        .try_into()
        .map_err(|v: Vec<Value>| anyhow::anyhow!("{} YAML documents", v.len()))?;
    let mut problems = check_datasources(&datasources, &read(&files[0])?);
    problems.extend(check_rules(&rules));
    problems.extend(check_collector(&collector));
    let path = text(&provider["providers"][0]["options"]["path"]);
    if provider["providers"][0]["type"] != "file" || !path.starts_with('/') {
        let problem = format!("{DASHBOARD_PROVIDER}: not a file provider, absolute path");
        problems.push(problem);
    }
    if !read(&observability("README.md"))?.contains(path) {
        let problem = format!("observability/README.md does not show the mount {path}");
        problems.push(problem);
    }
    let provisioned = BTreeMap::from(PROVISIONED);
    let (mut uids, mut titles) = (BTreeSet::new(), BTreeSet::new());
    let dashboards = dashboards()?;
    for (file, json) in &dashboards {
        problems.extend(check_dashboard(file, json, &provisioned));
        if !uids.insert(json["uid"].to_string()) || !titles.insert(json["title"].to_string()) {
            problems.push(format!("{file}: the uid or title of another dashboard"));
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    let count = dashboards.len();
    eprintln!("{count} dashboards and the provisioning, rules and collector agree");
    Ok(())
}

/// Fills in the Grafana variables of a dashboard query to make plain PromQL.
fn plain_promql(expr: &str) -> Result<String> {
    let promql = expr
        .replace("$node", ".*")
        .replace("$__rate_interval", "1m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h");
    ensure!(!promql.contains('$'), "a Grafana variable left in {expr}");
    Ok(promql)
}

#[tokio::test]
async fn the_alert_rules_and_every_dashboard_query_pass_promtool() {
    let test = "the_alert_rules_and_every_dashboard_query_pass_promtool";
    let Some(promtool) = promtool_or_skip(test) else {
        return;
    };
    check(rules_and_queries(&promtool).await);
}

async fn rules_and_queries(promtool: &Path) -> Result<()> {
    let rules = observability(RULES);
    let args = ["check".as_ref(), "rules".as_ref(), rules.as_os_str()];
    let out = run(promtool, &args, "")
        .await
        .context("promtool check rules on the alert rules")?;
    eprintln!("{}", out.trim());

    // Each dashboard query as a recording rule, which promtool parses (JSON is YAML).
    let mut records = Vec::new();
    for (file, json) in dashboards()? {
        let file = file.trim_end_matches(".json").replace('-', "_");
        for (i, expr) in prometheus_exprs(&json).iter().enumerate() {
            records.push(
                json!({"record": format!("dashboard:{file}:{i}"), "expr": plain_promql(expr)?}),
            );
        }
    }
    let doc = tempfile::Builder::new().suffix(".yml").tempfile()?;
    let groups = json!({"groups": [{"name": "dashboards", "rules": records}]});
    std::fs::write(doc.path(), groups.to_string())?;
    let args = ["check".as_ref(), "rules".as_ref(), doc.path().as_os_str()];
    let out = run(promtool, &args, "").await.context(
        "promtool check rules on the dashboards' queries (dashboard:<file>:<n>: the nth)",
    )?;
    eprintln!("the dashboards' queries: {}", out.trim());
    Ok(())
}

/// Returns every metric name in `text`: the words `banter_…` and `process_…` (`[a-z0-9_]+`).
fn metric_names(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut names = BTreeSet::new();
    for (start, _) in text
        .match_indices("banter_")
        .chain(text.match_indices("process_"))
    {
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            continue;
        }
        let len = bytes[start..]
            .iter()
            .take_while(|&&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            .count();
        names.insert(text[start..start + len].to_owned());
    }
    names
}

/// Every metric name the dashboards (queries and variables), the rules and the data sources use.
fn used_metric_names() -> Result<BTreeSet<String>> {
    let mut text = read(&observability(RULES))? + &read(&observability(DATASOURCES))?;
    for (_, json) in dashboards()? {
        text += &prometheus_exprs(&json).join("\n");
        each_keyed(&json["templating"], "definition", &mut |_, d| {
            text += d.as_str().unwrap_or_default()
        });
    }
    Ok(metric_names(&text))
}

/// The metric families of scrapes: name → type (`# TYPE` lines).
fn families(scrapes: &[String]) -> BTreeMap<String, String> {
    let lines = scrapes.iter().flat_map(|s| s.lines());
    let types = lines.filter_map(|l| l.strip_prefix("# TYPE ")?.split_once(' '));
    types
        .map(|(name, kind)| (name.to_owned(), kind.trim().to_owned()))
        .collect()
}

/// Tells what is wrong with metric name `name` against the `families` of the scrapes, if
/// anything; `declared` is the source of `nodes/` and `actors/`.
fn problem(name: &str, families: &BTreeMap<String, String>, declared: &str) -> Option<String> {
    if families.contains_key(name) {
        return None;
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        let Some(base) = name.strip_suffix(suffix) else {
            continue;
        };
        return match families.get(base).map(String::as_str) {
            Some("histogram") => None,
            Some("summary") if suffix != "_bucket" => None,
            Some(kind) => Some(format!("{name}: {base} is a {kind}, not a histogram")),
            None => problem(base, families, declared),
        };
    }
    Some(if declared.contains(&format!("\"{name}\"")) {
        format!("{name} (declared in the code, but not exported at zero from the start)")
    } else {
        format!("{name} (not declared in nodes/ or actors/: not added yet, or misspelt)")
    })
}

/// Appends the Rust source under `dir` to `out`: the code (`nodes/`, `actors/`) declares each
/// metric name as a string constant.
fn node_sources(dir: &Path, out: &mut String) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("failed to list {dir:?}"))? {
        let path = entry?.path();
        if path.is_dir() {
            node_sources(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&read(&path)?);
        }
    }
    Ok(())
}

/// One message on its whole path (a room made on `a`, a member connected to `b`), and a SEND
/// refused to a non-member.
async fn traffic(a: &Node, b: &Node) -> Result<()> {
    let (api_a, api_b) = (a.api(), b.api());
    let alice = api_a.new_user("alice").await?;
    let room = api_a
        .create_room(&alice.token, &unique("observed"))
        .await?
        .id;
    let carol = api_b.new_user("carol").await?;
    api_b.join(&carol.token, room).await?;
    let dest = room_dest(room);
    let mut on_b = StompClient::connect(&b.ws_url(), &carol.token).await?;
    on_b.subscribe(&dest, "room", None).await?;
    let mut on_a = StompClient::connect(&a.ws_url(), &alice.token).await?;
    on_a.send_confirmed(&dest, "measured on every hop").await?;
    on_a.typing(room).await?;
    on_b.recv_message("room")
        .await
        .context("carol, on the other node, gets it")?;

    let bob = api_a.new_user("bob").await?;
    let mut stranger = StompClient::connect(&a.ws_url(), &bob.token).await?;
    stranger.send(&dest, "not a member", None).await?;
    let refused = stranger.expect_error().await;
    refused.context("a non-member's SEND is refused")?;
    Ok(())
}

async fn scrape(node: &Node) -> Result<String> {
    let api = node.api();
    let response = api.http().get(api.url("/metrics")).send().await?;
    Ok(response.error_for_status()?.text().await?)
}

#[tokio::test]
async fn a_cluster_node_exports_every_metric_the_dashboards_and_rules_use() {
    let test = "a_cluster_node_exports_every_metric_the_dashboards_and_rules_use";
    let Some(promtool) = promtool_or_skip(test) else {
        return;
    };
    let Some((mysql, broker)) = prerequisites(test).await else {
        return;
    };
    // The spans, metrics and logs go to a receiver: their exporters' metrics then exist too.
    let sink = check(Otlp::start().await);
    let member = |name| {
        check(super::cluster::member(name, &broker))
            .env("BANTER_TELEMETRY__OTLP_ENDPOINT", sink.url())
            .env("BANTER_TELEMETRY__OTLP_PROTOCOL", "http")
            .env("BANTER_TELEMETRY__SAMPLE_RATIO", 1)
    };
    let a = check(member("obs-a").mysql(&mysql).start().await);
    let b = check(member("obs-b").same_database_as(&a).start().await);
    a.check(super::cluster::settled(&[&a, &b], Duration::from_secs(30)).await);
    a.check(traffic(&a, &b).await);
    a.check(scraped_names(&a, &b, &promtool).await);
}

async fn scraped_names(a: &Node, b: &Node, promtool: &Path) -> Result<()> {
    let used = used_metric_names()?;
    let mut declared = String::new();
    node_sources(&observability("../nodes"), &mut declared)?;
    node_sources(&observability("../actors"), &mut declared)?;
    // Some families appear a moment after the traffic (the persister's rows and lag, the spans
    // and logs exported): wait for them, then report what is still missing.
    let last: RefCell<(Vec<String>, Vec<String>)> = RefCell::default();
    let done = eventually("every metric used", Duration::from_secs(20), || async {
        let scrapes = vec![scrape(a).await?, scrape(b).await?];
        let families = families(&scrapes);
        let gaps = Vec::from_iter(used.iter().filter_map(|n| problem(n, &families, &declared)));
        let complete = gaps.is_empty();
        *last.borrow_mut() = (scrapes, gaps);
        Ok(complete.then_some(()))
    })
    .await;
    let (scrapes, gaps) = last.into_inner();
    ensure!(scrapes.len() == 2, "no scrape: {done:?}");
    let mut failures = Vec::new();
    for (node, text) in ["obs-a", "obs-b"].iter().zip(&scrapes) {
        if let Err(e) = run(promtool, &["check".as_ref(), "metrics".as_ref()], text).await {
            failures.push(format!("promtool check metrics on {node}: {e:#}"));
        }
    }
    let found = used.len() - gaps.len();
    eprintln!(
        "{found} of the {} metric names used are exported",
        used.len()
    );
    if !gaps.is_empty() {
        let gaps = gaps.join("\n  ");
        failures.push(format!(
            "used in observability/, not in /metrics:\n  {gaps}"
        ));
    }
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

#[test]
fn metric_names_are_whole_words_and_a_histograms_series_name_its_family() {
    let text = "sum(rate(banter_a_total{x=\"banter\"}[1m])) / process_cpu_seconds_total + \
                xbanter_no banter_h_seconds_bucket my_process_no";
    let names = Vec::from_iter(metric_names(text)).join(" ");
    assert_eq!(
        names,
        "banter_a_total banter_h_seconds_bucket process_cpu_seconds_total"
    );
    let scrape = "# TYPE banter_h_seconds histogram\n# TYPE banter_s summary\n";
    let families = families(&[scrape.to_owned()]);
    let declared = "\"banter_new\"";
    let problem = |name: &str| problem(name, &families, declared).unwrap_or_default();
    assert_eq!(problem("banter_h_seconds_bucket"), "");
    assert_eq!(problem("banter_s_count"), "");
    assert!(problem("banter_s_bucket").contains("is a summary"));
    assert!(problem("banter_new").contains("declared in the code, but not exported"));
    assert!(problem("banter_nope_bucket").starts_with("banter_nope (not declared"));
}
