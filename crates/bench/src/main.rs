//! `pam-bench`: how fast forwarded mails are approved, how fast a burst drains, how small the
//! watcher stays, and what a batch approval saves (issue 7; docs/benchmarks.md).
//!
//! pam-sim runs in this process (its library, the same code as the `pam-sim` binary), so the
//! figures come from its own clock and records — delivery time, PVWA confirm time, replies sent,
//! folder contents — without an admin round trip per check. The programs under test are the
//! built binaries, run as separate processes exactly as the service runs them. The environment
//! (pam-sim scenario, real slapd, configuration, forwarded mails) is the watcher tests' own,
//! shared from `approval-core/tests/support/watcher_env.rs`.

#[path = "../../approval-core/tests/support/watcher_env.rs"]
mod watcher_env;

/// The mailbox backend of this suite (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Ews;
/// The PVWA the benchmark runs against (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

#[path = "../../approval-core/tests/support/postgres.rs"]
mod postgres;

mod ha;
mod hostile;
mod proc;
mod report;
mod stats;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use rand::{Rng, SeedableRng};

use proc::Watcher;
use report::{Batch, BatchRun, Burst, Footprint, Latency, Machine, Report, RunOptions};
use watcher_env::{BOX, Backend, Env};

/// Benchmark the watcher and the approval tools against pam-sim (with an injected latency on
/// every call) and a local OpenLDAP; print tables and write the figures as JSON.
#[derive(Debug, Parser)]
#[command(
    name = "pam-bench",
    version,
    after_help = "Run it through scripts/bench.sh (builds the release binaries first). See docs/benchmarks.md."
)]
struct Args {
    /// Mails per latency run, streaming and poll [default: 200; --quick: 10].
    #[arg(long)]
    mails: Option<usize>,
    /// Mails delivered at once for the burst [default: 1000; --quick: 40].
    #[arg(long)]
    burst: Option<usize>,
    /// Mails delivered at once for the paced Graph burst: pam-sim enforces Exchange Online's
    /// 30 sends a minute, the watcher its default pace [default: 60; --quick: 40; 0 skips it].
    #[arg(long)]
    paced_burst: Option<usize>,
    /// Request ids for the batch-approval comparison [default: 100; --quick: 10].
    #[arg(long)]
    batch: Option<usize>,
    /// Latency pam-sim adds to every call of every stand-in, in milliseconds.
    #[arg(long, default_value_t = 5)]
    latency_ms: u64,
    /// Seed of the random gaps between mails of the latency runs.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Gaps between two mails of a latency run, in milliseconds (MIN-MAX).
    #[arg(long, default_value = "50-300", value_parser = parse_range)]
    gap_ms: (u64, u64),
    /// Poll interval of the poll-mode run ([watcher] poll_secs and [mailbox]
    /// poll_interval_secs) [default: the product's, 15; --quick: 2].
    #[arg(long)]
    poll_secs: Option<u64>,
    /// [watcher] concurrency for the runs [default: the product's, 8].
    #[arg(long)]
    concurrency: Option<usize>,
    /// Runs of `get-inco-req --help` for the start-up time [default: 21; --quick: 5].
    #[arg(long)]
    startup_runs: Option<usize>,
    /// Write the JSON results here [default: $TMPDIR/pam-bench-<time>.json].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Small counts, for a smoke run.
    #[arg(long)]
    quick: bool,
    /// Skip the poll-mode latency run.
    #[arg(long)]
    no_poll: bool,
    /// Skip the Graph (Exchange Online) runs.
    #[arg(long)]
    no_graph: bool,
    /// Where the binaries under test are [default: beside this program].
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Run the watcher with -vv and keep its logs (for profiling by their timestamps).
    #[arg(long)]
    watcher_verbose: bool,
    /// Keep the working directory (watcher logs, journals, configuration) and print its path.
    #[arg(long)]
    keep: bool,
    /// Only time the notice reader on hostile 10 MiB mails (no servers needed).
    #[arg(long)]
    hostile_only: bool,
    /// Skip the PostgreSQL runs (two hosts: latency, burst, failover).
    #[arg(long)]
    no_postgres: bool,
    /// Failovers to time: SIGKILL of the active host until the next mail is confirmed by the
    /// standby [default: 10; --quick: 0, as each waits for the lease to expire].
    #[arg(long)]
    failovers: Option<usize>,
    /// `[journal] lease_secs` of the PostgreSQL runs (the product's default is 10).
    #[arg(long, default_value_t = 10)]
    lease_secs: u64,
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s.split_once('-').ok_or("expected MIN-MAX, e.g. 50-300")?;
    let a: u64 = a.trim().parse().map_err(|e| format!("{a}: {e}"))?;
    let b: u64 = b.trim().parse().map_err(|e| format!("{b}: {e}"))?;
    if a > b {
        return Err(format!("{a} is more than {b}"));
    }
    Ok((a, b))
}

/// The counts of this run, defaults filled in.
struct Plan {
    mails: usize,
    burst: usize,
    paced_burst: usize,
    /// The sending window of the paced burst, seconds: 60 as Exchange Online counts, 10 for
    /// `--quick` (5 sends a window on both sides: the same 30 a minute, drained sooner).
    paced_window_secs: u64,
    batch: usize,
    poll_secs: u64,
    concurrency: usize,
    startup_runs: usize,
    failovers: usize,
}

impl Plan {
    fn of(a: &Args) -> Plan {
        let d = approval_core::pipeline::WatcherConfig::default();
        let q = a.quick;
        Plan {
            mails: a.mails.unwrap_or(if q { 10 } else { 200 }),
            burst: a.burst.unwrap_or(if q { 40 } else { 1000 }),
            paced_burst: a.paced_burst.unwrap_or(if q { 12 } else { 60 }),
            paced_window_secs: if q { 10 } else { 60 },
            batch: a.batch.unwrap_or(if q { 10 } else { 100 }),
            poll_secs: a.poll_secs.unwrap_or(if q { 2 } else { d.poll_secs }),
            concurrency: a.concurrency.unwrap_or(d.concurrency),
            startup_runs: a.startup_runs.unwrap_or(if q { 5 } else { 21 }),
            failovers: a.failovers.unwrap_or(if q { 0 } else { 10 }),
        }
    }
}

/// The binaries under test.
struct Bins {
    dir: PathBuf,
    watcher: PathBuf,
    get_inco_req: PathBuf,
    approve1: PathBuf,
}

impl Bins {
    fn find(dir: Option<&Path>) -> Result<Bins> {
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => std::env::current_exe()?
                .parent()
                .context("the program's directory")?
                .to_path_buf(),
        };
        let bin = |name: &str| -> Result<PathBuf> {
            let p = dir.join(name);
            if !p.is_file() {
                bail!(
                    "{} not found; build it first (scripts/bench.sh does), or pass --bin-dir",
                    p.display()
                );
            }
            Ok(p)
        };
        Ok(Bins {
            watcher: bin("check-approval-request")?,
            get_inco_req: bin("get-inco-req")?,
            approve1: bin("first-level-approve")?,
            dir,
        })
    }
}

/// Progress, on stderr.
fn say(msg: &str) {
    let _ = writeln!(std::io::stderr(), "pam-bench: {msg}");
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            say(&format!("cannot start the runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say(&format!("FAILED: {e:#}"));
            ExitCode::FAILURE
        }
    }
}

async fn run(a: &Args) -> Result<()> {
    let hostile_runs = if a.quick { 1 } else { 5 };
    if a.hostile_only {
        say("hostile mails: the notice reader on 10 MiB mails");
        let h = hostile::run(hostile_runs);
        write!(std::io::stdout().lock(), "{}", report::render_hostile(&h))?;
        return Ok(());
    }
    let plan = Plan::of(a);
    let bins = Bins::find(a.bin_dir.as_deref())?;
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let load0 = loadavg();
    let env = watcher_env::start().await.ok_or_else(|| {
        anyhow!(
            "slapd is not installed: run scripts/install-test-deps.sh (Debian: slapd ldap-utils)"
        )
    })?;
    env.sim.state.faults.set(
        "all",
        pam_sim::faults::Faults {
            latency_ms: a.latency_ms,
            ..Default::default()
        },
    );
    let work = tempfile::Builder::new().prefix("pam-bench-").tempdir()?;
    let b = Bench {
        env: &env,
        bins: &bins,
        work: work.path(),
        verbose: a.watcher_verbose,
        next: std::cell::Cell::new(1000),
    };
    let conc = format!("concurrency = {}", plan.concurrency);
    // The throughput runs measure the watcher itself: sends unpaced (the paced Graph burst
    // below measures the sending limit).
    let cfg_stream = b.config("streaming", UNPACED, &conc)?;
    let cfg_poll = b.config(
        "poll",
        &format!(
            "{UNPACED}\nstreaming = false\npoll_interval_secs = {}",
            plan.poll_secs
        ),
        &format!("{conc}\npoll_secs = {}", plan.poll_secs),
    )?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(a.seed);
    let gaps = a.gap_ms;

    say(&format!(
        "start-up time: get-inco-req --help x {}",
        plan.startup_runs
    ));
    let startup = b.startup(plan.startup_runs)?;

    let mut latency = Vec::new();
    say(&format!("latency, streaming: {} mails", plan.mails));
    latency.push(Latency {
        mode: "streaming".into(),
        poll_secs: None,
        summary: b
            .latency(
                Run::Streaming,
                &cfg_stream,
                plan.mails,
                gaps,
                &mut rng,
                Journal::Sqlite,
            )
            .await?,
    });
    if !a.no_poll {
        say(&format!(
            "latency, polling every {} s: {} mails",
            plan.poll_secs, plan.mails
        ));
        latency.push(Latency {
            mode: "poll".into(),
            poll_secs: Some(plan.poll_secs),
            summary: b
                .latency(
                    Run::Poll,
                    &cfg_poll,
                    plan.mails,
                    gaps,
                    &mut rng,
                    Journal::Sqlite,
                )
                .await?,
        });
    }

    say(&format!(
        "burst: {} mails at once, streaming watcher running",
        plan.burst
    ));
    let (burst, peak, idle) = b
        .burst(Backend::Ews, &cfg_stream, plan.burst, Journal::Sqlite)
        .await?;

    let graph = if a.no_graph {
        None
    } else {
        // Graph with the product's defaults: delta polled every 2 s, at most 4 calls in
        // flight to the mailbox (pam-sim refuses a fifth with 429), three retries.
        let cfg_graph = b.config_on(Backend::Graph, "graph", UNPACED, &conc)?;
        say(&format!(
            "Graph latency, delta polled every 2 s: {} mails",
            plan.mails
        ));
        let summary = b
            .latency(
                Run::Graph,
                &cfg_graph,
                plan.mails,
                gaps,
                &mut rng,
                Journal::Sqlite,
            )
            .await?;
        say(&format!("Graph burst: {} mails at once", plan.burst));
        let (gb, _, _) = b
            .burst(Backend::Graph, &cfg_graph, plan.burst, Journal::Sqlite)
            .await?;
        let throttled = env.sim.state.graph.stats().throttled;
        // Exchange Online's sending limit on both sides: the server's 30 a minute, the
        // watcher's default pace (max_sends_per_minute unset).
        let paced = if plan.paced_burst > 0 {
            say(&format!(
                "Graph burst under Exchange Online's sending limit (30 a minute): {} mails at once",
                plan.paced_burst
            ));
            // 30 a minute in a window of `paced_window_secs`, on the server and in the watcher
            // (the watcher's default pace when the window is Exchange Online's minute).
            let per_window = (30 * plan.paced_window_secs / 60).max(1);
            let pace = if plan.paced_window_secs == 60 {
                String::new()
            } else {
                format!(
                    "max_sends_per_minute = {per_window}\nsend_window_secs = {}",
                    plan.paced_window_secs
                )
            };
            let cfg_paced = b.config_on(Backend::Graph, "graph-paced", &pace, &conc)?;
            env.sim
                .state
                .graph
                .set_send_limit(Some(pam_sim::send_limit::SendLimit {
                    messages: per_window as _,
                    window_ms: plan.paced_window_secs * 1000,
                }));
            let refused0 = env.sim.state.graph.stats().sends_refused;
            let (pb, _, _) = b
                .burst(
                    Backend::Graph,
                    &cfg_paced,
                    plan.paced_burst,
                    Journal::Sqlite,
                )
                .await?;
            env.sim.state.graph.set_send_limit(None);
            Some(report::PacedRun {
                burst: pb,
                sends_refused: env.sim.state.graph.stats().sends_refused - refused0,
                window_secs: plan.paced_window_secs,
            })
        } else {
            None
        };
        Some(report::GraphRun {
            latency: Latency {
                mode: "graph".into(),
                poll_secs: Some(2),
                summary,
            },
            burst: gb,
            throttled,
            paced,
        })
    };

    let ha = if a.no_postgres {
        say("PostgreSQL runs skipped (--no-postgres)");
        None
    } else {
        b.postgres(&plan, a.lease_secs, &conc, &mut rng).await?
    };

    say(&format!("batch approvals: {} ids", plan.batch));
    let batch = b.batch(&cfg_stream, plan.batch)?;

    say("hostile mails: the notice reader on 10 MiB mails");
    let hostile = hostile::run(hostile_runs);

    let mut report = Report {
        schema: 1,
        started_at,
        machine: machine(load0),
        options: RunOptions {
            quick: a.quick,
            mails: plan.mails,
            burst: plan.burst,
            paced_burst: plan.paced_burst,
            batch: plan.batch,
            latency_ms: a.latency_ms,
            seed: a.seed,
            gap_ms: [gaps.0, gaps.1],
            poll_secs: plan.poll_secs,
            concurrency: plan.concurrency,
            startup_runs: plan.startup_runs,
            bin_dir: bins.dir.display().to_string(),
        },
        latency,
        burst: Some(burst),
        footprint: Footprint {
            peak_rss_kib: peak,
            idle_rss_kib: idle,
            startup_median_ms: stats::median(&startup),
            startup_runs: startup.len(),
        },
        batch: Some(batch),
        hostile,
        graph,
        ha,
        goals: vec![],
    };
    report.goals = report::goals(&report);

    let out = a.out.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "pam-bench-{}.json",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        ))
    });
    let json = serde_json::to_string_pretty(&report)?;
    std::fs::write(&out, json + "\n").with_context(|| format!("writing {}", out.display()))?;
    let mut so = std::io::stdout().lock();
    write!(so, "{}", report::render(&report))?;
    writeln!(so, "\nJSON results: {}", out.display())?;
    if a.keep {
        let kept = work.keep();
        writeln!(so, "working directory kept: {}", kept.display())?;
    }
    drop(env);
    Ok(())
}

/// A latency run: EWS streaming, EWS polling, or Graph (delta polling).
#[derive(Debug, Clone, Copy)]
enum Run {
    Streaming,
    Poll,
    Graph,
}

impl Run {
    /// (backend, name of its files, whether the watcher streams)
    fn parts(self) -> (Backend, &'static str, bool) {
        match self {
            Run::Streaming => (Backend::Ews, "streaming", true),
            Run::Poll => (Backend::Ews, "poll", false),
            Run::Graph => (Backend::Graph, "graph", false),
        }
    }
}

/// Where a run's journal lives: the SQLite file in the watcher's state directory, or a
/// PostgreSQL schema shared with a standby host (`standby`: its configuration; `port`: its
/// `/readyz`).
#[derive(Clone, Copy)]
enum Journal<'a> {
    Sqlite,
    Pg {
        db: ha::PgJournal<'a>,
        standby: &'a Path,
        port: u16,
    },
}

/// One benchmark run's shared pieces.
struct Bench<'a> {
    env: &'a Env,
    bins: &'a Bins,
    work: &'a Path,
    verbose: bool,
    /// The next PVWA request number to create.
    next: std::cell::Cell<u64>,
}

/// A PVWA request created for one mail: its number (in the mail) and its RequestID.
struct Req {
    number: u64,
    id: String,
}

impl Req {
    /// The message-id of its forwarded mail, as `watcher_env::folder` lists it.
    fn mid(&self) -> String {
        format!("bench-{}@corp.example.test", self.number)
    }
    /// alice (an approver of DBSafe in the directory) forwards dave's request.
    fn mail(&self) -> Vec<u8> {
        watcher_env::mail(
            &format!("bench-{}", self.number),
            "alice@example.test",
            "DBSafe",
            u32::try_from(self.number).unwrap_or(u32::MAX),
            "dave@example.test",
            true,
        )
    }
}

/// `[mailbox]` keys of the throughput runs: sends not paced.
const UNPACED: &str = "max_sends_per_minute = 0";

impl Bench<'_> {
    /// The PostgreSQL runs: a throw-away server on loopback (the tests' starter,
    /// approval-core/tests/support/postgres.rs), latency and a burst with an active host and a
    /// standby, and the failover times. `None` (with the reason printed) when PostgreSQL is
    /// not installed.
    async fn postgres(
        &self,
        plan: &Plan,
        lease_secs: u64,
        conc: &str,
        rng: &mut rand::rngs::StdRng,
    ) -> Result<Option<report::HaRun>> {
        say("PostgreSQL: starting a throw-away server on loopback");
        let Some(pg) = postgres::Postgres::start() else {
            say("PostgreSQL runs skipped: PostgreSQL is not installed (Debian package postgresql)");
            return Ok(None);
        };
        let server = pg.psql("SHOW server_version").trim().to_string();
        let pw = watcher_env::secret(self.work, "pgpw", postgres::Postgres::PASSWORD);
        // Two configurations on one schema: the active host (started first) and the standby.
        let pair = |name: &str, schema: &'static str| -> Result<(PathBuf, PathBuf, u16)> {
            let db = ha::PgJournal { pg: &pg, schema };
            let base = watcher_env::config_text_on(self.env, Backend::Ews, "static", UNPACED, conc);
            let (pa, pb) = (ha::free_port(), ha::free_port());
            let a = self.work.join(format!("{name}.toml"));
            let b = self.work.join(format!("{name}-standby.toml"));
            std::fs::write(
                &a,
                format!("{base}{}", db.config(&pw, "bench-a", lease_secs, pa)),
            )?;
            std::fs::write(
                &b,
                format!("{base}{}", db.config(&pw, "bench-b", lease_secs, pb)),
            )?;
            Ok((a, b, pb))
        };
        let (cfg, standby, port) = pair("postgres", "bench_latency")?;
        say(&format!(
            "PostgreSQL {server}, two hosts (active + standby), streaming: latency, {} mails",
            plan.mails
        ));
        let summary = self
            .latency(
                Run::Streaming,
                &cfg,
                plan.mails,
                (50, 300),
                rng,
                Journal::Pg {
                    db: ha::PgJournal {
                        pg: &pg,
                        schema: "bench_latency",
                    },
                    standby: &standby,
                    port,
                },
            )
            .await?;
        let (cfg, standby, port) = pair("postgres-burst", "bench_burst")?;
        say(&format!(
            "PostgreSQL, two hosts: burst, {} mails at once",
            plan.burst
        ));
        let (burst, _, _) = self
            .burst(
                Backend::Ews,
                &cfg,
                plan.burst,
                Journal::Pg {
                    db: ha::PgJournal {
                        pg: &pg,
                        schema: "bench_burst",
                    },
                    standby: &standby,
                    port,
                },
            )
            .await?;
        let (failover, failover_skipped) = if plan.failovers == 0 {
            let why = "failover not timed: --quick or --failovers 0 (each run waits for the lease to expire)";
            say(why);
            (None, Some(why.to_string()))
        } else {
            say(&format!(
                "PostgreSQL, two hosts: failover x {} (SIGKILL of the active host, lease_secs = {lease_secs})",
                plan.failovers
            ));
            let db = ha::PgJournal {
                pg: &pg,
                schema: "bench_failover",
            };
            (
                Some(self.failover(db, &pw, plan.failovers, lease_secs).await?),
                None,
            )
        };
        Ok(Some(report::HaRun {
            server,
            latency: Latency {
                mode: "postgres".into(),
                poll_secs: None,
                summary,
            },
            burst,
            failover,
            failover_skipped,
        }))
    }

    /// `runs` failovers: kill (SIGKILL) whichever host is active, deliver a mail at once, and
    /// time until PVWA sees its confirm (by the other host); the killed host is started again
    /// as the standby before the next run.
    async fn failover(
        &self,
        db: ha::PgJournal<'_>,
        pw: &str,
        runs: usize,
        lease_secs: u64,
    ) -> Result<report::Failover> {
        let mut hosts = Vec::new();
        for n in ["a", "b"] {
            let port = ha::free_port();
            let cfg = self.work.join(format!("failover-{n}.toml"));
            let base = watcher_env::config_text_on(self.env, Backend::Ews, "static", UNPACED, "");
            std::fs::write(
                &cfg,
                format!(
                    "{base}{}",
                    db.config(pw, &format!("bench-{n}"), lease_secs, port)
                ),
            )?;
            hosts.push(ha::Host {
                cfg,
                state: self.work.join(format!("state-failover-{n}")),
                log: self.work.join(format!("failover-{n}.log")),
                port,
                w: None,
            });
        }
        let bin = &self.bins.watcher;
        hosts[0].start(bin, self.verbose)?;
        let limit = Duration::from_secs(60);
        ha::wait_for("the first host is active and caught up", limit, || {
            hosts[0].is_active() && db.caught_up()
        })
        .await?;
        hosts[1].start(bin, self.verbose)?;
        ha::wait_for("the second host is the standby", limit, || {
            hosts[1].is_standby()
        })
        .await?;
        let reqs = self.requests(runs + 1)?;
        let confirmed_at = |r: &Req| -> Option<i64> {
            let ids: HashSet<&str> = [r.id.as_str()].into();
            self.confirms(&ids)
                .get(&r.id)
                .and_then(|v| v.first().map(|c| c.0))
        };
        // One mail through the first active host, so that it is fully up.
        self.deliver(Backend::Ews, reqs[0].mail())?;
        ha::wait_for("the first mail confirmed", limit, || {
            confirmed_at(&reqs[0]).is_some()
        })
        .await?;
        let mut samples = Vec::with_capacity(runs);
        for r in &reqs[1..] {
            let Some(a) = hosts.iter().position(ha::Host::is_active) else {
                bail!("no host says it is active (/readyz)");
            };
            let killed_at = self.env.sim.state.clock.now_ms();
            if let Some(w) = hosts[a].w.take() {
                w.kill();
            }
            self.deliver(Backend::Ews, r.mail())?;
            let within = Duration::from_secs(3 * lease_secs + 60);
            ha::wait_for("the mail after the kill confirmed", within, || {
                confirmed_at(r).is_some()
            })
            .await
            .map_err(|e| {
                anyhow!(
                    "{e}; logs {}, {}",
                    hosts[0].log.display(),
                    hosts[1].log.display()
                )
            })?;
            let at = confirmed_at(r).unwrap_or(killed_at);
            samples.push((at - killed_at) as f64);
            hosts[a].start(bin, self.verbose)?;
            ha::wait_for("the killed host back as the standby", limit, || {
                hosts[a].is_standby()
            })
            .await?;
        }
        ha::wait_for("every mail of the failover run filed", limit, || {
            self.filed(Backend::Ews, &reqs) == reqs.len()
        })
        .await?;
        self.check_exactly_once(&reqs)?;
        for h in &mut hosts {
            if let Some(w) = h.w.take() {
                stop(w)?;
            }
        }
        Ok(report::Failover::of(&samples, lease_secs))
    }

    /// The watcher tests' configuration plus `mailbox_extra` / `watcher_extra`, in a file.
    fn config(&self, name: &str, mailbox_extra: &str, watcher_extra: &str) -> Result<PathBuf> {
        self.config_on(Backend::Ews, name, mailbox_extra, watcher_extra)
    }

    /// [`Self::config`] with the mailbox of `backend`.
    fn config_on(
        &self,
        backend: Backend,
        name: &str,
        mailbox_extra: &str,
        watcher_extra: &str,
    ) -> Result<PathBuf> {
        let p = self.work.join(format!("{name}.toml"));
        // Graph: the product's retries (the watcher tests' configuration has none).
        let extra = if backend == Backend::Graph {
            format!("{mailbox_extra}\nmax_back_off_secs = 2")
        } else {
            mailbox_extra.to_string()
        };
        let text = watcher_env::config_text_on(self.env, backend, "static", &extra, watcher_extra);
        let text = if backend == Backend::Graph {
            text.replace(
                "retries = 0\nbackoff_ms = 10\n",
                "retries = 3\nbackoff_ms = 100\n",
            )
        } else {
            text
        };
        std::fs::write(&p, text)?;
        Ok(p)
    }

    /// `n` single-level requests by dave on DBSafe, waiting for level 1.
    fn requests(&self, n: usize) -> Result<Vec<Req>> {
        let now = self.env.sim.state.clock.now();
        (0..n)
            .map(|_| {
                let number = self.next.get();
                self.next.set(number + 1);
                let def: pam_sim::pvwa::RequestDef = serde_json::from_value(serde_json::json!({
                    "number": number, "safe": "DBSafe", "requester": "dave", "levels": [1, 0],
                }))?;
                let id = self.env.sim.state.pvwa.add(def, now)?;
                Ok(Req { number, id })
            })
            .collect()
    }

    /// Put a mail into the approval mailbox's inbox; pam-sim's delivery time.
    fn deliver(&self, backend: Backend, raw: Vec<u8>) -> Result<i64> {
        let now = self.env.sim.state.clock.now_ms();
        let st = &self.env.sim.state;
        match backend {
            Backend::Ews => st.ews.deliver(BOX, None, raw, now),
            Backend::Graph => st.graph.deliver(BOX, None, raw, now),
        }
        .map_err(|e| anyhow!("delivering a mail: {e}"))?;
        Ok(now)
    }

    /// Replies sent so far: (recipients, pam-sim's send time).
    fn sent(&self, backend: Backend) -> Vec<(Vec<String>, i64)> {
        let st = &self.env.sim.state;
        match backend {
            Backend::Ews => st
                .ews
                .sent()
                .into_iter()
                .map(|s| (s.to, s.sent_ms))
                .collect(),
            Backend::Graph => st
                .graph
                .sent()
                .into_iter()
                .map(|s| (s.to, s.sent_ms))
                .collect(),
        }
    }

    /// Graph mail API calls pam-sim answered for the bot mailbox.
    fn graph_calls(&self) -> u64 {
        self.env
            .sim
            .state
            .graph
            .stats()
            .calls
            .get(&BOX.to_ascii_lowercase())
            .copied()
            .unwrap_or(0)
    }

    /// PVWA confirm times (pam-sim's clock) per request among `ids`, with the acting user.
    fn confirms(&self, ids: &HashSet<&str>) -> HashMap<String, Vec<(i64, String)>> {
        let mut m: HashMap<String, Vec<(i64, String)>> = HashMap::new();
        for a in self.env.sim.state.pvwa.actions() {
            if a.action == "confirm" && ids.contains(a.request_id.as_str()) {
                m.entry(a.request_id).or_default().push((a.time_ms, a.user));
            }
        }
        m
    }

    /// Exactly one confirm per request, by the level-1 account: the approvals were right.
    fn check_exactly_once(&self, reqs: &[Req]) -> Result<HashMap<String, i64>> {
        let ids: HashSet<&str> = reqs.iter().map(|r| r.id.as_str()).collect();
        let c = self.confirms(&ids);
        let mut out = HashMap::new();
        for r in reqs {
            match c.get(&r.id).map(Vec::as_slice) {
                Some([(t, user)]) if user == "svc_pam_level1" => {
                    out.insert(r.id.clone(), *t);
                }
                other => bail!(
                    "request {}: expected exactly one confirm by svc_pam_level1, PVWA saw {other:?}",
                    r.id
                ),
            }
        }
        Ok(out)
    }

    /// How many of `reqs`' mails are in the Processed folder.
    fn filed(&self, backend: Backend, reqs: &[Req]) -> usize {
        let processed: HashSet<String> = watcher_env::folder_on(self.env, backend, "Processed")
            .into_iter()
            .collect();
        reqs.iter().filter(|r| processed.contains(&r.mid())).count()
    }

    /// Start a watcher on its own state directory and wait until it is ready for mail: the
    /// start-up catch-up is done and (streaming) its subscription exists. On PostgreSQL a
    /// standby host (its own state directory, the same database) is started once the first
    /// is active.
    async fn watcher(
        &self,
        name: &str,
        cfg: &Path,
        streaming: bool,
        journal: Journal<'_>,
    ) -> Result<(Watcher, Option<Watcher>)> {
        let subs = self.env.sim.state.ews.subscription_count();
        let mut w = Watcher::start(
            &self.bins.watcher,
            cfg,
            &self.work.join(format!("state-{name}")),
            &self.work.join(format!("{name}.log")),
            self.verbose,
        )?;
        let ews = &self.env.sim.state.ews;
        wait_until(
            "the watcher is ready",
            Duration::from_secs(30),
            &mut w,
            |w| {
                let caught_up = match journal {
                    Journal::Sqlite => w.caught_up(),
                    Journal::Pg { db, .. } => db.caught_up(),
                };
                Ok(caught_up && (!streaming || ews.subscription_count() > subs))
            },
        )
        .await?;
        let standby = match journal {
            Journal::Sqlite => None,
            Journal::Pg { standby, port, .. } => {
                let mut s = Watcher::start(
                    &self.bins.watcher,
                    standby,
                    &self.work.join(format!("state-{name}-standby")),
                    &self.work.join(format!("{name}-standby.log")),
                    self.verbose,
                )?;
                wait_until(
                    "the second host is the standby",
                    Duration::from_secs(30),
                    &mut s,
                    |_| Ok(ha::readyz(port).starts_with("standby")),
                )
                .await?;
                Some(s)
            }
        };
        // Let the notification stream connect (GetStreamingEvents follows Subscribe).
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok((w, standby))
    }

    /// `n` mails, one at a time with random gaps; delivery -> confirm per mail.
    async fn latency(
        &self,
        run: Run,
        cfg: &Path,
        n: usize,
        gaps: (u64, u64),
        rng: &mut rand::rngs::StdRng,
        journal: Journal<'_>,
    ) -> Result<stats::Summary> {
        let (backend, name, streaming) = run.parts();
        let name = if matches!(journal, Journal::Pg { .. }) {
            "postgres"
        } else {
            name
        };
        let reqs = self.requests(n)?;
        let mails: Vec<Vec<u8>> = reqs.iter().map(Req::mail).collect();
        let (mut w, standby) = self.watcher(name, cfg, streaming, journal).await?;
        let mut delivered = Vec::with_capacity(n);
        for (r, raw) in reqs.iter().zip(mails) {
            delivered.push((r.id.clone(), self.deliver(backend, raw)?));
            w.check_alive()?;
            tokio::time::sleep(Duration::from_millis(rng.random_range(gaps.0..=gaps.1))).await;
        }
        let ids: HashSet<&str> = reqs.iter().map(|r| r.id.as_str()).collect();
        let poll = if streaming { 0 } else { 3 * 60 };
        let limit = Duration::from_secs(60 + poll);
        wait_until("every mail confirmed", limit, &mut w, |_| {
            Ok(self.confirms(&ids).len() == n)
        })
        .await?;
        wait_until("every mail answered and filed", limit, &mut w, |_| {
            Ok(self.filed(backend, &reqs) == n)
        })
        .await?;
        let at = self.check_exactly_once(&reqs)?;
        stop(w)?;
        if let Some(s) = standby {
            stop(s)?;
        }
        let samples: Vec<f64> = delivered
            .iter()
            .map(|(id, t)| (at[id] - t) as f64)
            .collect();
        Ok(stats::summarize(&samples))
    }

    /// `n` mails delivered at once while a streaming watcher runs; the watcher's memory.
    async fn burst(
        &self,
        backend: Backend,
        cfg: &Path,
        n: usize,
        journal: Journal<'_>,
    ) -> Result<(Burst, Option<u64>, Option<u64>)> {
        let reqs = self.requests(n)?;
        let mails: Vec<Vec<u8>> = reqs.iter().map(Req::mail).collect();
        let streaming = backend == Backend::Ews;
        let name = match (streaming, journal) {
            (_, Journal::Pg { .. }) => "postgres-burst",
            (true, _) => "burst",
            (false, _) => "graph-burst",
        };
        let (mut w, standby) = self.watcher(name, cfg, streaming, journal).await?;
        let idle = w.memory_kib().0;
        let sent0 = self.sent(backend).len();
        let ops0 = self.ews_ops();
        let graph0 = self.graph_calls();
        let cpu0 = w.cpu_ms();
        let t = Instant::now();
        let mut t0 = None;
        for raw in mails {
            let at = self.deliver(backend, raw)?;
            t0.get_or_insert(at);
        }
        let deliver_ms = t.elapsed().as_secs_f64() * 1000.0;
        let t0 = t0.unwrap_or_default();
        let ids: HashSet<&str> = reqs.iter().map(|r| r.id.as_str()).collect();
        let (mut confirmed, mut answered, mut filed) = (None, None, None);
        let mut peak_seen = 0u64;
        // (A paced burst drains its replies at the sending limit: two seconds a mail at most.)
        let until = Instant::now() + Duration::from_secs(120 + n as u64 / 2 + 2 * n as u64);
        while filed.is_none() {
            w.check_alive()?;
            if Instant::now() > until {
                bail!(
                    "the burst did not drain in time (confirmed: {}, answered: {}); watcher log {}:\n{}",
                    confirmed.is_some(),
                    answered.is_some(),
                    w.log.display(),
                    proc::tail(&w.log, 20)
                );
            }
            peak_seen = peak_seen.max(w.memory_kib().0.unwrap_or(0));
            if confirmed.is_none() {
                let c = self.confirms(&ids);
                if c.len() == n {
                    confirmed = c.values().flatten().map(|(t, _)| *t).max();
                }
            } else if answered.is_none() {
                let sent = self.sent(backend);
                let ours: Vec<i64> = sent
                    .get(sent0..)
                    .unwrap_or_default()
                    .iter()
                    .filter(|s| s.0.iter().any(|t| t == "alice@example.test"))
                    .map(|s| s.1)
                    .collect();
                if ours.len() >= n {
                    answered = ours.iter().max().copied();
                }
            } else if self.filed(backend, &reqs) == n {
                filed = Some(self.env.sim.state.clock.now_ms());
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let peak = w.memory_kib().1.or(Some(peak_seen).filter(|p| *p > 0));
        let cpu = w.cpu_ms().zip(cpu0).map(|(b, a)| (b - a) / n as f64);
        let graph_calls =
            (backend == Backend::Graph).then(|| (self.graph_calls() - graph0) as f64 / n as f64);
        let calls = ops0
            .zip(self.ews_ops())
            .filter(|_| streaming)
            .map(|(a, b)| {
                b.into_iter()
                    .map(|(op, c)| {
                        let d = c - a.get(&op).copied().unwrap_or(0);
                        (op, d as f64 / n as f64)
                    })
                    .filter(|(_, v)| *v > 0.0)
                    .collect()
            });
        self.check_exactly_once(&reqs)?;
        stop(w)?;
        if let Some(s) = standby {
            stop(s)?;
        }
        let secs = |t: Option<i64>| t.map(|t| (t - t0) as f64 / 1000.0).unwrap_or(f64::NAN);
        let filed_s = secs(filed);
        Ok((
            Burst {
                mails: n,
                delivered: if streaming {
                    "while the watcher runs, streaming, after its start-up catch-up".into()
                } else {
                    "while the watcher runs, Graph delta polling, after its start-up catch-up"
                        .into()
                },
                deliver_ms,
                confirmed_s: secs(confirmed),
                answered_s: secs(answered),
                filed_s,
                mails_per_s: n as f64 / filed_s,
                confirms_per_s: n as f64 / secs(confirmed),
                replies_per_min: 60.0 * n as f64 / secs(answered),
                watcher_cpu_ms_per_mail: cpu,
                ews_calls_per_mail: calls,
                graph_calls_per_mail: graph_calls,
            },
            peak,
            idle,
        ))
    }

    /// EWS requests received so far, by operation; `None` once the transcript has dropped
    /// old entries (the counts would be wrong).
    fn ews_ops(&self) -> Option<std::collections::BTreeMap<String, usize>> {
        let t = self.env.sim.state.ews.transcript();
        if t.len() >= 19_000 {
            return None;
        }
        let mut m = std::collections::BTreeMap::new();
        for (name, _) in &t {
            if let Some(op) = name.strip_prefix("request-") {
                *m.entry(op.to_string()).or_insert(0) += 1;
            }
        }
        Some(m)
    }

    /// `get-inco-req --help` wall times (one warm-up run first, not counted).
    fn startup(&self, runs: usize) -> Result<Vec<f64>> {
        let mut out = Vec::with_capacity(runs);
        for i in 0..=runs {
            let mut c = proc::command(&self.bins.get_inco_req);
            c.arg("--help");
            let (d, o) = proc::timed(c, None)?;
            if !o.status.success() {
                bail!("get-inco-req --help failed: {}", o.status);
            }
            if i > 0 {
                out.push(d.as_secs_f64() * 1000.0);
            }
        }
        Ok(out)
    }

    /// `first-level-approve -` on `n` ids against `n` runs of `first-level-approve ID`.
    fn batch(&self, cfg: &Path, n: usize) -> Result<Batch> {
        let reqs = self.requests(2 * n)?;
        let (piped, single) = reqs.split_at(n);
        let pvwa = &self.env.sim.state.pvwa;
        let approve = |args: &[&str], stdin: Option<&[u8]>| -> Result<Duration> {
            let mut c = proc::command(&self.bins.approve1);
            c.arg("--config").arg(cfg).args(args);
            let (d, o) = proc::timed(c, stdin)?;
            if !o.status.success() {
                bail!(
                    "first-level-approve {args:?} exited {}: {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr)
                );
            }
            Ok(d)
        };
        let l0 = pvwa.stats().logons;
        let ids: String = piped.iter().map(|r| format!("{}\n", r.id)).collect();
        let d = approve(&["-"], Some(ids.as_bytes()))?;
        let l1 = pvwa.stats().logons;
        let stdin = BatchRun {
            wall_ms: d.as_secs_f64() * 1000.0,
            per_id_ms: d.as_secs_f64() * 1000.0 / n as f64,
            logons: l1 - l0,
            confirmed: self.check_exactly_once(piped)?.len(),
        };
        let t = Instant::now();
        for r in single {
            approve(&[&r.id], None)?;
        }
        let d = t.elapsed();
        let separate = BatchRun {
            wall_ms: d.as_secs_f64() * 1000.0,
            per_id_ms: d.as_secs_f64() * 1000.0 / n as f64,
            logons: pvwa.stats().logons - l1,
            confirmed: self.check_exactly_once(single)?.len(),
        };
        Ok(Batch {
            ids: n,
            stdin,
            separate,
        })
    }
}

/// SIGTERM the watcher; it must exit 0.
fn stop(w: Watcher) -> Result<()> {
    let log = w.log.clone();
    let st = w.stop(Duration::from_secs(60))?;
    if !st.success() {
        bail!(
            "the watcher exited {st} after SIGTERM; its log {}:\n{}",
            log.display(),
            proc::tail(&log, 20)
        );
    }
    Ok(())
}

/// Poll `cond` every 20 ms until it holds; fail after `limit` or when the watcher ends.
async fn wait_until(
    what: &str,
    limit: Duration,
    w: &mut Watcher,
    mut cond: impl FnMut(&Watcher) -> Result<bool>,
) -> Result<()> {
    let until = Instant::now() + limit;
    loop {
        if cond(w)? {
            return Ok(());
        }
        w.check_alive()?;
        if Instant::now() > until {
            bail!(
                "not within {limit:?}: {what}; watcher log {}:\n{}",
                w.log.display(),
                proc::tail(&w.log, 20)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The three load averages of `/proc/loadavg`.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn machine(loadavg_start: String) -> Machine {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.trim() == "model name")
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let mem = proc::status_kib(&read("/proc/meminfo"), "MemTotal").unwrap_or(0) / 1024;
    let rustc = std::process::Command::new("rustc")
        .arg("-V")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "rustc unknown".into());
    Machine {
        nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu,
        mem_total_mib: mem,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
        rustc,
        loadavg_start,
        loadavg_end: loadavg(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_ranges_parse() {
        assert_eq!(parse_range("50-300"), Ok((50, 300)));
        assert_eq!(parse_range("0 - 0"), Ok((0, 0)));
        assert!(parse_range("300-50").is_err());
        assert!(parse_range("50").is_err());
    }

    #[test]
    fn quick_shrinks_every_count_and_flags_win() {
        let a = Args::parse_from(["pam-bench", "--quick", "--burst", "7"]);
        let p = Plan::of(&a);
        assert_eq!((p.mails, p.burst, p.batch, p.poll_secs), (10, 7, 10, 2));
        let full = Plan::of(&Args::parse_from(["pam-bench"]));
        assert_eq!(
            (
                full.mails,
                full.burst,
                full.batch,
                full.poll_secs,
                full.concurrency
            ),
            (200, 1000, 100, 15, 8)
        );
    }
}
