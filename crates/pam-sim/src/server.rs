//! The listener: plain HTTP or HTTPS with the generated test CA, loopback only. Requests are
//! routed by path prefix (case-insensitively, as IIS does) to the stand-ins, after fault
//! injection; `/sim/…` is the admin API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;

use crate::faults::Injected;
use crate::host::{Host, Hosted};
use crate::scenario::Scenario;

/// Every stand-in, each beside the shared parts (clock, faults, base URL), which this reads
/// through to (`state.clock`, `state.faults`).
pub struct SimState {
    pub host: Arc<Host>,
    pub pvwa: Arc<Hosted<crate::pvwa::PvwaSim>>,
    pub ews: Arc<Hosted<crate::ews::EwsSim>>,
    pub servicenow: Arc<Hosted<crate::servicenow::ServiceNowSim>>,
    pub remedy: Arc<Hosted<crate::remedy::RemedySim>>,
    pub remote_access: Arc<Hosted<crate::remote_access::RemoteAccessSim>>,
    pub graph: Arc<Hosted<crate::graph::GraphSim>>,
}

impl std::ops::Deref for SimState {
    type Target = Host;
    fn deref(&self) -> &Host {
        &self.host
    }
}

impl SimState {
    pub fn new(s: &Scenario) -> Result<Self> {
        let host = Arc::new(Host::default());
        fn hosted<T>(host: &Arc<Host>, sim: T) -> Arc<Hosted<T>> {
            Arc::new(Hosted {
                host: host.clone(),
                sim,
            })
        }
        Ok(SimState {
            pvwa: hosted(&host, crate::pvwa::PvwaSim::new(&s.pvwa)?),
            ews: hosted(&host, crate::ews::EwsSim::new(&s.ews)?),
            servicenow: hosted(&host, crate::servicenow::ServiceNowSim::new(&s.servicenow)?),
            remedy: hosted(&host, crate::remedy::RemedySim::new(&s.remedy)?),
            remote_access: hosted(
                &host,
                crate::remote_access::RemoteAccessSim::new(&s.remote_access)?,
            ),
            graph: hosted(&host, crate::graph::GraphSim::new(&s.graph)?),
            host,
        })
    }
}

/// How to run the simulator.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Address to listen on; must be loopback. Port 0 picks a free port.
    pub bind: SocketAddr,
    /// Serve HTTPS with a CA and certificate kept in this directory (generated when missing).
    pub tls_dir: Option<PathBuf>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls_dir: None,
        }
    }
}

/// A running simulator. Stops when dropped.
pub struct Sim {
    pub addr: SocketAddr,
    pub state: Arc<SimState>,
    /// The CA certificate clients must trust (HTTPS only).
    pub ca_cert: Option<PathBuf>,
    scheme: &'static str,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Sim {
    /// Start on the current tokio runtime.
    pub async fn start(scenario: Scenario, opts: SimOptions) -> Result<Sim> {
        if !opts.bind.ip().is_loopback() {
            bail!(
                "pam-sim listens on loopback only; {} is not a loopback address",
                opts.bind
            );
        }
        let state = Arc::new(SimState::new(&scenario)?);
        let app = router(state.clone());
        let listener = tokio::net::TcpListener::bind(opts.bind)
            .await
            .with_context(|| format!("binding {}", opts.bind))?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let (scheme, ca_cert, task) = match &opts.tls_dir {
            None => {
                let task = tokio::spawn(async move {
                    let app = app.into_make_service_with_connect_info::<SocketAddr>();
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = rx.await;
                        })
                        .await;
                });
                ("http", None, task)
            }
            Some(dir) => {
                let files = crate::tls::ensure(dir)?;
                let cfg = crate::tls::server_config(&files)?;
                let task = tokio::spawn(serve_tls(listener, app, cfg, rx));
                ("https", Some(files.ca_cert.clone()), task)
            }
        };
        let host = if addr.ip().is_ipv6() {
            format!("[{}]", addr.ip())
        } else {
            "127.0.0.1".to_string()
        };
        let _ = state
            .base_url
            .set(format!("{scheme}://{host}:{}", addr.port()));
        Ok(Sim {
            addr,
            state,
            ca_cert,
            scheme,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// `http(s)://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        let host = if self.addr.ip().is_ipv6() {
            format!("[{}]", self.addr.ip())
        } else {
            "127.0.0.1".to_string()
        };
        format!("{}://{host}:{}", self.scheme, self.addr.port())
    }

    /// Stop and wait for the listener to close.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: Router,
    cfg: Arc<rustls::ServerConfig>,
    mut rx: oneshot::Receiver<()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
    loop {
        let accepted = tokio::select! {
            _ = &mut rx => return,
            a = listener.accept() => a,
        };
        let Ok((tcp, peer)) = accepted else { continue };
        let acceptor = acceptor.clone();
        // Stand-ins that authenticate connections (NTLM) need to know which one a request uses.
        let app = tower::ServiceExt::map_request(
            app.clone(),
            move |mut r: axum::http::Request<hyper::body::Incoming>| {
                r.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                r
            },
        );
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let io = hyper_util::rt::TokioIo::new(tls);
            let svc = hyper_util::service::TowerToHyperService::new(app);
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection_with_upgrades(io, svc)
                    .await;
        });
    }
}

/// The whole application: admin API under `/sim`, every stand-in by prefix.
pub fn router(state: Arc<SimState>) -> Router {
    let sim = crate::admin::routes()
        .with_state(state.host.clone())
        .nest(
            "/pvwa",
            crate::pvwa::admin_routes().with_state(state.pvwa.clone()),
        )
        .nest(
            "/ews",
            crate::ews::admin_routes().with_state(state.ews.clone()),
        )
        .nest(
            "/servicenow",
            crate::servicenow::admin_routes().with_state(state.servicenow.clone()),
        )
        .nest(
            "/remedy",
            crate::remedy::admin_routes().with_state(state.remedy.clone()),
        )
        .nest(
            "/remote_access",
            crate::remote_access::admin_routes().with_state(state.remote_access.clone()),
        )
        .nest(
            "/graph",
            crate::graph::admin_routes().with_state(state.graph.clone()),
        );
    Router::new()
        .nest("/sim", sim)
        .fallback(dispatch)
        .with_state(state)
}

/// The stand-ins by (lowercase) path prefix.
type Handler = fn(
    Arc<SimState>,
    Request,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;

/// Whether a (lowercase) path is a stand-in's.
type Matcher = fn(&str) -> bool;

fn services() -> Vec<(&'static str, Matcher, Handler)> {
    vec![
        (
            "pvwa",
            |p| crate::pvwa::PREFIXES.iter().any(|x| p.starts_with(x)),
            |s, r| Box::pin(crate::pvwa::handle(s.pvwa.clone(), r)),
        ),
        ("identity", crate::identity::serves, |s, r| {
            Box::pin(crate::identity::handle(s.pvwa.clone(), r))
        }),
        (
            "ews",
            |p| crate::ews::PREFIXES.iter().any(|x| p.starts_with(x)),
            |s, r| Box::pin(crate::ews::handle(s.ews.clone(), r)),
        ),
        (
            "servicenow",
            |p| crate::servicenow::PREFIXES.iter().any(|x| p.starts_with(x)),
            |s, r| Box::pin(crate::servicenow::handle(s.servicenow.clone(), r)),
        ),
        (
            "remedy",
            |p| crate::remedy::PREFIXES.iter().any(|x| p.starts_with(x)),
            |s, r| Box::pin(crate::remedy::handle(s.remedy.clone(), r)),
        ),
        (
            "remote_access",
            |p| {
                crate::remote_access::PREFIXES
                    .iter()
                    .any(|x| p.starts_with(x))
            },
            |s, r| Box::pin(crate::remote_access::handle(s.remote_access.clone(), r)),
        ),
        ("graph", crate::graph::serves, |s, r| {
            Box::pin(crate::graph::handle(s.graph.clone(), r))
        }),
    ]
}

async fn dispatch(State(state): State<Arc<SimState>>, req: Request<Body>) -> Response {
    let path = req.uri().path().to_ascii_lowercase();
    for (name, serves, handler) in services() {
        if serves(&path) {
            if let Injected::Respond(r) = state.faults.apply(name, &path).await {
                return r;
            }
            return handler(state, req).await;
        }
    }
    (
        StatusCode::NOT_FOUND,
        "pam-sim: no stand-in serves this path",
    )
        .into_response()
}
