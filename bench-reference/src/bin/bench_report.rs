//! `bench-report`: reads the JSON reports of `etcd-scheme-bench` and `whereabouts-ctl bench`
//! (the shared schema) from a results directory, prints the side-by-side table with ratios as
//! Markdown, and renders throughput and p99 against clients for every system as a PNG.
//!
//! The etcd references are told apart by `system`: whereabouts' whole-pool scheme and, where a
//! directory has them (`*-etcdkey.json` from `benches/compare.sh`), the key-per-address scheme; the
//! table then has a column and a whereabouts-rs ratio for each, and so has the floor of
//! `floor-bench echo` (`*-floor.json`: a bare tonic echo, whose ratio is below 1×). A directory
//! with the whole-pool reference only (every one written before key-per-address existed) gives
//! the table it always gave.
//!
//! `bench-report --results DIR [--plot docs/benchmarks-compare.png]`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use plotters::prelude::*;
use serde::Deserialize;

/// Side-by-side table and plot of benchmark results.
#[derive(Debug, Parser)]
#[command(name = "bench-report", version)]
struct Args {
    /// Directory holding the `*.json` reports (one JSON document per file).
    #[arg(long)]
    results: PathBuf,
    /// Write the plot here (PNG).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// A TrueType font for the plot's text [default: DejaVu Sans from fonts-dejavu-core].
    #[arg(long, env = "BENCH_FONT")]
    font: Option<PathBuf>,
    /// Title line of the plot [default: names the references the results hold].
    #[arg(long)]
    title: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Latency {
    p50: f64,
    p99: f64,
}

/// The fields of the shared schema this report uses.
#[derive(Debug, Clone, Deserialize)]
struct Run {
    system: String,
    clients: u32,
    pools: u32,
    ops_ok: u64,
    errors: u64,
    throughput: f64,
    latency_ms: Latency,
    mix: String,
    prefill: u64,
    #[serde(default)]
    allocations_ok: u64,
    duration_s: f64,
}

const ETCD: &str = "etcd-whereabouts-scheme";
const ETCD_KEY: &str = "etcd-key-per-address";
/// `floor-bench echo`: a bare tonic unary echo at the same concurrency (the floor, not a rival).
const FLOOR: &str = "tonic-echo-floor";
const WRS: &str = "whereabouts-rs";

/// An etcd reference scheme as the table and the plot name it.
#[derive(Debug, PartialEq, Eq)]
struct Reference {
    /// Its reports' `system`.
    system: &'static str,
    /// Its name in the column headers when there is more than one reference.
    short: &'static str,
    /// Its line in the plot's legend.
    legend: &'static str,
    /// Its colour in the plot.
    color: RGBColor,
}

/// Every reference, in the order of the columns. The echo floor's ratio says how close
/// whereabouts-rs comes to one bare RPC per operation (below 1×: a fraction of the floor).
const REFERENCES: [Reference; 3] = [
    Reference {
        system: ETCD,
        short: "whole-pool",
        legend: "etcd + whereabouts scheme",
        color: RGBColor(0xd6, 0x27, 0x28),
    },
    Reference {
        system: ETCD_KEY,
        short: "key-per-address",
        legend: "etcd + key per address",
        color: RGBColor(0xff, 0x7f, 0x0e),
    },
    Reference {
        system: FLOOR,
        short: "echo floor",
        legend: "bare tonic echo (floor)",
        color: RGBColor(0x7f, 0x7f, 0x7f),
    },
];

/// The references that have at least one run in `data`; whole-pool alone when none has (the
/// table of a directory holding only whereabouts-rs runs keeps its usual columns).
fn references(data: &Results) -> Vec<&'static Reference> {
    let present = |r: &Reference| data.values().flat_map(|c| c.values()).any(|runs| runs.contains_key(r.system));
    let refs: Vec<&Reference> = REFERENCES.iter().filter(|r| present(r)).collect();
    if refs.is_empty() {
        vec![&REFERENCES[0]]
    } else {
        refs
    }
}

/// Whether the table keeps its columns of before key-per-address (whole-pool is the only reference).
fn legacy(refs: &[&Reference]) -> bool {
    refs.len() == 1 && refs[0].system == ETCD
}

const LEGACY_TITLE: &str = "whereabouts-rs vs whereabouts' scheme on etcd (3 nodes, loopback)";
const TITLE: &str = "whereabouts-rs vs etcd, whole-pool and key-per-address schemes (3 nodes, loopback)";

/// A workload: mix, prefill, pools (clients vary within it).
type Workload = (String, u64, u32);
/// Runs by workload, then clients, then system.
type Results = BTreeMap<Workload, BTreeMap<u32, BTreeMap<String, Run>>>;
/// A metric plotted against clients.
type Metric = (&'static str, fn(&Run) -> f64);

fn workload_name(w: &Workload) -> String {
    let kind = match w.0.as_str() {
        "1:0" => "fill".to_string(),
        "1:1" if w.1 > 0 => format!("steady 1:1, prefill {}", w.1),
        other => format!("mix {other}"),
    };
    format!("{kind}, {} pool{}", w.2, if w.2 == 1 { "" } else { "s" })
}

fn load(dir: &Path) -> anyhow::Result<Results> {
    let mut out: Results = BTreeMap::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
        let Ok(run) = serde_json::from_str::<Run>(text.trim()) else {
            eprintln!("bench-report: skipping {} (not a bench report)", f.display());
            continue;
        };
        let w = (run.mix.clone(), run.prefill, run.pools);
        out.entry(w).or_default().entry(run.clients).or_default().insert(run.system.clone(), run);
    }
    anyhow::ensure!(!out.is_empty(), "no reports in {}", dir.display());
    Ok(out)
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a > 0.0 {
        let r = a / b;
        if r >= 100.0 {
            format!("{r:.0}×")
        } else if r >= 10.0 {
            format!("{r:.1}×")
        } else {
            format!("{r:.2}×")
        }
    } else {
        "–".into()
    }
}

fn num(x: f64) -> String {
    if x >= 1000.0 {
        let s = format!("{x:.0}");
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(' ');
            }
            out.push(c);
        }
        out
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn table(data: &Results) -> String {
    let refs = references(data);
    let legacy = legacy(&refs);
    let label = |legacy_label: &str, per_ref: &dyn Fn(&Reference) -> String| -> Vec<String> {
        if legacy {
            vec![legacy_label.to_string()]
        } else {
            refs.iter().map(|r| per_ref(r)).collect()
        }
    };
    let mut header: Vec<String> = vec!["workload".into(), "clients".into()];
    header.extend(label("etcd ops/s", &|r| format!("{} ops/s", r.short)));
    header.push("whereabouts-rs ops/s".into());
    header.extend(label("throughput ratio", &|r| format!("wrs ÷ {}", r.short)));
    header.extend(label("etcd p50 ms", &|r| format!("{} p50 ms", r.short)));
    header.push("wrs p50 ms".into());
    header.extend(label("etcd p99 ms", &|r| format!("{} p99 ms", r.short)));
    header.push("wrs p99 ms".into());
    header.extend(label("p99 ratio (etcd/wrs)", &|r| format!("p99 ratio ({}/wrs)", r.short)));
    let names: Vec<&str> = refs.iter().map(|r| if legacy { "etcd" } else { r.short }).collect();
    header.push(format!("errors {} / wrs", names.join(" / ")));

    let mut s = String::new();
    s.push_str(&format!("| {} |\n", header.join(" | ")));
    let align: Vec<&str> = (0..header.len()).map(|i| if i == 0 { "---" } else { "---:" }).collect();
    s.push_str(&format!("|{}|\n", align.join("|")));
    let f = |run: Option<&Run>, g: fn(&Run) -> f64| run.map_or("–".into(), |x| num(g(x)));
    let tp: fn(&Run) -> f64 = |x| x.throughput;
    let p50: fn(&Run) -> f64 = |x| x.latency_ms.p50;
    let p99: fn(&Run) -> f64 = |x| x.latency_ms.p99;
    for (w, by_clients) in data {
        for (clients, runs) in by_clients {
            let es: Vec<Option<&Run>> = refs.iter().map(|r| runs.get(r.system)).collect();
            let r = runs.get(WRS);
            let both = |e: Option<&Run>, g: fn(&Run, &Run) -> String| match (e, r) {
                (Some(e), Some(r)) => g(e, r),
                _ => "–".into(),
            };
            let mut row: Vec<String> = vec![workload_name(w), clients.to_string()];
            row.extend(es.iter().map(|e| f(*e, tp)));
            row.push(f(r, tp));
            row.extend(es.iter().map(|e| both(*e, |e, r| ratio(r.throughput, e.throughput))));
            row.extend(es.iter().map(|e| f(*e, p50)));
            row.push(f(r, p50));
            row.extend(es.iter().map(|e| f(*e, p99)));
            row.push(f(r, p99));
            row.extend(es.iter().map(|e| both(*e, |e, r| ratio(e.latency_ms.p99, r.latency_ms.p99))));
            let errs = |run: Option<&Run>| run.map_or("–".into(), |x| x.errors.to_string());
            let mut all_errs: Vec<String> = es.iter().map(|e| errs(*e)).collect();
            all_errs.push(errs(r));
            row.push(all_errs.join(" / "));
            s.push_str(&format!("| {} |\n", row.join(" | ")));
        }
    }
    s
}

fn register_font(path: Option<&Path>) -> anyhow::Result<()> {
    let candidates: Vec<PathBuf> = match path {
        Some(p) => vec![p.to_path_buf()],
        None => [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
        ]
        .iter()
        .map(PathBuf::from)
        .collect(),
    };
    let file = candidates.iter().find(|p| p.exists()).with_context(|| {
        format!("no font found (tried {candidates:?}); apt-get install fonts-dejavu-core or pass --font")
    })?;
    let bytes: &'static [u8] = Box::leak(std::fs::read(file)?.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("{} is not a usable TrueType font", file.display()))?;
    Ok(())
}

/// Points (log2 of the clients, value).
type Series = Vec<(f64, f64)>;

fn series(by_clients: &BTreeMap<u32, BTreeMap<String, Run>>, system: &str, y: fn(&Run) -> f64) -> Series {
    by_clients
        .iter()
        .filter_map(|(c, runs)| runs.get(system).map(|r| (f64::from(*c).log2(), y(r))))
        .filter(|(_, v)| *v > 0.0)
        .collect()
}

fn bounds(all: &[&Series]) -> (f64, f64) {
    let ys = all.iter().flat_map(|s| s.iter().map(|p| p.1));
    let (lo, hi) = ys.fold((f64::MAX, f64::MIN), |(lo, hi), y| (lo.min(y), hi.max(y)));
    if lo > hi {
        return (0.1, 10.0);
    }
    let lo = 10f64.powf(lo.log10().floor());
    let hi = 10f64.powf(hi.log10().ceil());
    (lo, if hi <= lo { lo * 10.0 } else { hi })
}

fn plot(data: &Results, out: &Path, title: Option<&str>) -> anyhow::Result<()> {
    let refs = references(data);
    let title = title.unwrap_or(if legacy(&refs) { LEGACY_TITLE } else { TITLE });
    let cols = data.len();
    let (w, h) = ((440 * cols as u32).max(900), 780);
    let root = BitMapBackend::new(out, (w, h)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let panels = root.split_evenly((2, cols));
    let metrics: [Metric; 2] = [("ok ops/s", |r| r.throughput), ("p99 latency, ms", |r| r.latency_ms.p99)];
    let wrs_color = RGBColor(0x1f, 0x77, 0xb4);
    for (row, (label, y)) in metrics.iter().enumerate() {
        for (col, (wl, by_clients)) in data.iter().enumerate() {
            let area = &panels[row * cols + col];
            let mut lines: Vec<(&str, Series, RGBColor)> =
                refs.iter().map(|rf| (rf.legend, series(by_clients, rf.system, *y), rf.color)).collect();
            lines.push(("whereabouts-rs", series(by_clients, WRS, *y), wrs_color));
            let (lo, hi) = bounds(&lines.iter().map(|l| &l.1).collect::<Vec<_>>());
            let max_log2 = f64::from(by_clients.keys().max().copied().unwrap_or(1).max(2)).log2().ceil();
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{} — {label}", workload_name(wl)), ("sans-serif", 15))
                .margin(10)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(-0.4f64..max_log2 + 0.4, (lo..hi).log_scale())?;
            chart
                .configure_mesh()
                .x_desc("clients (log scale)")
                .y_desc(*label)
                .x_labels(max_log2 as usize + 2)
                .x_label_formatter(&|x| format!("{:.0}", 2f64.powf(x.round())))
                .y_label_formatter(&|y| num(*y))
                .draw()?;
            for (name, pts, color) in &lines {
                let color = *color;
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
                    .label(*name)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
                chart.draw_series(pts.iter().map(|p| Circle::new(*p, 4, color.filled())))?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 12))
                .draw()?;
        }
    }
    root.present()?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let data = load(&args.results)?;
    print!("{}", table(&data));
    for (w, by_clients) in &data {
        for (c, runs) in by_clients {
            for run in runs.values() {
                if run.duration_s <= 0.0 || run.ops_ok == 0 {
                    eprintln!("bench-report: {} {} clients {c}: no successful op", workload_name(w), run.system);
                }
                let _ = run.allocations_ok;
            }
        }
    }
    if let Some(out) = &args.plot {
        register_font(args.font.as_deref())?;
        plot(&data, out, args.title.as_deref())?;
        eprintln!("bench-report: plot written to {}", out.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(system: &str, clients: u32, throughput: f64, p99: f64, errors: u64) -> Run {
        let json = format!(
            r#"{{"system":"{system}","clients":{clients},"pools":1,"ops_ok":100,"errors":{errors},"conflicts":0,
                "duration_s":1.0,"throughput":{throughput},"latency_ms":{{"p50":1.0,"p99":{p99},"p999":1,"max":1}},
                "mix":"1:1","prefill":2048,"allocations_ok":50,"scheme":"ignored"}}"#
        );
        serde_json::from_str(&json).unwrap()
    }

    fn results(runs: Vec<Run>) -> Results {
        let mut out: Results = BTreeMap::new();
        for r in runs {
            let w = (r.mix.clone(), r.prefill, r.pools);
            out.entry(w).or_default().entry(r.clients).or_default().insert(r.system.clone(), r);
        }
        out
    }

    #[test]
    fn whole_pool_only_keeps_the_table_of_before() {
        let t = table(&results(vec![run(ETCD, 16, 40.0, 2000.0, 3), run(WRS, 16, 2400.0, 16.0, 0)]));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "| workload | clients | etcd ops/s | whereabouts-rs ops/s | throughput ratio | etcd p50 ms | wrs p50 ms | etcd p99 ms | wrs p99 ms | p99 ratio (etcd/wrs) | errors etcd / wrs |");
        assert_eq!(lines[1], "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        assert_eq!(
            lines[2],
            "| steady 1:1, prefill 2048, 1 pool | 16 | 40.0 | 2 400 | 60.0× | 1.00 | 1.00 | 2 000 | 16.0 | 125× | 3 / 0 |"
        );
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn key_per_address_adds_its_columns_and_ratios() {
        let data = results(vec![
            run(ETCD, 16, 40.0, 2000.0, 3),
            run(ETCD_KEY, 16, 800.0, 40.0, 1),
            run(WRS, 16, 2400.0, 16.0, 0),
            run(ETCD, 64, 15.0, 9000.0, 12), // no key-per-address run for 64 clients
            run(WRS, 64, 3800.0, 45.0, 0),
        ]);
        assert_eq!(references(&data).len(), 2);
        let t = table(&data);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "| workload | clients | whole-pool ops/s | key-per-address ops/s | whereabouts-rs ops/s | wrs ÷ whole-pool \
             | wrs ÷ key-per-address | whole-pool p50 ms | key-per-address p50 ms | wrs p50 ms | whole-pool p99 ms \
             | key-per-address p99 ms | wrs p99 ms | p99 ratio (whole-pool/wrs) | p99 ratio (key-per-address/wrs) \
             | errors whole-pool / key-per-address / wrs |"
        );
        assert_eq!(lines[1].matches("---").count(), 16);
        assert_eq!(
            lines[2],
            "| steady 1:1, prefill 2048, 1 pool | 16 | 40.0 | 800 | 2 400 | 60.0× | 3.00× | 1.00 | 1.00 | 1.00 \
             | 2 000 | 40.0 | 16.0 | 125× | 2.50× | 3 / 1 / 0 |"
        );
        assert_eq!(
            lines[3],
            "| steady 1:1, prefill 2048, 1 pool | 64 | 15.0 | – | 3 800 | 253× | – | 1.00 | – | 1.00 \
             | 9 000 | – | 45.0 | 200× | – | 12 / – / 0 |"
        );
    }

    /// The echo floor is one more column: whereabouts-rs' throughput as a fraction of it.
    #[test]
    fn the_echo_floor_gets_its_column_and_ratio() {
        let data = results(vec![
            run(ETCD, 64, 15.0, 9000.0, 12),
            run(FLOOR, 64, 25000.0, 7.0, 0),
            run(WRS, 64, 3000.0, 36.0, 0),
        ]);
        let refs: Vec<&str> = references(&data).iter().map(|r| r.system).collect();
        assert_eq!(refs, [ETCD, FLOOR]);
        let t = table(&data);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].contains("| echo floor ops/s |") && lines[0].contains("| wrs ÷ echo floor |"), "{}", lines[0]);
        assert_eq!(
            lines[2],
            "| steady 1:1, prefill 2048, 1 pool | 64 | 15.0 | 25 000 | 3 000 | 200× | 0.12× | 1.00 | 1.00 | 1.00 \
             | 9 000 | 7.00 | 36.0 | 250× | 0.19× | 12 / 0 / 0 |"
        );
    }

    #[test]
    fn results_without_a_reference_keep_the_usual_columns() {
        let data = results(vec![run(WRS, 1, 600.0, 3.0, 0)]);
        assert!(legacy(&references(&data)));
        assert!(table(&data).lines().nth(2).unwrap().ends_with("| – | 600 | – | – | 1.00 | – | 3.00 | – | – / 0 |"));
    }
}
