//! Child processes for the tests that run an example or an outside tool:
//! bounded runs whose whole process group is killed on timeout, an example
//! server whose stdout is read on a thread, and the browser tools that
//! `tests/chat_browser/setup.sh` installs.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Bound on a `setup.sh --check` (it only looks; a locked install may be
/// running).
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(600);

/// The output of a finished child process.
#[derive(Debug)]
pub struct Output {
    /// How it ended.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

/// Runs `cmd` to completion within `limit`, capturing its output. The child
/// leads its own process group, killed whole on timeout (apt-get, npm and
/// Chromium start children of their own).
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<Output, String> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("spawning {what}: {e}"))?;
    let collect = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
            text
        })
    };
    let stdout = collect(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = collect(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            _ => {
                kill_group(&mut child);
                break None;
            }
        }
    };
    let (stdout, stderr) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
    match status {
        Some(status) => Ok(Output { status, stdout, stderr }),
        None => Err(format!("{what} did not finish within {limit:?}\nstdout:\n{stdout}\nstderr:\n{stderr}")),
    }
}

/// Kills `child`'s whole process group (it leads one) and reaps it.
pub fn kill_group(child: &mut Child) {
    let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
    let _ = child.kill();
    let _ = child.wait();
}

/// A running example server, killed on drop. Its first stdout line must be
/// `listening on SCHEME://ADDR`.
#[derive(Debug)]
pub struct ExampleServer {
    child: Child,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its stdout lines after `listening on ...`.
    lines: mpsc::Receiver<String>,
    /// Lines taken from `lines` by [`ExampleServer::wait_for`].
    seen: Vec<String>,
}

impl ExampleServer {
    /// Starts `binary` with `args` and reads its address from its first
    /// line, `listening on {scheme}://ADDR`, within `limit`. Its stdout
    /// lines are echoed to stderr with the prefix `[name]`.
    pub fn start<I, A>(binary: &Path, args: I, scheme: &str, limit: Duration) -> ExampleServer
    where
        I: IntoIterator<Item = A>,
        A: AsRef<OsStr>,
    {
        let name = binary.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let mut child = Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        // Read stdout on a thread, always: a full pipe would stall the server.
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                eprintln!("[{name}] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = ExampleServer { child, addr: ([0, 0, 0, 0], 0).into(), lines, seen: Vec::new() };
        let first = server.lines.recv_timeout(limit).unwrap_or_else(|_| panic!("{} printed nothing", binary.display()));
        let prefix = format!("listening on {scheme}://");
        let addr = first.strip_prefix(&prefix).unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        server.addr = addr.trim().parse().unwrap_or_else(|e| panic!("bad address in {first:?}: {e}"));
        server
    }

    /// Stdout lines printed since the last call, without waiting.
    pub fn printed(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// Every stdout line printed so far (after the address line), waiting
    /// up to `limit` until `done` holds for them.
    pub fn wait_for(&mut self, limit: Duration, done: impl Fn(&[String]) -> bool) -> &[String] {
        let deadline = Instant::now() + limit;
        loop {
            self.seen.extend(self.lines.try_iter());
            let left = deadline.saturating_duration_since(Instant::now());
            if done(&self.seen) || left.is_zero() {
                return &self.seen;
            }
            if let Ok(line) = self.lines.recv_timeout(left.min(Duration::from_millis(50))) {
                self.seen.push(line);
            }
        }
    }
}

impl Drop for ExampleServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `tests/chat_browser/setup.sh` reports.
#[derive(Debug)]
pub struct BrowserTools {
    /// The Chromium executable.
    pub chromium: PathBuf,
    /// The Node binary.
    pub node: PathBuf,
    /// The `playwright-core` package directory.
    pub playwright: PathBuf,
}

impl BrowserTools {
    /// Runs the driver `script` (a path below the crate's `tests/`) with
    /// `args` under Node, with `PLAYWRIGHT` and `CHROMIUM` set, within
    /// `limit`; its output and its JSON report (its last JSON line). Its
    /// stderr and how long it took are printed.
    pub fn drive<I, A>(&self, script: &str, args: I, limit: Duration) -> (Output, serde_json::Value)
    where
        I: IntoIterator<Item = A>,
        A: AsRef<OsStr>,
    {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(script);
        let started = Instant::now();
        let mut cmd = Command::new(&self.node);
        cmd.arg(&path).args(args).env("PLAYWRIGHT", &self.playwright).env("CHROMIUM", &self.chromium);
        let out = run_bounded(&mut cmd, limit).unwrap_or_else(|e| panic!("{e}"));
        eprintln!("{script}: {:.1?}, {}\nstderr:\n{}", started.elapsed(), out.status, out.stderr);
        let report = json_report(&out, script);
        (out, report)
    }
}

/// Runs `tests/SCRIPT --check` (a setup script, which installs nothing
/// then) and reads the `KEY=VALUE` lines it prints on success; `Err` says
/// what is missing. `keys` must all be there.
pub fn setup_report(script: &str, extra: &[&OsStr], keys: &[&str]) -> Result<HashMap<String, String>, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(script);
    let started = Instant::now();
    let out = run_bounded(Command::new("bash").arg(&path).arg("--check").args(extra), SETUP_TIMEOUT)?;
    if !out.status.success() {
        return Err(format!("{} failed ({}):\n{}\n{}", path.display(), out.status, out.stdout, out.stderr));
    }
    let fields: HashMap<String, String> =
        out.stdout.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    if let Some(key) = keys.iter().find(|k| !fields.contains_key(**k)) {
        return Err(format!("{} printed no {key}= line:\n{}\n{}", path.display(), out.stdout, out.stderr));
    }
    eprintln!("{script}: {:.1?} {fields:?}", started.elapsed());
    Ok(fields)
}

/// The browser tools, found once per test binary by
/// `tests/chat_browser/setup.sh --check`.
pub fn browser_tools() -> &'static Result<BrowserTools, String> {
    static TOOLS: OnceLock<Result<BrowserTools, String>> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let prefix = super::profile_dir().parent().expect("<target>").join("chat-e2e");
        let f = setup_report("chat_browser/setup.sh", &[prefix.as_os_str()], &["CHROMIUM", "NODE", "PLAYWRIGHT"])?;
        Ok(BrowserTools {
            chromium: f["CHROMIUM"].clone().into(),
            node: f["NODE"].clone().into(),
            playwright: f["PLAYWRIGHT"].clone().into(),
        })
    })
}

/// The browser tools for a test that needs them (`what` says what for),
/// under `SILVERBACK_CONFORMANCE=1` only: `None` (after one line saying so)
/// without it; a panic when a tool is missing with it.
pub fn browser_tools_for(what: &str) -> Option<&'static BrowserTools> {
    if !super::conformance_only(what) {
        return None;
    }
    match browser_tools() {
        Ok(tools) => Some(tools),
        Err(e) => panic!("browser tools missing ({}=1): {e}", super::CONFORMANCE_VAR),
    }
}

/// The last stdout line of `out` that parses as JSON: the report of a
/// driver script.
pub fn json_report(out: &Output, what: &str) -> serde_json::Value {
    out.stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .unwrap_or_else(|| panic!("{what} printed no report ({}):\n{}\n{}", out.status, out.stdout, out.stderr))
}

/// A self-signed certificate for `127.0.0.1` and `localhost`, written as
/// PEM files into a fresh directory under the test's temporary directory.
#[derive(Debug)]
pub struct SelfSigned {
    /// The directory holding both files.
    pub dir: PathBuf,
    /// `cert.pem`.
    pub cert_pem: PathBuf,
    /// `key.pem`.
    pub key_pem: PathBuf,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
}

impl SelfSigned {
    /// Makes one (rcgen) into `<CARGO_TARGET_TMPDIR>/<name>-<pid>-<n>`, `n`
    /// counting the calls in this process (tests run in parallel threads).
    pub fn new(name: &str) -> SelfSigned {
        static MADE: AtomicUsize = AtomicUsize::new(0);
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let rcgen::CertifiedKey { cert, key_pair } =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).expect("certificate");
        let (cert_pem, key_pem) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_pem, cert.pem()).expect("write cert.pem");
        std::fs::write(&key_pem, key_pair.serialize_pem()).expect("write key.pem");
        SelfSigned { dir, cert_pem, key_pem, cert_der: cert.der().to_vec() }
    }
}

impl Drop for SelfSigned {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
