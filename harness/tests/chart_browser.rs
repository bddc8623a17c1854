//! The chart in a real browser, without Docker: the HTML page of a hand-made report (a fault
//! window, two probes, a measurement series) is opened by headless Chromium, which takes a
//! screenshot and dumps the DOM after the page's check script ran; the assertions read that
//! DOM. The same assertion rejects the page of an empty report, so an empty chart fails.
//!
//! Needs Debian's `chromium` (`apt-get install -y chromium`; `make test` installs it). Without
//! it this test fails with that instruction: it never passes silently.

use aftershock::{admin, Report};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A report with nothing in it: the demo's, without samples, faults or outcomes.
fn empty() -> Report {
    let mut report = admin::demo_report();
    report.timeline.clear();
    report.outcomes.clear();
    report.measurements.clear();
    report
}

const BROWSERS: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

fn browser() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    BROWSERS
        .iter()
        .flat_map(|b| std::env::split_paths(&path).map(move |d| d.join(b)))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("no headless browser found ({BROWSERS:?}); install one: apt-get install -y chromium")
        })
}

/// Runs the browser on `page` with `args`, at most a minute; returns its stdout.
fn chromium(page: &Path, profile: &Path, args: &[String]) -> String {
    let out = std::env::temp_dir().join(format!("aftershock-chromium-{}.out", std::process::id()));
    let mut child = Command::new(browser())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,1400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(page)
        .stdout(std::fs::File::create(&out).expect("a file for the browser's output"))
        .stderr(Stdio::null())
        .spawn()
        .expect("start the browser");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the browser") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "the browser did not finish within a minute on {}",
                page.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "the browser failed on {}: {status}",
        page.display()
    );
    std::fs::read_to_string(&out).expect("read the browser's output")
}

/// Writes a report's page, screenshots it and returns the rendered DOM and the PNG's path.
fn render(report: &Report, name: &str) -> (String, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("chart-browser")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let written = report.write_to(&dir).expect("write the report");
    let png = dir.join("screenshot.png");
    let profile = dir.join("profile");
    chromium(
        &written.html,
        &profile,
        &[format!("--screenshot={}", png.display())],
    );
    let dom = chromium(&written.html, &profile, &["--dump-dom".to_string()]);
    (dom, png)
}

/// The number in `name="N"` in the DOM, if present.
fn attribute(dom: &str, name: &str) -> Option<usize> {
    let start = dom.find(&format!("{name}=\""))? + name.len() + 2;
    dom[start..].split('"').next()?.parse().ok()
}

/// Accepts a page whose chart the browser drew: lines with laid-out points, a shaded and
/// labelled fault window. Rejects an empty chart, saying why.
fn chart_drawn(dom: &str) -> Result<(), String> {
    let drawn = attribute(dom, "data-series-drawn")
        .ok_or("the page's check script did not run (no data-series-drawn)")?;
    if drawn == 0 {
        return Err("the browser laid out no probe or measurement line".into());
    }
    let longest = dom
        .match_indices("data-points=\"")
        .filter_map(|(i, _)| dom[i + 13..].split('"').next()?.parse::<usize>().ok())
        .max()
        .unwrap_or(0);
    if longest < 2 {
        return Err(format!("no line has two points (longest: {longest})"));
    }
    if attribute(dom, "data-fault-windows").unwrap_or(0) == 0 {
        return Err("no fault window is shaded".into());
    }
    if !dom.contains("class=\"fault-label\"") || !dom.contains("fault restart") {
        return Err("the fault window has no label".into());
    }
    Ok(())
}

#[test]
fn the_chart_renders_in_headless_chromium_and_an_empty_one_is_rejected() {
    let (dom, png) = render(&admin::demo_report(), "demo");
    chart_drawn(&dom).unwrap_or_else(|e| panic!("{e}; screenshot: {}", png.display()));
    assert_eq!(
        attribute(&dom, "data-series-drawn"),
        Some(4),
        "two probes, p50 and p99"
    );
    assert!(dom.contains("probe `zk-write`") && dom.contains("B3"));
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 20_000,
        "screenshot {} is only {size} bytes",
        png.display()
    );
    println!("screenshot: {}", png.display());

    let (empty, png) = render(&empty(), "empty");
    let verdict = chart_drawn(&empty);
    assert!(
        verdict.is_err(),
        "an empty chart was accepted; {}",
        png.display()
    );
    assert_eq!(attribute(&empty, "data-series-drawn"), Some(0));
    assert!(empty.contains("nothing was recorded"));
}
