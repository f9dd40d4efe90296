//! The results: one JSON document (a stable shape, `schema` 1) and the tables printed on stdout,
//! with each goal of issue 7 marked met or missed (reported, never asserted).

use serde::Serialize;

use crate::stats::Summary;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: u32,
    pub started_at: String,
    pub machine: Machine,
    pub options: RunOptions,
    pub latency: Vec<Latency>,
    pub burst: Option<Burst>,
    pub footprint: Footprint,
    pub batch: Option<Batch>,
    /// The notice reader on hostile 10 MiB mails.
    pub hostile: Vec<crate::hostile::HostileRead>,
    /// The same watcher on Exchange Online (Graph), when run.
    pub graph: Option<GraphRun>,
    /// Two watcher hosts with the journal on PostgreSQL (issue 33), when run.
    pub ha: Option<HaRun>,
    pub goals: Vec<Goal>,
}

/// The Graph runs: latency with the default 2 s delta polling, and a burst.
#[derive(Debug, Clone, Serialize)]
pub struct GraphRun {
    pub latency: Latency,
    pub burst: Burst,
    /// Calls pam-sim refused for the 4-in-flight limit (the client should keep this at 0).
    pub throttled: u64,
    /// A burst under Exchange Online's sending limit (30 a minute), when run.
    pub paced: Option<PacedRun>,
}

/// A Graph burst with pam-sim enforcing 30 sends a minute and the watcher at its default pace:
/// confirmations at full speed, replies at the limit.
#[derive(Debug, Clone, Serialize)]
pub struct PacedRun {
    pub burst: Burst,
    /// Sends pam-sim refused for the limit (the pace should keep this at 0).
    pub sends_refused: u64,
    /// The window both sides counted in, seconds (30 sends a minute either way).
    pub window_secs: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu: String,
    pub mem_total_mib: u64,
    pub kernel: String,
    pub rustc: String,
    /// `/proc/loadavg` (1, 5, 15 minutes) when the run started and when it ended: other work
    /// on the machine shows here (the figures are only as quiet as the machine was).
    pub loadavg_start: String,
    pub loadavg_end: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunOptions {
    pub quick: bool,
    pub mails: usize,
    pub burst: usize,
    /// Mails of the paced Graph burst (0: not run).
    pub paced_burst: usize,
    pub batch: usize,
    pub latency_ms: u64,
    pub seed: u64,
    pub gap_ms: [u64; 2],
    pub poll_secs: u64,
    /// `[watcher] concurrency` (the product default unless --concurrency).
    pub concurrency: usize,
    pub startup_runs: usize,
    pub bin_dir: String,
}

/// Mail delivery -> PVWA confirm, from pam-sim's own clock on both ends.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// `streaming` or `poll`.
    pub mode: String,
    /// The poll interval in poll mode.
    pub poll_secs: Option<u64>,
    #[serde(flatten)]
    pub summary: Summary,
}

#[derive(Debug, Clone, Serialize)]
pub struct Burst {
    pub mails: usize,
    /// When the mails were delivered relative to the watcher.
    pub delivered: String,
    /// Time to put all mails into the inbox.
    pub deliver_ms: f64,
    /// From the first delivery until the last confirm (PVWA's clock), the last reply sent
    /// (EWS CreateItem), and every mail filed (observed by polling the folders).
    pub confirmed_s: f64,
    pub answered_s: f64,
    pub filed_s: f64,
    /// Mails per second, delivery to filed.
    pub mails_per_s: f64,
    /// Confirmations per second, delivery to the last confirm.
    pub confirms_per_s: f64,
    /// Replies per minute, delivery to the last reply sent.
    pub replies_per_min: f64,
    /// CPU time the watcher used per mail during the burst (user + system).
    pub watcher_cpu_ms_per_mail: Option<f64>,
    /// EWS operations the watcher sent per mail during the burst, by operation (pam-sim's
    /// transcript; absent when the transcript overflowed).
    pub ews_calls_per_mail: Option<std::collections::BTreeMap<String, f64>>,
    /// Graph mail API calls per mail during the burst (Graph runs only).
    pub graph_calls_per_mail: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Footprint {
    /// VmHWM of the watcher at the end of the burst.
    pub peak_rss_kib: Option<u64>,
    /// VmRSS of the watcher once started, before the burst.
    pub idle_rss_kib: Option<u64>,
    /// `get-inco-req --help`, wall time per run.
    pub startup_median_ms: f64,
    pub startup_runs: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct BatchRun {
    pub wall_ms: f64,
    pub per_id_ms: f64,
    /// PVWA logons counted by pam-sim during the run.
    pub logons: u64,
    pub confirmed: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Batch {
    pub ids: usize,
    /// `first-level-approve -` with every id on stdin.
    pub stdin: BatchRun,
    /// One `first-level-approve ID` per id.
    pub separate: BatchRun,
}

/// Failover times: SIGKILL of the active host until the next mail (delivered right after the
/// kill) is confirmed by the other host.
#[derive(Debug, Clone, Serialize)]
pub struct Failover {
    pub runs: usize,
    pub lease_secs: u64,
    pub p50_s: f64,
    pub p99_s: f64,
    pub max_s: f64,
    pub samples_s: Vec<f64>,
}

impl Failover {
    pub fn of(samples_ms: &[f64], lease_secs: u64) -> Failover {
        let s = crate::stats::summarize(samples_ms);
        Failover {
            runs: s.n,
            lease_secs,
            p50_s: s.p50_ms / 1000.0,
            p99_s: s.p99_ms / 1000.0,
            max_s: s.max_ms / 1000.0,
            samples_s: samples_ms.iter().map(|m| m / 1000.0).collect(),
        }
    }
}

/// The PostgreSQL runs, when made.
#[derive(Debug, Clone, Serialize)]
pub struct HaRun {
    /// The PostgreSQL server (`postgres --version`).
    pub server: String,
    /// Latency with an active host and a standby, streaming (as the SQLite streaming run).
    pub latency: Latency,
    pub burst: Burst,
    /// Absent in --quick or with --failovers 0 (`failover_skipped` says why).
    pub failover: Option<Failover>,
    pub failover_skipped: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    pub figure: String,
    pub goal: String,
    pub value: String,
    pub met: bool,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The goals of issue 7 against the figures (a figure not measured is missed).
pub fn goals(r: &Report) -> Vec<Goal> {
    let mut g = Vec::new();
    let streaming = r.latency.iter().find(|l| l.mode == "streaming");
    let lat = |p: fn(&Summary) -> f64| streaming.map(|l| p(&l.summary)).unwrap_or(f64::NAN);
    let p50 = lat(|s| s.p50_ms);
    let p99 = lat(|s| s.p99_ms);
    g.push(Goal {
        figure: "streaming latency p50".into(),
        goal: "<= 100 ms".into(),
        value: format!("{p50:.0} ms"),
        met: p50 <= 100.0,
    });
    g.push(Goal {
        figure: "streaming latency p99".into(),
        goal: "<= 500 ms".into(),
        value: format!("{p99:.0} ms"),
        met: p99 <= 500.0,
    });
    let rate = r.burst.as_ref().map(|b| b.mails_per_s).unwrap_or(f64::NAN);
    g.push(Goal {
        figure: "burst throughput".into(),
        goal: ">= 100 mails/s".into(),
        value: format!("{rate:.1} mails/s"),
        met: rate >= 100.0,
    });
    let rss = r.footprint.peak_rss_kib.map(mib).unwrap_or(f64::NAN);
    let worst = r.hostile.iter().map(|h| h.max_ms).fold(f64::NAN, f64::max);
    g.push(Goal {
        figure: "10 MiB hostile mail read".into(),
        goal: "< 1000 ms".into(),
        value: format!("{worst:.0} ms"),
        met: worst < 1000.0,
    });
    if let Some(gr) = &r.graph {
        let s = &gr.latency.summary;
        g.push(Goal {
            figure: "Graph latency p50 (2 s polling)".into(),
            goal: "<= 1500 ms".into(),
            value: format!("{:.0} ms", s.p50_ms),
            met: s.p50_ms <= 1500.0,
        });
        g.push(Goal {
            figure: "Graph latency p99 (2 s polling)".into(),
            goal: "<= 3000 ms".into(),
            value: format!("{:.0} ms", s.p99_ms),
            met: s.p99_ms <= 3000.0,
        });
        g.push(Goal {
            figure: "Graph burst throughput".into(),
            goal: ">= 50 mails/s".into(),
            value: format!("{:.1} mails/s", gr.burst.mails_per_s),
            met: gr.burst.mails_per_s >= 50.0,
        });
    }
    if let Some(h) = &r.ha {
        // Within 1.5x of the SQLite streaming run (issue 33).
        for (name, sq, pg) in [
            ("p50", p50, h.latency.summary.p50_ms),
            ("p99", p99, h.latency.summary.p99_ms),
        ] {
            g.push(Goal {
                figure: format!("PostgreSQL latency {name} (2 hosts)"),
                goal: format!("<= 1.5x SQLite ({} ms)", ms(1.5 * sq)),
                value: format!("{pg:.0} ms ({:.2}x)", pg / sq),
                met: pg <= 1.5 * sq,
            });
        }
        if let Some(f) = &h.failover {
            g.push(Goal {
                figure: format!("failover p99 (lease_secs {})", f.lease_secs),
                goal: "<= 15 s".into(),
                value: format!("{:.1} s", f.p99_s),
                met: f.p99_s <= 15.0,
            });
        }
    }
    g.push(Goal {
        figure: "watcher peak RSS".into(),
        goal: "<= 30 MiB".into(),
        value: format!("{rss:.1} MiB"),
        met: rss <= 30.0,
    });
    g
}

/// A plain text table, columns padded to their widest cell; numbers right-aligned.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < w.len() {
                w[i] = w[i].max(c.chars().count());
            }
        }
    }
    let numeric = |s: &str| {
        s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == '-')
    };
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = w[i].saturating_sub(c.chars().count());
            if i > 0 {
                out.push_str("  ");
            }
            if numeric(c) && i > 0 {
                out.push_str(&" ".repeat(pad));
                out.push_str(c);
            } else {
                out.push_str(c);
                if i + 1 < cells.len() {
                    out.push_str(&" ".repeat(pad));
                }
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    out.push_str(&line(
        w.iter()
            .map(|n| "-".repeat(*n))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    ));
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

fn ms(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Every table, as printed on stdout.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let m = &r.machine;
    let o = &r.options;
    out.push_str(&format!(
        "pam-bench: {} cores ({}), {} MiB RAM, {}; load average {} at the start, {} at the end\n\
         pam-sim latency {} ms per call, seed {}, watcher concurrency {}\n\n",
        m.nproc,
        m.cpu,
        m.mem_total_mib,
        m.rustc,
        m.loadavg_start,
        m.loadavg_end,
        o.latency_ms,
        o.seed,
        o.concurrency
    ));

    out.push_str(&format!(
        "Latency: mail delivered -> PVWA confirm ({} mails, one at a time, gaps {}-{} ms)\n",
        o.mails, o.gap_ms[0], o.gap_ms[1]
    ));
    let rows: Vec<Vec<String>> = r
        .latency
        .iter()
        .map(|l| {
            let s = &l.summary;
            vec![
                match l.poll_secs {
                    Some(p) => format!("{} (every {p} s)", l.mode),
                    None => l.mode.clone(),
                },
                s.n.to_string(),
                ms(s.p50_ms),
                ms(s.p95_ms),
                ms(s.p99_ms),
                ms(s.max_ms),
            ]
        })
        .collect();
    out.push_str(&table(
        &["mode", "mails", "p50 ms", "p95 ms", "p99 ms", "max ms"],
        &rows,
    ));

    if let Some(b) = &r.burst {
        out.push_str(&format!(
            "\nBurst: {} mails delivered at once ({}; delivery took {} ms)\n",
            b.mails,
            b.delivered,
            ms(b.deliver_ms)
        ));
        let rows = vec![
            vec![
                "all confirmed (PVWA)".into(),
                format!("{:.2}", b.confirmed_s),
            ],
            vec![
                "all answered (reply sent)".into(),
                format!("{:.2}", b.answered_s),
            ],
            vec![
                "all filed (in Processed)".into(),
                format!("{:.2}", b.filed_s),
            ],
            vec![
                "throughput, mails/s".into(),
                format!("{:.1}", b.mails_per_s),
            ],
            vec![
                "confirm rate, /s; reply rate, /min".into(),
                format!("{:.1}; {:.0}", b.confirms_per_s, b.replies_per_min),
            ],
        ];
        out.push_str(&table(&["from the first delivery until", "seconds"], &rows));
        if let Some(c) = b.watcher_cpu_ms_per_mail {
            out.push_str(&format!("watcher CPU per mail: {c:.2} ms\n"));
        }
        if let Some(calls) = &b.ews_calls_per_mail {
            let list: Vec<String> = calls.iter().map(|(k, v)| format!("{k} {v:.2}")).collect();
            out.push_str(&format!("EWS calls per mail: {}\n", list.join(", ")));
        }
    }

    let f = &r.footprint;
    out.push_str("\nFootprint\n");
    let kib = |v: Option<u64>| v.map(|k| format!("{:.1}", mib(k))).unwrap_or("-".into());
    let rows = vec![
        vec![
            "watcher peak RSS during the burst (VmHWM), MiB".into(),
            kib(f.peak_rss_kib),
        ],
        vec![
            "watcher RSS after start-up (VmRSS), MiB".into(),
            kib(f.idle_rss_kib),
        ],
        vec![
            format!("get-inco-req --help, median of {} runs, ms", f.startup_runs),
            ms(f.startup_median_ms),
        ],
    ];
    out.push_str(&table(&["figure", "value"], &rows));

    if let Some(b) = &r.batch {
        out.push_str(&format!("\nBatch approvals: {} request ids\n", b.ids));
        let row = |name: &str, x: &BatchRun| {
            vec![
                name.to_string(),
                ms(x.wall_ms),
                ms(x.per_id_ms),
                x.logons.to_string(),
                x.confirmed.to_string(),
            ]
        };
        let rows = vec![
            row("first-level-approve - (ids on stdin)", &b.stdin),
            row("first-level-approve ID, one run per id", &b.separate),
        ];
        out.push_str(&table(
            &["how", "wall ms", "ms per id", "PVWA logons", "confirmed"],
            &rows,
        ));
    }

    if !r.hostile.is_empty() {
        out.push('\n');
        out.push_str(&render_hostile(&r.hostile));
    }

    if let Some(g) = &r.graph {
        let s = &g.latency.summary;
        out.push_str(&format!(
            "\nGraph (Exchange Online): delta polled every {} s, at most 4 calls in flight\n",
            g.latency.poll_secs.unwrap_or(2)
        ));
        let b = &g.burst;
        let rows = vec![
            vec![
                format!("latency p50 / p95 / p99 / max, ms ({} mails)", s.n),
                format!(
                    "{} / {} / {} / {}",
                    ms(s.p50_ms),
                    ms(s.p95_ms),
                    ms(s.p99_ms),
                    ms(s.max_ms)
                ),
            ],
            vec![
                format!("burst of {}: all confirmed / answered / filed, s", b.mails),
                format!(
                    "{:.2} / {:.2} / {:.2}",
                    b.confirmed_s, b.answered_s, b.filed_s
                ),
            ],
            vec![
                "burst throughput, mails/s".into(),
                format!("{:.1}", b.mails_per_s),
            ],
            vec![
                "burst confirm rate, /s; reply rate, /min".into(),
                format!("{:.1}; {:.0}", b.confirms_per_s, b.replies_per_min),
            ],
            vec![
                "Graph calls per mail (burst)".into(),
                b.graph_calls_per_mail
                    .map(|c| format!("{c:.2}"))
                    .unwrap_or("-".into()),
            ],
            vec![
                "calls refused for the 4-in-flight limit".into(),
                g.throttled.to_string(),
            ],
        ];
        let mut rows = rows;
        if let Some(p) = &g.paced {
            let b = &p.burst;
            rows.push(vec![
                format!(
                    "paced burst of {} (server: 30 sends/min, counted per {} s): all confirmed / answered, s",
                    b.mails, p.window_secs
                ),
                format!("{:.2} / {:.2}", b.confirmed_s, b.answered_s),
            ]);
            rows.push(vec![
                "paced burst confirm rate, /s; reply rate, /min".into(),
                format!("{:.1}; {:.0}", b.confirms_per_s, b.replies_per_min),
            ]);
            rows.push(vec![
                "sends the server refused for its limit".into(),
                p.sends_refused.to_string(),
            ]);
        }
        out.push_str(&table(&["figure", "value"], &rows));
    }

    if let Some(h) = &r.ha {
        out.push_str(&format!(
            "\nTwo hosts, journal on PostgreSQL {} (loopback, TLS): an active host and a standby\n",
            h.server
        ));
        let s = &h.latency.summary;
        let b = &h.burst;
        let mut rows = vec![
            vec![
                format!(
                    "latency p50 / p95 / p99 / max, ms ({} mails, streaming)",
                    s.n
                ),
                format!(
                    "{} / {} / {} / {}",
                    ms(s.p50_ms),
                    ms(s.p95_ms),
                    ms(s.p99_ms),
                    ms(s.max_ms)
                ),
            ],
            vec![
                format!("burst of {}: all confirmed / answered / filed, s", b.mails),
                format!(
                    "{:.2} / {:.2} / {:.2}",
                    b.confirmed_s, b.answered_s, b.filed_s
                ),
            ],
            vec![
                "burst throughput, mails/s".into(),
                format!("{:.1}", b.mails_per_s),
            ],
        ];
        match (&h.failover, &h.failover_skipped) {
            (Some(f), _) => rows.push(vec![
                format!(
                    "failover (SIGKILL of the active host -> next confirm), {} runs, lease_secs {}: p50 / p99 / max, s",
                    f.runs, f.lease_secs
                ),
                format!("{:.1} / {:.1} / {:.1}", f.p50_s, f.p99_s, f.max_s),
            ]),
            (None, Some(why)) => rows.push(vec!["failover".into(), why.clone()]),
            (None, None) => {}
        }
        out.push_str(&table(&["figure", "value"], &rows));
    }

    out.push_str("\nGoals (reported, not asserted)\n");
    let rows: Vec<Vec<String>> = r
        .goals
        .iter()
        .map(|g| {
            vec![
                g.figure.clone(),
                g.goal.clone(),
                g.value.clone(),
                if g.met { "met" } else { "MISSED" }.into(),
            ]
        })
        .collect();
    out.push_str(&table(&["figure", "goal", "value", ""], &rows));
    out
}

/// The hostile-mail table.
pub fn render_hostile(h: &[crate::hostile::HostileRead]) -> String {
    let rows: Vec<Vec<String>> = h
        .iter()
        .map(|x| {
            vec![
                x.name.clone(),
                format!("{:.1}", x.bytes as f64 / 1024.0 / 1024.0),
                format!("{:.0}", x.median_ms),
                format!("{:.0}", x.max_ms),
                x.runs.to_string(),
                x.outcome.clone(),
            ]
        })
        .collect();
    format!(
        "Notice reader on hostile mails (in-process, this build):\n{}",
        table(
            &["mail", "MiB", "median ms", "max ms", "runs", "outcome"],
            &rows
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::summarize;

    fn report() -> Report {
        Report {
            schema: 1,
            started_at: "2025-01-01T00:00:00Z".into(),
            machine: Machine {
                nproc: 2,
                cpu: "AMD EPYC".into(),
                mem_total_mib: 23_000,
                kernel: "6.1".into(),
                rustc: "rustc 1.95.0".into(),
                loadavg_start: "0.1 0.1 0.1".into(),
                loadavg_end: "0.2 0.1 0.1".into(),
            },
            options: RunOptions {
                quick: false,
                mails: 3,
                burst: 10,
                paced_burst: 0,
                batch: 2,
                latency_ms: 5,
                seed: 7,
                gap_ms: [50, 300],
                poll_secs: 15,
                concurrency: 4,
                startup_runs: 3,
                bin_dir: "/x".into(),
            },
            latency: vec![Latency {
                mode: "streaming".into(),
                poll_secs: None,
                summary: summarize(&[40.0, 60.0, 700.0]),
            }],
            burst: Some(Burst {
                mails: 10,
                delivered: "while the watcher runs".into(),
                deliver_ms: 3.0,
                confirmed_s: 0.05,
                answered_s: 0.07,
                filed_s: 0.08,
                mails_per_s: 125.0,
                confirms_per_s: 130.0,
                replies_per_min: 7200.0,
                watcher_cpu_ms_per_mail: Some(4.0),
                ews_calls_per_mail: None,
                graph_calls_per_mail: None,
            }),
            footprint: Footprint {
                peak_rss_kib: Some(40 * 1024),
                idle_rss_kib: Some(10 * 1024),
                startup_median_ms: 2.5,
                startup_runs: 3,
            },
            batch: None,
            hostile: vec![crate::hostile::HostileRead {
                name: "distinct Request Id lines".into(),
                bytes: 10 * 1024 * 1024,
                median_ms: 300.0,
                max_ms: 320.0,
                runs: 5,
                outcome: "conflicting_fields".into(),
            }],
            graph: None,
            ha: None,
            goals: vec![],
        }
    }

    #[test]
    fn goals_are_judged_on_the_figures() {
        let g = goals(&report());
        let met: Vec<(&str, bool)> = g.iter().map(|g| (g.figure.as_str(), g.met)).collect();
        assert_eq!(
            met,
            [
                ("streaming latency p50", true),
                ("streaming latency p99", false),
                ("burst throughput", true),
                ("10 MiB hostile mail read", true),
                ("watcher peak RSS", false),
            ]
        );
        assert_eq!(g[1].value, "700 ms");
        assert_eq!(g[3].value, "320 ms");
        assert_eq!(g[4].value, "40.0 MiB");
    }

    #[test]
    fn a_figure_not_measured_is_missed() {
        let mut r = report();
        r.latency.clear();
        r.burst = None;
        r.footprint.peak_rss_kib = None;
        r.hostile.clear();
        assert!(goals(&r).iter().all(|g| !g.met));
    }

    #[test]
    fn tables_align_columns() {
        let t = table(
            &["mode", "p50 ms"],
            &[
                vec!["streaming".into(), "7.5".into()],
                vec!["poll".into(), "7512".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "mode       p50 ms");
        assert_eq!(lines[1], "---------  ------");
        assert_eq!(lines[2], "streaming     7.5");
        assert_eq!(lines[3], "poll         7512");
    }

    #[test]
    fn the_rendering_names_every_section_and_each_goal_verdict() {
        let mut r = report();
        r.goals = goals(&r);
        let text = render(&r);
        for s in [
            "Latency",
            "Burst",
            "Footprint",
            "hostile",
            "Goals",
            "MISSED",
            "met",
        ] {
            assert!(text.contains(s), "{s} in\n{text}");
        }
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(json["latency"][0]["p99_ms"], 700.0);
        assert_eq!(json["burst"]["mails_per_s"], 125.0);
    }
}
