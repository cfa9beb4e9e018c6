use super::*;

fn info(step: u64, total: u64, loss: f64, lr: f64) -> StepInfo {
    StepInfo {
        step,
        total,
        epoch: None,
        loss,
        lr,
    }
}

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (w, h)
}

#[test]
fn four_significant_digits() {
    assert_eq!(sig4(0.0), "0");
    assert_eq!(sig4(1.0), "1.000");
    assert_eq!(sig4(0.012345), "0.01235");
    assert_eq!(sig4(123.456), "123.5");
    assert_eq!(sig4(-2.5), "-2.500");
    assert_eq!(sig4(12345.0), "1.234e4");
    assert_eq!(sig4(1.5e-7), "1.500e-7");
    assert_eq!(sig4(f64::NAN), "NaN");
}

#[test]
fn tick_labels_drop_trailing_zeros() {
    assert_eq!(tick_label(1.0), "1");
    assert_eq!(tick_label(0.25), "0.25");
    assert_eq!(tick_label(0.001), "0.001");
    assert_eq!(tick_label(120.0), "120");
    assert_eq!(tick_label(1e-4), "1e-4");
    assert_eq!(tick_label(1.5e-7), "1.5e-7");
    assert_eq!(tick_label(0.0), "0");
}

#[test]
fn memory_report_steps() {
    let picked: Vec<u64> = (1..=250).filter(|&s| memory_report_step(s, 250)).collect();
    assert_eq!(picked, vec![1, 10, 100, 250]);
    let picked: Vec<u64> = (1..=5).filter(|&s| memory_report_step(s, 5)).collect();
    assert_eq!(picked, vec![1, 5]);
    let picked: Vec<u64> = (1..=100).filter(|&s| memory_report_step(s, 100)).collect();
    assert_eq!(picked, vec![1, 10, 100]);
    assert!(memory_report_step(1, 1));
}

#[test]
fn memory_report_needs_flag_and_pooling_backend() {
    let cpu = tl_backend::cpu::CpuBackend::new();
    let ui = TrainUi::new(TrainUiOptions {
        memory_stats: true,
        ..Default::default()
    })
    .with_backend(&cpu);
    assert_eq!(
        ui.memory_report(),
        None,
        "the CPU backend does not pool memory"
    );
    let ui = TrainUi::new(TrainUiOptions::default()).with_backend(&cpu);
    assert_eq!(ui.memory_report(), None);
}

#[test]
fn only_a_terminal_without_quiet_gets_a_bar() {
    assert!(progress_wanted(false, true));
    assert!(!progress_wanted(true, true));
    assert!(!progress_wanted(false, false));
    assert!(!progress_wanted(true, false));
}

#[test]
fn non_terminal_draws_nothing() {
    let mut ui = TrainUi::new(TrainUiOptions {
        progress: progress_wanted(false, false),
        ..Default::default()
    });
    ui.start("L", 3);
    for s in 1..=3 {
        ui.step(&info(s, 3, 1.0 / s as f64, 0.1));
        assert!(ui.bar.is_none(), "no bar exists to draw");
    }
    ui.finish();
    assert!(ui.bar.is_none());
    assert!(ui.take_errors().is_empty());
}

/// A log with its last column (the clock) taken off every line.
fn without_seconds(csv: &str) -> String {
    csv.lines()
        .map(|l| format!("{}\n", l.rsplit_once(',').map_or(l, |(head, _)| head)))
        .collect()
}

#[test]
fn csv_has_header_and_rows_and_steps_continue_across_minimize() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("loss.csv");
    let mut ui = TrainUi::new(TrainUiOptions {
        log: Some(log.clone()),
        ..Default::default()
    });
    ui.start("L", 2);
    ui.step(&info(1, 2, 0.5, 0.1));
    ui.step(&info(2, 2, 0.25, 0.1));
    ui.finish();
    assert_eq!(
        without_seconds(&std::fs::read_to_string(&log).unwrap()),
        "step,epoch,loss,lr\n1,,0.5,0.1\n2,,0.25,0.1\n"
    );
    ui.start("M", 2);
    ui.step(&StepInfo {
        epoch: Some((1, 2)),
        ..info(1, 2, 3.0, 1e-5)
    });
    ui.step(&StepInfo {
        epoch: Some((2, 2)),
        ..info(2, 2, 1e-9, 1e-5)
    });
    ui.finish();
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        without_seconds(&text),
        "step,epoch,loss,lr\n1,,0.5,0.1\n2,,0.25,0.1\n3,1,3,1e-5\n4,2,1e-9,1e-5\n"
    );
    // The clock column is a non-decreasing number of seconds.
    let seconds: Vec<f64> = text
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    assert!(seconds.windows(2).all(|w| w[0] <= w[1]), "{seconds:?}");
    assert!(text.starts_with("step,epoch,loss,lr,seconds\n"));
    // Every number reads back exactly.
    assert_eq!("1e-9".parse::<f64>().unwrap(), 1e-9);
    assert!(ui.take_errors().is_empty());
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec!["loss.csv"], "no temporary file is left");
}

#[test]
fn a_log_that_cannot_be_written_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("missing_folder").join("loss.csv");
    let mut ui = TrainUi::new(TrainUiOptions {
        log: Some(log),
        ..Default::default()
    });
    ui.start("L", 1);
    ui.step(&info(1, 1, 1.0, 0.1));
    ui.finish();
    let errors = ui.take_errors();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].to_string().contains("loss.csv"), "{}", errors[0]);
}

#[test]
fn plot_is_a_png_of_the_requested_size() {
    let points: Vec<(u64, f64)> = (1..=200)
        .map(|s| (s, 5.0 * (-0.05 * s as f64).exp()))
        .collect();
    let png = render_loss_png(&[("L".into(), points)], (640, 400)).unwrap();
    assert_eq!(png_size(&png), (640, 400));
}

#[test]
fn plot_survives_odd_data() {
    for series in [
        vec![],
        vec![("L".to_string(), vec![(1, 2.0)])],
        vec![("L".to_string(), vec![(1, f64::NAN), (2, f64::INFINITY)])],
        vec![("L".to_string(), vec![(1, -1.0), (2, 0.0), (3, 1e6)])],
        vec![
            ("L".to_string(), vec![(1, 3.0), (2, 1.0)]),
            ("M".to_string(), vec![(3, 1e-4), (4, 1e-5)]),
        ],
    ] {
        let png = render_loss_png(&series, (320, 200)).unwrap();
        assert_eq!(png_size(&png), (320, 200));
    }
}

#[test]
fn observer_writes_the_plot_file() {
    let dir = tempfile::tempdir().unwrap();
    let plot = dir.path().join("loss.png");
    let mut ui = TrainUi::new(TrainUiOptions {
        plot: Some(plot.clone()),
        ..Default::default()
    });
    ui.start("L", 50);
    for s in 1..=50 {
        ui.step(&info(s, 50, 1.0 / s as f64, 0.01));
    }
    ui.finish();
    assert!(ui.take_errors().is_empty());
    assert_eq!(png_size(&std::fs::read(&plot).unwrap()), PLOT_SIZE);
}

/// Writes sample plots for a person to look at: `TL_PLOT_SAMPLES=folder cargo test …`.
#[test]
fn sample_plots_for_inspection() {
    let Some(dir) = std::env::var_os("TL_PLOT_SAMPLES") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let decay: Vec<(u64, f64)> = (1..=500)
        .map(|s| {
            (
                s,
                3.0 * (-0.02 * s as f64).exp() + 1e-4 * (1.0 + (s as f64).sin()),
            )
        })
        .collect();
    let flat: Vec<(u64, f64)> = (1..=300)
        .map(|s| (s, 0.7 + 0.2 / (s as f64).sqrt()))
        .collect();
    let log_png = render_loss_png(&[("L".into(), decay.clone())], PLOT_SIZE).unwrap();
    std::fs::write(dir.join("log.png"), log_png).unwrap();
    let lin_png = render_loss_png(&[("Loss".into(), flat)], PLOT_SIZE).unwrap();
    std::fs::write(dir.join("linear.png"), lin_png).unwrap();
    let two: Vec<(u64, f64)> = decay.iter().map(|&(s, l)| (s + 500, l / 10.0)).collect();
    let multi = render_loss_png(&[("L".into(), decay), ("M".into(), two)], PLOT_SIZE).unwrap();
    std::fs::write(dir.join("two.png"), multi).unwrap();
}
