//! `bench-report`: reads the JSON reports of `etcd-scheme-bench` and `whereabouts-ctl bench`
//! (the shared schema) from a results directory, prints the side-by-side table with ratios as
//! Markdown, and renders throughput and p99 against clients for both systems as a PNG.
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
    /// Title line of the plot.
    #[arg(long, default_value = "whereabouts-rs vs whereabouts' scheme on etcd (3 nodes, loopback)")]
    title: String,
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
const WRS: &str = "whereabouts-rs";

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
    let mut s = String::new();
    s.push_str("| workload | clients | etcd ops/s | whereabouts-rs ops/s | throughput ratio | etcd p50 ms | wrs p50 ms | etcd p99 ms | wrs p99 ms | p99 ratio (etcd/wrs) | errors etcd / wrs |\n");
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (w, by_clients) in data {
        for (clients, runs) in by_clients {
            let (e, r) = (runs.get(ETCD), runs.get(WRS));
            let f = |run: Option<&Run>, g: &dyn Fn(&Run) -> f64| run.map_or("–".into(), |x| num(g(x)));
            let tp = |x: &Run| x.throughput;
            let p50 = |x: &Run| x.latency_ms.p50;
            let p99 = |x: &Run| x.latency_ms.p99;
            let errs = format!(
                "{} / {}",
                e.map_or("–".into(), |x| x.errors.to_string()),
                r.map_or("–".into(), |x| x.errors.to_string())
            );
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                workload_name(w),
                clients,
                f(e, &tp),
                f(r, &tp),
                match (e, r) {
                    (Some(e), Some(r)) => ratio(r.throughput, e.throughput),
                    _ => "–".into(),
                },
                f(e, &p50),
                f(r, &p50),
                f(e, &p99),
                f(r, &p99),
                match (e, r) {
                    (Some(e), Some(r)) => ratio(e.latency_ms.p99, r.latency_ms.p99),
                    _ => "–".into(),
                },
                errs
            ));
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

fn plot(data: &Results, out: &Path, title: &str) -> anyhow::Result<()> {
    let cols = data.len();
    let (w, h) = ((440 * cols as u32).max(900), 780);
    let root = BitMapBackend::new(out, (w, h)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let panels = root.split_evenly((2, cols));
    let metrics: [Metric; 2] = [("ok ops/s", |r| r.throughput), ("p99 latency, ms", |r| r.latency_ms.p99)];
    let etcd_color = RGBColor(0xd6, 0x27, 0x28);
    let wrs_color = RGBColor(0x1f, 0x77, 0xb4);
    for (row, (label, y)) in metrics.iter().enumerate() {
        for (col, (wl, by_clients)) in data.iter().enumerate() {
            let area = &panels[row * cols + col];
            let e = series(by_clients, ETCD, *y);
            let r = series(by_clients, WRS, *y);
            let (lo, hi) = bounds(&[&e, &r]);
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
            for (name, pts, color) in [("etcd + whereabouts scheme", &e, etcd_color), ("whereabouts-rs", &r, wrs_color)]
            {
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
                    .label(name)
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
        plot(&data, out, &args.title)?;
        eprintln!("bench-report: plot written to {}", out.display());
    }
    Ok(())
}
