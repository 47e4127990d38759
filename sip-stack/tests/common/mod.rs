//! Helpers shared by the tests that run real SIP peers: the example UAS as a child
//! process, and SIPp with its counters.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The example UAS, running.
pub struct Uas {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Drop for Uas {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn uas(extra: &[&str]) -> Uas {
    // Examples are built next to the test binaries: target/<profile>/examples/uas.
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("uas");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p sip-stack --example uas`",
        path.display()
    );
    let mut child = Command::new(path)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("udp:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    Uas { child, addr }
}

pub fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../sipp-scenarios")
        .join(name)
}

/// Runs SIPp; returns its exit status and its final counters.
pub fn sipp(
    name: &str,
    target: SocketAddr,
    calls: u32,
    extra: &[&str],
) -> (i32, HashMap<String, String>) {
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("stats.csv");
    let ports = [free_port(), free_port(), free_port()].map(|p| p.to_string());
    let output = Command::new("sipp")
        .arg(target.to_string())
        .arg("-sf")
        .arg(scenario(name))
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &ports[0],
            "-cp",
            &ports[1],
            "-mp",
            &ports[2],
        ])
        .args([
            "-m",
            &calls.to_string(),
            "-r",
            "50",
            "-l",
            "50",
            "-timeout",
            "60s",
            "-nostdin",
        ])
        .args(["-trace_stat", "-stf"])
        .arg(&stats)
        .args(extra)
        .current_dir(dir.path())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run sipp ({e}): install Debian's sip-tester (scripts/test does)")
        });
    let text = std::fs::read_to_string(&stats).unwrap_or_default();
    let mut lines = text.lines();
    let names: Vec<&str> = lines.next().unwrap_or_default().split(';').collect();
    let values: Vec<&str> = lines.last().unwrap_or_default().split(';').collect();
    let counters = names
        .iter()
        .zip(values)
        .map(|(n, v)| ((*n).to_owned(), v.to_owned()))
        .collect();
    let status = output.status.code().unwrap_or(-1);
    if status != 0 {
        eprintln!("sipp {name}: {}", String::from_utf8_lossy(&output.stdout));
    }
    (status, counters)
}

pub fn assert_all_succeeded(name: &str, target: SocketAddr, calls: u32, extra: &[&str]) {
    let (status, counters) = sipp(name, target, calls, extra);
    assert_eq!(status, 0, "{name}: SIPp reported failures: {counters:?}");
    assert_eq!(
        counters.get("SuccessfulCall(C)").map(String::as_str),
        Some(calls.to_string().as_str()),
        "{counters:?}"
    );
    assert_eq!(
        counters.get("FailedCall(C)").map(String::as_str),
        Some("0"),
        "{counters:?}"
    );
}
