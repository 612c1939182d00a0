//! The router against the protocol's route table, by its behaviour: every operation of
//! [`Route::ALL`] reaches a handler, every other method on a table path and every other path
//! reach a fallback. (Here, beside the composition root, because it builds a whole host.)

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use hyper::service::Service as _;
use hyper_util::service::TowerToHyperService;
use hypervisor_protocol::routes::{Method, Route};

use axum::Router;

use super::Host;
use crate::config::Config;
use crate::http::{AppState, public_routes};

/// What the test's fallbacks answer, so that a fallback is told apart from any handler.
const FALLBACK: StatusCode = StatusCode::IM_A_TEAPOT;

/// `path` with its parameters filled: an agent and an execution that do not exist, and a
/// several-segment rest.
fn concrete(path: &str) -> String {
    path.replace("{name}", "router-test-no-such-agent")
        .replace("{id}", "0190b3f0-0000-7000-8000-000000000000")
        .replace("{*rest}", "some/deep/path")
}

/// The state of a host with nothing optional (no policy, Python, payments or disk cache), its
/// data in `dir`.
async fn state(dir: &std::path::Path) -> AppState {
    let mut config = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    config.policy.enabled = false;
    config.python.enabled = false;
    config.payments.enabled = false;
    config.engine.disk_cache = false;
    let http = Arc::new(config.http.clone());
    let host = Host::build(config).await.expect("a host without plug-ins");
    AppState {
        pipeline: host.pipeline().clone(),
        http,
        a2a: None,
        environments: None,
    }
}

/// The status `method path` gets from `app`.
async fn status(app: &TowerToHyperService<Router>, method: &str, path: &str) -> StatusCode {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .expect("a request");
    app.call(request).await.expect("infallible").status()
}

#[tokio::test]
async fn the_router_answers_exactly_the_route_table() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // The real routes, with fallbacks that answer what no handler does.
    let app = public_routes()
        .fallback(|| async { FALLBACK })
        .method_not_allowed_fallback(|| async { FALLBACK })
        .with_state(state(dir.path()).await);
    let app = TowerToHyperService::new(app);
    let mut operations = 0;
    for &route in Route::ALL {
        let path = concrete(route.path());
        for method in Method::ALL {
            let answered = status(&app, method.as_str(), &path).await;
            let in_table = route.operation(method).is_some();
            let (method, template) = (method.as_str(), route.path());
            if in_table {
                operations += 1;
                assert_ne!(answered, FALLBACK, "{method} {template} is not routed");
            } else {
                assert_eq!(
                    answered, FALLBACK,
                    "{method} {template} is not in the table"
                );
            }
        }
    }
    assert!(operations >= 40, "only {operations} operations");
    for other in ["/definitely-not-a-route", "/executions/a/b", "/agents/"] {
        let answered = status(&app, "GET", other).await;
        assert_eq!(answered, FALLBACK, "GET {other} is routed");
    }
}
