//! Renders the Helm chart (deploy/helm/whereabouts-rs) without helm, which cannot be installed
//! here: gtmpl (Go's text/template for Rust) plus the few Helm/Sprig functions the chart uses —
//! `toYaml`, `toJson`, `nindent`, `indent`, `quote`, `default`, `int`, `until` and `.Files.Get`
//! (rewritten to a function call, gtmpl has no methods with arguments). The chart keeps to that
//! subset; `helm template` renders it the same way.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use gtmpl::{Context, Func, FuncError, Template, Value};
use serde_json::Value as Json;

/// The chart's directory.
pub fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/helm/whereabouts-rs")
}

static FILES: Mutex<Option<HashMap<String, String>>> = Mutex::new(None);

fn to_gtmpl(v: &Json) -> Value {
    match v {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::from(i),
            (None, Some(f)) => Value::from(f),
            _ => Value::Nil,
        },
        Json::String(s) => Value::String(s.clone()),
        Json::Array(a) => Value::Array(a.iter().map(to_gtmpl).collect()),
        Json::Object(o) => Value::Map(o.iter().map(|(k, v)| (k.clone(), to_gtmpl(v))).collect()),
    }
}

fn to_json(v: &Value) -> Json {
    match v {
        Value::NoValue | Value::Nil | Value::Function(_) => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::String(s) => Json::String(s.clone()),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Json::from(i),
            (None, Some(f)) => Json::from(f),
            _ => Json::Null,
        },
        Value::Array(a) => Json::Array(a.iter().map(to_json).collect()),
        Value::Map(m) | Value::Object(m) => {
            let sorted: BTreeMap<_, _> = m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect();
            Json::Object(sorted.into_iter().collect())
        }
    }
}

fn arg<'a>(args: &'a [Value], i: usize, f: &str) -> Result<&'a Value, FuncError> {
    args.get(i).ok_or_else(|| FuncError::Generic(format!("{f}: missing argument {i}")))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::NoValue | Value::Nil => String::new(),
        other => other.to_string(),
    }
}

fn number(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or_else(|| n.as_f64().unwrap_or(0.0) as i64),
        Value::String(s) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

fn empty(v: &Value) -> bool {
    match v {
        Value::NoValue | Value::Nil => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Map(m) | Value::Object(m) => m.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Function(_) => false,
    }
}

fn to_yaml(args: &[Value]) -> Result<Value, FuncError> {
    let yaml =
        serde_yaml::to_string(&to_json(arg(args, 0, "toYaml")?)).map_err(|e| FuncError::Generic(e.to_string()))?;
    Ok(Value::String(yaml.trim_end().to_string()))
}

fn to_json_fn(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(to_json(arg(args, 0, "toJson")?).to_string()))
}

fn indent_by(n: i64, s: &str) -> String {
    let pad = " ".repeat(n.max(0) as usize);
    s.lines().map(|l| format!("{pad}{l}")).collect::<Vec<_>>().join("\n")
}

fn indent(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(indent_by(number(arg(args, 0, "indent")?), &text(arg(args, 1, "indent")?))))
}

fn nindent(args: &[Value]) -> Result<Value, FuncError> {
    let s = indent_by(number(arg(args, 0, "nindent")?), &text(arg(args, 1, "nindent")?));
    Ok(Value::String(format!("\n{s}")))
}

fn quote(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(Json::String(text(arg(args, 0, "quote")?)).to_string()))
}

fn default(args: &[Value]) -> Result<Value, FuncError> {
    let fallback = arg(args, 0, "default")?;
    Ok(match args.get(1) {
        Some(v) if !empty(v) => v.clone(),
        _ => fallback.clone(),
    })
}

fn int(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::from(number(arg(args, 0, "int")?)))
}

fn until(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::Array((0..number(arg(args, 0, "until")?)).map(Value::from).collect()))
}

fn files_get(args: &[Value]) -> Result<Value, FuncError> {
    let name = text(arg(args, 0, "Files.Get")?);
    let files = FILES.lock().unwrap();
    Ok(Value::String(files.as_ref().and_then(|f| f.get(&name)).cloned().unwrap_or_default()))
}

/// Deep-merges `over` into `base` (maps merge, everything else replaces).
pub fn merge(base: &mut Json, over: &Json) {
    match (base, over) {
        (Json::Object(b), Json::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Json::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Renders every template of the chart with its values overridden by `overrides`; returns the
/// output by template file name (files starting with `_` are not rendered, as in Helm).
pub fn render(release: &str, namespace: &str, overrides: &Json) -> BTreeMap<String, String> {
    let dir = chart_dir();
    let chart: Json = serde_yaml::from_str(&std::fs::read_to_string(dir.join("Chart.yaml")).unwrap()).unwrap();
    let mut values: Json = serde_yaml::from_str(&std::fs::read_to_string(dir.join("values.yaml")).unwrap()).unwrap();
    merge(&mut values, overrides);
    let mut files = HashMap::new();
    for entry in std::fs::read_dir(dir.join("dashboards")).unwrap() {
        let path = entry.unwrap().path();
        let name = format!("dashboards/{}", path.file_name().unwrap().to_string_lossy());
        files.insert(name, std::fs::read_to_string(&path).unwrap());
    }
    *FILES.lock().unwrap() = Some(files);
    let context = serde_json::json!({
        "Values": values,
        "Release": {"Name": release, "Namespace": namespace, "Service": "Helm", "IsInstall": true, "IsUpgrade": false},
        "Chart": {"Name": chart["name"], "Version": chart["version"], "AppVersion": chart["appVersion"]},
    });
    let funcs: Vec<(&str, Func)> = vec![
        ("toYaml", to_yaml),
        ("toJson", to_json_fn),
        ("indent", indent),
        ("nindent", nindent),
        ("quote", quote),
        ("default", default),
        ("int", int),
        ("until", until),
        ("filesGet", files_get),
    ];
    let mut out = BTreeMap::new();
    let mut names: Vec<PathBuf> =
        std::fs::read_dir(dir.join("templates")).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    for path in names {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with('_') || !name.ends_with(".yaml") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap().replace(".Files.Get ", "filesGet ");
        let mut t = Template::default();
        t.add_funcs(&funcs);
        t.parse(source).unwrap_or_else(|e| panic!("{name}: {e}"));
        let rendered = t.render(&Context::from(to_gtmpl(&context))).unwrap_or_else(|e| panic!("{name}: {e}"));
        out.insert(name, rendered);
    }
    out
}

/// The YAML documents of `text` that are not empty, as JSON values.
pub fn documents(text: &str) -> Vec<Json> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(text)
        .map(|d| Json::deserialize(d).unwrap_or_else(|e| panic!("not YAML: {e}\n{text}")))
        .filter(|d| !d.is_null())
        .collect()
}
