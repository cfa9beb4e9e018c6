//! What `tl run` shows and saves while a program trains: a progress bar on standard error,
//! a CSV log of every step (`--log`) and a PNG plot of the loss curve (`--plot`).
//!
//! [`TrainUi`] receives the engine's [`TrainObserver`] calls. Steps of several `minimize`
//! commands in one program are numbered on from one another, so the log and the plot show one
//! continuous run. Files are rewritten atomically at the end of each `minimize`, so an
//! interrupted run never leaves a half-written log or image.
//!
//! With `--memory-stats`, the backend's memory report (see [`Backend::memory_report`]) is
//! printed to standard error after steps 1, 10, 100 and the last step of each `minimize`, and
//! once more at the end of the run ([`TrainUi::print_final_memory`]).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use plotters::prelude::*;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;
use tl_backend::Backend;
use tl_io::IoError;
use tl_run::observe::{StepInfo, TrainObserver};

/// Size of the `--plot` image in pixels.
pub const PLOT_SIZE: (u32, u32) = (960, 600);

/// The loss must span more than this factor (two decades) for the plot to use a log scale.
const LOG_SPAN: f64 = 100.0;

/// What the training display should do.
#[derive(Clone, Debug, Default)]
pub struct TrainUiOptions {
    /// Draw a progress bar on standard error (see [`progress_wanted`]).
    pub progress: bool,
    /// Where to write the CSV log of every step.
    pub log: Option<PathBuf>,
    /// Where to write the PNG plot of the loss.
    pub plot: Option<PathBuf>,
    /// Print the backend's memory report after selected steps (`--memory-stats`).
    pub memory_stats: bool,
}

/// Whether the memory report is printed after `step` of a `minimize` of `total` steps:
/// after steps 1, 10 and 100, and after the last step.
pub fn memory_report_step(step: u64, total: u64) -> bool {
    matches!(step, 1 | 10 | 100) || step == total
}

/// Whether to draw a progress bar: only on a terminal, and never under `--quiet`.
pub fn progress_wanted(quiet: bool, stderr_is_terminal: bool) -> bool {
    stderr_is_terminal && !quiet
}

/// One logged step.
#[derive(Clone, Debug, PartialEq)]
struct Row {
    /// Step counted over the whole program (continuing across `minimize` commands).
    step: u64,
    /// The epoch, with mini-batches.
    epoch: Option<u64>,
    loss: f64,
    lr: f64,
    /// Seconds since the run started when the step's loss arrived (throughput from the log).
    seconds: f64,
}

/// One `minimize`: its loss tensor's name and where its rows start.
#[derive(Clone, Debug)]
struct Segment {
    loss: String,
    first_row: usize,
}

/// The command line's [`TrainObserver`]: progress bar, CSV log, loss plot and memory report.
pub struct TrainUi<'b> {
    options: TrainUiOptions,
    /// The backend whose memory report `--memory-stats` prints.
    backend: Option<&'b dyn Backend>,
    bar: Option<ProgressBar>,
    rows: Vec<Row>,
    segments: Vec<Segment>,
    /// Steps taken by the `minimize` commands already finished.
    offset: u64,
    /// The last step reported by the current `minimize`.
    last_step: u64,
    errors: Vec<IoError>,
    /// When the display was made: the log's clock starts here.
    started: std::time::Instant,
    /// Rows of the log a resumed run continues (see [`TrainUi::continuing_log`]).
    previous: Vec<Row>,
    /// Seconds the continued log had reached, added to this run's clock.
    seconds_before: f64,
}

impl<'b> TrainUi<'b> {
    /// A display doing what `options` asks.
    pub fn new(options: TrainUiOptions) -> Self {
        TrainUi {
            options,
            backend: None,
            bar: None,
            rows: Vec::new(),
            segments: Vec::new(),
            offset: 0,
            last_step: 0,
            errors: Vec::new(),
            started: std::time::Instant::now(),
            previous: Vec::new(),
            seconds_before: 0.0,
        }
    }

    /// A resumed run continues the `--log` file already there: its rows before the step the
    /// run resumes from are kept (and the clock goes on from theirs), so that the log of an
    /// interrupted and resumed run is one log. Rows that do not parse are dropped.
    pub fn continuing_log(mut self) -> Self {
        let Some(text) = self
            .options
            .log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
        else {
            return self;
        };
        self.previous = text.lines().skip(1).filter_map(parse_row).collect();
        self
    }

    /// Uses `backend` for the memory report of `--memory-stats`.
    pub fn with_backend(mut self, backend: &'b dyn Backend) -> Self {
        self.backend = Some(backend);
        self
    }

    /// The backend's memory report, when `--memory-stats` asks for it and the backend pools
    /// memory.
    fn memory_report(&self) -> Option<String> {
        if !self.options.memory_stats {
            return None;
        }
        self.backend.and_then(|b| b.memory_report())
    }

    /// Prints one memory report line (above the progress bar, when there is one).
    fn print_memory(&self, step: u64) {
        if let Some(report) = self.memory_report() {
            let line = format!("memory after step {step}: {report}");
            match &self.bar {
                Some(bar) => bar.suspend(|| eprintln!("{line}")),
                None => eprintln!("{line}"),
            }
        }
    }

    /// Prints the memory report once at the end of the run (with `--memory-stats` on a
    /// backend that pools memory; nothing otherwise).
    pub fn print_final_memory(&self) {
        if let Some(report) = self.memory_report() {
            eprintln!("memory at end of run: {report}");
        }
    }

    /// Failures to write the log or the plot so far, emptied by the call.
    pub fn take_errors(&mut self) -> Vec<IoError> {
        std::mem::take(&mut self.errors)
    }

    /// The CSV log of every step so far: header `step,epoch,loss,lr,seconds`, one row per
    /// step (`seconds`: since the run started, when the step's loss arrived).
    fn csv(&self) -> String {
        let mut out = String::from("step,epoch,loss,lr,seconds\n");
        for r in &self.rows {
            let epoch = r.epoch.map(|e| e.to_string()).unwrap_or_default();
            let _ = writeln!(
                out,
                "{},{epoch},{},{},{:.6}",
                r.step,
                csv_number(r.loss),
                csv_number(r.lr),
                r.seconds
            );
        }
        out
    }

    /// Each `minimize`'s loss name and (step, loss) points.
    fn series(&self) -> Vec<(String, Vec<(u64, f64)>)> {
        self.segments
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let end = self
                    .segments
                    .get(k + 1)
                    .map_or(self.rows.len(), |n| n.first_row);
                let points = self.rows[s.first_row..end]
                    .iter()
                    .map(|r| (r.step, r.loss))
                    .collect();
                (s.loss.clone(), points)
            })
            .collect()
    }

    fn write_files(&mut self) {
        if let Some(path) = self.options.log.clone() {
            let text = self.csv();
            if let Err(e) = tl_io::write_atomic_with(&path, |w| w.write_all(text.as_bytes())) {
                self.errors.push(e);
            }
        }
        if let Some(path) = self.options.plot.clone() {
            let result = render_loss_png(&self.series(), PLOT_SIZE)
                .map_err(|detail| IoError::Write {
                    path: path.clone(),
                    detail: format!("cannot draw the plot: {detail}"),
                })
                .and_then(|png| tl_io::write_atomic(&path, &png));
            if let Err(e) = result {
                self.errors.push(e);
            }
        }
    }
}

impl TrainObserver for TrainUi<'_> {
    fn start(&mut self, loss: &str, total: u64) {
        self.segments.push(Segment {
            loss: loss.to_string(),
            first_row: self.rows.len(),
        });
        self.last_step = 0;
        if self.options.progress {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(bar_style());
            bar.set_prefix(format!("minimize {loss}"));
            self.bar = Some(bar);
        }
    }

    fn step(&mut self, info: &StepInfo) {
        self.last_step = info.step;
        let step = self.offset + info.step;
        if self.rows.is_empty() && !self.previous.is_empty() {
            // The first step of a resumed run: the old rows before it come first.
            let kept: Vec<Row> = std::mem::take(&mut self.previous)
                .into_iter()
                .filter(|r| r.step < step)
                .collect();
            self.seconds_before = kept.last().map_or(0.0, |r| r.seconds);
            if let Some(segment) = self.segments.last_mut() {
                segment.first_row = 0;
            }
            self.rows = kept;
        }
        self.rows.push(Row {
            step,
            epoch: info.epoch.map(|(e, _)| e),
            loss: info.loss,
            lr: info.lr,
            seconds: self.seconds_before + self.started.elapsed().as_secs_f64(),
        });
        if let Some(bar) = &self.bar {
            let mut msg = format!("loss {}  lr {}", sig4(info.loss), tick_label(info.lr));
            if let Some((e, n)) = info.epoch {
                let _ = write!(msg, "  epoch {e}/{n}");
            }
            bar.set_message(msg);
            bar.set_position(info.step);
        }
        if memory_report_step(info.step, info.total) {
            self.print_memory(self.offset + info.step);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
        self.offset += self.last_step;
        self.last_step = 0;
        self.write_files();
    }
}

/// One row of a log written by [`TrainUi::csv`] (`step,epoch,loss,lr,seconds`).
fn parse_row(line: &str) -> Option<Row> {
    let mut f = line.split(',');
    let step = f.next()?.parse().ok()?;
    let epoch = match f.next()? {
        "" => None,
        e => Some(e.parse().ok()?),
    };
    Some(Row {
        step,
        epoch,
        loss: f.next()?.parse().ok()?,
        lr: f.next()?.parse().ok()?,
        seconds: f.next()?.parse().ok()?,
    })
}

/// The bar's look: what is minimised, the bar, step/total, loss and lr, steps/s and ETA.
fn bar_style() -> ProgressStyle {
    fn rate(state: &ProgressState, w: &mut dyn std::fmt::Write) {
        let r = state.per_sec();
        let text = if r >= 1000.0 && r.is_finite() {
            format!("{r:.0}")
        } else {
            tick_label(r)
        };
        let _ = write!(w, "{text} steps/s");
    }
    ProgressStyle::with_template(
        "{prefix} [{bar:30.cyan/blue}] {pos}/{len}  {msg}  {rate}  ETA {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .with_key("rate", rate)
    .progress_chars("=> ")
}

/// `x` with 4 significant digits: plain for moderate magnitudes, scientific otherwise.
pub fn sig4(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x == 0.0 {
        return "0".into();
    }
    let mag = x.abs().log10().floor();
    if (-3.0..4.0).contains(&mag) {
        let decimals = (3.0 - mag).max(0.0) as usize;
        format!("{x:.decimals$}")
    } else {
        format!("{x:.3e}")
    }
}

/// [`sig4`] without trailing zeros (`1`, `0.25`, `1.5e-7`): tick labels and learning rates.
fn tick_label(x: f64) -> String {
    let s = sig4(x);
    let (mantissa, exponent) = match s.find('e') {
        Some(i) => s.split_at(i),
        None => (s.as_str(), ""),
    };
    let mantissa = if mantissa.contains('.') {
        mantissa.trim_end_matches('0').trim_end_matches('.')
    } else {
        mantissa
    };
    format!("{mantissa}{exponent}")
}

/// A number for the CSV: the shortest text that reads back as the same f64, in scientific
/// notation when plain notation would be long.
fn csv_number(x: f64) -> String {
    if x == 0.0 || !x.is_finite() || (1e-4..1e15).contains(&x.abs()) {
        x.to_string()
    } else {
        format!("{x:e}")
    }
}

/// Name under which the embedded font is registered with the plotting library.
const FONT: &str = "sans-serif";

/// Registers the embedded DejaVu Sans once (plotting has no access to system fonts).
fn register_font() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let bytes: &'static [u8] = include_bytes!("../assets/DejaVuSans.ttf");
        plotters::style::register_font(FONT, FontStyle::Normal, bytes)
            .map_err(|_| "the embedded font could not be read".to_string())
    })
    .clone()
}

/// Line colours of successive `minimize` commands.
const COLORS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
];

/// Draws the loss curves (one per `minimize`: loss name and (step, loss) points) as a PNG of
/// `size` pixels: loss against step, with a log-scale y axis when the finite losses are all
/// positive and span more than two decades. Non-finite losses are left out.
pub fn render_loss_png(
    series: &[(String, Vec<(u64, f64)>)],
    size: (u32, u32),
) -> Result<Vec<u8>, String> {
    register_font()?;
    let (w, h) = size;
    let mut pixels = vec![0u8; w as usize * h as usize * 3];
    draw_chart(&mut pixels, series, size)?;
    let mut png = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| e.to_string())?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| e.to_string())?;
        writer.finish().map_err(|e| e.to_string())?;
    }
    Ok(png)
}

fn draw_chart(
    pixels: &mut [u8],
    series: &[(String, Vec<(u64, f64)>)],
    size: (u32, u32),
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let finite: Vec<(u64, f64)> = series
        .iter()
        .flat_map(|(_, p)| p.iter().copied())
        .filter(|(_, l)| l.is_finite())
        .collect();
    let x_lo = finite.iter().map(|p| p.0).min().unwrap_or(0);
    let x_hi = finite.iter().map(|p| p.0).max().unwrap_or(1).max(x_lo + 1);
    let y_lo = finite.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let y_hi = finite.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let (y_lo, y_hi) = if y_lo.is_finite() {
        (y_lo, y_hi)
    } else {
        (0.0, 1.0)
    };
    let log = y_lo > 0.0 && y_hi / y_lo > LOG_SPAN;

    let mut names: Vec<&str> = Vec::new();
    for (n, _) in series {
        if !names.contains(&n.as_str()) {
            names.push(n);
        }
    }
    let title = if names.is_empty() {
        "Training loss".to_string()
    } else {
        format!("Training loss: {}", names.join(", "))
    };

    let root = BitMapBackend::with_buffer(pixels, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;

    // The linear and logarithmic charts have different coordinate types; the drawing code is
    // the same for both.
    macro_rules! plot {
        ($y_range:expr, $y_desc:expr) => {{
            let mut chart = ChartBuilder::on(&root)
                .caption(&title, (FONT, 26))
                .margin(16)
                .x_label_area_size(50)
                .y_label_area_size(80)
                .build_cartesian_2d(x_lo..x_hi, $y_range)
                .map_err(|e| err(&e))?;
            chart
                .configure_mesh()
                .x_desc("step")
                .y_desc($y_desc)
                .y_label_formatter(&|v: &f64| tick_label(*v))
                .label_style((FONT, 15))
                .axis_desc_style((FONT, 17))
                .draw()
                .map_err(|e| err(&e))?;
            for (k, (name, points)) in series.iter().enumerate() {
                let color = COLORS[k % COLORS.len()];
                let line = points
                    .iter()
                    .copied()
                    .filter(|&(_, l)| l.is_finite() && (!log || l > 0.0));
                let drawn = chart
                    .draw_series(LineSeries::new(line, color.stroke_width(2)))
                    .map_err(|e| err(&e))?;
                if series.len() > 1 {
                    drawn.label(name.as_str()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                }
            }
            if series.len() > 1 {
                chart
                    .configure_series_labels()
                    .label_font((FONT, 15))
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .draw()
                    .map_err(|e| err(&e))?;
            }
        }};
    }

    if log {
        plot!((y_lo / 1.25..y_hi * 1.25).log_scale(), "loss (log scale)");
    } else {
        let pad = if y_hi > y_lo {
            (y_hi - y_lo) * 0.05
        } else {
            y_lo.abs().max(1.0) * 0.1
        };
        plot!(y_lo - pad..y_hi + pad, "loss");
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests;
