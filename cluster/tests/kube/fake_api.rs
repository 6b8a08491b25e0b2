//! A fake kube-apiserver for tests: kube's `Client` over an in-process tower service speaking the
//! API's HTTP protocol for the resources the exporter, reconciler and importer use (pods, nodes,
//! IPPools, OverlappingRangeIPReservations). It keeps objects with resourceVersions and uids and
//! implements list (label selectors, metadata-only `as=PartialObjectMetadataList`), watch (from a
//! resourceVersion, streamed), get, create (409 AlreadyExists), update (409 Conflict on a stale
//! resourceVersion, 422 without one), server-side apply (fieldManager required; 409 on a stale
//! resourceVersion in the body; without `force`, 409 when another manager wrote the object last),
//! JSON merge patch and delete. Faults: `set_down(true)` makes every request fail at the transport
//! (as an unreachable server does). Every request is recorded. Not modelled: watch bookmarks,
//! `410 Gone` for compacted resourceVersions, and paging (`limit` is ignored: one page holds all).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::fake_http::{as_metadata_only, full, kind_of, labels_match, merge, query_map, status, target, Body, Target};

/// A request the fake received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub content_type: String,
}

#[derive(Clone, Debug)]
struct Change {
    rv: u64,
    collection: String,
    namespace: String,
    kind: &'static str,
    object: Value,
}

#[derive(Default)]
struct Store {
    rv: u64,
    uids: u64,
    objects: BTreeMap<(String, String, String), Value>,
    managers: BTreeMap<(String, String, String), String>,
    log: Vec<Change>,
    requests: Vec<Recorded>,
    down: bool,
}

/// The fake API server. Cloning shares it.
#[derive(Clone)]
pub struct FakeApi {
    store: Arc<Mutex<Store>>,
    changes: broadcast::Sender<Change>,
}

impl FakeApi {
    /// An empty API server.
    pub fn new() -> FakeApi {
        FakeApi { store: Arc::default(), changes: broadcast::channel(4096).0 }
    }

    /// A kube client talking to this fake (default namespace `default`).
    pub fn client(&self) -> kube::Client {
        let api = self.clone();
        let svc = tower::service_fn(move |req: Request<kube::client::Body>| {
            let api = api.clone();
            async move { api.handle(req).await }
        });
        kube::Client::new(svc, "default")
    }

    /// Makes every request fail (unreachable server) or serve again.
    pub fn set_down(&self, down: bool) {
        self.store.lock().unwrap().down = down;
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.store.lock().unwrap().requests.clone()
    }

    /// Requests with `method` to a path containing `path_part`.
    pub fn count(&self, method: Method, path_part: &str) -> usize {
        self.requests().iter().filter(|r| r.method == method && r.path.contains(path_part)).count()
    }

    /// The object `name` of `collection` (e.g. `apis/whereabouts.cni.cncf.io/v1alpha1/ippools`).
    pub fn get(&self, collection: &str, namespace: &str, name: &str) -> Option<Value> {
        let key = (collection.to_string(), namespace.to_string(), name.to_string());
        self.store.lock().unwrap().objects.get(&key).cloned()
    }

    /// Names of the objects of `collection`.
    pub fn names(&self, collection: &str) -> Vec<String> {
        let s = self.store.lock().unwrap();
        s.objects.keys().filter(|(c, _, _)| c == collection).map(|(_, _, n)| n.clone()).collect()
    }

    /// Stores `object` directly (as another client would have created or edited it).
    pub fn put(&self, collection: &str, object: Value) {
        let mut s = self.store.lock().unwrap();
        let ns = object["metadata"]["namespace"].as_str().unwrap_or("").to_string();
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        let existed = s.objects.contains_key(&(collection.to_string(), ns.clone(), name.clone()));
        self.store_object(&mut s, collection, &ns, &name, object, if existed { "MODIFIED" } else { "ADDED" }, "test");
    }

    /// Deletes an object directly.
    pub fn remove(&self, collection: &str, namespace: &str, name: &str) {
        let mut s = self.store.lock().unwrap();
        let key = (collection.to_string(), namespace.to_string(), name.to_string());
        if let Some(obj) = s.objects.remove(&key) {
            s.rv += 1;
            let change = Change { rv: s.rv, collection: key.0, namespace: key.1, kind: "DELETED", object: obj };
            s.log.push(change.clone());
            let _ = self.changes.send(change);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn store_object(
        &self,
        s: &mut Store,
        collection: &str,
        ns: &str,
        name: &str,
        mut object: Value,
        kind: &'static str,
        manager: &str,
    ) -> Value {
        s.rv += 1;
        let key = (collection.to_string(), ns.to_string(), name.to_string());
        let old_uid = s.objects.get(&key).map(|o| o["metadata"]["uid"].clone());
        let uid = match old_uid {
            Some(u) if !u.is_null() => u,
            _ => {
                s.uids += 1;
                object["metadata"]["uid"].as_str().map(|u| json!(u)).unwrap_or(json!(format!("uid-{}", s.uids)))
            }
        };
        object["metadata"]["uid"] = uid;
        object["metadata"]["resourceVersion"] = json!(s.rv.to_string());
        if !ns.is_empty() {
            object["metadata"]["namespace"] = json!(ns);
        }
        s.objects.insert(key.clone(), object.clone());
        s.managers.insert(key.clone(), manager.to_string());
        let change = Change { rv: s.rv, collection: key.0, namespace: key.1, kind, object: object.clone() };
        s.log.push(change.clone());
        let _ = self.changes.send(change);
        object
    }

    async fn handle(&self, req: Request<kube::client::Body>) -> Result<Response<Body>, std::io::Error> {
        let (parts, body) = req.into_parts();
        let body = body.collect().await.map_err(std::io::Error::other)?.to_bytes();
        let content_type =
            parts.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let accept = parts.headers.get("accept").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let path = parts.uri.path().to_string();
        let query = parts.uri.query().unwrap_or_default().to_string();
        {
            let mut s = self.store.lock().unwrap();
            s.requests.push(Recorded {
                method: parts.method.clone(),
                path: path.clone(),
                query: query.clone(),
                content_type: content_type.clone(),
            });
            if s.down {
                return Err(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "fake API is down"));
            }
        }
        let Some(t) = target(&path) else {
            return Ok(status(StatusCode::NOT_FOUND, "NotFound", format!("no route {path}")));
        };
        let q = query_map(&query);
        let meta_only = accept.contains("as=PartialObjectMetadata");
        let body: Value = if body.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => return Ok(status(StatusCode::BAD_REQUEST, "BadRequest", e.to_string())),
            }
        };
        Ok(match (parts.method.clone(), &t.name) {
            (Method::GET, None) if matches!(q.get("watch").map(String::as_str), Some("true" | "1")) => {
                self.watch(&t, &q, meta_only)
            }
            (Method::GET, None) => self.list(&t, &q, meta_only),
            (Method::GET, Some(name)) => self.get_one(&t, name, meta_only),
            (Method::POST, None) => self.create(&t, body, q.get("fieldManager").cloned().unwrap_or_default()),
            (Method::PUT, Some(name)) => self.update(&t, name, body),
            (Method::PATCH, Some(name)) => self.patch(&t, name, body, &content_type, &q),
            (Method::DELETE, Some(name)) => self.delete(&t, name),
            _ => status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", format!("{} {path}", parts.method)),
        })
    }

    fn key(t: &Target, name: &str) -> (String, String, String) {
        (t.collection.clone(), t.namespace.clone().unwrap_or_default(), name.to_string())
    }

    fn not_found(t: &Target, name: &str) -> Response<Body> {
        status(StatusCode::NOT_FOUND, "NotFound", format!("{} \"{name}\" not found", t.plural))
    }

    fn list(&self, t: &Target, q: &BTreeMap<String, String>, meta_only: bool) -> Response<Body> {
        let s = self.store.lock().unwrap();
        let items: Vec<Value> = s
            .objects
            .iter()
            .filter(|((c, ns, _), _)| *c == t.collection && t.namespace.as_ref().is_none_or(|n| n == ns))
            .filter(|(_, o)| labels_match(o, q.get("labelSelector")))
            .map(|(_, o)| if meta_only { as_metadata_only(o) } else { o.clone() })
            .collect();
        let (api_version, kind) = if meta_only {
            ("meta.k8s.io/v1".to_string(), "PartialObjectMetadataList".to_string())
        } else {
            (t.api_version.clone(), format!("{}List", kind_of(&t.plural)))
        };
        full(
            StatusCode::OK,
            json!({"apiVersion": api_version, "kind": kind,
            "metadata": {"resourceVersion": s.rv.to_string()}, "items": items}),
        )
    }

    fn get_one(&self, t: &Target, name: &str, meta_only: bool) -> Response<Body> {
        match self.store.lock().unwrap().objects.get(&Self::key(t, name)) {
            Some(o) if meta_only => full(StatusCode::OK, as_metadata_only(o)),
            Some(o) => full(StatusCode::OK, o.clone()),
            None => Self::not_found(t, name),
        }
    }

    fn create(&self, t: &Target, mut body: Value, manager: String) -> Response<Body> {
        let Some(name) = body["metadata"]["name"].as_str().map(str::to_string) else {
            return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", "metadata.name: Required value".into());
        };
        let mut s = self.store.lock().unwrap();
        if s.objects.contains_key(&Self::key(t, &name)) {
            return status(StatusCode::CONFLICT, "AlreadyExists", format!("{} \"{name}\" already exists", t.plural));
        }
        body["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        let ns = t.namespace.clone().unwrap_or_default();
        let obj = self.store_object(&mut s, &t.collection, &ns, &name, body, "ADDED", &manager);
        full(StatusCode::CREATED, obj)
    }

    fn update(&self, t: &Target, name: &str, body: Value) -> Response<Body> {
        let mut s = self.store.lock().unwrap();
        let Some(current) = s.objects.get(&Self::key(t, name)).cloned() else { return Self::not_found(t, name) };
        match body["metadata"]["resourceVersion"].as_str() {
            None => {
                return status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid",
                    "metadata.resourceVersion: must be specified for an update".into(),
                )
            }
            Some(rv) if Some(rv) != current["metadata"]["resourceVersion"].as_str() => {
                return status(StatusCode::CONFLICT, "Conflict", format!("Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again", t.plural));
            }
            Some(_) => {}
        }
        let ns = t.namespace.clone().unwrap_or_default();
        full(StatusCode::OK, self.store_object(&mut s, &t.collection, &ns, name, body, "MODIFIED", "update"))
    }

    fn patch(
        &self,
        t: &Target,
        name: &str,
        body: Value,
        content_type: &str,
        q: &BTreeMap<String, String>,
    ) -> Response<Body> {
        let mut s = self.store.lock().unwrap();
        let key = Self::key(t, name);
        let current = s.objects.get(&key).cloned();
        let ns = t.namespace.clone().unwrap_or_default();
        if content_type.starts_with("application/apply-patch+yaml") {
            let Some(manager) = q.get("fieldManager").filter(|m| !m.is_empty()).cloned() else {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "fieldManager is required for apply requests".into(),
                );
            };
            if body["metadata"]["name"].as_str() != Some(name) {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "the name of the object does not match the URL".into(),
                );
            }
            let Some(mut obj) = current else {
                let mut created = body.clone();
                created["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
                let obj = self.store_object(&mut s, &t.collection, &ns, name, created, "ADDED", &manager);
                return full(StatusCode::CREATED, obj);
            };
            if let Some(rv) = body["metadata"]["resourceVersion"].as_str() {
                if Some(rv) != obj["metadata"]["resourceVersion"].as_str() {
                    return status(StatusCode::CONFLICT, "Conflict", format!("the object {name} has been modified"));
                }
            }
            let force = q.get("force").map(String::as_str) == Some("true");
            if !force && s.managers.get(&key).is_some_and(|m| *m != manager) {
                return status(
                    StatusCode::CONFLICT,
                    "Conflict",
                    format!("Apply failed with 1 conflict: conflict with \"{}\"", s.managers[&key]),
                );
            }
            // Our CRDs make every field atomic: applied fields replace, labels and annotations merge.
            for (k, v) in body.as_object().unwrap() {
                if k == "metadata" {
                    for field in ["labels", "annotations"] {
                        if let Some(m) = v.get(field).and_then(Value::as_object) {
                            for (lk, lv) in m {
                                obj["metadata"][field][lk] = lv.clone();
                            }
                        }
                    }
                } else {
                    obj[k] = v.clone();
                }
            }
            if Some(&obj) == s.objects.get(&key) {
                return full(StatusCode::OK, obj); // a no-op apply changes nothing, not even the version
            }
            return full(
                StatusCode::OK,
                self.store_object(&mut s, &t.collection, &ns, name, obj, "MODIFIED", &manager),
            );
        }
        if content_type.starts_with("application/merge-patch+json") {
            let Some(mut obj) = current else { return Self::not_found(t, name) };
            merge(&mut obj, &body);
            return full(StatusCode::OK, self.store_object(&mut s, &t.collection, &ns, name, obj, "MODIFIED", "merge"));
        }
        status(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType", format!("patch type {content_type}"))
    }

    fn delete(&self, t: &Target, name: &str) -> Response<Body> {
        let key = Self::key(t, name);
        let obj = self.store.lock().unwrap().objects.get(&key).cloned();
        match obj {
            None => Self::not_found(t, name),
            Some(obj) => {
                self.remove(&key.0, &key.1, &key.2);
                full(StatusCode::OK, obj)
            }
        }
    }

    fn watch(&self, t: &Target, q: &BTreeMap<String, String>, meta_only: bool) -> Response<Body> {
        let s = self.store.lock().unwrap();
        let rx = self.changes.subscribe();
        let from: u64 = q.get("resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(s.rv);
        let (collection, namespace, selector) =
            (t.collection.clone(), t.namespace.clone(), q.get("labelSelector").cloned());
        let wanted = move |c: &Change| {
            c.rv > from
                && c.collection == collection
                && namespace.as_ref().is_none_or(|n| *n == c.namespace)
                && labels_match(&c.object, selector.as_ref())
        };
        let line = move |c: &Change| {
            let object = if meta_only { as_metadata_only(&c.object) } else { c.object.clone() };
            let mut bytes = serde_json::to_vec(&json!({"type": c.kind, "object": object})).unwrap();
            bytes.push(b'\n');
            Ok::<_, Infallible>(http_body::Frame::data(Bytes::from(bytes)))
        };
        let backlog: Vec<_> = s.log.iter().filter(|c| wanted(c)).map(&line).collect();
        drop(s);
        let live = futures::stream::unfold((rx, wanted, line), |(mut rx, wanted, line)| async move {
            loop {
                match rx.recv().await {
                    Ok(c) if wanted(&c) => {
                        let frame = line(&c);
                        return Some((frame, (rx, wanted, line)));
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        let stream = futures::StreamExt::chain(futures::stream::iter(backlog), live);
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(BodyExt::boxed_unsync(StreamBody::new(stream)))
            .unwrap()
    }
}
