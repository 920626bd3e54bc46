//! What every benchmark shares: a mock on its own thread, a mock clock that runs faster than
//! the real one, statistics, and the process's own CPU and memory counters from `/proc`.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use imggen_mock::{EntryKind, MockClock, MockConfig, MockServer};

/// The prefix of the mock's worker thread names, so its CPU time can be told from the
/// client's (`/proc` shows at most 15 characters of a thread's name).
pub const MOCK_THREAD: &str = "bench-mock";

/// An imggen-mock running on a runtime of its own with one worker thread, so the mock and
/// the code under test each have a core of this 2-core machine, and neither's CPU time is
/// counted as the other's.
pub struct MockHost {
    server: Option<MockServer>,
    runtime: tokio::runtime::Runtime,
}

impl MockHost {
    /// Starts a mock with `config`. Call it outside any runtime.
    pub fn start(config: MockConfig) -> Result<MockHost, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(MOCK_THREAD)
            .enable_all()
            .build()
            .map_err(|err| format!("could not start the mock's runtime: {err}"))?;
        let server = runtime
            .block_on(MockServer::start(config))
            .map_err(|err| format!("could not start imggen-mock: {err}"))?;
        Ok(MockHost {
            server: Some(server),
            runtime,
        })
    }

    /// The running server.
    pub fn server(&self) -> &MockServer {
        // Only `drop` takes the server out.
        self.server
            .as_ref()
            .unwrap_or_else(|| unreachable!("the mock is only taken when the host is dropped"))
    }

    /// The base URL of all three providers.
    pub fn url(&self) -> String {
        self.server().url().to_owned()
    }
}

impl Drop for MockHost {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
    }
}

/// A loopback receiver for runblob's callbacks: a plain HTTP/1.1 listener on its own thread
/// that hands each body to [`WebhookHub::receive`](imggen_core::WebhookHub::receive) with
/// the runblob provider (what an app's own endpoint, or imggen-core's `webhook::server`
/// router, does) and answers `200` (`400` for a body that is
/// not a status object), closing the connection after each answer.
pub struct WebhookReceiver {
    url: String,
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WebhookReceiver {
    /// Listens on 127.0.0.1 and feeds `hub` what `provider` reads from each body.
    pub fn start(
        hub: imggen_core::WebhookHub,
        provider: Arc<dyn imggen_core::Provider>,
    ) -> Result<WebhookReceiver, String> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|err| format!("could not listen for webhooks: {err}"))?;
        let addr = listener
            .local_addr()
            .map_err(|err| format!("could not listen for webhooks: {err}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("bench-hooks".into())
                .spawn(move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        if let Ok(stream) = stream {
                            // A delivery that fails is the mock's to retry, as runblob would.
                            let _ = answer_webhook(stream, &hub, provider.as_ref());
                        }
                    }
                })
                .map_err(|err| format!("could not start the webhook receiver: {err}"))?
        };
        Ok(WebhookReceiver {
            url: format!("http://{addr}/webhooks/runblob"),
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The `callback_url` to give runblob.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the blocking accept, which then sees the flag.
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer_webhook(
    mut stream: std::net::TcpStream,
    hub: &imggen_core::WebhookHub,
    provider: &dyn imggen_core::Provider,
) -> std::io::Result<()> {
    use std::io::{BufRead as _, Read as _, Write as _};
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = std::io::BufReader::new(&stream);
    let mut length = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length.min(64 * 1024)];
    reader.read_exact(&mut body)?;
    let status = match hub.receive(provider, &body) {
        Ok(_) => "200 OK",
        Err(_) => "400 Bad Request",
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )?;
    stream.flush()
}

/// Drives a manual [`MockClock`] `speedup` times faster than the real clock, so the mock's
/// realistic durations (runblob's 1–3 minutes) pass in a hundredth of the time while the code
/// under test runs on the real clock with its schedule scaled by `1 / speedup`.
///
/// The clock moves in steps of [`TimeWarp::TICK`]: a task is seen finished at most one step
/// after its exact moment, the same for every strategy measured.
pub struct TimeWarp {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    real_start: Instant,
    mock_wall_start: SystemTime,
    speedup: f64,
}

impl TimeWarp {
    /// How often the mock's clock is moved, in real time.
    pub const TICK: Duration = Duration::from_micros(200);

    /// Starts moving `clock` (which must be manual) `speedup` times as fast as real time.
    pub fn start(clock: MockClock, speedup: f64) -> TimeWarp {
        let stop = Arc::new(AtomicBool::new(false));
        let real_start = Instant::now();
        let mock_wall_start = clock.wall();
        let base = clock.elapsed();
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("bench-warp".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let target = base + real_start.elapsed().mul_f64(speedup);
                        let current = clock.elapsed();
                        if target > current {
                            clock.advance(target - current);
                        }
                        std::thread::sleep(TimeWarp::TICK);
                    }
                })
                .ok()
        };
        TimeWarp {
            stop,
            thread,
            real_start,
            mock_wall_start,
            speedup,
        }
    }

    /// The real instant at which the mock's clock reads `mock_wall` (exactly, not rounded to
    /// a step).
    pub fn real_instant_of(&self, mock_wall: SystemTime) -> Instant {
        match mock_wall.duration_since(self.mock_wall_start) {
            Ok(after) => self.real_start + after.div_f64(self.speedup),
            Err(before) => self
                .real_start
                .checked_sub(before.duration().div_f64(self.speedup))
                .unwrap_or(self.real_start),
        }
    }
}

impl Drop for TimeWarp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Parses the mock's timestamps (`2026-04-22T00:12:03.456Z`).
pub fn parse_timestamp(text: &str) -> Result<SystemTime, String> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(SystemTime::from)
        .map_err(|err| format!("{text:?} is not an RFC 3339 time: {err}"))
}

/// Mean and percentiles of a sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// How many values.
    pub count: usize,
    /// The arithmetic mean.
    pub mean: f64,
    /// The standard error of the mean (sample standard deviation ÷ √count; 0 for one value).
    pub std_error: f64,
    /// The median (nearest rank).
    pub p50: f64,
    /// The 95th percentile (nearest rank).
    pub p95: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl Summary {
    /// Summarises `values`; `None` when there are none (or any is NaN).
    pub fn of(values: &[f64]) -> Option<Summary> {
        if values.is_empty() || values.iter().any(|v| v.is_nan()) {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let count = sorted.len() as f64;
        let mean = sorted.iter().sum::<f64>() / count;
        let std_error = if sorted.len() < 2 {
            0.0
        } else {
            let variance = sorted.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (count - 1.0);
            (variance / count).sqrt()
        };
        Some(Summary {
            count: sorted.len(),
            mean,
            std_error,
            p50: percentile(&sorted, 50.0),
            p95: percentile(&sorted, 95.0),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        })
    }
}

/// The nearest-rank percentile `p` (0–100) of `sorted` (ascending, not empty): the smallest
/// value with at least `p`% of the values at or below it.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p.clamp(0.0, 100.0) / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// CPU time this thread has run, from `/proc/thread-self/schedstat` (nanoseconds).
pub fn thread_cpu() -> Option<Duration> {
    schedstat(Path::new("/proc/thread-self/schedstat"))
}

/// CPU time of this process's threads whose name starts with `prefix` (live threads only).
pub fn named_threads_cpu(prefix: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut found = false;
    for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let dir = entry.path();
        let Ok(name) = std::fs::read_to_string(dir.join("comm")) else {
            continue;
        };
        if name.trim_end().starts_with(prefix)
            && let Some(cpu) = schedstat(&dir.join("schedstat"))
        {
            total += cpu;
            found = true;
        }
    }
    found.then_some(total)
}

fn schedstat(path: &Path) -> Option<Duration> {
    let text = std::fs::read_to_string(path).ok()?;
    let nanos: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// User and system CPU time of the whole process, from `/proc/self/stat`.
pub fn process_cpu() -> Option<(Duration, Duration)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_stat_cpu(&stat, clock_ticks())
}

/// utime and stime (fields 14 and 15) of a `/proc/<pid>/stat` line, in clock ticks.
pub fn parse_stat_cpu(stat: &str, ticks_per_second: u64) -> Option<(Duration, Duration)> {
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // `after_name` starts at field 3, so field 14 is at index 11.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let tick = Duration::from_secs(1) / u32::try_from(ticks_per_second.max(1)).ok()?;
    Some((
        tick * u32::try_from(utime).ok()?,
        tick * u32::try_from(stime).ok()?,
    ))
}

/// `getconf CLK_TCK`, 100 (Linux's value everywhere) if it cannot be read.
fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}

/// A field of `/proc/self/status` in KiB (`VmHWM` is the peak resident set, `VmRSS` the
/// current one).
pub fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status_kib(&status, field)
}

/// A `Field:   1234 kB` line of a `/proc/<pid>/status` text.
pub fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// The machine, as the report names it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Machine {
    /// CPU model.
    pub cpu: String,
    /// Logical cores.
    pub cores: usize,
    /// Total memory.
    pub memory: String,
    /// Distribution and kernel.
    pub os: String,
    /// `rustc --version`.
    pub rustc: String,
    /// The commit measured, with a note when the tree had uncommitted changes.
    pub commit: String,
    /// When the run began (UTC).
    pub date: String,
    /// The 1-minute load average when the run began and when it ended: how busy the machine
    /// was with other work.
    pub load: String,
}

impl Machine {
    /// Reads what it can; what it cannot is reported as `unknown`.
    pub fn detect(root: &Path) -> Machine {
        let unknown = || "unknown".to_owned();
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == "model name").then(|| value.trim().to_owned())
            })
            .unwrap_or_else(unknown);
        let cores = std::thread::available_parallelism().map_or(0, usize::from);
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| parse_status_kib(&text, "MemTotal"))
            .map_or_else(unknown, |kib| {
                format!("{:.1} GiB", kib as f64 / 1024.0 / 1024.0)
            });
        let distro = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|text| {
                text.lines().find_map(|line| {
                    line.strip_prefix("PRETTY_NAME=")
                        .map(|value| value.trim_matches('"').to_owned())
                })
            })
            .unwrap_or_else(unknown);
        let kernel = output("uname", &["-sr"], root).unwrap_or_else(unknown);
        let rustc = output("rustc", &["--version"], root).unwrap_or_else(unknown);
        let commit = match output("git", &["rev-parse", "--short=12", "HEAD"], root) {
            Some(commit) => {
                // The report itself does not count: it is about to be rewritten.
                let dirty = output(
                    "git",
                    &["status", "--porcelain", "--", ".", ":!BENCHMARKS.md"],
                    root,
                )
                .is_some_and(|status| !status.is_empty());
                if dirty {
                    format!("{commit} (with uncommitted changes)")
                } else {
                    commit
                }
            }
            None => unknown(),
        };
        let date = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .unwrap_or_else(|_| unknown());
        Machine {
            cpu,
            cores,
            memory,
            os: format!("{distro}, {kernel}"),
            rustc,
            commit,
            date,
            load: load_average().map_or_else(unknown, |load| format!("{load:.2} at the start")),
        }
    }
}

/// The 1-minute load average (`/proc/loadavg`).
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A command's trimmed stdout, when it ran and succeeded.
pub fn output(program: &str, args: &[&str], dir: &Path) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A current-thread runtime for the code under test: all of it on this thread, so its CPU
/// time is this thread's.
pub fn client_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("could not start a runtime: {err}"))
}

/// Formats a number with thousands separators (`12,345`).
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Runs a benchmark worker's body on a multi-threaded runtime of its own and prints its
/// report as one JSON line, for the parent to read.
pub fn print_worker_report<R: serde::Serialize>(
    work: impl Future<Output = Result<R, String>>,
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| err.to_string())?;
    let report = runtime.block_on(work)?;
    drop(runtime);
    let line = serde_json::to_string(&report).map_err(|err| err.to_string())?;
    println!("{line}");
    Ok(())
}

/// imggen-core with only the gptimg provider, against a mock at `base_url`, polling on
/// gptimg's schedule scaled by `scale` (1 = as shipped).
pub fn gptimg_imggen(base_url: &str, key: &str, scale: f64) -> Result<imggen_core::Imggen, String> {
    let client = imggen_core::imggen_gptimg::Client::builder()
        .api_key(key)
        .base_url(base_url)
        .build()
        .map_err(|err| err.to_string())?;
    imggen_core::Imggen::builder()
        .provider(imggen_core::imggen_gptimg::provider::GptimgProvider::new(
            client,
        ))
        .poll_schedule(
            imggen_core::imggen_gptimg::provider::ID,
            imggen_core::imggen_gptimg::POLL_SCHEDULE.scaled(scale),
        )
        .build()
        .map_err(|err| err.to_string())
}

/// Creates the mock charged for.
pub fn charges(server: &MockServer) -> usize {
    server
        .ledger()
        .iter()
        .filter(|entry| entry.kind == EntryKind::Charge)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 50.0), 50.0);
        assert_eq!(percentile(&sorted, 95.0), 95.0);
        assert_eq!(percentile(&sorted, 100.0), 100.0);
        assert_eq!(percentile(&sorted, 0.0), 1.0);
        assert_eq!(percentile(&[7.0], 95.0), 7.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 50.0), 2.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn a_summary_sorts_before_ranking() {
        let summary = Summary::of(&[5.0, 1.0, 4.0, 2.0, 3.0]).unwrap();
        assert_eq!(summary.count, 5);
        assert_eq!(summary.mean, 3.0);
        assert_eq!(summary.p50, 3.0);
        assert_eq!(summary.p95, 5.0);
        assert_eq!((summary.min, summary.max), (1.0, 5.0));
        // Sample variance 2.5 over 5 values.
        assert!((summary.std_error - 0.5_f64.sqrt()).abs() < 1e-12);
        assert_eq!(Summary::of(&[4.0]).unwrap().std_error, 0.0);
        assert_eq!(Summary::of(&[]), None);
        assert_eq!(Summary::of(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn proc_stat_cpu_counts_after_the_command_name() {
        // A command name with spaces and a parenthesis, as /proc allows.
        let stat = "4242 (tokio (rt) w) S 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 3 0 100";
        let (user, system) = parse_stat_cpu(stat, 100).unwrap();
        assert_eq!(user, Duration::from_millis(2500));
        assert_eq!(system, Duration::from_millis(750));
        assert_eq!(parse_stat_cpu("garbage", 100), None);
    }

    #[test]
    fn status_fields_are_read_in_kib() {
        let status = "Name:\txtask\nVmHWM:\t   51234 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(51_234));
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(40_000));
        assert_eq!(parse_status_kib(status, "VmPeak"), None);
    }

    #[test]
    fn the_mock_timestamps_parse_to_the_millisecond() {
        let at = parse_timestamp("2026-04-22T00:12:03.456Z").unwrap();
        let since_epoch = at.duration_since(SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(since_epoch, Duration::from_millis(1_776_816_723_456));
        assert!(parse_timestamp("yesterday").is_err());
    }

    #[test]
    fn a_time_warp_maps_mock_time_back_to_real_time() {
        let clock = MockClock::manual();
        let warp = TimeWarp::start(clock.clone(), 100.0);
        let later = warp.mock_wall_start + Duration::from_secs(120);
        assert_eq!(
            warp.real_instant_of(later) - warp.real_start,
            Duration::from_millis(1200)
        );
        let earlier = warp.mock_wall_start - Duration::from_secs(10);
        assert_eq!(
            warp.real_start - warp.real_instant_of(earlier),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(7), "7");
        assert_eq!(thousands(1234), "1,234");
        assert_eq!(thousands(10_000_000), "10,000,000");
    }
}
