//! Draws docs/dashboard.png: a *rendering* of the Grafana dashboard shipped in the Helm chart
//! (deploy/helm/whereabouts-rs/dashboards/whereabouts-rs.json) — its panels, titles and layout,
//! with deterministic sample series — so a reader of the docs sees what the dashboard shows. It is
//! not a Grafana screenshot.
//!
//! cargo run -p cluster --example dashboard_png [-- OUT.png]

use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontStyle;
use serde_json::Value;

const W: u32 = 1680;
const H: u32 = 1500;
const COLORS: [RGBColor; 4] =
    [RGBColor(115, 191, 105), RGBColor(242, 204, 12), RGBColor(87, 148, 242), RGBColor(242, 73, 92)];

/// A small deterministic generator for the sample series.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn sample(panel: u64, series: u64, points: usize) -> Vec<(f64, f64)> {
    let mut rng = Lcg(panel * 7919 + series * 104729 + 1);
    let base = 0.3 + 0.5 * rng.next();
    let mut v = base;
    (0..points)
        .map(|i| {
            v = (v + (rng.next() - 0.5) * 0.08).clamp(0.02, 0.98);
            let wave = 0.05 * ((i as f64) / 9.0 + series as f64).sin();
            (i as f64, (v + wave).clamp(0.0, 1.0) * (1.0 + series as f64 * 0.15))
        })
        .collect()
}

fn stat_value(id: u64) -> String {
    match id {
        1 => "1".into(),
        2 => "7".into(),
        3 => "3".into(),
        4 => "4,812".into(),
        5 => "2".into(),
        _ => "0".into(),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args().nth(1).unwrap_or_else(|| "docs/dashboard.png".into());
    let root_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let json = std::fs::read_to_string(root_dir.join("deploy/helm/whereabouts-rs/dashboards/whereabouts-rs.json"))?;
    let dash: Value = serde_json::from_str(&json)?;
    let font = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf"]
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .ok_or("no DejaVuSans.ttf (apt-get install fonts-dejavu-core)")?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(font.into_boxed_slice()))
        .map_err(|_| "cannot load the font")?;

    let root = BitMapBackend::new(&out, (W, H)).into_drawing_area();
    root.fill(&RGBColor(17, 18, 23))?;
    let title = format!(
        "Grafana dashboard \"{}\" — rendering of deploy/helm/whereabouts-rs/dashboards/whereabouts-rs.json with sample data (not a screenshot)",
        dash["title"].as_str().unwrap_or("")
    );
    root.draw(&Text::new(title, (16, 12), ("sans-serif", 20).into_font().color(&WHITE)))?;
    let body = root.margin(44, 8, 8, 8);
    let (bw, bh) = body.dim_in_pixel();
    let rows = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["gridPos"]["y"].as_u64().unwrap_or(0) + p["gridPos"]["h"].as_u64().unwrap_or(0))
        .max()
        .unwrap_or(1);
    let cell_w = bw as f64 / 24.0;
    let cell_h = bh as f64 / rows as f64;
    for p in dash["panels"].as_array().unwrap() {
        let g = &p["gridPos"];
        let (x, y, w, h) =
            (g["x"].as_f64().unwrap(), g["y"].as_f64().unwrap(), g["w"].as_f64().unwrap(), g["h"].as_f64().unwrap());
        let (x0, y0) = ((x * cell_w) as i32 + 4, (y * cell_h) as i32 + 4);
        let (x1, y1) = (((x + w) * cell_w) as i32 - 4, ((y + h) * cell_h) as i32 - 4);
        let area = body.clone().shrink((x0, y0), ((x1 - x0) as u32, (y1 - y0) as u32));
        area.fill(&RGBColor(24, 27, 31))?;
        let id = p["id"].as_u64().unwrap_or(0);
        let name = p["title"].as_str().unwrap_or("");
        area.draw(&Text::new(
            name.to_string(),
            (10, 8),
            ("sans-serif", 17).into_font().color(&RGBColor(204, 204, 220)),
        ))?;
        if p["type"] == "stat" {
            let (aw, ah) = area.dim_in_pixel();
            let v = stat_value(id);
            let style = ("sans-serif", 46).into_font().color(&COLORS[0]);
            area.draw(&Text::new(v.clone(), ((aw as i32) / 2 - 14 * v.len() as i32, (ah as i32) / 2 - 12), style))?;
            continue;
        }
        let targets = p["targets"].as_array().cloned().unwrap_or_default();
        let series: Vec<(String, Vec<(f64, f64)>)> = targets
            .iter()
            .enumerate()
            .flat_map(|(i, t)| {
                let legend = t["legendFormat"].as_str().unwrap_or("").to_string();
                let copies = if legend.contains("{{") { 3 } else { 1 };
                (0..copies).map(move |c| {
                    let label = legend
                        .replace("{{network}}", ["tenant-a", "tenant-b", "(unnamed)"][c])
                        .replace("{{cidr}}", ["10.10.0.0/16", "10.20.0.0/24", "192.168.2.224/28"][c])
                        .replace("{{pod}}", ["node-0", "node-1", "node-2"][c])
                        .replace("{{rpc}}", ["allocate", "release", "check"][c])
                        .replace("{{result}}", ["ok", "ok", "error"][c]);
                    (label, i as u64 * 3 + c as u64)
                })
            })
            .map(|(label, s)| {
                let mut points = sample(id, s, 120);
                if p["fieldConfig"]["defaults"]["unit"] == "percentunit" {
                    points.iter_mut().for_each(|p| p.1 = p.1.min(0.97));
                }
                (label, points)
            })
            .collect();
        let ymax = series.iter().flat_map(|(_, v)| v.iter().map(|p| p.1)).fold(0.0f64, f64::max) * 1.15;
        let inner = area.margin(30, 6, 6, 6);
        let mut chart = ChartBuilder::on(&inner)
            .x_label_area_size(18)
            .y_label_area_size(44)
            .build_cartesian_2d(0f64..119f64, 0f64..ymax.max(0.1))?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(34, 37, 43))
            .bold_line_style(RGBColor(44, 47, 53))
            .axis_style(RGBColor(90, 90, 100))
            .label_style(("sans-serif", 12).into_font().color(&RGBColor(150, 150, 160)))
            .x_labels(6)
            .x_label_formatter(&|x| format!("-{}m", (119.0 - x) as i64 * 3))
            .y_labels(4)
            .draw()?;
        for (i, (label, points)) in series.into_iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(RGBColor(24, 27, 31).mix(0.8))
            .label_font(("sans-serif", 12).into_font().color(&RGBColor(204, 204, 220)))
            .draw()?;
    }
    root.present()?;
    println!("wrote {out}");
    Ok(())
}
